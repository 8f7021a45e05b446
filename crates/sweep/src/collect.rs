//! Reads run directories (those holding `sweep.json`) under a sweep directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nibble_train::recipe::load_recipe_str;
use nibble_train::schedule::Schedule;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{RunSummaryFile, SUMMARY_FILE};

use crate::error::SweepError;
use crate::failure::RunFailure;
use crate::meta::{META_FILE, RunMeta};

/// One run directory's results.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub dir: PathBuf,
    pub meta: RunMeta,
    /// metric → (step, value), in step order.
    pub series: BTreeMap<String, Vec<(u64, f64)>>,
    /// Present once the run has done all its steps.
    pub summary: Option<RunSummaryFile>,
    /// The last attempt's failure (`failed.json`), for a run that has not finished.
    pub failure: Option<RunFailure>,
    /// The run's `run.steps`.
    pub steps: u64,
    /// Budget checkpoint steps of its schedule (WSD-S), empty otherwise.
    pub budgets: Vec<u64>,
}

impl RunRecord {
    pub fn finished(&self) -> bool {
        self.summary.is_some()
    }

    /// Not finished, and its last attempt failed.
    pub fn failed(&self) -> bool {
        !self.finished() && self.failure.is_some()
    }

    /// The metric's last logged value.
    pub fn final_value(&self, metric: &str) -> Option<f64> {
        self.series.get(metric)?.last().map(|p| p.1)
    }

    /// The metric's lowest logged value.
    pub fn best_value(&self, metric: &str) -> Option<f64> {
        self.series
            .get(metric)?
            .iter()
            .map(|p| p.1)
            .reduce(f64::min)
    }

    /// The metric's value logged at exactly `step`.
    pub fn value_at(&self, metric: &str, step: u64) -> Option<f64> {
        self.series
            .get(metric)?
            .iter()
            .find(|p| p.0 == step)
            .map(|p| p.1)
    }

    /// Mean training throughput over the logged intervals.
    pub fn tokens_per_sec(&self) -> Option<f64> {
        let s = self.series.get("train/tokens_per_sec")?;
        (!s.is_empty()).then(|| s.iter().map(|p| p.1).sum::<f64>() / s.len() as f64)
    }
}

/// Every run directory under `root` (searched a few levels deep), in path order.
pub fn collect(root: &Path) -> Result<Vec<RunRecord>, SweepError> {
    let mut dirs = Vec::new();
    find(root, 4, &mut dirs).map_err(SweepError::io(root))?;
    dirs.sort();
    if dirs.is_empty() {
        return Err(SweepError::NoRuns(root.to_owned()));
    }
    dirs.iter().map(|d| read_run(d)).collect()
}

fn find(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.join(META_FILE).is_file() {
        out.push(dir.to_owned());
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            find(&entry.path(), depth - 1, out)?;
        }
    }
    Ok(())
}

/// Reads one run directory.
pub fn read_run(dir: &Path) -> Result<RunRecord, SweepError> {
    let meta = RunMeta::read(dir)?;
    let format = |path: &Path, message: String| SweepError::Format {
        path: path.to_owned(),
        message,
    };
    let mut series: BTreeMap<String, Vec<(u64, f64)>> = BTreeMap::new();
    let mpath = dir.join("metrics.jsonl");
    if let Ok(text) = std::fs::read_to_string(&mpath) {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| format(&mpath, format!("line {}: {e}", i + 1)))?;
            let step = v["step"]
                .as_u64()
                .ok_or_else(|| format(&mpath, format!("line {}: no integer `step`", i + 1)))?;
            if let Some(obj) = v.as_object() {
                for (k, x) in obj {
                    if let (false, Some(x)) = (k == "step", x.as_f64()) {
                        series.entry(k.clone()).or_default().push((step, x));
                    }
                }
            }
        }
    }
    for s in series.values_mut() {
        s.sort_by_key(|p| p.0);
    }
    let spath = dir.join(SUMMARY_FILE);
    let summary = match std::fs::read_to_string(&spath) {
        Ok(t) => Some(serde_json::from_str(&t).map_err(|e| format(&spath, e.to_string()))?),
        Err(_) => None,
    };
    let rpath = dir.join("recipe.toml");
    let (steps, budgets) = match std::fs::read_to_string(&rpath) {
        Ok(text) => {
            let recipe = load_recipe_str::<Recipe>(&rpath, &text, &[], |_| Ok(()))
                .map_err(|e| format(&rpath, e.to_string()))?
                .value;
            let budgets = Schedule::new(&recipe.schedule, recipe.run.steps)
                .map(|s| s.checkpoint_steps().to_vec())
                .unwrap_or_default();
            (recipe.run.steps, budgets)
        }
        Err(_) => (0, vec![]),
    };
    let failure = match summary {
        Some(_) => None,
        None => RunFailure::read(dir)?,
    };
    Ok(RunRecord {
        dir: dir.to_owned(),
        meta,
        series,
        summary,
        failure,
        steps,
        budgets,
    })
}
