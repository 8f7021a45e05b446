//! `QuantSpec`: the one value type that says how a tensor is quantized. The CPU oracle here and
//! every GPU kernel implement the same spec and are tested bit-identical.

use crate::element::Element;
use crate::error::{FormatError, Result};
use crate::hadamard;

/// Which elements share one scale. Blocks run along the last (contiguous) axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Block {
    /// One scale for the whole tensor.
    Tensor,
    /// One scale per row (per output channel of an `[out, in]` weight).
    Row,
    /// 1×g blocks along the last axis (MX: g = 32; NVFP4: 16; FP8 block: 128).
    Group(usize),
    /// g×g tiles (NVFP4 weights 16×16; FP8 block weights 128×128).
    Tile(usize),
}

/// How the exponent of a QuEST power-of-two scale is rounded (recipe: `nearest` | `floor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExpRounding {
    /// `2^floor(log2 s)`: what Quartet's released kernels do (≈2x the MSE on Gaussian data).
    Floor,
    /// `2^round(log2 s)`: reproduces the paper's QuEST MSE (1.32e-2).
    Nearest,
}

/// How an E4M3 block scale (NVFP4) is rounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScaleRounding {
    /// Round to nearest even (NVIDIA's paper, Transformer Engine).
    Rne,
    /// Round up (cubecl's storage policy): never clips, wastes a little range.
    Up,
}

/// How the scale of a block is derived from its values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ScaleRule {
    /// No scale: a plain cast (bf16, f16, unscaled FP8).
    None,
    /// OCP MX v1.0: X = 2^(floor(log2 amax) − emax_elem), then saturate. Clips ≈41% of FP4 blocks.
    OcpFloor,
    /// X = 2^(ceil(log2 amax) − emax_elem).
    Ceil,
    /// cuBLAS/TE: X = 2^ceil(log2(amax / max_elem)). Never clips. Computed exactly (no reciprocal).
    RCeil,
    /// Tseng / Quartet backward: X = 2^(floor(log2 amax) − emax_elem), quantize (3/4)·v/X, and
    /// dequantize q·X·4/3. Never clips; a GEMM of two such operands is corrected by 16/9.
    ThreeQuarters,
    /// QuEST (Quartet forward): X = 2^round(log2(c·σ·mult + 1e-8)), c = 2.92247856/6, σ the block
    /// standard deviation. Clips on purpose; the clip mask is |v/X| ≥ 6 (QuEST's trust mask).
    Quest {
        exp_rounding: ExpRounding,
        mult: f32,
    },
    /// NVFP4 two-level: FP32 tensor scale 6·448/amax_tensor and an E4M3 block scale (TE order).
    Nvfp4 { scale_rounding: ScaleRounding },
    /// FP32 scale = max_elem / amax (per tensor: FP8 current scaling; per block: FP8 block,
    /// symmetric INT). `pow2` rounds the encode scale down to a power of two (TE's option).
    Absmax { pow2: bool },
    /// BitNet b1.58: scale = 1 / max(mean|v|, 1e-5) (ternary and symmetric INT).
    Absmean,
    /// Asymmetric INT (EfficientQAT style): step = max(max − min, 1e-5) / qmax, zero point
    /// round(−min/step) clamped to [0, qmax].
    MinMax,
}

/// Rounding of scaled values to the element grid (recipe: `rne` | `sr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Rounding {
    /// Round to nearest, ties to even.
    #[serde(rename = "rne")]
    Rne,
    /// Stochastic rounding from Philox4x32-10 keyed by (seed, stream 0, element index).
    #[serde(rename = "sr")]
    Stochastic,
}

/// Where the random signs of a randomized Hadamard come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signs {
    /// Drawn from the call's seed (Philox stream 1): fresh signs per call, as Quartet's backward.
    Seeded,
    /// Transformer Engine's fixed 16-sign vector (g must be 16).
    TeFixed16,
    /// Drawn from this key (Philox stream 1), independent of the call's seed: the two operands of
    /// one GEMM share their signs while their stochastic rounding streams differ.
    Key(u64),
}

/// An orthogonal transform applied along the last axis before scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transform {
    None,
    /// x ↦ x·H_g (block-diagonal).
    Hadamard {
        g: usize,
    },
    /// x ↦ x·diag(s)·H_g, signs before H.
    RandomizedHadamard {
        g: usize,
        signs: Signs,
    },
}

impl Transform {
    /// Hadamard size, if any.
    pub fn size(&self) -> Option<usize> {
        match *self {
            Transform::None => None,
            Transform::Hadamard { g } | Transform::RandomizedHadamard { g, .. } => Some(g),
        }
    }

    /// The sign vector this transform uses for a given seed (None for the plain Hadamard).
    pub fn signs(&self, seed: u64) -> Option<Vec<f32>> {
        match *self {
            Transform::RandomizedHadamard {
                g,
                signs: Signs::Seeded,
            } => Some(hadamard::random_signs(seed, g)),
            Transform::RandomizedHadamard {
                signs: Signs::TeFixed16,
                ..
            } => Some(hadamard::TE_SIGNS_16.iter().map(|&s| s as f32).collect()),
            Transform::RandomizedHadamard {
                g,
                signs: Signs::Key(k),
            } => Some(hadamard::random_signs(k, g)),
            _ => None,
        }
    }
}

/// How one tensor is quantized.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantSpec {
    pub element: Element,
    pub block: Block,
    pub scale: ScaleRule,
    pub rounding: Rounding,
    pub transform: Transform,
}

/// QuEST's RMSE-optimal clipping constant for E2M1 on N(0,1): 2.92247856 / 6.
pub const QUEST_C: f32 = 0.487_079_76;

