//! Objectives: the step minimizes `objective(student outputs, batch, taps)`. An objective asks
//! for taps (and may set replacements, e.g. a teacher's attention maps) before the student's
//! forward, then turns the logits and what the taps recorded into the loss. A teacher model,
//! KD losses or a block-reconstruction loss are objectives: the trainer does not change.

mod cross_entropy;
mod distill;
mod kd_losses;

use burn::prelude::*;
use nibble_model::{ForwardCtx, Hidden, LpBackend};

pub use cross_entropy::CrossEntropy;
pub use distill::{Distill, Teacher, TeacherOut, intervene, replaced_kind};
pub use kd_losses::{kd_logits, masked_score_mse, mse};

/// A micro-batch as tensors: inputs and next-token targets, `[rows, seq_len]`.
#[derive(Clone, Debug)]
pub struct BatchTensors<B: Backend> {
    pub inputs: Tensor<B, 2, Int>,
    pub targets: Tensor<B, 2, Int>,
}

pub trait Objective<B: LpBackend> {
    /// For logs (`cross_entropy`, `kd`, ...).
    fn name(&self) -> &str;

    /// Before the student's forward: request taps, set replacements (a teacher forward runs
    /// here). Default: nothing.
    fn prepare(&self, _batch: &BatchTensors<B>, _ctx: &mut ForwardCtx<B>) {}

    /// The scalar loss to minimize (mean per token), from the student's forward up to the head
    /// (`out.logits(ctx)` gives the logits `[b, t, vocab]`; `out.cross_entropy` the fused
    /// cross-entropy, which never materializes them) and the context its forward filled.
    fn loss(
        &self,
        out: &Hidden<'_, B>,
        batch: &BatchTensors<B>,
        ctx: &ForwardCtx<B>,
    ) -> Tensor<B, 1>;
}
