use std::path::Path;

use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainError, TrainOptions, train};

use crate::device::with_backend;

pub fn run(
    recipe: &Path,
    set: &[String],
    resume: bool,
    stop_after: Option<u64>,
) -> Result<(), (u8, String)> {
    // Every recipe error (syntax, unknown key, type, value) is reported before any work starts.
    let loaded =
        load_recipe::<Recipe>(recipe, set, Recipe::validate).map_err(|e| (2, e.to_string()))?;
    let opts = TrainOptions {
        resume,
        quiet: false,
        stop_after,
        run_dir: None,
    };
    let summary = with_backend!(loaded.value.run.device, |B, dev| {
        train::<B>(&loaded.value, &loaded.merged_toml, &opts, &dev).map_err(|e| {
            let code = match e {
                TrainError::Config(_)
                | TrainError::RunExists(_)
                | TrainError::NothingToResume(_)
                | TrainError::RecipeMismatch { .. } => 2,
                _ => 1,
            };
            (code, e.to_string())
        })
    })?;
    let ev = summary.final_eval;
    println!(
        "done: {} steps in {:.1}s ({:.0} tokens/s), {} params",
        summary.steps, summary.wall_secs, summary.tokens_per_sec, summary.params
    );
    println!(
        "final validation: loss {:.4} nats/token, {:.4} bits/byte (unigram baseline {:.4} bits/byte)",
        ev.loss, ev.bpb, summary.unigram_bpb
    );
    println!("run directory: {}", summary.run_dir.display());
    Ok(())
}
