//! GGUF (llama.cpp, architecture `llama`) -> [`LlamaModel`].

use super::config::LlamaConfig;
use super::error::ModelFileError;
use super::model::{HostTensors, LlamaModel, fmt_shape, rope_heads};
use super::names::gguf_to_hf;
use super::rope_permute::gguf_to_hf_rows;
use super::tokenizer::TokenizerParts;
use crate::gguf::{GgufFile, Value};
use std::collections::HashMap;
use std::path::Path;

/// Reads a llama GGUF: hyper-parameters from `llama.*`, every tensor dequantized to f32 under its
/// HF name (q/k rows back in HF's rotate_half order), and the `tokenizer.ggml.*` tokenizer.
/// Errors name the file and the key or tensor: a non-llama architecture, a missing or mistyped
/// key, rope scaling (unsupported), a missing, unexpected or wrongly shaped tensor, a type this
/// crate cannot dequantize.
pub fn import_gguf(path: &Path) -> Result<LlamaModel, ModelFileError> {
    let f = GgufFile::open(path)?;
    let config = read_config(&f, path)?;
    let tokenizer = TokenizerParts::from_gguf(&f, path)?;
    let tensors = read_tensors(&f, &config, path)?;
    Ok(LlamaModel {
        config,
        tensors,
        tokenizer,
        tokenizer_json: None,
        grids: Default::default(),
        biases: Default::default(),
    })
}

fn key_error(path: &Path, key: &str, message: String) -> ModelFileError {
    ModelFileError::new(message).with_file(path).with_key(key)
}

fn uint_key(f: &GgufFile, path: &Path, key: &str) -> Result<usize, ModelFileError> {
    let v = f
        .get_uint(key)
        .map_err(|e| key_error(path, key, format!("GGUF: {}", e.kind)))?;
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= u32::MAX as usize)
        .ok_or_else(|| key_error(path, key, format!("value {v} is out of range")))
}

fn float_key(f: &GgufFile, path: &Path, key: &str) -> Result<f64, ModelFileError> {
    match f.metadata(key) {
        // The shortest decimal that reads back as this f32, so 1e-5 stored as f32 imports as
        // 1e-5 rather than 9.99999974e-6 (and re-exports to the same f32).
        Some(Value::F32(v)) => Ok(v.to_string().parse().unwrap_or(*v as f64)),
        Some(Value::F64(v)) => Ok(*v),
        Some(other) => Err(key_error(
            path,
            key,
            format!("has type {}, expected FLOAT32", other.type_description()),
        )),
        None => Err(key_error(path, key, "missing metadata key".into())),
    }
}

