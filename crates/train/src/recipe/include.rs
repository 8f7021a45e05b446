//! `include = "base.toml"` (or a list): included files merge first, in order, and the including
//! file overrides them key by key. Paths are relative to the including file.

use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use toml_edit::{Document, Item, Value};

use super::error::{Location, RecipeError};
use super::source::{Source, file_location};
use super::tree::Table;

/// Reads a recipe file; tests pass an in-memory map instead of the file system.
pub type ReadFile<'a> = &'a dyn Fn(&Path) -> io::Result<String>;

/// Backstop for cycles that path comparison cannot see (e.g. through symlinks on a reader that
/// does not canonicalize).
const MAX_DEPTH: usize = 32;

const INCLUDE: &str = "include";

pub(crate) struct Includer<'a> {
    read: ReadFile<'a>,
    pub sources: Vec<Source>,
    /// The files being loaded, outermost first: (identity for comparison, path as shown).
    stack: Vec<(PathBuf, PathBuf)>,
}

impl<'a> Includer<'a> {
    pub fn new(read: ReadFile<'a>) -> Self {
        Includer {
            read,
            sources: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// Loads the root recipe (its text already read) and, recursively, everything it includes.
    pub fn load_root(&mut self, path: &Path, text: String) -> Result<Table, RecipeError> {
        self.stack.push((identity(path), path.to_owned()));
        let table = self.load(path, text);
        self.stack.pop();
        table
    }

    fn load(&mut self, path: &Path, text: String) -> Result<Table, RecipeError> {
        let doc = Document::parse(text.clone()).map_err(|e| RecipeError::Syntax {
            at: file_location(path.to_owned(), &text, e.span()),
            message: e.message().trim().to_owned(),
        })?;
        let id = self.sources.len();
        let includes = include_list(&doc);
        let own = Table::from_edit(doc.as_table(), id, &[INCLUDE]);
        self.sources.push(Source::File {
            path: path.to_owned(),
            doc: Box::new(doc),
        });
        let mut merged = Table::default();
        for entry in includes {
            let (rel, span) = entry.map_err(|(message, span)| RecipeError::BadInclude {
                at: self.sources[id].location(span),
                message,
            })?;
            let at = self.sources[id].location(span);
            let child = path.parent().unwrap_or(Path::new("")).join(rel);
            merged.merge(self.load_child(child, at)?);
        }
        merged.merge(own);
        Ok(merged)
    }

    fn load_child(&mut self, child: PathBuf, at: Location) -> Result<Table, RecipeError> {
        let key = identity(&child);
        if let Some(first) = self.stack.iter().position(|(k, _)| *k == key) {
            let mut chain: Vec<PathBuf> =
                self.stack[first..].iter().map(|(_, p)| p.clone()).collect();
            chain.push(child);
            return Err(RecipeError::IncludeCycle { at, chain });
        }
        if self.stack.len() >= MAX_DEPTH {
            let message = format!("includes nest deeper than {MAX_DEPTH} files");
            return Err(RecipeError::BadInclude { at, message });
        }
        let text = (self.read)(&child).map_err(|source| RecipeError::IncludeRead {
            at,
            path: child.clone(),
            source,
        })?;
        self.stack.push((key, child.clone()));
        let table = self.load(&child, text);
        self.stack.pop();
        table
    }
}

type IncludeEntry = Result<(String, Option<Range<usize>>), (String, Option<Range<usize>>)>;

/// The top-level `include` entries with their spans, or what is wrong with each.
fn include_list(doc: &Document<String>) -> Vec<IncludeEntry> {
    let Some((key, item)) = doc.as_table().get_key_value(INCLUDE) else {
        return Vec::new();
    };
    let expected = "expected a path string or a list of path strings";
    match item {
        Item::Value(Value::Array(list)) => list.iter().map(include_path).collect(),
        Item::Value(v @ Value::String(_)) => vec![include_path(v)],
        Item::Value(v) => vec![Err((
            format!("{expected}, found {}", v.type_name()),
            v.span(),
        ))],
        _ => vec![Err((expected.to_owned(), key.span()))],
    }
}

fn include_path(value: &Value) -> IncludeEntry {
    match value.as_str() {
        Some("") => Err(("empty path".to_owned(), value.span())),
        Some(p) => Ok((p.to_owned(), value.span())),
        None => {
            let message = format!("expected a path string, found {}", value.type_name());
            Err((message, value.span()))
        }
    }
}

/// What makes two include paths the same file: the canonical path when the file exists on
/// disk, otherwise the absolute path with `.` and `..` resolved lexically.
fn identity(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let absolute = std::env::current_dir().map_or_else(|_| path.to_owned(), |cwd| cwd.join(path));
    let mut out = PathBuf::new();
    for part in absolute.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
