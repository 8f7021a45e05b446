//! `nibble`: train a model from a recipe, evaluate a checkpoint or generate with it, run sweeps
//! and report them.
//!
//! Exit codes: 0 success, 1 runtime failure (data, I/O, divergence, an internal error caught as a
//! panic), 2 bad recipe or arguments (nothing is written).

mod bench_cmd;
mod bench_gemm;
mod device;
mod eval_cmd;
mod export_cmd;
mod generate_cmd;
mod report_cmd;
mod run_path;
mod sweep_cmd;
mod train_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "nibble",
    version,
    about = "Low-precision LLM training from TOML recipes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Train per a recipe (progress bar, tensorboard events, metrics.jsonl, checkpoints).
    Train {
        /// The recipe file (TOML).
        #[arg(long)]
        recipe: PathBuf,
        /// Override a key: `--set optim.lr=3e-4` (repeatable; values are TOML, bare words are strings).
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        set: Vec<String>,
        /// Continue the run from its newest checkpoint.
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps in total (the run can be resumed later).
        #[arg(long, value_name = "STEPS")]
        stop_after: Option<u64>,
        /// Run every check of a run (recipe, data sources, model and teacher, rules, run
        /// directory) and write nothing: exit 0 when the run would start, 2 when refused.
        #[arg(long)]
        check: bool,
        /// Rules ([precision], [qat], [sparsity]) that select no layer are warnings, not errors.
        #[arg(long)]
        allow_unused_rules: bool,
    },
    /// Evaluate a checkpoint on its run's validation split.
    Eval {
        /// A checkpoint directory (`runs/<name>/checkpoints/step-N`) or a run directory (newest).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Validation batches (default: the recipe's eval.batches).
        #[arg(long)]
        batches: Option<usize>,
    },
    /// Continue a prompt with a checkpoint's model (KV-cached; greedy unless --temperature > 0).
    Generate {
        /// A checkpoint directory (`runs/<name>/checkpoints/step-N`) or a run directory (newest).
        #[arg(long)]
        checkpoint: PathBuf,
        /// The text to continue (tokenized with the run's tokenizer).
        #[arg(long)]
        prompt: String,
        /// New tokens at most (fewer when the model's context fills up).
        #[arg(long, default_value_t = 64)]
        max_tokens: usize,
        /// Sampling temperature; 0 = greedy.
        #[arg(long, default_value_t = 0.0)]
        temperature: f64,
        /// Sample among the K most likely tokens only.
        #[arg(long, value_name = "K")]
        top_k: Option<usize>,
        /// Seed of the sampling draws.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Write a checkpoint's model for serving engines: GGUF (llama.cpp) or an HF directory
    /// (transformers, vLLM), with the weights as the model computes with them.
    Export {
        /// A checkpoint directory (`runs/<name>/checkpoints/step-N`) or a run directory (newest).
        #[arg(long)]
        checkpoint: PathBuf,
        /// gguf-f32 | gguf-f16 | gguf-q8_0 | gguf-q4_0 | gguf-mxfp4 | gguf-tq1_0 | gguf-tq2_0 |
        /// hf (bf16) | hf-f32 | ct-w4a16 | ct-w4a16-asym | ct-w2a16 | ct-w2a16-asym | ct-fp8 |
        /// ct-nvfp4 | ct-mxfp4.
        #[arg(long)]
        format: String,
        /// The output: a .gguf file, or a directory for hf (written atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run an ablation sweep: every arm x axis value x seed as its own run directory; finished
    /// runs are skipped, interrupted ones resumed.
    Sweep {
        /// The sweep file (TOML).
        #[arg(long)]
        file: PathBuf,
        /// Runs trained at once (default: the file's sweep.jobs).
        #[arg(long)]
        jobs: Option<usize>,
        /// List the expanded runs and their state; train nothing.
        #[arg(long)]
        dry_run: bool,
        /// Passed to every run: see `nibble train --allow-unused-rules`.
        #[arg(long)]
        allow_unused_rules: bool,
    },
    /// Benchmarks on a device, measured in one run: kernel bandwidth against a device copy, or
    /// training step time of precision schemes as ratios to a base scheme.
    Bench {
        #[command(subcommand)]
        what: bench_cmd::What,
    },
    /// Tables (README section, CSV) and plots of a sweep, from its run directories.
    Report {
        /// The sweep's directory (holding the sweep file and its runs).
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    nibble_ops::host_memory::keep_freed_memory();
    // A panic (a bug) is reported once, as `error: internal error: ...` with its location, and
    // exits 1 like any runtime failure instead of Rust's default text and 101.
    nibble_train::panics::install_hook();
    let cli = Cli::parse();
    let result = nibble_train::panics::catch(|| dispatch(cli.command))
        .unwrap_or_else(|m| Err((1, format!("internal error: {m}"))));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, message)) => {
            eprintln!("error: {message}");
            ExitCode::from(code)
        }
    }
}

fn dispatch(command: Command) -> Result<(), (u8, String)> {
    // Exists only so that tests can reach the top-level catch: no command is known to panic.
    if std::env::var_os("NIBBLE_DEBUG_PANIC").is_some_and(|v| v == "1") {
        panic!("NIBBLE_DEBUG_PANIC=1");
    }
    match command {
        Command::Train {
            recipe,
            set,
            resume,
            stop_after,
            check,
            allow_unused_rules,
        } => train_cmd::run(
            &recipe,
            &set,
            &train_cmd::Args {
                resume,
                stop_after,
                check,
                allow_unused_rules,
            },
        ),
        Command::Eval {
            checkpoint,
            batches,
        } => eval_cmd::run(&checkpoint, batches),
        Command::Generate {
            checkpoint,
            prompt,
            max_tokens,
            temperature,
            top_k,
            seed,
        } => generate_cmd::run(&generate_cmd::Args {
            checkpoint: &checkpoint,
            prompt: &prompt,
            max_tokens,
            temperature,
            top_k,
            seed,
        }),
        Command::Export {
            checkpoint,
            format,
            out,
        } => export_cmd::run(&checkpoint, &format, &out),
        Command::Sweep {
            file,
            jobs,
            dry_run,
            allow_unused_rules,
        } => sweep_cmd::run(&file, jobs, dry_run, allow_unused_rules),
        Command::Report { dir } => report_cmd::run(&dir),
        Command::Bench { what } => bench_cmd::run(what),
    }
}
