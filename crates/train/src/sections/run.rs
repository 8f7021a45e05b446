use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// The longest file name (bytes) and path Linux file systems take.
const NAME_MAX: usize = 255;
const PATH_MAX: usize = 4096;
/// What a run directory's path may take of `PATH_MAX`: the rest is for the files inside
/// (`checkpoints/step-00000000/optimizer.safetensors.tmp` and the like).
const PATH_ROOM: usize = PATH_MAX - 256;

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
        // Linux refuses longer file names and paths (ENAMETOOLONG), and only once the run
        // directory is created: refused here instead, before anything is written.
        if self.name.len() > NAME_MAX {
            return Err(KeyError::new(
                "name",
                format!(
                    "is {} bytes long; a file name holds at most {NAME_MAX}",
                    self.name.len()
                ),
            ));
        }
        if let Some(c) = self.out_dir.split(['/', '\\']).find(|c| c.len() > NAME_MAX) {
            return Err(KeyError::new(
                "out_dir",
                format!(
                    "has a {}-byte component; a file name holds at most {NAME_MAX}",
                    c.len()
                ),
            ));
        }
        if self.out_dir.len() + self.name.len() > PATH_ROOM {
            return Err(KeyError::new(
                "out_dir",
                format!(
                    "out_dir/name is {} bytes; at most {PATH_ROOM} leave room for the run's files \
                     within the {PATH_MAX}-byte path limit",
                    self.out_dir.len() + self.name.len() + 1
                ),
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
