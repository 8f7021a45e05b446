//! The Llama-style decoder: embeddings → N × (RMSNorm → GQA attention with RoPE → residual,
//! RMSNorm → SwiGLU → residual) → RMSNorm → lm_head (optionally tied).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::module::embedding;
use nibble_ops::LpBackend;

use crate::config::Arch;
use crate::layers::{Rope, causal_attention, rms_norm, swiglu};
use crate::lp_linear::LpLinear;
use crate::params::Params;
use crate::policy::PrecisionPolicy;

/// The projections of one block, with their schemes resolved from the policy.
#[derive(Debug, Clone)]
struct BlockLinears {
    prefix: String,
    q: LpLinear,
    k: LpLinear,
    v: LpLinear,
    o: LpLinear,
    gate: LpLinear,
    up: LpLinear,
    down: LpLinear,
}

/// Architecture + precision policy; parameters are passed to `forward` explicitly.
#[derive(Debug, Clone)]
pub struct Llama {
    pub arch: Arch,
    pub policy: PrecisionPolicy,
    blocks: Vec<BlockLinears>,
    lm_head: LpLinear,
}

impl Llama {
    pub fn new(arch: Arch, policy: PrecisionPolicy) -> Self {
        let index = std::cell::Cell::new(0u64);
        let lin = |name: String| {
            index.set(index.get() + 1);
            LpLinear::new(
                name.clone(),
                policy.scheme_for(&name, arch.n_layers),
                index.get(),
            )
        };
        let blocks = (0..arch.n_layers)
            .map(|l| {
                let p = format!("model.layers.{l}");
                BlockLinears {
                    q: lin(format!("{p}.self_attn.q_proj")),
                    k: lin(format!("{p}.self_attn.k_proj")),
                    v: lin(format!("{p}.self_attn.v_proj")),
                    o: lin(format!("{p}.self_attn.o_proj")),
                    gate: lin(format!("{p}.mlp.gate_proj")),
                    up: lin(format!("{p}.mlp.up_proj")),
                    down: lin(format!("{p}.mlp.down_proj")),
                    prefix: p,
                }
            })
            .collect();
        let lm_head = lin("lm_head".to_string());
        Self {
            arch,
            policy,
            blocks,
            lm_head,
        }
    }

    /// Every linear layer with its scheme, in model order (for logging and tests).
    pub fn linears(&self) -> Vec<&LpLinear> {
        let mut v: Vec<&LpLinear> = Vec::new();
        for b in &self.blocks {
            v.extend([&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down]);
        }
        v.push(&self.lm_head);
        v
    }

    /// RoPE tables for this architecture.
    pub fn rope<B: Backend>(&self, device: &B::Device) -> Rope<B> {
        Rope::new(
            self.arch.head_dim(),
            self.arch.seq_len,
            self.arch.rope_theta,
            device,
        )
    }

    /// Checks every linear layer's scheme fits its shape with `tokens` tokens per micro-batch.
    pub fn check_shapes(&self, tokens: usize) -> Result<(), String> {
        let a = &self.arch;
        let (d, hd) = (a.d_model, a.head_dim());
        for b in &self.blocks {
            for (l, k, n) in [
                (&b.q, d, a.n_heads * hd),
                (&b.k, d, a.n_kv_heads * hd),
                (&b.v, d, a.n_kv_heads * hd),
                (&b.o, a.n_heads * hd, d),
                (&b.gate, d, a.d_ff),
                (&b.up, d, a.d_ff),
                (&b.down, a.d_ff, d),
            ] {
                l.scheme
                    .check_shape(tokens, k, n)
                    .map_err(|e| format!("{}: {e}", l.name))?;
            }
        }
        self.lm_head
            .scheme
            .check_shape(tokens, d, a.vocab_size)
            .map_err(|e| format!("lm_head: {e}"))
    }

    /// End of an optimizer step (delayed scaling rolls its amax histories).
    pub fn end_step(&self) {
        self.linears().iter().for_each(|l| l.end_step());
    }

