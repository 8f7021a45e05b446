//! The forward context: everything a forward pass needs besides parameters and tokens.

use burn::prelude::*;
use nibble_techniques::StepInfo;

use crate::taps::Taps;

/// Teacher Intervention's mode for one forward (an explicit argument, not a flag shared across
/// calls: the reference code's pitfall). The caller sets the teacher's signal as the matching
/// tap replacement in every block; the mode detaches the attention's inputs that the replaced
/// signal makes unreachable from the main path, so the score loss alone trains Q and K.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intervention {
    /// TI-M: the teacher's attention probabilities; Q and K read a detached input, V does not.
    Map,
    /// TI-C: the teacher's per-head contexts; Q, K and V read a detached input.
    Context,
    /// TI-O: the teacher's attention block output; Q, K and V read a detached input.
    Output,
}

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
    /// Teacher Intervention's mode (None: the model's own forward).
    pub intervention: Option<Intervention>,
}

impl<B: Backend> ForwardCtx<B> {
    pub fn new(key: u64, step: u64, train: bool) -> Self {
        ForwardCtx {
            key,
            step,
            train,
            taps: Taps::default(),
            intervention: None,
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
