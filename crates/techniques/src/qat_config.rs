//! The recipe's `[qat]` section: which modules get a weight quantizer, and which one: `lsq` (a
//! learned step size on a signed integer grid), `ggml` (exactly a GGUF serving grid, exported
//! losslessly by `nibble export --format gguf-<ggml_type>`), `ct` (exactly a compressed-tensors
//! grid, exported losslessly by `--format ct-<ct_scheme>`), `efficientqat` (EfficientQAT's
//! learned affine grid: a step and zero point per group), `seq` / `seq_ternary` (ParetoQ's
//! stretched elastic grids, 2-bit and ternary), or a ternary grid: `absmean`
//! (BitNet b1.58's), `twn`, `tequila` (absmean with the deadzone bias).

use nibble_config::{KeyError, glob_match};
use serde::{Deserialize, Serialize};

use crate::absmean::Absmean;
use crate::affine::Affine;
use crate::any::AnyTechnique;
use crate::ct_grid::CtGrid;
use crate::ggml_grid::GgmlGrid;
use crate::lsq::Lsq;
use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;
use crate::seq::Seq;
use crate::tequila::Tequila;
use crate::twn::Twn;
use nibble_modelfiles::ct::CtScheme;
use nibble_modelfiles::quants::GgmlType;

/// `none` (default) | `lsq` | `ggml` | `ct` | `efficientqat` | `seq` | `seq_ternary` |
/// `absmean` | `twn` | `tequila`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QatMethod {
    #[default]
    None,
    Lsq,
    Ggml,
    Ct,
    Efficientqat,
    Seq,
    SeqTernary,
    Absmean,
    Twn,
    Tequila,
}

impl QatMethod {
    fn ternary(self) -> bool {
        matches!(self, Self::Absmean | Self::Twn | Self::Tequila)
    }

    /// Takes `granularity = "group"`.
    fn grouped(self) -> bool {
        self.ternary() || matches!(self, Self::Efficientqat | Self::Lsq)
    }
}

/// `ct_scheme`: the compressed-tensors grid a `ct` method trains on (the `--format ct-<scheme>`
/// that exports it losslessly).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CtGridScheme {
    #[serde(rename = "w4a16")]
    W4a16,
    #[serde(rename = "w4a16_asym")]
    W4a16Asym,
    #[serde(rename = "fp8")]
    Fp8,
}

impl CtGridScheme {
    /// The scheme with `group` inputs per W4A16 scale.
    pub fn scheme(self, group: usize) -> CtScheme {
        match self {
            Self::W4a16 => CtScheme::W4a16 {
                group,
                symmetric: true,
            },
            Self::W4a16Asym => CtScheme::W4a16 {
                group,
                symmetric: false,
            },
            Self::Fp8 => CtScheme::Fp8,
        }
    }
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

/// `start`: the first update the quantizer acts in: a step (default 0), or `"decay"`, the
/// first update of the LR decay (QAT fused with the cooldown, as compute-optimal QAT suggests).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum QatStart {
    Step(u64),
    Named(StartPoint),
}

impl Default for QatStart {
    fn default() -> Self {
        QatStart::Step(0)
    }
}

impl QatStart {
    fn is_zero(&self) -> bool {
        *self == QatStart::Step(0)
    }
}

/// Named start points.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPoint {
    Decay,
}

