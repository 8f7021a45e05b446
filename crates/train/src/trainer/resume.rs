//! Resuming: the newest checkpoint's tensors, optimizer state, train state and data cursor,
//! after checking that it belongs to this recipe.

use std::path::Path;

use nibble_data::BatchCursor;
use nibble_model::LpBackend;

use super::error::TrainError;
use super::parts::Parts;
use crate::checkpoint::{self, CheckpointError, TrainState, write_atomic};
use crate::optim::AdamW;

/// A fresh run's state.
pub fn fresh_state(hash: &str, world: u64) -> TrainState {
    TrainState {
        step: 0,
        tokens: 0,
        data_cursor: serde_json::Value::Null,
        recipe_hash: hash.to_owned(),
        best_val_loss: None,
        wall_secs: 0.0,
        world,
    }
}

/// Loads `dir` into `parts` (the optimizer's grouping must match the checkpoint's, then the
/// number of peers and the recipe hash) and, when the run writes logs in `logs` (not a
/// data-parallel peer other than 0), drops the metric lines and events logged after its step.
/// `stage_opt`: the optimizer the checkpoint's moments belong to when it is not the run's (a
/// Block-AP block's).
pub fn resume<B: LpBackend>(
    dir: &Path,
    logs: Option<&Path>,
    hash: &str,
    parts: &mut Parts<B>,
    stage_opt: Option<&mut AdamW<B>>,
    world: u64,
    device: &B::Device,
) -> Result<TrainState, TrainError> {
    let opt = match stage_opt {
        Some(o) => o,
        None => &mut parts.opt,
    };
    let state = checkpoint::load(dir, &mut parts.params, opt, device)?;
    // Before the recipe hash (which covers [distributed] too), for the clearer message.
    if state.world != world {
        return Err(TrainError::WorldMismatch {
            dir: dir.to_path_buf(),
            saved: state.world,
            now: world,
        });
    }
    if state.recipe_hash != hash {
        return Err(TrainError::RecipeMismatch {
            dir: dir.to_path_buf(),
        });
    }
    let cursor: BatchCursor = serde_json::from_value(state.data_cursor.clone()).map_err(|e| {
        TrainError::Checkpoint(CheckpointError::Format {
            path: dir.to_path_buf(),
            message: e.to_string(),
        })
    })?;
    parts.batcher.resume(cursor)?;
    let Some(run_dir) = logs else {
        return Ok(state);
    };
    truncate_jsonl(&run_dir.join("metrics.jsonl"), state.step).map_err(TrainError::io(run_dir))?;
    crate::metrics::truncate_events(&run_dir.join("tb"), state.step)
        .map_err(TrainError::io(run_dir))?;
    Ok(state)
}

/// Drop metric lines logged after `step` (they belong to work the resumed run redoes).
fn truncate_jsonl(path: &Path, step: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}
