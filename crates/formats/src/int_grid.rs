//! Integer grids: signed and unsigned INT-b (b = 2..8) and ternary {−1, 0, 1}.

use crate::bits::{floor_small, rne_small};
use crate::grid::Grid;

/// The integers `qmin..=qmax`. Codes are the low `bits` bits of the two's-complement value
/// (signed), the value itself (unsigned), or value + 1 (ternary: 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IntGrid {
    pub qmin: i32,
    pub qmax: i32,
    pub bits: u32,
    /// Codes are `value - qmin` (ternary) instead of two's complement.
    pub offset_codes: bool,
}

impl IntGrid {
    /// Signed two's-complement INT-b: [−2^(b−1), 2^(b−1) − 1].
    pub fn signed(bits: u32) -> Self {
        assert!((2..=8).contains(&bits), "INT bits must be 2..=8");
        Self {
            qmin: -(1 << (bits - 1)),
            qmax: (1 << (bits - 1)) - 1,
            bits,
            offset_codes: false,
        }
    }

    /// Unsigned INT-b: [0, 2^b − 1].
    pub fn unsigned(bits: u32) -> Self {
        assert!((2..=8).contains(&bits), "UINT bits must be 2..=8");
        Self {
            qmin: 0,
            qmax: (1 << bits) - 1,
            bits,
            offset_codes: false,
        }
    }

    /// Ternary {−1, 0, 1}, 2-bit codes 0, 1, 2.
    pub fn ternary() -> Self {
        Self {
            qmin: -1,
            qmax: 1,
            bits: 2,
            offset_codes: true,
        }
    }

    #[inline(always)]
    fn clamp(&self, v: f32) -> f32 {
        // Comparisons, not `clamp`, so that NaN passes through.
        let (lo, hi) = (self.qmin as f32, self.qmax as f32);
        if v < lo {
            lo
        } else if v > hi {
            hi
        } else {
            v
        }
    }
}

impl Grid for IntGrid {
    #[inline(always)]
    fn lo(&self) -> f32 {
        self.qmin as f32
    }
    #[inline(always)]
    fn hi(&self) -> f32 {
        self.qmax as f32
    }
    #[inline(always)]
    fn rne(&self, y: f32) -> f32 {
        // Clamp first so that the magic-number rounding stays in range (and ±Inf saturates).
        let y = self.clamp_wide(y);
        self.clamp(rne_small(y))
    }
    #[inline(always)]
    fn sr(&self, y: f32, u: f32) -> f32 {
        let y = self.clamp_wide(y);
        let fl = floor_small(y);
        self.clamp(if u < y - fl { fl + 1.0 } else { fl })
    }
    fn code(&self, q: f32) -> u8 {
        let v = q as i32;
        let mask = ((1u32 << self.bits) - 1) as i32;
        if self.offset_codes {
            (v - self.qmin) as u8
        } else {
            (v & mask) as u8
        }
    }
    fn decode(&self, code: u8) -> f32 {
        let c = code as i32 & ((1 << self.bits) - 1);
        if self.offset_codes {
            (c + self.qmin) as f32
        } else if self.qmin < 0 && c >= (1 << (self.bits - 1)) {
            (c - (1 << self.bits)) as f32
        } else {
            c as f32
        }
    }
}

impl IntGrid {
    #[inline(always)]
    fn clamp_wide(&self, y: f32) -> f32 {
        let (lo, hi) = (self.qmin as f32 - 1.0, self.qmax as f32 + 1.0);
        if y < lo {
            lo
        } else if y > hi {
            hi
        } else {
            y
        }
    }
}
