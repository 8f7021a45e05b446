//! RMSNorm, rotary position embedding (HF `rotate_half` convention), causal grouped-query
//! attention and the SwiGLU MLP, as functions of explicit parameter tensors.

use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::{silu, softmax};
use nibble_ops::LpBackend;

/// `x · rsqrt(mean(x²) + ε) · w` over the last axis; `w` is `[1, d]`. The fused kernel where
/// the backend has one (CPU), else [`rms_norm_reference`].
pub fn rms_norm<B: LpBackend>(x: Tensor<B, 3>, w: Tensor<B, 2>, eps: f64) -> Tensor<B, 3> {
    if !nibble_ops::fused::applies(&x) {
        return rms_norm_reference(x, w, eps);
    }
    let [b, t, d] = x.dims();
    nibble_ops::fused::rms_norm(x.reshape([b * t, d]), w, eps).reshape([b, t, d])
}

/// RMSNorm as a composition of burn ops (any backend; the fused kernel's reference).
pub fn rms_norm_reference<B: Backend>(x: Tensor<B, 3>, w: Tensor<B, 2>, eps: f64) -> Tensor<B, 3> {
    let ms = (x.clone() * x.clone()).mean_dim(2);
    x * (ms + eps).sqrt().recip() * w.unsqueeze::<3>()
}

/// cos/sin tables `[seq_len, head_dim]`: θ_i = theta^(−2i/hd), angle(t, i) = t·θ_i, duplicated
/// over the two halves (HF Llama layout), and the `rotate_half` matrix.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
    /// `rotate_half` as a signed permutation: `x·R = cat(−x₂, x₁)`, exact (one ±1 term per output).
    pub rot: Tensor<B, 2>,
}

impl<B: LpBackend> Rope<B> {
    pub fn new(head_dim: usize, seq_len: usize, theta: f64, device: &B::Device) -> Self {
        let half = head_dim / 2;
        let (mut c, mut s) = (
            Vec::with_capacity(seq_len * head_dim),
            Vec::with_capacity(seq_len * head_dim),
        );
        for t in 0..seq_len {
            for j in 0..head_dim {
                let i = j % half;
                let ang = t as f64 * theta.powf(-2.0 * i as f64 / head_dim as f64);
                c.push(ang.cos() as f32);
                s.push(ang.sin() as f32);
            }
        }
        let mut r = vec![0f32; head_dim * head_dim];
        for j in 0..half {
            r[(j + half) * head_dim + j] = -1.0; // out j      = −x[j + half]
            r[j * head_dim + j + half] = 1.0; //    out j+half =  x[j]
        }
        Self {
            cos: Tensor::from_data(TensorData::new(c, [seq_len, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(s, [seq_len, head_dim]), device),
            rot: Tensor::from_data(TensorData::new(r, [head_dim, head_dim]), device),
        }
    }

    /// Rotate `x`: `[batch, seq, heads, head_dim]` (the contiguous layout of a projection's
    /// output; seq ≤ the table length): `x·cos + rotate_half(x)·sin` at positions `0..seq`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.apply_at(x, 0)
    }

    /// Rotate `x`: `[batch, n, heads, head_dim]` holding positions `start..start + n` (a
    /// KV-cached forward's new tokens). Panics when
    /// `start + n` exceeds the table length: callers check positions first.
    pub fn apply_at(&self, x: Tensor<B, 4>, start: usize) -> Tensor<B, 4> {
        let [b, t, h, hd] = x.dims();
        let len = self.cos.dims()[0];
        assert!(
            start + t <= len,
            "RoPE positions {start}..{} beyond the table ({len})",
            start + t
        );
        let cos = self.cos.clone().narrow(0, start, t);
        let sin = self.sin.clone().narrow(0, start, t);
        if nibble_ops::fused::applies(&x) {
            return nibble_ops::fused::rope(x, cos, sin);
        }
        let cos = cos.reshape([1, t, 1, hd]);
        let sin = sin.reshape([1, t, 1, hd]);
        let rotated = x
            .clone()
            .reshape([b * t * h, hd])
            .matmul(self.rot.clone())
            .reshape([b, t, h, hd]);
        x * cos + rotated * sin
    }

    /// Number of positions the tables cover.
    pub fn len(&self) -> usize {
        self.cos.dims()[0]
    }

    /// True when the tables cover no position.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Causal softmax attention. q: `[b, h, t, hd]`, k/v: `[b, kv, t, hd]` with kv dividing h; query
/// head j reads key/value head j / (h / kv) (HF `repeat_kv`). Returns `[b, h, t, hd]`.
pub fn causal_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
) -> Tensor<B, 4> {
    attend(attention_probs(q, k, 0), v)
}

/// Causal attention probabilities `[b, h, n, total]` of `n` queries at positions
/// `start..start + n` over keys at positions `0..total` (`total = start + n`; `start > 0` when
/// earlier keys come from a KV cache): query i sees keys `0..=start + i`.
pub fn attention_probs<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, start: usize) -> Tensor<B, 4> {
    causal_softmax(attention_scores(q, k), start)
}

