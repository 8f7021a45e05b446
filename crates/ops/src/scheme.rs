//! `LinearScheme`: which quantizer each operand of each GEMM of one linear layer `Y = X·Wᵀ` gets.
//!
//! fprop: X and W along K. dgrad (`dX = dY·W`): dY and Wᵀ along N. wgrad (`dW = dYᵀ·X`): dYᵀ and
//! Xᵀ along T. Transforms are owned by the scheme, not by the operand specs (which must have
//! `Transform::None`): the forward Hadamard must be the same on X and W, and the backward's random
//! signs the same on both operands of a GEMM, or the GEMM would not be invariant.

use nibble_formats::spec::{Block, QuantSpec, Transform};

use crate::delayed::DelayedScaling;

/// Where the backward GEMMs take X and W from (recipe: `requantize` | `high-precision`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The forward-quantized tensors, quantized again along the backward's inner dimension
    /// (Quartet: double quantization).
    Requantize,
    /// The high-precision tensors (after the forward Hadamard, if any), quantized afresh per GEMM
    /// (Transformer Engine, torchao).
    HighPrecision,
}

/// Which side of H the random signs go on (recipe: `before` | `after`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SignSide {
    /// `x·diag(s)·H`: the correct randomized Hadamard.
    #[serde(rename = "before")]
    BeforeH,
    /// `x·H·diag(s)`: the reference code's bug; the signs cancel in the GEMM (ablation only).
    #[serde(rename = "after")]
    AfterH,
}

/// Where the backward's random signs come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignSource {
    /// Fresh signs per backward call, from the call's key (Quartet).
    Fresh,
    /// Transformer Engine's fixed 16-sign vector, the same for every call.
    TeFixed16,
}

/// Which backward GEMMs get the randomized Hadamard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RhtGemms {
    /// dgrad and wgrad (Quartet).
    Both,
    /// wgrad only (NVFP4 in Transformer Engine).
    WgradOnly,
}

/// The randomized Hadamard of the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rht {
    pub g: usize,
    pub signs: SignSource,
    pub side: SignSide,
    pub gemms: RhtGemms,
}

/// Quantizers of the two backward GEMMs (`None`: that operand stays f32).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BackwardQuant {
    /// dY in dgrad (along N).
    pub dgrad_dy: Option<QuantSpec>,
    /// Wᵀ in dgrad (along N).
    pub dgrad_w: Option<QuantSpec>,
    /// dYᵀ in wgrad (along T).
    pub wgrad_dy: Option<QuantSpec>,
    /// Xᵀ in wgrad (along T).
    pub wgrad_x: Option<QuantSpec>,
    pub source: Source,
    pub rht: Option<Rht>,
}

/// The whole scheme of one linear layer.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearScheme {
    /// Preset or recipe name (logs, errors).
    pub name: String,
    /// Fixed block Hadamard along K on both forward operands (Quartet: 32).
    pub fwd_hadamard: Option<usize>,
    pub fwd_x: Option<QuantSpec>,
    pub fwd_w: Option<QuantSpec>,
    /// Zero the gradient where the forward quantizer clipped (QuEST's trust mask).
    pub clip_mask: bool,
    /// `None`: plain f32 backward GEMMs (forward-only quantization).
    pub backward: Option<BackwardQuant>,
    /// FP8 delayed scaling: X, W and dY (and the transposed copies) use per-tensor scales from
    /// their amax histories instead of their specs' scale rule (which must be per-tensor FP8).
    pub delayed: Option<DelayedScaling>,
}

impl LinearScheme {
    /// f32 operands everywhere: the op equals a plain linear layer.
    pub fn identity(name: &str) -> Self {
        LinearScheme {
            name: name.to_owned(),
            fwd_hadamard: None,
            fwd_x: None,
            fwd_w: None,
            clip_mask: false,
            backward: None,
            delayed: None,
        }
    }

