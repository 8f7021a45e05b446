//! Optimizer groups: `[[optim.groups]]` entries select parameters by glob over their names and
//! set their learning rate (a multiplier of the scheduled lr, or an absolute peak lr that the
//! schedule scales the same way), weight decay, or freeze them. A parameter belongs to the first
//! entry that matches it; the rest fall into `techniques` (the techniques' own parameters, no
//! weight decay) or `default` (matrices decay, norms and embeddings do not).

use std::collections::{BTreeMap, BTreeSet};

use nibble_config::{KeyError, glob_match};
use nibble_model::params::{ParamKind, kind_of};
use serde::{Deserialize, Serialize};

/// One `[[optim.groups]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Glob over parameter names (`model.layers.*.mlp.*`, `*.weight_scale`, `model.norm.weight`).
    #[serde(rename = "match")]
    pub pattern: String,
    /// Name in logs and checkpoints; default `groups[i]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Learning rate = this × the scheduled lr.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_mult: Option<f64>,
    /// Absolute peak learning rate (scaled by the schedule like `optim.lr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// Decoupled weight decay for every parameter of the group (default: the kind rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_decay: Option<f64>,
    /// No gradient, no update, no optimizer state: the parameters stay bit for bit.
    #[serde(default)]
    pub frozen: bool,
}

/// A resolved group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    pub name: String,
    pub lr_mult: Option<f64>,
    pub lr: Option<f64>,
    pub weight_decay: Option<f64>,
    pub frozen: bool,
    pub params: Vec<String>,
}

/// Every parameter's group.
#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    pub groups: Vec<ParamGroup>,
    of: BTreeMap<String, usize>,
    base_decay: f64,
}

pub const DEFAULT_GROUP: &str = "default";
pub const TECHNIQUES_GROUP: &str = "techniques";

fn finite_nonneg(v: f64) -> bool {
    v.is_finite() && v >= 0.0
}

impl GroupConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if self.pattern.is_empty() {
            return Err(KeyError::new("match", "must not be empty"));
        }
        if let Some(n) = &self.name
            && (n.is_empty() || n == DEFAULT_GROUP || n == TECHNIQUES_GROUP)
        {
            return Err(KeyError::new(
                "name",
                format!("`{n}` is reserved or empty; pick another name"),
            ));
        }
        match (self.lr_mult, self.lr) {
            (Some(_), Some(_)) => {
                return Err(KeyError::new(
                    "lr",
                    "set either `lr` (absolute) or `lr_mult`, not both",
                ));
            }
            (Some(m), None) if !finite_nonneg(m) => {
                return Err(KeyError::new(
                    "lr_mult",
                    format!("must be finite and >= 0 (got {m})"),
                ));
            }
            (None, Some(l)) if !(l.is_finite() && l > 0.0) => {
                return Err(KeyError::new(
                    "lr",
                    format!("must be finite and > 0 (got {l})"),
                ));
            }
            _ => {}
        }
        if let Some(w) = self.weight_decay
            && !finite_nonneg(w)
        {
            return Err(KeyError::new(
                "weight_decay",
                format!("must be finite and >= 0 (got {w})"),
            ));
        }
        // The update uses them in f32.
        for (k, v) in [
            ("lr_mult", self.lr_mult),
            ("lr", self.lr),
            ("weight_decay", self.weight_decay),
        ] {
            if let Some(v) = v {
                nibble_config::f32_value(k, v)?;
            }
        }
        Ok(())
    }
}

