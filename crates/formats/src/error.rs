//! Errors of the format layer: bad shapes and inconsistent specs, never panics on user input.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
pub enum FormatError {
    #[error("shape {shape:?} has {expected} elements but the data has {actual}")]
    ShapeMismatch {
        shape: Vec<usize>,
        expected: usize,
        actual: usize,
    },
    #[error("the last axis ({cols}) must be a multiple of the Hadamard size {g}")]
    HadamardDivisibility { cols: usize, g: usize },
    #[error("invalid quantization spec: {0}")]
    InvalidSpec(String),
}

pub type Result<T> = std::result::Result<T, FormatError>;
