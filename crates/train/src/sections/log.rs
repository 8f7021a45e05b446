use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// `[log]`: training metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Log train loss, lr, grad norm, tokens/s every N steps. Default 10.
    pub every: u64,
    /// Write tensorboard event files under `<run>/tb`. Default true.
    pub tensorboard: bool,
    /// Append to `<run>/metrics.jsonl`. Default true.
    pub jsonl: bool,
    /// Show a progress bar (also off when stderr is not a terminal). Default true.
    pub progress: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            every: 10,
            tensorboard: true,
            jsonl: true,
            progress: true,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.every == 0 {
            return Err(KeyError::new("every", "must be > 0"));
        }
        Ok(())
    }
}
