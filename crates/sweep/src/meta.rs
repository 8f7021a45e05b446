//! `sweep.json`: what a run directory is within its sweep (arm, axis values, seed, definition
//! hash, and what the report compares). With `metrics.jsonl` and `summary.json` it is all a
//! report needs, so reports are rebuilt from run directories alone.

use std::path::Path;

use nibble_train::checkpoint::write_atomic;
use serde::{Deserialize, Serialize};

use crate::error::SweepError;
use crate::expand::{Plan, PlannedRun};

pub const META_FILE: &str = "sweep.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    pub sweep: String,
    pub arm: String,
    pub arm_name: String,
    pub axes: Vec<(String, String)>,
    pub seed: u64,
    /// SHA-256 of the run's resolved recipe (`recipe.toml`).
    pub recipe_hash: String,
    pub reference: Option<String>,
    pub metrics: Vec<String>,
    pub budget_axis: Option<String>,
    /// Position of the arm in the sweep file (tables keep that order).
    pub order: usize,
}

impl RunMeta {
    pub fn of(plan: &Plan, run: &PlannedRun) -> RunMeta {
        let r = &plan.file.report;
        let order = plan.runs.iter().position(|p| p.arm == run.arm).unwrap_or(0);
        RunMeta {
            sweep: plan.file.sweep.name.clone(),
            arm: run.arm.clone(),
            arm_name: run.arm_name.clone(),
            axes: run.axis_values.clone(),
            seed: run.seed,
            recipe_hash: run.hash.clone(),
            reference: r.reference.clone(),
            metrics: r.metrics.clone(),
            budget_axis: r.budget_axis.clone(),
            order,
        }
    }

    pub fn write(&self, run_dir: &Path) -> Result<(), SweepError> {
        std::fs::create_dir_all(run_dir).map_err(SweepError::io(run_dir))?;
        let path = run_dir.join(META_FILE);
        let text = serde_json::to_string_pretty(self).expect("meta json");
        write_atomic(&path, text.as_bytes()).map_err(SweepError::io(&path))
    }

    pub fn read(run_dir: &Path) -> Result<RunMeta, SweepError> {
        let path = run_dir.join(META_FILE);
        let text = std::fs::read_to_string(&path).map_err(SweepError::io(&path))?;
        serde_json::from_str(&text).map_err(|e| SweepError::Format {
            path,
            message: e.to_string(),
        })
    }
}
