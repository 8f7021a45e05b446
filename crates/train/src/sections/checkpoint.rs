use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// `[checkpoint]`: when to save and how many to keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Save every N optimizer steps (0: only at the end and at schedule budget ends). Default 200.
    pub every: u64,
    /// Keep the newest K checkpoints (budget-end checkpoints of WSD-S are always kept). Default 3.
    pub keep_last: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            every: 200,
            keep_last: 3,
        }
    }
}

impl CheckpointConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.keep_last == 0 {
            return Err(KeyError::new(
                "keep_last",
                "must be >= 1 (the last good checkpoint is always kept)",
            ));
        }
        Ok(())
    }
}
