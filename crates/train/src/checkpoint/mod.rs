//! Checkpoints: model + optimizer tensors (safetensors, HF names) and the train state (JSON),
//! written atomically, with a keep-last-K policy. The last good checkpoint always survives: a new
//! one is staged in a temporary directory (tensors streamed one at a time) and renamed into
//! place only when complete; a non-finite tensor or any failure stops the save and its staging
//! directory is removed. `state.json`, written last, records every file's size and SHA-256 and
//! its own checksum: a load verifies all of them, and a resume falls back to the newest intact
//! checkpoint.

mod atomic;
mod fallback;
mod manifest;
mod store;
mod tensors;

pub use atomic::{fsync_dir, write_atomic};
pub use fallback::{fallback_warnings, newest_intact, scan};
pub use manifest::{Damaged, TENSOR_FILES, verify};
pub use store::{
    CheckpointError, TrainState, latest, load, prune, save, saved_state, saved_step, step_dir,
};
pub use tensors::{HostTensors, read_safetensors};
