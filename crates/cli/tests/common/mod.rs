//! Helpers shared by the CLI tests: run the binary, make a scratch directory.

#![allow(dead_code)]

pub mod llama;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `nibble args` in `cwd`: (exit code, stdout, stderr).
pub fn nibble(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nibble"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run nibble");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// An empty directory under the temp dir, unique to this test process.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nibble-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// `nibble export --checkpoint <run> --format <format> --out <out>` in `cwd`, which must succeed.
pub fn export(cwd: &Path, run: &str, format: &str, out: &Path) {
    let (code, _, err) = nibble(
        &[
            "export",
            "--checkpoint",
            run,
            "--format",
            format,
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
        cwd,
    );
    assert_eq!(code, 0, "export {run} as {format}: {err}");
}
