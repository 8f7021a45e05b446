use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// `[eval]`: validation loss and bits per byte on held-out documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every N optimizer steps (0: only at the end). Default 100.
    pub every: u64,
    /// Validation batches per evaluation (fixed windows, same every time). Default 20.
    pub batches: usize,
    /// Also evaluate before the first update (the starting model: a pretrained model's loss,
    /// or a quantizer's before any training, i.e. round to nearest). Default false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub at_start: bool,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 100,
            batches: 20,
            at_start: false,
        }
    }
}

impl EvalConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.batches == 0 {
            return Err(KeyError::new("batches", "must be > 0"));
        }
        Ok(())
    }
}
