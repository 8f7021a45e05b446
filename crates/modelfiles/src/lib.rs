//! nibble-modelfiles: reading and writing the model files other tools use.
//!
//! Pure byte-level file I/O with no tensor framework: the model import/export code converts
//! between these buffers and its own tensors.
//!
//! - [`gguf`]: llama.cpp's GGUF container ([`GgufFile`] reads, [`GgufWriter`] writes).
//! - [`quants`]: ggml tensor types, dequantized and quantized bit-identically to ggml/gguf-py.
//! - [`ct`]: compressed-tensors weight layouts (W4A16, FP8, NVFP4, MXFP4) for vLLM/transformers.
//! - [`llama`]: Llama models to and from GGUF and HF directories ([`LlamaModel`]).

pub mod atomic_file;
pub mod ct;
pub mod error;
pub mod gguf;
pub mod llama;
pub mod quants;

pub use error::{GgufError, GgufErrorKind};
pub use gguf::{Array, GgufFile, GgufWriter, TensorInfo, Value, ValueType};
pub use llama::{
    GgufWeightType, HfDtype, HostTensors, LlamaConfig, LlamaModel, ModelFileError, TokenizerParts,
    export_gguf, export_hf_dir, import_gguf, import_hf_dir,
};
pub use quants::GgmlType;