fn read_config(f: &GgufFile, path: &Path) -> Result<LlamaConfig, ModelFileError> {
    let arch_key = "general.architecture";
    let arch = f
        .get_str(arch_key)
        .map_err(|e| key_error(path, arch_key, format!("GGUF: {}", e.kind)))?;
    if arch != "llama" {
        return Err(key_error(
            path,
            arch_key,
            format!("architecture '{arch}' is not supported (only \"llama\")"),
        ));
    }
    if let Some(Value::String(kind)) = f.metadata("llama.rope.scaling.type")
        && kind != "none"
    {
        return Err(key_error(
            path,
            "llama.rope.scaling.type",
            format!("RoPE scaling '{kind}' is not supported"),
        ));
    }
    let num_heads = uint_key(f, path, "llama.attention.head_count")?;
    // llama.cpp's defaults: KV heads = heads, theta = 10000.
    let num_kv_heads = match f.metadata("llama.attention.head_count_kv") {
        Some(_) => uint_key(f, path, "llama.attention.head_count_kv")?,
        None => num_heads,
    };
    let rope_theta = match f.metadata("llama.rope.freq_base") {
        Some(_) => float_key(f, path, "llama.rope.freq_base")?,
        None => 10000.0,
    };
    let hidden_size = uint_key(f, path, "llama.embedding_length")?;
    let vocab_size = match f.metadata("llama.vocab_size") {
        Some(_) => uint_key(f, path, "llama.vocab_size")?,
        None => match f.tensor("token_embd.weight") {
            Some(t) if t.dims.len() == 2 => t.dims[1] as usize,
            _ => {
                return Err(key_error(
                    path,
                    "llama.vocab_size",
                    "missing metadata key (and no 2-D token_embd.weight to infer it from)".into(),
                ));
            }
        },
    };
    let bos_eos = |k: &str| {
        f.metadata(k)
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
    };
    let config = LlamaConfig {
        vocab_size,
        hidden_size,
        num_layers: uint_key(f, path, "llama.block_count")?,
        num_heads,
        num_kv_heads,
        intermediate_size: uint_key(f, path, "llama.feed_forward_length")?,
        rope_theta,
        rms_norm_eps: float_key(f, path, "llama.attention.layer_norm_rms_epsilon")?,
        tie_embeddings: f.tensor("output.weight").is_none(),
        max_position_embeddings: uint_key(f, path, "llama.context_length")?,
        bos_token_id: bos_eos("tokenizer.ggml.bos_token_id"),
        eos_token_id: bos_eos("tokenizer.ggml.eos_token_id"),
    };
    config.validate().map_err(|e| e.with_file(path))?;
    if f.metadata("llama.rope.dimension_count").is_some() {
        let n_rot = uint_key(f, path, "llama.rope.dimension_count")?;
        if n_rot != config.head_dim() {
            return Err(key_error(
                path,
                "llama.rope.dimension_count",
                format!(
                    "{n_rot} differs from head_dim {} (partial RoPE is not supported)",
                    config.head_dim()
                ),
            ));
        }
    }
    Ok(config)
}

fn read_tensors(
    f: &GgufFile,
    config: &LlamaConfig,
    path: &Path,
) -> Result<HostTensors, ModelFileError> {
    let n_expected = 2 + 9 * config.num_layers + usize::from(!config.tie_embeddings);
    if n_expected > f.tensors().len() + 1 {
        return Err(ModelFileError::new(format!(
            "llama.block_count {} needs {n_expected} tensors, but the file has {}",
            config.num_layers,
            f.tensors().len()
        ))
        .with_file(path)
        .with_key("llama.block_count"));
    }
    let expected: HashMap<String, Vec<usize>> = config.expected_tensors().into_iter().collect();
    let err = |gguf_name: &str, msg: String| {
        ModelFileError::new(msg)
            .with_file(path)
            .with_tensor(gguf_name)
    };
    // Check every name and shape before the (slow) dequantization.
    let mut plan = Vec::with_capacity(f.tensors().len());
    for t in f.tensors() {
        let hf = gguf_to_hf(&t.name)
            .filter(|hf| expected.contains_key(hf))
            .ok_or_else(|| {
                err(
                    &t.name,
                    "unexpected tensor (not part of a Llama model with this config)".into(),
                )
            })?;
        let want = &expected[&hf];
        let got = t.shape();
        if &got != want {
            return Err(err(
                &t.name,
                format!(
                    "shape {} (GGUF dims {:?}), expected {}",
                    fmt_shape(&got),
                    t.dims,
                    fmt_shape(want)
                ),
            ));
        }
        plan.push((t.name.clone(), hf));
    }
    if plan.len() != expected.len() {
        let present: std::collections::HashSet<&str> =
            plan.iter().map(|(_, hf)| hf.as_str()).collect();
        for (hf, shape) in config.expected_tensors() {
            if !present.contains(hf.as_str()) {
                let g = super::names::hf_to_gguf(&hf).unwrap_or(hf);
                return Err(err(
                    &g,
                    format!("missing tensor (expected shape {})", fmt_shape(&shape)),
                ));
            }
        }
    }
    let mut out = HostTensors::new();
    for (gguf_name, hf) in plan {
        let (shape, mut values) = f.tensor_f32(&gguf_name).map_err(|e| {
            ModelFileError::from(e)
                .with_file(path)
                .with_tensor(&gguf_name)
        })?;
        if let Some(n_head) = rope_heads(config, &hf) {
            values = gguf_to_hf_rows(&values, n_head, shape[1]);
        }
        out.insert(hf, (shape, values));
    }
    Ok(out)
}
