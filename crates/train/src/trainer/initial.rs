//! The `[init]` model: architecture, weights and tokenizer from a GGUF file, an HF directory,
//! another Nibble run or a named pretrained model.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_data::{BpeSpec, BpeTokenizer, PreTokenizer, TokenType, Tokenizer};
use nibble_model::{Arch, LpBackend, ModelConfig, Params};
use nibble_modelfiles::llama::{
    HostTensors, LlamaConfig, LlamaModel, TokenizerParts, import_gguf, import_hf_dir,
};
use sha2::{Digest, Sha256};

use super::error::TrainError;
use crate::checkpoint;
use crate::recipe::{KeyError, load_recipe};
use crate::sections::{InitSource, Recipe};

/// What `[init]` brings.
pub struct Initial {
    pub arch: Arch,
    pub weights: HostTensors,
    pub tokenizer: Arc<dyn Tokenizer>,
    /// What an export needs to hand the model back to its ecosystem: the original context
    /// length, special ids and tokenizer files.
    pub origin: Option<Origin>,
}

/// The model file a run started from.
#[derive(Debug, Clone)]
pub struct Origin {
    pub max_position_embeddings: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub tokenizer: Option<TokenizerParts>,
    pub tokenizer_json: Option<String>,
}

impl Initial {
    /// Loads the source of `recipe.init`, if any. The model's architecture replaces `[model]`
    /// (whose `seq_len` alone may be set: the training window).
    pub fn load(recipe: &Recipe) -> Result<Option<Initial>, TrainError> {
        let Some(source) = recipe.init.source() else {
            return Ok(None);
        };
        check_model_section(&recipe.model)?;
        let err = |key: &str, m: String| TrainError::Config(KeyError::new(key, m));
        let model = match &source {
            InitSource::Gguf(p) => {
                import_gguf(Path::new(p)).map_err(|e| err("init.gguf", e.to_string()))?
            }
            InitSource::Hf(p) => {
                import_hf_dir(Path::new(p)).map_err(|e| err("init.hf", e.to_string()))?
            }
            InitSource::Pretrained(_) => {
                let path = nibble_data::smollm2_gguf(&recipe.data.cache_dir)?;
                import_gguf(&path).map_err(|e| err("init.pretrained", e.to_string()))?
            }
            InitSource::Run(dir) => return from_run(Path::new(dir), recipe).map(Some),
        };
        let tokenizer = tokenizer_of(&model).map_err(|m| err("init", m))?;
        let seq_len = recipe
            .model
            .seq_len
            .unwrap_or(model.config.max_position_embeddings.min(2048));
        let c = &model.config;
        let origin = Origin {
            max_position_embeddings: c.max_position_embeddings,
            bos_token_id: c.bos_token_id,
            eos_token_id: c.eos_token_id,
            tokenizer: model.tokenizer.clone(),
            tokenizer_json: model.tokenizer_json.clone(),
        };
        Ok(Some(Initial {
            arch: arch_of(c, seq_len),
            weights: model.tensors,
            tokenizer,
            origin: Some(origin),
        }))
    }

    /// The weights as model parameters (norm vectors as `[1, d]`).
    pub fn params<B: LpBackend>(&self, device: &B::Device) -> Params<B> {
        let tensors = self
            .weights
            .iter()
            .map(|(name, (shape, v))| {
                let dims = match shape.as_slice() {
                    [d] => [1, *d],
                    [r, c] => [*r, *c],
                    other => panic!("{name}: a {}-D weight", other.len()),
                };
                let t = Tensor::from_data(TensorData::new(v.clone(), dims), device);
                (name.clone(), t)
            })
            .collect();
        Params {
            tensors,
            buffers: BTreeMap::new(),
        }
    }
}

/// With `[init]`, the architecture is the model's: any `[model]` key but `seq_len` is an error.
fn check_model_section(m: &ModelConfig) -> Result<(), TrainError> {
    let fixed = ModelConfig {
        seq_len: None,
        ..m.clone()
    };
    if fixed != ModelConfig::default() {
        return Err(TrainError::Config(KeyError::new(
            "model",
            "the [init] model sets the architecture; only `model.seq_len` may be set",
        )));
    }
    Ok(())
}

