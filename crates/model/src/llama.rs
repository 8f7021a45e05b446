//! The Llama-style decoder: embeddings → N × (RMSNorm → GQA attention with RoPE → residual,
//! RMSNorm → SwiGLU → residual) → RMSNorm → lm_head (optionally tied).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::module::embedding;
use nibble_ops::LpBackend;

use nibble_config::KeyError;
use nibble_techniques::{AnyTechnique, SlotKind, SlotSpec};

use crate::config::Arch;
use crate::ctx::{ForwardCtx, Intervention};
use crate::generate::KvCache;
use crate::layers::{Rope, attend, attention_scores, causal_softmax, rms_norm, swiglu};
use crate::lp_linear::LpLinear;
use crate::params::{Params, layout};
use crate::policy::PrecisionPolicy;
use crate::taps::{TapKind, TapPoint};

/// The student's forward up to the head. An objective takes the logits from it (distillation)
/// or only the cross-entropy, which the fused kernel computes without the logits tensor.
pub struct Hidden<'a, B: LpBackend> {
    model: &'a Llama,
    params: &'a Params<B>,
    /// The final normed hidden states `[batch, seq, d]`.
    pub h: Tensor<B, 3>,
}

impl<B: LpBackend> Hidden<'_, B> {
    /// Logits `[batch, seq, vocab]`.
    pub fn logits(&self, ctx: &ForwardCtx<B>) -> Tensor<B, 3> {
        self.model.head(self.h.clone(), self.params, ctx)
    }

    /// Mean next-token cross-entropy against `targets` ([`Llama::head_cross_entropy`]).
    pub fn cross_entropy(&self, targets: Tensor<B, 2, Int>, ctx: &ForwardCtx<B>) -> Tensor<B, 1> {
        self.model
            .head_cross_entropy(self.h.clone(), targets, self.params, ctx)
    }
}

