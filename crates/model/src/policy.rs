//! The recipe's `[precision]` section and the `PrecisionPolicy` it builds: ordered rules
//! `module glob -> scheme` over HF-style module names, first match wins.
//!
//! Block projections (`model.layers.N.{self_attn,mlp}.*_proj`) take `default` unless a rule
//! matches; `lm_head` stays f32 unless a rule names it (NVIDIA and Quartet keep it high precision).

use serde::{Deserialize, Serialize};

use crate::error::KeyError;
use crate::scheme::LinearScheme;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionConfig {
    /// Scheme of the transformer blocks' linear layers. Default `f32`.
    #[serde(default = "default_scheme")]
    pub default: String,
    /// Ordered overrides.
    #[serde(default)]
    pub rules: Vec<PrecisionRule>,
}

/// `match` is a glob over module names (`*` matches any run of characters, `?` one character).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrecisionRule {
    #[serde(rename = "match")]
    pub pattern: String,
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
        }
    }
}

impl PrecisionConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        self.policy().map(|_| ())
    }

    pub fn policy(&self) -> Result<PrecisionPolicy, KeyError> {
        let default = LinearScheme::parse_key(&self.default, "default")?;
        let mut rules = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            if r.pattern.is_empty() {
                return Err(KeyError::new(
                    format!("rules[{i}].match"),
                    "must not be empty",
                ));
            }
            rules.push((
                r.pattern.clone(),
                LinearScheme::parse_key(&r.scheme, &format!("rules[{i}].scheme"))?,
            ));
        }
        Ok(PrecisionPolicy { default, rules })
    }
}

/// Resolved policy.
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionPolicy {
    pub default: LinearScheme,
    pub rules: Vec<(String, LinearScheme)>,
}

impl PrecisionPolicy {
    pub fn uniform(s: LinearScheme) -> Self {
        Self {
            default: s,
            rules: Vec::new(),
        }
    }

    /// Scheme of the linear layer `module` (e.g. `model.layers.3.mlp.down_proj`).
    pub fn scheme_for(&self, module: &str) -> LinearScheme {
        for (p, s) in &self.rules {
            if glob_match(p, module) {
                return *s;
            }
        }
        if module == "lm_head" {
            LinearScheme::F32
        } else {
            self.default
        }
    }
}

/// Glob with `*` (any run, possibly empty) and `?` (one char). Iterative, linear-time backtracking.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(
            "model.layers.*.mlp.*",
            "model.layers.11.mlp.down_proj"
        ));
        assert!(!glob_match(
            "model.layers.*.mlp.*",
            "model.layers.11.self_attn.q_proj"
        ));
        assert!(glob_match("*q_proj", "model.layers.0.self_attn.q_proj"));
        assert!(glob_match("model.layers.?.*", "model.layers.3.mlp.up_proj"));
        assert!(!glob_match(
            "model.layers.?.*",
            "model.layers.13.mlp.up_proj"
        ));
        assert!(glob_match("lm_head", "lm_head"));
        assert!(!glob_match("lm_head", "lm_head2"));
    }
}
