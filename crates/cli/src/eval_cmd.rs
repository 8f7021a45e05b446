use std::path::{Path, PathBuf};

use nibble_train::checkpoint;
use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainError, evaluate};

use crate::device::with_backend;

/// `<run>/checkpoints/step-N` → (run dir, checkpoint dir); a run dir → its newest checkpoint.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf), String> {
    if path.join("state.json").is_file() {
        let run = path
            .parent()
            .and_then(Path::parent)
            .ok_or("checkpoint is not inside <run>/checkpoints/")?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    let ck = checkpoint::latest(path)
        .ok_or_else(|| format!("{}: no checkpoint found", path.display()))?;
    Ok((path.to_path_buf(), ck))
}

pub fn run(path: &Path, batches: Option<usize>) -> Result<(), (u8, String)> {
    let (run_dir, ck) = locate(path).map_err(|m| (2, m))?;
    let recipe = load_recipe::<Recipe>(&run_dir.join("recipe.toml"), &[], Recipe::validate)
        .map_err(|e| (2, e.to_string()))?
        .value;
    let ev = with_backend!(recipe.run.device, |B, dev| {
        // The run's model with its techniques, and the checkpoint's tensors in it.
        let mut parts = Parts::<B>::build(&recipe, true, &dev).map_err(|e| {
            let code = if matches!(e, TrainError::Data(_)) {
                1
            } else {
                2
            };
            (code, e.to_string())
        })?;
        let state = checkpoint::load(&ck, &mut parts.params, &mut parts.opt, &dev)
            .map_err(|e| (1, e.to_string()))?;
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
