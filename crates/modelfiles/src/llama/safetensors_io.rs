//! Reading and writing the safetensors files of an HF checkpoint (f32/bf16/f16 -> f32 on read;
//! f32 or bf16 on write).

use super::error::ModelFileError;
use super::model::HostTensors;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use std::collections::HashMap;
use std::path::Path;

/// A decoded tensor: name, row-major shape, values.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// Decodes one safetensors file's bytes into f32 tensors; every error names `path` (and the
/// tensor when it concerns one). `keep` filters names (a `false` skips the tensor).
pub fn read_safetensors(
    bytes: &[u8],
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<Vec<NamedTensor>, ModelFileError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        ModelFileError::new(format!("invalid safetensors file: {e}")).with_file(path)
    })?;
    let mut names: Vec<&str> = st.names();
    names.sort_unstable();
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if !keep(name) {
            continue;
        }
        let err = |m: String| ModelFileError::new(m).with_file(path).with_tensor(name);
        let view = st.tensor(name).map_err(|e| err(format!("{e}")))?;
        let data = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => data
                .chunks_exact(2)
                .map(|b| half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            Dtype::F16 => data
                .chunks_exact(2)
                .map(|b| half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
                .collect(),
            other => {
                return Err(err(format!(
                    "dtype {other:?} is not supported (F32, BF16, F16)"
                )));
            }
        };
        let n: usize = view.shape().iter().product();
        if values.len() != n {
            return Err(err(format!(
                "{} values for shape {:?}",
                values.len(),
                view.shape()
            )));
        }
        out.push((name.to_string(), view.shape().to_vec(), values));
    }
    Ok(out)
}

/// Element type of a written safetensors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HfDtype {
    F32,
    Bf16,
}

impl HfDtype {
    /// transformers' `torch_dtype` name.
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
        }
    }
}

/// The bytes of `values` in `dtype`; bf16 is the round-to-nearest-even rounding, and a value
/// that becomes non-finite (too large for the dtype) is an error naming the tensor.
pub(crate) fn encode_values(
    name: &str,
    values: &[f32],
    dtype: HfDtype,
) -> Result<Vec<u8>, ModelFileError> {
    Ok(match dtype {
        HfDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        HfDtype::Bf16 => {
            let mut b = Vec::with_capacity(values.len() * 2);
            for (i, v) in values.iter().enumerate() {
                let h = half::bf16::from_f32(*v);
                if !h.is_finite() {
                    return Err(ModelFileError::new(format!(
                        "value {v} at flat index {i} is not finite in bf16"
                    ))
                    .with_tensor(name));
                }
                b.extend_from_slice(&h.to_bits().to_le_bytes());
            }
            b
        }
    })
}

impl HfDtype {
    pub(crate) fn safetensors(self) -> Dtype {
        match self {
            Self::F32 => Dtype::F32,
            Self::Bf16 => Dtype::BF16,
        }
    }
}

/// One encoded tensor: name, dtype, shape, bytes.
pub(crate) type Encoded = (String, Dtype, Vec<usize>, Vec<u8>);

/// Serializes encoded tensors as one safetensors file (metadata `{"format": "pt"}`,
/// deterministic bytes).
pub(crate) fn serialize(encoded: &[Encoded]) -> Result<Vec<u8>, ModelFileError> {
    let mut views = Vec::with_capacity(encoded.len());
    for (name, dtype, shape, bytes) in encoded {
        let view = TensorView::new(*dtype, shape.clone(), bytes)
            .map_err(|e| ModelFileError::new(format!("cannot encode: {e}")).with_tensor(name))?;
        views.push((name.as_str(), view));
    }
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize(views, Some(meta))
        .map_err(|e| ModelFileError::new(format!("cannot serialize safetensors: {e}")))
}

/// Encodes tensors as one safetensors file in `dtype` (see [`encode_values`]). Deterministic
/// bytes.
pub fn write_safetensors(tensors: &HostTensors, dtype: HfDtype) -> Result<Vec<u8>, ModelFileError> {
    let mut encoded = Vec::with_capacity(tensors.len());
    for (name, (shape, values)) in tensors {
        let bytes = encode_values(name, values, dtype)?;
        encoded.push((name.clone(), dtype.safetensors(), shape.clone(), bytes));
    }
    serialize(&encoded)
}
