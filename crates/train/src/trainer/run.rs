//! `train`: the run's lifecycle, top to bottom: run directory → parts (data, model, optimizer)
//! → resume or fresh state → the step loop (log, evaluate, checkpoint) → summary.

use std::path::PathBuf;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use nibble_model::{ForwardCtx, LpBackend};
use nibble_ops::fallbacks;
use nibble_ops::keys::child;

use super::block_ap::{BlockAp, block_optimizer};
use super::error::TrainError;
use super::eval::{EvalResult, evaluate, evaluate_with};
use super::parts::Parts;
use super::preflight::preflight;
use super::qat_stats::QatStats;
use super::report::Reporter;
use super::resume::{fresh_state, resume};
use super::run_dir::RunDir;
use super::sparsity_stats::SparsityStats;
use super::step::{StepSetup, StepStats, train_step};
use super::summary::RunSummaryFile;
use crate::checkpoint::{self, TrainState};
use crate::objective::{CrossEntropy, Distill, Objective, intervene};
use crate::recipe::KeyError;
use crate::sections::Recipe;

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
    /// Rules (`[precision]`, `[qat]`, `[sparsity]`) that select no layer are warnings, not
    /// errors.
    pub allow_unused_rules: bool,
    /// Refuse a run estimated to need more bytes than this (default: the device's memory).
    pub memory_limit: Option<u64>,
    /// This process's data-parallel peer (set by the launcher for each peer thread).
    pub peer: Option<super::peer::Peer>,
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
    let world = recipe.distributed.world();
    if world > 1 && opts.peer.is_none() {
        return super::launch::launch::<B>(recipe, resolved_toml, opts, device);
    }
    let t_start = Instant::now();
    let (mut parts, warnings) = preflight::<B>(recipe, opts, device)?;
    // A peer's run directory was prepared by the launcher: it only reads it.
    let dir = match opts.peer {
        Some(_) => RunDir::plan(recipe, resolved_toml, opts)?,
        None => RunDir::prepare(recipe, resolved_toml, opts)?,
    };
    let rank = opts.peer.as_ref().map_or(0, |p| p.rank);
    let prologue = parts.prologue();
    let total = prologue + recipe.run.steps;
    // A checkpoint inside Block-AP holds the current block's optimizer, not the run's.
    let mut stage_opt = None;
    let mut state = match &dir.resume_from {
        Some(ckpt) => {
            let step = checkpoint::saved_step(ckpt)?;
            if step < prologue {
                let bap = parts.block_ap.as_ref().expect("prologue is Block-AP");
                let k = (step / recipe.block_ap.iters_per_block()) as usize;
                stage_opt = Some(block_optimizer(recipe, &bap.model, &parts.params, k)?);
            }
            resume(
                ckpt,
                (rank == 0).then_some(dir.path.as_path()),
                &dir.hash,
                &mut parts,
                stage_opt.as_mut(),
                world as u64,
                device,
            )?
        }
        None => fresh_state(&dir.hash, world as u64),
    };
    // Only peer 0 writes metrics, events and checkpoints.
    let mut report = match rank {
        0 => Reporter::new(recipe, &dir.path, opts.quiet, state.step)?,
        _ => Reporter::silent(),
    };
    for w in warnings {
        report.say(format!("warning: {w}"));
    }
    report.bar.set_length(total);
    report.say(format!(
        "{}: {} params ({} non-embedding), {} train / {} val tokens, unigram baseline {:.3} bpb",
        dir.path.display(),
        parts.params.numel(),
        parts.arch.non_embedding_params(),
        parts.data.train.tokens.len(),
        parts.data.val.tokens.len(),
        parts.unigram_bpb
    ));
    fallbacks::reset();
    let wall_before = state.wall_secs;
    let mut converted = false;
    if state.step < prologue {
        let bap = parts.block_ap.as_ref().expect("prologue is Block-AP");
        let k = (state.step / recipe.block_ap.iters_per_block()) as usize;
        let opt = match stage_opt {
            Some(o) => o,
            None => block_optimizer(recipe, &bap.model, &parts.params, k)?,
        };
        let wall = || wall_before + t_start.elapsed().as_secs_f64();
        let mut stage = BlockAp {
            recipe,
            dir: &dir,
            report: &mut report,
            device,
            stop_after: opts.stop_after,
            wall_secs: &wall,
        };
        if stage.run(&mut parts, &mut state, opt)? {
            let n = parts
                .model
                .convert_to_codes(&mut parts.params)
                .map_err(|m| KeyError::new("qat.modules", m))?;
            report.say(format!(
                "step {}: Block-AP done; {n} layers converted to integer codes",
                state.step
            ));
            converted = true;
        }
    }
    let mut lp = Loop::new(
        recipe,
        &dir,
        &mut parts,
        &mut report,
        device,
        t_start,
        wall_before,
    );
    lp.peer = opts.peer.clone();
    // The conversion's checkpoint; a run without main steps (RTN, Block-AP only) saves it as
    // its last.
    if converted || (total == prologue && state.step == total) {
        let last = state.step == total;
        lp.maybe_checkpoint(&mut state, last)?;
    }
    if state.step >= prologue {
        lp.run(&mut state, opts.stop_after)?;
    }
    let (last_eval, run_tokens, run_t) = (lp.last_eval, lp.run_tokens, lp.run_t);
    if let Some(p) = &opts.peer {
        // Time in all-reduces (the exchange and the wait for the slowest peer) over the
        // training loop's time: the data-parallel overhead.
        let frac = p.watch.spent_secs(p.rank) / run_t.elapsed().as_secs_f64().max(1e-9);
        report.say(format!(
            "data parallel: {:.1}% of the training loop in all-reduce ({} peers)",
            100.0 * frac,
            p.world
        ));
        report.emit(state.step, &[("dist/allreduce_fraction", frac)])?;
    }
    report.bar.finish_and_clear();
    let final_eval = match last_eval {
        Some((s, ev)) if s == state.step => ev,
        _ => {
            let ev = eval_now(recipe, &parts, state.step, device)?;
            // A run that ends without a training step (an EfficientQAT conversion or Block-AP
            // run) logs its one evaluation like any other.
            if state.step == total {
                report.emit(state.step, &[("val/loss", ev.loss), ("val/bpb", ev.bpb)])?;
            }
            ev
        }
    };
    report_fallbacks(&mut report, state.step)?;
    report.flush()?;
    let summary = TrainSummary {
        run_dir: dir.path.clone(),
        steps: state.step,
        final_eval,
        unigram_bpb: parts.unigram_bpb,
        params: parts.params.numel(),
        tokens_per_sec: run_tokens as f64 / run_t.elapsed().as_secs_f64().max(1e-9),
        wall_secs: t_start.elapsed().as_secs_f64(),
    };
    if state.step == total && rank == 0 {
        RunSummaryFile {
            recipe_hash: dir.hash.clone(),
            steps: state.step,
            tokens: state.tokens,
            val_loss: summary.final_eval.loss,
            val_bpb: summary.final_eval.bpb,
            best_val_loss: state.best_val_loss,
            unigram_bpb: parts.unigram_bpb,
            params: summary.params,
            wall_secs: wall_before + summary.wall_secs,
        }
        .write(&dir.path)?;
    }
    Ok(summary)
}

