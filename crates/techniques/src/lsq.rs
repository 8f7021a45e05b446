//! LSQ (Esser et al., ICLR 2020): a learned step size s for signed b-bit weights,
//! `ŵ = round(clamp(w/s, −Q_N, Q_P))·s` with `Q_N = 2^(b−1)`, `Q_P = 2^(b−1) − 1`.
//!
//! Gradients (through autodiff, by construction of the graph): w gets 1 inside the range and 0
//! where clipped; s gets `round(w/s) − w/s` inside, `−Q_N` / `Q_P` where clipped, times the
//! gradient scale `g = 1/√(N·Q_P)`. N is the number of weights sharing the step size (the row for
//! per-channel steps, the tensor for one step), the per-group reading of the paper's rule;
//! lsq-net uses the whole tensor even per channel. Init: `s = 2·mean|w|/√Q_P` over the same set.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::slots::LayerSlots;
use crate::technique::{Codes, SlotKind, SlotSpec, StepInfo, Technique};

const SCALE: &str = "weight_scale";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lsq {
    pub bits: u32,
    /// One step per output row (`[out, 1]`) instead of one per tensor (`[1, 1]`).
    pub per_channel: bool,
    /// Apply the gradient scale g (LSQ); without it the step gets the raw gradient (LSQ+ /
    /// EfficientQAT, which use a separate learning rate instead).
    pub grad_scale: bool,
}

impl Lsq {
    fn q_n(&self) -> f64 {
        f64::from(1u32 << (self.bits - 1))
    }

    fn q_p(&self) -> f64 {
        self.q_n() - 1.0
    }

    /// Elements sharing one step.
    fn group(&self, [out, inp]: [usize; 2]) -> usize {
        if self.per_channel { inp } else { out * inp }
    }
}

impl Technique for Lsq {
    fn name(&self) -> &'static str {
        "lsq"
    }

    fn slots(&self, [out, _]: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if !(2..=8).contains(&self.bits) {
            return Err(format!("LSQ bits must be 2..=8 (got {})", self.bits));
        }
        let rows = if self.per_channel { out } else { 1 };
        Ok(vec![SlotSpec {
            suffix: SCALE,
            shape: [rows, 1],
            kind: SlotKind::Param,
        }])
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        let a = weight.clone().abs();
        let mean = if self.per_channel {
            a.mean_dim(1)
        } else {
            a.mean().reshape([1, 1])
        };
        // A zero row would give s = 0 (w/s undefined): start such rows at a tiny step.
        vec![(mean * (2.0 / self.q_p().sqrt())).clamp_min(1e-8)]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Tensor<B, 2> {
        let s = slots.param(SCALE);
        // Gradient scaling: value s, gradient g·∂L/∂s.
        let s = if self.grad_scale {
            let g = 1.0 / (self.group(w.dims()) as f64 * self.q_p()).sqrt();
            let sg = s.clone() * g;
            sg.clone() + (s - sg).detach()
        } else {
            s
        };
        let v = (w / s.clone()).clamp(-self.q_n(), self.q_p());
        // Round with a straight-through gradient; the clamp above gives 0 outside the range.
        let r = v.clone() + (v.clone().round() - v).detach();
        r * s
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        let s = slots.param(SCALE).detach();
        let v = (w.clone().detach() / s)
            .clamp(-self.q_n(), self.q_p())
            .round();
        Some(Codes {
            codes: v,
            lo: -self.q_n() as f32,
            hi: self.q_p() as f32,
        })
    }
}
