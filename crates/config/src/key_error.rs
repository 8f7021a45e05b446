/// A problem with one key, reported by a section's validation. `key` is a path relative to the
/// section that found it (`lr`, `rules[2].scheme`); each enclosing level adds its prefix with
/// [`KeyError::within`] until the recipe root (`optim.lr`), which the loader maps to a position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {message}")]
pub struct KeyError {
    pub key: String,
    pub message: String,
}

impl KeyError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }

    /// Puts the key under `prefix`: a section reports `lr`, the recipe reports `optim.lr`;
    /// `[2].scheme` under `precision.rules` becomes `precision.rules[2].scheme`.
    pub fn within(self, prefix: &str) -> Self {
        let key = if self.key.is_empty() {
            prefix.to_owned()
        } else if prefix.is_empty() || self.key.starts_with('[') {
            format!("{prefix}{}", self.key)
        } else {
            format!("{prefix}.{}", self.key)
        };
        KeyError { key, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_prefixes_keys_and_indices() {
        assert_eq!(KeyError::new("lr", "m").within("optim").key, "optim.lr");
        let rule = KeyError::new("[2].scheme", "m")
            .within("rules")
            .within("precision");
        assert_eq!(rule.key, "precision.rules[2].scheme");
        assert_eq!(KeyError::new("", "m").within("eval").key, "eval");
        assert_eq!(KeyError::new("lr", "m").within("").key, "lr");
        assert_eq!(
            KeyError::new("lr", "must be > 0").to_string(),
            "lr: must be > 0"
        );
    }
}
