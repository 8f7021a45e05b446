//! What the group kernel needs from a `QuantSpec`, computed on the host exactly as the CPU
//! oracle computes it (constants such as fl(1/√g) and the 3/4 rule's 4/3 come from the same
//! expressions, so the kernel multiplies by the same f32 bits).

use nibble_formats::element::AnyGrid;
use nibble_formats::hadamard;
use nibble_formats::spec::{Block, ExpRounding, QuantSpec, Rounding, ScaleRule, Transform};

/// Scale rules the group kernel implements (comptime selector).
pub mod rule {
    pub const OCP_FLOOR: u32 = 0;
    pub const CEIL: u32 = 1;
    pub const RCEIL: u32 = 2;
    pub const THREE_QUARTERS: u32 = 3;
    pub const QUEST_FLOOR: u32 = 4;
    pub const QUEST_NEAREST: u32 = 5;
}

/// Transforms (comptime selector).
pub mod transform {
    pub const NONE: u32 = 0;
    pub const HADAMARD: u32 = 1;
    pub const SIGNED_HADAMARD: u32 = 2;
}

/// Parameters of one launch of the 1×g group quantizer.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupParams {
    pub g: usize,
    pub transform: u32,
    /// The g signs of a randomized Hadamard (host-drawn, as the CPU draws them).
    pub signs: Vec<f32>,
    pub rule: u32,
    pub stochastic: bool,
    /// fl(1/√g), the Hadamard normalization.
    pub norm: f32,
    /// Element grid: largest finite value, mantissa bits, smallest normal exponent + 127, and
    /// the exponent of the largest power of two (OCP emax_elem).
    pub max: f32,
    pub mbits: u32,
    pub emin_biased: i32,
    pub emax: i32,
    pub quest_mult: f32,
    /// 3/4 rule factors (1 otherwise).
    pub pre: f32,
    pub post: f32,
    pub seed: u64,
}

impl GroupParams {
    /// The parameters for `spec` on rows of `cols` elements, or None if the kernel does not
    /// cover the spec (callers fall back to the host quantizer): 1×g blocks with g ∈ {16, 32,
    /// 64, 128} dividing `cols`, a Hadamard of the block's size if any, a signed minifloat
    /// element (E2M1, E4M3, E5M2), and a power-of-two scale rule (OCP floor, ceil, RCEIL, 3/4,
    /// QuEST). FP8 block scaling's absmax→2^k goes to
    /// [`crate::block_quantize`], whose scale table avoids a device division.
    pub fn from_spec(spec: &QuantSpec, cols: usize, seed: u64) -> Option<GroupParams> {
        spec.validate().ok()?;
        let Block::Group(g) = spec.block else {
            return None;
        };
        if !matches!(g, 16 | 32 | 64 | 128) || !cols.is_multiple_of(g) {
            return None;
        }
        let AnyGrid::Mini(m) = spec.element.grid() else {
            return None;
        };
        if !m.signed {
            return None;
        }
        let (transform, signs) = match spec.transform {
            Transform::None => (transform::NONE, vec![1.0]),
            Transform::Hadamard { g: h } if h == g => (transform::HADAMARD, vec![1.0]),
            Transform::RandomizedHadamard { g: h, .. } if h == g => (
                transform::SIGNED_HADAMARD,
                spec.transform
                    .signs(seed)
                    .expect("randomized Hadamard has signs"),
            ),
            _ => return None,
        };
        let (rule, quest_mult) = match spec.scale {
            ScaleRule::OcpFloor => (rule::OCP_FLOOR, 1.0),
            ScaleRule::Ceil => (rule::CEIL, 1.0),
            ScaleRule::RCeil => (rule::RCEIL, 1.0),
            ScaleRule::ThreeQuarters => (rule::THREE_QUARTERS, 1.0),
            ScaleRule::Quest { exp_rounding, mult } => (
                match exp_rounding {
                    ExpRounding::Floor => rule::QUEST_FLOOR,
                    ExpRounding::Nearest => rule::QUEST_NEAREST,
                },
                mult,
            ),
            _ => return None,
        };
        let (pre, post) = if spec.scale == ScaleRule::ThreeQuarters {
            (0.75, 4.0 / 3.0)
        } else {
            (1.0, 1.0)
        };
        Some(GroupParams {
            g,
            transform,
            signs,
            rule,
            stochastic: spec.rounding == Rounding::Stochastic,
            norm: hadamard::norm(g),
            max: m.max(),
            mbits: m.mbits,
            emin_biased: m.emin() + 127,
            emax: m.emax(),
            quest_mult,
            pre,
            post,
            seed,
        })
    }
}
