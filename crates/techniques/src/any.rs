//! The technique registry: one variant per technique type. Adding a method is one file with a
//! type implementing [`Technique`], one variant here and the recipe rule that builds it.

use std::sync::{Arc, Mutex};

use burn::prelude::*;
use nibble_ops::{DelayedState, LpBackend};

use crate::absmean::Absmean;
use crate::affine::Affine;
use crate::affine_codes::AffineCodes;
use crate::ct_grid::CtGrid;
use crate::delayed_scaling::DelayedScalingState;
use crate::ggml_grid::GgmlGrid;
use crate::lsq::Lsq;
use crate::mdgf::Mdgf;
use crate::nm_ste::NmSte;
use crate::sdgf::Sdgf;
use crate::seq::Seq;
use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::sr_ste::SrSte;
use crate::technique::{Codes, GridScales, SlotSpec, StepInfo, Technique};
use crate::tequila::Tequila;
use crate::twn::Twn;

#[derive(Clone, Debug, PartialEq)]
pub enum AnyTechnique {
    NmSte(NmSte),
    SrSte(SrSte),
    Mdgf(Mdgf),
    Sdgf(Sdgf),
    Lsq(Lsq),
    GgmlGrid(GgmlGrid),
    CtGrid(CtGrid),
    Absmean(Absmean),
    Affine(Affine),
    AffineCodes(AffineCodes),
    Seq(Seq),
    Twn(Twn),
    Tequila(Tequila),
    DelayedScaling(DelayedScalingState),
}

macro_rules! each {
    ($self:expr, $t:ident => $e:expr) => {
        match $self {
            AnyTechnique::NmSte($t) => $e,
            AnyTechnique::SrSte($t) => $e,
            AnyTechnique::Mdgf($t) => $e,
            AnyTechnique::Sdgf($t) => $e,
            AnyTechnique::Lsq($t) => $e,
            AnyTechnique::GgmlGrid($t) => $e,
            AnyTechnique::CtGrid($t) => $e,
            AnyTechnique::Absmean($t) => $e,
            AnyTechnique::Affine($t) => $e,
            AnyTechnique::AffineCodes($t) => $e,
            AnyTechnique::Seq($t) => $e,
            AnyTechnique::Twn($t) => $e,
            AnyTechnique::Tequila($t) => $e,
            AnyTechnique::DelayedScaling($t) => $e,
        }
    };
}

impl AnyTechnique {
    /// The recipe section that attaches this technique (errors about it point there).
    pub fn section(&self) -> &'static str {
        match self {
            AnyTechnique::NmSte(_)
            | AnyTechnique::SrSte(_)
            | AnyTechnique::Mdgf(_)
            | AnyTechnique::Sdgf(_) => "sparsity",
            AnyTechnique::Lsq(_)
            | AnyTechnique::GgmlGrid(_)
            | AnyTechnique::CtGrid(_)
            | AnyTechnique::Absmean(_)
            | AnyTechnique::Affine(_)
            | AnyTechnique::AffineCodes(_)
            | AnyTechnique::Seq(_)
            | AnyTechnique::Twn(_)
            | AnyTechnique::Tequila(_) => "qat",
            AnyTechnique::DelayedScaling(_) => "precision",
        }
    }

    /// This technique with EfficientQAT's affine grid in its E2E-QP form (the weight holds the
    /// codes, only the steps train); every other technique unchanged.
    pub fn into_codes(self) -> Self {
        match self {
            AnyTechnique::Affine(grid) => AnyTechnique::AffineCodes(AffineCodes { grid }),
            t => t,
        }
    }

    /// The N:M mask of a sparsity technique (its target pattern, dimension and phases).
    pub fn nm(&self) -> Option<&NmSte> {
        match self {
            AnyTechnique::NmSte(m) => Some(m),
            AnyTechnique::SrSte(s) => Some(&s.mask),
            AnyTechnique::Mdgf(d) => Some(&d.mask),
            AnyTechnique::Sdgf(d) => Some(&d.mask),
            _ => None,
        }
    }

    /// The N:M mask of a sparsity technique, to set its phases.
    pub fn nm_mut(&mut self) -> Option<&mut NmSte> {
        match self {
            AnyTechnique::NmSte(m) => Some(m),
            AnyTechnique::SrSte(s) => Some(&mut s.mask),
            AnyTechnique::Mdgf(d) => Some(&mut d.mask),
            AnyTechnique::Sdgf(d) => Some(&mut d.mask),
            _ => None,
        }
    }

    /// Whether [`Technique::apply_with_bias`] gives a term (Tequila).
    pub fn adds_output_bias(&self) -> bool {
        matches!(self, AnyTechnique::Tequila(_))
    }

    /// The GEMM state this technique contributes to the layer's call (delayed scaling only).
    pub fn gemm_state<B: LpBackend>(
        &self,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Option<Arc<Mutex<DelayedState>>> {
        match self {
            AnyTechnique::DelayedScaling(d) => Some(d.gemm_state(slots, at)),
            _ => None,
        }
    }
}

impl Technique for AnyTechnique {
    fn name(&self) -> &'static str {
        each!(self, t => t.name())
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        each!(self, t => t.slots(shape))
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        each!(self, t => t.init(weight))
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2> {
        each!(self, t => t.apply(w, slots, at))
    }

    fn apply_with_bias<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        each!(self, t => t.apply_with_bias(w, slots, at))
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Option<Codes<B>> {
        each!(self, t => t.codes(w, slots, at))
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Option<GridScales<B>> {
        each!(self, t => t.grid_scales(w, slots, at))
    }

    fn aux_loss<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Option<Tensor<B, 1>> {
        each!(self, t => t.aux_loss(w, slots, at))
    }

    fn project<B: LpBackend>(
        &self,
        step: u64,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
    ) -> Option<Tensor<B, 2>> {
        each!(self, t => t.project(step, w, slots))
    }

    fn keep<B: LpBackend>(&self, slots: &LayerSlots<B>, at: StepInfo) -> Option<Tensor<B, 2>> {
        each!(self, t => t.keep(slots, at))
    }

    fn end_step<B: LpBackend>(&self, step: u64, weight: &Tensor<B, 2>, slots: LayerSlotsMut<B>) {
        each!(self, t => t.end_step(step, weight, slots))
    }

    fn step_maxima(&self) -> Vec<f32> {
        each!(self, t => t.step_maxima())
    }

    fn set_step_maxima(&self, maxima: &[f32]) {
        each!(self, t => t.set_step_maxima(maxima))
    }
}
