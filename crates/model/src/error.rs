//! Errors that name the recipe key they come from.

/// A bad configuration value: `key` is relative to its recipe section (e.g. "n_heads").
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl KeyError {
    /// Puts the key under `prefix` (`preset` within `schemes.q` is `schemes.q.preset`).
    pub fn within(self, prefix: &str) -> Self {
        let key = if self.key.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.key)
        };
        Self { key, ..self }
    }
}
