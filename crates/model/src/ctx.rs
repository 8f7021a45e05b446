//! The forward context: everything a forward pass needs besides parameters and tokens.

use burn::prelude::*;
use nibble_techniques::StepInfo;

use crate::taps::Taps;

/// One forward call's context, passed down to every layer.
#[derive(Clone, Debug)]
pub struct ForwardCtx<B: Backend> {
    /// Seeds the quantizers' random streams of this call (stochastic rounding, random Hadamard
    /// signs); each layer derives its own.
    pub key: u64,
    /// Optimizer steps completed (techniques' schedules and state read it).
    pub step: u64,
    /// Training forward: delayed scaling records amaxes; evaluation does not.
    pub train: bool,
    pub taps: Taps<B>,
}

impl<B: Backend> ForwardCtx<B> {
    pub fn new(key: u64, step: u64, train: bool) -> Self {
        ForwardCtx {
            key,
            step,
            train,
            taps: Taps::default(),
        }
    }

    /// What techniques see of this call.
    pub fn step_info(&self) -> StepInfo {
        StepInfo {
            step: self.step,
            train: self.train,
        }
    }
}
