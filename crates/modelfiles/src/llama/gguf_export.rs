//! [`LlamaModel`] -> GGUF (llama.cpp, architecture `llama`).

use super::ct_export::is_projection;
use super::error::ModelFileError;
use super::grid::{GridTensor, compare_bits};
use super::model::{LlamaModel, rope_heads};
use super::names::hf_to_gguf;
use super::rope_permute::hf_to_gguf_rows;
use crate::atomic_file::write_file_atomic;
use crate::gguf::{GgufWriter, Value};
use crate::quants::{GgmlType, SCALED_TYPES, dequantize, quantize_with_scales};
use std::path::Path;

/// The ggml type of the 2-D weight matrices (token embedding and lm_head included) in an
/// exported GGUF; norms are always F32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufWeightType {
    F32,
    F16,
    Q8_0,
    Q4_0,
    Mxfp4,
    Tq1_0,
    Tq2_0,
}

impl GgufWeightType {
    /// The ggml tensor type.
    pub fn ggml_type(self) -> GgmlType {
        match self {
            Self::F32 => GgmlType::F32,
            Self::F16 => GgmlType::F16,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Mxfp4 => GgmlType::MXFP4,
            Self::Tq1_0 => GgmlType::TQ1_0,
            Self::Tq2_0 => GgmlType::TQ2_0,
        }
    }

    /// llama.cpp's `general.file_type` (`LlamaFileType`).
    pub fn file_type(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q8_0 => 7,
            Self::Tq1_0 => 36,
            Self::Tq2_0 => 37,
            Self::Mxfp4 => 38,
        }
    }

    /// The largest |value| the type can hold without its f16 value or f16 block scale
    /// overflowing (`None`: no such limit below f32's).
    fn max_abs(self) -> Option<f32> {
        const F16_MAX: f32 = 65504.0;
        match self {
            Self::F32 | Self::Mxfp4 => None,
            Self::F16 | Self::Tq1_0 | Self::Tq2_0 => Some(F16_MAX),
            Self::Q8_0 => Some(F16_MAX * 127.0),
            Self::Q4_0 => Some(F16_MAX * 8.0),
        }
    }
}

/// Writes `model` as a llama GGUF: llama.cpp's `llama.*` metadata, the tokenizer's
/// `tokenizer.ggml.*` keys (`tokenizer.ggml.model = "no_vocab"` without one), tensors under
/// GGUF names with q/k rows in llama.cpp's adjacent-pair RoPE order, norms F32 and matrices in
/// `weights`. Checks everything first (tensor set and shapes, finite values, row lengths a
/// multiple of the type's block size, magnitudes the type can hold); on any error nothing is
/// written. The file is replaced atomically; the bytes depend only on the inputs.
pub fn export_gguf(
    model: &LlamaModel,
    weights: GgufWeightType,
    path: &Path,
) -> Result<(), ModelFileError> {
    let bytes = gguf_bytes(model, weights).map_err(|e| e.with_file(path))?;
    write_file_atomic(path, &bytes).map_err(|e| ModelFileError::io("write", path, e))
}

