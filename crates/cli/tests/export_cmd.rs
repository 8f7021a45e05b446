//! `nibble export` end to end: what a run trained is what the files hold (an N:M mask applied,
//! LSQ weights on their grid, everything else as checkpointed), errors exit 2 and write nothing,
//! and the reference model makes the round trip GGUF → Nibble → GGUF unchanged and still
//! continues the Paris prompt in an independent numpy forward.

use std::fs;
use std::path::Path;
use std::process::Command;

use nibble_modelfiles::llama::{import_gguf, import_hf_dir};
use nibble_train::checkpoint::read_safetensors;

mod common;
use common::{export, nibble, scratch};

const RECIPE: &str = r#"
[run]
name = "x"
steps = 3
batch_size = 2

[model]
preset = "tiny"
seq_len = 16
n_layers = 1

[data]
source = "sample"

[sparsity]
method = "ste"
pattern = "2:4"
modules = ["model.layers.*.mlp.*"]

[qat]
method = "lsq"
bits = 4
modules = ["model.layers.*.self_attn.*"]

[eval]
batches = 1

[log]
tensorboard = false

[checkpoint]
every = 3
"#;

#[test]
fn export_writes_what_was_trained() {
    let d = scratch("export");
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let ck = d.join("runs/x/checkpoints/step-00000003");
    let saved = read_safetensors(&fs::read(ck.join("model.safetensors")).unwrap()).unwrap();

    let (code, out, err) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/x",
            "--format",
            "hf-f32",
            "--out",
            "hf",
        ],
        &d,
    );
    assert_eq!(code, 0, "{err}");
    // The export reports each sparse layer's zeros and pattern (the MLP's 3 layers only).
    for proj in ["gate_proj", "up_proj", "down_proj"] {
        let line =
            format!("sparsity: model.layers.0.mlp.{proj} 2:4 (input): 50.00% zeros, N:M holds");
        assert!(out.contains(&line), "{line}\n{out}");
    }
    assert_eq!(out.matches("sparsity: ").count(), 3, "{out}");
    let m = import_hf_dir(&d.join("hf")).unwrap();
    assert_eq!(m.config.num_layers, 1);
    assert_eq!(m.config.hidden_size, 128);
    // Norms and the embedding: the checkpoint's values bit for bit.
    for name in [
        "model.norm.weight",
        "model.embed_tokens.weight",
        "lm_head.weight",
    ] {
        assert_eq!(m.tensors[name].1, saved[name].1, "{name}");
    }
    // MLP projections: the 2:4 mask applied (2 of every 4 inputs zero), the kept values as
    // trained.
    let up = "model.layers.0.mlp.up_proj.weight";
    let mask = &saved["model.layers.0.mlp.up_proj.weight_mask"].1;
    for ((e, w), k) in m.tensors[up].1.iter().zip(&saved[up].1).zip(mask) {
        assert_eq!(*e, if *k == 1.0 { *w } else { 0.0 });
    }
    for g in m.tensors[up].1.chunks(4) {
        assert!(g.iter().filter(|v| **v == 0.0).count() >= 2, "{g:?}");
    }
    // Attention projections: LSQ's 4-bit grid, round(clamp(w/s, -8, 7))·s per row.
    let q = "model.layers.0.self_attn.q_proj.weight";
    let s = &saved["model.layers.0.self_attn.q_proj.weight_scale"].1;
    let cols = 128;
    for (i, (e, w)) in m.tensors[q].1.iter().zip(&saved[q].1).enumerate() {
        let step = s[i / cols];
        let code = (w / step).clamp(-8.0, 7.0).round_ties_even();
        assert!(
            (e - code * step).abs() <= 1e-6 * step.abs().max(1.0),
            "{i}: {e} vs {}",
            code * step
        );
    }

    // GGUF Q8_0 would store the LSQ layers' f32 steps as f16, a different weight: refused,
    // naming the tensor and the fix.
    let (code, _, err) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/x",
            "--format",
            "gguf-q8_0",
            "--out",
            "q8.gguf",
        ],
        &d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("self_attn.") && err.contains("scale_dtype = \"f16\""),
        "{err}"
    );
    assert!(!d.join("q8.gguf").exists());
    // GGUF: the same weights in f16 (within its rounding), readable as a llama model.
    export(&d, "runs/x", "gguf-f16", Path::new("x.gguf"));
    let g = import_gguf(&d.join("x.gguf")).unwrap();
    for (name, (shape, v)) in &m.tensors {
        let (gs, gv) = &g.tensors[name];
        assert_eq!(gs, shape, "{name}");
        let amax = v.iter().fold(0f32, |a, x| a.max(x.abs()));
        let worst = v
            .iter()
            .zip(gv)
            .fold(0f32, |a, (x, y)| a.max((x - y).abs()));
        assert!(
            worst <= amax / 1024.0 + 1e-7,
            "{name}: {worst} vs amax {amax}"
        );
    }

    // Errors: exit 2, the flag or tensor named, nothing written.
    let (code, _, err) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/x",
            "--format",
            "onnx",
            "--out",
            "o",
        ],
        &d,
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("--format") && err.contains("gguf-q4_0"),
        "{err}"
    );
    let (code, _, err) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/x",
            "--format",
            "gguf-tq2_0",
            "--out",
            "t.gguf",
        ],
        &d,
    );
    assert_eq!(code, 2);
    // Rows of 128 take Q4_0 in a ternary file, which would round the LSQ steps to f16.
    assert!(
        err.contains("scale_dtype") && err.contains("tensor"),
        "{err}"
    );
    assert!(!d.join("t.gguf").exists(), "a failed export wrote a file");
    let (code, _, _) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/none",
            "--format",
            "hf",
            "--out",
            "o",
        ],
        &d,
    );
    assert_eq!(code, 2);
    let _ = fs::remove_dir_all(&d);
}