/// Device primitives that ran on the host this run (GPU backends only): one log line and one
/// metric per primitive, so a run that copies device → host → device is visible.
fn report_fallbacks(report: &mut Reporter, step: u64) -> Result<(), TrainError> {
    let Some(line) = fallbacks::summary() else {
        return Ok(());
    };
    report.say(format!("warning: {line}"));
    let names: Vec<(String, f64)> = fallbacks::counts()
        .into_iter()
        .map(|(p, n)| (format!("device/host_fallbacks/{}", p.name()), n as f64))
        .collect();
    let values: Vec<(&str, f64)> = names.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    report.emit(step, &values)
}

/// Evaluation after `step` steps, with the model the parameters belong to at that step (inside
/// Block-AP: the fake-quantized one, whose weights are still floats).
fn eval_now<B: LpBackend>(
    recipe: &Recipe,
    parts: &Parts<B>,
    step: u64,
    device: &B::Device,
) -> Result<EvalResult, TrainError> {
    let model = match &parts.block_ap {
        Some(b) if step < b.iters => &b.model,
        _ => &parts.model,
    };
    let rope = model.rope::<B>(device);
    Ok(evaluate(
        model,
        step,
        &rope,
        &parts.params,
        &parts.data.val,
        recipe.run.batch_size,
        recipe.eval.batches,
        device,
    )?)
}

