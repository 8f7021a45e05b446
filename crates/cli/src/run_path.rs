//! A checkpoint named on the command line: where its run is, and the run's model loaded from it.

use std::path::{Path, PathBuf};

use nibble_model::LpBackend;
use nibble_train::checkpoint::{self, TrainState};
use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainError, recipe_hash};

/// `<run>/checkpoints/step-N` → (run dir, checkpoint dir); a run dir → its newest intact
/// checkpoint (exit 2 for a path that is neither, 1 when every checkpoint is damaged).
pub fn locate(path: &Path) -> Result<(PathBuf, PathBuf), (u8, String)> {
    // A `step-N` directory is a checkpoint even when its state.json is gone (it is then
    // reported as damaged when loaded, not mistaken for a run directory).
    let named_step = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
        n.strip_prefix("step-")
            .is_some_and(|s| s.bytes().all(|b| b.is_ascii_digit()))
    });
    if path.join("state.json").is_file() || (named_step && path.is_dir()) {
        let run = path
            .parent()
            .and_then(Path::parent)
            .ok_or((2, "checkpoint is not inside <run>/checkpoints/".to_string()))?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err((
            2,
            format!("{}: no such run or checkpoint directory", path.display()),
        ));
    }
    // The newest intact checkpoint: damaged newer ones are moved aside with a warning.
    let (ck, damaged) = checkpoint::newest_intact(path).map_err(|e| (1, e.to_string()))?;
    let from = ck.as_deref().and_then(|d| checkpoint::saved_step(d).ok());
    for line in checkpoint::fallback_warnings(&damaged, from, false) {
        eprintln!("warning: {line}");
    }
    let ck = ck.ok_or_else(|| match damaged.first() {
        Some(d) => (
            1,
            format!("{}: no intact checkpoint ({})", path.display(), d.error),
        ),
        None => (2, format!("{}: no checkpoint found", path.display())),
    })?;
    Ok((path.to_path_buf(), ck))
}

/// The recipe of the run holding `path` (exit 2 when it is missing or invalid).
pub fn run_recipe(path: &Path) -> Result<(Recipe, PathBuf), (u8, String)> {
    let (run_dir, ck) = locate(path)?;
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

/// Loads checkpoint `ck` into `parts` after verifying it (exit 1 when it is damaged or cannot be
/// read) and that it was written by its run's recipe (exit 2 otherwise, as `--resume` refuses).
pub fn load_checkpoint<B: LpBackend>(
    ck: &Path,
    parts: &mut Parts<B>,
    dev: &B::Device,
) -> Result<TrainState, (u8, String)> {
    let state = checkpoint::load(ck, &mut parts.params, &mut parts.opt, dev)
        .map_err(|e| (1, e.to_string()))?;
    let recipe_file = ck
        .parent()
        .and_then(Path::parent)
        .map(|run| run.join("recipe.toml"))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&recipe_file)
        .map_err(|e| (2, format!("{}: {e}", recipe_file.display())))?;
    if recipe_hash(&text) != state.recipe_hash {
        return Err((
            2,
            format!(
                "{}: written by a different recipe than {} (edited after the run started?); \
                 refusing to use it with this recipe",
                ck.display(),
                recipe_file.display()
            ),
        ));
    }
    Ok(state)
}
