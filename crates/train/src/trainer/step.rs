use std::collections::BTreeMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_data::Batch;
use nibble_model::layers::Rope;
use nibble_model::{ForwardCtx, Llama, LpBackend, Params};
use nibble_ops::keys::child;

use crate::objective::{BatchTensors, Objective};
use crate::optim::{AdamW, clip_global_norm};

/// What one optimizer step measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepStats {
    /// Mean training loss over the step's micro-batches (nats per token).
    pub loss: f64,
    /// Global gradient norm before clipping.
    pub grad_norm: f64,
    /// Tokens consumed.
    pub tokens: u64,
    /// With [`StepSetup::probe_grads`] and an N:M mask: the step's raw weight gradients on
    /// pruned and on kept entries.
    pub grad_probe: Option<GradProbe>,
}

/// Variance over the entries of every masked layer's weight gradient (before clipping), pruned
/// and kept apart: the gradient noise on pruned weights that Progressive Gradient Flow's decay
/// is meant to calm (spec §5.5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradProbe {
    pub pruned_var: f64,
    pub kept_var: f64,
}

/// [`GradProbe`] from the accumulated gradients: each `<module>.weight` with a
/// `<module>.weight_mask` buffer.
fn probe_grads<B: LpBackend>(
    params: &Params<B>,
    grads: &BTreeMap<String, Tensor<B, 2>>,
) -> Option<GradProbe> {
    // (count, Σg, Σg²) for pruned (0) and kept (1) entries.
    let mut acc = [(0u64, 0f64, 0f64); 2];
    for (name, mask) in &params.buffers {
        let Some(module) = name.strip_suffix(".weight_mask") else {
            continue;
        };
        let Some(g) = grads.get(&format!("{module}.weight")) else {
            continue;
        };
        let (g, _) = nibble_ops::host::to_host(g.clone());
        let (m, _) = nibble_ops::host::to_host(mask.clone());
        for (g, m) in g.iter().zip(&m) {
            let a = &mut acc[usize::from(*m != 0.0)];
            let g = f64::from(*g);
            *a = (a.0 + 1, a.1 + g, a.2 + g * g);
        }
    }
    let var = |(n, s, q): (u64, f64, f64)| {
        let n = n.max(1) as f64;
        (q / n - (s / n).powi(2)).max(0.0)
    };
    (acc[0].0 + acc[1].0 > 0).then(|| GradProbe {
        pruned_var: var(acc[0]),
        kept_var: var(acc[1]),
    })
}

/// Token ids of a batch as an int tensor `[rows, seq_len]`.
pub(crate) fn ids<B: Backend>(
    v: &[u32],
    rows: usize,
    seq: usize,
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let v: Vec<i32> = v.iter().map(|&x| x as i32).collect();
    Tensor::from_data(TensorData::new(v, [rows, seq]), device)
}

/// What one step runs: the model and its RoPE tables, the objective, and the run's key.
pub struct StepSetup<'a, B: LpBackend> {
    pub model: &'a Llama,
    pub rope: &'a Rope<Autodiff<B>>,
    pub objective: &'a dyn Objective<Autodiff<B>>,
    pub grad_clip: f64,
    pub device: &'a B::Device,
    /// Measure [`GradProbe`] this step (log steps).
    pub probe_grads: bool,
    /// A data-parallel peer: its micro-batches are the global step's `rank·n .. (rank+1)·n`
    /// (their random keys too), and the gradients, loss and per-step maxima are reduced over
    /// the peers before clipping.
    pub peer: Option<&'a super::peer::Peer>,
}

