//! A few training steps on `device = "wgpu"` (lavapipe in CI) match the same recipe and seed on
//! the CPU, for every preset scheme: the fused group kernel (quartet-mxfp4, mxfp8,
//! naive-mxfp4), the per-tensor passes (fp8-current, bf16), the two-pass block quantizer
//! (nvfp4-te, fp8-block), the device Hadamard (quartet's and NVFP4's RHT) and the delayed-scaling
//! cast (fp8-delayed). The quantized operands are bit-identical; only GEMM summation order
//! differs.
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

#[test]
fn nvfp4_te_steps_on_wgpu_match_the_cpu() {
    steps_match("nvfp4-te");
}

#[test]
fn fp8_block_steps_on_wgpu_match_the_cpu() {
    steps_match("fp8-block");
}

#[test]
fn fp8_delayed_steps_on_wgpu_match_the_cpu() {
    steps_match("fp8-delayed");
}

#[test]
fn mxfp8_naive_mxfp4_and_bf16_steps_on_wgpu_match_the_cpu() {
    for scheme in ["mxfp8", "naive-mxfp4", "bf16"] {
        steps_match(scheme);
    }
}

#[test]
fn bitnet_steps_on_wgpu_match_the_cpu() {
    steps_match("bitnet-w158a8");
    steps_match("a8-tensor");
}

/// Every preset is exercised above.
#[test]
fn every_preset_has_a_wgpu_smoke() {
    let covered = [
        "quartet-mxfp4",
        "fp8-current",
        "nvfp4-te",
        "fp8-block",
        "fp8-delayed",
        "mxfp8",
        "naive-mxfp4",
        "bf16",
        "bitnet-w158a8",
        "a8-tensor",
    ];
    for p in nibble_ops::presets::PRESETS.iter().copied() {
        assert!(
            p == "f32" || covered.contains(&p),
            "preset `{p}` has no wgpu smoke"
        );
    }
}

/// The QAT techniques (burn tensor ops, with learnable parameters and an output bias) train on
/// wgpu as on the CPU: f32 GEMMs, each technique on every block projection.
#[test]
fn qat_techniques_on_wgpu_match_the_cpu() {
    for (tag, qat) in [
        (
            "lsq",
            "method = \"lsq\"\ngranularity = \"group\"\ngroup_size = 32",
        ),
        (
            "efficientqat",
            "method = \"efficientqat\"\ngranularity = \"group\"\ngroup_size = 32",
        ),
        ("seq-ternary", "method = \"seq_ternary\""),
        ("twn", "method = \"twn\"\ngranularity = \"tensor\""),
        (
            "tequila",
            "method = \"tequila\"\ngranularity = \"group\"\ngroup_size = 32\nlambda_learnable = true",
        ),
    ] {
        steps_match_with("f32", &format!("\n[qat]\n{qat}\n"), tag);
    }
    // EfficientQAT's stages: Block-AP (2 blocks × 2 iterations, the block forward and the
    // reconstruction loss on the device), the conversion, then 3 E2E-QP steps.
    let stages = "\n[qat]\nmethod = \"efficientqat\"\nbits = 2\ngranularity = \"group\"\n\
                  group_size = 32\n\n[block_ap]\nenabled = true\nsamples = 4\nval_samples = 2\n\
                  epochs = 1\nlr_quant = 1e-3\n\n[e2e_qp]\nenabled = true\n";
    steps_match_with("f32", stages, "efficientqat-stages");
}

/// The N:M methods train on wgpu as on the CPU, their masks computed by the device kernel (no
/// `nm_mask` host fallback logged): SR-STE with a hard phase, MDGF at 1:8 with a 2:4 rule along
/// outputs, SDGF, and a 2:4 mask under Tequila.
#[test]
fn sparsity_methods_on_wgpu_match_the_cpu() {
    for (tag, body) in [
        (
            "sr-ste",
            "method = \"sr-ste\"\npattern = \"2:4\"\nfinetune_fraction = 0.34",
        ),
        (
            "mdgf",
            "method = \"mdgf\"\npattern = \"1:8\"\nmodules = [\"model.layers.*.mlp.*\"]\n\
             beta_zero_at = 2\n\n[[sparsity.rules]]\nmodules = [\"model.layers.*.self_attn.*\"]\n\
             pattern = \"2:4\"\ndimension = \"output\"",
        ),
        ("sdgf", "method = \"sdgf\"\npattern = \"1:4\""),
        (
            "tequila-2of4",
            "method = \"ste\"\npattern = \"2:4\"\n\n[qat]\nmethod = \"tequila\"\ngranularity = \"channel\"",
        ),
    ] {
        let tag = format!("nm-{tag}");
        steps_match_with("f32", &format!("\n[sparsity]\n{body}\n"), &tag);
        // `scratch`'s folder for the runs, read without clearing it.
        let d = std::env::temp_dir().join(format!(
            "nibble-cli-wgpu-smoke-{tag}-{}",
            std::process::id()
        ));
        let metrics = fs::read_to_string(d.join("gpu/smoke/metrics.jsonl")).unwrap();
        assert!(metrics.contains("sparsity/flip_rate"), "{tag}: diagnostics");
        assert!(
            !metrics.contains("host_fallbacks/nm_mask"),
            "{tag}: the mask fell back to the host"
        );
    }
}

/// Distillation with Teacher Intervention (TI-G over 2 of 3 updates, every KD loss, the
/// teacher's forward and the unfused attention on the device) trains on wgpu as on the CPU.
#[test]
fn distillation_on_wgpu_matches_the_cpu() {
    let t = scratch("wgpu-teacher");
    fs::write(t.join("r.toml"), RECIPE.replace("SCHEME", "f32")).unwrap();
    let (code, _, err) = nibble(&["train", "--recipe", "r.toml"], &t);
    assert_eq!(code, 0, "teacher run failed: {err}");
    let teacher = t.join("runs/smoke");
    let extra = format!(
        "\n[distill]\nteacher.run = {:?}\nce = 0.5\nhidden = 0.1\nattn_scores = 0.1\n\
         attn_out = 0.1\nintervention = \"gradual\"\nintervention_steps = 2\n",
        teacher.to_string_lossy()
    );
    steps_match_with("f32", &extra, "distill");
}

fn steps_match(scheme: &str) {
    steps_match_with(scheme, "", scheme);
}

/// `RECIPE` under `scheme` with `extra` appended, on the CPU and on wgpu: the same losses.
fn steps_match_with(scheme: &str, extra: &str, tag: &str) {
    let d = scratch(&format!("wgpu-smoke-{tag}"));
    fs::write(d.join("r.toml"), RECIPE.replace("SCHEME", scheme) + extra).unwrap();
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
    eprintln!("{tag}: cpu losses {a:?}, wgpu losses {b:?}");
    assert_eq!(a.len(), 3, "three logged steps");
    assert_eq!(a.len(), b.len());
    for (step, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-3 * x.abs(),
            "{tag} step {}: cpu loss {x}, wgpu loss {y}",
            step + 1
        );
    }
}

/// `nibble bench kernels` runs every kernel on wgpu and reports each against the copy.
#[test]
fn kernel_bench_runs_on_wgpu() {
    let d = scratch("wgpu-bench");
    let (code, out, err) = nibble(
        &[
            "bench", "kernels", "--device", "wgpu", "--mib", "1", "--iters", "1",
        ],
        &d,
    );
    assert_eq!(code, 0, "{err}");
    let rows = out
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| kernel"))
        .count();
    assert_eq!(rows, 12, "copy + 11 kernels: {out}");
    assert!(out.contains("| device copy |"), "{out}");
}
