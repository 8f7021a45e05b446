//! N + N steps with a resume in between give byte-identical weights (and optimizer state) to 2N
//! straight steps; a resumed run refuses a different recipe; bad states are refused.

use std::fs;
use std::path::Path;

use burn::backend::Flex;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainError, TrainOptions, train};

fn recipe_text(out: &Path, name: &str, steps: u64) -> String {
    recipe_with(out, name, steps, "")
}

fn recipe_with(out: &Path, name: &str, steps: u64, extra: &str) -> String {
    format!(
        r#"
[run]
name = "{name}"
out_dir = "{}"
seed = 3
steps = {steps}
batch_size = 4
grad_accum = 2

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"
cache_dir = "{}"

[schedule]
kind = "wsd"
warmup_steps = 2
decay_fraction = 0.25

[eval]
every = 3
batches = 2

[log]
every = 1
progress = false

[checkpoint]
every = 3
keep_last = 2
{extra}
"#,
        out.display(),
        out.join("cache").display()
    )
}

fn run(
    text: &str,
    resume: bool,
    stop_after: Option<u64>,
) -> Result<nibble_train::trainer::TrainSummary, TrainError> {
    let recipe: Recipe = toml::from_str(text).unwrap();
    train::<Flex>(
        &recipe,
        text,
        &TrainOptions {
            resume,
            quiet: true,
            stop_after,
            run_dir: None,
        },
        &Default::default(),
    )
}

fn ckpt_bytes(run_dir: &Path, step: u64) -> (Vec<u8>, Vec<u8>) {
    let d = run_dir.join("checkpoints").join(format!("step-{step:08}"));
    (
        fs::read(d.join("model.safetensors")).unwrap(),
        fs::read(d.join("optimizer.safetensors")).unwrap(),
    )
}

#[test]
fn resume_is_bit_identical() {
    let tmp = std::env::temp_dir().join(format!("nibble-resume-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    // Straight: 12 steps.
    let straight = recipe_text(&tmp, "straight", 12);
    let s = run(&straight, false, None).unwrap();
    // Interrupted after step 7 (checkpoints exist at 3 and 6; step 7 is lost), then resumed.
    let full = recipe_text(&tmp, "resumed", 12);
    let cut = run(&full, false, Some(7)).unwrap();
    assert_eq!(cut.steps, 7);
    let r = run(&full, true, None).unwrap();
    assert_eq!(r.steps, 12);
    let (a_model, a_opt) = ckpt_bytes(&s.run_dir, 12);
    let (b_model, b_opt) = ckpt_bytes(&r.run_dir, 12);
    assert!(a_model == b_model, "model weights differ after resume");
    assert!(a_opt == b_opt, "optimizer state differs after resume");
    assert_eq!(s.final_eval.loss.to_bits(), r.final_eval.loss.to_bits());
    // keep_last = 2: steps 9 and 12 remain.
    let mut kept: Vec<_> = fs::read_dir(s.run_dir.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    kept.sort();
    assert_eq!(kept, ["step-00000009", "step-00000012"]);
    // Training moved the loss well below its initial value (ln 256 ≈ 5.55).
    assert!(s.final_eval.loss < 4.0, "val loss {}", s.final_eval.loss);

    // Starting again without --resume refuses to clobber; resuming with another recipe refuses.
    assert!(matches!(
        run(&straight, false, None),
        Err(TrainError::RunExists(_))
    ));
    let changed = straight.replace("seed = 3", "seed = 4");
    assert!(matches!(
        run(&changed, true, None),
        Err(TrainError::RecipeMismatch { .. })
    ));
    // metrics.jsonl of the resumed run holds each step once, in order.
    let steps: Vec<u64> = fs::read_to_string(r.run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("train/loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        steps,
        (1..=12).collect::<Vec<_>>(),
        "the lost step 7 is logged once, by the resumed run"
    );
    let _ = fs::remove_dir_all(&tmp);
}

/// Stateful and stochastic quantizers survive an interruption too: FP8 delayed scaling (amax
/// histories saved in the checkpoint) in block 0 and Quartet with SR backward (per-step keys) in
/// block 1.
#[test]
fn resume_is_bit_identical_with_low_precision_schemes() {
    let tmp = std::env::temp_dir().join(format!("nibble-resume-lp-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let extra = r#"
[precision]
default = "fp8-delayed"

[[precision.rules]]
last_blocks = 1
scheme = "quartet-sr"

[precision.schemes.quartet-sr]
preset = "quartet-mxfp4"
backward_rounding = "sr"

[precision.schemes.short-history]
preset = "fp8-delayed"
amax_history_len = 4
"#;
    let straight = recipe_with(&tmp, "straight", 8, extra);
    let s = run(&straight, false, None).unwrap();
    let full = recipe_with(&tmp, "resumed", 8, extra);
    run(&full, false, Some(4)).unwrap();
    let r = run(&full, true, None).unwrap();
    let (a_model, a_opt) = ckpt_bytes(&s.run_dir, 8);
    let (b_model, b_opt) = ckpt_bytes(&r.run_dir, 8);
    assert!(a_model == b_model, "model weights differ after resume");
    assert!(a_opt == b_opt, "optimizer state differs after resume");
    let state = |dir: &Path| -> serde_json::Value {
        serde_json::from_str(
            &fs::read_to_string(dir.join("checkpoints/step-00000008/state.json")).unwrap(),
        )
        .unwrap()
    };
    let qs = state(&s.run_dir)["state"]["quant_state"].clone();
    assert_eq!(qs, state(&r.run_dir)["state"]["quant_state"]);
    // Block 0's seven layers keep delayed-scaling state; the scales moved off their initial 1.
    let q = qs.as_object().expect("quant_state saved");
    assert_eq!(q.len(), 7);
    let v = q["model.layers.0.mlp.up_proj"].as_array().unwrap();
    assert_eq!(v.len(), 3 * 1025);
    assert!(
        v[0].as_f64().unwrap() != 1.0,
        "the X scale was updated from the amax history"
    );
    assert!(s.final_eval.loss.is_finite() && s.final_eval.loss < 5.5);
    let _ = fs::remove_dir_all(&tmp);
}
