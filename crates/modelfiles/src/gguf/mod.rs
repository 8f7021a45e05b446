//! GGUF, llama.cpp's single-file model format (v3, little-endian; v2 read too).
//!
//! Layout: `"GGUF"`, u32 version, u64 tensor count, u64 metadata count; the metadata entries
//! (string key, u32 type, value); the tensor infos (string name, u32 n_dims, u64 dims
//! innermost-first, u32 ggml type, u64 offset into the data section); zero padding to
//! `general.alignment`; the tensor data, each tensor padded to the alignment.

mod cursor;
mod reader;
mod tensor_info;
mod value;
mod writer;

pub use reader::{GgufFile, MAX_ARRAY_DEPTH};
pub use tensor_info::{MAX_DIMS, MAX_NAME_LEN, TensorInfo};
pub use value::{Array, Value, ValueType};
pub use writer::GgufWriter;

/// The file magic, "GGUF" (0x46554747 read as a little-endian u32).
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// The version the writer produces.
pub const GGUF_VERSION: u32 = 3;
/// Alignment of the data section and of each tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The metadata key that overrides the alignment (must be a UINT32 power of two).
pub const ALIGNMENT_KEY: &str = "general.alignment";
