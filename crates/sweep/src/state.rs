//! What a planned run's directory already holds: finished (skip), interrupted (resume from the
//! newest checkpoint), failed last time (retry), nothing usable (start), or a run of another
//! definition (refuse).

use std::path::Path;

use nibble_train::checkpoint;
use nibble_train::trainer::{RunSummaryFile, SUMMARY_FILE, recipe_hash};

use crate::error::SweepError;
use crate::expand::PlannedRun;
use crate::failure::RunFailure;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunState {
    /// `summary.json` with this definition's hash: nothing to do.
    Finished,
    /// Checkpoints of this definition but no summary: resume from `checkpoint`.
    Interrupted { checkpoint: String },
    /// No directory, or one killed before its first checkpoint: start from scratch.
    New,
    /// The last attempt failed (`failed.json`): retried, from `checkpoint` if there is one.
    Failed {
        message: String,
        checkpoint: Option<String>,
    },
}

impl RunState {
    pub fn describe(&self) -> String {
        match self {
            RunState::Finished => "finished (skip)".into(),
            RunState::Interrupted { checkpoint } => format!("resume from {checkpoint}"),
            RunState::New => "new".into(),
            RunState::Failed { checkpoint, .. } => match checkpoint {
                Some(c) => format!("FAILED (retry from {c})"),
                None => "FAILED (retry anew)".into(),
            },
        }
    }

    /// Whether running the sweep trains this run (from its checkpoint: `Some(true)`).
    pub fn pending_resume(&self) -> Option<bool> {
        match self {
            RunState::Finished => None,
            RunState::Interrupted { .. } => Some(true),
            RunState::New => Some(false),
            RunState::Failed { checkpoint, .. } => Some(checkpoint.is_some()),
        }
    }
}

/// Inspects `run.run_dir`; a directory made by a different definition is an error.
pub fn inspect(run: &PlannedRun) -> Result<RunState, SweepError> {
    let dir = &run.run_dir;
    let conflict = |found: String| SweepError::Conflict {
        dir: dir.clone(),
        found,
        wanted: run.hash.clone(),
    };
    let summary_path = dir.join(SUMMARY_FILE);
    if let Some(text) = read_optional(&summary_path)? {
        let s: RunSummaryFile = serde_json::from_str(&text).map_err(|e| SweepError::Format {
            path: summary_path.clone(),
            message: e.to_string(),
        })?;
        return if s.recipe_hash == run.hash {
            Ok(RunState::Finished)
        } else {
            Err(conflict(s.recipe_hash))
        };
    }
    if let Some(text) = read_optional(&dir.join("recipe.toml"))? {
        let found = recipe_hash(&text);
        if found != run.hash {
            return Err(conflict(found));
        }
    }
    let checkpoint = checkpoint::latest(dir).map(|c| {
        c.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(match (RunFailure::read(dir)?, checkpoint) {
        (Some(f), checkpoint) => RunState::Failed {
            message: f.message,
            checkpoint,
        },
        (None, Some(checkpoint)) => RunState::Interrupted { checkpoint },
        (None, None) => RunState::New,
    })
}

fn read_optional(path: &Path) -> Result<Option<String>, SweepError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SweepError::io(path)(e)),
    }
}
