//! Text generation with a KV cache.
//!
//! [`Llama::forward_cached`] runs the decoder on new tokens only: each block projects them with
//! the same `LpLinear::forward` as training (so precision schemes and weight techniques apply),
//! rotates their queries and keys at their absolute positions, appends keys and values to the
//! [`KvCache`] and lets the new queries attend causally over every cached position.
//! [`generate`] prefills the prompt in one call, then feeds one token per step; sampling
//! ([`sample`]) is a pure function of (logits, temperature, top-k, seed, step), with its
//! uniform from Philox, so a run is reproducible on every backend.

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::philox;
use nibble_ops::{LpBackend, keys};

use crate::ctx::ForwardCtx;
use crate::layers::Rope;
use crate::llama::Llama;
use crate::params::Params;

/// Per block, the keys (after RoPE) and values of every position seen so far,
/// `[batch, kv_heads, t, head_dim]`, growing along `t` with each cached forward.
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    layers: Vec<Option<(Tensor<B, 4>, Tensor<B, 4>)>>,
    len: usize,
}

impl<B: Backend> Default for KvCache<B> {
    fn default() -> Self {
        Self::new()
    }
}

impl<B: Backend> KvCache<B> {
    /// An empty cache (position 0 comes next).
    pub fn new() -> Self {
        KvCache {
            layers: Vec::new(),
            len: 0,
        }
    }

    /// Positions cached so far (the next token's position).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first cached forward.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The cached keys and values of block `layer`, `[b, kv_heads, len, head_dim]` each.
    pub fn layer(&self, layer: usize) -> Option<(Tensor<B, 4>, Tensor<B, 4>)> {
        self.layers.get(layer).cloned().flatten()
    }

    /// Appends `k`, `v` (`[b, kv, n, hd]`) to block `layer`; returns all of its keys and values.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
    ) -> (Tensor<B, 4>, Tensor<B, 4>) {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        let kv = match self.layers[layer].take() {
            None => (k, v),
            Some((k0, v0)) => (Tensor::cat(vec![k0, k], 2), Tensor::cat(vec![v0, v], 2)),
        };
        self.layers[layer] = Some(kv.clone());
        kv
    }

    /// After a forward over `n` new positions.
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }
}

impl Llama {
    /// Logits `[b, n, vocab]` for the new tokens `[b, n]` at positions
    /// `cache.len()..cache.len() + n`, attending over the cached keys and values, which it
    /// extends: [`Llama::forward`]'s decoder (projections under `ctx`, taps included) with the
    /// cache. Positions beyond the RoPE table
    /// (`arch.seq_len`) are an error and leave the cache unchanged.
    pub fn forward_cached<B: LpBackend>(
        &self,
        p: &Params<B>,
        rope: &Rope<B>,
        tokens: Tensor<B, 2, Int>,
        cache: &mut KvCache<B>,
        ctx: &mut ForwardCtx<B>,
    ) -> Result<Tensor<B, 3>, String> {
        let [b, n] = tokens.dims();
        let start = cache.len();
        if n == 0 {
            return Err("forward_cached: no new tokens".into());
        }
        if start + n > rope.len() {
            return Err(format!(
                "positions {start}..{} exceed the context of {} tokens",
                start + n,
                rope.len()
            ));
        }
        if let Some((k0, _)) = cache.layer(0)
            && k0.dims()[0] != b
        {
            return Err(format!(
                "batch {b} does not match the cache's batch {}",
                k0.dims()[0]
            ));
        }
        let h = self.decode(p, rope, tokens, ctx, Some(cache));
        Ok(self.head(h, p, ctx))
    }
}

/// How [`generate`] continues a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    /// At most this many new tokens (fewer when a stop id comes or the context is full).
    pub max_new_tokens: usize,
    /// 0 = greedy (argmax, ties to the lowest id); otherwise sample softmax(logits / T).
    pub temperature: f64,
    /// Sample among the k largest logits only (ties to the lower id); None = all.
    pub top_k: Option<usize>,
    /// Keys the sampling uniforms (and the quantizers' random streams).
    pub seed: u64,
    /// Generation ends after any of these ids; the stop id is included in the output.
    pub stop: Vec<u32>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            max_new_tokens: 64,
            temperature: 0.0,
            top_k: None,
            seed: 0,
            stop: Vec::new(),
        }
    }
}

/// Philox stream of the sampling uniforms (`"smpl"`).
const SAMPLE_STREAM: u32 = 0x736d_706c;
/// Index under the seed of the key of generation's forward calls.
const GENERATE_KEY: u64 = 0x67656e;

/// The uniform in [0, 1) that draws the token of step `step` (the `step`-th new token) under
/// `seed`: Philox word (seed, stream "smpl", step), 24 bits.
pub fn sample_uniform(seed: u64, step: u64) -> f64 {
    f64::from(philox::uniform(seed, SAMPLE_STREAM, step))
}

/// The id with the largest logit; ties (and an all-NaN row) go to the lowest id.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] || (logits[best].is_nan() && !l.is_nan()) {
            best = i;
        }
    }
    best as u32
}

