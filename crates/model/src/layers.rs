//! RMSNorm, rotary position embedding (HF `rotate_half` convention), causal grouped-query
//! attention and the SwiGLU MLP, as functions of explicit parameter tensors.

use burn::prelude::*;
use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Bool, TensorData};

/// `x · rsqrt(mean(x²) + ε) · w` over the last axis; `w` is `[1, d]`.
pub fn rms_norm<B: Backend>(x: Tensor<B, 3>, w: Tensor<B, 2>, eps: f64) -> Tensor<B, 3> {
    let ms = (x.clone() * x.clone()).mean_dim(2);
    x * (ms + eps).sqrt().recip() * w.unsqueeze::<3>()
}

/// cos/sin tables `[seq_len, head_dim]`: θ_i = theta^(−2i/hd), angle(t, i) = t·θ_i, duplicated
/// over the two halves (HF Llama layout).
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    pub cos: Tensor<B, 2>,
    pub sin: Tensor<B, 2>,
}

impl<B: Backend> Rope<B> {
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
        Self {
            cos: Tensor::from_data(TensorData::new(c, [seq_len, head_dim]), device),
            sin: Tensor::from_data(TensorData::new(s, [seq_len, head_dim]), device),
        }
    }

    /// Rotate `x`: `[batch, heads, seq, head_dim]` (seq ≤ the table length).
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [_, _, t, hd] = x.dims();
        let cos = self.cos.clone().narrow(0, 0, t).unsqueeze::<4>();
        let sin = self.sin.clone().narrow(0, 0, t).unsqueeze::<4>();
        let x1 = x.clone().narrow(3, 0, hd / 2);
        let x2 = x.clone().narrow(3, hd / 2, hd / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        x * cos + rotated * sin
    }
}

/// Causal softmax attention. q: `[b, h, t, hd]`, k/v: `[b, kv, t, hd]` with kv dividing h; query
/// head j reads key/value head j / (h / kv) (HF `repeat_kv`). Returns `[b, h, t, hd]`.
pub fn causal_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, t, hd] = q.dims();
    let kv = k.dims()[1];
    let (k, v) = if kv == h {
        (k, v)
    } else {
        (repeat_kv(k, h / kv), repeat_kv(v, h / kv))
    };
    let scores = q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt());
    let mask = Tensor::<B, 2, Bool>::tril_mask([t, t], 0, &scores.device())
        .unsqueeze::<4>()
        .expand([b, h, t, t]);
    let p = softmax(scores.mask_fill(mask, f32::NEG_INFINITY), 3);
    p.matmul(v)
}

fn repeat_kv<B: Backend>(x: Tensor<B, 4>, n_rep: usize) -> Tensor<B, 4> {
    let [b, kv, t, hd] = x.dims();
    x.unsqueeze_dim::<5>(2)
        .repeat_dim(2, n_rep)
        .reshape([b, kv * n_rep, t, hd])
}

/// SwiGLU: `silu(gate) ⊙ up` (the down projection is applied by the caller).
pub fn swiglu<B: Backend>(gate: Tensor<B, 3>, up: Tensor<B, 3>) -> Tensor<B, 3> {
    silu(gate) * up
}
