//! Everything a run trains with, built from the recipe: data, model (schemes and techniques),
//! schedule, parameters, optimizer and batcher.

use std::sync::Arc;

use nibble_data::{Batcher, Dataset, Tokenizer};
use nibble_model::techniques::{QatStart, StartPoint, techniques_for};
use nibble_model::{Arch, Llama, LpBackend, Params};

use super::error::TrainError;
use super::fit::{check_memory, check_windows};
use super::initial::{Initial, Origin};
use super::teacher::load_teacher;
use crate::objective::Teacher;
use crate::optim::{AdamW, GroupConfig, OptimConfig};
use crate::recipe::KeyError;
use crate::schedule::Schedule;
use crate::sections::{Recipe, schedule_key_error};

pub struct Parts<B: LpBackend> {
    pub data: Dataset,
    /// The tokenizer the data was tokenized with (the `[init]` model's, or `data.tokenizer`).
    pub tokenizer: Arc<dyn Tokenizer>,
    /// The model file the run started from (`[init]`), for exports.
    pub origin: Option<Origin>,
    pub unigram_bpb: f64,
    pub arch: Arch,
    pub model: Llama,
    pub schedule: Schedule,
    pub params: Params<B>,
    pub opt: AdamW<B>,
    pub batcher: Batcher,
    /// EfficientQAT's Block-AP stage, when `[block_ap]` is enabled.
    pub block_ap: Option<BlockApParts<B>>,
    /// The `[distill]` teacher (taken by the training loop).
    pub teacher: Option<Teacher<B>>,
    /// With `[distill] rewarmup`: stage 2's first main step and its own schedule (`schedule`
    /// then covers stage 1 only).
    pub stage2: Option<(u64, Schedule)>,
}

/// What Block-AP needs besides the run's parts: the model with the affine quantizer on float
/// weights (the run's own model holds codes), the full-precision weights the targets come from,
/// and its length in iterations (the steps before the main ones).
pub struct BlockApParts<B: LpBackend> {
    pub model: Llama,
    pub fp_params: Params<B>,
    pub iters: u64,
}

impl<B: LpBackend> Parts<B> {
    /// Optimizer steps before the main ones (Block-AP's iterations).
    pub fn prologue(&self) -> u64 {
        self.block_ap.as_ref().map_or(0, |b| b.iters)
    }

    /// The learning rate of main step `step` (0-based) for the base rate `base`.
    pub fn lr(&self, step: u64, base: f64) -> f64 {
        match &self.stage2 {
            Some((s, two)) if step >= *s => two.lr(step - s, base),
            _ => self.schedule.lr(step, base),
        }
    }
}

impl<B: LpBackend> Parts<B> {
    /// `resume`: the parameters will be overwritten from a checkpoint, so skip the init work.
    pub fn build(recipe: &Recipe, resume: bool, device: &B::Device) -> Result<Self, TrainError> {
        Self::build_with(recipe, resume, None, device)
    }

    /// [`Parts::build`] refusing a run estimated to need more than `memory_limit` bytes
    /// (default: the device's memory, see [`check_memory`]) before anything is allocated.
    pub fn build_with(
        recipe: &Recipe,
        resume: bool,
        memory_limit: Option<u64>,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        let run = &recipe.run;
        let initial = Initial::load(recipe)?;
        let tokenizer: Arc<dyn Tokenizer> = match &initial {
            Some(i) => i.tokenizer.clone(),
            None => Arc::from(recipe.data.tokenizer.build()?),
        };
        let data = nibble_data::load_with(&recipe.data, tokenizer.as_ref())
            .map_err(|e| glob_key_error(recipe, e))?;
        let unigram_bpb = data.unigram_bpb()?;
        let arch = match &initial {
            Some(i) => i.arch.clone(),
            None => recipe
                .model
                .resolve(Some(data.vocab_size))
                .map_err(|e| e.within("model"))?,
        };
        if data.vocab_size > arch.vocab_size {
            // The recipe's own vocabulary size when it sets one (an id past it would index out
            // of the embedding inside the backend), else the tokenizer.
            let key = match (&initial, recipe.model.vocab_size) {
                (None, Some(_)) => "model.vocab_size",
                _ => "data.tokenizer",
            };
            return Err(KeyError::new(
                key,
                format!(
                    "the tokenizer has {} ids, the model's vocabulary {}",
                    data.vocab_size, arch.vocab_size
                ),
            )
            .into());
        }
        check_memory(recipe, &arch, memory_limit)?;
        check_windows(&arch, &data)?;
        let policy = recipe
            .precision
            .policy()
            .map_err(|e| e.within("precision"))?;
        let (sparsity, qat) = (&recipe.sparsity, &recipe.qat);
        let stages = recipe.efficientqat_stages();
        let fake_quant = Llama::with_techniques(arch.clone(), policy.clone(), |m| {
            techniques_for(sparsity, qat, m)
        })?;
        let mut model = Llama::with_techniques(arch.clone(), policy, |m| {
            let t = techniques_for(sparsity, qat, m);
            match stages {
                true => t.into_iter().map(|t| t.into_codes()).collect(),
                false => t,
            }
        })?;
        model
            .check_shapes(run.batch_size * arch.seq_len)
            .map_err(|m| shape_key_error(recipe, &arch, m))?;
        let stage1 = recipe.distill.stage1();
        let rewarm = recipe.distill.rewarmup && stage1 > 0;
        let schedule = match run.steps {
            0 => Schedule::new(&Default::default(), 1).expect("constant schedule"),
            _ if rewarm => Schedule::new(&recipe.schedule, stage1).map_err(schedule_key_error)?,
            n => Schedule::new(&recipe.schedule, n).map_err(schedule_key_error)?,
        };
        let stage2 = match rewarm {
            true => Some((
                stage1,
                Schedule::new(&recipe.schedule, run.steps - stage1).map_err(schedule_key_error)?,
            )),
            false => None,
        };
        let teacher = match recipe.distill.enabled() {
            true => Some(load_teacher::<B>(recipe, &arch, &tokenizer, device)?),
            false => None,
        };
        if run.steps > 0 {
            model.set_qat_start(qat_start(qat.start, &schedule, run.steps)?);
        }
        model.set_sparse_phases(sparsity.phases(run.steps));
        let fresh = || match &initial {
            Some(i) => model.with_slots(i.params::<B>(device)),
            None => model.init_params::<B>(run.seed, device),
        };
        let mut params = match resume {
            true => model.zero_params::<B>(device),
            false => fresh(),
        };
        let block_ap = match recipe.block_ap.enabled {
            true => Some(BlockApParts {
                iters: block_ap_iters(recipe, &fake_quant)?,
                model: fake_quant,
                fp_params: fresh().deep_copy(),
            }),
            false => None,
        };
        if stages && block_ap.is_none() && !resume {
            model
                .convert_to_codes(&mut params)
                .map_err(|m| KeyError::new("qat.modules", m))?;
        }
        let optim = match recipe.e2e_qp.enabled {
            true => e2e_qp_optim(&recipe.optim),
            false => recipe.optim.clone(),
        };
        let opt = AdamW::for_model(optim, &model, &params)?;
        let batcher = Batcher::new(
            data.train.tokens.clone(),
            run.batch_size,
            arch.seq_len,
            run.seed,
        )?;
        let origin = initial.as_ref().and_then(|i| i.origin.clone());
        Ok(Parts {
            data,
            tokenizer,
            origin,
            unigram_bpb,
            arch,
            model,
            schedule,
            params,
            opt,
            batcher,
            block_ap,
            teacher,
            stage2,
        })
    }
}

