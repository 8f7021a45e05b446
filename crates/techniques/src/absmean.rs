//! Absmean ternary weights, the grid of BitNet b1.58 as AngelSlim's `absmean` computes it per
//! set (tensor, row or group): `α = mean|w|`, `Δ = α/2`, codes ±1 where `±w ≥ Δ` and 0 in the
//! deadzone, `ŵ = α·code`; plain straight-through gradient, α recomputed every forward (no
//! gradient). Tequila is this grid plus its deadzone bias; `bitnet` is the per-tensor
//! round-clip of the BitNet code.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotSpec, StepInfo, Technique};
use crate::ternary_grid::{host_absmean, straight_through};

#[derive(Clone, Debug, PartialEq)]
pub struct Absmean {
    pub sets: ScaleSets,
    /// The precision α is used in (rounded; the threshold α/2 uses the exact mean).
    pub scale: ScaleDtype,
}

impl Absmean {
    /// The dequantized ternary weight `α·code` (no gradient path) and the codes, both `[out, in]`.
    /// Statistics over `keep`'s entries when an N:M mask acts before.
    pub fn grid<B: Backend>(
        &self,
        w: &Tensor<B, 2>,
        keep: Option<&Tensor<B, 2>>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let g = host_absmean(w, self.sets, self.scale, keep);
        (g.q, g.codes)
    }

    /// α per set as the forward uses it, per set of inputs of a row.
    pub(crate) fn ternary_scales<B: Backend>(
        &self,
        w: &Tensor<B, 2>,
        keep: Option<&Tensor<B, 2>>,
    ) -> GridScales<B> {
        let alpha = host_absmean(w, self.sets, self.scale, keep).alpha;
        GridScales::ternary(self.sets, alpha, w.dims())
    }
}

impl Technique for Absmean {
    fn name(&self) -> &'static str {
        "absmean"
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
        let (q, _) = self.grid(&w, slots.keep.as_ref());
        straight_through(q, w)
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        Some(self.ternary_scales(w, slots.keep.as_ref()))
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        Some(Codes::ternary(self.grid(w, slots.keep.as_ref()).1))
    }
}
