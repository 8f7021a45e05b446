//! What the ternary quantizers share: the absmean of each scale set, the codes, and the
//! straight-through weight.

use burn::prelude::*;

/// The mean |w| of each set, `[sets, 1]`, of `w` viewed as `[sets, size]`.
pub fn absmean<B: Backend>(w: &Tensor<B, 2>) -> Tensor<B, 2> {
    w.clone().abs().mean_dim(1)
}

/// Ternary codes (−1, 0, +1) of `w` with threshold `delta` per set (`[sets, 1]`): ±1 where
/// `±w ≥ Δ` (ties go to ±1, as AngelSlim's `absmean` does), 0 in the deadzone.
pub fn codes<B: Backend>(w: &Tensor<B, 2>, delta: Tensor<B, 2>) -> Tensor<B, 2> {
    let shape = w.dims();
    let delta = delta.expand(shape);
    let pos = w.clone().greater_equal(delta.clone()).float();
    let neg = w.clone().lower_equal(delta.neg()).float();
    pos - neg
}

/// `q` in the forward, the identity gradient to `w` (straight-through): `q + (w − sg(w))`, whose
/// value is `q` exactly (`w − w` is +0 for finite w).
pub fn straight_through<B: Backend>(q: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    q + (w.clone() - w.detach())
}
