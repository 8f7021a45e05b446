//! ParetoQ's SEQ, "Stretched Elastic Quant" (Liu et al. 2025), for ternary (1.58-bit) and 2-bit
//! weights: a learned clipping range α per output row (`weight_clip_val`, `[out, 1]`) and levels
//! spread evenly and symmetrically over it. Reference: facebookresearch/ParetoQ,
//! `models/utils_quant.py`, class `StretchedElasticQuant` (called by `QuantizeLinear` for
//! `w_bits == 0` (ternary) and `w_bits == 2`; 1, 3 and 4 bits use LSQ there, not SEQ), and the
//! init in `train.py`.
//!
//! With `n, shift = 1.5, 0` (ternary) or `2, 0.5` (2-bit), `c = 0.99`, `α' = α` where
//! `α > 1e-5`, else `1e-5`, and `q = w/α'`:
//!
//! ```text
//! Q(q) = (round(clamp(q, −c, c)·n − shift) + shift) / n     (round half to even)
//! ŵ    = Q(q)·α'
//! ```
//!
//! so ŵ ∈ α'·{−2/3, 0, 2/3} (ternary) or α'·{−3/4, −1/4, 1/4, 3/4} (2-bit): `[−α', α']` cut into
//! `2n` (3 or 4) equal bins, each mapped to its centre. The clamp stops at 0.99, not 1: at exactly
//! 1 the rounding would reach an extra level (`round(1.5) = 2`).
//!
//! Backward (the reference's own autograd function, rebuilt here with detached terms so that
//! burn's autodiff yields it exactly), with `small = q < −c`, `big = q > c`, `mid` the rest:
//!
//! ```text
//! ∂L/∂w = mid · ∂L/∂ŵ
//! ∂L/∂α = g · Σ_row ∂L/∂ŵ · (small·(−Q_p) + big·Q_p + mid·(Q(q) − q))
//! Q_p   = (n − shift)/n      (ternary 1, 2-bit 3/4)
//! g     = 1/√(out·in)        (the whole tensor's numel, even though α is per row)
//! ```
//!
//! The gradient passes to α unchanged through the 1e-5 floor. Init: `α = max_j |w_ij|` per row.
//!
//! Where the reference is odd (kept, since this matches the code): for ternary the clipped
//! gradient uses `Q_p = 1` while the clipped value is `2/3·α` (for 2-bit both are `3/4`); `g`
//! comes from LSQ's `Q_p = 2^(b−1) − 1` before SEQ reassigns it, which is 1 for both widths, so
//! `g = 1/√numel`; and the clip is at ±0.99 rather than ±1 (see above).

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::slots::LayerSlots;
use crate::technique::{Codes, SlotKind, SlotSpec, StepInfo, Technique};

const SCALE: &str = "weight_clip_val";
/// `|w/α|` beyond this clips (the reference's `clip_val = 1 − 1e-2`).
const CLIP: f64 = 0.99;
/// Floor of α in the forward (`torch.where(α > eps, α, eps)`).
const EPS: f64 = 1e-5;

#[derive(Clone, Debug, PartialEq)]
pub struct Seq {
    /// 1.58 (ternary, the reference's `w_bits = 0`) or 2.
    pub bits: f32,
}

impl Seq {
    /// `(n, shift)` of the grid: `(1.5, 0)` ternary, `(2, 0.5)` 2-bit.
    fn grid(&self) -> Result<(f64, f64), String> {
        match self.bits {
            1.58 => Ok((1.5, 0.0)),
            2.0 => Ok((2.0, 0.5)),
            b => Err(format!("SEQ bits must be 1.58 (ternary) or 2 (got {b})")),
        }
    }
}

impl Seq {
    /// α' (detached): NaN and values ≤ eps become eps, as `torch.where(α > eps, α, eps)`.
    fn floored<B: Backend>(alpha: Tensor<B, 2>) -> Tensor<B, 2> {
        let ad = alpha.detach();
        ad.clone().mask_fill(ad.greater_elem(EPS).bool_not(), EPS)
    }
}

impl Technique for Seq {
    fn name(&self) -> &'static str {
        "seq"
    }

    fn slots(&self, [out, _]: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        self.grid()?;
        Ok(vec![SlotSpec {
            suffix: SCALE,
            shape: [out, 1],
            kind: SlotKind::Param,
        }])
    }

    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        vec![weight.clone().abs().max_dim(1)]
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Tensor<B, 2> {
        let (n, shift) = self.grid().unwrap_or_else(|e| panic!("{e}"));
        let qp = (n - shift) / n;
        let [out, inp] = w.dims();
        let g = 1.0 / ((out * inp) as f64).sqrt();

        let alpha = slots.param(SCALE);
        let a = Self::floored(alpha.clone());
        let wd = w.clone().detach();
        let q = wd.clone() / a.clone();
        let lv = ((q.clone().clamp(-CLIP, CLIP) * n - shift).round() + shift) / n;
        let small = q.clone().lower_elem(-CLIP).float();
        let big = q.clone().greater_elem(CLIP).float();
        let mid = (small.clone() + big.clone()).neg() + 1.0;
        // ∂ŵ/∂α per element, before the gradient scale.
        let dalpha = small * (-qp) + big * qp + mid.clone() * (lv.clone() - q);

        // Zero-valued terms carrying the gradients: `w − sg(w)` (identity to w) and
        // `g·α − sg(g·α)` (g to α; broadcast over the row, so autodiff sums the row).
        let dw = w - wd;
        let ga = alpha * g;
        let da = ga.clone() - ga.detach();
        lv * a + (mid * dw + dalpha * da)
    }

    fn codes<B: LpBackend>(
        &self,
        w: &Tensor<B, 2>,
        slots: &LayerSlots<B>,
        _: StepInfo,
    ) -> Option<Codes<B>> {
        let (n, shift) = self.grid().ok()?;
        let q = w.clone().detach() / Self::floored(slots.param(SCALE));
        let codes = (q.clamp(-CLIP, CLIP) * n - shift).round();
        Some(if shift == 0.0 {
            Codes::ternary(codes)
        } else {
            Codes {
                codes,
                lo: -2.0,
                hi: 1.0,
            }
        })
    }
}