/// Checks temperature and top-k.
fn check_sampling(temperature: f64, top_k: Option<usize>) -> Result<(), String> {
    if !(temperature.is_finite() && temperature >= 0.0) {
        return Err(format!(
            "temperature must be finite and >= 0, got {temperature}"
        ));
    }
    if top_k == Some(0) {
        return Err("top_k must be at least 1".into());
    }
    Ok(())
}

/// The token drawn from `logits` with the uniform `u` in [0, 1): temperature 0 is
/// [`argmax`]; otherwise the ids are ordered by logit (descending, ties to the lower id), the
/// first `top_k` kept, p_i = softmax(logit_i / T) over them in f64, and the token is the first
/// whose cumulative probability exceeds `u` (inverse CDF). `top_k = Some(1)` is greedy.
pub fn sample_with(logits: &[f32], temperature: f64, top_k: Option<usize>, u: f64) -> u32 {
    if temperature == 0.0 || logits.len() <= 1 {
        return argmax(logits);
    }
    let mut ids: Vec<usize> = (0..logits.len()).filter(|&i| !logits[i].is_nan()).collect();
    if ids.is_empty() {
        return 0;
    }
    ids.sort_by(|&i, &j| logits[j].total_cmp(&logits[i]).then(i.cmp(&j)));
    ids.truncate(top_k.unwrap_or(ids.len()).max(1));
    let top = f64::from(logits[ids[0]]);
    if !top.is_finite() {
        return ids[0] as u32;
    }
    let w: Vec<f64> = ids
        .iter()
        .map(|&i| ((f64::from(logits[i]) - top) / temperature).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let target = u * total;
    let mut acc = 0.0;
    for (&i, &wi) in ids.iter().zip(&w) {
        acc += wi;
        if target < acc {
            return i as u32;
        }
    }
    // Rounding left `target` at the very top: the last id with weight.
    let last = w.iter().rposition(|&x| x > 0.0).unwrap_or(0);
    ids[last] as u32
}

/// The token of step `step` under `seed`: [`sample_with`] with [`sample_uniform`]`(seed, step)`.
pub fn sample(logits: &[f32], temperature: f64, top_k: Option<usize>, seed: u64, step: u64) -> u32 {
    sample_with(logits, temperature, top_k, sample_uniform(seed, step))
}

/// The last position's logits of `[1, n, v]` on the host.
fn last_logits<B: Backend>(logits: Tensor<B, 3>) -> Vec<f32> {
    let [_, n, v] = logits.dims();
    logits
        .narrow(1, n - 1, 1)
        .reshape([v])
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 logits")
}

/// New tokens continuing `prompt` (batch 1): the prompt is prefilled in one cached forward,
/// then each chosen token is fed back alone. Token `s` (from 0) is [`sample`]`(logits,
/// temperature, top_k, seed, s)`. Ends after `max_new_tokens`, after a `stop` id (included), or
/// when the context (`arch.seq_len` positions) is full: at most `seq_len − prompt.len() + 1`
/// new tokens. An empty prompt, a prompt longer than the context, an id outside the vocabulary,
/// a negative temperature or `top_k = 0` are errors. The forward calls run in evaluation mode
/// (step 0) with a key derived from `seed`.
pub fn generate<B: LpBackend>(
    model: &Llama,
    p: &Params<B>,
    prompt: &[u32],
    opts: &GenerateOptions,
    device: &B::Device,
) -> Result<Vec<u32>, String> {
    let ctx_len = model.arch.seq_len;
    if prompt.is_empty() {
        return Err("the prompt has no tokens".into());
    }
    if prompt.len() > ctx_len {
        return Err(format!(
            "the prompt has {} tokens, more than the model's context of {ctx_len}",
            prompt.len()
        ));
    }
    if let Some(&bad) = prompt
        .iter()
        .find(|&&t| t as usize >= model.arch.vocab_size)
    {
        return Err(format!(
            "token id {bad} is outside the vocabulary ({})",
            model.arch.vocab_size
        ));
    }
    check_sampling(opts.temperature, opts.top_k)?;
    let rope = model.rope::<B>(device);
    let mut cache = KvCache::new();
    let mut ctx = ForwardCtx::new(keys::child(opts.seed, GENERATE_KEY), 0, false);
    let ids = |t: &[u32]| {
        let v: Vec<i32> = t.iter().map(|&x| x as i32).collect();
        Tensor::<B, 2, Int>::from_data(TensorData::new(v, [1, t.len()]), device)
    };
    let mut out = Vec::new();
    if opts.max_new_tokens == 0 {
        return Ok(out);
    }
    let mut logits = model.forward_cached(p, &rope, ids(prompt), &mut cache, &mut ctx)?;
    for step in 0..opts.max_new_tokens as u64 {
        let row = last_logits(logits);
        let tok = sample(&row, opts.temperature, opts.top_k, opts.seed, step);
        out.push(tok);
        let done = out.len() == opts.max_new_tokens || cache.len() >= ctx_len;
        if opts.stop.contains(&tok) || done {
            break;
        }
        logits = model.forward_cached(p, &rope, ids(&[tok]), &mut cache, &mut ctx)?;
    }
    Ok(out)
}
