//! `nibble generate`: continue a prompt with a checkpoint's model (KV-cached decoding, greedy or
//! sampled), under the run's precision policy and techniques.

use std::path::{Path, PathBuf};

use nibble_model::{GenerateOptions, generate};
use nibble_train::checkpoint;
use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainError};

use crate::device::with_backend;

/// `<run>/checkpoints/step-N` → (run dir, checkpoint dir); a run dir → its newest checkpoint.
fn locate(path: &Path) -> Result<(PathBuf, PathBuf), String> {
    if path.join("state.json").is_file() {
        let run = path
            .parent()
            .and_then(Path::parent)
            .ok_or("checkpoint is not inside <run>/checkpoints/")?;
        return Ok((run.to_path_buf(), path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err(format!(
            "{}: no such run or checkpoint directory",
            path.display()
        ));
    }
    let ck = checkpoint::latest(path)
        .ok_or_else(|| format!("{}: no checkpoint found", path.display()))?;
    Ok((path.to_path_buf(), ck))
}

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
    let (run_dir, ck) = locate(a.checkpoint).map_err(|m| (2, m))?;
    let recipe = load_recipe::<Recipe>(&run_dir.join("recipe.toml"), &[], Recipe::validate)
        .map_err(|e| (2, e.to_string()))?
        .value;
    let tokenizer = recipe
        .data
        .tokenizer
        .build()
        .map_err(|e| (1, e.to_string()))?;
    let prompt = tokenizer.encode(a.prompt);
    if prompt.is_empty() {
        return Err((2, "the prompt is empty (it has no tokens)".into()));
    }
    let opts = GenerateOptions {
        max_new_tokens: a.max_tokens,
        temperature: a.temperature,
        top_k: a.top_k,
        seed: a.seed,
        stop: Vec::new(),
    };
    let new = with_backend!(recipe.run.device, |B, dev| {
        // The run's model with its techniques, and the checkpoint's tensors in it.
        let mut parts = Parts::<B>::build(&recipe, true, &dev).map_err(|e| {
            let code = if matches!(e, TrainError::Data(_)) {
                1
            } else {
                2
            };
            (code, e.to_string())
        })?;
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
        checkpoint::load(&ck, &mut parts.params, &mut parts.opt, &dev)
            .map_err(|e| (1, e.to_string()))?;
        generate::<B>(&parts.model, &parts.params, &prompt, &opts, &dev).map_err(|m| (2, m))
    })?;
    println!("{}{}", a.prompt, tokenizer.decode(&new));
    Ok(())
}
