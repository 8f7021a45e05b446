//! The one error type of the GGUF code: what went wrong, plus the file and tensor it concerns, so
//! that a message from deep inside a 30-layer import still says where to look.

use crate::quants::GgmlType;
use std::fmt;
use std::path::{Path, PathBuf};

/// A GGUF read, write or (de)quantization failure. `file` and `tensor` are filled in by the layer
/// that knows them; `kind` says what is wrong.
#[derive(Debug)]
pub struct GgufError {
    /// The file being read or written, when there is one.
    pub file: Option<PathBuf>,
    /// The tensor concerned, when the failure is about one tensor.
    pub tensor: Option<String>,
    /// What is wrong.
    pub kind: GgufErrorKind,
}

/// What is wrong, without the file/tensor context.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GgufErrorKind {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("truncated: {what} at byte {offset} needs {needed} bytes, but only {available} remain")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("not a GGUF file: magic bytes are {found:02x?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("unsupported GGUF version {version} (supported: 2, 3){hint}")]
    UnsupportedVersion { version: u32, hint: &'static str },
    #[error("metadata key '{key}': unknown value type id {id}")]
    UnknownValueType { key: String, id: u32 },
    #[error("unknown ggml tensor type id {id}")]
    UnknownTensorType { id: u32 },
    #[error("{what} is not valid UTF-8")]
    InvalidUtf8 { what: String },
    #[error(
        "{what} claims {count} entries, but at most {max} can fit in the {available} bytes left"
    )]
    AbsurdCount {
        what: String,
        count: u64,
        max: u64,
        available: u64,
    },
    #[error("metadata key '{key}': arrays nested deeper than {max_depth} levels")]
    NestingTooDeep { key: String, max_depth: usize },
    #[error("duplicate metadata key '{key}'")]
    DuplicateKey { key: String },
    #[error("duplicate tensor name")]
    DuplicateTensor,
    #[error("tensor name is {len} bytes; GGUF (GGML_MAX_NAME) allows at most 63")]
    NameTooLong { len: usize },
    #[error("bad general.alignment: {detail}")]
    BadAlignment { detail: String },
    #[error("{n_dims} dimensions; ggml allows at most 4")]
    BadDimCount { n_dims: u64 },
    #[error("bad dimensions {dims:?}: {detail}")]
    BadDims {
        dims: Vec<u64>,
        detail: &'static str,
    },
    #[error("{what} {count} is not a multiple of the {ty} block size {block}")]
    NotBlockMultiple {
        what: &'static str,
        ty: GgmlType,
        count: u64,
        block: u64,
    },
    #[error(
        "data offset {offset} is not the expected {expected} (tensors must be packed in order, each padded to the alignment)"
    )]
    BadOffset { offset: u64, expected: u64 },
    #[error("tensor data [{start}, {end}) lies outside the file ({len} bytes)")]
    DataOutOfBounds { start: u64, end: u64, len: u64 },
    #[error("no metadata key '{key}'")]
    MissingKey { key: String },
    #[error("metadata key '{key}' has type {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
    #[error("no such tensor")]
    MissingTensor,
    #[error("{ty} cannot be {op} by this crate")]
    UnsupportedType { ty: GgmlType, op: &'static str },
    #[error("{what}: expected {expected}, got {got}")]
    LengthMismatch {
        what: &'static str,
        expected: u64,
        got: u64,
    },
}

impl GgufError {
    /// An error with no file or tensor context yet.
    pub fn new(kind: GgufErrorKind) -> Self {
        Self {
            file: None,
            tensor: None,
            kind,
        }
    }

    /// Names the file, unless a more specific one is already named.
    pub fn with_file(mut self, path: &Path) -> Self {
        if self.file.is_none() {
            self.file = Some(path.to_path_buf());
        }
        self
    }

    /// Names the tensor, unless one is already named.
    pub fn with_tensor(mut self, name: &str) -> Self {
        if self.tensor.is_none() {
            self.tensor = Some(name.to_string());
        }
        self
    }
}

impl From<GgufErrorKind> for GgufError {
    fn from(kind: GgufErrorKind) -> Self {
        Self::new(kind)
    }
}

impl fmt::Display for GgufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GGUF")?;
        if let Some(file) = &self.file {
            write!(f, " file {}", file.display())?;
        }
        if let Some(tensor) = &self.tensor {
            write!(f, ", tensor '{tensor}'")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for GgufError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            GgufErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Result alias for this crate's GGUF code.
pub type Result<T, E = GgufError> = std::result::Result<T, E>;
