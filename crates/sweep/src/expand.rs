//! Grid expansion: arms × axis values × seeds, each a fully resolved recipe with its own run
//! directory and hash. Every recipe is validated here, before any run starts.

use std::path::{Path, PathBuf};

use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::recipe_hash;

use crate::config::SweepFile;
use crate::error::SweepError;
use crate::flatten::{flatten, label, override_arg};

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    /// The arm as reported: its name plus the axis values it takes (`cosine,steps=100`).
    pub arm: String,
    /// The `[[arms]]` name (`base` without arms).
    pub arm_name: String,
    /// `(axis key, value label)` for each axis that applies to this arm.
    pub axis_values: Vec<(String, String)>,
    pub seed: u64,
    pub run_dir: PathBuf,
    /// The `--set` arguments applied to the base recipe, in order.
    pub overrides: Vec<String>,
    pub recipe: Recipe,
    pub merged_toml: String,
    /// SHA-256 of `merged_toml`: identifies the run's definition.
    pub hash: String,
}

/// A loaded sweep file and its expanded runs.
#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub file: SweepFile,
    /// The directory holding the run directories.
    pub runs_dir: PathBuf,
    pub runs: Vec<PlannedRun>,
}

impl Plan {
    /// Reads and validates `path` and expands its grid.
    pub fn load(path: &Path) -> Result<Plan, SweepError> {
        let loaded = load_recipe::<SweepFile>(path, &[], SweepFile::validate)?;
        Plan::expand(path, loaded.value)
    }

    /// Expands `file` (read from `path`, which anchors its relative paths).
    pub fn expand(path: &Path, file: SweepFile) -> Result<Plan, SweepError> {
        let dir = path.parent().unwrap_or(Path::new(""));
        let base = dir.join(&file.sweep.base);
        let runs_dir = dir.join(&file.sweep.out_dir);
        let axes = file.axes();
        let short = short_keys(&axes.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
        let arms: Vec<(String, toml::Table, Vec<String>)> = if file.arms.is_empty() {
            vec![("base".into(), toml::Table::new(), vec![])]
        } else {
            file.arms
                .iter()
                .map(|a| (a.name.clone(), a.set.clone(), a.skip_axes.clone()))
                .collect()
        };
        let mut runs = Vec::new();
        for (arm_name, arm_set, skip) in &arms {
            let live: Vec<usize> = (0..axes.len())
                .filter(|&i| !skip.contains(&axes[i].0))
                .collect();
            for combo in product(&live.iter().map(|&i| axes[i].1.len()).collect::<Vec<_>>()) {
                let picks: Vec<(usize, &toml::Value)> = live
                    .iter()
                    .zip(&combo)
                    .map(|(&i, &j)| (i, &axes[i].1[j]))
                    .collect();
                let axis_values: Vec<(String, String)> = picks
                    .iter()
                    .map(|(i, v)| (axes[*i].0.clone(), label(v)))
                    .collect();
                let mut parts = Vec::new();
                // Without named arms and with axes, the axis values alone name the arm.
                if !file.arms.is_empty() || picks.is_empty() {
                    parts.push(arm_name.clone());
                }
                parts.extend(
                    picks
                        .iter()
                        .map(|(i, v)| format!("{}={}", short[*i], label(v))),
                );
                let arm = parts.join(",");
                let arm_dir = dir_name(&arm);
                for &seed in &file.sweep.seeds {
                    let mut overrides: Vec<String> = flatten(&file.sweep.set)
                        .iter()
                        .chain(flatten(arm_set).iter())
                        .map(|(k, v)| override_arg(k, v))
                        .collect();
                    overrides.extend(picks.iter().map(|(i, v)| override_arg(&axes[*i].0, v)));
                    let out_dir = Path::new(&file.sweep.out_dir).join(&arm_dir);
                    overrides.push(override_arg(
                        "run.out_dir",
                        &toml::Value::String(out_dir.to_string_lossy().into_owned()),
                    ));
                    overrides.push(override_arg(
                        "run.name",
                        &toml::Value::String(format!("seed-{seed}")),
                    ));
                    overrides.push(override_arg("run.seed", &toml::Value::Integer(seed as i64)));
                    let loaded = load_recipe::<Recipe>(&base, &overrides, Recipe::validate)
                        .map_err(|e| SweepError::Arm {
                            sweep: path.to_owned(),
                            arm: arm.clone(),
                            seed,
                            message: e.to_string(),
                        })?;
                    runs.push(PlannedRun {
                        arm: arm.clone(),
                        arm_name: arm_name.clone(),
                        axis_values: axis_values.clone(),
                        seed,
                        run_dir: runs_dir.join(&arm_dir).join(format!("seed-{seed}")),
                        overrides,
                        hash: recipe_hash(&loaded.merged_toml),
                        merged_toml: loaded.merged_toml,
                        recipe: loaded.value,
                    });
                }
            }
        }
        Ok(Plan {
            path: path.to_owned(),
            file,
            runs_dir,
            runs,
        })
    }
}

/// Every index combination of dimensions `dims` (row-major; one empty combination for none).
pub fn product(dims: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &d in dims {
        out = out
            .into_iter()
            .flat_map(|c| {
                (0..d).map(move |j| {
                    let mut c = c.clone();
                    c.push(j);
                    c
                })
            })
            .collect();
    }
    out
}

/// The last segment of each key (`run.steps` → `steps`), or the whole key where two would clash.
fn short_keys(keys: &[String]) -> Vec<String> {
    let last = |k: &String| k.rsplit('.').next().unwrap_or(k).to_owned();
    keys.iter()
        .map(|k| {
            let s = last(k);
            if keys.iter().filter(|o| last(o) == s).count() > 1 {
                k.clone()
            } else {
                s
            }
        })
        .collect()
}

/// A directory name for an arm label: `,` → `_`, `=` → `-`, anything unusual → `_`.
pub fn dir_name(arm: &str) -> String {
    arm.chars()
        .map(|c| match c {
            ',' => '_',
            '=' => '-',
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') => c,
            _ => '_',
        })
        .collect()
}
