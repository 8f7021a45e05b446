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
    /// The dense start and the hard-mask end of the run.
    pub phases: SparsePhases,
}

/// The phases of a sparse run, in optimizer updates: dense (the mask does not act) before
/// `dense_until`; sparse (the method's own forward and gradient) until `hard_from`; then a hard
/// mask: the mask is frozen and the pruned master weights are set to 0 after every update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparsePhases {
    pub dense_until: u64,
    pub hard_from: u64,
}

impl Default for SparsePhases {
    fn default() -> Self {
        SparsePhases {
            dense_until: 0,
            hard_from: u64::MAX,
        }
    }
}

impl SparsePhases {
    /// Updates of the sparse phase before update `step` (the method's t: 0 at its first update).
    pub fn t(&self, step: u64) -> u64 {
        step.saturating_sub(self.dense_until)
    }

    /// Whether update `step` is in the sparse phase proper (neither dense nor hard).
    pub fn sparse(&self, step: u64) -> bool {
        step >= self.dense_until && step < self.hard_from
    }
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
        at: StepInfo,
    ) -> Tensor<B, 2> {
        if at.step < self.phases.dense_until {
            return w;
        }
        // w + sg(w⊙m − w): forward value exactly w⊙m (w − w = +0 where m = 0), gradient 1.
        let masked = w.clone() * slots.buffer(MASK);
        w.clone() + (masked - w).detach()
    }

    fn project<B: LpBackend>(
        &self,
        step: u64,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
    ) -> Option<Tensor<B, 2>> {
        // After a hard-phase update, the pruned weights are 0.
        (step > self.phases.hard_from).then(|| w.clone() * slots.buffer(MASK))
    }

    fn end_step<B: LpBackend>(
        &self,
        step: u64,
        weight: &Tensor<B, 2>,
        mut slots: LayerSlotsMut<B>,
    ) {
        // The hard phase keeps the mask its first update used.
        if step.is_multiple_of(self.interval.max(1)) && step < self.phases.hard_from {
            slots.set_buffer(MASK, self.mask(weight));
        }
    }
}
