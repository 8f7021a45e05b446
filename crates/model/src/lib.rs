//! nibble-model: a Llama-style decoder whose projections (q, k, v, o, gate, up, down, lm_head)
//! are `LpLinear`s taking their `LinearScheme` from a `PrecisionPolicy`. Parameters carry HF
//! names and live in an explicit `Params` map, so optimizers and checkpoints address them by name.

pub mod config;
pub mod ctx;
pub mod error;
pub mod generate;
pub mod layers;
pub mod llama;
mod llama_export;
pub mod lp_linear;
pub mod params;
pub mod policy;
pub mod taps;

pub use burn;
pub use config::{Arch, ModelConfig};
pub use ctx::{ForwardCtx, Intervention};
pub use error::KeyError;
pub use generate::{GenerateOptions, KvCache, generate};
pub use llama::{BlockParams, Hidden, Llama, cross_entropy};
pub use lp_linear::LpLinear;
pub use nibble_ops::SchemeTable;
pub use nibble_ops::{LinearScheme, LpBackend};
pub use nibble_techniques as techniques;
pub use params::Params;
pub use policy::{PrecisionConfig, PrecisionPolicy};
pub use taps::{TapKind, TapPoint, Taps};
