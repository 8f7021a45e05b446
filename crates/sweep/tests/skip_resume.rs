//! Execution with a fake trainer: finished runs are skipped, interrupted ones resumed, new ones
//! started; a failure does not stop the others; a directory of another definition is refused
//! before any work.

mod common;

use std::fs;
use std::sync::Mutex;

use common::{BASE, fake_work, scratch, write};
use nibble_sweep::{Plan, PlannedRun, execute};
use nibble_train::trainer::SUMMARY_FILE;

const SWEEP: &str = "[sweep]\nname = \"t\"\nbase = \"base.toml\"\nseeds = [0, 1]\njobs = 2\n\
[[arms]]\nname = \"a\"\n[[arms]]\nname = \"b\"\nset = { \"optim.lr\" = 0.01 }\n";

#[test]
fn skips_finished_resumes_interrupted_restarts_the_rest() {
    let d = scratch("skip");
    write(&d, "base.toml", BASE);
    let plan = Plan::load(&write(&d, "sweep.toml", SWEEP)).unwrap();
    assert_eq!(plan.runs.len(), 4);
    let calls = Mutex::new(Vec::new());
    let quiet = |_: &str| {};
    // First pass: run 1 "dies" after its checkpoint (as under kill -9), run 2 fails outright.
    let first = |run: &PlannedRun, resume: bool| -> Result<(), String> {
        calls.lock().unwrap().push((run.run_dir.clone(), resume));
        let i = plan
            .runs
            .iter()
            .position(|r| r.run_dir == run.run_dir)
            .unwrap();
        match i {
            1 => {
                fake_work(run, false);
                Err("killed".into())
            }
            2 => Err("diverged".into()),
            _ => {
                fake_work(run, true);
                Ok(())
            }
        }
    };
    let rep = execute(&plan, 2, &first, &quiet).unwrap();
    assert_eq!(rep.trained.len(), 2);
    assert_eq!(rep.failed.len(), 2);
    assert!(
        calls.lock().unwrap().iter().all(|c| !c.1),
        "nothing to resume yet"
    );
    for r in &plan.runs {
        let meta = nibble_sweep::meta::RunMeta::read(&r.run_dir).unwrap();
        assert_eq!((meta.arm.as_str(), meta.seed), (r.arm.as_str(), r.seed));
    }

    // Second pass: 0 and 3 are skipped, 1 resumes from its checkpoint, 2 starts over.
    calls.lock().unwrap().clear();
    let second = |run: &PlannedRun, resume: bool| -> Result<(), String> {
        calls.lock().unwrap().push((run.run_dir.clone(), resume));
        fake_work(run, true);
        Ok(())
    };
    let rep = execute(&plan, 1, &second, &quiet).unwrap();
    assert_eq!(rep.skipped, [0, 3]);
    assert_eq!(rep.resumed, [1]);
    assert_eq!(rep.trained, [2]);
    let got = calls.lock().unwrap().clone();
    // Seed-major order: run 2 (arm b, seed 0) before run 1 (arm a, seed 1).
    assert_eq!(
        got,
        [
            (plan.runs[2].run_dir.clone(), false),
            (plan.runs[1].run_dir.clone(), true)
        ]
    );

    // Third pass: all finished, no calls.
    calls.lock().unwrap().clear();
    let rep = execute(&plan, 2, &second, &quiet).unwrap();
    assert_eq!(rep.skipped.len(), 4);
    assert!(calls.lock().unwrap().is_empty());
}

#[test]
fn a_changed_definition_is_refused_before_any_work() {
    let d = scratch("conflict");
    write(&d, "base.toml", BASE);
    let plan = Plan::load(&write(&d, "sweep.toml", SWEEP)).unwrap();
    let ok = |run: &PlannedRun, _: bool| -> Result<(), String> {
        fake_work(run, true);
        Ok(())
    };
    execute(&plan, 1, &ok, &|_| {}).unwrap();
    // Same run directories, different arm `b` (another lr): its two runs conflict.
    let changed = SWEEP.replace("0.01", "0.02");
    let plan2 = Plan::load(&write(&d, "sweep.toml", &changed)).unwrap();
    let called = Mutex::new(0);
    let count = |_: &PlannedRun, _: bool| -> Result<(), String> {
        *called.lock().unwrap() += 1;
        Ok(())
    };
    let err = execute(&plan2, 1, &count, &|_| {}).unwrap_err().to_string();
    assert!(
        err.contains("different definition") && err.contains("b/seed-0"),
        "{err}"
    );
    assert_eq!(*called.lock().unwrap(), 0);
    // An unfinished run of another definition (recipe.toml only) is refused too.
    let r = &plan2.runs[3];
    fs::remove_file(r.run_dir.join(SUMMARY_FILE)).unwrap();
    fs::remove_file(plan2.runs[2].run_dir.join(SUMMARY_FILE)).unwrap();
    let err = nibble_sweep::states(&plan2).unwrap_err().to_string();
    assert!(err.contains("different definition"), "{err}");
}
