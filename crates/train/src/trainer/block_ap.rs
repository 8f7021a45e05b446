//! EfficientQAT's Block-AP stage (`[block_ap]`): for each decoder block in order, train its
//! weights, norm gains, steps and zero points so that the block on the quantized model's
//! activations reproduces the full-precision block on the full-precision activations (MSE), with
//! two AdamW groups (`lr_quant`, `lr_weight`), no weight decay, no clipping, a cosine per block
//! to lr/`min_lr_factor`; then freeze the block on its grid and carry the quantized activations
//! to the next block. Each iteration is one optimizer step of the run (global steps
//! `0..blocks·iters`), so checkpoints, `--stop-after` and resume work mid-block: a resume
//! recomputes the calibration activations entering the current block from the checkpoint's
//! frozen blocks and the full-precision weights, bit for bit what the uninterrupted run held.
//!
//! Memory: the calibration activations are kept three times (`X_fp`, `X_q`, the targets
//! `Y_fp`), `3·samples·seq_len·d_model` floats, plus the same for the validation samples; one
//! block trains at a time (its parameters and two moments) on `batch` sequences.

use std::collections::BTreeMap;
use std::time::Instant;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_data::{Batcher, TokenSplit};
use nibble_model::layers::Rope;
use nibble_model::techniques::StepInfo;
use nibble_model::{ForwardCtx, Llama, LpBackend, Params};
use nibble_ops::keys::child;

use super::error::TrainError;
use super::parts::{BlockApParts, Parts};
use super::report::Reporter;
use super::run_dir::RunDir;
use super::step::leaves;
use crate::checkpoint::{self, TrainState};
use crate::optim::{AdamW, GroupConfig, Groups, OptimConfig};
use crate::recipe::KeyError;
use crate::sections::Recipe;

/// Rows per forward when activations are carried from block to block (fixed, so a resumed run
/// computes them exactly as the uninterrupted one).
const CHUNK: usize = 8;
/// Key streams of the calibration draws and the per-epoch orders.
const CALIB_KEY: u64 = 0x626c_6f63_6b2d_6170; // "block-ap"

/// The optimizer of block `k`: its steps and zero points at `lr_quant`, its projections'
/// weights and norm gains at `lr_weight` (or frozen per `train_weights` / `train_norms`),
/// everything else frozen; AdamW with PyTorch's defaults (β 0.9/0.999, ε 1e-8), no decay.
pub(super) fn block_optimizer<B: LpBackend>(
    recipe: &Recipe,
    model: &Llama,
    params: &Params<B>,
    k: usize,
) -> Result<AdamW<B>, KeyError> {
    let cfg = &recipe.block_ap;
    let bp = model.block_params(k);
    let (lr_q, lr_w) = (cfg.lr_quant, cfg.lr_weight(recipe.qat.bits));
    let prefix = format!("model.layers.{k}");
    let group = |pattern: String, name: &str, lr: f64, frozen: bool| GroupConfig {
        pattern,
        name: Some(name.into()),
        lr_mult: None,
        lr: Some(lr),
        weight_decay: Some(0.0),
        frozen,
    };
    let mut groups = Vec::new();
    for (suffix, name) in [
        ("weight_scale", "block_ap_scales"),
        ("weight_zero_point", "block_ap_zero_points"),
    ] {
        if bp.slots.iter().any(|(n, _)| n.ends_with(suffix)) {
            groups.push(group(format!("{prefix}.*.{suffix}"), name, lr_q, false));
        }
    }
    let w = !cfg.train_weights;
    groups.push(group(
        format!("{prefix}.*_proj.weight"),
        "block_ap_weights",
        lr_w,
        w,
    ));
    let n = !cfg.train_norms;
    groups.push(group(
        format!("{prefix}.*layernorm.weight"),
        "block_ap_norms",
        lr_w,
        n,
    ));
    groups.push(group("*".into(), "block_ap_frozen", 1.0, true));
    let optim = OptimConfig {
        lr: 1.0,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        grad_clip: 0.0,
        groups,
    };
    let names: Vec<String> = params.tensors.keys().cloned().collect();
    let tech = model.technique_params().into_iter().collect();
    let groups =
        Groups::resolve(&optim.groups, 0.0, &names, &tech).map_err(|e| e.within("block_ap"))?;
    Ok(AdamW::new(optim, groups, params))
}

