use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::backend::Autodiff;
use indicatif::{ProgressBar, ProgressStyle};
use nibble_data::{BatchCursor, Batcher};
use nibble_model::{Llama, LpBackend, Params};
use nibble_ops::keys::child;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::TrainError;
use super::eval::{EvalResult, evaluate};
use super::step::train_step;
use crate::checkpoint::{self, TrainState, write_atomic};
use crate::metrics::{JsonlSink, Sink, TensorboardSink};
use crate::optim::AdamW;
use crate::recipe::KeyError;
use crate::schedule::Schedule;
use crate::sections::{Recipe, schedule_key_error};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Continue from the newest checkpoint of the run directory.
    pub resume: bool,
    /// No progress bar and no per-interval lines (tests).
    pub quiet: bool,
    /// Stop once this many steps are done, without an extra checkpoint (as if the process were
    /// killed there): for time-boxed sessions and interruption tests.
    pub stop_after: Option<u64>,
    /// Write the run here instead of `run.out_dir/run.name` (sweeps place runs relative to the
    /// sweep file, so the recipe and its hash do not depend on the caller's working directory).
    pub run_dir: Option<PathBuf>,
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub steps: u64,
    pub final_eval: EvalResult,
    pub unigram_bpb: f64,
    pub params: usize,
    pub tokens_per_sec: f64,
    pub wall_secs: f64,
}