/// The parameters of one decoder block, by name ([`Llama::block_params`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BlockParams {
    /// The seven projections' weights (q, k, v, o, gate, up, down).
    pub weights: Vec<String>,
    /// `input_layernorm.weight`, `post_attention_layernorm.weight`.
    pub norms: Vec<String>,
    /// The block's technique tensors and their kinds.
    pub slots: Vec<(String, SlotKind)>,
    /// The projections' module names.
    pub linears: Vec<String>,
}

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
    /// The model with only the techniques its schemes imply (delayed scaling's state).
    pub fn new(arch: Arch, policy: PrecisionPolicy) -> Self {
        Self::with_techniques(arch, policy, |_| Vec::new())
            .expect("scheme techniques fit every layer")
    }

    /// The model with `techniques(module)` on each linear layer (before its scheme's own);
    /// an error names the technique's recipe section and the first layer it does not fit.
    pub fn with_techniques(
        arch: Arch,
        policy: PrecisionPolicy,
        techniques: impl Fn(&str) -> Vec<AnyTechnique>,
    ) -> Result<Self, KeyError> {
        let index = std::cell::Cell::new(0u64);
        let lin = |name: String| {
            index.set(index.get() + 1);
            let scheme = policy.scheme_for(&name, arch.n_layers);
            let t = techniques(&name);
            LpLinear::new(name, scheme, index.get()).with_techniques(t)
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
        let mut lm_head = lin("lm_head".to_string());
        if arch.tie_embeddings {
            lm_head.weight = "model.embed_tokens.weight".into();
        }
        let model = Self {
            arch,
            policy,
            blocks,
            lm_head,
        };
        model.slot_layout()?;
        Ok(model)
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

    /// Every technique tensor of the model: (name, spec). An error names the recipe section of
    /// the technique that does not fit its layer.
    pub fn slot_layout(&self) -> Result<Vec<(String, SlotSpec)>, KeyError> {
        let shapes: std::collections::BTreeMap<String, [usize; 2]> =
            layout(&self.arch).into_iter().collect();
        let mut v = Vec::new();
        for l in self.linears() {
            v.extend(l.slot_layout(shapes[&l.weight])?);
        }
        Ok(v)
    }

    /// Names of the techniques' trainable parameters (their optimizer group by default).
    pub fn technique_params(&self) -> Vec<String> {
        let layout = self.slot_layout().expect("validated when built");
        layout
            .into_iter()
            .filter(|(_, s)| s.kind == SlotKind::Param)
            .map(|(n, _)| n)
            .collect()
    }

    /// Fresh parameters: the Llama init, then each technique's tensors from its layer's weight.
    pub fn init_params<B: LpBackend>(&self, seed: u64, device: &B::Device) -> Params<B> {
        self.with_slots(Params::init(&self.arch, seed, device))
    }

    /// `weights` (e.g. an imported model's) plus each technique's tensors initialized from them.
    pub fn with_slots<B: LpBackend>(&self, mut weights: Params<B>) -> Params<B> {
        for l in self.linears() {
            l.init_slots(&mut weights);
        }
        weights
    }

    /// Zero tensors of the full layout (weights and technique tensors): a checkpoint's target.
    pub fn zero_params<B: LpBackend>(&self, device: &B::Device) -> Params<B> {
        let mut p = Params::zeros(&self.arch, device);
        for (name, spec) in self.slot_layout().expect("validated when built") {
            p.insert_slot(&name, spec.kind, Tensor::zeros(spec.shape, device));
        }
        p
    }

    /// RoPE tables for this architecture.
    pub fn rope<B: LpBackend>(&self, device: &B::Device) -> Rope<B> {
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

    /// Every linear layer's `[qat]` grid codes at `at` (layers without one are left out).
    pub fn qat_codes<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Vec<(String, nibble_techniques::Codes<B>)> {
        self.linears()
            .into_iter()
            .filter_map(|l| Some((l.name.clone(), l.qat_codes(p, at)?)))
            .collect()
    }

    /// The sum of every layer's technique auxiliary losses (SR-STE), if any.
    pub fn aux_loss<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Option<Tensor<B, 1>> {
        self.linears()
            .into_iter()
            .filter_map(|l| l.aux_loss(p, at))
            .reduce(|a, b| a + b)
    }

    /// EfficientQAT's conversion of every layer with an affine grid in its codes form
    /// ([`LpLinear::convert_to_codes`]); the number of layers converted.
    pub fn convert_to_codes<B: LpBackend>(&self, p: &mut Params<B>) -> Result<usize, String> {
        let mut n = 0;
        for l in self.linears() {
            n += usize::from(l.convert_to_codes(p)?);
        }
        Ok(n)
    }

    /// Every linear layer, mutably (blocks in order, then lm_head).
    fn linears_mut(&mut self) -> impl Iterator<Item = &mut LpLinear> {
        self.blocks
            .iter_mut()
            .flat_map(|b| {
                [
                    &mut b.q,
                    &mut b.k,
                    &mut b.v,
                    &mut b.o,
                    &mut b.gate,
                    &mut b.up,
                    &mut b.down,
                ]
            })
            .chain(std::iter::once(&mut self.lm_head))
    }

    /// The `[qat]` techniques act from update `step` on (QAT switched on late, e.g. at the start
    /// of the LR decay).
    pub fn set_qat_start(&mut self, step: u64) {
        self.linears_mut().for_each(|l| l.qat_from = step);
    }

    /// The sparsity techniques' phases (dense start, hard-mask end), in updates of the run.
    pub fn set_sparse_phases(&mut self, phases: nibble_techniques::SparsePhases) {
        for l in self.linears_mut() {
            l.techniques
                .iter_mut()
                .filter_map(AnyTechnique::nm_mut)
                .for_each(|m| m.phases = phases);
        }
    }

    /// Every layer's per-step maxima (FP8 delayed scaling's staged amaxes), in layer order: what
    /// data-parallel peers reduce by maximum before [`Llama::end_step`].
    pub fn step_maxima(&self) -> Vec<f32> {
        self.linears()
            .iter()
            .flat_map(|l| l.step_maxima())
            .collect()
    }

    /// The reduced maxima of [`Llama::step_maxima`] back into the layers.
    pub fn set_step_maxima(&self, mut v: &[f32]) {
        self.linears()
            .iter()
            .for_each(|l| l.set_step_maxima(&mut v));
    }

    /// After optimizer step `step` (the number of steps now done): every technique's hook
    /// (delayed scaling rolls its amax histories, masks are recomputed, ...).
    pub fn end_step<B: LpBackend>(&self, step: u64, p: &mut Params<B>) {
        self.linears().iter().for_each(|l| l.end_step(step, p));
    }

    /// Logits `[batch, seq, vocab]` for token ids `[batch, seq]` under `ctx` (key, step, train,
    /// taps).
    pub fn forward<B: LpBackend>(
        &self,
        p: &Params<B>,
        rope: &Rope<B>,
        tokens: Tensor<B, 2, Int>,
        ctx: &mut ForwardCtx<B>,
    ) -> Tensor<B, 3> {
        let h = self.decode(p, rope, tokens, ctx, None);
        self.head(h, p, ctx)
    }

    /// The decoder without the head: the final normed hidden states `[batch, seq, d]`, from
    /// which [`Hidden`] gives the logits or the fused cross-entropy.
    pub fn hidden<'a, B: LpBackend>(
        &'a self,
        p: &'a Params<B>,
        rope: &Rope<B>,
        tokens: Tensor<B, 2, Int>,
        ctx: &mut ForwardCtx<B>,
    ) -> Hidden<'a, B> {
        let h = self.decode(p, rope, tokens, ctx, None);
        Hidden {
            model: self,
            params: p,
            h,
        }
    }

    /// The lm_head on final hidden states: logits `[batch, seq, vocab]`.
    pub fn head<B: LpBackend>(
        &self,
        h: Tensor<B, 3>,
        p: &Params<B>,
        ctx: &ForwardCtx<B>,
    ) -> Tensor<B, 3> {
        self.lm_head.forward(h, p, ctx)
    }

    /// Mean next-token cross-entropy of the head's logits on `h` against `targets`
    /// (`[batch, seq]`). Where the backend has fused kernels and the lm_head computes in f32
    /// (its scheme the identity, as by default), the fused kernel never materializes the logits;
    /// otherwise [`cross_entropy`] of [`Llama::head`]. The two agree to float rounding.
    pub fn head_cross_entropy<B: LpBackend>(
        &self,
        h: Tensor<B, 3>,
        targets: Tensor<B, 2, Int>,
        p: &Params<B>,
        ctx: &ForwardCtx<B>,
    ) -> Tensor<B, 1> {
        let plain = self.lm_head.scheme.is_identity() && !self.lm_head.has_output_bias();
        if !(nibble_ops::fused::applies(&h) && plain) {
            return cross_entropy(self.head(h, p, ctx), targets);
        }
        let [b, t, d] = h.dims();
        let w = self.lm_head.effective_weight(p, ctx.step_info());
        nibble_ops::fused::linear_cross_entropy(h.reshape([b * t, d]), w, targets.reshape([b * t]))
    }

    /// The decoder on `tokens` at positions `start..start + n`, `start` being the cache's length
    /// (0 without one), up to the final norm (the head's input): with a cache, each block's keys
    /// and values are appended to it and the queries attend over everything cached
    /// ([`Llama::forward_cached`]).
    pub(crate) fn decode<B: LpBackend>(
        &self,
        p: &Params<B>,
        rope: &Rope<B>,
        tokens: Tensor<B, 2, Int>,
        ctx: &mut ForwardCtx<B>,
        mut cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let start = cache.as_ref().map_or(0, |c| c.len());
        let n = tokens.dims()[1];
        let mut h = self.embed(p, tokens);
        h = tap3(ctx, TapPoint::new(0, TapKind::Embedded), h);
        for layer in 0..self.blocks.len() {
            h = self.block_at(layer, h, p, rope, ctx, start, cache.as_deref_mut());
        }
        if let Some(c) = cache {
            c.advance(n);
        }
        rms_norm(h, p.get("model.norm.weight"), self.arch.norm_eps)
    }

    /// The token embeddings `[batch, seq, d]` of `tokens` (the first block's input).
    pub fn embed<B: LpBackend>(&self, p: &Params<B>, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        embedding(p.get("model.embed_tokens.weight"), tokens)
    }

    /// Number of decoder blocks.
    pub fn n_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Decoder block `layer` alone on its input `h` `[batch, seq, d]` (positions from 0, no
    /// cache): what block-wise reconstruction (EfficientQAT's Block-AP) trains.
    pub fn block<B: LpBackend>(
        &self,
        layer: usize,
        h: Tensor<B, 3>,
        p: &Params<B>,
        rope: &Rope<B>,
        ctx: &mut ForwardCtx<B>,
    ) -> Tensor<B, 3> {
        self.block_at(layer, h, p, rope, ctx, 0, None)
    }

    /// The names of block `layer`'s parameters: its projections' weights, its two RMSNorm
    /// gains, and its layers' technique tensors (slots), each list in model order.
    pub fn block_params(&self, layer: usize) -> BlockParams {
        let b = &self.blocks[layer];
        let lins = [&b.q, &b.k, &b.v, &b.o, &b.gate, &b.up, &b.down];
        let slots = self.slot_layout().expect("validated when built");
        let prefix = format!("{}.", b.prefix);
        BlockParams {
            weights: lins.iter().map(|l| l.weight.clone()).collect(),
            norms: ["input_layernorm", "post_attention_layernorm"]
                .map(|n| format!("{}.{n}.weight", b.prefix))
                .to_vec(),
            slots: slots
                .into_iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .map(|(n, s)| (n, s.kind))
                .collect(),
            linears: lins.iter().map(|l| l.name.clone()).collect(),
        }
    }

    /// The linear layer named `name` (HF module name), if any.
    pub fn linear(&self, name: &str) -> Option<&LpLinear> {
        self.linears().into_iter().find(|l| l.name == name)
    }

    #[allow(clippy::too_many_arguments)]
    fn block_at<B: LpBackend>(
        &self,
        layer: usize,
        mut h: Tensor<B, 3>,
        p: &Params<B>,
        rope: &Rope<B>,
        ctx: &mut ForwardCtx<B>,
        start: usize,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let (a, blk) = (&self.arch, &self.blocks[layer]);
        let w = |s: &str| p.get(&format!("{}.{s}", blk.prefix));
        let x = rms_norm(h.clone(), w("input_layernorm.weight"), a.norm_eps);
        let attn = self.attention(layer, blk, p, rope, x, ctx, start, cache);
        let attn = tap3(ctx, TapPoint::new(layer, TapKind::AttnOut), attn);
        h = h + attn;
        let x = rms_norm(h.clone(), w("post_attention_layernorm.weight"), a.norm_eps);
        let g = blk.gate.forward(x.clone(), p, ctx);
        let u = blk.up.forward(x, p, ctx);
        h = h + blk.down.forward(swiglu(g, u), p, ctx);
        tap3(ctx, TapPoint::new(layer, TapKind::BlockOut), h)
    }

    #[allow(clippy::too_many_arguments)]
    fn attention<B: LpBackend>(
        &self,
        layer: usize,
        blk: &BlockLinears,
        p: &Params<B>,
        rope: &Rope<B>,
        x: Tensor<B, 3>,
        ctx: &mut ForwardCtx<B>,
        start: usize,
        cache: Option<&mut KvCache<B>>,
    ) -> Tensor<B, 3> {
        let a = &self.arch;
        let [b, t, d] = x.dims();
        let hd = a.head_dim();
        // Projections are [b, t, n·hd]; RoPE works on that layout, attention on [b, n, t, hd].
        let heads = |y: Tensor<B, 3>, n: usize| y.reshape([b, t, n, hd]);
        let scores = TapPoint::new(layer, TapKind::AttnScores);
        let probs = TapPoint::new(layer, TapKind::AttnProbs);
        let context = TapPoint::new(layer, TapKind::HeadContext);
        // The fused kernel (CPU) works on the projection layout and keeps nothing T×T; the
        // composition serves the KV cache and the taps that read or replace its intermediates.
        let fused = nibble_ops::fused::applies(&x)
            && cache.is_none()
            && start == 0
            && !ctx.taps.wants(scores)
            && !ctx.taps.wants(probs)
            && !ctx.taps.wants(context);
        // Teacher Intervention: what the replaced signal cuts off reads a detached input.
        let (x_qk, x_v) = match ctx.intervention {
            None => (x.clone(), x),
            Some(Intervention::Map) => (x.clone().detach(), x),
            Some(_) => (x.clone().detach(), x.detach()),
        };
        let q = rope.apply_at(heads(blk.q.forward(x_qk.clone(), p, ctx), a.n_heads), start);
        let k = rope.apply_at(heads(blk.k.forward(x_qk, p, ctx), a.n_kv_heads), start);
        let v = heads(blk.v.forward(x_v, p, ctx), a.n_kv_heads);
        let y = if fused {
            nibble_ops::fused::causal_attention(q, k, v)
        } else {
            let (k, v) = (k.swap_dims(1, 2), v.swap_dims(1, 2));
            let (k, v) = match cache {
                Some(c) => c.append(layer, k, v),
                None => (k, v),
            };
            let sc = ctx
                .taps
                .tap_if(scores, attention_scores(q.swap_dims(1, 2), k));
            let pr = ctx.taps.tap_if(probs, causal_softmax(sc, start));
            ctx.taps.tap_if(context, attend(pr, v)).swap_dims(1, 2)
        };
        blk.o.forward(y.reshape([b, t, d]), p, ctx)
    }
}

/// A `[b, t, d]` signal through a tap (as `[b, 1, t, d]`), only if the tap is in use.
fn tap3<B: Backend>(ctx: &mut ForwardCtx<B>, point: TapPoint, x: Tensor<B, 3>) -> Tensor<B, 3> {
    if !ctx.taps.wants(point) {
        return x;
    }
    let [b, t, d] = x.dims();
    ctx.taps
        .tap(point, x.reshape([b, 1, t, d]))
        .reshape([b, t, d])
}

/// Mean next-token cross-entropy (nats) of logits `[b, t, v]` against targets `[b, t]`.
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 3>, targets: Tensor<B, 2, Int>) -> Tensor<B, 1> {
    let lsm = log_softmax(logits, 2);
    let picked = lsm.gather(2, targets.unsqueeze_dim::<3>(2));
    picked.mean().neg()
}
