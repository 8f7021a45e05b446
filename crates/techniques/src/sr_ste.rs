//! SR-STE (Zhou et al., ICLR 2021): the N:M magnitude mask of [`NmSte`] in the forward, and in
//! the backward the dense straight-through gradient plus the sparse-refined term
//! `λ_W·(1 − m)⊙W`, which pulls the pruned weights towards 0 (λ_W = 2e-4, the reference's
//! `decay`). The term is the gradient of the auxiliary loss `(λ_W/2)·‖(1 − m)⊙W‖²` (m held
//! fixed), added to the objective, so it passes through the optimizer's moments as in the
//! reference.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::nm_ste::{MASK, NmSte, mask_delegates};
use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotSpec, StepInfo, Technique};

#[derive(Clone, Debug, PartialEq)]
pub struct SrSte {
    /// The mask (pattern, recomputation interval) and its straight-through forward.
    pub mask: NmSte,
    /// λ_W of the sparse-refined term.
    pub lambda: f64,
}

impl Technique for SrSte {
    mask_delegates!();

    fn name(&self) -> &'static str {
        "sr_ste"
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2> {
        self.mask.apply(w, slots, at)
    }

    fn aux_loss<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Option<Tensor<B, 1>> {
        if !self.mask.phases.sparse(at.step) {
            return None;
        }
        let pruned = slots.buffer(MASK).neg() + 1.0;
        let r = w.clone() * pruned;
        Some((r.clone() * r).sum() * (self.lambda / 2.0))
    }
}
