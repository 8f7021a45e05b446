//! Nothing non-finite becomes the last good checkpoint, and errors count updates as checkpoint
//! directories do: a learning rate that blows the weights up (finite, so the save's own check
//! would pass them) makes the validation loss non-finite, and the run stops with that step named
//! and without a checkpoint for it; the training loss's error names its update from 1.

mod common;

use common::{recipe_with, run, tmp_dir};
use nibble_train::trainer::TrainError;

#[test]
fn a_non_finite_loss_stops_the_run_before_a_checkpoint_of_it() {
    let tmp = tmp_dir("non-finite");
    let text = recipe_with(&tmp, "blowup", 6, "")
        .replace("every = 3\nbatches = 2", "every = 1\nbatches = 2")
        .replace("[checkpoint]\nevery = 3", "[checkpoint]\nevery = 1")
        .replace(
            "grad_accum = 2",
            "grad_accum = 2\n\n[optim]\nlr = 1e30\ngrad_clip = 0.0",
        );
    assert!(text.contains("lr = 1e30") && text.contains("[checkpoint]\nevery = 1"));
    let err = run(&text, false, None).unwrap_err();
    let ckpts = tmp.join("blowup/checkpoints");
    let saved: Vec<u64> = std::fs::read_dir(&ckpts)
        .map(|rd| {
            rd.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                name.strip_prefix("step-")?.parse().ok()
            })
            .collect()
        })
        .unwrap_or_default();
    match err {
        TrainError::NonFiniteValLoss { step, loss } => {
            assert!(!loss.is_finite());
            assert!(step >= 1, "{step}");
            assert!(
                saved.iter().all(|s| *s < step),
                "{saved:?} vs failing step {step}"
            );
        }
        TrainError::NonFiniteLoss { step, loss } => {
            assert!(!loss.is_finite());
            // Update `step` (from 1) computed the loss: updates 1..step−1 completed, and at most
            // those were saved.
            assert!(step >= 1, "{step}");
            assert!(
                saved.iter().all(|s| *s < step),
                "{saved:?} vs update {step}"
            );
        }
        other => panic!("expected a non-finite loss error, got {other}"),
    }
    // Every checkpoint kept holds finite weights (the save refuses others).
    for s in &saved {
        let t = common::ckpt_tensors(&tmp.join("blowup"), *s);
        assert!(
            t.values().all(|(_, v)| v.iter().all(|x| x.is_finite())),
            "step {s}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Recipe floats that are finite in f64 but overflow or flush to zero in f32, where they are
/// used, are refused at their key with file and line.
#[test]
fn floats_outside_f32_are_refused_at_their_key() {
    let tmp = tmp_dir("f32-keys");
    let base = recipe_with(&tmp, "f32", 4, "");
    // [model] starts at line 11 of the common recipe (a blank first line, then [run]).
    let model = base.replace("n_layers = 2", "n_layers = 2\nnorm_eps = 1e-50");
    let init = base.replace("n_layers = 2", "n_layers = 2\ninit_std = 1e39");
    let group = format!("{base}\n[[optim.groups]]\nmatch = \"model.norm.weight\"\nlr = 1e-60\n");
    let at = |text: &str, key: &str| text.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    let cases = [
        (
            model.as_str(),
            "model.norm_eps",
            format!(":{}:", at(&model, "norm_eps")),
        ),
        (
            init.as_str(),
            "model.init_std",
            format!(":{}:", at(&init, "init_std")),
        ),
        (
            group.as_str(),
            "optim.groups[0].lr",
            format!(":{}:", at(&group, "lr = 1e-60")),
        ),
    ];
    let cases: Vec<(&str, &str, &str)> =
        cases.iter().map(|(t, k, l)| (*t, *k, l.as_str())).collect();
    common::assert_refused_at(&tmp.join("bad"), &cases);
}
