//! Shared by the model's integration tests.
#![allow(dead_code)]

use nibble_model::{Arch, ModelConfig};

/// The `tiny` preset cut to 2 blocks and 16 positions, bytes vocabulary.
pub fn tiny_arch() -> Arch {
    ModelConfig {
        seq_len: Some(16),
        n_layers: Some(2),
        ..Default::default()
    }
    .resolve(Some(256))
    .unwrap()
}