/// The step loop and what it does between steps.
struct Loop<'a, B: LpBackend> {
    recipe: &'a Recipe,
    dir: &'a RunDir,
    parts: &'a mut Parts<B>,
    report: &'a mut Reporter,
    device: &'a B::Device,
    t_start: Instant,
    wall_before: f64,
    window: Window,
    qat_stats: QatStats,
    sparsity_stats: SparsityStats,
    last_eval: Option<(u64, EvalResult)>,
    run_tokens: u64,
    run_t: Instant,
    /// The `[distill]` objective (teacher in the same step), else cross-entropy.
    distill: Option<Distill<B>>,
    /// This thread's data-parallel peer, if any.
    peer: Option<super::peer::Peer>,
}

/// Training metrics averaged over one logging interval.
struct Window {
    loss: f64,
    steps: u64,
    tokens: u64,
    t: Instant,
}

impl Window {
    fn new() -> Self {
        Window {
            loss: 0.0,
            steps: 0,
            tokens: 0,
            t: Instant::now(),
        }
    }
}

impl<'a, B: LpBackend> Loop<'a, B> {
    fn new(
        recipe: &'a Recipe,
        dir: &'a RunDir,
        parts: &'a mut Parts<B>,
        report: &'a mut Reporter,
        device: &'a B::Device,
        t_start: Instant,
        wall_before: f64,
    ) -> Self {
        let distill = parts
            .teacher
            .take()
            .map(|t| Distill::new(t, recipe.distill.clone(), recipe.run.seed, device));
        Loop {
            distill,
            recipe,
            dir,
            parts,
            report,
            device,
            t_start,
            wall_before,
            window: Window::new(),
            qat_stats: QatStats::default(),
            sparsity_stats: SparsityStats::default(),
            last_eval: None,
            run_tokens: 0,
            run_t: Instant::now(),
            peer: None,
        }
    }

    /// This peer's rank (0 without data parallelism): only rank 0 writes.
    fn rank(&self) -> usize {
        self.peer.as_ref().map_or(0, |p| p.rank)
    }

