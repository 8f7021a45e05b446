//! Atomic file writes: a crash leaves either the old file or the complete new one, never a torn one.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::DataError;

/// Writes `bytes` to `path` via a temp file in the same directory, fsync, rename, fsync(dir).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(|e| DataError::io("create directory", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| DataError::io("create temp file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| DataError::io("write", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| DataError::io("rename temp file to", path, e.error))?;
    sync_dir(dir)
}

/// Writes a file and fsyncs it (used inside a temp directory that is renamed afterwards).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    let mut f = File::create(path).map_err(|e| DataError::io("create", path, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| DataError::io("write", path, e))
}

/// Makes a rename or a new entry in `dir` durable. Some platforms cannot open directories; there
/// the rename is still atomic, only not yet durable, so the error is ignored.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DataError> {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
