//! TWN ternary weights (Li et al. 2016; TernaryBERT and Teacher Intervention's weight
//! quantizer): per set, `Δ = 0.7·mean|w|`, codes ±1 where `|w| > Δ` (strictly) and 0 elsewhere,
//! `α` = the mean |w| of the weights that survive (0 if none), `ŵ = α·code`; straight-through
//! gradient, Δ and α recomputed every forward.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotSpec, StepInfo, Technique};
use crate::ternary_grid::{TernaryRule, host_ternary, straight_through};

#[derive(Clone, Debug, PartialEq)]
pub struct Twn {
    pub sets: ScaleSets,
    /// The precision α is used in (rounded).
    pub scale: ScaleDtype,
}

impl Twn {
    /// The dequantized ternary weight (no gradient path), `[out, in]`.
    pub fn grid<B: Backend>(&self, w: &Tensor<B, 2>, keep: Option<&Tensor<B, 2>>) -> Tensor<B, 2> {
        host_ternary(w, self.sets, self.scale, TernaryRule::Twn, keep).q
    }
}

impl Technique for Twn {
    fn name(&self) -> &'static str {
        "twn"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        self.sets.check(shape)?;
        Ok(Vec::new())
    }

    fn init<B: LpBackend>(&self, _: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        Vec::new()
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Tensor<B, 2> {
        let q = self.grid(&w, slots.keep.as_ref());
        straight_through(q, w)
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        let keep = slots.keep.as_ref();
        let alpha = host_ternary(w, self.sets, self.scale, TernaryRule::Twn, keep).alpha;
        Some(GridScales::ternary(self.sets, alpha, w.dims()))
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        let keep = slots.keep.as_ref();
        Some(Codes::ternary(
            host_ternary(w, self.sets, self.scale, TernaryRule::Twn, keep).codes,
        ))
    }
}