/// A `text_files` glob that is malformed or matches nothing is the recipe's fault: its
/// `data.paths` entry.
fn glob_key_error(recipe: &Recipe, e: nibble_data::DataError) -> TrainError {
    use nibble_data::DataError::{BadGlob, NoMatch};
    let (pattern, message) = match &e {
        NoMatch { pattern } => (pattern, "matches no file".to_owned()),
        BadGlob { pattern, message } => (pattern, message.clone()),
        _ => return e.into(),
    };
    match recipe.data.paths.iter().position(|p| p == pattern) {
        Some(i) => KeyError::new(
            format!("data.paths[{i}]"),
            format!("{pattern:?}: {message}"),
        )
        .into(),
        None => e.into(),
    }
}

/// A scheme that cannot block a layer's shape: the key that gave the layer its scheme
/// (`precision.default` or the first matching rule), or `run.batch_size` for the tokens of a
/// micro-batch. The message (`<layer>: scheme ...: <dimension> ...`) names the dimension.
fn shape_key_error(recipe: &Recipe, arch: &Arch, message: String) -> KeyError {
    let layer = message.split(':').next().unwrap_or_default();
    let key = if message.contains("tokens per micro-batch") {
        "run.batch_size".to_owned()
    } else {
        let rule = recipe.precision.policy().ok().and_then(|p| {
            p.rules
                .iter()
                .position(|(sel, _)| sel.matches(layer, arch.n_layers))
        });
        match rule {
            Some(i) => format!("precision.rules[{i}].scheme"),
            None => "precision.default".to_owned(),
        }
    };
    KeyError::new(key, message)
}

/// Block-AP's length: iterations per block × blocks, refused on a model without decoder blocks
/// holding a quantized layer.
fn block_ap_iters(recipe: &Recipe, model: &Llama) -> Result<u64, KeyError> {
    let quantized = (0..model.n_blocks())
        .filter(|&k| !model.block_params(k).slots.is_empty())
        .count();
    if quantized == 0 {
        return Err(KeyError::new(
            "block_ap.enabled",
            format!(
                "Block-AP trains decoder blocks, and no block of this model ({} blocks) has a \
                 [qat] layer (qat.modules)",
                model.n_blocks()
            ),
        ));
    }
    Ok(model.n_blocks() as u64 * recipe.block_ap.iters_per_block())
}

/// E2E-QP's optimizer: the quantizers' steps train (no weight decay), everything else is frozen.
fn e2e_qp_optim(base: &OptimConfig) -> OptimConfig {
    let group = |pattern: &str, name: &str, frozen: bool| GroupConfig {
        pattern: pattern.into(),
        name: Some(name.into()),
        lr_mult: None,
        lr: None,
        weight_decay: Some(0.0),
        frozen,
    };
    OptimConfig {
        groups: vec![
            group("*.weight_scale", "scales", false),
            group("*", "frozen", true),
        ],
        ..base.clone()
    }
}

/// The update `[qat] start` names: a step before the end of the run, or the first update of the
/// (first cycle's) LR decay.
fn qat_start(start: QatStart, schedule: &Schedule, steps: u64) -> Result<u64, KeyError> {
    let step = match start {
        QatStart::Step(s) => s,
        QatStart::Named(StartPoint::Decay) => schedule.cycles()[0].decay_start,
    };
    if step >= steps {
        return Err(KeyError::new(
            "qat.start",
            format!("update {step} is not before the end of the run ({steps} steps)"),
        ));
    }
    Ok(step)
}
