//! LSQ (Esser et al., ICLR 2020): a learned step size s for signed b-bit weights,
//! `ŵ = round(clamp(w/s, −Q_N, Q_P))·s` with `Q_N = 2^(b−1)`, `Q_P = 2^(b−1) − 1`.
//!
//! Gradients (through autodiff, by construction of the graph): w gets 1 inside the range and 0
//! where clipped; s gets `round(w/s) − w/s` inside, `−Q_N` / `Q_P` where clipped, times the
//! gradient scale `g = 1/√(N·Q_P)`. N is the number of weights sharing the step size (the group,
//! the row for per-channel steps, the tensor for one step), the per-group reading of the paper's
//! rule; lsq-net uses the whole tensor even per channel. Init: `s = 2·mean|w|/√Q_P` over the
//! same set.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotKind, SlotSpec, StepInfo, Technique};

const SCALE: &str = "weight_scale";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lsq {
    pub bits: u32,
    /// The weights sharing one step: the tensor (`[1, 1]`), a row (`[out, 1]`) or groups of
    /// inputs of a row (`[out, in/g]`).
    pub sets: ScaleSets,
    /// Apply the gradient scale g (LSQ); without it the step gets the raw gradient (LSQ+ /
    /// EfficientQAT, which use a separate learning rate instead).
    pub grad_scale: bool,
    /// The precision the steps are used in (rounded in the forward).
    pub scale: ScaleDtype,
}

impl Lsq {
    fn q_n(&self) -> f64 {
        f64::from(1u32 << (self.bits - 1))
    }

    fn q_p(&self) -> f64 {
        self.q_n() - 1.0
    }

    /// The steps as a column `[sets, 1]` against `w` viewed as `[sets, size]`.
    fn steps<B: Backend>(&self, slots: &LayerSlots<B>, shape: [usize; 2]) -> Tensor<B, 2> {
        let s = slots.param(SCALE).reshape([self.sets.view(shape)[0], 1]);
        self.scale.round(s)
    }
}

impl Technique for Lsq {
    fn name(&self) -> &'static str {
        "lsq"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if !(2..=8).contains(&self.bits) {
            return Err(format!("LSQ bits must be 2..=8 (got {})", self.bits));
        }
        self.sets.check(shape)?;
        Ok(vec![SlotSpec {
            suffix: SCALE,
            shape: self.sets.slot_shape(shape),
            kind: SlotKind::Param,
        }])
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        let shape = weight.dims();
        let mean = weight
            .clone()
            .reshape(self.sets.view(shape))
            .abs()
            .mean_dim(1);
        // A zero set would give s = 0 (w/s undefined): start such sets at a tiny step.
        let s = (mean * (2.0 / self.q_p().sqrt())).clamp_min(1e-8);
        vec![s.reshape(self.sets.slot_shape(shape))]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Tensor<B, 2> {
        let shape = w.dims();
        let view = self.sets.view(shape);
        let s = self.steps(slots, shape);
        // Gradient scaling: value s, gradient g·∂L/∂s, N the weights sharing one step.
        let s = if self.grad_scale {
            let g = 1.0 / (view[1] as f64 * self.q_p()).sqrt();
            let sg = s.clone() * g;
            sg.clone() + (s - sg).detach()
        } else {
            s
        };
        let s = s.expand(view);
        let v = (w.reshape(view) / s.clone()).clamp(-self.q_n(), self.q_p());
        // Round with a straight-through gradient; the clamp above gives 0 outside the range.
        let r = v.clone() + (v.clone().round() - v).detach();
        (r * s).reshape(shape)
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        let (scales, group) = self
            .sets
            .per_row(self.steps(slots, w.dims()).detach(), w.dims());
        Some(GridScales {
            group,
            scales,
            zeros: None,
            lo: -(self.q_n() as i32),
            hi: self.q_p() as i32,
        })
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        let shape = w.dims();
        let view = self.sets.view(shape);
        let s = self.steps(slots, shape).detach().expand(view);
        let v = (w.clone().detach().reshape(view) / s)
            .clamp(-self.q_n(), self.q_p())
            .round();
        Some(Codes {
            codes: v.reshape(shape),
            lo: -self.q_n() as f32,
            hi: self.q_p() as f32,
        })
    }
}
