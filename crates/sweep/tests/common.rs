//! Shared helpers: a scratch directory and a minimal valid base recipe.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

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
