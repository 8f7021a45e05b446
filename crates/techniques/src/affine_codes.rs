//! EfficientQAT's E2E-QP form of the affine quantizer: the layer's weight tensor holds the
//! integer codes (`0..=2^b − 1`, frozen), and only the steps train, end to end on the LM loss:
//! `ŵ = (codes − z)·s`, so `∂L/∂s_g = Σ_{j∈g} (codes_j − z_g)·∂L/∂ŵ_j` exactly (no STE on the
//! codes). The zero points stay on their integers. A checkpoint of such a model is the "real
//! quantized" one: codes, steps and zero points, what a packed serving format stores.
//!
//! The step is clamped to [1e-4, 1e4] with a straight-through gradient, as in Block-AP, so the
//! weight a converted layer computes with equals the Block-AP quantizer's forward bit for bit
//! ([`Affine::encode`] writes the codes).

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::affine::{Affine, SCALE, ZERO, ste};
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotSpec, StepInfo, Technique};

#[derive(Clone, Debug, PartialEq)]
pub struct AffineCodes {
    /// The grid (bits and scale sets) the codes are on.
    pub grid: Affine,
}

impl Technique for AffineCodes {
    fn name(&self) -> &'static str {
        "affine_codes"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        self.grid.slots(shape)
    }

    /// Min–max steps and zero points of the float weight the run starts from; the trainer then
    /// converts that weight to codes ([`Affine::encode`]).
    fn init<B: LpBackend>(&self, w: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        self.grid.init(w)
    }

    fn apply<B: LpBackend>(
        &self,
        codes: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Tensor<B, 2> {
        let shape = codes.dims();
        let view = self.grid.sets.view(shape);
        let s = ste(slots.param(SCALE).reshape([view[0], 1]), |s| {
            s.clamp(1e-4, 1e4)
        });
        let s = self.grid.scale.round(s);
        let z = slots.param(ZERO).detach().reshape([view[0], 1]);
        let z = z.round().clamp(0.0, self.grid.qmax());
        ((codes.detach().reshape(view) - z.expand(view)) * s.expand(view)).reshape(shape)
    }

    fn grid_scales<B: LpBackend>(
        &self,
        codes: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        Some(self.grid.grid_of(codes.dims(), slots))
    }

    fn codes<B: LpBackend>(
        &self,
        codes: &Tensor<B, 2>,
        _: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        Some(Codes {
            codes: codes.clone().detach(),
            lo: 0.0,
            hi: self.grid.qmax() as f32,
        })
    }
}
