//! Tequila (Huang et al. 2025, AngelSlim's released `UltraQuantV2`): absmean ternary weights
//! ([`Absmean`], groups of 128 in the release) whose deadzone weights are reactivated as a
//! per-output-channel bias `b_i = λ·Σ_{j ∈ D_i} w_ij` (D: the weights whose ternary value is 0),
//! added to every token's output. Backward, as the release's custom autograd: the ternary path is
//! straight-through, and each deadzone weight also gets `λ·Σ_tokens ∂L/∂y_i` through the bias.
//! λ is fixed (1e-3 in the release) or, as the paper describes and the release does not
//! implement, a learnable parameter per output channel (`weight_lambda`, initialized to λ).
//! After an N:M mask, α and the deadzone count the kept weights only.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::absmean::Absmean;
use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotKind, SlotSpec, StepInfo, Technique};
use crate::ternary_grid::straight_through;

const LAMBDA: &str = "weight_lambda";

#[derive(Clone, Debug, PartialEq)]
pub struct Tequila {
    pub sets: ScaleSets,
    pub lambda: f64,
    pub learnable: bool,
    /// The precision α is used in.
    pub scale: ScaleDtype,
}

impl Tequila {
    fn grid(&self) -> Absmean {
        Absmean {
            sets: self.sets,
            scale: self.scale,
        }
    }
}

impl Technique for Tequila {
    fn name(&self) -> &'static str {
        "tequila"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        self.sets.check(shape)?;
        Ok(if self.learnable {
            vec![SlotSpec {
                suffix: LAMBDA,
                shape: [shape[0], 1],
                kind: SlotKind::Param,
            }]
        } else {
            Vec::new()
        })
    }

    fn init<B: LpBackend>(&self, w: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        if self.learnable {
            vec![Tensor::full([w.dims()[0], 1], self.lambda, &w.device())]
        } else {
            Vec::new()
        }
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2> {
        self.apply_with_bias(w, slots, at).0
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        Some(self.grid().ternary_scales(w, slots.keep.as_ref()))
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        Some(Codes::ternary(self.grid().grid(w, slots.keep.as_ref()).1))
    }

    /// The ternary weight and the deadzone bias from one computation of the grid.
    fn apply_with_bias<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let (q, c) = self.grid().grid(&w, slots.keep.as_ref());
        // The deadzone of the kept weights only: a pruned weight (an N:M mask before) does not
        // leak back through the bias (spec §7.1).
        let deadzone = match &slots.keep {
            Some(k) => c.equal_elem(0.0).float() * k.clone(),
            None => c.equal_elem(0.0).float(),
        };
        // Σ over the row's deadzone weights; the mask carries no gradient, w does.
        let s = (w.clone() * deadzone).sum_dim(1);
        let b = if self.learnable {
            s * slots.param(LAMBDA)
        } else {
            s * self.lambda
        };
        (straight_through(q, w), Some(b.transpose()))
    }
}
