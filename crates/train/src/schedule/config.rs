//! The recipe's `[schedule]` section and its validation.
//!
//! One flat struct with a `kind`: the TOML stays flat (`kind = "wsd"` next to its knobs) and every
//! key keeps its own line for error reporting. Keys that only some kinds read are `Option`s, so a
//! key that the chosen kind would silently ignore is rejected instead.

use serde::{Deserialize, Serialize};

use super::cycles::wsd_s_cycles;
use super::shape::DecayShape;
use nibble_config::KeyError;

/// Default `decay_fraction` when neither `decay_steps` nor `decay_fraction` is set: Hägele et al.
/// find gains plateau near a 20% cooldown.
pub const DEFAULT_DECAY_FRACTION: f64 = 0.2;

/// Which schedule family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScheduleKind {
    /// Optional linear warmup, then the peak LR until the end.
    #[default]
    Constant,
    /// Linear warmup, then a cosine from the peak to `min_ratio · peak` over all remaining steps.
    Cosine,
    /// Warmup-stable-decay: linear warmup, the peak, then a decay of `decay_steps` (or
    /// `decay_fraction · total_steps`) steps ending exactly at the end of the run.
    Wsd,
    /// WSD-S (Wen et al.): one run, one warmup-stable-decay cycle per budget, each decay ending
    /// exactly at its budget, where the trainer writes a checkpoint; the next cycle continues from
    /// the decayed weights at the peak (after an optional re-warmup).
    WsdS,
}

impl ScheduleKind {
    /// The recipe spelling of the kind.
    pub fn name(self) -> &'static str {
        match self {
            Self::Constant => "constant",
            Self::Cosine => "cosine",
            Self::Wsd => "wsd",
            Self::WsdS => "wsd-s",
        }
    }
}

/// What a WSD-S `decay_fraction` is a fraction of (spec §6.1: reference codes differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecayFractionOf {
    /// `D_k = round(decay_fraction · B_k)`: a fraction of the budget, i.e. of all steps since step 0
    /// (Lingua, which cites the WSD-S paper).
    #[default]
    Budget,
    /// `D_k = round(decay_fraction · (B_k − B_{k−1}))`: a fraction of the cycle (Levanter, OLMo-core).
    Cycle,
}

/// The `[schedule]` section. The peak LR is `[optim] lr`; this section only shapes it.
///
/// Every key has a default, so an absent section is a constant LR without warmup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `constant | cosine | wsd | wsd-s`. Default `constant`.
    pub kind: ScheduleKind,
    /// Linear warmup length in steps, absolute (never a fraction: a fraction would move when a run
    /// is extended). Applies to the first cycle only. Default 0 (start at the peak).
    pub warmup_steps: u64,
    /// Multiplier at step 0 of the warmup, in [0, 1]; the warmup is
    /// `warmup_init + (1 − warmup_init)·t/warmup_steps`. Default 0.0 (MiniCPM/HF: step 0 runs at
    /// LR 0; Hägele's code uses 0.01).
    pub warmup_init: f64,
    /// `wsd` only: decay length in steps, ending at the last step. Exclusive with
    /// `decay_fraction`. Default: unset (then `decay_fraction` applies).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_steps: Option<u64>,
    /// `wsd`, `wsd-s`: decay length as a fraction in [0, 1) of `total_steps` (`wsd`) or of the
    /// budget or cycle (`wsd-s`, see `decay_fraction_of`), rounded to the nearest step.
    /// Default 0.2.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_fraction: Option<f64>,
    /// `wsd`, `wsd-s`: `linear | cosine | 1-sqrt | square | exp | inverse-proportional`.
    /// Default `1-sqrt` (the spec warns against defaulting to a cosine cooldown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_shape: Option<DecayShape>,
    /// `decay_shape = "exp"` only: MiniCPM half-life in steps; the multiplier is then
    /// `max(min_ratio, 0.5^(τ/exp_half_life))` and need not reach `min_ratio`. Default: unset
    /// (`min_ratio^p`, which needs `min_ratio > 0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp_half_life: Option<u64>,
    /// `cosine`, `wsd`, `wsd-s`: final multiplier in [0, 1] (LR = `min_ratio · peak` at the end of
    /// each decay). Default 0.0. `exp` and `inverse-proportional` need it > 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_ratio: Option<f64>,
    /// `wsd-s` only (required): budgets in steps, strictly increasing; the last must equal the
    /// run's total steps. A checkpoint is due after each.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Vec<u64>>,
    /// `wsd-s` only: `budget | cycle`, what `decay_fraction` is a fraction of. Default `budget`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decay_fraction_of: Option<DecayFractionOf>,
    /// `wsd-s` only: re-warmup steps at the start of every cycle after the first, rising linearly
    /// from the previous decay's final multiplier to the peak. Default 0 (jump back to the peak).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rewarmup_steps: Option<u64>,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            warmup_steps: 0,
            warmup_init: 0.0,
            decay_steps: None,
            decay_fraction: None,
            decay_shape: None,
            exp_half_life: None,
            min_ratio: None,
            budgets: None,
            decay_fraction_of: None,
            rewarmup_steps: None,
        }
    }
}

