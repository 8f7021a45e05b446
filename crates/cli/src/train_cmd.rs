use std::path::Path;

use nibble_train::recipe::resolve_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainError, TrainOptions, check, train};

use crate::device::with_backend;

/// `nibble train`'s arguments beyond the recipe and its overrides.
pub struct Args {
    pub resume: bool,
    pub stop_after: Option<u64>,
    /// Run every check of a run and write nothing (`--check`).
    pub check: bool,
    pub allow_unused_rules: bool,
}

pub fn run(path: &Path, set: &[String], args: &Args) -> Result<(), (u8, String)> {
    // Every recipe error (syntax, unknown key, type, value) is reported before any work starts;
    // the resolution stays to locate what the trainer's own checks find.
    let resolved = resolve_recipe(path, set).map_err(|e| (2, e.to_string()))?;
    let loaded = resolved
        .parse::<Recipe>(Recipe::validate)
        .map_err(|e| (2, e.to_string()))?;
    let opts = TrainOptions {
        resume: args.resume,
        quiet: false,
        stop_after: args.stop_after,
        run_dir: None,
        allow_unused_rules: args.allow_unused_rules,
        memory_limit: None,
        peer: None,
    };
    let fail = |e: TrainError| {
        let e = e.located(&resolved);
        (e.exit_code(), e.to_string())
    };
    let (recipe, toml) = (&loaded.value, &loaded.merged_toml);
    if args.check {
        let warnings = with_backend!(recipe.run.device, |B, dev| {
            check::<B>(recipe, toml, &opts, &dev).map_err(fail)
        })?;
        for w in warnings {
            eprintln!("warning: {w}");
        }
        println!("{}: ok (nothing written)", path.display());
        return Ok(());
    }
    let summary = with_backend!(recipe.run.device, |B, dev| {
        train::<B>(recipe, toml, &opts, &dev).map_err(fail)
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
