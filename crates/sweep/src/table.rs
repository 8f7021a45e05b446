//! Markdown and CSV renderings of the aggregated results.

use crate::aggregate::{ArmStats, BudgetTable};
use crate::collect::RunRecord;

const DIGITS: usize = 4;

/// The per-arm Markdown table.
pub fn arms_markdown(arms: &[ArmStats], reference: Option<&str>) -> String {
    let metrics: Vec<&String> = arms
        .first()
        .map(|a| a.metrics.iter().map(|m| &m.0).collect())
        .unwrap_or_default();
    let mut head = vec!["arm".to_owned(), "seeds".to_owned()];
    for m in &metrics {
        head.push(format!("final {m}"));
        head.push(format!("best {m}"));
    }
    if let (Some(r), Some(m)) = (reference, metrics.first()) {
        head.push(format!("Δ final {m} vs {r}"));
    }
    head.push("tokens/s".into());
    head.push("wall s".into());
    let mut out = row(&head);
    out += &row(&head.iter().map(|_| "---".to_owned()).collect::<Vec<_>>());
    let opt = |s: &Option<crate::stats::Stats>, d: usize| s.map_or("–".to_owned(), |s| s.fmt(d));
    for a in arms {
        let mut cells = vec![format!("`{}`", a.arm), seeds_cell(a)];
        for (_, fin, best) in &a.metrics {
            cells.push(opt(fin, DIGITS));
            cells.push(opt(best, DIGITS));
        }
        if reference.is_some() {
            cells.push(match (&a.gap, Some(a.arm_name.as_str()) == reference) {
                (_, true) => "(reference)".into(),
                (Some(g), _) => g.fmt_signed(DIGITS),
                (None, _) => "–".into(),
            });
        }
        cells.push(opt(&a.tokens_per_sec, 0));
        cells.push(opt(&a.wall_secs, 0));
        out += &row(&cells);
    }
    out
}

fn seeds_cell(a: &ArmStats) -> String {
    let mut s = a.seeds.len().to_string();
    if a.failed > 0 {
        s += &format!(" (+{} failed)", a.failed);
    }
    if a.unfinished > a.failed {
        s += &format!(" (+{} unfinished)", a.unfinished - a.failed);
    }
    s
}

/// The budget table in Markdown; the lowest mean of each column is bold.
pub fn budget_markdown(t: &BudgetTable, axis: &str) -> String {
    let mut head = vec!["arm".to_owned()];
    head.extend(
        t.budgets
            .iter()
            .map(|b| format!("{} at {axis} = {b}", t.metric)),
    );
    let mut out = row(&head);
    out += &row(&head.iter().map(|_| "---".to_owned()).collect::<Vec<_>>());
    let best: Vec<Option<f64>> = (0..t.budgets.len())
        .map(|j| {
            t.rows
                .iter()
                .filter_map(|r| r.2[j].map(|s| s.mean))
                .reduce(f64::min)
        })
        .collect();
    for (label, _, cells) in &t.rows {
        let mut c = vec![format!("`{label}`")];
        for (j, s) in cells.iter().enumerate() {
            c.push(match s {
                Some(s) if Some(s.mean) == best[j] => format!("**{}**", s.fmt(DIGITS)),
                Some(s) => s.fmt(DIGITS),
                None => "–".into(),
            });
        }
        out += &row(&c);
    }
    out
}

fn row(cells: &[String]) -> String {
    format!("| {} |\n", cells.join(" | "))
}

/// One line per arm: means and standard deviations as plain numbers.
pub fn arms_csv(arms: &[ArmStats]) -> String {
    let mut head = vec![
        "arm".to_owned(),
        "arm_name".into(),
        "axes".into(),
        "n".into(),
    ];
    if let Some(a) = arms.first() {
        for (m, _, _) in &a.metrics {
            for what in ["final", "best"] {
                head.push(format!("{what} {m} mean"));
                head.push(format!("{what} {m} std"));
            }
        }
    }
    head.extend(
        ["gap mean", "gap std", "tokens_per_sec", "wall_secs"]
            .iter()
            .map(|s| s.to_string()),
    );
    let mut out = csv_row(&head);
    let num = |s: Option<crate::stats::Stats>| match s {
        Some(s) => [s.mean.to_string(), s.std.to_string()],
        None => [String::new(), String::new()],
    };
    for a in arms {
        let axes: Vec<String> = a.axes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut c = vec![
            a.arm.clone(),
            a.arm_name.clone(),
            axes.join(";"),
            a.seeds.len().to_string(),
        ];
        for (_, fin, best) in &a.metrics {
            c.extend(num(*fin));
            c.extend(num(*best));
        }
        c.extend(num(a.gap));
        c.push(
            a.tokens_per_sec
                .map_or(String::new(), |s| s.mean.to_string()),
        );
        c.push(a.wall_secs.map_or(String::new(), |s| s.mean.to_string()));
        out += &csv_row(&c);
    }
    out
}

/// One line per run directory.
pub fn runs_csv(records: &[RunRecord], metrics: &[String]) -> String {
    let mut head = vec![
        "arm".to_owned(),
        "seed".into(),
        "finished".into(),
        "failure".into(),
        "steps".into(),
    ];
    for m in metrics {
        head.push(format!("final {m}"));
        head.push(format!("best {m}"));
    }
    head.extend(["tokens_per_sec".into(), "wall_secs".into(), "dir".into()]);
    let mut out = csv_row(&head);
    let f = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    for r in records {
        let mut c = vec![
            r.meta.arm.clone(),
            r.meta.seed.to_string(),
            r.finished().to_string(),
            r.failure
                .as_ref()
                .map_or(String::new(), |f| f.message.clone()),
            r.steps.to_string(),
        ];
        for m in metrics {
            c.push(f(r.final_value(m)));
            c.push(f(r.best_value(m)));
        }
        c.push(f(r.tokens_per_sec()));
        c.push(f(r.summary.as_ref().map(|s| s.wall_secs)));
        c.push(r.dir.display().to_string());
        out += &csv_row(&c);
    }
    out
}

fn csv_row(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    format!("{}\n", quoted.join(","))
}
