//! Recipe loading for any serde type: TOML files with `include`, `--set` overrides, and errors
//! that name the file, line, column and key of the offending text.
//!
//! Order of precedence, lowest first: included files (in list order, each after its own
//! includes), the including file, then `--set` arguments in command-line order. Tables merge key
//! by key; any other value, arrays included, is replaced whole.

mod error;
mod include;
mod keypath;
mod overrides;
mod position;
mod resolve;
mod source;
mod tree;

use std::path::Path;

use serde::de::DeserializeOwned;

pub use error::{KeyError, Location, RecipeError};
pub use include::ReadFile;
pub use resolve::{Loaded, ResolvedRecipe};

/// Loads the recipe file `path`, applies `overrides` (`section.key=value`), deserializes `T` and
/// runs `validate`, whose [`KeyError`] is located in the file (or `--set`) that set the key.
pub fn load_recipe<T: DeserializeOwned>(
    path: &Path,
    overrides: &[String],
    validate: impl Fn(&T) -> Result<(), KeyError>,
) -> Result<Loaded<T>, RecipeError> {
    load_recipe_with(
        path,
        &|p: &Path| std::fs::read_to_string(p),
        overrides,
        validate,
    )
}

/// Like [`load_recipe`] for recipe text already in memory; `name` is the path shown in errors
/// and the base for relative includes, which are read from disk.
pub fn load_recipe_str<T: DeserializeOwned>(
    name: &Path,
    text: &str,
    overrides: &[String],
    validate: impl Fn(&T) -> Result<(), KeyError>,
) -> Result<Loaded<T>, RecipeError> {
    let read = |p: &Path| std::fs::read_to_string(p);
    ResolvedRecipe::resolve(name, text.to_owned(), overrides, &read)?.parse(validate)
}

/// Like [`load_recipe`], reading every file (the root included) through `read`.
pub fn load_recipe_with<T: DeserializeOwned>(
    path: &Path,
    read: ReadFile<'_>,
    overrides: &[String],
    validate: impl Fn(&T) -> Result<(), KeyError>,
) -> Result<Loaded<T>, RecipeError> {
    let text = read(path).map_err(|source| RecipeError::Read {
        path: path.to_owned(),
        source,
    })?;
    ResolvedRecipe::resolve(path, text, overrides, read)?.parse(validate)
}

/// The recipe file `path` with its includes and `overrides`, not yet deserialized: keep it to
/// locate errors that later checks (the trainer's) find with [`ResolvedRecipe::locate_error`].
pub fn resolve_recipe(path: &Path, overrides: &[String]) -> Result<ResolvedRecipe, RecipeError> {
    let read = |p: &Path| std::fs::read_to_string(p);
    let text = read(path).map_err(|source| RecipeError::Read {
        path: path.to_owned(),
        source,
    })?;
    ResolvedRecipe::resolve(path, text, overrides, &read)
}
