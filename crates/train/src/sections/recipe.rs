use serde::{Deserialize, Serialize};

use nibble_data::{DataConfig, TokenizerKind};
use nibble_model::techniques::{QatConfig, SparsityConfig};
use nibble_model::{ModelConfig, PrecisionConfig};

use super::{CheckpointConfig, EvalConfig, InitConfig, LogConfig, RunConfig};
use crate::optim::OptimConfig;
use crate::recipe::KeyError;
use crate::schedule::{ScheduleConfig, ScheduleError};

/// A whole recipe: one struct per TOML section, every section optional with documented defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recipe {
    pub run: RunConfig,
    /// Start from an existing model (`[init]`): its architecture, weights and tokenizer.
    pub init: InitConfig,
    pub model: ModelConfig,
    pub data: DataConfig,
    pub optim: OptimConfig,
    pub schedule: ScheduleConfig,
    pub precision: PrecisionConfig,
    /// N:M sparsity techniques by module glob (`[sparsity]`).
    pub sparsity: SparsityConfig,
    /// Learnable weight quantizers by module glob (`[qat]`).
    pub qat: QatConfig,
    pub eval: EvalConfig,
    pub log: LogConfig,
    pub checkpoint: CheckpointConfig,
}

impl Recipe {
    /// Validate every section; the error's key is the full dotted path (`optim.lr`).
    pub fn validate(&self) -> Result<(), KeyError> {
        self.run.validate().map_err(|e| e.within("run"))?;
        self.init.validate().map_err(|e| e.within("init"))?;
        self.model.validate().map_err(|e| e.within("model"))?;
        self.data.validate().map_err(|e| e.within("data"))?;
        self.optim.validate().map_err(|e| e.within("optim"))?;
        self.schedule.validate().map_err(|e| e.within("schedule"))?;
        self.precision
            .validate()
            .map_err(|e| e.within("precision"))?;
        self.sparsity.validate().map_err(|e| e.within("sparsity"))?;
        self.qat.validate().map_err(|e| e.within("qat"))?;
        self.eval.validate().map_err(|e| e.within("eval"))?;
        self.log.validate().map_err(|e| e.within("log"))?;
        self.checkpoint
            .validate()
            .map_err(|e| e.within("checkpoint"))?;
        // Cross-section: an [init] model brings its tokenizer, and only it can.
        let model_tok = self.data.tokenizer == TokenizerKind::Model;
        match (self.init.source().is_some(), model_tok) {
            (true, false) => {
                return Err(KeyError::new(
                    "data.tokenizer",
                    "the [init] model brings its own tokenizer: set `tokenizer = \"model\"`",
                ));
            }
            (false, true) => {
                return Err(KeyError::new(
                    "data.tokenizer",
                    "`model` is the tokenizer of an [init] model, and there is none",
                ));
            }
            _ => {}
        }
        // Cross-section: the schedule must fit the run length.
        crate::schedule::Schedule::new(&self.schedule, self.run.steps)
            .map_err(schedule_key_error)?;
        Ok(())
    }
}

/// A schedule error as a recipe key error (`schedule.<key>`, or `run.steps` for run-length ones).
pub fn schedule_key_error(e: ScheduleError) -> KeyError {
    match e {
        ScheduleError::Config(c) => c.within("schedule"),
        ScheduleError::DoesNotFit { key, message, .. } => {
            KeyError::new(key, message).within("schedule")
        }
        other => KeyError::new("run.steps", other.to_string()),
    }
}
