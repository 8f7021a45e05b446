//! `LpBackend`: the low-precision primitives as a burn backend extension. Defaults run on the
//! host through nibble-formats (every backend works, CPU at full speed); cube backends override
//! the primitives with fused kernels. `Autodiff<B>` implements `lp_linear` with the custom
//! backward of [`crate::linear`].

use std::sync::{Arc, Mutex};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::prelude::*;
use burn::tensor::TensorPrimitive;
use burn::tensor::ops::FloatTensor;
use nibble_formats::element::Element;
use nibble_formats::spec::QuantSpec;

use crate::delayed::DelayedState;
use crate::host;
use crate::linear::{self, Saved};
use crate::scheme::LinearScheme;

/// A backend primitive as a 2-D tensor (and back): the trait speaks primitives, the math tensors.
pub fn wrap<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 2> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

pub fn unwrap<B: Backend>(t: Tensor<B, 2>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The host-path primitives on backend primitives: the trait's defaults, and the fallback of
/// backends that override a primitive for some inputs only.
pub(crate) mod host_prim {
    use super::*;

    pub fn quantize<B: Backend>(
        x: FloatTensor<B>,
        spec: &QuantSpec,
        seed: u64,
        want_mask: bool,
    ) -> (FloatTensor<B>, Option<FloatTensor<B>>) {
        let (v, k) = host::quantize::<B>(wrap(x), spec, seed, want_mask);
        (unwrap(v), k.map(unwrap))
    }

    pub fn hadamard<B: Backend>(
        x: FloatTensor<B>,
        g: usize,
        signs: Option<&[f32]>,
        inverse: bool,
        signs_after: bool,
    ) -> FloatTensor<B> {
        unwrap(host::hadamard::<B>(wrap(x), g, signs, inverse, signs_after))
    }

    pub fn cast_scaled<B: Backend>(
        x: FloatTensor<B>,
        element: Element,
        scale: f32,
    ) -> (FloatTensor<B>, f32) {
        let (v, a) = host::cast_scaled::<B>(wrap(x), element, scale);
        (unwrap(v), a)
    }

    pub fn nm_mask<B: Backend>(w: FloatTensor<B>, n: usize, m: usize) -> FloatTensor<B> {
        unwrap(host::nm_mask::<B>(wrap(w), n, m))
    }

    pub fn unrotate<B: Backend>(
        d: FloatTensor<B>,
        keep: Option<FloatTensor<B>>,
        g: Option<usize>,
    ) -> FloatTensor<B> {
        unwrap(host::unrotate::<B>(wrap(d), keep.map(wrap), g))
    }
}

pub trait LpBackend: Backend {
    /// Quantize-dequantize a 2-D tensor along its last axis (the spec's transform fused in);
    /// returns the values and, if `want_mask`, the keep mask (1 = not clipped). Not
    /// differentiable.
    fn lp_quantize(
        x: FloatTensor<Self>,
        spec: &QuantSpec,
        seed: u64,
        want_mask: bool,
    ) -> (FloatTensor<Self>, Option<FloatTensor<Self>>) {
        host_prim::quantize::<Self>(x, spec, seed, want_mask)
    }

    /// Block Hadamard along the last axis, `x·diag(s)·H` (inverse: `y·H·diag(s)`); with
    /// `signs_after`, `x·H·diag(s)`. Not differentiable.
    fn lp_hadamard(
        x: FloatTensor<Self>,
        g: usize,
        signs: Option<&[f32]>,
        inverse: bool,
        signs_after: bool,
    ) -> FloatTensor<Self> {
        host_prim::hadamard::<Self>(x, g, signs, inverse, signs_after)
    }

    /// Per-tensor cast with a given scale (FP8 delayed scaling): `rne_sat(x·scale)/scale` onto
    /// `element`'s grid; returns the values and amax(|x|). Not differentiable.
    fn lp_cast_scaled(
        x: FloatTensor<Self>,
        element: Element,
        scale: f32,
    ) -> (FloatTensor<Self>, f32) {
        host_prim::cast_scaled::<Self>(x, element, scale)
    }

    /// `(d ⊙ keep)·Hᵀ` with `H` the block-g Hadamard: the backward's last step (clipped
    /// elements zeroed, the forward Hadamard undone); either part optional. Not differentiable.
    fn lp_unrotate(
        d: FloatTensor<Self>,
        keep: Option<FloatTensor<Self>>,
        g: Option<usize>,
    ) -> FloatTensor<Self> {
        host_prim::unrotate::<Self>(d, keep, g)
    }

    /// N:M magnitude keep mask of a weight `[out, in]`: in each group of `m` consecutive
    /// inputs, 1 for the `n` largest |w| (ties: the higher index is kept), 0 for the rest.
    /// Panics if `m` does not divide the input dimension or `n > m`. Not differentiable.
    fn lp_nm_mask(w: FloatTensor<Self>, n: usize, m: usize) -> FloatTensor<Self> {
        host_prim::nm_mask::<Self>(w, n, m)
    }

    /// `x·Wᵀ` under `scheme` (x: `[tokens, in]`, w: `[out, in]`). `call` carries the key of
    /// this call's stochastic rounding and random signs, and the layer's delayed-scaling state.
    /// Without autodiff: the forward only.
    fn lp_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        scheme: &Arc<LinearScheme>,
        call: &LayerCall,
    ) -> FloatTensor<Self> {
        unwrap(linear::forward::<Self>(wrap(x), wrap(w), scheme, call, false).0)
    }
}

