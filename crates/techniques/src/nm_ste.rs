//! N:M magnitude mask with a straight-through estimator: in every group of M consecutive inputs
//! of a row, the N largest |w| are kept in the forward; the backward passes the gradient to every
//! weight, pruned or not (dense STE), so pruned weights can grow back. The mask is recomputed
//! from the master weights every `interval` steps (1: every step, the plain STE baseline that
//! SR-STE and Progressive Gradient Flow build on) and kept as a buffer, so a resumed run uses the
//! same mask between recomputations.

use burn::prelude::*;
use nibble_ops::LpBackend;
use nibble_ops::backend::{unwrap, wrap};

use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotKind, SlotSpec, StepInfo, Technique};

pub(crate) const MASK: &str = "weight_mask";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NmSte {
    pub n: usize,
    pub m: usize,
    /// Recompute the mask after every `interval` optimizer steps.
    pub interval: u64,
}

impl NmSte {
    fn mask<B: LpBackend>(&self, w: &Tensor<B, 2>) -> Tensor<B, 2> {
        wrap(B::lp_nm_mask(unwrap(w.clone()), self.n, self.m))
    }
}

impl Technique for NmSte {
    fn name(&self) -> &'static str {
        "nm_ste"
    }

    fn slots(&self, [out, inp]: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if self.m == 0 || self.n > self.m || inp % self.m != 0 {
            return Err(format!(
                "an {}:{} pattern needs M > 0, N ≤ M and M dividing the input dimension {inp}",
                self.n, self.m
            ));
        }
        Ok(vec![SlotSpec {
            suffix: MASK,
            shape: [out, inp],
            kind: SlotKind::Buffer,
        }])
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        vec![self.mask(weight)]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Tensor<B, 2> {
        // w + sg(w⊙m − w): forward value exactly w⊙m (w − w = +0 where m = 0), gradient 1.
        let masked = w.clone() * slots.buffer(MASK);
        w.clone() + (masked - w).detach()
    }

    fn end_step<B: LpBackend>(
        &self,
        step: u64,
        weight: &Tensor<B, 2>,
        mut slots: LayerSlotsMut<B>,
    ) {
        if step.is_multiple_of(self.interval.max(1)) {
            slots.set_buffer(MASK, self.mask(weight));
        }
    }
}
