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

/// Rewrites a checkpoint's `state.json` with checksums that match its current files (sizes,
/// SHA-256s, and the SHA-256 of the text before its closing `checksum` member), as a forger
/// would: for tests of what lies behind the integrity check.
pub fn reseal(dir: &Path) {
    use sha2::{Digest, Sha256};
    let hex = |b: &[u8]| -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    };
    let p = dir.join("state.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("checksum");
    for f in ["model.safetensors", "optimizer.safetensors"] {
        let b = fs::read(dir.join(f)).unwrap();
        meta["files"][f] = serde_json::json!({ "bytes": b.len(), "sha256": hex(&b) });
    }
    let body = serde_json::to_string_pretty(&meta).unwrap();
    let head = body.strip_suffix("\n}").unwrap();
    let sum = hex(body.as_bytes());
    fs::write(&p, format!("{head},\n  \"checksum\": \"{sum}\"\n}}")).unwrap();
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

/// Records a harness figure (a line `name: figures`) in `target/tmp/fault-harness.txt`, which
/// `.ci/run` prints after the suite; a line of the same name from an earlier run is replaced.
pub fn record_figure(line: &str) {
    eprintln!("{line}");
    let p = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-harness.txt");
    let name = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let kept: String = std::fs::read_to_string(&p)
        .unwrap_or_default()
        .lines()
        .filter(|l| name(l) != name(line))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::fs::write(&p, format!("{kept}{line}\n"));
}
