use nibble_model::{ForwardCtx, Hidden, LpBackend};

use super::{BatchTensors, Objective};
use burn::prelude::*;

/// Next-token cross-entropy (nats per token): the default objective.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrossEntropy;

impl<B: LpBackend> Objective<B> for CrossEntropy {
    fn name(&self) -> &str {
        "cross_entropy"
    }

    fn loss(
        &self,
        out: &Hidden<'_, B>,
        batch: &BatchTensors<B>,
        ctx: &ForwardCtx<B>,
    ) -> Tensor<B, 1> {
        out.cross_entropy(batch.targets.clone(), ctx)
    }
}
