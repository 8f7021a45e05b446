//! The recipe's `[qat]` section: which modules get a learnable weight quantizer.

use nibble_config::{KeyError, glob_match};
use serde::{Deserialize, Serialize};

use crate::any::AnyTechnique;
use crate::lsq::Lsq;

/// `none` (default) | `lsq`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QatMethod {
    #[default]
    None,
    Lsq,
}

/// `tensor` | `channel` (default): how many weights share one step size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Tensor,
    #[default]
    Channel,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QatConfig {
    pub method: QatMethod,
    /// Signed integer bits, 2..=8. Default 4.
    pub bits: u32,
    pub granularity: Granularity,
    /// LSQ's gradient scale 1/√(N·Q_P) on the step size (default true).
    pub grad_scale: bool,
    /// Globs over module names; default every block projection (`model.layers.*`).
    pub modules: Vec<String>,
}

impl Default for QatConfig {
    fn default() -> Self {
        QatConfig {
            method: QatMethod::None,
            bits: 4,
            granularity: Granularity::Channel,
            grad_scale: true,
            modules: vec!["model.layers.*".into()],
        }
    }
}

impl QatConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        if !(2..=8).contains(&self.bits) {
            return Err(KeyError::new(
                "bits",
                format!("must be 2..=8 (got {})", self.bits),
            ));
        }
        if let Some(i) = self.modules.iter().position(|g| g.is_empty()) {
            return Err(KeyError::new(format!("modules[{i}]"), "must not be empty"));
        }
        Ok(())
    }

    /// The QAT technique of `module`, if the section selects it.
    pub fn technique_for(&self, module: &str) -> Option<AnyTechnique> {
        if self.method == QatMethod::None || !self.modules.iter().any(|g| glob_match(g, module)) {
            return None;
        }
        Some(AnyTechnique::Lsq(Lsq {
            bits: self.bits,
            per_channel: self.granularity == Granularity::Channel,
            grad_scale: self.grad_scale,
        }))
    }
}
