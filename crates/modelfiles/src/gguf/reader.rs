//! GGUF v3 (and v2) reader: header, metadata, tensor infos, and random access to tensor data.
//!
//! Everything the header claims is checked before it is used: counts are bounded by the bytes
//! left in the file before anything is allocated, array nesting is bounded, and the tensor
//! layout must satisfy the rules of llama.cpp's C loader (`gguf_init_from_reader`): known types,
//! at most 4 dims, `ne[0]` a multiple of the block size, unique names shorter than 64 bytes, a
//! u32 power-of-two `general.alignment`, and offsets packed in order, each padded to the
//! alignment. A file this reader accepts is one llama.cpp's loader accepts structurally.

use super::cursor::Cursor;
use super::tensor_info::{MAX_DIMS, MAX_NAME_LEN, TensorInfo, tensor_n_bytes};
use super::value::{Array, Value, ValueType};
use super::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use crate::error::{GgufError, GgufErrorKind, Result};
use crate::quants::{self, GgmlType};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Nested metadata arrays deeper than this are rejected (real files use at most 2 levels);
/// bounds the recursion of a hostile file.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// Smallest metadata entry: empty key (u64 length), type id, one-byte value.
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
/// Smallest tensor info: empty name, n_dims, type id, offset.
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

/// A parsed GGUF file, holding its bytes.
#[derive(Debug, Clone)]
pub struct GgufFile {
    path: Option<PathBuf>,
    bytes: Vec<u8>,
    version: u32,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    alignment: u64,
    data_offset: u64,
}

macro_rules! scalar_getter {
    ($(#[$doc:meta] $fn:ident -> $t:ty, $variant:ident, $expected:literal;)*) => {$(
        #[$doc]
        pub fn $fn(&self, key: &str) -> Result<$t> {
            match self.require(key)? {
                Value::$variant(v) => Ok(v.clone()),
                other => Err(self.wrong_type(key, $expected, other)),
            }
        }
    )*};
}

macro_rules! array_getter {
    ($(#[$doc:meta] $fn:ident -> $t:ty, $variant:ident, $expected:literal;)*) => {$(
        #[$doc]
        pub fn $fn(&self, key: &str) -> Result<&[$t]> {
            match self.require(key)? {
                Value::Array(Array::$variant(v)) => Ok(v),
                other => Err(self.wrong_type(key, $expected, other)),
            }
        }
    )*};
}

