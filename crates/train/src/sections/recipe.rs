use serde::{Deserialize, Serialize};

use nibble_data::{DataConfig, TokenizerKind};
use nibble_model::Llama;
use nibble_model::techniques::{
    Granularity, QatConfig, QatMethod, QatStart, SparsityConfig, SparsityMethod, techniques_for,
};
use nibble_model::{ModelConfig, PrecisionConfig};

use super::{
    BlockApConfig, CheckpointConfig, DistillConfig, DistributedConfig, E2eQpConfig, EvalConfig,
    InitConfig, LogConfig, RunConfig,
};
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
    /// A teacher and the distillation losses, Teacher Intervention (`[distill]`).
    pub distill: DistillConfig,
    /// EfficientQAT's Block-AP stage (`[block_ap]`).
    pub block_ap: BlockApConfig,
    /// EfficientQAT's E2E-QP stage (`[e2e_qp]`).
    pub e2e_qp: E2eQpConfig,
    pub eval: EvalConfig,
    pub log: LogConfig,
    pub checkpoint: CheckpointConfig,
    /// Data parallelism over local devices (`[distributed]`).
    pub distributed: DistributedConfig,
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
        self.block_ap.validate().map_err(|e| e.within("block_ap"))?;
        self.distill
            .validate(self.run.steps)
            .map_err(|e| e.within("distill"))?;
        if self.distill.enabled() && self.efficientqat_stages() {
            return Err(KeyError::new(
                "distill.teacher",
                "distillation with EfficientQAT's stages is not supported (Block-AP has its own \
                 block targets; E2E-QP trains the steps on the LM loss)",
            ));
        }
        self.validate_stages()?;
        self.validate_layer_fit()?;
        self.eval.validate().map_err(|e| e.within("eval"))?;
        self.log.validate().map_err(|e| e.within("log"))?;
        self.checkpoint
            .validate()
            .map_err(|e| e.within("checkpoint"))?;
        self.distributed
            .validate()
            .map_err(|e| e.within("distributed"))?;
        if self.distributed.world() > 1 && self.efficientqat_stages() {
            return Err(KeyError::new(
                "distributed.devices",
                "EfficientQAT's Block-AP / E2E-QP stages run on one device",
            ));
        }
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
        // Cross-section: the schedule must fit the run length (a conversion-only run has none).
        if self.run.steps > 0 {
            crate::schedule::Schedule::new(&self.schedule, self.run.steps)
                .map_err(schedule_key_error)?;
        }
        Ok(())
    }

    /// EfficientQAT's stages run: the model's efficientqat layers hold integer codes after the
    /// conversion (and Block-AP runs first if enabled).
    pub fn efficientqat_stages(&self) -> bool {
        self.block_ap.enabled || self.e2e_qp.enabled
    }

    /// The techniques against the model's layers, when the recipe fixes the architecture (an
    /// `[init]` model brings its own; the trainer checks that one before any work): a group or
    /// N:M pattern must tile every selected layer's inputs, and Block-AP needs a decoder block
    /// with a `[qat]` layer. The error points at the key to change. Rules that select no layer
    /// are the trainer's check (`--allow-unused-rules` makes them warnings).
    fn validate_layer_fit(&self) -> Result<(), KeyError> {
        let has_techniques =
            self.qat.method != QatMethod::None || self.sparsity.method != SparsityMethod::None;
        if self.init.source().is_some() || !has_techniques {
            return Ok(());
        }
        let arch = self.model.resolve(None).map_err(|e| e.within("model"))?;
        let policy = self.precision.policy().map_err(|e| e.within("precision"))?;
        let model = Llama::with_techniques(arch, policy, |m| {
            techniques_for(&self.sparsity, &self.qat, m)
        })
        .map_err(|e| {
            let key = match e.key.as_str() {
                "sparsity" => self.sparsity_key(&e.message),
                "qat" if self.qat.granularity == Granularity::Group => "qat.group_size".into(),
                "qat" => "qat.method".into(),
                k => k.to_string(),
            };
            KeyError::new(key, e.message)
        })?;
        if self.block_ap.enabled
            && !(0..model.n_blocks()).any(|k| !model.block_params(k).slots.is_empty())
        {
            return Err(KeyError::new(
                "block_ap.enabled",
                format!(
                    "Block-AP trains decoder blocks, and no block of this model ({} blocks) has \
                     a [qat] layer (qat.modules)",
                    model.n_blocks()
                ),
            ));
        }
        Ok(())
    }

    /// The key behind a sparsity technique that does not fit its layer (the message starts with
    /// the layer's name): the rule's pattern or dimension, SDGF's custom frames, or the
    /// section's pattern.
    fn sparsity_key(&self, message: &str) -> String {
        let sp = &self.sparsity;
        let layer = message.split(':').next().unwrap_or_default();
        match sp.rule_for(layer).map(|i| (i, &sp.rules[i])) {
            Some((i, r)) if r.pattern.is_some() => format!("sparsity.rules[{i}].pattern"),
            Some((i, r)) if r.dimension.is_some() => format!("sparsity.rules[{i}].dimension"),
            _ if !sp.sdgf_patterns.is_empty() => "sparsity.sdgf_patterns".into(),
            _ => "sparsity.pattern".into(),
        }
    }

    /// `[block_ap]` / `[e2e_qp]` against `[qat]`, `[optim]` and `run.steps`.
    fn validate_stages(&self) -> Result<(), KeyError> {
        if !self.efficientqat_stages() {
            if self.run.steps == 0 && self.init.source().is_none() {
                return Err(KeyError::new(
                    "run.steps",
                    "must be > 0 (0 only evaluates an [init] model, or converts an efficientqat \
                     model: [block_ap] or [e2e_qp] enabled)",
                ));
            }
            return Ok(());
        }
        let key = if self.block_ap.enabled {
            "block_ap.enabled"
        } else {
            "e2e_qp.enabled"
        };
        if self.qat.method != QatMethod::Efficientqat {
            return Err(KeyError::new(
                key,
                "EfficientQAT's stages train its affine grid: set [qat] method = \"efficientqat\"",
            ));
        }
        if self.qat.start != QatStart::Step(0) {
            return Err(KeyError::new(
                "qat.start",
                "EfficientQAT's stages quantize from the start (Block-AP, then the codes)",
            ));
        }
        if !self.e2e_qp.enabled && self.run.steps > 0 {
            return Err(KeyError::new(
                "run.steps",
                "after the conversion to codes only E2E-QP trains: enable [e2e_qp] or set \
                 run.steps = 0 (a Block-AP-only or RTN run)",
            ));
        }
        if self.sparsity.method != SparsityMethod::None {
            return Err(KeyError::new(
                "sparsity.method",
                "EfficientQAT's stages replace the weights by their codes, which an N:M mask \
                 before the quantizer would zero: not supported together",
            ));
        }
        if self.e2e_qp.enabled && !self.optim.groups.is_empty() {
            return Err(KeyError::new(
                "optim.groups",
                "E2E-QP trains only the quantizers' steps and freezes everything else: its \
                 groups are fixed",
            ));
        }
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
