//! GGUF v3 writer. Output is a pure function of what was added, in the order it was added, so
//! the same model always gives the same bytes. Everything the reader (and llama.cpp's loader)
//! would reject is rejected here when it is added, not after a long export.

use super::tensor_info::{MAX_NAME_LEN, tensor_n_bytes};
use super::value::{Array, Value};
use super::{ALIGNMENT_KEY, DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VERSION, MAX_ARRAY_DEPTH};
use crate::atomic_file::write_file_atomic;
use crate::error::{GgufError, GgufErrorKind, Result};
use crate::quants::{self, GgmlType};
use std::collections::HashSet;
use std::path::Path;

struct PendingTensor {
    name: String,
    ggml_type: GgmlType,
    dims: Vec<u64>,
    data: Vec<u8>,
}

/// Collects metadata and tensors, then serialises them. The alignment is taken from a
/// `general.alignment` UINT32 entry if one is added, else 32.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    keys: HashSet<String>,
    tensors: Vec<PendingTensor>,
    names: HashSet<String>,
    alignment: Option<u64>,
}

impl std::fmt::Debug for GgufWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufWriter")
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("alignment", &self.alignment())
            .finish()
    }
}

fn array_depth(a: &Array) -> usize {
    match a {
        Array::Array(v) => 1 + v.iter().map(array_depth).max().unwrap_or(0),
        _ => 1,
    }
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The data alignment that will be used.
    pub fn alignment(&self) -> u64 {
        self.alignment.unwrap_or(DEFAULT_ALIGNMENT)
    }

    /// Adds a metadata entry. Errors on a duplicate key, a bad `general.alignment`, or arrays
    /// nested deeper than the reader accepts.
    pub fn add_metadata(&mut self, key: impl Into<String>, value: Value) -> Result<&mut Self> {
        let key = key.into();
        if self.keys.contains(&key) {
            return Err(GgufErrorKind::DuplicateKey { key }.into());
        }
        if key == ALIGNMENT_KEY {
            match value {
                Value::U32(a) if a.is_power_of_two() => self.alignment = Some(a.into()),
                ref v => {
                    return Err(GgufErrorKind::BadAlignment {
                        detail: format!("{v:?}: must be a UINT32 power of two"),
                    }
                    .into());
                }
            }
        }
        if let Value::Array(a) = &value
            && array_depth(a) > MAX_ARRAY_DEPTH
        {
            return Err(GgufErrorKind::NestingTooDeep {
                key,
                max_depth: MAX_ARRAY_DEPTH,
            }
            .into());
        }
        self.keys.insert(key.clone());
        self.metadata.push((key, value));
        Ok(self)
    }

    /// Adds a tensor from its encoded bytes. `dims` are in GGUF order (innermost first, i.e.
    /// `[in, out]` for a torch `[out, in]` weight); `data` must be exactly the encoded size.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        ggml_type: GgmlType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        let name = name.into();
        let ctx = |e: GgufError| e.with_tensor(&name);
        if name.len() >= MAX_NAME_LEN {
            return Err(ctx(GgufErrorKind::NameTooLong { len: name.len() }.into()));
        }
        if self.names.contains(&name) {
            return Err(ctx(GgufErrorKind::DuplicateTensor.into()));
        }
        let n_bytes = tensor_n_bytes(ggml_type, dims).map_err(ctx)?;
        if data.len() as u64 != n_bytes {
            return Err(ctx(GgufErrorKind::LengthMismatch {
                what: "tensor data bytes",
                expected: n_bytes,
                got: data.len() as u64,
            }
            .into()));
        }
        self.names.insert(name.clone());
        self.tensors.push(PendingTensor {
            name,
            ggml_type,
            dims: dims.to_vec(),
            data,
        });
        Ok(self)
    }

    /// Quantizes row-major `values` of the given row-major `shape` to `ggml_type` and adds them
    /// (the GGUF dims are the shape reversed).
    pub fn add_tensor_f32(
        &mut self,
        name: impl Into<String>,
        ggml_type: GgmlType,
        shape: &[usize],
        values: &[f32],
    ) -> Result<&mut Self> {
        let name = name.into();
        let dims: Vec<u64> = shape.iter().rev().map(|&d| d as u64).collect();
        let n: u64 = shape.iter().map(|&d| d as u64).product();
        if n != values.len() as u64 {
            return Err(GgufError::new(GgufErrorKind::LengthMismatch {
                what: "value count for the shape",
                expected: n,
                got: values.len() as u64,
            })
            .with_tensor(&name));
        }
        // Check the row length before quantizing, so the error names dims[0].
        tensor_n_bytes(ggml_type, &dims).map_err(|e| e.with_tensor(&name))?;
        let data = quants::quantize(ggml_type, values).map_err(|e| e.with_tensor(&name))?;
        self.add_tensor(name, ggml_type, &dims, data)
    }

    /// The complete file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let align = self.alignment();
        let pad = |n: u64| n.next_multiple_of(align);
        let data_size: u64 = self.tensors.iter().map(|t| pad(t.data.len() as u64)).sum();
        let mut out = Vec::with_capacity(data_size as usize + 4096);
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&GGUF_VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            write_string(&mut out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            write_value(&mut out, value);
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            write_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset += pad(t.data.len() as u64);
        }
        out.resize(pad(out.len() as u64) as usize, 0);
        for t in &self.tensors {
            out.extend_from_slice(&t.data);
            out.resize(pad(out.len() as u64) as usize, 0);
        }
        out
    }

    /// Writes the file atomically (temporary file in the same directory, fsync, rename).
    pub fn write_file(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        write_file_atomic(path, &self.to_bytes())
            .map_err(|e| GgufError::new(GgufErrorKind::Io(e)).with_file(path))
    }
}

fn write_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::U8(v) => out.push(*v),
        Value::I8(v) => out.push(*v as u8),
        Value::U16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I16(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::U32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F32(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::Bool(v) => out.push(*v as u8),
        Value::String(s) => write_string(out, s),
        Value::Array(a) => write_array(out, a),
        Value::U64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::I64(v) => out.extend_from_slice(&v.to_le_bytes()),
        Value::F64(v) => out.extend_from_slice(&v.to_le_bytes()),
    }
}

fn write_array(out: &mut Vec<u8>, a: &Array) {
    out.extend_from_slice(&a.elem_type().id().to_le_bytes());
    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
    match a {
        Array::U8(v) => out.extend_from_slice(v),
        Array::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        Array::U16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::I16(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::U32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::I32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::F32(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::U64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::I64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::F64(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Array::String(v) => v.iter().for_each(|s| write_string(out, s)),
        Array::Array(v) => v.iter().for_each(|inner| write_array(out, inner)),
    }
}
