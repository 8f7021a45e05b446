//! N + N steps with a resume in between give byte-identical weights (and optimizer state) to 2N
//! straight steps; a resumed run refuses a different recipe; bad states are refused.

mod common;

use std::fs;

use common::{ckpt_bytes, ckpt_tensors, recipe_text, recipe_with, run};
use nibble_train::trainer::TrainError;

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
    // `train --check --resume` finds the same, writing nothing.
    let check = |text: &str| {
        let recipe: nibble_train::sections::Recipe = toml::from_str(text).unwrap();
        let opts = nibble_train::trainer::TrainOptions {
            resume: true,
            quiet: true,
            ..Default::default()
        };
        nibble_train::trainer::check::<burn::backend::Flex>(
            &recipe,
            text,
            &opts,
            &Default::default(),
        )
    };
    assert!(matches!(
        check(&changed),
        Err(TrainError::RecipeMismatch { .. })
    ));
    assert!(check(&straight).is_ok());
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
    // Block 0's seven layers keep delayed-scaling state as buffers in the checkpoint, equal in
    // both runs (the bytes above); the scales moved off their initial 1.
    let t = ckpt_tensors(&s.run_dir, 8);
    let scales: Vec<&String> = t.keys().filter(|k| k.ends_with(".fp8_scale")).collect();
    assert_eq!(scales.len(), 7, "{scales:?}");
    let (shape, hist) = &t["model.layers.0.mlp.up_proj.fp8_amax_history"];
    assert_eq!(shape, &[3, 1024]);
    assert!(hist.iter().any(|&a| a > 0.0), "amaxes were recorded");
    let (_, scale) = &t["model.layers.0.mlp.up_proj.fp8_scale"];
    assert!(
        scale[0] != 1.0,
        "the X scale was updated from the amax history"
    );
    assert!(s.final_eval.loss.is_finite() && s.final_eval.loss < 5.5);
    let _ = fs::remove_dir_all(&tmp);
}