fn arch_of(c: &LlamaConfig, seq_len: usize) -> Arch {
    Arch {
        vocab_size: c.vocab_size,
        d_model: c.hidden_size,
        n_layers: c.num_layers,
        n_heads: c.num_heads,
        n_kv_heads: c.num_kv_heads,
        d_ff: c.intermediate_size,
        rope_theta: c.rope_theta,
        tie_embeddings: c.tie_embeddings,
        norm_eps: c.rms_norm_eps,
        seq_len,
        init_std: 0.02,
    }
}

/// The model's tokenizer: its HF `tokenizer.json`, else the GGUF vocabulary and merges. The
/// name (which keys the token cache) is a hash of the vocabulary and merges.
fn tokenizer_of(m: &LlamaModel) -> Result<Arc<dyn Tokenizer>, String> {
    let name = |parts: &[&str]| -> &'static str {
        let mut h = Sha256::new();
        parts.iter().for_each(|p| {
            h.update(p.as_bytes());
            h.update([0]);
        });
        let hex: String = h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Box::leak(format!("bpe-{hex}").into_boxed_str())
    };
    if let Some(json) = &m.tokenizer_json {
        let t =
            BpeTokenizer::from_tokenizer_json(name(&[json]), json).map_err(|e| e.to_string())?;
        return Ok(Arc::new(t));
    }
    let p: &TokenizerParts = m
        .tokenizer
        .as_ref()
        .ok_or("the model file has no tokenizer")?;
    if p.model != "gpt2" {
        return Err(format!(
            "tokenizer model `{}` is not supported (byte-level BPE `gpt2` only)",
            p.model
        ));
    }
    let pre_name = p.pre.as_deref().unwrap_or("gpt-2");
    let pre = PreTokenizer::from_gguf_pre(pre_name)
        .ok_or_else(|| format!("pre-tokenizer `{pre_name}` is not supported"))?;
    let mut all: Vec<&str> = p.tokens.iter().map(String::as_str).collect();
    all.extend(p.merges.iter().map(String::as_str));
    let mut spec = BpeSpec::new(name(&all), p.tokens.clone(), p.merges.clone(), pre);
    spec.token_types = p
        .token_types
        .iter()
        .map(|&t| TokenType::from_gguf(t))
        .collect();
    (spec.bos, spec.eos, spec.unk, spec.pad) = (p.bos, p.eos, p.unk, p.pad);
    (spec.add_bos, spec.add_eos) = (p.add_bos, p.add_eos);
    Ok(Arc::new(
        BpeTokenizer::new(spec).map_err(|e| e.to_string())?,
    ))
}

/// Another Nibble run: its recipe's model and tokenizer, its newest checkpoint's weights.
fn from_run(dir: &Path, recipe: &Recipe) -> Result<Initial, TrainError> {
    let err = |m: String| TrainError::Config(KeyError::new("init.run", m));
    let ck = checkpoint::latest(dir)
        .ok_or_else(|| err(format!("{}: no checkpoint found", dir.display())))?;
    let theirs = load_recipe::<Recipe>(&dir.join("recipe.toml"), &[], Recipe::validate)
        .map_err(|e| err(e.to_string()))?
        .value;
    let mut parts = super::Parts::<Flex>::build(&theirs, true, &Default::default())?;
    checkpoint::load(&ck, &mut parts.params, &mut parts.opt, &Default::default())?;
    let names: Vec<String> = nibble_model::params::layout(&parts.arch)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    let weights = names
        .into_iter()
        .map(|n| {
            let (v, shape) = nibble_ops::host::to_host(parts.params.tensors[&n].clone());
            (n, (shape.to_vec(), v))
        })
        .collect();
    let mut arch = parts.arch.clone();
    arch.seq_len = recipe.model.seq_len.unwrap_or(arch.seq_len);
    Ok(Initial {
        arch,
        weights,
        tokenizer: parts.tokenizer.clone(),
        origin: parts.origin.clone(),
    })
}
