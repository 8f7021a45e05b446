//! Everything a run trains with, built from the recipe: data, model (schemes and techniques),
//! schedule, parameters, optimizer and batcher.

use std::sync::Arc;

use nibble_data::{Batcher, Dataset, Tokenizer};
use nibble_model::techniques::{QatStart, StartPoint, techniques_for};
use nibble_model::{Arch, Llama, LpBackend, Params};

use super::error::TrainError;
use super::initial::{Initial, Origin};
use crate::optim::AdamW;
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
}

impl<B: LpBackend> Parts<B> {
    /// `resume`: the parameters will be overwritten from a checkpoint, so skip the init work.
    pub fn build(recipe: &Recipe, resume: bool, device: &B::Device) -> Result<Self, TrainError> {
        let run = &recipe.run;
        let initial = Initial::load(recipe)?;
        let tokenizer: Arc<dyn Tokenizer> = match &initial {
            Some(i) => i.tokenizer.clone(),
            None => Arc::from(recipe.data.tokenizer.build()?),
        };
        let data = nibble_data::load_with(&recipe.data, tokenizer.as_ref())?;
        let unigram_bpb = data.unigram_bpb()?;
        let arch = match &initial {
            Some(i) => i.arch.clone(),
            None => recipe
                .model
                .resolve(Some(data.vocab_size))
                .map_err(|e| e.within("model"))?,
        };
        if data.vocab_size > arch.vocab_size {
            return Err(KeyError::new(
                "data.tokenizer",
                format!(
                    "the tokenizer has {} ids, the model's vocabulary {}",
                    data.vocab_size, arch.vocab_size
                ),
            )
            .into());
        }
        let policy = recipe
            .precision
            .policy()
            .map_err(|e| e.within("precision"))?;
        let (sparsity, qat) = (&recipe.sparsity, &recipe.qat);
        let mut model =
            Llama::with_techniques(arch.clone(), policy, |m| techniques_for(sparsity, qat, m))?;
        model
            .check_shapes(run.batch_size * arch.seq_len)
            .map_err(|m| KeyError::new("precision", m))?;
        let schedule = Schedule::new(&recipe.schedule, run.steps).map_err(schedule_key_error)?;
        model.set_qat_start(qat_start(qat.start, &schedule, run.steps)?);
        let params = match (&initial, resume) {
            (_, true) => model.zero_params::<B>(device),
            (Some(i), false) => model.with_slots(i.params::<B>(device)),
            (None, false) => model.init_params::<B>(run.seed, device),
        };
        let opt = AdamW::for_model(recipe.optim.clone(), &model, &params)?;
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
        })
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