    fn run(&mut self, state: &mut TrainState, stop_after: Option<u64>) -> Result<(), TrainError> {
        let run = &self.recipe.run;
        let prologue = self.parts.prologue();
        let total = prologue + run.steps;
        let rope = self.parts.model.rope::<Autodiff<B>>(self.device);
        if self.recipe.eval.at_start && state.step == prologue && state.step < total {
            self.eval_at(state)?;
        }
        while state.step < total {
            if let Some(p) = &self.peer {
                p.debug_fault(state.step + 1, &mut self.parts.params);
            }
            let lr = self.parts.lr(state.step - prologue, self.recipe.optim.lr);
            // Every peer draws the whole global step's micro-batches (so the data cursor stays
            // the one-device cursor) and trains on its own consecutive share of them.
            let (rank, world) = self.peer.as_ref().map_or((0, 1), |p| (p.rank, p.world));
            let mut micro: Vec<_> = (0..run.grad_accum * world)
                .map(|_| self.parts.batcher.next_batch())
                .collect();
            let n = run.grad_accum;
            let micro: Vec<_> = micro.drain(rank * n..(rank + 1) * n).collect();
            let probe_grads = self.log_due(state.step + 1);
            let Parts {
                model, params, opt, ..
            } = &mut *self.parts;
            let objective: &dyn Objective<Autodiff<B>> = match &self.distill {
                Some(d) => d,
                None => &CrossEntropy,
            };
            let setup = StepSetup {
                model,
                rope: &rope,
                objective,
                grad_clip: self.recipe.optim.grad_clip,
                device: self.device,
                probe_grads,
                peer: self.peer.as_ref(),
            };
            let key = child(run.seed, state.step);
            let st = train_step(&setup, params, opt, &micro, lr, key, state.step);
            if !st.loss.is_finite() {
                return Err(TrainError::NonFiniteLoss {
                    step: state.step + 1,
                    loss: st.loss,
                });
            }
            state.step += 1;
            state.tokens += st.tokens;
            self.run_tokens += st.tokens;
            let w = &mut self.window;
            (w.loss, w.steps, w.tokens) = (w.loss + st.loss, w.steps + 1, w.tokens + st.tokens);
            let step = state.step;
            let last = step == total;
            if self.log_due(step) && self.rank() == 0 {
                self.log(step, lr, &st)?;
            }
            self.check_peers(step)?;
            self.maybe_eval(state, last)?;
            self.maybe_checkpoint(state, last)?;
            self.report.bar.set_position(step);
            if stop_after.is_some_and(|s| step >= s) {
                break;
            }
        }
        Ok(())
    }

    /// Every `[distributed] check_every` updates: the peers' parameters must agree bit for bit.
    fn check_peers(&self, step: u64) -> Result<(), TrainError> {
        let every = self.recipe.distributed.check_every;
        let Some(peer) = &self.peer else {
            return Ok(());
        };
        if every == 0 || !step.is_multiple_of(every) {
            return Ok(());
        }
        match peer.params_agree::<B>(step, &self.parts.params, self.device) {
            true => Ok(()),
            false => Err(TrainError::PeersDiverged { step }),
        }
    }

    /// Whether the training metrics are logged after `step` updates.
    fn log_due(&self, step: u64) -> bool {
        step.is_multiple_of(self.recipe.log.every)
            || step == self.parts.prologue() + self.recipe.run.steps
    }

    fn log(&mut self, step: u64, lr: f64, st: &StepStats) -> Result<(), TrainError> {
        let w = std::mem::replace(&mut self.window, Window::new());
        let tps = w.tokens as f64 / w.t.elapsed().as_secs_f64();
        let loss = w.loss / w.steps as f64;
        self.report.emit(
            step,
            &[
                ("train/loss", loss),
                ("train/lr", lr),
                ("train/grad_norm", st.grad_norm),
                ("train/tokens_per_sec", tps),
            ],
        )?;
        let qat = self
            .qat_stats
            .measure(&self.parts.model, &self.parts.params, step);
        let sparsity =
            self.sparsity_stats
                .measure(&self.parts.model, &self.parts.params, step, st.grad_probe);
        let distill = self
            .distill
            .as_ref()
            .map_or_else(Vec::new, Distill::take_metrics);
        let diagnostics: Vec<(&str, f64)> = qat
            .iter()
            .chain(&sparsity)
            .chain(&distill)
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        if !diagnostics.is_empty() {
            self.report.emit(step, &diagnostics)?;
        }
        self.report
            .bar
            .set_message(format!("loss {loss:.4} lr {lr:.2e} {tps:.0} tok/s"));
        // The window's clock restarts after the sinks, as the time spent logging is not training.
        self.window = Window::new();
        Ok(())
    }

