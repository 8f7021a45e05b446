use std::path::Path;

use nibble_train::trainer::evaluate;

use crate::device::with_backend;
use crate::run_path::{load_checkpoint, run_parts, run_recipe};

pub fn run(path: &Path, batches: Option<usize>) -> Result<(), (u8, String)> {
    if batches == Some(0) {
        return Err((2, "--batches: must be at least 1".into()));
    }
    let (recipe, ck) = run_recipe(path)?;
    let ev = with_backend!(recipe.run.device, |B, dev| {
        // The run's model with its techniques, and the checkpoint's tensors in it.
        let mut parts = run_parts::<B>(&recipe, &dev)?;
        let state = load_checkpoint(&ck, &mut parts, &dev)?;
        let rope = parts.model.rope::<B>(&dev);
        evaluate(
            &parts.model,
            state.step,
            &rope,
            &parts.params,
            &parts.data.val,
            recipe.run.batch_size,
            batches.unwrap_or(recipe.eval.batches),
            &dev,
        )
        .map(|ev| (state.step, ev))
        .map_err(|e| (1, e.to_string()))
    })?;
    // A non-finite loss (NaN or Inf weights) is a failed evaluation, not a result.
    if !ev.1.loss.is_finite() {
        return Err((
            1,
            format!(
                "{} (step {}): the validation loss is {} (non-finite weights or activations)",
                ck.display(),
                ev.0,
                ev.1.loss
            ),
        ));
    }
    println!(
        "{} (step {}): val loss {:.4} nats/token, {:.4} bits/byte over {} tokens",
        ck.display(),
        ev.0,
        ev.1.loss,
        ev.1.bpb,
        ev.1.tokens
    );
    Ok(())
}
