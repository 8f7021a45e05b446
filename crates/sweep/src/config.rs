//! The sweep file (TOML): `[sweep]` (base recipe, seeds, shared overrides), `[axes]` (a grid over
//! recipe keys), `[[arms]]` (named override sets) and `[report]` (what the tables compare).
//! It is read with the recipe loader, so its errors name file, line and key too.

use std::path::PathBuf;

use nibble_train::recipe::KeyError;
use serde::Deserialize;

use crate::flatten::flatten;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub sweep: SweepSection,
    /// `key = [values]` over recipe keys (`"precision.default" = ["bf16", "f32"]`); the runs are
    /// the product of all axes (per arm, minus its `skip_axes`).
    #[serde(default)]
    pub axes: toml::Table,
    /// Named arms, each a set of overrides. None: one arm named `base`.
    #[serde(default)]
    pub arms: Vec<ArmConfig>,
    #[serde(default)]
    pub report: ReportConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSection {
    /// The study's name (shown in reports).
    pub name: String,
    /// The base recipe, relative to the sweep file.
    pub base: PathBuf,
    /// Where run directories go, relative to the sweep file.
    #[serde(default = "default_out_dir")]
    pub out_dir: PathBuf,
    /// One run per arm and seed; `run.seed` seeds both the init and the data order, so all arms
    /// of one seed see the same batches.
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// Overrides applied to every run, before the arm's and the axes'.
    #[serde(default)]
    pub set: toml::Table,
    /// Runs trained at once (each in its own thread); `--jobs` overrides it.
    #[serde(default = "default_jobs")]
    pub jobs: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArmConfig {
    pub name: String,
    #[serde(default)]
    pub set: toml::Table,
    /// Axes that do not apply to this arm (e.g. a WSD-S arm that covers every budget in one run
    /// skips the `run.steps` axis).
    #[serde(default)]
    pub skip_axes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportConfig {
    /// Gaps are reported against this arm (matched on the same axis values and seeds).
    #[serde(default)]
    pub reference: Option<String>,
    /// Metric keys of `metrics.jsonl` to tabulate; lower is better.
    #[serde(default = "default_metrics")]
    pub metrics: Vec<String>,
    /// An axis whose values are step budgets (`run.steps`): adds a table of the first metric at
    /// each budget, where runs with schedule budgets (WSD-S) contribute their budget checkpoints.
    #[serde(default)]
    pub budget_axis: Option<String>,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            reference: None,
            metrics: default_metrics(),
            budget_axis: None,
        }
    }
}

fn default_out_dir() -> PathBuf {
    PathBuf::from("runs")
}
fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_jobs() -> usize {
    1
}
fn default_metrics() -> Vec<String> {
    vec!["val/loss".into(), "val/bpb".into()]
}

/// Keys the sweep sets itself; a sweep file must not set them.
pub const RESERVED_KEYS: [&str; 3] = ["run.seed", "run.name", "run.out_dir"];

impl SweepFile {
    /// Axis keys with their values, in key order.
    pub fn axes(&self) -> Vec<(String, Vec<toml::Value>)> {
        flatten(&self.axes)
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::Array(a) => (k, a),
                other => (k, vec![other]),
            })
            .collect()
    }

    pub fn arm_names(&self) -> Vec<String> {
        if self.arms.is_empty() {
            vec!["base".to_owned()]
        } else {
            self.arms.iter().map(|a| a.name.clone()).collect()
        }
    }

    pub fn validate(&self) -> Result<(), KeyError> {
        let s = &self.sweep;
        if s.name.trim().is_empty() {
            return Err(KeyError::new("sweep.name", "must not be empty"));
        }
        if s.seeds.is_empty() {
            return Err(KeyError::new("sweep.seeds", "needs at least one seed"));
        }
        let mut seen = std::collections::BTreeSet::new();
        if !s.seeds.iter().all(|x| seen.insert(*x)) {
            return Err(KeyError::new("sweep.seeds", "seeds must be distinct"));
        }
        if s.jobs == 0 {
            return Err(KeyError::new("sweep.jobs", "must be at least 1"));
        }
        reserved("sweep.set", &s.set)?;
        let axes = self.axes();
        for (k, vals) in &axes {
            if vals.is_empty() {
                return Err(KeyError::new(
                    format!("axes.{k}"),
                    "needs at least one value",
                ));
            }
            if RESERVED_KEYS.contains(&k.as_str()) {
                return Err(KeyError::new(
                    format!("axes.{k}"),
                    "is set by the sweep itself (use sweep.seeds for seeds)",
                ));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, arm) in self.arms.iter().enumerate() {
            let at = format!("arms[{i}]");
            if arm.name.is_empty() || !arm.name.chars().all(name_char) {
                return Err(KeyError::new(
                    format!("{at}.name"),
                    "use letters, digits, `-`, `_` and `.` only (it names directories)",
                ));
            }
            if !names.insert(arm.name.as_str()) {
                return Err(KeyError::new(
                    format!("{at}.name"),
                    format!("arm `{}` is defined twice", arm.name),
                ));
            }
            reserved(&format!("{at}.set"), &arm.set)?;
            for (j, k) in arm.skip_axes.iter().enumerate() {
                if !axes.iter().any(|(a, _)| a == k) {
                    return Err(KeyError::new(
                        format!("{at}.skip_axes[{j}]"),
                        format!("`{k}` is not an axis of this sweep"),
                    ));
                }
            }
        }
        let r = &self.report;
        if let Some(reference) = &r.reference
            && !self.arm_names().contains(reference)
        {
            return Err(KeyError::new(
                "report.reference",
                format!("no arm is named `{reference}`"),
            ));
        }
        if r.metrics.is_empty() {
            return Err(KeyError::new("report.metrics", "name at least one metric"));
        }
        if let Some(b) = &r.budget_axis
            && !axes.iter().any(|(a, _)| a == b)
        {
            return Err(KeyError::new(
                "report.budget_axis",
                format!("`{b}` is not an axis of this sweep"),
            ));
        }
        Ok(())
    }
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn reserved(at: &str, set: &toml::Table) -> Result<(), KeyError> {
    for (k, _) in flatten(set) {
        if RESERVED_KEYS.contains(&k.as_str()) {
            return Err(KeyError::new(
                format!("{at}.{k}"),
                "is set by the sweep itself (per arm and seed)",
            ));
        }
    }
    Ok(())
}
