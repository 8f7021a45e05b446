use serde::{Deserialize, Serialize};

use super::groups::GroupConfig;
use crate::recipe::KeyError;

/// `[optim]`: AdamW hyperparameters. Weight decay applies to matrices only; norms and embeddings
/// (and a tied lm_head, which is the embedding) are never decayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// Peak learning rate (the schedule scales it). Default 3e-3.
    pub lr: f64,
    /// Default 0.9.
    pub beta1: f64,
    /// Default 0.95.
    pub beta2: f64,
    /// Default 1e-8.
    pub eps: f64,
    /// Decoupled weight decay (AdamW), default 0.1.
    pub weight_decay: f64,
    /// Clip the global gradient norm to this value; 0 disables. Default 1.0.
    pub grad_clip: f64,
    /// `[[optim.groups]]`: per-group lr / weight decay / frozen, first match wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupConfig>,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            weight_decay: 0.1,
            grad_clip: 1.0,
            groups: Vec::new(),
        }
    }
}

impl OptimConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        let err = |k: &str, m: String| Err(KeyError::new(k, m));
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return err("lr", format!("must be finite and > 0 (got {})", self.lr));
        }
        // The update runs in f32: a value that overflows or flushes to 0 there is refused.
        nibble_config::f32_values([
            ("lr", self.lr),
            ("eps", self.eps),
            ("weight_decay", self.weight_decay),
        ])?;
        for (k, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return err(k, format!("must be in [0, 1) (got {b})"));
            }
        }
        if self.eps.is_nan() || self.eps <= 0.0 {
            return err("eps", format!("must be > 0 (got {})", self.eps));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return err(
                "weight_decay",
                format!("must be finite and >= 0 (got {})", self.weight_decay),
            );
        }
        if !(self.grad_clip >= 0.0 && self.grad_clip.is_finite()) {
            return err(
                "grad_clip",
                format!(
                    "must be finite and >= 0, 0 disables (got {})",
                    self.grad_clip
                ),
            );
        }
        for (i, g) in self.groups.iter().enumerate() {
            g.validate()
                .map_err(|e| e.within(&format!("groups[{i}]")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values finite in f64 but not in f32 (where AdamW runs) are refused by key.
    #[test]
    fn values_outside_f32_are_refused() {
        for (k, set) in [
            (
                "lr",
                (|c: &mut OptimConfig| c.lr = 1e300) as fn(&mut OptimConfig),
            ),
            ("lr", |c| c.lr = 1e-60),
            ("eps", |c| c.eps = 1e-50),
            ("weight_decay", |c| c.weight_decay = 1e40),
        ] {
            let mut c = OptimConfig::default();
            set(&mut c);
            assert_eq!(c.validate().unwrap_err().key, k);
        }
        OptimConfig::default().validate().unwrap();
    }
}