impl ScheduleConfig {
    /// `min_ratio` with its default.
    pub fn min_ratio(&self) -> f64 {
        self.min_ratio.unwrap_or(0.0)
    }

    /// `decay_fraction` with its default.
    pub fn decay_fraction(&self) -> f64 {
        self.decay_fraction.unwrap_or(DEFAULT_DECAY_FRACTION)
    }

    /// `decay_shape` with its default.
    pub fn decay_shape(&self) -> DecayShape {
        self.decay_shape.unwrap_or_default()
    }

    /// `decay_fraction_of` with its default.
    pub fn decay_fraction_of(&self) -> DecayFractionOf {
        self.decay_fraction_of.unwrap_or_default()
    }

    /// `rewarmup_steps` with its default.
    pub fn rewarmup_steps(&self) -> u64 {
        self.rewarmup_steps.unwrap_or(0)
    }

    /// Checks the section on its own (the run length is checked by
    /// [`Schedule::new`](super::Schedule::new)). The error names the offending key.
    pub fn validate(&self) -> Result<(), KeyError> {
        self.check_keys_apply()?;
        unit_interval("warmup_init", self.warmup_init)?;
        if let Some(r) = self.min_ratio {
            unit_interval("min_ratio", r)?;
        }
        if let Some(f) = self.decay_fraction {
            if self.decay_steps.is_some() {
                return Err(KeyError::new(
                    "decay_fraction",
                    "set either decay_steps or decay_fraction, not both",
                ));
            }
            if !(0.0..1.0).contains(&f) {
                return Err(KeyError::new(
                    "decay_fraction",
                    format!("must be in [0, 1), got {f}"),
                ));
            }
        }
        self.check_shape()?;
        if self.kind == ScheduleKind::WsdS {
            wsd_s_cycles(self)?;
        }
        Ok(())
    }

    /// Rejects keys that the chosen kind would ignore: a silently ignored key is a misconfiguration.
    fn check_keys_apply(&self) -> Result<(), KeyError> {
        use ScheduleKind::*;
        let k = self.kind;
        let decays = matches!(k, Wsd | WsdS);
        let rules: [(&str, bool, bool, &str); 8] = [
            ("decay_steps", self.decay_steps.is_some(), k == Wsd, "wsd"),
            (
                "decay_fraction",
                self.decay_fraction.is_some(),
                decays,
                "wsd, wsd-s",
            ),
            (
                "decay_shape",
                self.decay_shape.is_some(),
                decays,
                "wsd, wsd-s",
            ),
            (
                "exp_half_life",
                self.exp_half_life.is_some(),
                decays,
                "wsd, wsd-s",
            ),
            (
                "min_ratio",
                self.min_ratio.is_some(),
                k != Constant,
                "cosine, wsd, wsd-s",
            ),
            ("budgets", self.budgets.is_some(), k == WsdS, "wsd-s"),
            (
                "decay_fraction_of",
                self.decay_fraction_of.is_some(),
                k == WsdS,
                "wsd-s",
            ),
            (
                "rewarmup_steps",
                self.rewarmup_steps.is_some(),
                k == WsdS,
                "wsd-s",
            ),
        ];
        for (key, set, applies, used_by) in rules {
            if set && !applies {
                return Err(KeyError::new(
                    key,
                    format!("not used by kind = \"{}\" (only by {used_by})", k.name()),
                ));
            }
        }
        if k == WsdS && self.budgets.is_none() {
            return Err(KeyError::new(
                "budgets",
                "kind = \"wsd-s\" needs budgets, e.g. [2500, 5000, 10000]",
            ));
        }
        Ok(())
    }

    fn check_shape(&self) -> Result<(), KeyError> {
        let shape = self.decay_shape();
        if let Some(h) = self.exp_half_life {
            if shape != DecayShape::Exp {
                return Err(KeyError::new(
                    "exp_half_life",
                    format!(
                        "only used with decay_shape = \"exp\", not \"{}\"",
                        shape.name()
                    ),
                ));
            }
            if h == 0 {
                return Err(KeyError::new("exp_half_life", "must be at least 1 step"));
            }
        }
        let r_form = shape != DecayShape::Exp || self.exp_half_life.is_none();
        let decays = matches!(self.kind, ScheduleKind::Wsd | ScheduleKind::WsdS);
        if decays && r_form && shape.needs_positive_min_ratio() && self.min_ratio() <= 0.0 {
            let fix = if shape == DecayShape::Exp {
                " (e.g. 0.01), or set exp_half_life"
            } else {
                " (e.g. 0.01)"
            };
            return Err(KeyError::new(
                "min_ratio",
                format!(
                    "decay_shape = \"{}\" needs min_ratio > 0{fix}: with 0 the LR drops to 0 right \
                     after the first decay step",
                    shape.name()
                ),
            ));
        }
        Ok(())
    }
}

fn unit_interval(key: &str, v: f64) -> Result<(), KeyError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(KeyError::new(key, format!("must be in [0, 1], got {v}")))
    }
}
