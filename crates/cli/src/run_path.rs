//! A checkpoint named on the command line: where its run is, and the run's model loaded from it.

use std::path::{Path, PathBuf};

use nibble_model::LpBackend;
use nibble_train::checkpoint::{self, TrainState};
use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainError};

/// `<run>/checkpoints/step-N` → (run dir, checkpoint dir); a run dir → its newest checkpoint.
pub fn locate(path: &Path) -> Result<(PathBuf, PathBuf), String> {
    if path.join("state.json").is_file() {
        let run = path
            .parent()
            .and_then(Path::parent)
            .ok_or("checkpoint is not inside <run>/checkpoints/")?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err(format!(
            "{}: no such run or checkpoint directory",
            path.display()
        ));
    }
    let ck = checkpoint::latest(path)
        .ok_or_else(|| format!("{}: no checkpoint found", path.display()))?;
    Ok((path.to_path_buf(), ck))
}

/// The recipe of the run holding `path` (exit 2 when it is missing or invalid).
pub fn run_recipe(path: &Path) -> Result<(Recipe, PathBuf), (u8, String)> {
    let (run_dir, ck) = locate(path).map_err(|m| (2, m))?;
    let recipe = load_recipe::<Recipe>(&run_dir.join("recipe.toml"), &[], Recipe::validate)
        .map_err(|e| (2, e.to_string()))?
        .value;
    Ok((recipe, ck))
}

/// The run's model (schemes, techniques, tokenizer) built from its recipe, without the
/// checkpoint's tensors yet (exit 1 for data that cannot be loaded, 2 for a bad recipe).
pub fn run_parts<B: LpBackend>(recipe: &Recipe, dev: &B::Device) -> Result<Parts<B>, (u8, String)> {
    Parts::<B>::build(recipe, true, dev).map_err(|e| {
        let code = if matches!(e, TrainError::Data(_)) {
            1
        } else {
            2
        };
        (code, e.to_string())
    })
}

/// Loads checkpoint `ck` into `parts` (exit 1 when it cannot be read).
pub fn load_checkpoint<B: LpBackend>(
    ck: &Path,
    parts: &mut Parts<B>,
    dev: &B::Device,
) -> Result<TrainState, (u8, String)> {
    checkpoint::load(ck, &mut parts.params, &mut parts.opt, dev).map_err(|e| (1, e.to_string()))
}
