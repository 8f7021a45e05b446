//! `failed.json`: the last attempt at a run failed (an error or a panic), with the message and
//! when. It lives in the run directory so that `--dry-run`, the next sweep (which retries the
//! run) and `nibble report` all see the failure; a later success removes it.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use nibble_train::checkpoint::write_atomic;
use serde::{Deserialize, Serialize};

use crate::error::SweepError;

pub const FAILED_FILE: &str = "failed.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunFailure {
    pub message: String,
    /// When it failed: UTC, RFC 3339.
    pub time: String,
    pub unix_secs: u64,
}

impl RunFailure {
    /// A failure happening now.
    pub fn now(message: &str) -> RunFailure {
        let unix_secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        RunFailure {
            message: message.to_owned(),
            time: utc(unix_secs),
            unix_secs,
        }
    }

    /// Writes `failed.json` into `run_dir` (created if needed), atomically.
    pub fn write(&self, run_dir: &Path) -> Result<(), SweepError> {
        std::fs::create_dir_all(run_dir).map_err(SweepError::io(run_dir))?;
        let path = run_dir.join(FAILED_FILE);
        let text = serde_json::to_string_pretty(self).expect("failure json");
        write_atomic(&path, text.as_bytes()).map_err(SweepError::io(&path))
    }

    /// The run's recorded failure, if any.
    pub fn read(run_dir: &Path) -> Result<Option<RunFailure>, SweepError> {
        let path = run_dir.join(FAILED_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| SweepError::Format {
                    path,
                    message: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SweepError::io(&path)(e)),
        }
    }

    /// Removes a recorded failure (the run has now succeeded).
    pub fn clear(run_dir: &Path) -> Result<(), SweepError> {
        let path = run_dir.join(FAILED_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(SweepError::io(&path)(e)),
            _ => Ok(()),
        }
    }
}

/// `secs` since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (days to civil date: Howard Hinnant's
/// algorithm), to avoid a date crate for one timestamp.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::utc(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
