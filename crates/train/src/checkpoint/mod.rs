//! Checkpoints: model + optimizer tensors (safetensors, HF names) and the train state (JSON),
//! written atomically, with a keep-last-K policy. The last good checkpoint always survives: a new
//! one is staged in a temporary directory (tensors streamed one at a time) and renamed into
//! place only when complete; a non-finite tensor stops the save and its staging directory is
//! removed.

mod atomic;
mod store;
mod tensors;

pub use atomic::{fsync_dir, write_atomic};
pub use store::{CheckpointError, TrainState, latest, load, prune, save, saved_step, step_dir};
pub use tensors::{HostTensors, read_safetensors};
