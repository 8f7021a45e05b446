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
use burn::tensor::ops::{FloatTensor, IntTensor};
use nibble_formats::element::Element;
use nibble_formats::spec::QuantSpec;

use crate::delayed::DelayedState;
use crate::fused::autodiff::{
    AttentionBackward, LinearCrossEntropyBackward, RmsNormBackward, RopeBackward, SwigluBackward,
};
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

    /// Whether this backend has the fused kernels below (RMSNorm, causal attention, with their
    /// backward): Flex and `Autodiff<Flex>`. Callers use the composition of burn ops otherwise;
    /// the kernel methods are not implemented for such backends and panic if called.
    fn fused_kernels() -> bool {
        false
    }

    /// Fused RMSNorm forward of `x` `[n, d]` with `w` `[1, d]`: `(y, r)` with the row factors
    /// `r` `[n, 1]` the backward needs ([`crate::fused::rms_norm`]).
    fn rms_norm_forward(
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _eps: f64,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("no fused RMSNorm on this backend (check fused_kernels first)")
    }

    /// Fused RMSNorm backward: `(dx, dw)`.
    fn rms_norm_backward(
        _dy: FloatTensor<Self>,
        _x: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _r: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("no fused RMSNorm on this backend (check fused_kernels first)")
    }

    /// Fused causal attention forward (q `[b, t, h, hd]`, k/v `[b, t, kv, hd]`): the output
    /// `[b, t, h, hd]` and the rows' log-sum-exp `[b, h, t]` ([`crate::fused::attention`]).
    fn attention_forward(
        _q: FloatTensor<Self>,
        _k: FloatTensor<Self>,
        _v: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("no fused attention on this backend (check fused_kernels first)")
    }

    /// Fused causal attention backward: `(dq, dk, dv)`.
    fn attention_backward(
        _d_o: FloatTensor<Self>,
        _q: FloatTensor<Self>,
        _k: FloatTensor<Self>,
        _v: FloatTensor<Self>,
        _o: FloatTensor<Self>,
        _lse: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("no fused attention on this backend (check fused_kernels first)")
    }

    /// RoPE rotation of `x` `[b, t, heads, hd]` by the tables `cos`, `sin` `[t, hd]` (by the
    /// negative angles with `inverse`: the backward) ([`crate::fused::rope`]).
    fn rope_rotate(
        _x: FloatTensor<Self>,
        _cos: FloatTensor<Self>,
        _sin: FloatTensor<Self>,
        _inverse: bool,
    ) -> FloatTensor<Self> {
        unimplemented!("no fused RoPE on this backend (check fused_kernels first)")
    }

    /// Fused RoPE (differentiable in `x` on `Autodiff<B>`; the tables are constants).
    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::rope_rotate(x, cos, sin, false)
    }

    /// One AdamW update: `(p', m', v')` ([`crate::fused::adamw`]). Default: the composition of
    /// burn ops ([`crate::fused::adamw_composition`]); Flex runs one fused pass, bit-identical.
    fn adamw_step(
        p: FloatTensor<Self>,
        g: FloatTensor<Self>,
        m: FloatTensor<Self>,
        v: FloatTensor<Self>,
        step: &crate::fused::adamw::AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let (p, m, v) =
            crate::fused::adamw_composition::<Self>(wrap(p), wrap(g), wrap(m), wrap(v), step);
        (unwrap(p), unwrap(m), unwrap(v))
    }

    /// Fused SwiGLU forward `silu(g) ⊙ u` ([`crate::fused::swiglu`]).
    fn swiglu_forward(_g: FloatTensor<Self>, _u: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("no fused SwiGLU on this backend (check fused_kernels first)")
    }

    /// Fused SwiGLU backward: `(dg, du)`.
    fn swiglu_backward(
        _dy: FloatTensor<Self>,
        _g: FloatTensor<Self>,
        _u: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unimplemented!("no fused SwiGLU on this backend (check fused_kernels first)")
    }

    /// Fused SwiGLU (differentiable on `Autodiff<B>`).
    fn swiglu(g: FloatTensor<Self>, u: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::swiglu_forward(g, u)
    }

    /// Fused RMSNorm (differentiable on `Autodiff<B>`).
    fn rms_norm(x: FloatTensor<Self>, w: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        Self::rms_norm_forward(x, w, eps).0
    }

    /// Fused causal attention (differentiable on `Autodiff<B>`).
    fn causal_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::attention_forward(q, k, v).0
    }

    /// Whether [`LpBackend::bf16_matmul`] is a fused kernel (Flex): the `bf16` scheme's GEMMs
    /// then round their operands in the GEMM's packing instead of in separate passes.
    fn fused_bf16_gemm() -> bool {
        false
    }

    /// `bf16(lhs)·bf16(rhs)` with f32 accumulation (lhs `[m, k]`, rhs `[k, n]`, any strides;
    /// [`crate::fused::bf16_gemm`]). Only where [`LpBackend::fused_bf16_gemm`].
    fn bf16_matmul(_lhs: FloatTensor<Self>, _rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        unimplemented!("no fused bf16 GEMM on this backend (check fused_bf16_gemm first)")
    }

    /// Cross-entropy fused with the lm_head: the mean over rows of `−log softmax(h·Wᵀ)[target]`
    /// (h `[n, d]`, w `[v, d]`, targets `[n]`) as a `[1]` tensor and, with `grads`, its
    /// gradients `(dh, dw)` ([`crate::fused::cross_entropy`]).
    #[allow(clippy::type_complexity)]
    fn linear_cross_entropy_forward(
        _h: FloatTensor<Self>,
        _w: FloatTensor<Self>,
        _targets: IntTensor<Self>,
        _grads: bool,
    ) -> (
        FloatTensor<Self>,
        Option<(FloatTensor<Self>, FloatTensor<Self>)>,
    ) {
        unimplemented!("no fused cross-entropy on this backend (check fused_kernels first)")
    }

    /// Fused linear cross-entropy (differentiable in h and w on `Autodiff<B>`).
    fn linear_cross_entropy(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::linear_cross_entropy_forward(h, w, targets, false).0
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
    fn fused_kernels() -> bool {
        B::fused_kernels()
    }

    fn rms_norm(x: FloatTensor<Self>, w: FloatTensor<Self>, eps: f64) -> FloatTensor<Self> {
        match RmsNormBackward
            .prepare::<C>([x.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, r) = B::rms_norm_forward(x.primitive.clone(), w.primitive.clone(), eps);
                prep.finish((x.primitive, w.primitive, r), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::rms_norm_forward(x.primitive, w.primitive, eps).0)
            }
        }
    }

    fn swiglu(g: FloatTensor<Self>, u: FloatTensor<Self>) -> FloatTensor<Self> {
        match SwigluBackward
            .prepare::<C>([g.node.clone(), u.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::swiglu_forward(g.primitive.clone(), u.primitive.clone());
                prep.finish((g.primitive, u.primitive), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::swiglu_forward(g.primitive, u.primitive)),
        }
    }

    fn rope(
        x: FloatTensor<Self>,
        cos: FloatTensor<Self>,
        sin: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        // The tables are constants: their inner primitives, no graph.
        let (cos, sin) = (cos.primitive, sin.primitive);
        match RopeBackward
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = B::rope_rotate(x.primitive, cos.clone(), sin.clone(), false);
                prep.finish((cos, sin), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::rope_rotate(x.primitive, cos, sin, false)),
        }
    }

    fn causal_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        match AttentionBackward
            .prepare::<C>([q.node.clone(), k.node.clone(), v.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (qp, kp, vp) = (q.primitive, k.primitive, v.primitive);
                let (o, lse) = B::attention_forward(qp.clone(), kp.clone(), vp.clone());
                prep.finish((qp, kp, vp, o.clone(), lse), o)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(B::attention_forward(q.primitive, k.primitive, v.primitive).0)
            }
        }
    }

    fn linear_cross_entropy(
        h: FloatTensor<Self>,
        w: FloatTensor<Self>,
        targets: IntTensor<Self>,
    ) -> FloatTensor<Self> {
        // The gradients come out of the forward's pass over the logits (the loss is a scalar:
        // its backward only scales them).
        match LinearCrossEntropyBackward
            .prepare::<C>([h.node.clone(), w.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (loss, g) =
                    B::linear_cross_entropy_forward(h.primitive, w.primitive, targets, true);
                prep.finish(g.expect("gradients asked for"), loss)
            }
            OpsKind::UnTracked(prep) => prep.finish(
                B::linear_cross_entropy_forward(h.primitive, w.primitive, targets, false).0,
            ),
        }
    }

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
