use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// Where a run executes. GPU backends are compiled in with cargo features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    Cuda,
    Wgpu,
}

/// `[run]`: identity, seed, length and batch geometry of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Run name; the run directory is `<out_dir>/<name>`. Default "run".
    pub name: String,
    /// Parent directory of run directories. Default "runs".
    pub out_dir: String,
    /// Seed of the init, the data order and every stochastic quantizer. Default 0.
    pub seed: u64,
    /// Optimizer steps. Default 1000. 0 only in an EfficientQAT conversion run (checked with
    /// `[block_ap]` / `[e2e_qp]`).
    pub steps: u64,
    /// Sequences per micro-batch. Default 16.
    pub batch_size: usize,
    /// Micro-batches per optimizer step. Default 1.
    pub grad_accum: usize,
    /// "cpu" (default), "cuda" or "wgpu".
    pub device: Device,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            name: "run".into(),
            out_dir: "runs".into(),
            seed: 0,
            steps: 1000,
            batch_size: 16,
            grad_accum: 1,
            device: Device::Cpu,
        }
    }
}

impl RunConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.name.is_empty()
            || self.name.contains(['/', '\\'])
            || self.name == "."
            || self.name == ".."
        {
            return Err(KeyError::new(
                "name",
                "must be a non-empty file name (no path separators)",
            ));
        }
        if self.batch_size == 0 {
            return Err(KeyError::new("batch_size", "must be > 0"));
        }
        if self.grad_accum == 0 {
            return Err(KeyError::new("grad_accum", "must be > 0"));
        }
        Ok(())
    }
}
