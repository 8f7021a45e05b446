//! nibble-modelfiles: reading and writing the model files other tools use.
//!
//! Pure byte-level file I/O with no tensor framework: the model import/export code converts
//! between these buffers and its own tensors.
//!
//! - [`gguf`]: llama.cpp's GGUF container ([`GgufFile`] reads, [`GgufWriter`] writes).
//! - [`quants`]: ggml tensor types, dequantized and quantized bit-identically to ggml/gguf-py.

pub mod atomic_file;
pub mod error;
pub mod gguf;
pub mod quants;

pub use error::{GgufError, GgufErrorKind};
pub use gguf::{Array, GgufFile, GgufWriter, TensorInfo, Value, ValueType};
pub use quants::GgmlType;
