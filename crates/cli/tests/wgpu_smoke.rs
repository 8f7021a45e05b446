//! A few training steps on `device = "wgpu"` (lavapipe in CI) match the same recipe and seed on
//! the CPU: quartet-mxfp4 (the fused group kernel) and fp8-current (the per-tensor amax + cast
//! passes). The quantized operands are bit-identical; only GEMM summation order differs.
#![cfg(feature = "wgpu")]

use std::fs;
use std::path::Path;

mod common;
use common::{nibble, scratch};

const RECIPE: &str = r#"
[run]
name = "smoke"
steps = 3
batch_size = 4

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"

[optim]
lr = 0.003

[precision]
default = "SCHEME"

[eval]
every = 3
batches = 2

[log]
every = 1
tensorboard = false

[checkpoint]
every = 3
"#;

/// `train/loss` of every logged step.
fn losses(run: &Path) -> Vec<f64> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v.get("train/loss").and_then(|x| x.as_f64())
        })
        .collect()
}

#[test]
fn quartet_steps_on_wgpu_match_the_cpu() {
    steps_match("quartet-mxfp4");
}

#[test]
fn fp8_current_steps_on_wgpu_match_the_cpu() {
    steps_match("fp8-current");
}

fn steps_match(scheme: &str) {
    let d = scratch(&format!("wgpu-smoke-{scheme}"));
    fs::write(d.join("r.toml"), RECIPE.replace("SCHEME", scheme)).unwrap();
    let (code, _, err) = nibble(
        &[
            "train",
            "--recipe",
            "r.toml",
            "--set",
            "run.out_dir=\"cpu\"",
        ],
        &d,
    );
    assert_eq!(code, 0, "cpu run failed: {err}");
    let (code, _, err) = nibble(
        &[
            "train",
            "--recipe",
            "r.toml",
            "--set",
            "run.out_dir=\"gpu\"",
            "--set",
            "run.device=\"wgpu\"",
        ],
        &d,
    );
    assert_eq!(code, 0, "wgpu run failed: {err}");
    let (a, b) = (losses(&d.join("cpu/smoke")), losses(&d.join("gpu/smoke")));
    assert_eq!(a.len(), 3, "three logged steps");
    assert_eq!(a.len(), b.len());
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-3 * x.abs(),
            "{scheme} step {}: cpu loss {x}, wgpu loss {y}",
            step + 1
        );
    }
}
