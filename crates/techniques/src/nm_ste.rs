//! N:M magnitude mask with a straight-through estimator: in every group of M consecutive inputs
//! of a row (or, `dimension = "output"`, of M consecutive outputs of a column), the N largest |w|
//! are kept in the forward; the backward passes the gradient to every
//! weight, pruned or not (dense STE), so pruned weights can grow back. The mask is recomputed
//! from the master weights every `interval` steps (1: every step, the plain STE baseline that
//! SR-STE and Progressive Gradient Flow build on) and kept as a buffer, so a resumed run uses the
//! same mask between recomputations.

use burn::prelude::*;
use nibble_ops::LpBackend;
use nibble_ops::backend::{unwrap, wrap};
use serde::{Deserialize, Serialize};

use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotKind, SlotSpec, StepInfo, Technique};

pub(crate) const MASK: &str = "weight_mask";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NmSte {
    pub n: usize,
    pub m: usize,
    /// Which dimension the groups of M run along.
    pub dim: NmDim,
    /// Recompute the mask after every `interval` optimizer steps.
    pub interval: u64,
    /// The dense start and the hard-mask end of the run.
    pub phases: SparsePhases,
}

/// `input` (default: M consecutive inputs of a row, the K dimension sparse tensor cores want) |
/// `output` (M consecutive outputs of a column, the reference code's "COL").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NmDim {
    #[default]
    Input,
    Output,
}

impl NmDim {
    /// The length of the dimension the groups run along, of an `[out, in]` weight.
    pub fn len(self, [out, inp]: [usize; 2]) -> usize {
        match self {
            NmDim::Input => inp,
            NmDim::Output => out,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NmDim::Input => "input",
            NmDim::Output => "output",
        }
    }
}

/// The phases of a sparse run, in optimizer updates: dense (the mask does not act) before
/// `dense_until`; sparse (the method's own forward and gradient) until `hard_from`; then a hard
/// mask: the mask is frozen and the pruned master weights are set to 0 after every update.
/// `end` is the run's length (SDGF's frames divide `dense_until..min(hard_from, end)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SparsePhases {
    pub dense_until: u64,
    pub hard_from: u64,
    pub end: u64,
}

impl Default for SparsePhases {
    fn default() -> Self {
        SparsePhases {
            dense_until: 0,
            hard_from: u64::MAX,
            end: u64::MAX,
        }
    }
}

impl SparsePhases {
    /// The updates of the sparse phase proper: `dense_until..min(hard_from, end)`.
    pub fn sparse_range(&self) -> std::ops::Range<u64> {
        self.dense_until..self.hard_from.min(self.end).max(self.dense_until)
    }

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
    /// An `n:m` mask along the input dimension, recomputed every step, no phases.
    pub fn new(n: usize, m: usize) -> Self {
        NmSte {
            n,
            m,
            dim: NmDim::Input,
            interval: 1,
            phases: SparsePhases::default(),
        }
    }

    /// The mask of `w` for `n:m` along this technique's dimension (the backend's `lp_nm_mask`:
    /// a cubecl kernel on GPUs, the host elsewhere; `output` masks the transpose).
    pub fn mask_for<B: LpBackend>(&self, w: &Tensor<B, 2>, n: usize, m: usize) -> Tensor<B, 2> {
        let w = w.clone().detach();
        match self.dim {
            NmDim::Input => wrap(B::lp_nm_mask(unwrap(w), n, m)),
            NmDim::Output => {
                let t = w.transpose();
                let masked: Tensor<B, 2> = wrap(B::lp_nm_mask(unwrap(t), n, m));
                masked.transpose()
            }
        }
    }

    fn mask<B: LpBackend>(&self, w: &Tensor<B, 2>) -> Tensor<B, 2> {
        self.mask_for(w, self.n, self.m)
    }

    /// Whether `n:m` fits a weight of `shape` along this dimension (1 ≤ n < m, m divides it).
    pub fn check(&self, n: usize, m: usize, shape: [usize; 2]) -> Result<(), String> {
        let len = self.dim.len(shape);
        if n == 0 || n >= m || !len.is_multiple_of(m) {
            return Err(format!(
                "an {n}:{m} pattern needs 1 ≤ N < M and M dividing the {} dimension {len} of \
                 the [{}, {}] weight",
                self.dim.name(),
                shape[0],
                shape[1]
            ));
        }
        Ok(())
    }

    /// After update `step`: the mask for `pattern` recomputed from the updated weight when the
    /// interval comes round or `force` (a new SDGF frame), except in the hard phase (frozen).
    pub(crate) fn refresh<B: LpBackend>(
        &self,
        step: u64,
        weight: &Tensor<B, 2>,
        slots: &mut LayerSlotsMut<B>,
        (n, m): (usize, usize),
        force: bool,
    ) {
        let due = force || step.is_multiple_of(self.interval.max(1));
        if due && step < self.phases.hard_from {
            slots.set_buffer(MASK, self.mask_for(weight, n, m));
        }
    }
}

impl Technique for NmSte {
    fn name(&self) -> &'static str {
        "nm_ste"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        self.check(self.n, self.m, shape)?;
        Ok(vec![mask_slot(shape)])
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
        self.refresh(step, weight, &mut slots, (self.n, self.m), false);
    }

    fn keep<B: LpBackend>(&self, slots: &LayerSlots<B>, at: StepInfo) -> Option<Tensor<B, 2>> {
        (at.step >= self.phases.dense_until).then(|| slots.buffer(MASK))
    }
}

/// The [`Technique`] methods a method built on an N:M mask (`self.mask: NmSte`) takes from it
/// unchanged: its slots and their init, the hard-phase projection, the end-of-step mask
/// recomputation and the kept entries.
macro_rules! mask_delegates {
    () => {
        fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
            self.mask.slots(shape)
        }

        fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
            self.mask.init(weight)
        }

        fn project<B: LpBackend>(
            &self,
            step: u64,
            w: &Tensor<B, 2>,
            slots: &LayerSlots<B>,
        ) -> Option<Tensor<B, 2>> {
            self.mask.project(step, w, slots)
        }

        fn end_step<B: LpBackend>(
            &self,
            step: u64,
            weight: &Tensor<B, 2>,
            slots: LayerSlotsMut<B>,
        ) {
            self.mask.end_step(step, weight, slots)
        }

        fn keep<B: LpBackend>(&self, slots: &LayerSlots<B>, at: StepInfo) -> Option<Tensor<B, 2>> {
            self.mask.keep(slots, at)
        }
    };
}
pub(crate) use mask_delegates;

/// The mask buffer of a weight of `shape`.
pub(crate) fn mask_slot(shape: [usize; 2]) -> SlotSpec {
    SlotSpec {
        suffix: MASK,
        shape,
        kind: SlotKind::Buffer,
    }
}
