//! `nibble sweep` end to end: `--dry-run` lists the expanded runs; a sweep killed with SIGKILL
//! mid-run and restarted skips the finished run, resumes the interrupted one from its checkpoint
//! and completes; `nibble report` rebuilds tables and plots from the run directories. A run that
//! diverges fails alone: the others finish, the sweep exits 1 naming it, and it is recorded.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{nibble, scratch};

const BASE: &str = "[run]\nbatch_size = 2\n\n[model]\npreset = \"tiny\"\nseq_len = 16\n\
n_layers = 1\n\n[data]\nsource = \"sample\"\n\n[schedule]\nkind = \"wsd\"\nwarmup_steps = 2\n\n\
[eval]\nevery = 20\nbatches = 2\n\n[log]\nevery = 1\ntensorboard = false\n\n\
[checkpoint]\nevery = 5\nkeep_last = 2\n";

const SWEEP: &str = "[sweep]\nname = \"kill\"\nbase = \"base.toml\"\nseeds = [7]\n\n\
[[arms]]\nname = \"short\"\nset = { \"run.steps\" = 20 }\n\n\
[[arms]]\nname = \"long\"\nset = { \"run.steps\" = 400 }\n\n[report]\nreference = \"short\"\n";

/// `train/loss` by step from a run's metrics.jsonl.
fn losses(run: &Path) -> Vec<(u64, f64)> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some((v["step"].as_u64()?, v["train/loss"].as_f64()?))
        })
        .collect()
}

/// Whether the run has a complete checkpoint: a `step-N` directory (not a `.tmp` staging one,
/// which holds its `state.json` for a moment before the rename) with its `state.json`.
fn has_checkpoint(run: &Path) -> bool {
    fs::read_dir(run.join("checkpoints"))
        .map(|rd| {
            rd.flatten().any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let step = name.strip_prefix("step-").map(|n| n.parse::<u64>());
                matches!(step, Some(Ok(_))) && e.path().join("state.json").is_file()
            })
        })
        .unwrap_or(false)
}

#[test]
fn killed_sweep_resumes_without_redoing_finished_runs() {
    let d = scratch("kill");
    fs::write(d.join("base.toml"), BASE).unwrap();
    fs::write(d.join("sweep.toml"), SWEEP).unwrap();
    let short = d.join("runs/short/seed-7");
    let long = d.join("runs/long/seed-7");

    let (code, out, err) = nibble(&["sweep", "--file", "sweep.toml", "--dry-run"], &d);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 runs = 2 arms x 1 seeds"), "{out}");
    assert_eq!(out.matches(" new ").count(), 2, "{out}");
    assert!(!d.join("runs").exists(), "a dry run writes nothing");

    let mut child = Command::new(env!("CARGO_BIN_EXE_nibble"))
        .args(["sweep", "--file", "sweep.toml", "--jobs", "1"])
        .current_dir(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while !(short.join("summary.json").is_file() && has_checkpoint(&long)) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the sweep ended before it could be killed"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "sweep made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        !long.join("summary.json").exists(),
        "killed before the long run finished"
    );
    let short_summary = fs::read(short.join("summary.json")).unwrap();
    let short_metrics = fs::read(short.join("metrics.jsonl")).unwrap();

    let (code, out, err) = nibble(&["sweep", "--file", "sweep.toml", "--dry-run"], &d);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("finished (skip)"), "{out}");
    assert!(out.contains("resume from step-"), "{out}");

    let (code, out, err) = nibble(&["sweep", "--file", "sweep.toml"], &d);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("0 trained, 1 resumed, 1 skipped"), "{out}");
    assert_eq!(fs::read(short.join("summary.json")).unwrap(), short_summary);
    assert_eq!(
        fs::read(short.join("metrics.jsonl")).unwrap(),
        short_metrics
    );
    let l = losses(&long);
    let steps: Vec<u64> = l.iter().map(|p| p.0).collect();
    assert_eq!(
        steps,
        (1..=400).collect::<Vec<_>>(),
        "each step logged once"
    );
    // Same seed, same init and data order: both arms see the same first batch.
    assert_eq!(losses(&short)[0], l[0]);

    let (code, out, err) = nibble(&["report", "."], &d);
    assert_eq!(code, 0, "{out}\n{err}");
    let readme = fs::read_to_string(d.join("README.md")).unwrap();
    assert!(
        readme.contains("| `short` | 1 |") && readme.contains("| `long` | 1 |"),
        "{readme}"
    );
    assert!(d.join("plots/val_loss.png").is_file() && d.join("results.csv").is_file());

    // Changing the definition under existing run directories is refused (exit 2), nothing runs.
    fs::write(d.join("sweep.toml"), SWEEP.replace("400", "401")).unwrap();
    let (code, _, err) = nibble(&["sweep", "--file", "sweep.toml"], &d);
    assert_eq!(code, 2);
    assert!(err.contains("different definition"), "{err}");
}

#[test]
fn a_diverging_run_fails_alone_and_is_recorded() {
    let d = scratch("diverge");
    fs::write(d.join("base.toml"), BASE.replace("every = 20", "every = 2")).unwrap();
    // An lr of 1e30 without clipping makes the loss non-finite within a few steps.
    let sweep = "[sweep]\nname = \"diverge\"\nbase = \"base.toml\"\nseeds = [3]\njobs = 2\n\n\
        [[arms]]\nname = \"ok\"\nset = { \"run.steps\" = 6 }\n\n\
        [[arms]]\nname = \"blowup\"\n\
        set = { \"run.steps\" = 6, \"optim.lr\" = 1e30, \"optim.grad_clip\" = 0.0 }\n";
    fs::write(d.join("sweep.toml"), sweep).unwrap();
    let (code, out, err) = nibble(&["sweep", "--file", "sweep.toml"], &d);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        out.contains("1 trained, 0 resumed, 0 skipped (finished before), 1 failed"),
        "{out}"
    );
    assert!(
        err.contains("failed runs") && err.contains("blowup seed 3: "),
        "{err}"
    );
    assert!(err.contains("finite"), "{err}");
    let (ok, blowup) = (d.join("runs/ok/seed-3"), d.join("runs/blowup/seed-3"));
    assert!(ok.join("summary.json").is_file());
    assert!(!blowup.join("summary.json").exists());
    let failed: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(blowup.join("failed.json")).unwrap()).unwrap();
    assert!(
        failed["message"].as_str().unwrap().contains("finite"),
        "{failed}"
    );

    let (code, out, err) = nibble(&["sweep", "--file", "sweep.toml", "--dry-run"], &d);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("finished (skip)") && out.contains("FAILED (retry"),
        "{out}"
    );
    assert!(out.contains("failed last time: "), "{out}");

    let (code, out, err) = nibble(&["report", "."], &d);
    assert_eq!(code, 0, "{out}\n{err}");
    let readme = fs::read_to_string(d.join("README.md")).unwrap();
    assert!(
        readme.contains("2 runs, 1 finished, 1 failed") && readme.contains("- `blowup` seed 3: "),
        "{readme}"
    );
    let _ = fs::remove_dir_all(&d);
}
