use std::collections::BTreeMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_data::Batch;
use nibble_model::layers::Rope;
use nibble_model::{Llama, LpBackend, Params, cross_entropy};
use nibble_ops::keys::child;

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

/// One optimizer step over `micro` batches: gradients of the mean loss are accumulated (each
/// micro-batch's loss divided by their number), clipped by global norm, then AdamW at `lr`.
/// `key` (from the run seed and step) seeds the quantizers' random streams; micro-batch `i`
/// uses its child key `i`.
#[allow(clippy::too_many_arguments)]
pub fn train_step<B: LpBackend>(
    model: &Llama,
    rope: &Rope<Autodiff<B>>,
    params: &mut Params<B>,
    opt: &mut AdamW<B>,
    micro: &[Batch],
    lr: f64,
    grad_clip: f64,
    key: u64,
    device: &B::Device,
) -> StepStats {
    let n = micro.len() as f64;
    let mut grads: BTreeMap<String, Tensor<B, 2>> = BTreeMap::new();
    let mut loss_sum = 0.0;
    let mut tokens = 0u64;
    for (i, batch) in micro.iter().enumerate() {
        let leaves: Params<Autodiff<B>> = Params {
            tensors: params
                .tensors
                .iter()
                .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone()).require_grad()))
                .collect(),
        };
        let x = ids::<Autodiff<B>>(&batch.inputs, batch.rows, batch.seq_len, device);
        let y = ids::<Autodiff<B>>(&batch.targets, batch.rows, batch.seq_len, device);
        let loss = cross_entropy(
            model.forward(&leaves, rope, x, child(key, i as u64), true),
            y,
        );
        loss_sum += loss
            .clone()
            .inner()
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .expect("scalar")[0];
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
    let grad_norm = clip_global_norm(&mut grads, grad_clip);
    opt.step(params, &grads, lr);
    model.end_step();
    StepStats {
        loss: loss_sum / n,
        grad_norm,
        tokens,
    }
}
