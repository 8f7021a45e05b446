//! Failed runs with a fake trainer: a run that panics and one that returns an error are both
//! recorded on disk (`failed.json`, with their messages) while the other runs finish; the run
//! states and the report show them as failed; the next pass retries them and clears the record.

mod common;

use std::fs;
use std::sync::Mutex;

use common::{BASE, fake_work, scratch, write};
use nibble_sweep::failure::{FAILED_FILE, RunFailure};
use nibble_sweep::state::RunState;
use nibble_sweep::{Plan, PlannedRun, execute, states};

const SWEEP: &str = "[sweep]\nname = \"f\"\nbase = \"base.toml\"\nseeds = [0, 1]\njobs = 2\n\
[[arms]]\nname = \"a\"\n[[arms]]\nname = \"b\"\nset = { \"optim.lr\" = 0.01 }\n\
[report]\nmetrics = [\"val/loss\"]\n";

/// A finished fake run, with one logged validation loss for the report.
fn finish(run: &PlannedRun) {
    fake_work(run, true);
    fs::write(
        run.run_dir.join("metrics.jsonl"),
        "{\"step\":10,\"val/loss\":2.5}\n",
    )
    .unwrap();
}

#[test]
fn failed_runs_are_recorded_reported_and_retried() {
    let d = scratch("failures");
    write(&d, "base.toml", BASE);
    let plan = Plan::load(&write(&d, "sweep.toml", SWEEP)).unwrap();
    let index = |run: &PlannedRun| plan.runs.iter().position(|r| r.run_dir == run.run_dir);
    // Run 1 (a, seed 1) panics before any checkpoint; run 2 (b, seed 0) errors after one.
    let first = |run: &PlannedRun, _resume: bool| -> Result<(), String> {
        match index(run).unwrap() {
            1 => panic!("boom in run one"),
            2 => {
                fake_work(run, false);
                Err("loss is NaN at step 11".into())
            }
            _ => {
                finish(run);
                Ok(())
            }
        }
    };
    let lines = Mutex::new(Vec::new());
    let log = |l: &str| lines.lock().unwrap().push(l.to_owned());
    let rep = execute(&plan, 2, &first, &log).unwrap();
    assert_eq!(rep.trained.len(), 2, "the other runs finish");
    let mut failed = rep.failed.clone();
    failed.sort();
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0].0, 1);
    assert_eq!(failed[0].1, "panicked: boom in run one");
    assert_eq!(failed[1], (2, "loss is NaN at step 11".to_owned()));
    let log = lines.lock().unwrap().join("\n");
    assert_eq!(
        log.matches("retried when the sweep runs again").count(),
        2,
        "{log}"
    );

    // On disk, with the message and a time.
    for (i, message) in &failed {
        let f = RunFailure::read(&plan.runs[*i].run_dir).unwrap().unwrap();
        assert_eq!(&f.message, message);
        assert!(f.time.ends_with('Z') && f.unix_secs > 0, "{f:?}");
    }
    let st = states(&plan).unwrap();
    assert_eq!(st[0], RunState::Finished);
    assert_eq!(
        st[1],
        RunState::Failed {
            message: "panicked: boom in run one".into(),
            checkpoint: None
        }
    );
    assert_eq!(st[2].describe(), "FAILED (retry from step-00000010)");

    // The report counts only the finished runs and lists the failed ones.
    let report = nibble_sweep::report(&d).unwrap();
    let md = &report.markdown;
    assert!(md.contains("4 runs, 2 finished, 2 failed"), "{md}");
    assert!(md.contains("| `a` | 1 (+1 failed) |"), "{md}");
    assert!(
        md.contains("- `a` seed 1: panicked: boom in run one")
            && md.contains("- `b` seed 0: loss is NaN at step 11"),
        "{md}"
    );
    let a = report.arms.iter().find(|a| a.arm == "a").unwrap();
    assert_eq!(
        (a.seeds.as_slice(), a.failed, a.unfinished),
        (&[0][..], 1, 1)
    );
    let runs_csv = fs::read_to_string(d.join("runs.csv")).unwrap();
    assert!(
        runs_csv.contains(",false,panicked: boom in run one,"),
        "{runs_csv}"
    );

    // The next pass retries both (the one with a checkpoint resumes) and clears the records.
    let calls = Mutex::new(Vec::new());
    let second = |run: &PlannedRun, resume: bool| -> Result<(), String> {
        calls.lock().unwrap().push((index(run).unwrap(), resume));
        finish(run);
        Ok(())
    };
    let rep = execute(&plan, 1, &second, &|_| {}).unwrap();
    assert_eq!(rep.skipped, [0, 3]);
    assert_eq!(
        (rep.trained.as_slice(), rep.resumed.as_slice()),
        (&[1][..], &[2][..])
    );
    assert!(rep.failed.is_empty());
    assert_eq!(*calls.lock().unwrap(), [(2, true), (1, false)]);
    for r in &plan.runs {
        assert!(!r.run_dir.join(FAILED_FILE).exists());
    }
    assert!(
        states(&plan)
            .unwrap()
            .iter()
            .all(|s| *s == RunState::Finished)
    );
    let md = nibble_sweep::report(&d).unwrap().markdown;
    assert!(
        md.contains("4 runs, 4 finished.") && !md.contains("Failed runs"),
        "{md}"
    );
    let _ = fs::remove_dir_all(&d);
}
