use std::path::Path;

use nibble_sweep::state::RunState;
use nibble_sweep::{Plan, PlannedRun, execute, states};
use nibble_train::trainer::{TrainOptions, train};

use crate::device::with_backend;

/// `allow_unused_rules`: passed to every run (`nibble train --allow-unused-rules`).
pub fn run(
    file: &Path,
    jobs: Option<usize>,
    dry_run: bool,
    allow_unused_rules: bool,
) -> Result<(), (u8, String)> {
    // The sweep file and every expanded recipe are checked before anything runs.
    let plan = Plan::load(file).map_err(|e| (2, e.to_string()))?;
    // burn-collective keeps one collective per process, and a sweep trains its runs inside
    // this one: a data-parallel run must be trained alone, with `nibble train`.
    if let Some(r) = plan.runs.iter().find(|r| r.recipe.distributed.world() > 1) {
        return Err((
            2,
            format!(
                "arm `{}` seed {}: [distributed] asks for {} peers, but a sweep trains its runs \
                 in one process, where burn-collective keeps a single collective; train \
                 data-parallel runs with `nibble train`",
                r.arm,
                r.seed,
                r.recipe.distributed.world()
            ),
        ));
    }
    let states = states(&plan).map_err(|e| (2, e.to_string()))?;
    let jobs = jobs.unwrap_or(plan.file.sweep.jobs).max(1);
    if dry_run {
        print_plan(&plan, &states);
        return Ok(());
    }
    // Fetch and tokenize each distinct data source once, before parallel runs race for its cache.
    let mut seen = Vec::new();
    for r in &plan.runs {
        if !seen.contains(&&r.recipe.data) {
            seen.push(&r.recipe.data);
            // An [init] model's tokenizer comes with the model: fetch the corpus alone.
            match r.recipe.data.tokenizer {
                nibble_data::TokenizerKind::Model => {
                    nibble_data::load_corpus(&r.recipe.data).map(drop)
                }
                _ => nibble_data::load(&r.recipe.data).map(drop),
            }
            .map_err(|e| (1, e.to_string()))?;
        }
    }
    let trainer = |run: &PlannedRun, resume: bool| -> Result<(), String> {
        let opts = TrainOptions {
            resume,
            quiet: true,
            stop_after: None,
            run_dir: Some(run.run_dir.clone()),
            allow_unused_rules,
            memory_limit: None,
            peer: None,
        };
        with_backend!(run.recipe.run.device, |B, dev| {
            train::<B>(&run.recipe, &run.merged_toml, &opts, &dev)
                .map(|s| {
                    println!(
                        "    {} seed {}: final val loss {:.4}, {:.4} bits/byte, {:.0} tokens/s",
                        run.arm, run.seed, s.final_eval.loss, s.final_eval.bpb, s.tokens_per_sec
                    )
                })
                .map_err(|e| (1u8, e.to_string()))
        })
        .map_err(|(_, m)| m)
    };
    let log = |line: &str| println!("{line}");
    let report = execute(&plan, jobs, &trainer, &log).map_err(|e| (2, e.to_string()))?;
    println!(
        "sweep {}: {} trained, {} resumed, {} skipped (finished before), {} failed",
        plan.file.sweep.name,
        report.trained.len(),
        report.resumed.len(),
        report.skipped.len(),
        report.failed.len()
    );
    let dir = file.parent().unwrap_or(Path::new("."));
    if report.failed.is_empty() {
        println!("tables and plots: nibble report {}", dir.display());
        Ok(())
    } else {
        let lines: Vec<String> = report
            .failed
            .iter()
            .map(|(i, e)| format!("{} seed {}: {e}", plan.runs[*i].arm, plan.runs[*i].seed))
            .collect();
        Err((
            1,
            format!(
                "failed runs (each recorded in its directory's failed.json; the next `nibble \
                 sweep` retries them):\n  {}",
                lines.join("\n  ")
            ),
        ))
    }
}

fn print_plan(plan: &Plan, states: &[RunState]) {
    println!(
        "sweep {} ({}): {} runs = {} arms x {} seeds, run directories under {}",
        plan.file.sweep.name,
        plan.path.display(),
        plan.runs.len(),
        plan.runs.len() / plan.file.sweep.seeds.len(),
        plan.file.sweep.seeds.len(),
        plan.runs_dir.display()
    );
    let width = plan.runs.iter().map(|r| r.arm.len()).max().unwrap_or(3);
    let mut last_arm = "";
    for (i, (r, s)) in plan.runs.iter().zip(states).enumerate() {
        if r.arm != last_arm {
            let own: Vec<&String> = r
                .overrides
                .iter()
                .filter(|o| !o.starts_with("run.seed=") && !o.starts_with("run.name="))
                .filter(|o| !o.starts_with("run.out_dir="))
                .collect();
            println!(
                "  arm {}: {}",
                r.arm,
                own.iter()
                    .map(|o| format!("--set {o}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            last_arm = &r.arm;
        }
        println!(
            "    {:>3}  {:<width$}  seed {:<4} {:<22} {}",
            i + 1,
            r.arm,
            r.seed,
            s.describe(),
            r.run_dir.display()
        );
        if let RunState::Failed { message, .. } = s {
            println!("         failed last time: {message}");
        }
    }
}