/// Scaled scores `q·kᵀ/√hd` `[b, h, n, total]`, before the causal mask (Teacher Intervention's
/// score distillation reads them; its loss leaves the masked entries out).
///
/// The n_rep = h / kv query heads of a group are folded into rows (`[b, kv, n_rep·n, hd]`), so
/// keys are used as they are instead of being repeated.
pub fn attention_scores<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, n, hd] = q.dims();
    let [_, kv, total, _] = k.dims();
    let q = q.reshape([b, kv, h / kv * n, hd]);
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
    scores.reshape([b, h, n, total])
}

/// Softmax over keys of scores `[b, h, n, total]` with query i seeing keys `0..=start + i`.
pub fn causal_softmax<B: Backend>(scores: Tensor<B, 4>, start: usize) -> Tensor<B, 4> {
    let [_, _, n, total] = scores.dims();
    // One new query at the end sees every key: nothing to mask.
    if start + 1 == total && n == 1 {
        return softmax(scores, 3);
    }
    let mask = causal_mask(n, total, start, &scores.device());
    softmax(scores + mask, 3)
}

/// 0 where query i (at position `start + i`) may see key j, −∞ after it: `[1, 1, n, total]`.
pub fn causal_mask<B: Backend>(
    n: usize,
    total: usize,
    start: usize,
    device: &B::Device,
) -> Tensor<B, 4> {
    let mut mask = vec![0f32; n * total];
    for i in 0..n {
        for j in (start + i + 1)..total {
            mask[i * total + j] = f32::NEG_INFINITY;
        }
    }
    Tensor::<B, 2>::from_data(TensorData::new(mask, [n, total]), device).reshape([1, 1, n, total])
}

/// Per-head context `[b, h, n, hd]` from probabilities `[b, h, n, total]` and values
/// `[b, kv, total, hd]`.
pub fn attend<B: Backend>(p: Tensor<B, 4>, v: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, h, n, total] = p.dims();
    let [_, kv, _, hd] = v.dims();
    let rep = h / kv;
    p.reshape([b, kv, rep * n, total])
        .matmul(v)
        .reshape([b, h, n, hd])
}

/// SwiGLU: `silu(gate) ⊙ up` (the down projection is applied by the caller); the fused kernel
/// where the backend has one, else [`swiglu_reference`].
pub fn swiglu<B: LpBackend>(gate: Tensor<B, 3>, up: Tensor<B, 3>) -> Tensor<B, 3> {
    if !nibble_ops::fused::applies(&gate) {
        return swiglu_reference(gate, up);
    }
    let [b, t, f] = gate.dims();
    nibble_ops::fused::swiglu(gate.reshape([b * t, f]), up.reshape([b * t, f])).reshape([b, t, f])
}

/// SwiGLU as a composition of burn ops.
pub fn swiglu_reference<B: Backend>(gate: Tensor<B, 3>, up: Tensor<B, 3>) -> Tensor<B, 3> {
    silu(gate) * up
}