    /// The six operand quantizers: fprop X, W; dgrad dY, Wᵀ; wgrad dYᵀ, Xᵀ.
    pub fn operand_specs(&self) -> [Option<QuantSpec>; 6] {
        let b = self.backward;
        [
            self.fwd_x,
            self.fwd_w,
            b.and_then(|b| b.dgrad_dy),
            b.and_then(|b| b.dgrad_w),
            b.and_then(|b| b.wgrad_dy),
            b.and_then(|b| b.wgrad_x),
        ]
    }

    /// Checks the parts fit together (independent of shapes).
    pub fn validate(&self) -> Result<(), String> {
        for s in self.operand_specs().into_iter().flatten() {
            s.validate().map_err(|e| e.to_string())?;
            if s.transform != Transform::None {
                return Err(format!(
                    "scheme `{}`: operand specs take no transform (the scheme applies Hadamards)",
                    self.name
                ));
            }
        }
        for g in [
            self.fwd_hadamard,
            self.backward.and_then(|b| b.rht).map(|r| r.g),
        ]
        .into_iter()
        .flatten()
        {
            if !nibble_formats::hadamard::is_supported(g) {
                return Err(format!(
                    "scheme `{}`: Hadamard size {g} is not one of 16, 32, 64, 128, 256",
                    self.name
                ));
            }
        }
        if self.delayed.is_some() {
            let all = self.operand_specs();
            let fp8 = |q: &QuantSpec| {
                matches!(
                    q.element,
                    nibble_formats::element::Element::E4M3 | nibble_formats::element::Element::E5M2
                ) && q.block == Block::Tensor
            };
            if !all.iter().all(|q| q.as_ref().is_some_and(fp8)) || self.fwd_hadamard.is_some() {
                return Err(format!(
                    "scheme `{}`: delayed scaling needs per-tensor FP8 on all six operands and no \
                     Hadamard",
                    self.name
                ));
            }
        }
        if let Some(r) = self.backward.and_then(|b| b.rht)
            && r.signs == SignSource::TeFixed16
            && r.g != 16
        {
            return Err(format!(
                "scheme `{}`: TE's fixed signs need g = 16",
                self.name
            ));
        }
        Ok(())
    }

    /// Checks a GEMM of `t` tokens, `k` inputs and `n` outputs fits the Hadamard sizes.
    pub fn check_shape(&self, t: usize, k: usize, n: usize) -> Result<(), String> {
        let need = |what: &str, dim: usize, g: usize| {
            if dim.is_multiple_of(g) {
                Ok(())
            } else {
                Err(format!(
                    "scheme `{}`: {what} = {dim} is not a multiple of the Hadamard size {g}",
                    self.name
                ))
            }
        };
        if let Some(g) = self.fwd_hadamard {
            need("in_features", k, g)?;
        }
        if let Some(r) = self.backward.and_then(|b| b.rht) {
            need("tokens per micro-batch (batch·seq)", t, r.g)?;
            if r.gemms == RhtGemms::Both {
                need("out_features", n, r.g)?;
            }
        }
        Ok(())
    }

    /// Whether anything is quantized (f32 schemes take the plain matmul path).
    pub fn is_identity(&self) -> bool {
        self.fwd_hadamard.is_none()
            && self.fwd_x.is_none()
            && self.fwd_w.is_none()
            && self.backward.is_none_or(|b| {
                b.rht.is_none()
                    && b.dgrad_dy.is_none()
                    && b.dgrad_w.is_none()
                    && b.wgrad_dy.is_none()
                    && b.wgrad_x.is_none()
            })
    }

    /// bf16 autocast: every operand of the three GEMMs rounded to bf16 and nothing else (no
    /// transform, mask or delayed scale). Rounding is idempotent, so the backward may round
    /// the saved f32 operands again: a fused bf16 GEMM then computes the whole scheme.
    pub fn is_bf16_autocast(&self) -> bool {
        let b = Some(QuantSpec::bf16());
        self.fwd_hadamard.is_none()
            && !self.clip_mask
            && self.delayed.is_none()
            && self.fwd_x == b
            && self.fwd_w == b
            && self.backward.as_ref().is_some_and(|q| {
                q.rht.is_none()
                    && q.dgrad_dy == b
                    && q.dgrad_w == b
                    && q.wgrad_dy == b
                    && q.wgrad_x == b
            })
    }
}
