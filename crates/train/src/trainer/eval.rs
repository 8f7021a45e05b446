use burn::prelude::*;
use nibble_data::{TokenSplit, ValBatches};
use nibble_model::layers::Rope;
use nibble_model::{ForwardCtx, Llama, LpBackend, Params};

use super::step::ids;

/// Base key of evaluation batches.
const EVAL_KEY: u64 = 0x6576_616c_0000_0000;

/// A hook before each evaluation forward: the batch's inputs and the forward's context.
pub type Prepare<'a, B> = dyn Fn(Tensor<B, 2, Int>, &mut ForwardCtx<B>) + 'a;

/// Validation loss (nats per token) and bits per byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalResult {
    pub loss: f64,
    pub bpb: f64,
    pub tokens: u64,
}

/// Mean loss over the first `max_batches` fixed validation batches (token-weighted), no autodiff,
/// after `step` optimizer steps. Quantizer keys are fixed per batch, so an evaluation is
/// deterministic even with stochastic forward rounding.
#[allow(clippy::too_many_arguments)]
pub fn evaluate<B: LpBackend>(
    model: &Llama,
    step: u64,
    rope: &Rope<B>,
    params: &Params<B>,
    val: &TokenSplit,
    batch_size: usize,
    max_batches: usize,
    device: &B::Device,
) -> Result<EvalResult, nibble_data::DataError> {
    let batches = (batch_size, max_batches);
    evaluate_with(model, step, rope, params, val, batches, device, &|_, _| {})
}

/// [`evaluate`] with `prepare(inputs, ctx)` before each forward (Teacher Intervention's
/// replacements: the intervened validation loss of stage 1). `batches`: size and how many.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with<B: LpBackend>(
    model: &Llama,
    step: u64,
    rope: &Rope<B>,
    params: &Params<B>,
    val: &TokenSplit,
    (batch_size, max_batches): (usize, usize),
    device: &B::Device,
    prepare: &Prepare<'_, B>,
) -> Result<EvalResult, nibble_data::DataError> {
    let seq = model.arch.seq_len;
    let mut sum = 0.0;
    let mut tokens = 0u64;
    for (i, b) in
        ValBatches::new(val.tokens.clone(), batch_size, seq, Some(max_batches))?.enumerate()
    {
        let n = (b.rows * b.seq_len) as u64;
        let x = ids::<B>(&b.inputs, b.rows, b.seq_len, device);
        let y = ids::<B>(&b.targets, b.rows, b.seq_len, device);
        let mut ctx = ForwardCtx::new(EVAL_KEY ^ i as u64, step, false);
        prepare(x.clone(), &mut ctx);
        let l = model
            .hidden(params, rope, x, &mut ctx)
            .cross_entropy(y, &ctx)
            .into_data()
            .convert::<f64>()
            .into_vec::<f64>()
            .expect("scalar")[0];
        sum += l * n as f64;
        tokens += n;
    }
    let loss = sum / tokens.max(1) as f64;
    Ok(EvalResult {
        loss,
        bpb: val.bits_per_byte(loss),
        tokens,
    })
}