/// The bytes [`export_gguf`] writes.
pub fn gguf_bytes(model: &LlamaModel, weights: GgufWeightType) -> Result<Vec<u8>, ModelFileError> {
    model.validate()?;
    let c = &model.config;
    let ty = weights.ggml_type();
    let expected = c.expected_tensors();
    // Checks that need no encoding, so a bad model fails before any slow quantization.
    for (name, shape) in &expected {
        if shape.len() != 2 {
            continue;
        }
        let row = shape[1];
        let tensor_ty = tensor_type(ty, name, shape, model.grids.contains_key(name));
        if row % tensor_ty.block_size() != 0 {
            return Err(ModelFileError::new(format!(
                "row length {row} is not a multiple of the {} block size {}",
                tensor_ty.name(),
                tensor_ty.block_size()
            ))
            .with_tensor(name));
        }
        if let Some(max) = weights.max_abs() {
            let values = &model.tensors[name].1;
            if let Some(i) = values.iter().position(|v| v.abs() > max) {
                return Err(ModelFileError::new(format!(
                    "value {} at flat index {i} is too large for {} (|x| <= {max})",
                    values[i],
                    ty.name()
                ))
                .with_tensor(name));
            }
        }
    }

    let mut w = GgufWriter::new();
    let add = |w: &mut GgufWriter, k: &str, v: Value| -> Result<(), ModelFileError> {
        w.add_metadata(k, v)
            .map(|_| ())
            .map_err(|e| ModelFileError::from(e).with_key(k))
    };
    let u32_of = |what: &str, v: usize| {
        u32::try_from(v).map_err(|_| ModelFileError::new(format!("{what} {v} does not fit u32")))
    };
    add(
        &mut w,
        "general.architecture",
        Value::String("llama".into()),
    )?;
    add(&mut w, "general.alignment", Value::U32(32))?;
    add(
        &mut w,
        "llama.vocab_size",
        Value::U32(u32_of("vocab_size", c.vocab_size)?),
    )?;
    add(
        &mut w,
        "llama.context_length",
        Value::U32(u32_of(
            "max_position_embeddings",
            c.max_position_embeddings,
        )?),
    )?;
    add(
        &mut w,
        "llama.embedding_length",
        Value::U32(u32_of("hidden_size", c.hidden_size)?),
    )?;
    add(
        &mut w,
        "llama.block_count",
        Value::U32(u32_of("num_layers", c.num_layers)?),
    )?;
    add(
        &mut w,
        "llama.feed_forward_length",
        Value::U32(u32_of("intermediate_size", c.intermediate_size)?),
    )?;
    add(
        &mut w,
        "llama.rope.dimension_count",
        Value::U32(u32_of("head_dim", c.head_dim())?),
    )?;
    add(
        &mut w,
        "llama.attention.head_count",
        Value::U32(u32_of("num_heads", c.num_heads)?),
    )?;
    add(
        &mut w,
        "llama.attention.head_count_kv",
        Value::U32(u32_of("num_kv_heads", c.num_kv_heads)?),
    )?;
    add(
        &mut w,
        "llama.attention.layer_norm_rms_epsilon",
        Value::F32(c.rms_norm_eps as f32),
    )?;
    add(
        &mut w,
        "llama.rope.freq_base",
        Value::F32(c.rope_theta as f32),
    )?;
    add(&mut w, "general.file_type", Value::U32(weights.file_type()))?;
    add(&mut w, "general.quantization_version", Value::U32(2))?;
    match &model.tokenizer {
        Some(t) => {
            if t.tokens.len() != c.vocab_size {
                return Err(ModelFileError::new(format!(
                    "tokenizer has {} tokens but vocab_size is {}",
                    t.tokens.len(),
                    c.vocab_size
                ))
                .with_key("tokenizer.ggml.tokens"));
            }
            t.write_gguf(&mut w)?;
        }
        None => {
            // Weight-only file: llama.cpp makes vocab_size dummy tokens.
            add(
                &mut w,
                "tokenizer.ggml.model",
                Value::String("no_vocab".into()),
            )?;
            for (k, id) in [
                ("tokenizer.ggml.bos_token_id", c.bos_token_id),
                ("tokenizer.ggml.eos_token_id", c.eos_token_id),
            ] {
                if let Some(id) = id {
                    add(&mut w, k, Value::U32(id))?;
                }
            }
        }
    }

    for (name, shape) in &expected {
        let gguf_name = hf_to_gguf(name).expect("expected tensors have GGUF names");
        let values = &model.tensors[name].1;
        let tensor_ty = match shape.len() {
            2 => tensor_type(ty, name, shape, model.grids.contains_key(name)),
            _ => GgmlType::F32,
        };
        let permuted;
        let values = match rope_heads(c, name) {
            Some(n_head) => {
                permuted = hf_to_gguf_rows(values, n_head, shape[1]);
                &permuted
            }
            None => values,
        };
        let grid = model
            .grids
            .get(name)
            .filter(|_| SCALED_TYPES.contains(&tensor_ty));
        match grid {
            Some(g) => {
                let g = match rope_heads(c, name) {
                    Some(n_head) => g.permute_rows(shape[0], |v, w| hf_to_gguf_rows(v, n_head, w)),
                    None => g.clone(),
                };
                let bytes = grid_bytes(tensor_ty, &g, shape, values)
                    .map_err(|m| ModelFileError::new(m).with_tensor(name))?;
                let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
                w.add_tensor(&gguf_name, tensor_ty, &dims, bytes)
                    .map_err(|e| ModelFileError::from(e).with_tensor(&gguf_name))?;
            }
            None if model.grids.contains_key(name)
                && shape.len() == 2
                && tensor_ty != GgmlType::F32
                && tensor_ty != GgmlType::F16 =>
            {
                return Err(ModelFileError::new(format!(
                    "it was trained on an integer or ternary grid, which {} (its own scale \
                     rule) would re-quantize",
                    tensor_ty.name()
                ))
                .with_tensor(name));
            }
            None => {
                w.add_tensor_f32(&gguf_name, tensor_ty, shape, values)
                    .map_err(|e| ModelFileError::from(e).with_tensor(&gguf_name))?;
            }
        }
    }
    for (name, values) in &model.biases {
        let weight = name.replace(".bias", ".weight");
        let gguf_name = hf_to_gguf(&weight)
            .filter(|_| name.ends_with(".bias") && model.tensors.contains_key(&weight))
            .ok_or_else(|| ModelFileError::new("a bias of no projection").with_tensor(name))?
            .replace(".weight", ".bias");
        let permuted;
        let values = match rope_heads(c, &weight) {
            Some(n_head) => {
                permuted = hf_to_gguf_rows(values, n_head, 1);
                &permuted
            }
            None => values,
        };
        w.add_tensor_f32(&gguf_name, GgmlType::F32, &[values.len()], values)
            .map_err(|e| ModelFileError::from(e).with_tensor(&gguf_name))?;
    }
    Ok(w.to_bytes())
}

