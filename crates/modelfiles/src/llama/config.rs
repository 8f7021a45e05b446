//! The Llama hyper-parameters and the tensor set (HF names and shapes) they imply.

use super::error::ModelFileError;

/// The most layers a config may claim.
pub const MAX_LAYERS: usize = 65_536;

/// Llama hyper-parameters, as in HF `LlamaConfig` (head_dim = hidden_size / num_heads).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub intermediate_size: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    /// The output projection reuses the token embedding (no `lm_head.weight`).
    pub tie_embeddings: bool,
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
}

impl LlamaConfig {
    /// Per-head dimension.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads.max(1)
    }

    /// Checks the sizes are usable: all positive, heads divide the hidden size, KV heads divide
    /// the heads, an even head_dim (RoPE pairs), finite positive theta and eps.
    pub fn validate(&self) -> Result<(), ModelFileError> {
        let bad = |m: String| Err(ModelFileError::new(format!("invalid Llama config: {m}")));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("num_kv_heads", self.num_kv_heads),
            ("intermediate_size", self.intermediate_size),
        ] {
            if v == 0 {
                return bad(format!("{name} is 0"));
            }
        }
        // Far beyond any real model; bounds what a hostile header can make us allocate.
        if self.num_layers > MAX_LAYERS {
            return bad(format!(
                "num_layers {} exceeds {MAX_LAYERS}",
                self.num_layers
            ));
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_heads {}",
                self.hidden_size, self.num_heads
            ));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return bad(format!(
                "num_heads {} is not a multiple of num_kv_heads {}",
                self.num_heads, self.num_kv_heads
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return bad(format!("head_dim {} is odd", self.head_dim()));
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return bad(format!("rope_theta {} is not positive", self.rope_theta));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps >= 0.0) {
            return bad(format!("rms_norm_eps {} is not >= 0", self.rms_norm_eps));
        }
        Ok(())
    }

    /// Every tensor of the model: HF name and row-major shape, in a fixed order (embedding,
    /// layers, final norm, lm_head unless tied).
    pub fn expected_tensors(&self) -> Vec<(String, Vec<usize>)> {
        let (d, f, v) = (self.hidden_size, self.intermediate_size, self.vocab_size);
        let q = self.num_heads * self.head_dim();
        let kv = self.num_kv_heads * self.head_dim();
        let mut out = vec![("model.embed_tokens.weight".to_string(), vec![v, d])];
        for i in 0..self.num_layers {
            let p = format!("model.layers.{i}");
            out.extend([
                (format!("{p}.input_layernorm.weight"), vec![d]),
                (format!("{p}.self_attn.q_proj.weight"), vec![q, d]),
                (format!("{p}.self_attn.k_proj.weight"), vec![kv, d]),
                (format!("{p}.self_attn.v_proj.weight"), vec![kv, d]),
                (format!("{p}.self_attn.o_proj.weight"), vec![d, q]),
                (format!("{p}.post_attention_layernorm.weight"), vec![d]),
                (format!("{p}.mlp.gate_proj.weight"), vec![f, d]),
                (format!("{p}.mlp.up_proj.weight"), vec![f, d]),
                (format!("{p}.mlp.down_proj.weight"), vec![d, f]),
            ]);
        }
        out.push(("model.norm.weight".to_string(), vec![d]));
        if !self.tie_embeddings {
            out.push(("lm_head.weight".to_string(), vec![v, d]));
        }
        out
    }
}
