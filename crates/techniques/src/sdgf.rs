//! SDGF, Progressive Gradient Flow's structure decay (Bambhaniya et al., arXiv 2402.04744): a
//! binary N:M mask with the dense straight-through gradient, as [`NmSte`], whose pattern is
//! tightened over equal frames of the sparse phase: frame k of F starts at update
//! `dense_until + ⌊k·S/F⌋` (S: the sparse phase's updates, counted from its own start, not the
//! run's), and from that update's forward on the mask has frame k's pattern. The hard-mask phase
//! keeps the last frame's (the target) pattern.

use burn::prelude::*;
use nibble_ops::LpBackend;
use serde::{Deserialize, Serialize};

use crate::nm_ste::{NmSte, mask_slot};
use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotSpec, StepInfo, Technique};

/// How the frames approach the target N:M (examples for 1:8).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SdgfType {
    /// (M−1):M, then M/2:M, M/4:M, … down to N:M: 7:8, 4:8, 2:8, 1:8 (SdGf-Stepwise).
    #[default]
    Stepwise,
    /// The target density with ever finer groups: 8:64, 4:32, 2:16, 1:8 (SdGf-Geometric).
    Geometric,
    /// N per ever shorter groups: 1:64, 1:32, 1:16, 1:8.
    Densify,
    /// The recipe's `sdgf_patterns`, in order.
    Custom,
}

impl SdgfType {
    /// The frames' patterns for the target `n:m` (`custom`: the given list).
    pub fn frames(&self, (n, m): (usize, usize), custom: &[(usize, usize)]) -> Vec<(usize, usize)> {
        match self {
            SdgfType::Stepwise => {
                let mut ns = vec![m - 1];
                let mut k = m / 2;
                while k > n {
                    ns.push(k);
                    k /= 2;
                }
                ns.push(n);
                ns.dedup();
                ns.into_iter().map(|k| (k, m)).collect()
            }
            SdgfType::Geometric => [8, 4, 2, 1].map(|f| (f * n, f * m)).to_vec(),
            SdgfType::Densify => [8, 4, 2, 1].map(|f| (n, f * m)).to_vec(),
            SdgfType::Custom => custom.to_vec(),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Sdgf {
    /// The target pattern, dimension, interval and phases.
    pub mask: NmSte,
    /// The pattern of each frame, the last the target.
    pub frames: Vec<(usize, usize)>,
}

impl Sdgf {
    /// The first update of each frame.
    pub fn frame_starts(&self) -> Vec<u64> {
        let r = self.mask.phases.sparse_range();
        let (len, f) = (u128::from(r.end - r.start), self.frames.len() as u128);
        (0..f).map(|k| r.start + (k * len / f) as u64).collect()
    }

    /// The frame whose pattern the forward of update `step` uses (0 before the sparse phase,
    /// the last in the hard phase).
    pub fn frame_at(&self, step: u64) -> usize {
        let starts = self.frame_starts();
        starts.iter().rposition(|&s| s <= step).unwrap_or(0)
    }

    /// The pattern of update `step`'s forward.
    pub fn pattern_at(&self, step: u64) -> (usize, usize) {
        self.frames[self.frame_at(step)]
    }
}

impl Technique for Sdgf {
    fn name(&self) -> &'static str {
        "sdgf"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        for &(n, m) in &self.frames {
            self.mask
                .check(n, m, shape)
                .map_err(|e| format!("SDGF frame {n}:{m}: {e}"))?;
        }
        Ok(vec![mask_slot(shape)])
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        let (n, m) = self.pattern_at(0);
        vec![self.mask.mask_for(weight, n, m)]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2> {
        self.mask.apply(w, slots, at)
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
        mut slots: LayerSlotsMut<B>,
    ) {
        // The next forward is update `step`'s: a new frame switches the pattern there, whatever
        // the recomputation interval.
        let (next, prev) = (self.frame_at(step), self.frame_at(step - 1));
        let pattern = self.frames[next];
        self.mask
            .refresh(step, weight, &mut slots, pattern, next != prev);
    }

    fn keep<B: LpBackend>(&self, slots: &LayerSlots<B>, at: StepInfo) -> Option<Tensor<B, 2>> {
        self.mask.keep(slots, at)
    }
}