#[derive(Debug)]
struct LpLinearBackward;

impl<B: LpBackend> Backward<B, 2> for LpLinearBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = wrap::<B>(grads.consume::<B>(&ops.node));
        let [px, pw] = ops.parents;
        let (dx, dw) = linear::backward::<B>(ops.state, dy, px.is_some(), pw.is_some());
        if let (Some(node), Some(dx)) = (px, dx) {
            grads.register::<B>(node.id, unwrap(dx));
        }
        if let (Some(node), Some(dw)) = (pw, dw) {
            grads.register::<B>(node.id, unwrap(dw));
        }
    }
}

impl<B: LpBackend, C: CheckpointStrategy> LpBackend for Autodiff<B, C> {
    fn lp_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        scheme: &Arc<LinearScheme>,
        call: &LayerCall,
    ) -> FloatTensor<Self> {
        match LpLinearBackward
            .prepare::<C>([x.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, saved) =
                    linear::forward::<B>(wrap(x.primitive), wrap(w.primitive), scheme, call, true);
                prep.finish(saved.expect("saved state"), unwrap(y))
            }
            OpsKind::UnTracked(prep) => {
                let (y, _) =
                    linear::forward::<B>(wrap(x.primitive), wrap(w.primitive), scheme, call, false);
                prep.finish(unwrap(y))
            }
        }
    }
}

/// Per call of one layer: the random key, whether amaxes are recorded (training) or not
/// (evaluation), and the layer's delayed-scaling state, if its scheme has one.
#[derive(Clone, Debug, Default)]
pub struct LayerCall {
    pub key: u64,
    pub record: bool,
    pub delayed: Option<Arc<Mutex<DelayedState>>>,
}

impl LayerCall {
    /// A call with only a key (no delayed scaling).
    pub fn key(key: u64) -> Self {
        LayerCall {
            key,
            record: true,
            delayed: None,
        }
    }
}

/// `x·Wᵀ` under `scheme` with its custom backward (on autodiff backends).
pub fn lp_linear<B: LpBackend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    scheme: &Arc<LinearScheme>,
    call: &LayerCall,
) -> Tensor<B, 2> {
    wrap(B::lp_linear(unwrap(x), unwrap(w), scheme, call))
}
