//! The recipe's `[sparsity]` section: which modules get an N:M mask, and how it is trained:
//! `ste` (dense straight-through), `sr-ste` (plus the sparse-refined decay of pruned weights),
//! `mdgf` (pruned weights fade out with β(t)) or `sdgf` (the pattern tightened in frames), the
//! last two Progressive Gradient Flow's. `[[sparsity.rules]]` give modules their own pattern or
//! dimension (e.g. attention 2:4, FFN 1:8).

use nibble_config::{KeyError, glob_match};
use serde::{Deserialize, Serialize};

use crate::any::AnyTechnique;
use crate::mdgf::{DecayShape, Mdgf};
use crate::nm_ste::{NmDim, NmSte, SparsePhases};
use crate::sdgf::{Sdgf, SdgfType};
use crate::sr_ste::SrSte;

/// `none` (default) | `ste`: a magnitude N:M mask recomputed from the weights, dense
/// straight-through gradient | `sr-ste`: the same plus `λ_W·(1 − m)⊙W` in the gradient |
/// `mdgf`: pruned weights kept at β(t) decaying to 0, dense gradient | `sdgf`: a binary mask
/// whose pattern tightens frame by frame to the target.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparsityMethod {
    #[default]
    None,
    Ste,
    #[serde(rename = "sr-ste")]
    SrSte,
    Mdgf,
    Sdgf,
}

/// `[[sparsity.rules]]`: modules (selected by this rule even if `modules` does not name them)
/// with their own pattern or dimension. The first rule that matches a module decides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SparsityRule {
    pub modules: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimension: Option<NmDim>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SparsityConfig {
    pub method: SparsityMethod,
    /// `"N:M"`: N kept of every M consecutive weights (1 ≤ N < M). Default `"2:4"`.
    pub pattern: String,
    /// `input` (default: groups along a row, the GEMM's K) | `output` (along a column).
    pub dimension: NmDim,
    /// Globs over module names (`model.layers.*.mlp.*`, `lm_head`); default every block
    /// projection (`model.layers.*`), never lm_head unless named.
    pub modules: Vec<String>,
    /// Per-glob patterns and dimensions, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<SparsityRule>,
    /// Recompute the mask every this many optimizer steps (default 1).
    pub mask_interval: u64,
    /// `sr-ste` only: λ_W (default 2e-4, the reference's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda_w: Option<f64>,
    /// `mdgf` only: `exp` (default) or `linear` decay of β.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay: Option<DecayShape>,
    /// `mdgf` only: α of β(t) = exp(−α·t) or max(1 − α·t, 0) (default 2e-4, the reference's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_coef: Option<f64>,
    /// `mdgf` only, instead of `decay_coef`: the step by which β is about 0 (α = 5/X for exp,
    /// β(X) = e⁻⁵ ≈ 0.0067; α = 1/X for linear, β(X) = 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub beta_zero_at: Option<u64>,
    /// `sdgf` only: `stepwise` (default) | `geometric` | `densify` | `custom`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sdgf_type: Option<SdgfType>,
    /// `sdgf_type = "custom"` only: the frames' patterns, the last one `pattern`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sdgf_patterns: Vec<String>,
    /// Share of the run's updates at the start trained dense (the mask does not act). Default 0.
    pub dense_fraction: f64,
    /// Share of the run's updates at the end with a hard mask: frozen, pruned weights set to 0
    /// after every update. Default 0.
    pub finetune_fraction: f64,
}

impl Default for SparsityConfig {
    fn default() -> Self {
        SparsityConfig {
            method: SparsityMethod::None,
            pattern: "2:4".into(),
            dimension: NmDim::Input,
            modules: vec!["model.layers.*".into()],
            rules: Vec::new(),
            mask_interval: 1,
            lambda_w: None,
            decay: None,
            decay_coef: None,
            beta_zero_at: None,
            sdgf_type: None,
            sdgf_patterns: Vec::new(),
            dense_fraction: 0.0,
            finetune_fraction: 0.0,
        }
    }
}