/// `tensor` | `channel` (default) | `group` (`group_size` inputs of a row; ternary methods):
/// how many weights share one step size or scale.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Tensor,
    #[default]
    Channel,
    Group,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QatConfig {
    pub method: QatMethod,
    /// LSQ (signed) and efficientqat (unsigned codes) integer bits, 2..=8. Default 4. Not read
    /// by `ggml` (the type fixes the grid).
    pub bits: u32,
    /// LSQ (tensor, channel) and the ternary methods (tensor, channel, group); `ggml` grids have
    /// one scale per block of the type. The references: BitNet b1.58 and TWN per tensor,
    /// AngelSlim's absmean and Tequila per group of 128.
    pub granularity: Granularity,
    /// LSQ's gradient scale 1/√(N·Q_P) on the step size (default true); LSQ only.
    pub grad_scale: bool,
    /// `ggml` only, and required by it: `q4_0` | `q8_0` | `tq2_0` | `mxfp4`. The selected
    /// modules' input dimension must be a multiple of the type's block size (32; 256 for TQ2_0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ggml_type: Option<GgmlGridType>,
    /// `ct` only, and required by it: `w4a16` | `w4a16_asym` | `fp8`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ct_scheme: Option<CtGridScheme>,
    /// `ct` W4A16: inputs per scale (a multiple of 8; vLLM's kernels take 32, 64, 128). Default
    /// 128. Also the group `nibble export --format ct-w4a16` uses for this run, and the group of
    /// the ternary methods' `granularity = "group"`.
    pub group_size: usize,
    /// `tequila` only: λ of the deadzone bias (default 1e-3, the release's `--eps`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lambda: Option<f64>,
    /// `tequila` only: λ is a learnable parameter per output channel, initialized to `lambda`
    /// (the paper's differentiable reactivation; not in the released code). Default false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub lambda_learnable: bool,
    /// The first update the quantizer acts in (before it, the layer computes with the master
    /// weight): a step or `"decay"`. Learnable quantizer parameters keep their step-0 init until
    /// then (they get no gradient).
    #[serde(skip_serializing_if = "QatStart::is_zero")]
    pub start: QatStart,
    /// `f32` (default) | `f16` | `bf16`: the precision the grid's scales (LSQ and EfficientQAT
    /// steps, the ternary α) are used in; `f16` makes a grid GGUF-exact, `bf16`
    /// compressed-tensors-exact (`nibble export` then writes the trained codes and scales).
    #[serde(skip_serializing_if = "ScaleDtype::is_f32")]
    pub scale_dtype: ScaleDtype,
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
            ct_scheme: None,
            group_size: 128,
            lambda: None,
            lambda_learnable: false,
            start: QatStart::default(),
            scale_dtype: ScaleDtype::F32,
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
            (m, Some(_)) if m != QatMethod::Ggml => {
                return Err(KeyError::new(
                    "ggml_type",
                    "applies only to method = \"ggml\"",
                ));
            }
            _ => {}
        }
        match (self.method, self.ct_scheme) {
            (QatMethod::Ct, None) => {
                return Err(KeyError::new(
                    "ct_scheme",
                    "method = \"ct\" needs ct_scheme = \"w4a16\" | \"w4a16_asym\" | \"fp8\"",
                ));
            }
            (QatMethod::Ct, Some(_)) => {}
            (_, Some(_)) => {
                return Err(KeyError::new(
                    "ct_scheme",
                    "applies only to method = \"ct\"",
                ));
            }
            _ => {}
        }
        if self.group_size == 0 || !self.group_size.is_multiple_of(8) {
            return Err(KeyError::new(
                "group_size",
                format!("must be a positive multiple of 8 (got {})", self.group_size),
            ));
        }
        if self.granularity == Granularity::Group && !self.method.grouped() {
            return Err(KeyError::new(
                "granularity",
                "\"group\" applies to lsq, efficientqat and the ternary methods (absmean, \
                 twn, tequila)",
            ));
        }
        if self.method == QatMethod::Efficientqat && self.granularity == Granularity::Tensor {
            return Err(KeyError::new(
                "granularity",
                "efficientqat takes \"group\" (group_size inputs per step) or \"channel\"",
            ));
        }
        if let Some(l) = self.lambda
            && !(l.is_finite() && l >= 0.0)
        {
            return Err(KeyError::new(
                "lambda",
                format!("must be finite and ≥ 0 (got {l})"),
            ));
        }
        if self.method != QatMethod::Tequila {
            if self.lambda.is_some() {
                return Err(KeyError::new(
                    "lambda",
                    "applies only to method = \"tequila\"",
                ));
            }
            if self.lambda_learnable {
                return Err(KeyError::new(
                    "lambda_learnable",
                    "applies only to method = \"tequila\"",
                ));
            }
        }
        if matches!(self.method, QatMethod::Seq | QatMethod::SeqTernary)
            && self.granularity != Granularity::Channel
        {
            return Err(KeyError::new(
                "granularity",
                "seq learns one clipping range per output channel: \"channel\" only",
            ));
        }
        if self.method == QatMethod::Seq && self.bits != 2 {
            return Err(KeyError::new(
                "bits",
                format!(
                    "seq is ParetoQ's 2-bit grid (bits = 2; got {}); seq_ternary is its ternary",
                    self.bits
                ),
            ));
        }
        let learned_grid = self.method.grouped() || self.method == QatMethod::Lsq;
        if self.scale_dtype != ScaleDtype::F32 && !learned_grid {
            return Err(KeyError::new(
                "scale_dtype",
                "applies to lsq, efficientqat and the ternary methods (absmean, twn, tequila)",
            ));
        }
        if self.method == QatMethod::None && !self.start.is_zero() {
            return Err(KeyError::new("start", "needs a QAT method"));
        }
        if let Some(i) = self.modules.iter().position(|g| g.is_empty()) {
            return Err(KeyError::new(format!("modules[{i}]"), "must not be empty"));
        }
        Ok(())
    }

    /// The `nibble export --format` that writes this section's grid losslessly (`ggml` and `ct`
    /// methods).
    pub fn lossless_format(&self) -> Option<String> {
        match (self.method, self.ggml_type, self.ct_scheme) {
            (QatMethod::Ggml, Some(t), _) => {
                Some(format!("gguf-{}", t.ggml_type().name().to_lowercase()))
            }
            (QatMethod::Ct, _, Some(CtGridScheme::W4a16)) => Some("ct-w4a16".into()),
            (QatMethod::Ct, _, Some(CtGridScheme::W4a16Asym)) => Some("ct-w4a16-asym".into()),
            (QatMethod::Ct, _, Some(CtGridScheme::Fp8)) => Some("ct-fp8".into()),
            _ => None,
        }
    }

    /// The sets sharing one ternary scale.
    fn scale_sets(&self) -> ScaleSets {
        match self.granularity {
            Granularity::Tensor => ScaleSets::Tensor,
            Granularity::Channel => ScaleSets::Channel,
            Granularity::Group => ScaleSets::Group(self.group_size),
        }
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
            QatMethod::Ct => AnyTechnique::CtGrid(CtGrid {
                scheme: self
                    .ct_scheme
                    .expect("validated: method = ct has a ct_scheme")
                    .scheme(self.group_size),
            }),
            QatMethod::Efficientqat => AnyTechnique::Affine(Affine {
                scale: self.scale_dtype,
                bits: self.bits,
                sets: self.scale_sets(),
            }),
            QatMethod::Seq => AnyTechnique::Seq(Seq { bits: 2.0 }),
            QatMethod::SeqTernary => AnyTechnique::Seq(Seq { bits: 1.58 }),
            QatMethod::Absmean => AnyTechnique::Absmean(Absmean {
                scale: self.scale_dtype,
                sets: self.scale_sets(),
            }),
            QatMethod::Twn => AnyTechnique::Twn(Twn {
                scale: self.scale_dtype,
                sets: self.scale_sets(),
            }),
            QatMethod::Tequila => AnyTechnique::Tequila(Tequila {
                scale: self.scale_dtype,
                sets: self.scale_sets(),
                lambda: self.lambda.unwrap_or(1e-3),
                learnable: self.lambda_learnable,
            }),
            _ => AnyTechnique::Lsq(Lsq {
                scale: self.scale_dtype,
                bits: self.bits,
                sets: self.scale_sets(),
                grad_scale: self.grad_scale,
            }),
        })
    }
}
