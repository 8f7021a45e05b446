//! Choosing the checkpoint to continue from: the newest one that verifies. Damaged newer ones
//! are moved aside (never deleted) and reported, so the steps they held are replayed.

use std::path::{Path, PathBuf};

use super::manifest::{Damaged, move_aside, verify};
use super::store::{CheckpointError, step_dirs};

/// The newest checkpoint of `run_dir` that verifies and the newer ones that do not, with their
/// errors (newest first); reads only.
pub fn scan(run_dir: &Path) -> (Option<PathBuf>, Vec<(u64, PathBuf, CheckpointError)>) {
    let mut damaged = Vec::new();
    for (step, dir) in step_dirs(run_dir).into_iter().rev() {
        match verify(&dir) {
            Ok(()) => return (Some(dir), damaged),
            Err(e) => damaged.push((step, dir, e)),
        }
    }
    (None, damaged)
}

/// The newest intact checkpoint of `run_dir` (None when there is none) and the damaged newer
/// ones, which have been moved to `<run>/damaged/`.
pub fn newest_intact(run_dir: &Path) -> Result<(Option<PathBuf>, Vec<Damaged>), CheckpointError> {
    let (found, bad) = scan(run_dir);
    let mut damaged = Vec::new();
    for (step, dir, error) in bad {
        let moved_to = move_aside(run_dir, &dir).map_err(|source| CheckpointError::Io {
            path: dir.clone(),
            source,
        })?;
        damaged.push(Damaged {
            step,
            error,
            moved_to,
        });
    }
    Ok((found, damaged))
}

/// One warning line per damaged checkpoint and what using `from` instead means: the steps a
/// resume replays, or (`resume` false) the step a read-only command uses.
pub fn fallback_warnings(damaged: &[Damaged], from: Option<u64>, resume: bool) -> Vec<String> {
    let mut lines: Vec<String> = damaged
        .iter()
        .map(|d| {
            format!(
                "checkpoint step {} is damaged ({}); moved to {}",
                d.step,
                d.error,
                d.moved_to.display()
            )
        })
        .collect();
    if let (Some(newest), Some(from)) = (damaged.iter().map(|d| d.step).max(), from) {
        lines.push(if resume {
            format!(
                "resuming from the newest intact checkpoint, step {from}: steps {}..={newest} \
                 will be replayed",
                from + 1
            )
        } else {
            format!("using the newest intact checkpoint, step {from}, instead of step {newest}")
        });
    }
    lines
}