impl GgufFile {
    /// Parses a GGUF file held in memory (the bytes are copied).
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        Self::from_vec(bytes.to_vec())
    }

    /// Parses a GGUF file held in memory, taking ownership of the bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Self> {
        let header = parse_header(&bytes)?;
        Ok(Self {
            path: None,
            bytes,
            ..header
        })
    }

    /// Reads and parses a file; errors name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|e| GgufError::new(GgufErrorKind::Io(e)).with_file(path))?;
        let mut file = Self::from_vec(bytes).map_err(|e| e.with_file(path))?;
        file.path = Some(path.to_path_buf());
        Ok(file)
    }

    /// The path the file was opened from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// File offset of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }

    /// All metadata entries, in file order.
    pub fn metadata_entries(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of a metadata key.
    pub fn metadata(&self, key: &str) -> Option<&Value> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn err(&self, kind: GgufErrorKind) -> GgufError {
        let e = GgufError::new(kind);
        match &self.path {
            Some(p) => e.with_file(p),
            None => e,
        }
    }

    fn require(&self, key: &str) -> Result<&Value> {
        self.metadata(key).ok_or_else(|| {
            self.err(GgufErrorKind::MissingKey {
                key: key.to_string(),
            })
        })
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value) -> GgufError {
        self.err(GgufErrorKind::WrongType {
            key: key.to_string(),
            expected,
            found: found.type_description(),
        })
    }

    scalar_getter! {
        /// A UINT8 value (strict type).
        get_u8 -> u8, U8, "UINT8";
        /// An INT8 value (strict type).
        get_i8 -> i8, I8, "INT8";
        /// A UINT16 value (strict type).
        get_u16 -> u16, U16, "UINT16";
        /// An INT16 value (strict type).
        get_i16 -> i16, I16, "INT16";
        /// A UINT32 value (strict type), e.g. `llama.block_count`.
        get_u32 -> u32, U32, "UINT32";
        /// An INT32 value (strict type).
        get_i32 -> i32, I32, "INT32";
        /// A UINT64 value (strict type).
        get_u64 -> u64, U64, "UINT64";
        /// An INT64 value (strict type).
        get_i64 -> i64, I64, "INT64";
        /// A FLOAT32 value (strict type), e.g. `llama.rope.freq_base`.
        get_f32 -> f32, F32, "FLOAT32";
        /// A FLOAT64 value (strict type).
        get_f64 -> f64, F64, "FLOAT64";
        /// A BOOL value.
        get_bool -> bool, Bool, "BOOL";
    }

    /// A STRING value.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type(key, "STRING", other)),
        }
    }

    /// Any integer value that fits u64, whatever its stored width.
    pub fn get_uint(&self, key: &str) -> Result<u64> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.wrong_type(key, "a non-negative integer", v))
    }

    array_getter! {
        /// An ARRAY[STRING], e.g. `tokenizer.ggml.tokens`.
        get_str_array -> String, String, "ARRAY[STRING]";
        /// An ARRAY[FLOAT32], e.g. `tokenizer.ggml.scores`.
        get_f32_array -> f32, F32, "ARRAY[FLOAT32]";
        /// An ARRAY[INT32], e.g. `tokenizer.ggml.token_type`.
        get_i32_array -> i32, I32, "ARRAY[INT32]";
        /// An ARRAY[UINT32].
        get_u32_array -> u32, U32, "ARRAY[UINT32]";
        /// An ARRAY[UINT8].
        get_u8_array -> u8, U8, "ARRAY[UINT8]";
        /// An ARRAY[INT64].
        get_i64_array -> i64, I64, "ARRAY[INT64]";
        /// An ARRAY[UINT64].
        get_u64_array -> u64, U64, "ARRAY[UINT64]";
    }

    /// Tensor descriptors, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The descriptor of a tensor.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensor_index.get(name).map(|&i| &self.tensors[i])
    }

    fn require_tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor(name)
            .ok_or_else(|| self.err(GgufErrorKind::MissingTensor).with_tensor(name))
    }

    /// The raw bytes of a tensor (bounds were checked at parse time).
    pub fn tensor_data(&self, name: &str) -> Result<&[u8]> {
        let t = self.require_tensor(name)?;
        let start = (self.data_offset + t.offset) as usize;
        Ok(&self.bytes[start..start + t.n_bytes as usize])
    }

    /// A tensor dequantized to f32, with its shape in row-major order (GGUF dims reversed).
    pub fn tensor_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.require_tensor(name)?;
        let data = quants::dequantize(t.ggml_type, self.tensor_data(name)?).map_err(|e| {
            let e = e.with_tensor(name);
            match &self.path {
                Some(p) => e.with_file(p),
                None => e,
            }
        })?;
        Ok((t.shape(), data))
    }
}

