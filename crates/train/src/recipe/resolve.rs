//! A fully resolved recipe (includes merged, `--set` applied) and the mapping of serde and
//! validation errors back to the file, line and key they came from.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml_edit::Document;

use super::error::{KeyError, Location, RecipeError};
use super::include::{Includer, ReadFile};
use super::keypath::{KeyPath, Seg};
use super::overrides::{apply_override, parse_override};
use super::position::path_at;
use super::source::Source;
use super::tree::{Node, Table};

/// A recipe after includes and overrides, before deserialization.
pub struct ResolvedRecipe {
    sources: Vec<Source>,
    tree: Table,
    text: String,
}

/// A deserialized, validated recipe with the exact TOML it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<T> {
    pub value: T,
    /// The merged recipe as TOML (no `include`, overrides applied, canonical formatting): save it
    /// in the run directory and hash it; loading it again gives the same value.
    pub merged_toml: String,
    /// Every file read, the root recipe first.
    pub files: Vec<PathBuf>,
}

impl ResolvedRecipe {
    /// Resolves the recipe `path` whose text is `text`; includes are read with `read`.
    pub fn resolve(
        path: &Path,
        text: String,
        overrides: &[String],
        read: ReadFile<'_>,
    ) -> Result<Self, RecipeError> {
        let mut includer = Includer::new(read);
        let mut tree = includer.load_root(path, text)?;
        let mut sources = includer.sources;
        for arg in overrides {
            let (keys, value) = parse_override(arg)?;
            let id = sources.len();
            sources.push(Source::Override { arg: arg.clone() });
            apply_override(&mut tree, &keys, &value, id, arg)?;
        }
        let text = tree.to_document().to_string();
        Ok(ResolvedRecipe {
            sources,
            tree,
            text,
        })
    }

    /// The merged recipe as TOML text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Every file read, the root recipe first.
    pub fn files(&self) -> Vec<PathBuf> {
        let files = self.sources.iter().filter_map(|s| match s {
            Source::File { path, .. } => Some(path.clone()),
            Source::Override { .. } => None,
        });
        files.collect()
    }

    /// Where `key` (e.g. `optim.lr`, `precision.rules[2].scheme`) was set: the key in the file or
    /// `--set` argument that gave its final value; for an absent key, the header of its deepest
    /// existing table; for an unparsable path, the start of the root recipe.
    pub fn locate(&self, key: &str) -> Location {
        match KeyPath::parse(key) {
            Some(path) => self.locate_path(&path),
            None => self.sources[0].location(None),
        }
    }

    fn locate_path(&self, path: &KeyPath) -> Location {
        let mut table = &self.tree;
        for seg in &path.0 {
            let Seg::Key(name) = seg else { break };
            match table.get(name) {
                Some(Node::Table(t)) => table = t,
                Some(Node::Leaf { origin, .. }) => return self.sources[*origin].locate(path),
                None => break,
            }
        }
        // The table holds the key or would have: show it in the last file that wrote to it.
        let origins = &table.origins;
        let file = origins.iter().rev().find(|&&id| self.sources[id].is_file());
        let id = file.or(origins.last()).copied().unwrap_or(0);
        self.sources[id].locate(path)
    }

    /// A validation error found after loading (by the trainer's checks), located like one of
    /// `parse`'s own.
    pub fn locate_error(&self, e: KeyError) -> RecipeError {
        RecipeError::InvalidValue {
            at: self.locate(&e.key),
            key: e.key,
            message: e.message,
        }
    }

    /// Deserializes the merged text, then runs `validate`; every error is located.
    pub fn parse<T: DeserializeOwned>(
        &self,
        validate: impl Fn(&T) -> Result<(), KeyError>,
    ) -> Result<Loaded<T>, RecipeError> {
        let value: T = toml::from_str(&self.text).map_err(|e| self.serde_error(&e))?;
        validate(&value).map_err(|e| self.locate_error(e))?;
        Ok(Loaded {
            value,
            merged_toml: self.text.clone(),
            files: self.files(),
        })
    }

    fn serde_error(&self, err: &toml::de::Error) -> RecipeError {
        let path = match (err.span(), Document::parse(self.text.as_str())) {
            (Some(span), Ok(doc)) => path_at(doc.as_table(), span.start),
            _ => KeyPath::default(),
        };
        let message = err.message().trim();
        let names = backticked(message);
        if message.starts_with("unknown field `") && !names.is_empty() {
            let name = names[0].clone();
            let mut key = path.clone();
            if path.last_key() != Some(name.as_str()) {
                key.push_key(&name);
            }
            return RecipeError::UnknownKey {
                at: self.locate_path(&key),
                table: key.parent().to_string(),
                name,
                expected: names[1..].to_vec(),
            };
        }
        if message.starts_with("missing field `") && !names.is_empty() {
            let mut key = path;
            key.push_key(&names[0]);
            return RecipeError::InvalidValue {
                at: self.locate_path(&key),
                key: key.to_string(),
                message: "required key is missing".to_owned(),
            };
        }
        let at = self.locate_path(&path);
        let key = if path.0.is_empty() {
            "(top level)".to_owned()
        } else {
            path.to_string()
        };
        match message.strip_prefix("invalid type: ") {
            Some(rest) => {
                let message = match rest.rfind(", expected ") {
                    Some(i) => format!("expected {}, found {}", &rest[i + 11..], &rest[..i]),
                    None => rest.to_owned(),
                };
                RecipeError::WrongType { at, key, message }
            }
            None => RecipeError::InvalidValue {
                at,
                key,
                message: message.to_owned(),
            },
        }
    }
}

/// The `backticked` names in a serde message, in order.
fn backticked(message: &str) -> Vec<String> {
    message
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::backticked;

    #[test]
    fn backticked_names_in_serde_messages() {
        let m = "unknown field `lrr`, expected one of `lr`, `beta1`, `req`";
        assert_eq!(backticked(m), ["lrr", "lr", "beta1", "req"]);
        assert_eq!(backticked("unknown field `x`, there are no fields"), ["x"]);
        assert!(backticked("no names").is_empty());
    }
}