/// The type a 2-D tensor is written in: the file's, except in a ternary file (TQ1_0, TQ2_0),
/// where the embedding and lm_head take Q8_0 (ternary embeddings are not what a ternary model
/// means; llama.cpp's quantizer also keeps them wider), and a projection whose rows are not a
/// multiple of 256 (SmolLM2's 576 inputs) takes Q4_0 when it is on a trained grid (Q4_0 holds
/// its ternary codes and scales exactly) and Q8_0 otherwise.
fn tensor_type(ty: GgmlType, name: &str, shape: &[usize], grid: bool) -> GgmlType {
    if !matches!(ty, GgmlType::TQ1_0 | GgmlType::TQ2_0) {
        return ty;
    }
    let fits = shape[1].is_multiple_of(ty.block_size());
    match (is_projection(name), fits, grid) {
        (true, true, _) => ty,
        (true, false, true) => GgmlType::Q4_0,
        _ => GgmlType::Q8_0,
    }
}

/// A grid projection encoded with its trained scales, decoded back and compared bit for bit.
fn grid_bytes(
    ty: GgmlType,
    g: &GridTensor,
    shape: &[usize],
    values: &[f32],
) -> Result<Vec<u8>, String> {
    let scales = g.gguf_block_scales(ty, shape[0], shape[1])?;
    let bytes = quantize_with_scales(ty, values, &scales).map_err(|e| e.to_string())?;
    let decoded = dequantize(ty, &bytes).map_err(|e| e.to_string())?;
    compare_bits(values, &decoded)?;
    Ok(bytes)
}
