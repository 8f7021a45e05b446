//! Shared helpers: a scratch directory, a minimal valid base recipe and a fake trainer's output.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use nibble_sweep::PlannedRun;
use nibble_train::checkpoint::step_dir;
use nibble_train::trainer::{RunSummaryFile, SUMMARY_FILE};

pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nibble-sweep-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

pub const BASE: &str = "[run]\nsteps = 40\nbatch_size = 2\n\n[model]\npreset = \"tiny\"\n\
seq_len = 16\n\n[data]\nsource = \"sample\"\n\n[schedule]\nwarmup_steps = 2\n";

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// What a trainer leaves behind: the recipe, a checkpoint (a `state.json` marks it complete)
/// and, when it finishes, `summary.json`.
pub fn fake_work(run: &PlannedRun, finish: bool) {
    fs::write(run.run_dir.join("recipe.toml"), &run.merged_toml).unwrap();
    let ck = step_dir(&run.run_dir, 10);
    fs::create_dir_all(&ck).unwrap();
    fs::write(ck.join("state.json"), "{}").unwrap();
    if finish {
        let s = RunSummaryFile {
            recipe_hash: run.hash.clone(),
            steps: 40,
            tokens: 1,
            val_loss: 1.0,
            val_bpb: 1.0,
            best_val_loss: Some(1.0),
            unigram_bpb: 4.0,
            params: 1,
            wall_secs: 1.0,
        };
        fs::write(
            run.run_dir.join(SUMMARY_FILE),
            serde_json::to_string(&s).unwrap(),
        )
        .unwrap();
    }
}