/// Parses everything but the data; the returned value has no bytes or path yet.
fn parse_header(bytes: &[u8]) -> Result<GgufFile> {
    let mut cur = Cursor::new(bytes);
    let magic = cur.take(4, &|| "magic".into())?;
    if magic != GGUF_MAGIC {
        return Err(GgufErrorKind::BadMagic {
            found: [magic[0], magic[1], magic[2], magic[3]],
        }
        .into());
    }
    let version = cur.u32(&|| "version".into())?;
    if version != 2 && version != 3 {
        let hint = if version.swap_bytes() <= 3 {
            " (a big-endian file?)"
        } else if version == 1 {
            " (v1 used 32-bit counts)"
        } else {
            ""
        };
        return Err(GgufErrorKind::UnsupportedVersion { version, hint }.into());
    }
    let n_tensors = cur.u64(&|| "tensor count".into())?;
    let n_kv = cur.u64(&|| "metadata count".into())?;
    check_count(&cur, "metadata count", n_kv, MIN_KV_BYTES)?;

    let mut metadata = Vec::new();
    let mut metadata_index = HashMap::new();
    for i in 0..n_kv {
        let key = cur.string(&|| format!("metadata key {i}"))?;
        let type_id = cur.u32(&|| format!("metadata key '{key}' type"))?;
        let ty = ValueType::from_id(type_id).ok_or_else(|| GgufErrorKind::UnknownValueType {
            key: key.clone(),
            id: type_id,
        })?;
        let value = read_value(&mut cur, ty, &key, 0)?;
        if metadata_index.insert(key.clone(), metadata.len()).is_some() {
            return Err(GgufErrorKind::DuplicateKey { key }.into());
        }
        metadata.push((key, value));
    }

    check_count(&cur, "tensor count", n_tensors, MIN_TENSOR_INFO_BYTES)?;
    let mut tensors = Vec::new();
    let mut tensor_index = HashMap::new();
    for i in 0..n_tensors {
        let t = read_tensor_info(&mut cur, i)?;
        if tensor_index.insert(t.name.clone(), tensors.len()).is_some() {
            return Err(GgufError::new(GgufErrorKind::DuplicateTensor).with_tensor(&t.name));
        }
        tensors.push(t);
    }

    let alignment = match metadata_index.get(super::ALIGNMENT_KEY) {
        None => DEFAULT_ALIGNMENT,
        Some(&i) => match metadata[i].1 {
            Value::U32(a) if a.is_power_of_two() => a as u64,
            Value::U32(a) => {
                return Err(GgufErrorKind::BadAlignment {
                    detail: format!("{a} is not a power of two"),
                }
                .into());
            }
            ref v => {
                return Err(GgufErrorKind::BadAlignment {
                    detail: format!("type {} instead of UINT32", v.type_description()),
                }
                .into());
            }
        },
    };
    let data_offset = (cur.pos() as u64).next_multiple_of(alignment);
    let mut expected = 0u64;
    for t in &tensors {
        let ctx = |e: GgufError| e.with_tensor(&t.name);
        if t.offset != expected {
            return Err(ctx(GgufErrorKind::BadOffset {
                offset: t.offset,
                expected,
            }
            .into()));
        }
        let start = data_offset + t.offset;
        let end = start + t.n_bytes;
        if end > bytes.len() as u64 {
            return Err(ctx(GgufErrorKind::DataOutOfBounds {
                start,
                end,
                len: bytes.len() as u64,
            }
            .into()));
        }
        expected += t.n_bytes.next_multiple_of(alignment);
    }

    Ok(GgufFile {
        path: None,
        bytes: Vec::new(),
        version,
        metadata,
        metadata_index,
        tensors,
        tensor_index,
        alignment,
        data_offset,
    })
}

/// Rejects a count that cannot fit in the remaining bytes at `min_each` bytes per entry.
fn check_count(cur: &Cursor, what: &str, count: u64, min_each: u64) -> Result<()> {
    let available = cur.remaining() as u64;
    let max = available / min_each;
    if count > max {
        return Err(GgufErrorKind::AbsurdCount {
            what: what.to_string(),
            count,
            max,
            available,
        }
        .into());
    }
    Ok(())
}