impl Groups {
    /// Assigns `params` (every trainable name) to groups; `technique_params` are the techniques'
    /// own. An entry that matches nothing is an error (a typo would silently train everything).
    pub fn resolve(
        cfg: &[GroupConfig],
        base_decay: f64,
        params: &[String],
        technique_params: &BTreeSet<String>,
    ) -> Result<Groups, KeyError> {
        let mut groups: Vec<ParamGroup> = cfg
            .iter()
            .enumerate()
            .map(|(i, g)| ParamGroup {
                name: g.name.clone().unwrap_or_else(|| format!("groups[{i}]")),
                lr_mult: g.lr_mult,
                lr: g.lr,
                weight_decay: g.weight_decay,
                frozen: g.frozen,
                params: Vec::new(),
            })
            .collect();
        let mut seen = BTreeSet::new();
        for g in &groups {
            if !seen.insert(g.name.clone()) {
                return Err(KeyError::new(
                    "groups",
                    format!("two groups are named `{}`", g.name),
                ));
            }
        }
        let implicit = |name: &str, wd: Option<f64>| ParamGroup {
            name: name.into(),
            lr_mult: None,
            lr: None,
            weight_decay: wd,
            frozen: false,
            params: Vec::new(),
        };
        let (tech, default) = (groups.len(), groups.len() + 1);
        groups.push(implicit(TECHNIQUES_GROUP, Some(0.0)));
        groups.push(implicit(DEFAULT_GROUP, None));
        let mut of = BTreeMap::new();
        for p in params {
            let g = cfg
                .iter()
                .position(|c| glob_match(&c.pattern, p))
                .unwrap_or(if technique_params.contains(p) {
                    tech
                } else {
                    default
                });
            groups[g].params.push(p.clone());
            of.insert(p.clone(), g);
        }
        if let Some(i) = (0..cfg.len()).find(|&i| groups[i].params.is_empty()) {
            return Err(KeyError::new(
                format!("groups[{i}].match"),
                format!(
                    "`{}` matches no parameter (or only ones an earlier group took)",
                    cfg[i].pattern
                ),
            ));
        }
        Ok(Groups {
            groups,
            of,
            base_decay,
        })
    }

    fn group(&self, param: &str) -> &ParamGroup {
        &self.groups[*self.of.get(param).expect("parameter has a group")]
    }

    pub fn is_frozen(&self, param: &str) -> bool {
        self.of.get(param).is_some_and(|&g| self.groups[g].frozen)
    }

    /// Learning rate of `param` when the schedule gives `lr` for the base `peak`.
    pub fn lr_of(&self, param: &str, lr: f64, peak: f64) -> f64 {
        let g = self.group(param);
        match (g.lr, g.lr_mult) {
            (Some(abs), _) => abs * (lr / peak),
            (None, Some(m)) => lr * m,
            (None, None) => lr,
        }
    }

    /// Weight decay of `param`: the group's, else none for norms and embeddings.
    pub fn decay_of(&self, param: &str) -> f64 {
        match self.group(param).weight_decay {
            Some(w) => w,
            None => match kind_of(param) {
                ParamKind::Matrix => self.base_decay,
                ParamKind::Norm | ParamKind::Embedding => 0.0,
            },
        }
    }

    /// The non-empty groups with their settings and parameters (stored in checkpoints).
    pub fn saved(&self) -> Vec<ParamGroup> {
        self.groups
            .iter()
            .filter(|g| !g.params.is_empty())
            .cloned()
            .collect()
    }

    /// Group name → parameter names, the non-empty groups only.
    pub fn membership(&self) -> BTreeMap<String, Vec<String>> {
        membership(&self.saved())
    }

    /// The first difference between a checkpoint's grouping and this one, if any.
    pub fn diff(&self, saved: &[ParamGroup]) -> Option<String> {
        let saved = membership(saved);
        let now = self.membership();
        let index = |m: &BTreeMap<String, Vec<String>>| -> BTreeMap<String, String> {
            m.iter()
                .flat_map(|(g, ps)| ps.iter().map(move |p| (p.clone(), g.clone())))
                .collect()
        };
        let (was, is) = (index(&saved), index(&now));
        for (p, g) in &is {
            match was.get(p) {
                Some(w) if w == g => {}
                Some(w) => {
                    return Some(format!(
                        "parameter `{p}` was in optimizer group `{w}` when the checkpoint was \
                         saved; the recipe now puts it in `{g}`"
                    ));
                }
                None => return Some(format!("parameter `{p}` is not in the checkpoint's groups")),
            }
        }
        was.keys()
            .find(|p| !is.contains_key(*p))
            .map(|p| format!("the checkpoint's parameter `{p}` is in no group now"))
    }
}

fn membership(groups: &[ParamGroup]) -> BTreeMap<String, Vec<String>> {
    groups
        .iter()
        .map(|g| (g.name.clone(), g.params.clone()))
        .collect()
}
