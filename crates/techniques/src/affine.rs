//! EfficientQAT's uniform affine quantizer (`UniformAffineQuantizer`, the Block-AP phase):
//! unsigned b-bit codes `0..=2^b − 1` with a learned step s and zero point z per group of
//! inputs (or per row), `ŵ = (clamp(round(w/s) + round(z), 0, qmax) − round(z))·s`.
//!
//! As the reference computes it: s is clamped to [1e-4, 1e4] and z rounded and clamped to the
//! code range with straight-through gradients, `w/s` rounds straight-through, and the clamp of
//! the codes is a real clamp. Autodiff then gives LSQ+'s gradients without LSQ's gradient scale:
//! inside the range `∂ŵ/∂w = 1`, `∂ŵ/∂s = round(w/s) − w/s`, `∂ŵ/∂z = 0`; clipped,
//! `∂ŵ/∂w = 0`, `∂ŵ/∂s = qmax − round(z)` (or `−round(z)`), `∂ŵ/∂z = −s`. Init per set by
//! min–max: `s = clamp((max − min)/qmax, 1e-4, 1e4)`, `z = round(clamp(−min/s, ±1e4))`.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::slots::LayerSlots;
use crate::technique::{Codes, GridScales, SlotKind, SlotSpec, StepInfo, Technique};

pub(crate) const SCALE: &str = "weight_scale";
pub(crate) const ZERO: &str = "weight_zero_point";

#[derive(Clone, Debug, PartialEq)]
pub struct Affine {
    pub bits: u32,
    /// `Channel` or `Group(g)` (the reference's G = −1 or G).
    pub sets: ScaleSets,
    /// The precision the steps are used in (rounded in the forward).
    pub scale: ScaleDtype,
}

/// `v` in the forward with `f(v)`'s value and the identity gradient.
pub(crate) fn ste<B: Backend>(
    v: Tensor<B, 2>,
    f: impl FnOnce(Tensor<B, 2>) -> Tensor<B, 2>,
) -> Tensor<B, 2> {
    let d = v.clone().detach();
    v + (f(d.clone()) - d)
}

impl Affine {
    pub(crate) fn qmax(&self) -> f64 {
        f64::from((1u32 << self.bits) - 1)
    }

    /// The codes `q`, the zero point and the step, each `[sets, size]`, with the reference's
    /// straight-through gradients.
    fn quantize<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
        let view = self.sets.view(w.dims());
        let qmax = self.qmax();
        let s = ste(slots.param(SCALE).reshape([view[0], 1]), |s| {
            s.clamp(1e-4, 1e4)
        });
        let s = self.scale.round(s);
        let z = ste(slots.param(ZERO).reshape([view[0], 1]), |z| z.round());
        let z = ste(z, |z| z.clamp(0.0, qmax));
        let (s, z) = (s.expand(view), z.expand(view));
        let v = w.reshape(view) / s.clone();
        let q = (ste(v, |v| v.round()) + z.clone()).clamp(0.0, qmax);
        (q, z, s)
    }
}

impl Affine {
    /// The layer's grid as E2E-QP keeps it ("convert"): the codes `[out, in]` (integers
    /// `0..=2^b − 1` as f32), and the zero points and steps in their stored shape, each exactly
    /// the value the forward uses (`z` rounded and clamped, `s` clamped). `(codes − z)·s` is this
    /// quantizer's forward weight bit for bit.
    pub fn encode<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
        let shape = w.dims();
        let (q, _, _) = self.quantize(w.clone().detach(), slots);
        // Per row or per group, the stored shape is the per-row layout of the grid's scales.
        let g = self.grid_of(shape, slots);
        (
            q.reshape(shape),
            g.zeros.expect("affine zero points"),
            g.scales,
        )
    }
}

impl Affine {
    /// The steps and zero points as the forward uses them, per set of inputs of a row.
    pub(crate) fn grid_of<B: LpBackend>(
        &self,
        shape: [usize; 2],
        slots: &LayerSlots<B>,
    ) -> GridScales<B> {
        let s = self
            .scale
            .round(slots.param(SCALE).detach().clamp(1e-4, 1e4));
        let z = slots.param(ZERO).detach().round().clamp(0.0, self.qmax());
        let (scales, group) = self.sets.per_row(s, shape);
        let (zeros, _) = self.sets.per_row(z, shape);
        GridScales {
            group,
            scales,
            zeros: Some(zeros),
            lo: 0,
            hi: self.qmax() as i32,
        }
    }
}

impl Technique for Affine {
    fn name(&self) -> &'static str {
        "affine"
    }

    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if !(2..=8).contains(&self.bits) {
            return Err(format!("affine bits must be 2..=8 (got {})", self.bits));
        }
        if self.sets == ScaleSets::Tensor {
            return Err("the affine quantizer takes one step per row or per group".into());
        }
        self.sets.check(shape)?;
        let shape = self.sets.slot_shape(shape);
        Ok(vec![
            SlotSpec {
                suffix: SCALE,
                shape,
                kind: SlotKind::Param,
            },
            SlotSpec {
                suffix: ZERO,
                shape,
                kind: SlotKind::Param,
            },
        ])
    }

    fn init<B: LpBackend>(&self, w: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        let v = w.clone().reshape(self.sets.view(w.dims()));
        let (lo, hi) = (v.clone().min_dim(1), v.max_dim(1));
        let s = ((hi - lo.clone()) / self.qmax()).clamp(1e-4, 1e4);
        let z = (lo.neg() / s.clone()).clamp(-1e4, 1e4).round();
        let shape = self.sets.slot_shape(w.dims());
        vec![s.reshape(shape), z.reshape(shape)]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Tensor<B, 2> {
        let shape = w.dims();
        let (q, z, s) = self.quantize(w, slots);
        ((q - z) * s).reshape(shape)
    }

    fn grid_scales<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<GridScales<B>> {
        Some(self.grid_of(w.dims(), slots))
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        let shape = w.dims();
        let (q, _, _) = self.quantize(w.clone().detach(), slots);
        Some(Codes {
            codes: q.detach().reshape(shape),
            lo: 0.0,
            hi: self.qmax() as f32,
        })
    }
}
