//! HF `config.json` (LlamaForCausalLM) <-> [`LlamaConfig`], and `generation_config.json`.

use super::config::LlamaConfig;
use super::error::ModelFileError;
use serde_json::{Map, Value as Json, json};
use std::path::Path;

fn field_err(path: &Path, key: &str, msg: String) -> ModelFileError {
    ModelFileError::new(msg).with_file(path).with_key(key)
}

fn get_usize(
    obj: &Map<String, Json>,
    path: &Path,
    key: &str,
    default: Option<usize>,
) -> Result<usize, ModelFileError> {
    match obj.get(key) {
        None | Some(Json::Null) => default.ok_or_else(|| field_err(path, key, "missing".into())),
        Some(v) => v
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .filter(|&v| v <= u32::MAX as usize)
            .ok_or_else(|| {
                field_err(
                    path,
                    key,
                    format!("{v} is not a non-negative integer below 2^32"),
                )
            }),
    }
}

fn get_f64(
    obj: &Map<String, Json>,
    path: &Path,
    key: &str,
    default: f64,
) -> Result<f64, ModelFileError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(v) => v
            .as_f64()
            .filter(|v| v.is_finite())
            .ok_or_else(|| field_err(path, key, format!("{v} is not a finite number"))),
    }
}

fn get_bool(
    obj: &Map<String, Json>,
    path: &Path,
    key: &str,
    default: bool,
) -> Result<bool, ModelFileError> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(v) => v
            .as_bool()
            .ok_or_else(|| field_err(path, key, format!("{v} is not a boolean"))),
    }
}

/// A token id, or the first of a list (Llama 3 lists several eos ids).
fn get_token_id(
    obj: &Map<String, Json>,
    path: &Path,
    key: &str,
) -> Result<Option<u32>, ModelFileError> {
    let v = match obj.get(key) {
        None | Some(Json::Null) => return Ok(None),
        Some(Json::Array(a)) => match a.first() {
            None => return Ok(None),
            Some(v) => v,
        },
        Some(v) => v,
    };
    v.as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .map(Some)
        .ok_or_else(|| field_err(path, key, format!("{v} is not a token id")))
}

