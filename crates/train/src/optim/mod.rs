//! The recipe's `[optim]` section, AdamW with parameter groups, and global-norm clipping.

mod adamw;
mod clip;
mod config;
mod groups;

pub use adamw::{AdamW, AdamWState};
pub use clip::{clip_global_norm, global_norm};
pub use config::OptimConfig;
pub use groups::{DEFAULT_GROUP, GroupConfig, Groups, ParamGroup, TECHNIQUES_GROUP};
