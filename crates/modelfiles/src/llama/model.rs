//! The host-side model the import functions return and the export functions take, and the
//! checks every export runs before writing anything.

use super::config::LlamaConfig;
use super::error::ModelFileError;
use super::grid::GridTensor;
use super::tokenizer::TokenizerParts;
use std::collections::BTreeMap;

/// HF-named host tensors: name -> (row-major shape, f32 values). Names and shapes exactly as HF
/// Llama (see [`LlamaConfig::expected_tensors`]); `lm_head.weight` is absent when tied.
pub type HostTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// A Llama model held in host memory.
#[derive(Debug, Clone)]
pub struct LlamaModel {
    pub config: LlamaConfig,
    pub tensors: HostTensors,
    pub tokenizer: Option<TokenizerParts>,
    /// The HF `tokenizer.json` text, when imported from an HF directory.
    pub tokenizer_json: Option<String>,
    /// Projections trained on an integer or ternary grid (HF weight name → grid): quantized
    /// exports write them with their trained scales, or refuse them.
    pub grids: BTreeMap<String, GridTensor>,
    /// Output biases of projections (HF name `<module>.bias` → `[out]` values): Tequila's
    /// deadzone bias. GGUF writes them (llama.cpp adds a Llama projection's bias when present);
    /// the HF and compressed-tensors writers refuse them.
    pub biases: BTreeMap<String, Vec<f32>>,
}

/// Formats a shape as `[a, b]`.
pub(crate) fn fmt_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

/// Whether `name` is a q or k projection (whose rows are RoPE-permuted in GGUF); returns the
/// number of heads its rows split into.
pub(crate) fn rope_heads(config: &LlamaConfig, hf_name: &str) -> Option<usize> {
    if hf_name.ends_with(".self_attn.q_proj.weight") {
        Some(config.num_heads)
    } else if hf_name.ends_with(".self_attn.k_proj.weight") {
        Some(config.num_kv_heads)
    } else {
        None
    }
}

impl LlamaModel {
    /// Refuses output biases, for writers whose Llama has none.
    pub(crate) fn no_biases(&self, format: &str) -> Result<(), ModelFileError> {
        match self.biases.keys().next() {
            Some(name) => Err(ModelFileError::new(format!(
                "an output bias (Tequila's deadzone bias), which {format} Llama files here have \
                 no tensor for: export to GGUF"
            ))
            .with_tensor(name)),
            None => Ok(()),
        }
    }

    /// Checks the config, that the tensor set is exactly the one the config implies (names and
    /// shapes), that each value count matches its shape and that every value is finite. Errors
    /// name the tensor.
    pub fn validate(&self) -> Result<(), ModelFileError> {
        self.config.validate()?;
        let expected = self.config.expected_tensors();
        for (name, shape) in &expected {
            let Some((got, values)) = self.tensors.get(name) else {
                return Err(ModelFileError::new(format!(
                    "missing tensor (expected shape {})",
                    fmt_shape(shape)
                ))
                .with_tensor(name));
            };
            if got != shape {
                return Err(ModelFileError::new(format!(
                    "shape {}, expected {}",
                    fmt_shape(got),
                    fmt_shape(shape)
                ))
                .with_tensor(name));
            }
            let n: usize = shape.iter().product();
            if values.len() != n {
                return Err(ModelFileError::new(format!(
                    "{} values for shape {} ({n} values)",
                    values.len(),
                    fmt_shape(shape)
                ))
                .with_tensor(name));
            }
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(ModelFileError::new(format!(
                    "non-finite value {} at flat index {i}",
                    values[i]
                ))
                .with_tensor(name));
            }
        }
        if self.tensors.len() != expected.len() {
            let known: std::collections::HashSet<&str> =
                expected.iter().map(|(n, _)| n.as_str()).collect();
            if let Some(extra) = self.tensors.keys().find(|n| !known.contains(n.as_str())) {
                let why = if extra == "lm_head.weight" {
                    "unexpected tensor (the config has tied embeddings)"
                } else {
                    "unexpected tensor (not part of a Llama model with this config)"
                };
                return Err(ModelFileError::new(why).with_tensor(extra));
            }
        }
        Ok(())
    }
}
