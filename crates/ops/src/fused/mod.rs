//! Fused CPU kernels with their own backward: RMSNorm, RoPE, causal grouped-query attention,
//! SwiGLU and the cross-entropy fused with the lm_head (and AdamW's update in one pass),
//! the broadcasting element-wise chains that burn-flex runs on its generic strided path. Backends
//! that have them ([`LpBackend::fused_kernels`]: Flex, and `Autodiff<Flex>` with the custom
//! backward nodes of [`autodiff`]) take these entry points; the model keeps the composition of
//! burn ops for the others (and as the reference the tests compare with).

pub mod adamw;
pub mod attention;
pub(crate) mod autodiff;
pub mod bf16_gemm;
#[cfg(target_arch = "x86_64")]
mod bf16_pack;
pub mod cross_entropy;
pub(crate) mod flex;
mod gemm;
pub mod rms_norm;
pub mod rope;
pub mod simd;
pub mod swiglu;

use burn::prelude::*;
use burn::tensor::TensorPrimitive;

use crate::backend::{LpBackend, unwrap, wrap};

/// Whether the fused kernels take `x`: the backend has them and `x` is f32 (other dtypes, such
/// as the f64 of the finite-difference tests, use the composition).
pub fn applies<B: LpBackend, const D: usize>(x: &Tensor<B, D>) -> bool {
    B::fused_kernels() && x.dtype() == burn::tensor::DType::F32
}

/// RMSNorm of the rows of `x` (`[n, d]`) with weight `w` (`[1, d]`). Only for backends with
/// fused kernels.
pub fn rms_norm<B: LpBackend>(x: Tensor<B, 2>, w: Tensor<B, 2>, eps: f64) -> Tensor<B, 2> {
    wrap(B::rms_norm(unwrap(x), unwrap(w), eps))
}

/// Causal attention on the projection layout: q `[b, t, h, hd]`, k and v `[b, t, kv, hd]`
/// (kv divides h; query head j reads kv head j / (h / kv)), scores scaled by 1/√hd. Returns
/// `[b, t, h, hd]`. Only for backends with fused kernels.
pub fn causal_attention<B: LpBackend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let p = |t: Tensor<B, 4>| t.into_primitive().tensor();
    Tensor::from_primitive(TensorPrimitive::Float(B::causal_attention(
        p(q),
        p(k),
        p(v),
    )))
}

/// RoPE of `x` (`[b, t, heads, hd]`) with the tables `cos`, `sin` (`[t, hd]`, the positions of
/// x's rows). Only for backends with fused kernels.
pub fn rope<B: LpBackend>(x: Tensor<B, 4>, cos: Tensor<B, 2>, sin: Tensor<B, 2>) -> Tensor<B, 4> {
    let x = x.into_primitive().tensor();
    Tensor::from_primitive(TensorPrimitive::Float(B::rope(x, unwrap(cos), unwrap(sin))))
}

/// SwiGLU `silu(g) ⊙ u` of two tensors of one shape (`[n, f]`). Only for backends with fused
/// kernels.
pub fn swiglu<B: LpBackend>(g: Tensor<B, 2>, u: Tensor<B, 2>) -> Tensor<B, 2> {
    wrap(B::swiglu(unwrap(g), unwrap(u)))
}

/// Mean next-token cross-entropy of the logits `h·Wᵀ` (h `[n, d]`, w `[v, d]`) against
/// `targets` `[n]`, without materializing the logits; differentiable in h and w. Only for
/// backends with fused kernels.
pub fn linear_cross_entropy<B: LpBackend>(
    h: Tensor<B, 2>,
    w: Tensor<B, 2>,
    targets: Tensor<B, 1, Int>,
) -> Tensor<B, 1> {
    Tensor::from_primitive(TensorPrimitive::Float(B::linear_cross_entropy(
        unwrap(h),
        unwrap(w),
        targets.into_primitive(),
    )))
}

/// One AdamW update of `p` with gradient `g` and moments `m`, `v`: `(p', m', v')`. The fused
/// single pass where the backend has it (in place when the buffers are not shared), else the
/// composition of burn ops; the same bits either way.
pub fn adamw_step<B: LpBackend>(
    p: Tensor<B, 2>,
    g: Tensor<B, 2>,
    m: Tensor<B, 2>,
    v: Tensor<B, 2>,
    step: &adamw::AdamWStep,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let (p, m, v) = B::adamw_step(unwrap(p), unwrap(g), unwrap(m), unwrap(v), step);
    (wrap(p), wrap(m), wrap(v))
}

/// AdamW as a chain of burn tensor ops (every backend; the fused kernel's reference).
pub fn adamw_composition<B: Backend>(
    p: Tensor<B, 2>,
    g: Tensor<B, 2>,
    m: Tensor<B, 2>,
    v: Tensor<B, 2>,
    s: &adamw::AdamWStep,
) -> (Tensor<B, 2>, Tensor<B, 2>, Tensor<B, 2>) {
    let m = m * s.beta1 + g.clone() * (1.0 - s.beta1);
    let v = v * s.beta2 + g.clone() * g * (1.0 - s.beta2);
    let np = if s.weight_decay > 0.0 {
        p * (1.0 - s.lr * s.weight_decay)
    } else {
        p
    };
    let denom = (v.clone() / s.bc2).sqrt() + s.eps;
    let p = np - (m.clone() / s.bc1) / denom * s.lr;
    (p, m, v)
}