    /// Whether an `every`-steps action (0: never) is due after `step`: also at budget
    /// checkpoints (WSD-S) and at the last step.
    fn due(&self, every: u64, step: u64, last: bool) -> bool {
        (every > 0 && step.is_multiple_of(every)) || self.budget_end(step) || last
    }

    /// Whether `step` (global) ends a WSD-S budget of the main steps.
    fn budget_end(&self, step: u64) -> bool {
        let main = step.checked_sub(self.parts.prologue());
        main.is_some_and(|m| m > 0 && self.parts.schedule.is_checkpoint_step(m))
    }

    /// Budget checkpoints (WSD-S) are evaluated too: their loss is what the budget delivers.
    fn maybe_eval(&mut self, state: &mut TrainState, last: bool) -> Result<(), TrainError> {
        let step = state.step;
        let every = self.recipe.eval.every;
        if !self.due(every, step, last) {
            return Ok(());
        }
        self.eval_at(state)
    }

    /// Evaluates after `state.step` steps: logged, said, and kept as the best loss so far.
    fn eval_at(&mut self, state: &mut TrainState) -> Result<(), TrainError> {
        let step = state.step;
        let ev = eval_now(self.recipe, self.parts, step, self.device)?;
        self.report
            .emit(step, &[("val/loss", ev.loss), ("val/bpb", ev.bpb)])?;
        if !ev.loss.is_finite() {
            return Err(TrainError::NonFiniteValLoss {
                step,
                loss: ev.loss,
            });
        }
        self.report.say(format!(
            "step {step}: val loss {:.4}, {:.4} bits/byte",
            ev.loss, ev.bpb
        ));
        state.best_val_loss = Some(state.best_val_loss.map_or(ev.loss, |b| b.min(ev.loss)));
        self.last_eval = Some((step, ev));
        self.eval_intervened(step)
    }

    /// In Teacher Intervention's stage 1, the validation loss with the teacher's signals in
    /// (`val/loss_intervened`; `val/loss` is the deployable model's, without them), under the
    /// mode of the next update.
    fn eval_intervened(&mut self, step: u64) -> Result<(), TrainError> {
        let Some(d) = &self.distill else {
            return Ok(());
        };
        let main = step.saturating_sub(self.parts.prologue());
        let Some(mode) = d.cfg.intervention_at(main, d.seed) else {
            return Ok(());
        };
        let model = &self.parts.model;
        let rope = model.rope::<B>(self.device);
        let batches = (self.recipe.run.batch_size, self.recipe.eval.batches);
        let prepare = |x: Tensor<B, 2, Int>, ctx: &mut ForwardCtx<B>| {
            let out = d.teacher_out(x, Some(mode));
            intervene(ctx, Some(mode), &out);
        };
        let ev = evaluate_with(
            model,
            step,
            &rope,
            &self.parts.params,
            &self.parts.data.val,
            batches,
            self.device,
            &prepare,
        )?;
        self.report
            .emit(step, &[("val/loss_intervened", ev.loss)])?;
        Ok(())
    }

    fn maybe_checkpoint(&mut self, state: &mut TrainState, last: bool) -> Result<(), TrainError> {
        let step = state.step;
        if !self.due(self.recipe.checkpoint.every, step, last) || self.rank() != 0 {
            return Ok(());
        }
        let (ck, schedule) = (&self.recipe.checkpoint, &self.parts.schedule);
        state.wall_secs = self.wall_before + self.t_start.elapsed().as_secs_f64();
        state.data_cursor = serde_json::to_value(self.parts.batcher.cursor()).expect("cursor json");
        self.report.flush()?;
        checkpoint::save(&self.dir.path, &self.parts.params, &self.parts.opt, state)?;
        let prologue = self.parts.prologue();
        let protect: Vec<u64> = schedule
            .checkpoint_steps()
            .iter()
            .map(|s| s + prologue)
            .collect();
        checkpoint::prune(&self.dir.path, ck.keep_last, &protect)?;
        Ok(())
    }
}
