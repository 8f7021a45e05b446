//! `LpLinear`: every projection of the model, `y = x·Wᵀ` with operands treated per its scheme.

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::element::round_bf16;

use crate::scheme::LinearScheme;

/// One linear layer: its HF module name and the scheme the precision policy gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct LpLinear {
    pub name: String,
    pub scheme: LinearScheme,
}

impl LpLinear {
    /// `x`: `[batch, seq, in]`, `w`: `[out, in]` → `[batch, seq, out]`.
    pub fn forward<B: Backend>(&self, x: Tensor<B, 3>, w: Tensor<B, 2>) -> Tensor<B, 3> {
        let [b, t, i] = x.dims();
        let o = w.dims()[0];
        let x = x.reshape([b * t, i]);
        let (x, w) = match self.scheme {
            LinearScheme::F32 => (x, w),
            LinearScheme::Bf16 => (ste_round_bf16(x), ste_round_bf16(w)),
        };
        x.matmul(w.transpose()).reshape([b, t, o])
    }
}

/// Round to bf16 (RNE) in forward; identity in backward (straight-through).
///
/// `x + (q − x)` equals `q` exactly: `q − x` is exact (Sterbenz, q and x within a factor 2) and
/// so is the sum, so the forward value is the rounded tensor bit for bit.
pub fn ste_round_bf16<B: Backend, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let device = x.device();
    let shape = x.shape();
    let host: Vec<f32> = x
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .expect("f32 data");
    let q: Vec<f32> = host.into_iter().map(round_bf16).collect();
    let q = Tensor::<B, D>::from_data(TensorData::new(q, shape), &device);
    x.clone() + (q - x.detach())
}