/// `"N:M"` → (N, M).
fn parse_pattern(p: &str) -> Option<(usize, usize)> {
    let (n, m) = p.split_once(':')?;
    Some((n.trim().parse().ok()?, m.trim().parse().ok()?))
}

/// A valid sparse pattern (1 ≤ N < M) or the error for `key`.
fn pattern(key: &str, p: &str) -> Result<(usize, usize), KeyError> {
    match parse_pattern(p) {
        Some((n, m)) if n >= 1 && n < m => Ok((n, m)),
        _ => Err(KeyError::new(
            key,
            format!("`{p}` is not a sparse N:M pattern with 1 ≤ N < M (e.g. \"2:4\")"),
        )),
    }
}

fn globs(key: &str, g: &[String]) -> Result<(), KeyError> {
    if let Some(i) = g.iter().position(|g| g.is_empty()) {
        return Err(KeyError::new(format!("{key}[{i}]"), "must not be empty"));
    }
    Ok(())
}

impl SparsityConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        pattern("pattern", &self.pattern)?;
        globs("modules", &self.modules)?;
        for (i, r) in self.rules.iter().enumerate() {
            if r.modules.is_empty() {
                return Err(KeyError::new(
                    format!("rules[{i}].modules"),
                    "a rule needs at least one module glob",
                ));
            }
            globs(&format!("rules[{i}].modules"), &r.modules)?;
            if let Some(p) = &r.pattern {
                pattern(&format!("rules[{i}].pattern"), p)?;
            }
        }
        self.validate_sdgf()?;
        if self.mask_interval == 0 {
            return Err(KeyError::new("mask_interval", "must be at least 1"));
        }
        let only = |key: &str, set: bool, method: SparsityMethod, name: &str| {
            if set && self.method != method {
                return Err(KeyError::new(
                    key,
                    format!("applies only to method = \"{name}\""),
                ));
            }
            Ok(())
        };
        only(
            "lambda_w",
            self.lambda_w.is_some(),
            SparsityMethod::SrSte,
            "sr-ste",
        )?;
        only("decay", self.decay.is_some(), SparsityMethod::Mdgf, "mdgf")?;
        only(
            "decay_coef",
            self.decay_coef.is_some(),
            SparsityMethod::Mdgf,
            "mdgf",
        )?;
        only(
            "beta_zero_at",
            self.beta_zero_at.is_some(),
            SparsityMethod::Mdgf,
            "mdgf",
        )?;
        only(
            "sdgf_type",
            self.sdgf_type.is_some(),
            SparsityMethod::Sdgf,
            "sdgf",
        )?;
        for (key, v) in [("lambda_w", self.lambda_w), ("decay_coef", self.decay_coef)] {
            if let Some(v) = v
                && !(v.is_finite() && v >= 0.0)
            {
                return Err(KeyError::new(
                    key,
                    format!("must be finite and ≥ 0 (got {v})"),
                ));
            }
        }
        for (key, v) in [
            ("dense_fraction", self.dense_fraction),
            ("finetune_fraction", self.finetune_fraction),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(KeyError::new(key, format!("must be in [0, 1) (got {v})")));
            }
        }
        if self.dense_fraction + self.finetune_fraction >= 1.0 {
            return Err(KeyError::new(
                "finetune_fraction",
                "dense_fraction + finetune_fraction must leave a sparse phase (sum < 1)",
            ));
        }
        match (self.decay_coef, self.beta_zero_at) {
            (Some(_), Some(_)) => Err(KeyError::new(
                "beta_zero_at",
                "set either decay_coef or beta_zero_at, not both",
            )),
            (_, Some(0)) => Err(KeyError::new("beta_zero_at", "must be at least 1")),
            _ => Ok(()),
        }
    }

    /// `sdgf_patterns`: only with `sdgf_type = "custom"`, which needs them, valid patterns
    /// ending at `pattern`; rules cannot change the pattern of a custom list.
    fn validate_sdgf(&self) -> Result<(), KeyError> {
        let custom = self.sdgf_type == Some(SdgfType::Custom);
        if !custom {
            return match self.sdgf_patterns.is_empty() {
                true => Ok(()),
                false => Err(KeyError::new(
                    "sdgf_patterns",
                    "applies only to sdgf_type = \"custom\"",
                )),
            };
        }
        if self.sdgf_patterns.is_empty() {
            return Err(KeyError::new(
                "sdgf_patterns",
                "sdgf_type = \"custom\" needs the frames' patterns (e.g. [\"3:4\", \"2:4\"])",
            ));
        }
        for (i, p) in self.sdgf_patterns.iter().enumerate() {
            pattern(&format!("sdgf_patterns[{i}]"), p)?;
        }
        let last = self.sdgf_patterns.len() - 1;
        if parse_pattern(&self.sdgf_patterns[last]) != parse_pattern(&self.pattern) {
            return Err(KeyError::new(
                format!("sdgf_patterns[{last}]"),
                format!(
                    "the last frame must be the target pattern `{}`",
                    self.pattern
                ),
            ));
        }
        if let Some(i) = self.rules.iter().position(|r| r.pattern.is_some()) {
            return Err(KeyError::new(
                format!("rules[{i}].pattern"),
                "a custom SDGF list fixes every layer's frames: a rule cannot change the pattern",
            ));
        }
        Ok(())
    }

    /// The phases of a run of `steps` updates: dense for the first round(dense_fraction·steps),
    /// hard for the last round(finetune_fraction·steps).
    pub fn phases(&self, steps: u64) -> SparsePhases {
        let n = |f: f64| (f * steps as f64).round() as u64;
        SparsePhases {
            end: steps,
            dense_until: n(self.dense_fraction),
            hard_from: match n(self.finetune_fraction) {
                0 => u64::MAX,
                h => steps - h,
            },
        }
    }

    /// MDGF's α: `decay_coef`, or from `beta_zero_at`, or the reference's 2e-4.
    pub fn mdgf_coef(&self) -> f64 {
        let shape = self.decay.unwrap_or_default();
        match (self.decay_coef, self.beta_zero_at) {
            (Some(a), _) => a,
            (None, Some(x)) => match shape {
                DecayShape::Exp => 5.0 / x as f64,
                DecayShape::Linear => 1.0 / x as f64,
            },
            (None, None) => 2e-4,
        }
    }

    /// The first rule that selects `module`.
    pub fn rule_for(&self, module: &str) -> Option<usize> {
        self.rules
            .iter()
            .position(|r| r.modules.iter().any(|g| glob_match(g, module)))
    }

    /// The sparsity technique of `module`, if the section or a rule selects it.
    pub fn technique_for(&self, module: &str) -> Option<AnyTechnique> {
        if self.method == SparsityMethod::None {
            return None;
        }
        let rule = self.rule_for(module).map(|i| &self.rules[i]);
        if rule.is_none() && !self.modules.iter().any(|g| glob_match(g, module)) {
            return None;
        }
        let pattern = rule
            .and_then(|r| r.pattern.as_ref())
            .unwrap_or(&self.pattern);
        let (n, m) = parse_pattern(pattern)?;
        let mask = NmSte {
            n,
            m,
            dim: rule.and_then(|r| r.dimension).unwrap_or(self.dimension),
            interval: self.mask_interval,
            phases: Default::default(),
        };
        Some(match self.method {
            SparsityMethod::SrSte => AnyTechnique::SrSte(SrSte {
                mask,
                lambda: self.lambda_w.unwrap_or(2e-4),
            }),
            SparsityMethod::Mdgf => AnyTechnique::Mdgf(Mdgf {
                mask,
                shape: self.decay.unwrap_or_default(),
                coef: self.mdgf_coef(),
            }),
            SparsityMethod::Sdgf => {
                let custom: Vec<_> = self
                    .sdgf_patterns
                    .iter()
                    .filter_map(|p| parse_pattern(p))
                    .collect();
                let kind = self.sdgf_type.clone().unwrap_or_default();
                AnyTechnique::Sdgf(Sdgf {
                    frames: kind.frames((n, m), &custom),
                    mask,
                })
            }
            _ => AnyTechnique::NmSte(mask),
        })
    }
}
