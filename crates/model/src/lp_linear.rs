//! `LpLinear`: every projection of the model, `y = x·Wᵀ` with operands treated per its scheme
//! (nibble-ops' quantized linear with its custom backward; a plain matmul for `f32`).

use std::sync::{Arc, Mutex};

use burn::prelude::*;
use nibble_ops::{DelayedState, LayerCall, LinearScheme, LpBackend, keys, lp_linear};

/// One linear layer: its HF module name, the scheme the precision policy gave it, its index in
/// the model (it keys the layer's random streams) and, for delayed scaling, its amax histories.
#[derive(Debug, Clone)]
pub struct LpLinear {
    pub name: String,
    pub scheme: Arc<LinearScheme>,
    pub index: u64,
    pub delayed: Option<Arc<Mutex<DelayedState>>>,
}

impl LpLinear {
    pub fn new(name: String, scheme: Arc<LinearScheme>, index: u64) -> Self {
        let delayed = scheme
            .delayed
            .map(|d| Arc::new(Mutex::new(DelayedState::new(&d))));
        LpLinear {
            name,
            scheme,
            index,
            delayed,
        }
    }

    /// End of an optimizer step: delayed scaling moves its histories on.
    pub fn end_step(&self) {
        if let (Some(d), Some(state)) = (self.scheme.delayed, &self.delayed) {
            let mut st = state.lock().expect("delayed-scaling state");
            // Validation guarantees FP8 specs on every operand of a delayed-scaling scheme.
            let [x, w, dy, ..] = self.scheme.operand_specs();
            let max = |q: Option<nibble_formats::spec::QuantSpec>| {
                q.expect("delayed scaling has FP8 operand specs")
                    .element
                    .max_value()
            };
            st.x.update(&d, max(x));
            st.w.update(&d, max(w));
            st.dy.update(&d, max(dy));
        }
    }

    /// `x`: `[batch, seq, in]`, `w`: `[out, in]` → `[batch, seq, out]`. `key` is the
    /// forward-backward call's key (run seed, step, micro-batch); the layer derives its own.
    /// `train` records amaxes for delayed scaling (evaluation does not).
    pub fn forward<B: LpBackend>(
        &self,
        x: Tensor<B, 3>,
        w: Tensor<B, 2>,
        key: u64,
        train: bool,
    ) -> Tensor<B, 3> {
        let [b, t, i] = x.dims();
        let o = w.dims()[0];
        let x = x.reshape([b * t, i]);
        let y = if self.scheme.is_identity() {
            x.matmul(w.transpose())
        } else {
            let call = LayerCall {
                key: keys::child(key, self.index),
                record: train,
                delayed: self.delayed.clone(),
            };
            lp_linear(x, w, &self.scheme, &call)
        };
        y.reshape([b, t, o])
    }
}
