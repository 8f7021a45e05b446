//! The run directory: where a run lives, whether it may start or resume there, and the recipe
//! it was started with.

use std::path::{Path, PathBuf};

use super::error::TrainError;
use super::run::TrainOptions;
use super::summary::{SUMMARY_FILE, recipe_hash};
use crate::checkpoint::{self, write_atomic};
use crate::sections::Recipe;

/// A run directory ready for the run: fresh (stale leftovers removed, recipe written) or holding
/// the checkpoint to resume from.
pub struct RunDir {
    pub path: PathBuf,
    /// Hash of the resolved recipe (checkpoints and `summary.json` carry it).
    pub hash: String,
    /// The checkpoint to resume from (`--resume` only).
    pub resume_from: Option<PathBuf>,
}

impl RunDir {
    /// Where the run lives and whether it may start (or resume) there; reads, writes nothing
    /// (`train --check`).
    pub fn plan(
        recipe: &Recipe,
        resolved_toml: &str,
        opts: &TrainOptions,
    ) -> Result<RunDir, TrainError> {
        let run = &recipe.run;
        let path = opts
            .run_dir
            .clone()
            .unwrap_or_else(|| Path::new(&run.out_dir).join(&run.name));
        let existing = checkpoint::latest(&path);
        match (opts.resume, &existing) {
            (false, Some(_)) => return Err(TrainError::RunExists(path)),
            (true, None) => return Err(TrainError::NothingToResume(path)),
            _ => {}
        }
        Ok(RunDir {
            hash: recipe_hash(resolved_toml),
            resume_from: existing.filter(|_| opts.resume),
            path,
        })
    }

    /// [`RunDir::plan`], then a fresh start's directory: stale leftovers removed, recipe written.
    pub fn prepare(
        recipe: &Recipe,
        resolved_toml: &str,
        opts: &TrainOptions,
    ) -> Result<RunDir, TrainError> {
        let mut dir = Self::plan(recipe, resolved_toml, opts)?;
        if opts.resume {
            // Verified here, not in `plan` (which writes nothing): damaged checkpoints move aside.
            dir.resume_from = Some(intact(&dir.path)?);
        }
        let path = &dir.path;
        if !opts.resume {
            // A fresh start may find the leftovers of a run killed before its first checkpoint:
            // its metrics would otherwise be appended to.
            for stale in [SUMMARY_FILE, "metrics.jsonl"] {
                remove_if_exists(&path.join(stale)).map_err(TrainError::io(path))?;
            }
            remove_dir_if_exists(&path.join("tb")).map_err(TrainError::io(path))?;
            write_atomic(&path.join("recipe.toml"), resolved_toml.as_bytes())
                .map_err(TrainError::io(path))?;
        }
        Ok(dir)
    }
}

/// The newest checkpoint that verifies; damaged newer ones are moved aside with a warning
/// saying which steps will be replayed.
fn intact(run: &Path) -> Result<PathBuf, TrainError> {
    let (found, damaged) = checkpoint::newest_intact(run)?;
    let from = found
        .as_deref()
        .and_then(|d| checkpoint::saved_step(d).ok());
    for line in checkpoint::fallback_warnings(&damaged, from, true) {
        eprintln!("warning: {line}");
    }
    found.ok_or_else(|| TrainError::NoIntactCheckpoint {
        run: run.to_path_buf(),
        damaged: damaged
            .iter()
            .map(|d| d.error.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
