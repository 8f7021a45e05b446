//! The recipe's sections that belong to the trainer itself: `[run]`, `[eval]`, `[log]`,
//! `[checkpoint]`. The other sections' structs live with the code they configure
//! (`nibble_model::ModelConfig`, `nibble_data::DataConfig`, ...); `Recipe` composes them.

mod checkpoint;
mod distill;
mod distributed;
mod efficientqat;
mod eval;
mod init;
mod log;
mod recipe;
mod run;

pub use checkpoint::CheckpointConfig;
pub use distill::{DistillConfig, InterventionMode};
pub use distributed::{Devices, DistributedConfig};
pub use efficientqat::{BlockApConfig, E2eQpConfig};
pub use eval::EvalConfig;
pub use init::{InitConfig, InitSource, PRETRAINED};
pub use log::LogConfig;
pub use recipe::{Recipe, schedule_key_error};
pub use run::{Device, RunConfig};
