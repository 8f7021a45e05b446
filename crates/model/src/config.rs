//! The recipe's `[model]` section: a preset plus explicit overrides.

use serde::{Deserialize, Serialize};

use crate::error::KeyError;

/// Architecture knobs of a Llama-style decoder. Unset fields come from `preset`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// `tiny` (~1M non-embedding params), `small` (~10M) or `smollm2-135m`. Default `tiny`.
    pub preset: Option<String>,
    /// Vocabulary size; defaults to the tokenizer's.
    pub vocab_size: Option<usize>,
    pub d_model: Option<usize>,
    pub n_layers: Option<usize>,
    pub n_heads: Option<usize>,
    /// Key/value heads (grouped-query attention); must divide `n_heads`.
    pub n_kv_heads: Option<usize>,
    /// SwiGLU hidden size.
    pub d_ff: Option<usize>,
    /// RoPE base θ.
    pub rope_theta: Option<f64>,
    /// Share the token embedding with lm_head.
    pub tie_embeddings: Option<bool>,
    /// RMSNorm ε.
    pub norm_eps: Option<f64>,
    /// Context length used for training windows.
    pub seq_len: Option<usize>,
    /// Std of the normal init (residual projections get std / √(2·n_layers)).
    pub init_std: Option<f64>,
}

/// A fully resolved architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Arch {
    pub vocab_size: usize,
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub n_kv_heads: usize,
    pub d_ff: usize,
    pub rope_theta: f64,
    pub tie_embeddings: bool,
    pub norm_eps: f64,
    pub seq_len: usize,
    pub init_std: f64,
}

impl Arch {
    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_heads
    }

    /// Parameters outside the embedding and lm_head.
    pub fn non_embedding_params(&self) -> usize {
        let hd = self.head_dim();
        let attn = 2 * self.d_model * self.d_model + 2 * self.d_model * self.n_kv_heads * hd;
        let mlp = 3 * self.d_model * self.d_ff;
        self.n_layers * (attn + mlp + 2 * self.d_model) + self.d_model
    }

    /// All parameters (a tied lm_head counts once).
    pub fn total_params(&self) -> usize {
        let emb = self.vocab_size * self.d_model;
        self.non_embedding_params() + emb + if self.tie_embeddings { 0 } else { emb }
    }
}

fn preset(name: &str) -> Option<Arch> {
    let base = Arch {
        vocab_size: 256,
        d_model: 128,
        n_layers: 4,
        n_heads: 4,
        n_kv_heads: 2,
        d_ff: 512,
        rope_theta: 10_000.0,
        tie_embeddings: false,
        norm_eps: 1e-5,
        seq_len: 128,
        init_std: 0.02,
    };
    Some(match name {
        "tiny" => base,
        "small" => Arch {
            d_model: 256,
            n_layers: 12,
            n_heads: 8,
            n_kv_heads: 4,
            d_ff: 768,
            seq_len: 256,
            ..base
        },
        "smollm2-135m" => Arch {
            vocab_size: 49_152,
            d_model: 576,
            n_layers: 30,
            n_heads: 9,
            n_kv_heads: 3,
            d_ff: 1536,
            rope_theta: 100_000.0,
            tie_embeddings: true,
            seq_len: 2048,
            ..base
        },
        _ => return None,
    })
}

/// Names of the built-in presets.
pub const PRESETS: [&str; 3] = ["tiny", "small", "smollm2-135m"];

impl ModelConfig {
    /// Resolve the preset and overrides. `tokenizer_vocab` is used when `vocab_size` is unset.
    pub fn resolve(&self, tokenizer_vocab: Option<usize>) -> Result<Arch, KeyError> {
        let name = self.preset.as_deref().unwrap_or("tiny");
        let mut a = preset(name).ok_or_else(|| {
            KeyError::new(
                "preset",
                format!("unknown preset `{name}`; expected one of {PRESETS:?}"),
            )
        })?;
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { a.$f = v; } )* };
        }
        set!(
            d_model,
            n_layers,
            n_heads,
            n_kv_heads,
            d_ff,
            rope_theta,
            tie_embeddings,
            norm_eps,
            seq_len,
            init_std
        );
        a.vocab_size = self.vocab_size.or(tokenizer_vocab).unwrap_or(a.vocab_size);
        validate_arch(&a)?;
        Ok(a)
    }

    /// Checks that do not need the tokenizer.
    pub fn validate(&self) -> Result<(), KeyError> {
        self.resolve(None).map(|_| ())
    }
}

fn validate_arch(a: &Arch) -> Result<(), KeyError> {
    let pos = |k: &str, v: usize| {
        if v == 0 {
            Err(KeyError::new(k, "must be > 0"))
        } else {
            Ok(())
        }
    };
    pos("vocab_size", a.vocab_size)?;
    pos("d_model", a.d_model)?;
    pos("n_layers", a.n_layers)?;
    pos("n_heads", a.n_heads)?;
    pos("n_kv_heads", a.n_kv_heads)?;
    pos("d_ff", a.d_ff)?;
    pos("seq_len", a.seq_len)?;
    if !a.d_model.is_multiple_of(a.n_heads) {
        return Err(KeyError::new(
            "n_heads",
            format!("must divide d_model ({} % {} != 0)", a.d_model, a.n_heads),
        ));
    }
    if !a.n_heads.is_multiple_of(a.n_kv_heads) {
        return Err(KeyError::new(
            "n_kv_heads",
            format!("must divide n_heads ({})", a.n_heads),
        ));
    }
    if !a.head_dim().is_multiple_of(2) {
        return Err(KeyError::new(
            "n_heads",
            "head dimension d_model / n_heads must be even for RoPE",
        ));
    }
    if !(a.rope_theta > 0.0 && a.rope_theta.is_finite()) {
        return Err(KeyError::new("rope_theta", "must be finite and > 0"));
    }
    nibble_config::f32_values([("norm_eps", a.norm_eps), ("init_std", a.init_std)])?;
    if !(a.norm_eps > 0.0 && a.norm_eps < 1.0) {
        return Err(KeyError::new("norm_eps", "must be in (0, 1)"));
    }
    if !(a.init_std > 0.0 && a.init_std.is_finite()) {
        return Err(KeyError::new("init_std", "must be finite and > 0"));
    }
    Ok(())
}
