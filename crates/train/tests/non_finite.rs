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
