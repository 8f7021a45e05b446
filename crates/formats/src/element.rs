//! Element formats a tensor can be quantized to, and their grids.

use half::{bf16, f16};

use crate::grid::Grid;
use crate::int_grid::IntGrid;
use crate::minifloat::{E2M1, E4M3, E5M2, Minifloat};

/// The element (value) format of a quantized tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Element {
    /// FP4 E2M1 (MXFP4, NVFP4).
    E2M1,
    /// FP8 E4M3 "fn".
    E4M3,
    /// FP8 E5M2.
    E5M2,
    /// bfloat16 (RNE; overflow to Inf as IEEE casts do).
    Bf16,
    /// IEEE half (RNE; overflow to Inf).
    F16,
    /// INT-b, b = 2..8, signed two's complement or unsigned.
    Int { bits: u8, signed: bool },
    /// {−1, 0, +1}.
    Ternary,
}

impl Element {
    /// The grid of this element, dispatched once outside hot loops.
    pub fn grid(&self) -> AnyGrid {
        match *self {
            Element::E2M1 => AnyGrid::Mini(E2M1),
            Element::E4M3 => AnyGrid::Mini(E4M3),
            Element::E5M2 => AnyGrid::Mini(E5M2),
            Element::Bf16 => AnyGrid::Half(HalfGrid { bf16: true }),
            Element::F16 => AnyGrid::Half(HalfGrid { bf16: false }),
            Element::Int { bits, signed: true } => AnyGrid::Int(IntGrid::signed(bits as u32)),
            Element::Int {
                bits,
                signed: false,
            } => AnyGrid::Int(IntGrid::unsigned(bits as u32)),
            Element::Ternary => AnyGrid::Int(IntGrid::ternary()),
        }
    }

    /// The minifloat description, for FP elements.
    pub fn minifloat(&self) -> Option<Minifloat> {
        match self {
            Element::E2M1 => Some(E2M1),
            Element::E4M3 => Some(E4M3),
            Element::E5M2 => Some(E5M2),
            _ => None,
        }
    }

    /// Largest representable magnitude.
    pub fn max_value(&self) -> f32 {
        match self.grid() {
            AnyGrid::Mini(m) => m.max(),
            AnyGrid::Int(g) => g.hi(),
            AnyGrid::Half(h) => h.hi(),
        }
    }

    /// Bits of one code.
    pub fn bits(&self) -> u32 {
        match *self {
            Element::E2M1 => 4,
            Element::E4M3 | Element::E5M2 => 8,
            Element::Bf16 | Element::F16 => 16,
            Element::Int { bits, .. } => bits as u32,
            Element::Ternary => 2,
        }
    }
}

/// Any element grid, for dispatch to generic code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnyGrid {
    Mini(Minifloat),
    Int(IntGrid),
    Half(HalfGrid),
}

/// bf16 / f16 via the `half` crate (no scale; codes do not fit a byte, so no packing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HalfGrid {
    pub bf16: bool,
}

impl Grid for HalfGrid {
    fn lo(&self) -> f32 {
        -self.hi()
    }
    fn hi(&self) -> f32 {
        if self.bf16 {
            bf16::MAX.to_f32()
        } else {
            f16::MAX.to_f32()
        }
    }
    #[inline(always)]
    fn rne(&self, y: f32) -> f32 {
        if self.bf16 {
            round_bf16(y)
        } else {
            f16::from_f32(y).to_f32()
        }
    }
    fn sr(&self, _y: f32, _u: f32) -> f32 {
        unreachable!("stochastic rounding to bf16/f16 is rejected by QuantSpec::validate")
    }
    fn code(&self, _q: f32) -> u8 {
        unreachable!("bf16/f16 codes are not packed into bytes")
    }
    fn decode(&self, _code: u8) -> f32 {
        unreachable!("bf16/f16 codes are not packed into bytes")
    }
}

/// Round an f32 to bf16 with RNE and back (the "bf16 operand" of a GEMM). The same bits as
/// `half::bf16::from_f32(x).to_f32()` (NaN keeps its payload's top and becomes quiet; overflow
/// goes to ±Inf), written branch-free on the bits so that loops over it vectorize.
#[inline(always)]
pub fn round_bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let nan = (b & 0x7fff_ffff) > 0x7f80_0000;
    // Adding 0x7fff plus the kept LSB carries into bit 16 exactly when RNE rounds up.
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) & 0xffff_0000;
    let quiet = (b | 0x0040_0000) & 0xffff_0000;
    f32::from_bits(if nan { quiet } else { rounded })
}
