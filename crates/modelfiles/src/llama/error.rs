//! The error of the model import/export layer: which file, which tensor or metadata/config key,
//! and what is wrong, so a failure in a 30-layer import points at the exact place.

use crate::error::GgufError;
use std::fmt;
use std::path::{Path, PathBuf};

/// An import or export failure. `Display` reads
/// `<file>: tensor '<name>': key '<key>': <message>` (absent parts left out).
#[derive(Debug)]
pub struct ModelFileError {
    /// The file (or directory) being read or written.
    pub file: Option<PathBuf>,
    /// The tensor concerned, when there is one.
    pub tensor: Option<String>,
    /// The metadata (GGUF) or JSON (config.json, index) key concerned, when there is one.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl ModelFileError {
    /// An error with only a message; add context with the `with_*` methods.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            file: None,
            tensor: None,
            key: None,
            message: message.into(),
            source: None,
        }
    }

    /// An I/O failure of `what` (e.g. "read", "create directory") on `path`.
    pub fn io(what: &str, path: &Path, e: std::io::Error) -> Self {
        Self {
            message: format!("cannot {what}: {e}"),
            source: Some(Box::new(e)),
            ..Self::new("")
        }
        .with_file(path)
    }

    /// Names the file, unless one is already named.
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

    /// Names the key, unless one is already named.
    pub fn with_key(mut self, key: &str) -> Self {
        if self.key.is_none() {
            self.key = Some(key.to_string());
        }
        self
    }
}

impl From<GgufError> for ModelFileError {
    fn from(e: GgufError) -> Self {
        Self {
            file: e.file.clone(),
            tensor: e.tensor.clone(),
            key: None,
            message: format!("GGUF: {}", e.kind),
            source: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for ModelFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        if let Some(tensor) = &self.tensor {
            write!(f, "tensor '{tensor}': ")?;
        }
        if let Some(key) = &self.key {
            write!(f, "key '{key}': ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ModelFileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
