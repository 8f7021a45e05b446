//! Seeds → per-arm statistics: final and best of each metric, the paired gap to the reference
//! arm, throughput and wall time; and the budget table (first metric at each step budget).

use std::collections::BTreeMap;

use crate::collect::RunRecord;
use crate::stats::Stats;

/// One arm's statistics over its finished seeds.
#[derive(Debug, Clone)]
pub struct ArmStats {
    pub arm: String,
    pub arm_name: String,
    pub axes: Vec<(String, String)>,
    pub seeds: Vec<u64>,
    /// Runs of this arm without `summary.json` (not counted anywhere else).
    pub unfinished: usize,
    /// Of those, the runs whose last attempt failed (`failed.json`).
    pub failed: usize,
    /// Per metric: (final, best).
    pub metrics: Vec<(String, Option<Stats>, Option<Stats>)>,
    /// Final first metric minus the reference arm's, paired by seed.
    pub gap: Option<Stats>,
    pub tokens_per_sec: Option<Stats>,
    pub wall_secs: Option<Stats>,
}

/// The arms in sweep-file order.
pub fn arms(records: &[RunRecord], metrics: &[String], reference: Option<&str>) -> Vec<ArmStats> {
    let groups = group(records);
    let first = metrics.first().map(String::as_str).unwrap_or("val/loss");
    let finals = |runs: &[&RunRecord]| -> BTreeMap<u64, f64> {
        runs.iter()
            .filter(|r| r.finished())
            .filter_map(|r| Some((r.meta.seed, r.final_value(first)?)))
            .collect()
    };
    groups
        .iter()
        .map(|runs| {
            let m = &runs[0].meta;
            let done: Vec<&RunRecord> = runs.iter().copied().filter(|r| r.finished()).collect();
            let stat = |f: &dyn Fn(&RunRecord) -> Option<f64>| {
                Stats::of(&done.iter().filter_map(|r| f(r)).collect::<Vec<_>>())
            };
            let metric_stats = metrics
                .iter()
                .map(|k| {
                    (
                        k.clone(),
                        stat(&|r| r.final_value(k)),
                        stat(&|r| r.best_value(k)),
                    )
                })
                .collect();
            let gap = reference.and_then(|reference| {
                let partner = groups
                    .iter()
                    .find(|g| g[0].meta.arm_name == reference && g[0].meta.axes == m.axes)?;
                let (mine, theirs) = (finals(runs), finals(partner));
                let diffs: Vec<f64> = mine
                    .iter()
                    .filter_map(|(s, v)| Some(v - theirs.get(s)?))
                    .collect();
                Stats::of(&diffs)
            });
            ArmStats {
                arm: m.arm.clone(),
                arm_name: m.arm_name.clone(),
                axes: m.axes.clone(),
                seeds: done.iter().map(|r| r.meta.seed).collect(),
                unfinished: runs.len() - done.len(),
                failed: runs.iter().filter(|r| r.failed()).count(),
                metrics: metric_stats,
                gap,
                tokens_per_sec: stat(&|r| r.tokens_per_sec()),
                wall_secs: stat(&|r| r.summary.as_ref().map(|s| s.wall_secs)),
            }
        })
        .collect()
}

/// Runs grouped by arm, in sweep-file order.
pub fn group(records: &[RunRecord]) -> Vec<Vec<&RunRecord>> {
    let mut map: BTreeMap<(usize, String), Vec<&RunRecord>> = BTreeMap::new();
    for r in records {
        map.entry((r.meta.order, r.meta.arm.clone()))
            .or_default()
            .push(r);
    }
    map.into_values().collect()
}

/// The budget table: rows are arms without the budget axis, columns the budgets.
#[derive(Debug, Clone)]
pub struct BudgetTable {
    pub metric: String,
    pub budgets: Vec<u64>,
    /// (row label, arm name, one cell per budget).
    pub rows: Vec<(String, String, Vec<Option<Stats>>)>,
}

/// The first metric at each budget: a run whose arm takes the budget axis contributes its final
/// value at that budget; a run with schedule budgets (WSD-S) contributes its value logged at each
/// budget step. Only finished runs count.
pub fn budget_table(records: &[RunRecord], metric: &str, axis: &str) -> BudgetTable {
    // row label → budget → values; rows keep first-seen (sweep) order.
    let mut rows: Vec<(String, String, BTreeMap<u64, Vec<f64>>)> = Vec::new();
    let mut budgets = std::collections::BTreeSet::new();
    for runs in group(records) {
        for r in runs.iter().filter(|r| r.finished()) {
            let m = &r.meta;
            let mut points = Vec::new();
            let others: Vec<String> = m
                .axes
                .iter()
                .filter(|(k, _)| k != axis)
                .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap_or(k)))
                .collect();
            if let Some((_, b)) = m.axes.iter().find(|(k, _)| k == axis) {
                if let (Ok(b), Some(v)) = (b.parse::<u64>(), r.final_value(metric)) {
                    points.push((b, v));
                }
            } else {
                for &b in &r.budgets {
                    if let Some(v) = r.value_at(metric, b) {
                        points.push((b, v));
                    }
                }
                if points.is_empty()
                    && let Some(v) = r.final_value(metric)
                {
                    points.push((r.steps, v));
                }
            }
            let label = std::iter::once(m.arm_name.clone())
                .chain(others)
                .collect::<Vec<_>>()
                .join(",");
            let idx = match rows.iter().position(|row| row.0 == label) {
                Some(i) => i,
                None => {
                    rows.push((label, m.arm_name.clone(), BTreeMap::new()));
                    rows.len() - 1
                }
            };
            for (b, v) in points {
                budgets.insert(b);
                rows[idx].2.entry(b).or_default().push(v);
            }
        }
    }
    let budgets: Vec<u64> = budgets.into_iter().collect();
    BudgetTable {
        metric: metric.to_owned(),
        rows: rows
            .into_iter()
            .map(|(label, name, cells)| {
                let c = budgets
                    .iter()
                    .map(|b| cells.get(b).and_then(|v| Stats::of(v)))
                    .collect();
                (label, name, c)
            })
            .collect(),
        budgets,
    }
}

/// Seed statistics of `metric` at each logged step for one arm: (step, stats) where every
/// finished seed logged the step.
pub fn curve(runs: &[&RunRecord], metric: &str) -> Vec<(u64, Stats)> {
    let done: Vec<&&RunRecord> = runs.iter().filter(|r| r.finished()).collect();
    let mut at: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for r in &done {
        for &(s, v) in r.series.get(metric).map(Vec::as_slice).unwrap_or(&[]) {
            at.entry(s).or_default().push(v);
        }
    }
    at.into_iter()
        .filter(|(_, v)| v.len() == done.len() && !v.is_empty())
        .filter_map(|(s, v)| Some((s, Stats::of(&v)?)))
        .collect()
}
