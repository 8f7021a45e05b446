//! `LpLinear`: every projection of the model, `y = x·Wᵀ` with operands treated per its scheme
//! (nibble-ops' quantized linear with its custom backward; a plain matmul for `f32`).

use std::sync::Arc;

use burn::prelude::*;
use nibble_ops::{LinearScheme, LpBackend, keys, lp_linear};

/// One linear layer: its HF module name, the scheme the precision policy gave it, and its index
/// in the model (it keys the layer's random streams).
#[derive(Debug, Clone, PartialEq)]
pub struct LpLinear {
    pub name: String,
    pub scheme: Arc<LinearScheme>,
    pub index: u64,
}

impl LpLinear {
    /// `x`: `[batch, seq, in]`, `w`: `[out, in]` → `[batch, seq, out]`. `key` is the
    /// forward-backward call's key (run seed, step, micro-batch); the layer derives its own.
    pub fn forward<B: LpBackend>(
        &self,
        x: Tensor<B, 3>,
        w: Tensor<B, 2>,
        key: u64,
    ) -> Tensor<B, 3> {
        let [b, t, i] = x.dims();
        let o = w.dims()[0];
        let x = x.reshape([b * t, i]);
        let y = if self.scheme.is_identity() {
            x.matmul(w.transpose())
        } else {
            lp_linear(x, w, &self.scheme, keys::child(key, self.index))
        };
        y.reshape([b, t, o])
    }
}
