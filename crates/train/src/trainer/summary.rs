//! The end of a run: `summary.json`, whose presence means "finished".

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::TrainError;
use crate::checkpoint::write_atomic;

/// Written (atomically) when a run has done all its steps: its presence means "finished".
pub const SUMMARY_FILE: &str = "summary.json";

/// The content of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryFile {
    /// SHA-256 of the resolved recipe the run was trained with (`recipe.toml`).
    pub recipe_hash: String,
    pub steps: u64,
    pub tokens: u64,
    /// Validation loss (nats/token) and bits/byte after the last step.
    pub val_loss: f64,
    pub val_bpb: f64,
    pub best_val_loss: Option<f64>,
    pub unigram_bpb: f64,
    pub params: usize,
    /// Wall-clock seconds summed over every process that worked on the run.
    pub wall_secs: f64,
}

impl RunSummaryFile {
    pub fn write(&self, run_dir: &Path) -> Result<(), TrainError> {
        let text = serde_json::to_string_pretty(self).expect("summary json");
        write_atomic(&run_dir.join(SUMMARY_FILE), text.as_bytes()).map_err(TrainError::io(run_dir))
    }
}

/// SHA-256 (hex) of a resolved recipe, as stored in checkpoints and `summary.json`.
pub fn recipe_hash(resolved_toml: &str) -> String {
    format!("{:x}", Sha256::digest(resolved_toml.as_bytes()))
}