/// Cosine from 1 to 1/`min_lr_factor` over the block's iterations (the schedule factor of
/// both groups' peak lr at iteration `i`).
fn cosine(i: u64, iters: u64, min_factor: f64) -> f64 {
    let end = 1.0 / min_factor;
    end + (1.0 - end) * 0.5 * (1.0 + (std::f64::consts::PI * i as f64 / iters as f64).cos())
}

/// `n` sequences of `seq` tokens drawn from `split` (a fixed draw per seed) as ids `[n, seq]`.
fn sample_ids<B: LpBackend>(
    split: &TokenSplit,
    n: usize,
    seq: usize,
    seed: u64,
    device: &B::Device,
) -> Result<Tensor<B, 2, Int>, TrainError> {
    let b = Batcher::new(split.tokens.clone(), n, seq, seed)
        .map_err(|e| KeyError::new("block_ap.samples", e.to_string()))?
        .next_batch();
    Ok(super::step::ids::<B>(&b.inputs, b.rows, b.seq_len, device))
}

/// A permutation of `0..n` for `(seed, block, epoch)` (Fisher–Yates on counter-based draws).
fn order(n: usize, seed: u64, block: usize, epoch: u64) -> Vec<i64> {
    let key = child(child(child(seed, CALIB_KEY), block as u64), epoch);
    let mut v: Vec<i64> = (0..n as i64).collect();
    for i in (1..n).rev() {
        let j = (child(key, i as u64) % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// Block `k` of `model` on `x` in chunks of [`CHUNK`] rows, no autodiff.
fn carry<B: LpBackend>(
    model: &Llama,
    k: usize,
    x: &Tensor<B, 3>,
    params: &Params<B>,
    rope: &Rope<B>,
    step: u64,
) -> Tensor<B, 3> {
    let n = x.dims()[0];
    let parts: Vec<Tensor<B, 3>> = (0..n)
        .step_by(CHUNK)
        .map(|r| {
            let rows = x.clone().narrow(0, r, CHUNK.min(n - r));
            let mut ctx = ForwardCtx::new(child(CALIB_KEY, k as u64), step, false);
            model.block(k, rows, params, rope, &mut ctx)
        })
        .collect();
    Tensor::cat(parts, 0)
}

fn mse<B: Backend>(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f64 {
    scalar((a - b).powf_scalar(2.0).mean())
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .expect("scalar")[0]
}

/// Activations of the calibration (train) and validation samples: full precision and quantized.
struct Acts<B: LpBackend> {
    fp: Tensor<B, 3>,
    q: Tensor<B, 3>,
    val_fp: Tensor<B, 3>,
    val_q: Tensor<B, 3>,
}

/// The stage's driver for one process: from `state.step` (inside Block-AP) to its end, or to
/// `stop_after`.
pub(super) struct BlockAp<'a, B: LpBackend> {
    pub recipe: &'a Recipe,
    pub dir: &'a RunDir,
    pub report: &'a mut Reporter,
    pub device: &'a B::Device,
    pub stop_after: Option<u64>,
    pub wall_secs: &'a dyn Fn() -> f64,
}

impl<B: LpBackend> BlockAp<'_, B> {
    /// Runs Block-AP from `state.step`; `opt` is the current block's optimizer (loaded from the
    /// checkpoint on resume). Returns whether the stage is complete.
    pub fn run(
        &mut self,
        parts: &mut Parts<B>,
        state: &mut TrainState,
        mut opt: AdamW<B>,
    ) -> Result<bool, TrainError> {
        let cfg = &self.recipe.block_ap;
        let seed = self.recipe.run.seed;
        let bap = parts.block_ap.as_ref().expect("Block-AP parts");
        let iters = cfg.iters_per_block();
        let (blocks, seq) = (bap.model.n_blocks(), parts.arch.seq_len);
        let fp_model = {
            let mut m = bap.model.clone();
            m.set_qat_start(u64::MAX);
            m
        };
        let rope = bap.model.rope::<B>(self.device);
        let rope_ad = bap.model.rope::<Autodiff<B>>(self.device);
        let d = self.device;
        let cal = sample_ids::<B>(
            &parts.data.train,
            cfg.samples,
            seq,
            child(seed, CALIB_KEY),
            d,
        )?;
        let val = sample_ids::<B>(&parts.data.val, cfg.val_samples, seq, CALIB_KEY, d)?;
        let k0 = (state.step / iters) as usize;
        self.say_memory(parts, bap, k0, state.step);
        let mut acts = Acts {
            fp: bap.model.embed(&bap.fp_params, cal.clone()),
            q: bap.model.embed(&parts.params, cal),
            val_fp: bap.model.embed(&bap.fp_params, val.clone()),
            val_q: bap.model.embed(&parts.params, val),
        };
        for j in 0..k0 {
            acts.fp = carry(&fp_model, j, &acts.fp, &bap.fp_params, &rope, 0);
            acts.val_fp = carry(&fp_model, j, &acts.val_fp, &bap.fp_params, &rope, 0);
            acts.q = carry(&bap.model, j, &acts.q, &parts.params, &rope, 0);
            acts.val_q = carry(&bap.model, j, &acts.val_q, &parts.params, &rope, 0);
        }
        for k in k0..blocks {
            let t = Instant::now();
            let bap = parts.block_ap.as_ref().expect("Block-AP parts");
            let y = carry(&fp_model, k, &acts.fp, &bap.fp_params, &rope, 0);
            let val_y = carry(&fp_model, k, &acts.val_fp, &bap.fp_params, &rope, 0);
            let model = bap.model.clone();
            let first = k as u64 * iters;
            if state.step == first {
                let before = mse(
                    carry(&model, k, &acts.val_q, &parts.params, &rope, 0),
                    val_y.clone(),
                );
                self.report
                    .emit(first, &[("block_ap/val_mse_before", before)])?;
            }
            if k > k0 || state.step == first {
                opt = block_optimizer(self.recipe, &model, &parts.params, k)?;
            }
            let mut window = (0.0, 0u64);
            while state.step < first + iters {
                let i = state.step - first;
                let per_epoch = cfg.samples.div_ceil(cfg.batch) as u64;
                let (epoch, j) = (i / per_epoch, (i % per_epoch) as usize);
                let ord = order(cfg.samples, seed, k, epoch);
                let rows = &ord[j * cfg.batch..((j + 1) * cfg.batch).min(cfg.samples)];
                let idx =
                    Tensor::<B, 1, Int>::from_data(TensorData::new(rows.to_vec(), [rows.len()]), d);
                let lr = cosine(i, iters, cfg.min_lr_factor);
                let loss = self.iteration(
                    &model,
                    k,
                    &mut parts.params,
                    &mut opt,
                    &acts.q,
                    &y,
                    idx,
                    &rope_ad,
                    lr,
                    state.step,
                );
                if !loss.is_finite() {
                    return Err(TrainError::NonFiniteLoss {
                        step: state.step + 1,
                        loss,
                    });
                }
                state.step += 1;
                state.tokens += (rows.len() * seq) as u64;
                window = (window.0 + loss, window.1 + 1);
                let step = state.step;
                if step.is_multiple_of(self.recipe.log.every) || step == first + iters {
                    let l = window.0 / window.1 as f64;
                    self.report
                        .emit(step, &[("block_ap/loss", l), ("block_ap/lr_factor", lr)])?;
                    window = (0.0, 0);
                }
                if step == first + iters {
                    break;
                }
                self.maybe_checkpoint(parts, &opt, state)?;
                if self.stop_after.is_some_and(|s| step >= s) {
                    return Ok(false);
                }
            }
            let at = StepInfo {
                step: state.step,
                train: false,
            };
            for name in model.block_params(k).linears {
                let l = model.linear(&name).expect("block layer");
                l.freeze_on_grid(&mut parts.params, at);
            }
            let after_q = carry(&model, k, &acts.val_q, &parts.params, &rope, 0);
            let after = mse(after_q.clone(), val_y.clone());
            let secs = t.elapsed().as_secs_f64();
            self.report.emit(
                state.step,
                &[
                    ("block_ap/val_mse_after", after),
                    ("block_ap/block_secs", secs),
                ],
            )?;
            self.report.say(format!("Block-AP block {k}: validation MSE {after:.6} after {iters} iterations ({secs:.1} s)"));
            acts.q = carry(&model, k, &acts.q, &parts.params, &rope, 0);
            acts.val_q = after_q;
            acts.fp = y;
            acts.val_fp = val_y;
            if state.step < blocks as u64 * iters {
                let next = block_optimizer(self.recipe, &model, &parts.params, k + 1)?;
                self.maybe_checkpoint(parts, &next, state)?;
                if self.stop_after.is_some_and(|s| state.step >= s) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// One Block-AP iteration on the rows `idx`: MSE of the quantized block on `x_q` against the
    /// targets, backward, AdamW. Returns the loss.
    #[allow(clippy::too_many_arguments)]
    fn iteration(
        &self,
        model: &Llama,
        k: usize,
        params: &mut Params<B>,
        opt: &mut AdamW<B>,
        x_q: &Tensor<B, 3>,
        y: &Tensor<B, 3>,
        idx: Tensor<B, 1, Int>,
        rope: &Rope<Autodiff<B>>,
        lr: f64,
        step: u64,
    ) -> f64 {
        let leaves = leaves(params, opt);
        let x = Tensor::<Autodiff<B>, 3>::from_inner(x_q.clone().select(0, idx.clone()));
        let y = Tensor::<Autodiff<B>, 3>::from_inner(y.clone().select(0, idx));
        let mut ctx = ForwardCtx::new(child(self.recipe.run.seed, step), step, true);
        let out = model.block(k, x, &leaves, rope, &mut ctx);
        let loss = (out - y).powf_scalar(2.0).mean();
        let value = scalar(loss.clone().inner());
        let g = loss.backward();
        let grads: BTreeMap<String, Tensor<B, 2>> = leaves
            .tensors
            .iter()
            .filter_map(|(n, t)| Some((n.clone(), t.grad(&g)?)))
            .collect();
        opt.step(params, &grads, lr);
        value
    }

    fn maybe_checkpoint(
        &mut self,
        parts: &Parts<B>,
        opt: &AdamW<B>,
        state: &mut TrainState,
    ) -> Result<(), TrainError> {
        let every = self.recipe.checkpoint.every;
        if !(every > 0 && state.step.is_multiple_of(every)) {
            return Ok(());
        }
        state.wall_secs = (self.wall_secs)();
        state.data_cursor = serde_json::to_value(parts.batcher.cursor()).expect("cursor json");
        self.report.flush()?;
        checkpoint::save(&self.dir.path, &parts.params, opt, state)?;
        checkpoint::prune(&self.dir.path, self.recipe.checkpoint.keep_last, &[])?;
        Ok(())
    }

    /// The stage's plan and memory, once per process.
    fn say_memory(&self, parts: &Parts<B>, bap: &BlockApParts<B>, k0: usize, step: u64) {
        let cfg = &self.recipe.block_ap;
        let a = &parts.arch;
        let f = 4.0 / (1u64 << 20) as f64;
        let acts = 3.0 * ((cfg.samples + cfg.val_samples) * a.seq_len * a.d_model) as f64 * f;
        let bp = bap.model.block_params(k0.min(bap.model.n_blocks() - 1));
        let block: usize = bp
            .weights
            .iter()
            .chain(&bp.norms)
            .chain(bp.slots.iter().map(|(n, _)| n))
            .map(|n| {
                parts
                    .params
                    .tensors
                    .get(n)
                    .map_or(0, |t| t.shape().num_elements())
            })
            .sum();
        let batch_acts = (cfg.batch * a.seq_len * (4 * a.d_model + 3 * a.d_ff)) as f64 * f;
        self.report.say(format!(
            "Block-AP: {} blocks × {} iterations from step {step}; calibration {} × {} tokens; \
             memory: activations {acts:.1} MiB (3 copies), a block's parameters and moments \
             {:.1} MiB, a batch's block activations ~{batch_acts:.1} MiB, the FP weights {:.1} MiB",
            bap.model.n_blocks(),
            cfg.iters_per_block(),
            cfg.samples,
            a.seq_len,
            3.0 * block as f64 * f,
            bap.fp_params.numel() as f64 * f,
        ));
    }
}
