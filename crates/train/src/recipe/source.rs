//! The places recipe text comes from: files (kept parsed with spans, for error positions) and
//! `--set` arguments.

use std::ops::Range;
use std::path::PathBuf;

use toml_edit::Document;

use super::error::Location;
use super::keypath::KeyPath;
use super::position::{line_col, locate};

pub(crate) enum Source {
    File {
        path: PathBuf,
        doc: Box<Document<String>>,
    },
    Override {
        arg: String,
    },
}

impl Source {
    pub fn is_file(&self) -> bool {
        matches!(self, Source::File { .. })
    }

    /// The location of a byte span (its start) in this source; 1:1 without a span.
    pub fn location(&self, span: Option<Range<usize>>) -> Location {
        match self {
            Source::File { path, doc } => file_location(path.clone(), doc.raw(), span),
            Source::Override { arg } => Location::Override { arg: arg.clone() },
        }
    }

    /// The location of `path` (or of its deepest existing table) in this source.
    pub fn locate(&self, path: &KeyPath) -> Location {
        match self {
            Source::File { doc, .. } => self.location(locate(doc.as_table(), path)),
            Source::Override { .. } => self.location(None),
        }
    }
}

pub(crate) fn file_location(path: PathBuf, text: &str, span: Option<Range<usize>>) -> Location {
    let (line, column) = line_col(text, span.map_or(0, |s| s.start));
    Location::File { path, line, column }
}
