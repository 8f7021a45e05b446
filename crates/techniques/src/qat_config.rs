//! The recipe's `[qat]` section: which modules get a weight quantizer, and which one: `lsq` (a
//! learned step size on a signed integer grid) or `ggml` (exactly a GGUF serving grid, exported
//! losslessly by `nibble export --format gguf-<ggml_type>`).

use nibble_config::{KeyError, glob_match};
use serde::{Deserialize, Serialize};

use crate::any::AnyTechnique;
use crate::ggml_grid::GgmlGrid;
use crate::lsq::Lsq;
use nibble_modelfiles::quants::GgmlType;

/// `none` (default) | `lsq` | `ggml`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QatMethod {
    #[default]
    None,
    Lsq,
    Ggml,
}

/// `ggml_type`: the GGUF block type a `ggml` grid trains on (the `--format gguf-<type>` that
/// exports it losslessly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GgmlGridType {
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4_0")]
    Q4_0,
    #[serde(rename = "tq2_0")]
    Tq2_0,
    #[serde(rename = "mxfp4")]
    Mxfp4,
}

impl GgmlGridType {
    pub fn ggml_type(self) -> GgmlType {
        match self {
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4_0 => GgmlType::Q4_0,
            Self::Tq2_0 => GgmlType::TQ2_0,
            Self::Mxfp4 => GgmlType::MXFP4,
        }
    }
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
    /// LSQ: signed integer bits, 2..=8. Default 4. Not read by `ggml` (the type fixes the grid).
    pub bits: u32,
    /// LSQ only (`ggml` grids have one scale per block of the type).
    pub granularity: Granularity,
    /// LSQ's gradient scale 1/√(N·Q_P) on the step size (default true); LSQ only.
    pub grad_scale: bool,
    /// `ggml` only, and required by it: `q4_0` | `q8_0` | `tq2_0` | `mxfp4`. The selected
    /// modules' input dimension must be a multiple of the type's block size (32; 256 for TQ2_0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ggml_type: Option<GgmlGridType>,
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
            ggml_type: None,
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
        match (self.method, self.ggml_type) {
            (QatMethod::Ggml, None) => {
                return Err(KeyError::new(
                    "ggml_type",
                    "method = \"ggml\" needs ggml_type = \"q4_0\" | \"q8_0\" | \"tq2_0\" | \"mxfp4\"",
                ));
            }
            (QatMethod::None | QatMethod::Lsq, Some(_)) => {
                return Err(KeyError::new(
                    "ggml_type",
                    "applies only to method = \"ggml\"",
                ));
            }
            _ => {}
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
        Some(match self.method {
            QatMethod::Ggml => AnyTechnique::GgmlGrid(GgmlGrid {
                ty: self
                    .ggml_type
                    .expect("validated: method = ggml has a ggml_type")
                    .ggml_type(),
            }),
            _ => AnyTechnique::Lsq(Lsq {
                bits: self.bits,
                per_channel: self.granularity == Granularity::Channel,
                grad_scale: self.grad_scale,
            }),
        })
    }
}