/// Parses `config.json` text. Errors name the file and key: an `architectures` other than
/// `["LlamaForCausalLM"]`, a `model_type` other than `llama`, RoPE scaling, biases, a `head_dim`
/// other than hidden/heads, missing or mistyped sizes.
pub fn parse_config_json(text: &str, path: &Path) -> Result<LlamaConfig, ModelFileError> {
    let json: Json = serde_json::from_str(text)
        .map_err(|e| ModelFileError::new(format!("invalid JSON: {e}")).with_file(path))?;
    let obj = json
        .as_object()
        .ok_or_else(|| ModelFileError::new("not a JSON object").with_file(path))?;
    match obj.get("model_type") {
        Some(Json::String(s)) if s == "llama" => {}
        Some(v) => {
            return Err(field_err(
                path,
                "model_type",
                format!("{v} is not supported (only \"llama\")"),
            ));
        }
        None => return Err(field_err(path, "model_type", "missing".into())),
    }
    if let Some(a) = obj.get("architectures") {
        let ok = a
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|x| x == "LlamaForCausalLM"));
        if !ok {
            return Err(field_err(
                path,
                "architectures",
                format!("{a} is not supported (only [\"LlamaForCausalLM\"])"),
            ));
        }
    }
    for key in ["attention_bias", "mlp_bias"] {
        if get_bool(obj, path, key, false)? {
            return Err(field_err(path, key, "biases are not supported".into()));
        }
    }
    if let Some(v) = obj.get("rope_scaling").filter(|v| !v.is_null()) {
        return Err(field_err(
            path,
            "rope_scaling",
            format!("{v}: RoPE scaling is not supported"),
        ));
    }
    let mut rope_theta = get_f64(obj, path, "rope_theta", 10000.0)?;
    if let Some(p) = obj.get("rope_parameters").filter(|v| !v.is_null()) {
        let p = p
            .as_object()
            .ok_or_else(|| field_err(path, "rope_parameters", "not an object".into()))?;
        match p.get("rope_type") {
            None | Some(Json::Null) => {}
            Some(t) if t == "default" => {}
            Some(t) => {
                return Err(field_err(
                    path,
                    "rope_parameters.rope_type",
                    format!("{t}: RoPE scaling is not supported"),
                ));
            }
        }
        if p.contains_key("rope_theta") {
            rope_theta = get_f64(p, path, "rope_theta", rope_theta).map_err(|mut e| {
                e.key = Some("rope_parameters.rope_theta".into());
                e
            })?;
        }
    }
    let num_heads = get_usize(obj, path, "num_attention_heads", None)?;
    let config = LlamaConfig {
        vocab_size: get_usize(obj, path, "vocab_size", None)?,
        hidden_size: get_usize(obj, path, "hidden_size", None)?,
        num_layers: get_usize(obj, path, "num_hidden_layers", None)?,
        num_heads,
        num_kv_heads: get_usize(obj, path, "num_key_value_heads", Some(num_heads))?,
        intermediate_size: get_usize(obj, path, "intermediate_size", None)?,
        rope_theta,
        rms_norm_eps: get_f64(obj, path, "rms_norm_eps", 1e-6)?,
        tie_embeddings: get_bool(obj, path, "tie_word_embeddings", false)?,
        max_position_embeddings: get_usize(obj, path, "max_position_embeddings", Some(2048))?,
        bos_token_id: get_token_id(obj, path, "bos_token_id")?,
        eos_token_id: get_token_id(obj, path, "eos_token_id")?,
    };
    config.validate().map_err(|e| e.with_file(path))?;
    if let Some(hd) = obj.get("head_dim").filter(|v| !v.is_null())
        && hd.as_u64() != Some(config.head_dim() as u64)
    {
        return Err(field_err(
            path,
            "head_dim",
            format!(
                "{hd} differs from hidden_size / num_attention_heads = {}",
                config.head_dim()
            ),
        ));
    }
    if let Some(act) = obj.get("hidden_act")
        && act != "silu"
    {
        return Err(field_err(
            path,
            "hidden_act",
            format!("{act} is not supported (only \"silu\")"),
        ));
    }
    Ok(config)
}

/// `config.json` text for a config (legacy `rope_theta`/`torch_dtype` keys, which transformers
/// 4.x and 5.x, vLLM and llama.cpp's converter all read).
pub fn config_json(c: &LlamaConfig, torch_dtype: &str) -> String {
    let j = json!({
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": c.vocab_size,
        "hidden_size": c.hidden_size,
        "intermediate_size": c.intermediate_size,
        "num_hidden_layers": c.num_layers,
        "num_attention_heads": c.num_heads,
        "num_key_value_heads": c.num_kv_heads,
        "head_dim": c.head_dim(),
        "hidden_act": "silu",
        "max_position_embeddings": c.max_position_embeddings,
        "rms_norm_eps": c.rms_norm_eps,
        "rope_theta": c.rope_theta,
        "rope_scaling": null,
        "attention_bias": false,
        "attention_dropout": 0.0,
        "mlp_bias": false,
        "tie_word_embeddings": c.tie_embeddings,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
        "torch_dtype": torch_dtype,
        "initializer_range": 0.02,
        "use_cache": true,
    });
    serde_json::to_string_pretty(&j).expect("JSON of plain values")
}

/// `generation_config.json` text.
pub fn generation_config_json(c: &LlamaConfig) -> String {
    let j = json!({
        "_from_model_config": true,
        "bos_token_id": c.bos_token_id,
        "eos_token_id": c.eos_token_id,
    });
    serde_json::to_string_pretty(&j).expect("JSON of plain values")
}