/// Autodiff leaves of `params`: trainable tensors require a gradient unless their group is
/// frozen; buffers never do.
pub(super) fn leaves<B: LpBackend>(params: &Params<B>, opt: &AdamW<B>) -> Params<Autodiff<B>> {
    let lift = |t: &Tensor<B, 2>| Tensor::<Autodiff<B>, 2>::from_inner(t.clone());
    Params {
        tensors: params
            .tensors
            .iter()
            .map(|(k, t)| {
                let leaf = lift(t);
                let leaf = if opt.groups.is_frozen(k) {
                    leaf
                } else {
                    leaf.require_grad()
                };
                (k.clone(), leaf)
            })
            .collect(),
        buffers: params
            .buffers
            .iter()
            .map(|(k, t)| (k.clone(), lift(t)))
            .collect(),
    }
}

/// Optimizer step `step` (0-based: steps done before it) over `micro` batches: gradients of the
/// mean objective are accumulated (each micro-batch's loss divided by their number), clipped by
/// global norm, then AdamW at `lr`, then the techniques' end-of-step hooks. `key` (from the run
/// seed and step) seeds the quantizers' random streams; micro-batch `i` uses its child key `i`.
pub fn train_step<B: LpBackend>(
    setup: &StepSetup<B>,
    params: &mut Params<B>,
    opt: &mut AdamW<B>,
    micro: &[Batch],
    lr: f64,
    key: u64,
    step: u64,
) -> StepStats {
    let n = micro.len() as f64;
    let first = setup.peer.map_or(0, |p| (p.rank * micro.len()) as u64);
    let mut grads: BTreeMap<String, Tensor<B, 2>> = BTreeMap::new();
    let mut loss_sum = 0.0;
    let mut tokens = 0u64;
    for (i, batch) in micro.iter().enumerate() {
        let leaves = leaves(params, opt);
        let device = setup.device;
        let bt = BatchTensors {
            inputs: ids::<Autodiff<B>>(&batch.inputs, batch.rows, batch.seq_len, device),
            targets: ids::<Autodiff<B>>(&batch.targets, batch.rows, batch.seq_len, device),
        };
        let mut ctx = ForwardCtx::new(child(key, first + i as u64), step, true);
        setup.objective.prepare(&bt, &mut ctx);
        let out = setup
            .model
            .hidden(&leaves, setup.rope, bt.inputs.clone(), &mut ctx);
        let loss = setup.objective.loss(&out, &bt, &ctx);
        let at = ctx.step_info();
        drop(out);
        drop(ctx);
        loss_sum += loss
            .clone()
            .inner()
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .expect("scalar")[0];
        // The techniques' auxiliary terms (SR-STE) join the gradient, not the logged loss.
        let loss = match setup.model.aux_loss(&leaves, at) {
            Some(aux) => loss + aux,
            None => loss,
        };
        let g = (loss / n).backward();
        for (name, t) in &leaves.tensors {
            if let Some(gt) = t.grad(&g) {
                let acc = match grads.remove(name) {
                    Some(prev) => prev + gt,
                    None => gt,
                };
                grads.insert(name.clone(), acc);
            }
        }
        tokens += (batch.rows * batch.seq_len) as u64;
    }
    // The mean over the peers of each peer's mean: one device's mean over the global step.
    let (mut grads, loss) = match setup.peer {
        Some(p) => {
            tokens *= p.world as u64;
            p.mean_grads(step + 1, grads, loss_sum / n, setup.device)
        }
        None => (grads, loss_sum / n),
    };
    let grad_probe = match setup.probe_grads {
        true => probe_grads(params, &grads),
        false => None,
    };
    let grad_norm = clip_global_norm(&mut grads, setup.grad_clip);
    opt.step(params, &grads, lr);
    // Every peer rolls the same FP8 histories: the step's amaxes are the peers' maximum.
    if let Some(p) = setup.peer {
        let local = setup.model.step_maxima();
        if !local.is_empty() {
            let max = p.max::<B>(step + 1, &local, setup.device);
            setup.model.set_step_maxima(&max);
        }
    }
    setup.model.end_step(step + 1, params);
    StepStats {
        loss,
        grad_norm,
        tokens,
        grad_probe,
    }
}