    /// Delayed-scaling state of every layer that has one (for checkpoints).
    pub fn quant_state(&self) -> std::collections::BTreeMap<String, Vec<f32>> {
        self.linears()
            .iter()
            .filter_map(|l| {
                let st = l.delayed.as_ref()?.lock().expect("state").to_vec();
                Some((l.name.clone(), st))
            })
            .collect()
    }

    /// Restores [`Llama::quant_state`]; names the first layer that does not fit.
    pub fn load_quant_state(
        &self,
        saved: &std::collections::BTreeMap<String, Vec<f32>>,
    ) -> Result<(), String> {
        for l in self.linears() {
            if let Some(state) = &l.delayed {
                let v = saved
                    .get(&l.name)
                    .ok_or_else(|| format!("{}: no delayed-scaling state saved", l.name))?;
                if !state.lock().expect("state").load(v) {
                    return Err(format!(
                        "{}: delayed-scaling state has the wrong length",
                        l.name
                    ));
                }
            }
        }
        Ok(())
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]`. `key` seeds the quantizers'
    /// random streams of this call (stochastic rounding, random Hadamard signs); `train`
    /// records amaxes for delayed scaling.
    pub fn forward<B: LpBackend>(
        &self,
        p: &Params<B>,
        rope: &Rope<B>,
        tokens: Tensor<B, 2, Int>,
        key: u64,
        train: bool,
    ) -> Tensor<B, 3> {
        let a = &self.arch;
        let emb = p.get("model.embed_tokens.weight");
        let mut h = embedding(emb.clone(), tokens);
        for blk in &self.blocks {
            let w = |s: &str| p.get(&format!("{}.{s}", blk.prefix));
            let x = rms_norm(h.clone(), w("input_layernorm.weight"), a.norm_eps);
            h = h + self.attention(blk, p, rope, x, key, train);
            let x = rms_norm(h.clone(), w("post_attention_layernorm.weight"), a.norm_eps);
            let g = blk
                .gate
                .forward(x.clone(), w("mlp.gate_proj.weight"), key, train);
            let u = blk.up.forward(x, w("mlp.up_proj.weight"), key, train);
            h = h + blk
                .down
                .forward(swiglu(g, u), w("mlp.down_proj.weight"), key, train);
        }
        let h = rms_norm(h, p.get("model.norm.weight"), a.norm_eps);
        let head = if a.tie_embeddings {
            emb
        } else {
            p.get("lm_head.weight")
        };
        self.lm_head.forward(h, head, key, train)
    }

    fn attention<B: LpBackend>(
        &self,
        blk: &BlockLinears,
        p: &Params<B>,
        rope: &Rope<B>,
        x: Tensor<B, 3>,
        key: u64,
        train: bool,
    ) -> Tensor<B, 3> {
        let a = &self.arch;
        let [b, t, d] = x.dims();
        let hd = a.head_dim();
        let w = |s: &str| p.get(&format!("{}.self_attn.{s}", blk.prefix));
        // Projections are [b, t, n·hd]; RoPE works on that layout, attention on [b, n, t, hd].
        let heads = |y: Tensor<B, 3>, n: usize| y.reshape([b, t, n, hd]);
        let q = rope
            .apply(heads(
                blk.q.forward(x.clone(), w("q_proj.weight"), key, train),
                a.n_heads,
            ))
            .swap_dims(1, 2);
        let k = rope
            .apply(heads(
                blk.k.forward(x.clone(), w("k_proj.weight"), key, train),
                a.n_kv_heads,
            ))
            .swap_dims(1, 2);
        let v = heads(
            blk.v.forward(x, w("v_proj.weight"), key, train),
            a.n_kv_heads,
        )
        .swap_dims(1, 2);
        let y = causal_attention(q, k, v);
        blk.o.forward(
            y.swap_dims(1, 2).reshape([b, t, d]),
            w("o_proj.weight"),
            key,
            train,
        )
    }
}

/// Mean next-token cross-entropy (nats) of logits `[b, t, v]` against targets `[b, t]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let lsm = log_softmax(logits, 2);
    let picked = lsm.gather(2, targets.unsqueeze_dim::<3>(2));
    picked.mean().neg()
}
