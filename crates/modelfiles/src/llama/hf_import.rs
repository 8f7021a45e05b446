//! HF checkpoint directory (config.json + model.safetensors or a sharded index) ->
//! [`LlamaModel`].

use super::error::ModelFileError;
use super::hf_config::parse_config_json;
use super::model::{HostTensors, LlamaModel};
use super::safetensors_io::read_safetensors;
use super::tokenizer_hf::tokenizer_parts_from_hf;
use serde_json::Value as Json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

fn read_text(path: &Path) -> Result<String, ModelFileError> {
    std::fs::read_to_string(path).map_err(|e| ModelFileError::io("read", path, e))
}

fn read_optional_text(path: &Path) -> Result<Option<String>, ModelFileError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ModelFileError::io("read", path, e)),
    }
}

/// Buffers that old checkpoints store beside the weights and that carry no information.
fn is_ignored(name: &str) -> bool {
    name.ends_with(".self_attn.rotary_emb.inv_freq")
}

/// Reads an HF Llama directory: `config.json`, the weights from `model.safetensors` or from the
/// shards that `model.safetensors.index.json` lists (F32, BF16 or F16, converted to f32), and
/// `tokenizer.json` kept as text (and, when it is a byte-level BPE, also as
/// [`super::TokenizerParts`] with `tokenizer_config.json`'s special tokens). Errors name the file
/// and the key or tensor. A tied model's `lm_head.weight`, if stored, must equal the embedding.
pub fn import_hf_dir(dir: &Path) -> Result<LlamaModel, ModelFileError> {
    let config_path = dir.join("config.json");
    let config = parse_config_json(&read_text(&config_path)?, &config_path)?;
    let (mut tensors, origin) = read_weights(dir)?;
    if config.tie_embeddings
        && let Some((_, lm)) = tensors.remove("lm_head.weight")
    {
        let same = tensors
            .get("model.embed_tokens.weight")
            .is_some_and(|(_, e)| {
                e.len() == lm.len() && e.iter().zip(&lm).all(|(a, b)| a.to_bits() == b.to_bits())
            });
        if !same {
            let file = origin
                .get("lm_head.weight")
                .cloned()
                .unwrap_or_else(|| dir.to_path_buf());
            return Err(ModelFileError::new(
                    "config.json has tie_word_embeddings = true but lm_head.weight differs from model.embed_tokens.weight",
                )
                .with_file(&file)
                .with_tensor("lm_head.weight"));
        }
    }
    let tokenizer_json = read_optional_text(&dir.join("tokenizer.json"))?;
    let tokenizer = match &tokenizer_json {
        Some(text) => {
            let cfg_path = dir.join("tokenizer_config.json");
            let cfg = read_optional_text(&cfg_path)?;
            tokenizer_parts_from_hf(text, cfg.as_deref())
        }
        None => None,
    };
    let model = LlamaModel {
        config,
        tensors,
        tokenizer,
        tokenizer_json,
        grids: Default::default(),
        biases: Default::default(),
    };
    model.validate().map_err(|e| {
        let file = e
            .tensor
            .as_ref()
            .and_then(|t| origin.get(t))
            .cloned()
            .unwrap_or_else(|| dir.to_path_buf());
        e.with_file(&file)
    })?;
    Ok(model)
}

type Origins = HashMap<String, PathBuf>;

fn read_weights(dir: &Path) -> Result<(HostTensors, Origins), ModelFileError> {
    let single = dir.join("model.safetensors");
    let index_path = dir.join("model.safetensors.index.json");
    let mut tensors = HostTensors::new();
    let mut origin = Origins::new();
    if single.exists() {
        let bytes = std::fs::read(&single).map_err(|e| ModelFileError::io("read", &single, e))?;
        for (name, shape, values) in read_safetensors(&bytes, &single, &|n| !is_ignored(n))? {
            origin.insert(name.clone(), single.clone());
            tensors.insert(name, (shape, values));
        }
        return Ok((tensors, origin));
    }
    if !index_path.exists() {
        return Err(
            ModelFileError::new("no model.safetensors or model.safetensors.index.json")
                .with_file(dir),
        );
    }
    let index: Json = serde_json::from_str(&read_text(&index_path)?)
        .map_err(|e| ModelFileError::new(format!("invalid JSON: {e}")).with_file(&index_path))?;
    let map = index
        .get("weight_map")
        .and_then(Json::as_object)
        .ok_or_else(|| {
            ModelFileError::new("missing or not an object")
                .with_file(&index_path)
                .with_key("weight_map")
        })?;
    // shard file -> tensor names it must hold
    let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, file) in map {
        let file = file.as_str().filter(|f| {
            !f.is_empty() && !f.contains('/') && !f.contains('\\') && *f != "." && *f != ".."
        });
        let Some(file) = file else {
            return Err(
                ModelFileError::new("shard must be a plain file name in the directory")
                    .with_file(&index_path)
                    .with_key(&format!("weight_map.{name}")),
            );
        };
        shards
            .entry(file.to_string())
            .or_default()
            .push(name.clone());
    }
    for (file, names) in shards {
        let path = dir.join(&file);
        let bytes = std::fs::read(&path).map_err(|e| ModelFileError::io("read", &path, e))?;
        let listed: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let got = read_safetensors(&bytes, &path, &|n| !is_ignored(n))?;
        for (name, shape, values) in got {
            if !listed.contains(name.as_str()) {
                return Err(ModelFileError::new(
                    "tensor not listed for this shard in model.safetensors.index.json",
                )
                .with_file(&path)
                .with_tensor(&name));
            }
            origin.insert(name.clone(), path.clone());
            tensors.insert(name, (shape, values));
        }
        for name in names.iter().filter(|n| !is_ignored(n)) {
            if !tensors.contains_key(name) {
                return Err(ModelFileError::new(
                    "listed in model.safetensors.index.json but absent from the shard",
                )
                .with_file(&path)
                .with_tensor(name));
            }
        }
    }
    Ok((tensors, origin))
}