impl QuantSpec {
    /// Check that the parts fit together (independent of the tensor's shape).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: &str| Err(FormatError::InvalidSpec(format!("{m} (spec: {self:?})")));
        let mini = self.element.minifloat().is_some();
        let int = matches!(self.element, Element::Int { .. } | Element::Ternary);
        if let Element::Int { bits, .. } = self.element
            && !(2..=8).contains(&bits)
        {
            return bad("INT bits must be in 2..=8");
        }
        match self.scale {
            ScaleRule::None => {}
            ScaleRule::OcpFloor | ScaleRule::Ceil | ScaleRule::RCeil | ScaleRule::ThreeQuarters
                if !mini =>
            {
                return bad(
                    "power-of-two (UE8M0) scale rules need an FP element (e2m1, e4m3, e5m2)",
                );
            }
            ScaleRule::Quest { mult, .. } => {
                if self.element != Element::E2M1 {
                    return bad("the QuEST scale is defined for e2m1");
                }
                if !(mult.is_finite() && mult > 0.0) {
                    return bad("QuEST mult must be finite and positive");
                }
            }
            ScaleRule::Nvfp4 { .. } if self.element != Element::E2M1 => {
                return bad("the NVFP4 two-level scale needs e2m1 elements");
            }
            ScaleRule::Absmax { .. }
                if !(mini
                    || matches!(
                        self.element,
                        Element::Int { signed: true, .. } | Element::Ternary
                    )) =>
            {
                return bad("absmax scaling needs an FP element or a signed INT");
            }
            ScaleRule::Absmean
                if !matches!(
                    self.element,
                    Element::Int { signed: true, .. } | Element::Ternary
                ) =>
            {
                return bad("absmean scaling needs ternary or a signed INT");
            }
            ScaleRule::MinMax if !matches!(self.element, Element::Int { signed: false, .. }) => {
                return bad("min-max (affine) scaling needs an unsigned INT");
            }
            _ => {}
        }
        if int && self.scale == ScaleRule::None {
            return bad("INT and ternary elements need a scale rule");
        }
        if matches!(self.element, Element::Bf16 | Element::F16) {
            if self.scale != ScaleRule::None {
                return bad("bf16/f16 take no scale");
            }
            if self.rounding == Rounding::Stochastic {
                return bad("stochastic rounding to bf16/f16 is not implemented");
            }
        }
        match self.block {
            Block::Group(g) | Block::Tile(g) if g == 0 => {
                return bad("block size must be positive");
            }
            _ => {}
        }
        match self.transform {
            Transform::None => {}
            Transform::Hadamard { g } | Transform::RandomizedHadamard { g, .. } => {
                if !hadamard::is_supported(g) {
                    return bad("Hadamard size must be one of 16, 32, 64, 128, 256");
                }
                if let Transform::RandomizedHadamard {
                    signs: Signs::TeFixed16,
                    ..
                } = self.transform
                    && g != 16
                {
                    return bad("TE's fixed sign vector has 16 entries");
                }
            }
        }
        Ok(())
    }

    /// Quartet forward: H32, then QuEST MXFP4 (E2M1, 1×32, power-of-two scale), RNE.
    pub fn quartet_forward(exp_rounding: ExpRounding) -> Self {
        Self {
            element: Element::E2M1,
            block: Block::Group(32),
            scale: ScaleRule::Quest {
                exp_rounding,
                mult: 1.0,
            },
            rounding: Rounding::Rne,
            transform: Transform::Hadamard { g: 32 },
        }
    }

    /// Quartet backward: randomized H32 (fresh signs per seed), 3/4-rule MXFP4, RTN or SR.
    pub fn quartet_backward(rounding: Rounding) -> Self {
        Self {
            element: Element::E2M1,
            block: Block::Group(32),
            scale: ScaleRule::ThreeQuarters,
            rounding,
            transform: Transform::RandomizedHadamard {
                g: 32,
                signs: Signs::Seeded,
            },
        }
    }

    /// MX (OCP) format with g = 32 and the given scale rule, no transform, RNE.
    pub fn mx(element: Element, scale: ScaleRule) -> Self {
        Self {
            element,
            block: Block::Group(32),
            scale,
            rounding: Rounding::Rne,
            transform: Transform::None,
        }
    }

    /// NVFP4: E2M1, 1×16 (or 16×16 tiles), two-level scale with an RNE E4M3 block scale.
    pub fn nvfp4(block: Block, rounding: Rounding, transform: Transform) -> Self {
        Self {
            element: Element::E2M1,
            block,
            scale: ScaleRule::Nvfp4 {
                scale_rounding: ScaleRounding::Rne,
            },
            rounding,
            transform,
        }
    }

    /// FP8 with one FP32 scale per tensor (current scaling).
    pub fn fp8_tensor(element: Element) -> Self {
        Self {
            element,
            block: Block::Tensor,
            scale: ScaleRule::Absmax { pow2: false },
            rounding: Rounding::Rne,
            transform: Transform::None,
        }
    }

    /// Whether this is an element-wise cast (per-tensor, no scale, no transform, RNE): the
    /// quantizer then equals [`crate::scaled_cast::cast_with_scale`] with scale 1.
    pub fn is_plain_cast(&self) -> bool {
        self.block == Block::Tensor
            && self.scale == ScaleRule::None
            && self.transform == Transform::None
            && self.rounding == Rounding::Rne
    }

    /// bf16 operand rounding (RNE), no scale.
    pub fn bf16() -> Self {
        Self {
            element: Element::Bf16,
            block: Block::Tensor,
            scale: ScaleRule::None,
            rounding: Rounding::Rne,
            transform: Transform::None,
        }
    }
}
