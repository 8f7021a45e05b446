//! The recipe's `[precision]` section and the `PrecisionPolicy` it builds: ordered rules
//! `module glob -> scheme` over HF-style module names, first match wins.
//!
//! Block projections (`model.layers.N.{self_attn,mlp}.*_proj`) take `default` unless a rule
//! matches; `lm_head` stays f32 unless a rule names it (NVIDIA and Quartet keep it high precision).

use std::collections::BTreeMap;
use std::sync::Arc;

use nibble_ops::{LinearScheme, preset};
use serde::{Deserialize, Serialize};

use nibble_config::KeyError;
pub use nibble_config::glob_match;
use nibble_ops::SchemeTable;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionConfig {
    /// Scheme of the transformer blocks' linear layers: a preset (`f32`, `bf16`, `fp8-current`,
    /// `mxfp8`, `fp8-block`, `quartet-mxfp4`, `nvfp4-te`, `naive-mxfp4`) or a name from
    /// `schemes`. Default `f32`.
    #[serde(default = "default_scheme")]
    pub default: String,
    /// Ordered overrides, first match wins.
    #[serde(default)]
    pub rules: Vec<PrecisionRule>,
    /// Named schemes built from a preset and knobs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub schemes: BTreeMap<String, SchemeTable>,
}

/// One override: exactly one selector (`match` glob over module names, or the first / last N
/// transformer blocks) and the scheme it assigns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionRule {
    /// Glob over module names (`*` any run, `?` one character): `model.layers.*.mlp.*`, `lm_head`.
    #[serde(rename = "match", default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The first N blocks (`model.layers.0` .. `N-1`), all their projections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_blocks: Option<usize>,
    /// The last N blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_blocks: Option<usize>,
    pub scheme: String,
}

fn default_scheme() -> String {
    "f32".into()
}

impl Default for PrecisionConfig {
    fn default() -> Self {
        Self {
            default: default_scheme(),
            rules: Vec::new(),
            schemes: BTreeMap::new(),
        }
    }
}

/// What a rule selects.
#[derive(Debug, Clone, PartialEq)]
pub enum Selector {
    Glob(String),
    FirstBlocks(usize),
    LastBlocks(usize),
}

impl Selector {
    /// Whether the rule selects `module` of a model with `n_layers` blocks (public so that the
    /// trainer can name the rule behind a layer's scheme, and rules that select nothing).
    pub fn matches(&self, module: &str, n_layers: usize) -> bool {
        let block = || {
            module
                .strip_prefix("model.layers.")
                .and_then(|r| r.split('.').next())
                .and_then(|i| i.parse::<usize>().ok())
        };
        match self {
            Selector::Glob(p) => glob_match(p, module),
            Selector::FirstBlocks(n) => block().is_some_and(|i| i < *n),
            Selector::LastBlocks(n) => block().is_some_and(|i| i + n >= n_layers),
        }
    }
}

impl PrecisionConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        self.policy().map(|_| ())
    }

    /// A scheme by name: a table of `schemes` or a preset.
    fn scheme(&self, name: &str, key: &str) -> Result<Arc<LinearScheme>, KeyError> {
        if let Some(t) = self.schemes.get(name) {
            return t
                .build(name)
                .map(Arc::new)
                .map_err(|e| e.within(&format!("schemes.{name}")));
        }
        preset(name).map(Arc::new).map_err(|m| {
            let own: Vec<&String> = self.schemes.keys().collect();
            let m = if own.is_empty() {
                m
            } else {
                format!("{m}; or one of this recipe's schemes: {own:?}")
            };
            KeyError::new(key, m)
        })
    }

    pub fn policy(&self) -> Result<PrecisionPolicy, KeyError> {
        for (name, t) in &self.schemes {
            if preset(name).is_ok() {
                return Err(KeyError::new(
                    format!("schemes.{name}"),
                    "a preset has this name; pick another",
                ));
            }
            t.build(name)
                .map_err(|e| e.within(&format!("schemes.{name}")))?;
        }
        let default = self.scheme(&self.default, "default")?;
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            let at = |k: &str| format!("rules[{i}].{k}");
            let sel = match (&r.pattern, r.first_blocks, r.last_blocks) {
                (Some(p), None, None) if p.is_empty() => {
                    return Err(KeyError::new(at("match"), "must not be empty"));
                }
                (Some(p), None, None) => Selector::Glob(p.clone()),
                (None, Some(n), None) => Selector::FirstBlocks(n),
                (None, None, Some(n)) => Selector::LastBlocks(n),
                _ => {
                    return Err(KeyError::new(
                        format!("rules[{i}]"),
                        "needs exactly one of `match`, `first_blocks`, `last_blocks`",
                    ));
                }
            };
            rules.push((sel, self.scheme(&r.scheme, &at("scheme"))?));
        }
        Ok(PrecisionPolicy { default, rules })
    }
}

/// Resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionPolicy {
    pub default: Arc<LinearScheme>,
    pub rules: Vec<(Selector, Arc<LinearScheme>)>,
}

impl PrecisionPolicy {
    pub fn uniform(s: LinearScheme) -> Self {
        Self {
            default: Arc::new(s),
            rules: Vec::new(),
        }
    }

    /// Scheme of the linear layer `module` (e.g. `model.layers.3.mlp.down_proj`) in a model of
    /// `n_layers` blocks. Embeddings, norms and attention are never linear layers here; `lm_head`
    /// stays f32 unless a rule names it (NVIDIA and Quartet keep it high precision).
    pub fn scheme_for(&self, module: &str, n_layers: usize) -> Arc<LinearScheme> {
        for (sel, s) in &self.rules {
            if sel.matches(module, n_layers) {
                return s.clone();
            }
        }
        if module == "lm_head" {
            Arc::new(LinearScheme::identity("f32"))
        } else {
            self.default.clone()
        }
    }
}
