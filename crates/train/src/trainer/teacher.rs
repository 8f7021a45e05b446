//! `[distill] teacher`: the teacher model loaded as `[init]` loads a model (a Nibble run's newest
//! checkpoint, a GGUF file, an HF directory, a pretrained name), as a plain f32 model, checked
//! against the student before any work: the same vocabulary and tokenizer always, the same
//! block layout when a loss or an intervention reads the blocks.

use std::sync::Arc;

use nibble_data::Tokenizer;
use nibble_model::layers::Rope;
use nibble_model::{Arch, Llama, LpBackend, ModelConfig, PrecisionConfig};

use super::error::TrainError;
use super::initial::Initial;
use crate::objective::Teacher;
use crate::recipe::KeyError;
use crate::sections::{InterventionMode, Recipe};

/// Text whose ids must agree between teacher and student tokenizers of different names.
const PROBE: &str = "To be, or not to be, that is the question:\n\tWhether 'tis nobler in the \
                     mind (1603) — café, naïve, 東京, emoji 🙂; ids 0123456789 <|endoftext|>";

/// The teacher of `recipe` for a student of `arch` trained on `tokenizer`'s ids.
pub fn load_teacher<B: LpBackend>(
    recipe: &Recipe,
    arch: &Arch,
    tokenizer: &Arc<dyn Tokenizer>,
    device: &B::Device,
) -> Result<Teacher<B>, TrainError> {
    let d = &recipe.distill;
    // The teacher's source read as an [init] source, its errors keyed under [distill].
    let as_init = Recipe {
        init: d.teacher.clone(),
        model: ModelConfig {
            seq_len: Some(arch.seq_len),
            ..Default::default()
        },
        ..recipe.clone()
    };
    let rekey = |e: TrainError| match e {
        TrainError::Config(k) => TrainError::Config(KeyError::new(
            k.key.replacen("init", "distill.teacher", 1),
            k.message,
        )),
        other => other,
    };
    let initial = Initial::load(&as_init)
        .map_err(rekey)?
        .expect("a teacher source");
    let t = &initial.arch;
    let refuse = |m: String| TrainError::Config(KeyError::new("distill.teacher", m));
    // The same ids: the same vocabulary size, and the same ids for a probe text (a byte-level
    // vocabulary written to GGUF reads back as a BPE without merges: another name, same ids).
    let same_ids = initial.tokenizer.name() == tokenizer.name()
        || initial.tokenizer.encode(PROBE) == tokenizer.encode(PROBE);
    if t.vocab_size != arch.vocab_size || !same_ids {
        return Err(refuse(format!(
            "the teacher's vocabulary ({} ids, tokenizer `{}`) is not the student's ({} ids, \
             tokenizer `{}`): logit distillation compares the same ids",
            t.vocab_size,
            initial.tokenizer.name(),
            arch.vocab_size,
            tokenizer.name()
        )));
    }
    let reads_blocks = d.hidden > 0.0
        || d.attn_scores > 0.0
        || d.attn_out > 0.0
        || d.intervention != InterventionMode::None;
    let layout = |a: &Arch| (a.d_model, a.n_layers, a.n_heads, a.n_kv_heads);
    if reads_blocks && layout(t) != layout(arch) {
        return Err(refuse(format!(
            "feature losses and Teacher Intervention need the student's block layout: the \
             teacher has d_model {}, {} layers, {} heads ({} KV), the student d_model {}, {} \
             layers, {} heads ({} KV)",
            t.d_model,
            t.n_layers,
            t.n_heads,
            t.n_kv_heads,
            arch.d_model,
            arch.n_layers,
            arch.n_heads,
            arch.n_kv_heads
        )));
    }
    let mut t_arch = t.clone();
    t_arch.seq_len = arch.seq_len;
    let policy = PrecisionConfig::default().policy().expect("f32 policy");
    let model = Llama::new(t_arch, policy);
    let params = model.with_slots(initial.params::<B>(device));
    let rope: Rope<B> = model.rope(device);
    Ok(Teacher {
        model,
        params,
        rope,
    })
}