/// Train per `recipe` on `device`. `resolved_toml` is the fully merged recipe text; it is saved
/// into the run directory and its hash guards `--resume` against mixing runs.
pub fn train<B: LpBackend>(
    recipe: &Recipe,
    resolved_toml: &str,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<TrainSummary, TrainError> {
    recipe.validate()?;
    let t_start = Instant::now();
    let run = &recipe.run;
    let run_dir = opts
        .run_dir
        .clone()
        .unwrap_or_else(|| Path::new(&run.out_dir).join(&run.name));
    let hash = recipe_hash(resolved_toml);
    let existing = checkpoint::latest(&run_dir);
    match (opts.resume, &existing) {
        (false, Some(_)) => return Err(TrainError::RunExists(run_dir)),
        (true, None) => return Err(TrainError::NothingToResume(run_dir)),
        _ => {}
    }
    if !opts.resume {
        // A fresh start may find the leftovers of a run killed before its first checkpoint:
        // its metrics would otherwise be appended to.
        for stale in [SUMMARY_FILE, "metrics.jsonl"] {
            remove_if_exists(&run_dir.join(stale)).map_err(TrainError::io(&run_dir))?;
        }
        remove_dir_if_exists(&run_dir.join("tb")).map_err(TrainError::io(&run_dir))?;
        write_atomic(&run_dir.join("recipe.toml"), resolved_toml.as_bytes())
            .map_err(TrainError::io(&run_dir))?;
    }

    let data = nibble_data::load(&recipe.data)?;
    let unigram_bpb = data.unigram_bpb()?;
    let arch = recipe
        .model
        .resolve(Some(data.vocab_size))
        .map_err(|e| KeyError::new(e.key, e.message).within("model"))?;
    let policy = recipe
        .precision
        .policy()
        .map_err(|e| KeyError::new(e.key, e.message).within("precision"))?;
    let model = Llama::new(arch.clone(), policy);
    model
        .check_shapes(run.batch_size * arch.seq_len)
        .map_err(|m| KeyError::new("precision", m))?;
    let schedule = Schedule::new(&recipe.schedule, run.steps).map_err(schedule_key_error)?;
    // A resumed run overwrites every tensor from the checkpoint: skip the random init then.
    let mut params = if opts.resume {
        Params::<B>::zeros(&arch, device)
    } else {
        Params::<B>::init(&arch, run.seed, device)
    };
    let mut opt = AdamW::new(recipe.optim.clone(), &params);
    let mut batcher = Batcher::new(
        data.train.tokens.clone(),
        run.batch_size,
        arch.seq_len,
        run.seed,
    )?;
    let mut state = TrainState {
        step: 0,
        tokens: 0,
        data_cursor: serde_json::Value::Null,
        recipe_hash: hash.clone(),
        best_val_loss: None,
        wall_secs: 0.0,
        quant_state: Default::default(),
    };
    if let Some(dir) = existing.filter(|_| opts.resume) {
        state = checkpoint::load(&dir, &mut params, &mut opt, device)?;
        if state.recipe_hash != hash {
            return Err(TrainError::RecipeMismatch { dir });
        }
        model
            .load_quant_state(&state.quant_state)
            .map_err(|message| {
                TrainError::Checkpoint(checkpoint::CheckpointError::Format {
                    path: dir.clone(),
                    message,
                })
            })?;
        let cursor: BatchCursor =
            serde_json::from_value(state.data_cursor.clone()).map_err(|e| {
                TrainError::Checkpoint(checkpoint::CheckpointError::Format {
                    path: dir.clone(),
                    message: e.to_string(),
                })
            })?;
        batcher.resume(cursor)?;
        truncate_jsonl(&run_dir.join("metrics.jsonl"), state.step)
            .map_err(TrainError::io(&run_dir))?;
    }

    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    if recipe.log.tensorboard {
        sinks.push(Box::new(
            TensorboardSink::new(&run_dir.join("tb")).map_err(TrainError::io(&run_dir))?,
        ));
    }
    if recipe.log.jsonl {
        sinks.push(Box::new(
            JsonlSink::new(&run_dir.join("metrics.jsonl")).map_err(TrainError::io(&run_dir))?,
        ));
    }

    let tty = std::io::stderr().is_terminal();
    let bar = if opts.quiet || !recipe.log.progress || !tty {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(run.steps)
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg} ETA {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    bar.set_position(state.step);
    let say = |line: String| {
        if !opts.quiet {
            if tty {
                bar.println(line)
            } else {
                println!("{line}")
            }
        }
    };
    say(format!(
        "{}: {} params ({} non-embedding), {} train / {} val tokens, unigram baseline {:.3} bpb",
        run_dir.display(),
        params.numel(),
        arch.non_embedding_params(),
        data.train.tokens.len(),
        data.val.tokens.len(),
        unigram_bpb
    ));

    let ad_rope = model.rope::<Autodiff<B>>(device);
    let rope = model.rope::<B>(device);
    let eval_now = |params: &Params<B>| {
        evaluate(
            &model,
            &rope,
            params,
            &data.val,
            run.batch_size,
            recipe.eval.batches,
            device,
        )
    };
    let wall_before = state.wall_secs;
    let (mut win_loss, mut win_n, mut win_tokens, mut win_t) = (0.0, 0u64, 0u64, Instant::now());
    let mut last_eval: Option<(u64, EvalResult)> = None;
    let (mut run_tokens, run_t) = (0u64, Instant::now());
    while state.step < run.steps {
        let lr = schedule.lr(state.step, recipe.optim.lr);
        let micro: Vec<_> = (0..run.grad_accum).map(|_| batcher.next_batch()).collect();
        let st = train_step(
            &model,
            &ad_rope,
            &mut params,
            &mut opt,
            &micro,
            lr,
            recipe.optim.grad_clip,
            child(run.seed, state.step),
            device,
        );
        if !st.loss.is_finite() {
            return Err(TrainError::NonFiniteLoss {
                step: state.step,
                loss: st.loss,
            });
        }
        state.step += 1;
        state.tokens += st.tokens;
        run_tokens += st.tokens;
        (win_loss, win_n, win_tokens) = (win_loss + st.loss, win_n + 1, win_tokens + st.tokens);
        let step = state.step;
        let last = step == run.steps;
        if step % recipe.log.every == 0 || last {
            let tps = win_tokens as f64 / win_t.elapsed().as_secs_f64();
            let loss = win_loss / win_n as f64;
            emit(
                &mut sinks,
                &run_dir,
                step,
                &[
                    ("train/loss", loss),
                    ("train/lr", lr),
                    ("train/grad_norm", st.grad_norm),
                    ("train/tokens_per_sec", tps),
                ],
            )?;
            bar.set_message(format!("loss {loss:.4} lr {lr:.2e} {tps:.0} tok/s"));
            (win_loss, win_n, win_tokens, win_t) = (0.0, 0, 0, Instant::now());
        }
        // Budget checkpoints (WSD-S) are evaluated too: their loss is what the budget delivers.
        if (recipe.eval.every > 0 && step % recipe.eval.every == 0)
            || schedule.is_checkpoint_step(step)
            || last
        {
            let ev = eval_now(&params)?;
            emit(
                &mut sinks,
                &run_dir,
                step,
                &[("val/loss", ev.loss), ("val/bpb", ev.bpb)],
            )?;
            say(format!(
                "step {step}: val loss {:.4}, {:.4} bits/byte",
                ev.loss, ev.bpb
            ));
            state.best_val_loss = Some(state.best_val_loss.map_or(ev.loss, |b| b.min(ev.loss)));
            last_eval = Some((step, ev));
        }
        let ckpt = (recipe.checkpoint.every > 0 && step % recipe.checkpoint.every == 0)
            || schedule.is_checkpoint_step(step)
            || last;
        if ckpt {
            state.wall_secs = wall_before + t_start.elapsed().as_secs_f64();
            state.quant_state = model.quant_state();
            state.data_cursor = serde_json::to_value(batcher.cursor()).expect("cursor json");
            flush(&mut sinks, &run_dir)?;
            checkpoint::save(&run_dir, &params, &opt, &state)?;
            checkpoint::prune(
                &run_dir,
                recipe.checkpoint.keep_last,
                schedule.checkpoint_steps(),
            )?;
        }
        bar.set_position(step);
        if opts.stop_after.is_some_and(|s| step >= s) {
            break;
        }
    }
    bar.finish_and_clear();
    let final_eval = match last_eval {
        Some((s, ev)) if s == state.step => ev,
        _ => eval_now(&params)?,
    };
    flush(&mut sinks, &run_dir)?;
    let summary = TrainSummary {
        run_dir,
        steps: state.step,
        final_eval,
        unigram_bpb,
        params: params.numel(),
        tokens_per_sec: run_tokens as f64 / run_t.elapsed().as_secs_f64().max(1e-9),
        wall_secs: t_start.elapsed().as_secs_f64(),
    };
    if state.step == run.steps {
        let record = RunSummaryFile {
            recipe_hash: hash,
            steps: state.step,
            tokens: state.tokens,
            val_loss: summary.final_eval.loss,
            val_bpb: summary.final_eval.bpb,
            best_val_loss: state.best_val_loss,
            unigram_bpb,
            params: summary.params,
            wall_secs: wall_before + summary.wall_secs,
        };
        let text = serde_json::to_string_pretty(&record).expect("summary json");
        write_atomic(&summary.run_dir.join(SUMMARY_FILE), text.as_bytes())
            .map_err(TrainError::io(&summary.run_dir))?;
    }
    Ok(summary)
}

/// Written (atomically) when a run has done all its steps: its presence means "finished".
pub const SUMMARY_FILE: &str = "summary.json";

/// The content of `summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummaryFile {
    /// SHA-256 of the resolved recipe the run was trained with (`recipe.toml`).
    pub recipe_hash: String,
    pub steps: u64,
    pub tokens: u64,
    /// Validation loss (nats/token) and bits/byte after the last step.
    pub val_loss: f64,
    pub val_bpb: f64,
    pub best_val_loss: Option<f64>,
    pub unigram_bpb: f64,
    pub params: usize,
    /// Wall-clock seconds summed over every process that worked on the run.
    pub wall_secs: f64,
}

/// SHA-256 (hex) of a resolved recipe, as stored in checkpoints and `summary.json`.
pub fn recipe_hash(resolved_toml: &str) -> String {
    format!("{:x}", Sha256::digest(resolved_toml.as_bytes()))
}

fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn remove_dir_if_exists(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn emit(
    sinks: &mut [Box<dyn Sink>],
    run_dir: &Path,
    step: u64,
    values: &[(&str, f64)],
) -> Result<(), TrainError> {
    for s in sinks.iter_mut() {
        s.scalars(step, values).map_err(TrainError::io(run_dir))?;
    }
    Ok(())
}

fn flush(sinks: &mut [Box<dyn Sink>], run_dir: &Path) -> Result<(), TrainError> {
    for s in sinks.iter_mut() {
        s.flush().map_err(TrainError::io(run_dir))?;
    }
    Ok(())
}

/// Drop metric lines logged after `step` (they belong to work the resumed run redoes).
fn truncate_jsonl(path: &Path, step: u64) -> std::io::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .ok()
                .and_then(|v| v["step"].as_u64())
                .is_some_and(|s| s <= step)
        })
        .map(|l| format!("{l}\n"))
        .collect();
    write_atomic(path, kept.as_bytes())
}
