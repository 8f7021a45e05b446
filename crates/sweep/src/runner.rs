//! Runs the planned runs that are not finished, `jobs` at a time (threads of this process, so a
//! killed sweep leaves no orphan trainers behind), resuming interrupted ones. A run that fails,
//! by an error or a panic, is recorded in its directory (`failed.json`) and the others go on.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::SweepError;
use crate::expand::{Plan, PlannedRun};
use crate::failure::{FAILED_FILE, RunFailure};
use crate::meta::RunMeta;
use crate::state::{RunState, inspect};

/// Trains one run: `resume` says whether to continue from its newest checkpoint. The caller
/// provides it (the CLI binds a backend; tests use a fake), and must write into `run.run_dir`.
/// A panic inside `train` fails that run only, as an `Err` would.
pub trait TrainFn: Sync {
    fn train(&self, run: &PlannedRun, resume: bool) -> Result<(), String>;
}

impl<F: Fn(&PlannedRun, bool) -> Result<(), String> + Sync> TrainFn for F {
    fn train(&self, run: &PlannedRun, resume: bool) -> Result<(), String> {
        self(run, resume)
    }
}

/// What happened to each run of the plan.
#[derive(Debug, Default)]
pub struct SweepReport {
    pub skipped: Vec<usize>,
    pub trained: Vec<usize>,
    pub resumed: Vec<usize>,
    pub failed: Vec<(usize, String)>,
}

/// The state of every run, in plan order; fails before any work if a directory conflicts.
pub fn states(plan: &Plan) -> Result<Vec<RunState>, SweepError> {
    plan.runs.iter().map(inspect).collect()
}

/// Runs everything not finished. `log` receives one line per event.
pub fn execute(
    plan: &Plan,
    jobs: usize,
    trainer: &dyn TrainFn,
    log: &(dyn Fn(&str) + Sync),
) -> Result<SweepReport, SweepError> {
    let states = states(plan)?;
    let mut pending: Vec<(usize, bool)> = states
        .iter()
        .enumerate()
        .filter_map(|(i, s)| Some((i, s.pending_resume()?)))
        .collect();
    // Seed-major: every arm's first seed before any arm's second, so a sweep stopped early
    // already compares all arms.
    let seed_rank = |i: usize| {
        plan.file
            .sweep
            .seeds
            .iter()
            .position(|&s| s == plan.runs[i].seed)
            .unwrap_or(0)
    };
    pending.sort_by_key(|&(i, _)| (seed_rank(i), i));
    let report = Mutex::new(SweepReport {
        skipped: states
            .iter()
            .enumerate()
            .filter(|(_, s)| **s == RunState::Finished)
            .map(|(i, _)| i)
            .collect(),
        ..Default::default()
    });
    log(&format!(
        "sweep {}: {} runs, {} finished, {} to run ({} to resume, {} failed before), {} at a time",
        plan.file.sweep.name,
        plan.runs.len(),
        plan.runs.len() - pending.len(),
        pending.len(),
        pending.iter().filter(|p| p.1).count(),
        states
            .iter()
            .filter(|s| matches!(s, RunState::Failed { .. }))
            .count(),
        jobs.max(1)
    ));
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(pending.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(&(i, resume)) = pending.get(k) else {
                        break;
                    };
                    let run = &plan.runs[i];
                    let what = if resume { "resume" } else { "start" };
                    log(&format!(
                        "[{}/{}] {what} {} seed {} -> {}",
                        k + 1,
                        pending.len(),
                        run.arm,
                        run.seed,
                        run.run_dir.display()
                    ));
                    let result = RunMeta::of(plan, run)
                        .write(&run.run_dir)
                        .map_err(|e| e.to_string())
                        .and_then(|_| {
                            nibble_train::panics::catch(|| trainer.train(run, resume))
                                .unwrap_or_else(|m| Err(format!("panicked: {m}")))
                        });
                    let recorded = match &result {
                        Ok(()) => RunFailure::clear(&run.run_dir),
                        Err(e) => RunFailure::now(e).write(&run.run_dir),
                    };
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    let mut r = report.lock().expect("report lock");
                    match result {
                        Ok(()) => {
                            if let Err(w) = recorded {
                                log(&format!("warning: stale failure record: {w}"));
                            }
                            log(&format!(
                                "[{n}/{} done] {} seed {}",
                                pending.len(),
                                run.arm,
                                run.seed
                            ));
                            if resume {
                                r.resumed.push(i)
                            } else {
                                r.trained.push(i)
                            }
                        }
                        Err(e) => {
                            let note = match recorded {
                                Ok(()) => format!(
                                    "recorded in {}; retried when the sweep runs again",
                                    run.run_dir.join(FAILED_FILE).display()
                                ),
                                Err(w) => format!("could not record it: {w}"),
                            };
                            log(&format!(
                                "[{n}/{} FAILED] {} seed {}: {e} ({note})",
                                pending.len(),
                                run.arm,
                                run.seed
                            ));
                            r.failed.push((i, e));
                        }
                    }
                }
            });
        }
    });
    Ok(report.into_inner().expect("report lock"))
}
