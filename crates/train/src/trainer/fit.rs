//! Whether the run fits before anything is allocated or written: the model and one micro-batch
//! in memory, and a training and a validation window in the data. Without these checks an
//! absurd `seq_len` or dimension fails late (after the run directory is written), aborts on an
//! allocation, or runs out of memory part-way.

use nibble_data::Dataset;
use nibble_model::Arch;

use crate::recipe::KeyError;
use crate::sections::{Device, Recipe};

/// What a run may plan for where the device's memory is not known (GPU backends): more than
/// any single accelerator holds.
const DEVICE_LIMIT: f64 = (1u64 << 40) as f64;

const GIB: f64 = (1u64 << 30) as f64;

/// Refuses a model and micro-batch whose estimated memory exceeds `limit` bytes (default: the
/// host's memory on the CPU, [`DEVICE_LIMIT`] elsewhere). The estimate is a floor, not a
/// forecast: f32 parameters with their gradient and two AdamW moments, and the activations one
/// micro-batch keeps for the backward (the block outputs, the materialized attention scores, the
/// logits).
pub fn check_memory(recipe: &Recipe, arch: &Arch, limit: Option<u64>) -> Result<(), KeyError> {
    let f = |v: usize| v as f64;
    let (d, ff, layers, vocab) = (
        f(arch.d_model),
        f(arch.d_ff),
        f(arch.n_layers),
        f(arch.vocab_size),
    );
    let kv = f(arch.n_kv_heads * arch.head_dim());
    let embed = vocab * d * if arch.tie_embeddings { 1.0 } else { 2.0 };
    let params = embed + layers * (2.0 * d * d + 2.0 * d * kv + 3.0 * d * ff);
    let (batch, seq, heads) = (f(recipe.run.batch_size), f(arch.seq_len), f(arch.n_heads));
    let tokens = batch * seq;
    let acts = layers * (tokens * (12.0 * d + 4.0 * ff) + 2.0 * batch * heads * seq * seq)
        + 3.0 * tokens * vocab;
    let need = 16.0 * params + 4.0 * acts;
    let limit = match limit {
        Some(l) => l as f64,
        None if recipe.run.device == Device::Cpu => host_memory().unwrap_or(DEVICE_LIMIT),
        None => DEVICE_LIMIT,
    };
    if need <= limit {
        return Ok(());
    }
    let key = if 16.0 * params >= 4.0 * acts {
        largest_dimension(recipe)
    } else if batch * heads * seq * seq >= tokens * (3.0 * d + ff) {
        "model.seq_len"
    } else {
        "run.batch_size"
    };
    Err(KeyError::new(
        key,
        format!(
            "the run needs at least {:.1} GiB ({:.3e} parameters with gradients and AdamW \
             moments; batch_size {} x seq_len {} of activations), more than the {:.1} GiB \
             available",
            need / GIB,
            params,
            recipe.run.batch_size,
            arch.seq_len,
            limit / GIB
        ),
    ))
}

/// The model dimension the recipe sets highest (the likely culprit of a model too large), else
/// the preset.
fn largest_dimension(recipe: &Recipe) -> &'static str {
    let m = &recipe.model;
    let set = [
        ("model.d_model", m.d_model),
        ("model.d_ff", m.d_ff),
        ("model.n_layers", m.n_layers),
        ("model.vocab_size", m.vocab_size),
    ];
    set.iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .max_by_key(|(_, v)| *v)
        .map_or("model.preset", |(k, _)| k)
}

/// Total host memory in bytes (Linux), if known.
fn host_memory() -> Option<f64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024.0)
}

/// Both splits must hold one window of `seq_len + 1` tokens (input and shifted target), or the
/// batcher and the first evaluation fail after the run has started.
pub fn check_windows(arch: &Arch, data: &Dataset) -> Result<(), KeyError> {
    let need = arch.seq_len as u64 + 1;
    for (split, n) in [
        ("train", data.train.tokens.len()),
        ("validation", data.val.tokens.len()),
    ] {
        if (n as u64) < need {
            return Err(KeyError::new(
                "model.seq_len",
                format!(
                    "the {split} split has {n} tokens, fewer than one window of seq_len + 1 = \
                     {need}: use a shorter seq_len or more text"
                ),
            ));
        }
    }
    Ok(())
}
