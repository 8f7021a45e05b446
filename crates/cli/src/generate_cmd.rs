//! `nibble generate`: continue a prompt with a checkpoint's model (KV-cached decoding, greedy or
//! sampled), under the run's precision policy and techniques.

use std::path::Path;

use nibble_model::{GenerateOptions, generate};

use crate::device::with_backend;
use crate::run_path::{load_checkpoint, run_parts, run_recipe};

/// What the command was asked for.
pub struct Args<'a> {
    pub checkpoint: &'a Path,
    pub prompt: &'a str,
    pub max_tokens: usize,
    pub temperature: f64,
    pub top_k: Option<usize>,
    pub seed: u64,
}

pub fn run(a: &Args) -> Result<(), (u8, String)> {
    if !(a.temperature.is_finite() && a.temperature >= 0.0) {
        return Err((
            2,
            format!("--temperature must be >= 0, got {}", a.temperature),
        ));
    }
    if a.top_k == Some(0) {
        return Err((2, "--top-k must be at least 1".into()));
    }
    let (recipe, ck) = run_recipe(a.checkpoint)?;
    let opts = GenerateOptions {
        max_new_tokens: a.max_tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.seed,
        stop: Vec::new(),
    };
    let (tokenizer, new) = with_backend!(recipe.run.device, |B, dev| {
        // The run's model with its techniques, and the checkpoint's tensors in it.
        let mut parts = run_parts::<B>(&recipe, &dev)?;
        // The run's tokenizer: `data.tokenizer`, or the one its `[init]` model brought.
        let tokenizer = parts.tokenizer.clone();
        let prompt = tokenizer.encode(a.prompt);
        if prompt.is_empty() {
            return Err((2, "the prompt is empty (it has no tokens)".into()));
        }
        let ctx = parts.arch.seq_len;
        if prompt.len() > ctx {
            return Err((
                2,
                format!(
                    "the prompt is {} tokens, longer than the model's context of {ctx}",
                    prompt.len()
                ),
            ));
        }
        load_checkpoint(&ck, &mut parts, &dev)?;
        generate::<B>(&parts.model, &parts.params, &prompt, &opts, &dev)
            .map(|new| (tokenizer, new))
            .map_err(|m| (2, m))
    })?;
    println!("{}{}", a.prompt, tokenizer.decode(&new));
    Ok(())
}
