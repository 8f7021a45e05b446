//! MDGF, Progressive Gradient Flow's mask decay (Bambhaniya et al., arXiv 2402.04744): the N:M
//! magnitude mask m of [`NmSte`], with the pruned weights kept at a fraction β(t) that decays
//! from 1 to 0, `Ŵ = W⊙(m + (1 − m)·β(t))`, and the dense straight-through gradient (neither the
//! mask nor β scales it; no SR-STE term), as the reference code computes it. β(t) = exp(−α·t)
//! or max(1 − α·t, 0), updated every step, t the updates since the start of the sparse phase.

use burn::prelude::*;
use nibble_ops::LpBackend;
use serde::{Deserialize, Serialize};

use crate::nm_ste::{MASK, NmSte, mask_delegates};
use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotSpec, StepInfo, Technique};

/// `exp` (the paper's strongest) | `linear`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayShape {
    #[default]
    Exp,
    Linear,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Mdgf {
    pub mask: NmSte,
    pub shape: DecayShape,
    /// α of the decay.
    pub coef: f64,
}

impl Mdgf {
    /// β at update `step` of the run: 1 in the dense phase (the mask does not act), the decay
    /// after t = `step` − the dense phase's length updates of the sparse phase, 0 in the hard
    /// phase.
    pub fn beta_at(&self, step: u64) -> f64 {
        let p = self.mask.phases;
        match step {
            s if s < p.dense_until => 1.0,
            s if s >= p.hard_from => 0.0,
            s => self.beta(p.t(s)),
        }
    }

    /// β after `t` updates of the sparse phase.
    pub fn beta(&self, t: u64) -> f64 {
        let x = self.coef * t as f64;
        match self.shape {
            DecayShape::Exp => (-x).exp(),
            DecayShape::Linear => (1.0 - x).max(0.0),
        }
    }
}

impl Technique for Mdgf {
    mask_delegates!();

    fn name(&self) -> &'static str {
        "mdgf"
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2> {
        if at.step < self.mask.phases.dense_until {
            return w;
        }
        let beta = self.beta_at(at.step);
        let m = slots.buffer(MASK);
        // m + (1 − m)·β: exactly 1 on kept weights and β on pruned ones (m is 0 or 1).
        let keep = (m.clone().neg() + 1.0) * beta + m;
        // sg(W)⊙keep − sg(W − W): exactly the blend in the forward (W − W is +0), gradient 1.
        let blended = w.clone().detach() * keep;
        blended - (w.clone().detach() - w)
    }
}
