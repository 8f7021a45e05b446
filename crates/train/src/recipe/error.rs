//! Recipe errors. Every error says where the offending text is (file:line:column, or the `--set`
//! argument) and which key, so a user can fix a recipe without guessing.

use std::fmt;
use std::path::PathBuf;

/// Where a recipe value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A position in a recipe file; line and column are 1-based, the column counts characters.
    File {
        path: PathBuf,
        line: usize,
        column: usize,
    },
    /// A `--set` command-line override, as the user typed it.
    Override { arg: String },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { path, line, column } => {
                write!(f, "{}:{line}:{column}", path.display())
            }
            Location::Override { arg } => write!(f, "--set {arg}"),
        }
    }
}

pub use nibble_config::KeyError;

/// Why a recipe could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RecipeError {
    /// The recipe file itself could not be read (missing, unreadable).
    #[error("{}: cannot read recipe: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A file named by `include` could not be read; `at` is the include entry.
    #[error("{at}: include: cannot read `{}`: {source}", path.display())]
    IncludeRead {
        at: Location,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The text is not valid TOML.
    #[error("{at}: TOML syntax error: {message}")]
    Syntax { at: Location, message: String },
    /// A key that the section does not define (serde `deny_unknown_fields`).
    #[error(
        "{at}: unknown key `{name}` {}; {}",
        in_table(table),
        expected_list(expected)
    )]
    UnknownKey {
        at: Location,
        /// Path of the table holding the key (empty at the top level).
        table: String,
        name: String,
        /// The keys that table accepts.
        expected: Vec<String>,
    },
    /// A value of the wrong TOML type, e.g. a string where a float belongs.
    #[error("{at}: {key}: wrong type: {message}")]
    WrongType {
        at: Location,
        key: String,
        message: String,
    },
    /// A value of the right type that is not allowed (validation, unknown enum variant, ...).
    #[error("{at}: {key}: {message}")]
    InvalidValue {
        at: Location,
        key: String,
        message: String,
    },
    /// Files that include each other; `chain` starts and ends with the same file.
    #[error("{at}: include cycle: {}", chain_text(chain))]
    IncludeCycle { at: Location, chain: Vec<PathBuf> },
    /// An `include` entry that is not a path string or a list of them, or nests too deep.
    #[error("{at}: include: {message}")]
    BadInclude { at: Location, message: String },
    /// A `--set` argument that cannot be applied (syntax, or a path through a non-table).
    #[error("--set {arg}: {message}")]
    BadOverride { arg: String, message: String },
}

impl RecipeError {
    /// Where the error points, when it points somewhere more precise than a whole file.
    pub fn location(&self) -> Option<Location> {
        match self {
            RecipeError::Read { .. } => None,
            RecipeError::BadOverride { arg, .. } => Some(Location::Override { arg: arg.clone() }),
            RecipeError::IncludeRead { at, .. }
            | RecipeError::Syntax { at, .. }
            | RecipeError::UnknownKey { at, .. }
            | RecipeError::WrongType { at, .. }
            | RecipeError::InvalidValue { at, .. }
            | RecipeError::IncludeCycle { at, .. }
            | RecipeError::BadInclude { at, .. } => Some(at.clone()),
        }
    }

    /// The full key path the error is about, where there is one.
    pub fn key(&self) -> Option<String> {
        match self {
            RecipeError::UnknownKey { table, name, .. } => Some(if table.is_empty() {
                name.clone()
            } else {
                format!("{table}.{name}")
            }),
            RecipeError::WrongType { key, .. } | RecipeError::InvalidValue { key, .. } => {
                Some(key.clone())
            }
            RecipeError::IncludeRead { .. }
            | RecipeError::IncludeCycle { .. }
            | RecipeError::BadInclude { .. } => Some("include".to_owned()),
            _ => None,
        }
    }
}

fn in_table(table: &str) -> String {
    if table.is_empty() {
        "at the top level".to_owned()
    } else {
        format!("in [{table}]")
    }
}

fn expected_list(expected: &[String]) -> String {
    if expected.is_empty() {
        "this table takes no keys".to_owned()
    } else {
        format!("expected one of: {}", expected.join(", "))
    }
}

fn chain_text(chain: &[PathBuf]) -> String {
    let parts: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
    parts.join(" -> ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_place_and_key() {
        let at = Location::File {
            path: PathBuf::from("recipes/x.toml"),
            line: 12,
            column: 1,
        };
        let e = RecipeError::InvalidValue {
            at: at.clone(),
            key: "optim.lr".into(),
            message: "must be > 0 (got -0.1)".into(),
        };
        assert_eq!(
            e.to_string(),
            "recipes/x.toml:12:1: optim.lr: must be > 0 (got -0.1)"
        );
        let u = RecipeError::UnknownKey {
            at: Location::Override {
                arg: "optim.lrr=1".into(),
            },
            table: "optim".into(),
            name: "lrr".into(),
            expected: vec!["lr".into(), "beta1".into()],
        };
        assert_eq!(
            u.to_string(),
            "--set optim.lrr=1: unknown key `lrr` in [optim]; expected one of: lr, beta1"
        );
        assert_eq!(u.key().as_deref(), Some("optim.lrr"));
    }
}