fn read_value(cur: &mut Cursor, ty: ValueType, key: &str, depth: usize) -> Result<Value> {
    let what = || format!("metadata key '{key}' value");
    if ty == ValueType::String {
        return Ok(Value::String(cur.string(&what)?));
    }
    if ty == ValueType::Array {
        return Ok(Value::Array(read_array(cur, key, depth + 1)?));
    }
    let b = cur.take(ty.fixed_size().unwrap_or(0) as u64, &what)?;
    Ok(match ty {
        ValueType::U8 => Value::U8(b[0]),
        ValueType::I8 => Value::I8(b[0] as i8),
        ValueType::Bool => Value::Bool(b[0] != 0),
        ValueType::U16 => Value::U16(u16::from_le_bytes([b[0], b[1]])),
        ValueType::I16 => Value::I16(i16::from_le_bytes([b[0], b[1]])),
        ValueType::U32 => Value::U32(u32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ValueType::I32 => Value::I32(i32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ValueType::F32 => Value::F32(f32::from_le_bytes(b.try_into().expect("4 bytes"))),
        ValueType::U64 => Value::U64(u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        ValueType::I64 => Value::I64(i64::from_le_bytes(b.try_into().expect("8 bytes"))),
        ValueType::F64 => Value::F64(f64::from_le_bytes(b.try_into().expect("8 bytes"))),
        ValueType::String | ValueType::Array => unreachable!("handled above"),
    })
}

/// Decodes `count` fixed-size little-endian elements from `b` (whose length was checked).
fn decode<T, const N: usize>(b: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    b.chunks_exact(N)
        .map(|c| f(c.try_into().expect("chunk of N")))
        .collect()
}

fn read_array(cur: &mut Cursor, key: &str, depth: usize) -> Result<Array> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(GgufErrorKind::NestingTooDeep {
            key: key.to_string(),
            max_depth: MAX_ARRAY_DEPTH,
        }
        .into());
    }
    let type_id = cur.u32(&|| format!("metadata key '{key}' array type"))?;
    let ty = ValueType::from_id(type_id).ok_or_else(|| GgufErrorKind::UnknownValueType {
        key: key.to_string(),
        id: type_id,
    })?;
    let count = cur.u64(&|| format!("metadata key '{key}' array length"))?;
    check_count(
        cur,
        &format!("metadata key '{key}' array"),
        count,
        ty.min_encoded_size() as u64,
    )?;
    let what = || format!("metadata key '{key}' array data");
    if let Some(size) = ty.fixed_size() {
        // count * size <= remaining, checked above.
        let b = cur.take(count * size as u64, &what)?;
        return Ok(match ty {
            ValueType::U8 => Array::U8(b.to_vec()),
            ValueType::I8 => Array::I8(b.iter().map(|&x| x as i8).collect()),
            ValueType::Bool => Array::Bool(b.iter().map(|&x| x != 0).collect()),
            ValueType::U16 => Array::U16(decode(b, u16::from_le_bytes)),
            ValueType::I16 => Array::I16(decode(b, i16::from_le_bytes)),
            ValueType::U32 => Array::U32(decode(b, u32::from_le_bytes)),
            ValueType::I32 => Array::I32(decode(b, i32::from_le_bytes)),
            ValueType::F32 => Array::F32(decode(b, f32::from_le_bytes)),
            ValueType::U64 => Array::U64(decode(b, u64::from_le_bytes)),
            ValueType::I64 => Array::I64(decode(b, i64::from_le_bytes)),
            ValueType::F64 => Array::F64(decode(b, f64::from_le_bytes)),
            ValueType::String | ValueType::Array => unreachable!("not fixed-size"),
        });
    }
    // count <= remaining / min size, so these reservations are bounded by the file size.
    if ty == ValueType::String {
        let mut v = Vec::with_capacity(count as usize);
        for i in 0..count {
            v.push(cur.string(&|| format!("metadata key '{key}' array element {i}"))?);
        }
        Ok(Array::String(v))
    } else {
        let mut v = Vec::with_capacity(count as usize);
        for _ in 0..count {
            v.push(read_array(cur, key, depth + 1)?);
        }
        Ok(Array::Array(v))
    }
}

fn read_tensor_info(cur: &mut Cursor, i: u64) -> Result<TensorInfo> {
    let name = cur.string(&|| format!("tensor info {i} name"))?;
    let ctx = |e: GgufError| e.with_tensor(&name);
    if name.len() >= MAX_NAME_LEN {
        return Err(ctx(GgufErrorKind::NameTooLong { len: name.len() }.into()));
    }
    let n_dims = cur
        .u32(&|| format!("tensor info {i} dimension count"))
        .map_err(ctx)?;
    if n_dims as usize > MAX_DIMS {
        return Err(ctx(GgufErrorKind::BadDimCount {
            n_dims: n_dims.into(),
        }
        .into()));
    }
    let mut dims = Vec::with_capacity(n_dims as usize);
    for _ in 0..n_dims {
        dims.push(cur.u64(&|| format!("tensor info {i} dims")).map_err(ctx)?);
    }
    let type_id = cur.u32(&|| format!("tensor info {i} type")).map_err(ctx)?;
    let ggml_type = GgmlType::from_id(type_id)
        .ok_or_else(|| ctx(GgufErrorKind::UnknownTensorType { id: type_id }.into()))?;
    let offset = cur
        .u64(&|| format!("tensor info {i} offset"))
        .map_err(ctx)?;
    let n_bytes = tensor_n_bytes(ggml_type, &dims).map_err(ctx)?;
    Ok(TensorInfo {
        name,
        ggml_type,
        dims,
        offset,
        n_bytes,
    })
}
