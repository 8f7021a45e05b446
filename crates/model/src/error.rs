//! Errors that name the recipe key they come from: the one key-error type of every section.

pub use nibble_config::KeyError;
