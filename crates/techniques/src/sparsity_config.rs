//! The recipe's `[sparsity]` section: which modules get an N:M mask, and how it is trained.

use nibble_config::{KeyError, glob_match};
use serde::{Deserialize, Serialize};

use crate::any::AnyTechnique;
use crate::nm_ste::NmSte;

/// `none` (default) | `ste`: a magnitude N:M mask recomputed from the weights, dense
/// straight-through gradient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparsityMethod {
    #[default]
    None,
    Ste,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparsityConfig {
    pub method: SparsityMethod,
    /// `"N:M"`: N kept of every M consecutive inputs of a row. Default `"2:4"`.
    pub pattern: String,
    /// Globs over module names (`model.layers.*.mlp.*`, `lm_head`); default every block
    /// projection (`model.layers.*`), never lm_head unless named.
    pub modules: Vec<String>,
    /// Recompute the mask every this many optimizer steps (default 1).
    pub mask_interval: u64,
}

impl Default for SparsityConfig {
    fn default() -> Self {
        SparsityConfig {
            method: SparsityMethod::None,
            pattern: "2:4".into(),
            modules: vec!["model.layers.*".into()],
            mask_interval: 1,
        }
    }
}

/// `"N:M"` → (N, M).
fn parse_pattern(p: &str) -> Option<(usize, usize)> {
    let (n, m) = p.split_once(':')?;
    Some((n.trim().parse().ok()?, m.trim().parse().ok()?))
}

impl SparsityConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        match parse_pattern(&self.pattern) {
            Some((n, m)) if n >= 1 && n <= m => {}
            _ => {
                return Err(KeyError::new(
                    "pattern",
                    format!(
                        "`{}` is not an N:M pattern with 1 ≤ N ≤ M (e.g. \"2:4\")",
                        self.pattern
                    ),
                ));
            }
        }
        if let Some(i) = self.modules.iter().position(|g| g.is_empty()) {
            return Err(KeyError::new(format!("modules[{i}]"), "must not be empty"));
        }
        if self.mask_interval == 0 {
            return Err(KeyError::new("mask_interval", "must be at least 1"));
        }
        Ok(())
    }

    /// The sparsity technique of `module`, if the section selects it.
    pub fn technique_for(&self, module: &str) -> Option<AnyTechnique> {
        if self.method == SparsityMethod::None
            || !self.modules.iter().any(|g| glob_match(g, module))
        {
            return None;
        }
        let (n, m) = parse_pattern(&self.pattern)?;
        Some(AnyTechnique::NmSte(NmSte {
            n,
            m,
            interval: self.mask_interval,
        }))
    }
}
