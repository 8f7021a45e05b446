//! Llama models as files other tools use: import from and export to llama.cpp GGUF and HF
//! checkpoint directories, through host f32 tensors under HF names ([`LlamaModel`]).
//!
//! - [`import_gguf`] / [`export_gguf`]: `llama` architecture GGUF, any weight type this crate
//!   can (de)quantize; q/k rows converted between llama.cpp's adjacent-pair RoPE order and HF's
//!   rotate_half order ([`rope_permute`]).
//! - [`import_hf_dir`] / [`export_hf_dir`]: `config.json` + safetensors (single or sharded),
//!   tokenizer files.
//! - [`export_ct_dir`]: the HF directory with compressed-tensors projections (vLLM, transformers).

mod config;
mod ct_export;
mod error;
mod gguf_export;
mod gguf_import;
mod grid;
mod hf_config;
mod hf_export;
mod hf_import;
mod model;
pub mod names;
pub mod rope_permute;
mod safetensors_io;
mod tokenizer;
mod tokenizer_hf;

pub use config::LlamaConfig;
pub use ct_export::{ct_files, ct_linears, export_ct_dir, is_projection, read_ct_linears};
pub use error::ModelFileError;
pub use gguf_export::{GgufWeightType, export_gguf, gguf_bytes};
pub use gguf_import::import_gguf;
pub use grid::GridTensor;
pub use hf_config::{config_json, generation_config_json, parse_config_json};
pub use hf_export::{export_hf_dir, hf_files};
pub use hf_import::import_hf_dir;
pub use model::{HostTensors, LlamaModel};
pub use safetensors_io::{HfDtype, read_safetensors, write_safetensors};
pub use tokenizer::{TokenizerParts, token_type};
pub use tokenizer_hf::tokenizer_parts_from_hf;
