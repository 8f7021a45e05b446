//! Integrity of a checkpoint: `state.json` lists the size and SHA-256 of every tensor file and
//! carries a SHA-256 of its own content, so a flipped bit, a truncation, an edit or a missing
//! file is detected before anything is loaded, and the error names the file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::store::CheckpointError;

/// The tensor files of a checkpoint, in the order they are written.
pub const TENSOR_FILES: [&str; 2] = ["model.safetensors", "optimizer.safetensors"];

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn bad(path: &Path, message: impl Into<String>) -> CheckpointError {
    CheckpointError::Damaged {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// SHA-256 and length of a file, streamed.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

/// `{"<file>": {"bytes": n, "sha256": hex}}` for the tensor files staged in `dir` (read back
/// from disk, so the checksum covers what was written, not what was meant to be).
pub fn file_entries(dir: &Path) -> io::Result<Value> {
    let mut files = Map::new();
    for name in TENSOR_FILES {
        let (sha, bytes) = sha256_file(&dir.join(name))?;
        files.insert(
            name.into(),
            serde_json::json!({ "bytes": bytes, "sha256": sha }),
        );
    }
    Ok(Value::Object(files))
}

/// The last member of `state.json`: the SHA-256 of the file's text without it (hashing the
/// text, not re-serialized JSON, which need not print floats back identically).
const SELF_PREFIX: &str = ",\n  \"checksum\": \"";

/// The text of `state.json`: `meta` (pretty JSON) plus its own checksum as the last member.
pub fn seal(meta: Map<String, Value>) -> String {
    let body = serde_json::to_string_pretty(&Value::Object(meta)).expect("json");
    let sum = hex(&Sha256::digest(body.as_bytes()));
    let open = body.strip_suffix("\n}").expect("a pretty JSON object");
    format!("{open}{SELF_PREFIX}{sum}\"\n}}")
}

/// Parses `state.json` and checks its own checksum and its step against the directory name.
pub fn open_state(dir: &Path) -> Result<Map<String, Value>, CheckpointError> {
    let path = dir.join("state.json");
    let bytes = fs::read(&path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => bad(&path, "missing"),
        _ => CheckpointError::Io {
            path: path.clone(),
            source: e,
        },
    })?;
    let text = String::from_utf8_lossy(&bytes);
    let (body, want) = match (text.rfind(SELF_PREFIX), text.strip_suffix("\"\n}")) {
        (Some(at), Some(head)) if head.len() >= at + SELF_PREFIX.len() => (
            format!("{}\n}}", &text[..at]),
            &head[at + SELF_PREFIX.len()..],
        ),
        _ => {
            return Err(bad(
                &path,
                "no checksum at its end (truncated or overwritten)",
            ));
        }
    };
    let got = hex(&Sha256::digest(body.as_bytes()));
    if got != want {
        return Err(bad(
            &path,
            format!(
                "content checksum {got} does not match the recorded {want} (edited or damaged)"
            ),
        ));
    }
    let Ok(Value::Object(meta)) = serde_json::from_str::<Value>(&body) else {
        return Err(bad(&path, "not a JSON object"));
    };
    let step = meta
        .get("state")
        .and_then(|s| s.get("step"))
        .and_then(Value::as_u64)
        .ok_or_else(|| bad(&path, "missing state.step"))?;
    if let Some(named) = dir_step(dir)
        && named != step
    {
        return Err(bad(
            &path,
            format!("holds step {step} but its directory is named for step {named}"),
        ));
    }
    let adam = meta.get("adam_step").and_then(Value::as_u64);
    if adam.is_none_or(|a| a > step) {
        return Err(bad(
            &path,
            format!("optimizer step {adam:?} is missing or ahead of the train step {step}"),
        ));
    }
    Ok(meta)
}

/// The step in a `step-00000042` directory name.
pub fn dir_step(dir: &Path) -> Option<u64> {
    dir.file_name()?
        .to_str()?
        .strip_prefix("step-")?
        .parse()
        .ok()
}

/// Checks one tensor file's bytes against its entry in `state.json`.
pub fn check_bytes(
    meta: &Map<String, Value>,
    path: &Path,
    sha: &str,
    len: u64,
) -> Result<(), CheckpointError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let entry = meta
        .get("files")
        .and_then(|f| f.get(name))
        .ok_or_else(|| bad(path, "not listed in state.json"))?;
    let (want_len, want_sha) = (entry["bytes"].as_u64(), entry["sha256"].as_str());
    if want_len != Some(len) {
        return Err(bad(
            path,
            format!(
                "{len} bytes, state.json records {} (truncated or extended)",
                want_len.map_or("none".into(), |n| n.to_string())
            ),
        ));
    }
    if want_sha != Some(sha) {
        return Err(bad(
            path,
            format!("SHA-256 {sha} does not match the recorded one (bit rot or a torn write)"),
        ));
    }
    Ok(())
}

/// Checks a tensor file already read into memory.
pub fn check_file_bytes(
    meta: &Map<String, Value>,
    path: &Path,
    bytes: &[u8],
) -> Result<(), CheckpointError> {
    check_bytes(meta, path, &hex(&Sha256::digest(bytes)), bytes.len() as u64)
}

/// Full verification of a checkpoint directory without loading it: `state.json` and every
/// tensor file it lists.
pub fn verify(dir: &Path) -> Result<(), CheckpointError> {
    let meta = open_state(dir)?;
    for name in TENSOR_FILES {
        let path = dir.join(name);
        let (sha, len) = sha256_file(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => bad(&path, "missing"),
            _ => CheckpointError::Io {
                path: path.clone(),
                source: e,
            },
        })?;
        check_bytes(&meta, &path, &sha, len)?;
    }
    Ok(())
}

/// A checkpoint found damaged and moved aside.
#[derive(Debug)]
pub struct Damaged {
    pub step: u64,
    pub error: CheckpointError,
    pub moved_to: PathBuf,
}

/// Moves a damaged checkpoint to `<run>/damaged/step-N[.k]` (kept for inspection, never
/// deleted; outside `checkpoints/` so no later scan, prune or save meets it).
pub fn move_aside(run_dir: &Path, dir: &Path) -> io::Result<PathBuf> {
    let aside = run_dir.join("damaged");
    fs::create_dir_all(&aside)?;
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let mut to = aside.join(&*name);
    let mut k = 1;
    while to.exists() {
        to = aside.join(format!("{name}.{k}"));
        k += 1;
    }
    fs::rename(dir, &to)?;
    super::fsync_dir(&aside)?;
    if let Some(parent) = dir.parent() {
        super::fsync_dir(parent)?;
    }
    Ok(to)
}
