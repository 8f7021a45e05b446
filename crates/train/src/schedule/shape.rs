//! The decay shape catalogue (spec §6.2): the LR multiplier as a function of the decay progress.

use serde::{Deserialize, Serialize};

/// How the multiplier falls from 1 to `min_ratio` over a decay phase. With progress `p` in [0, 1]
/// and `r = min_ratio`, every shape gives exactly 1 at `p = 0` and exactly `r` at `p = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecayShape {
    /// `r + (1 − r)(1 − p)`.
    Linear,
    /// `r + (1 − r)·½(1 + cos πp)`.
    Cosine,
    /// `r + (1 − r)(1 − √p)`: the best cooldown in Hägele et al., hence the default.
    #[default]
    #[serde(rename = "1-sqrt")]
    OneMinusSqrt,
    /// `r + (1 − r)(1 − p²)` ("1-square").
    Square,
    /// `r^p` (Hägele's code); needs `r > 0`. With `exp_half_life = H` it is instead MiniCPM's
    /// `max(r, 0.5^(τ/H))`, τ = steps since the decay began.
    Exp,
    /// `1 / ((1 − p) + p/r)`, i.e. 1/LR interpolates linearly (Lingua / Levanter `inv`); needs
    /// `r > 0`. Evaluated as `r / (r(1 − p) + p)`, which is the same for `r > 0` and exact at p = 1.
    InverseProportional,
}

impl DecayShape {
    /// The recipe spelling of the shape.
    pub fn name(self) -> &'static str {
        match self {
            Self::Linear => "linear",
            Self::Cosine => "cosine",
            Self::OneMinusSqrt => "1-sqrt",
            Self::Square => "square",
            Self::Exp => "exp",
            Self::InverseProportional => "inverse-proportional",
        }
    }

    /// Whether `min_ratio = 0` degenerates this shape (it would drop to 0 right after the first
    /// decay step, or divide 0 by 0 at p = 0), which validation rejects.
    pub(crate) fn needs_positive_min_ratio(self) -> bool {
        matches!(self, Self::Exp | Self::InverseProportional)
    }
}

/// A decay shape bound to its floor: evaluates the multiplier at `tau` steps into a decay of
/// `len` steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DecayCurve {
    pub shape: DecayShape,
    pub min_ratio: f64,
    /// MiniCPM half-life in steps; only with [`DecayShape::Exp`].
    pub half_life: Option<u64>,
}

impl DecayCurve {
    /// Multiplier at `tau` steps into a decay of `len > 0` steps; `tau = len` is the value the
    /// decay ends on.
    pub fn factor(&self, tau: u64, len: u64) -> f64 {
        debug_assert!(len > 0 && tau <= len);
        let r = self.min_ratio;
        let p = tau as f64 / len as f64;
        match self.shape {
            DecayShape::Linear => r + (1.0 - r) * (1.0 - p),
            DecayShape::Cosine => r + (1.0 - r) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos()),
            DecayShape::OneMinusSqrt => r + (1.0 - r) * (1.0 - p.sqrt()),
            DecayShape::Square => r + (1.0 - r) * (1.0 - p * p),
            DecayShape::Exp => match self.half_life {
                Some(h) => 0.5f64.powf(tau as f64 / h as f64).max(r),
                None => r.powf(p),
            },
            DecayShape::InverseProportional => r / (r * (1.0 - p) + p),
        }
    }

    /// Multiplier after a decay of `len` steps (1 when there is no decay).
    pub fn end(&self, len: u64) -> f64 {
        if len == 0 { 1.0 } else { self.factor(len, len) }
    }
}
