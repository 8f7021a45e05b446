use nibble_model::{ForwardCtx, LpBackend, cross_entropy};

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
        logits: Tensor<B, 3>,
        batch: &BatchTensors<B>,
        _: &ForwardCtx<B>,
    ) -> Tensor<B, 1> {
        cross_entropy(logits, batch.targets.clone())
    }
}