/// The reference model imported, trained for one step with every parameter frozen, and
/// exported as an F32 GGUF equals the original file's weights bit for bit, keeps its tokenizer,
/// and an independent numpy Llama forward (gguf-py reading our file) continues the Paris prompt.
#[test]
fn smollm2_round_trip_gguf_nibble_gguf() {
    let d = scratch("export-smollm2");
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smollm2-cache");
    let original = match nibble_data::smollm2_gguf(&cache) {
        Ok(p) => p,
        Err(e) if std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1") => {
            println!("skipped: the SmolLM2 GGUF cannot be fetched ({e})");
            return;
        }
        Err(e) => panic!("NIBBLE_PY_REFS=1 but the SmolLM2 GGUF cannot be fetched: {e}"),
    };
    let recipe = format!(
        r#"
[run]
name = "s"
steps = 1
batch_size = 1

[init]
pretrained = "smollm2-135m-instruct"

[model]
seq_len = 16

[data]
source = "sample"
tokenizer = "model"
cache_dir = "{}"

[[optim.groups]]
match = "*"
frozen = true

[eval]
batches = 1

[log]
tensorboard = false
"#,
        cache.display()
    );
    fs::write(d.join("r.toml"), recipe).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    export(&d, "runs/s", "gguf-f32", Path::new("s.gguf"));
    let (a, b) = (
        import_gguf(&original).unwrap(),
        import_gguf(&d.join("s.gguf")).unwrap(),
    );
    assert_eq!(a.config, b.config);
    assert_eq!(a.tokenizer, b.tokenizer);
    assert!(a.tensors == b.tensors, "weights changed on the round trip");
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../modelfiles/tests/py/llama_numpy_generate.py");
    let run = Command::new("python3")
        .arg(&script)
        .arg(d.join("s.gguf"))
        .arg("The capital of France is")
        .arg("3")
        .output()
        .expect("python3");
    let text = String::from_utf8_lossy(&run.stdout);
    if !run.status.success() && std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1") {
        println!(
            "skipped the numpy check: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    } else {
        assert!(
            text.starts_with(" Paris."),
            "{text:?} {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let _ = fs::remove_dir_all(&d);
}
