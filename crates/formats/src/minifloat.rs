//! Small IEEE-like floating-point formats: E2M1 (FP4), E4M3 (fn), E5M2, UE4M3.
//!
//! Encoding works on the f32 bit pattern: the quantum of the input's binade is an exact power of
//! two, so `n = rne(|y| / quantum)` and `n * quantum` are exact, and the result is correctly
//! rounded with ties to the even mantissa. Saturation is OCP "satfinite": overflow and ±Inf go to
//! ±max, never to Inf or NaN.

use crate::bits::{floor_small, pow2, rne_small};
use crate::grid::Grid;

/// Which codes at the top exponent are special.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Specials {
    /// No Inf, no NaN: every code is finite (E2M1).
    None,
    /// "fn": no Inf; only the all-ones exponent with all-ones mantissa is NaN (E4M3, UE4M3).
    NanOnly,
    /// IEEE: the all-ones exponent is Inf (mantissa 0) or NaN (E5M2).
    Ieee,
}

/// A minifloat format described by its field widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Minifloat {
    pub name: &'static str,
    pub ebits: u32,
    pub mbits: u32,
    pub bias: i32,
    pub signed: bool,
    pub specials: Specials,
}

/// FP4 E2M1: values ±{0, 0.5, 1, 1.5, 2, 3, 4, 6}.
pub const E2M1: Minifloat = Minifloat {
    name: "e2m1",
    ebits: 2,
    mbits: 1,
    bias: 1,
    signed: true,
    specials: Specials::None,
};
/// FP8 E4M3 ("fn"): max 448, 0x7F / 0xFF are NaN.
pub const E4M3: Minifloat = Minifloat {
    name: "e4m3",
    ebits: 4,
    mbits: 3,
    bias: 7,
    signed: true,
    specials: Specials::NanOnly,
};
/// FP8 E5M2: max 57344, IEEE Inf/NaN.
pub const E5M2: Minifloat = Minifloat {
    name: "e5m2",
    ebits: 5,
    mbits: 2,
    bias: 15,
    signed: true,
    specials: Specials::Ieee,
};
/// Unsigned E4M3, the NVFP4 block-scale type (codes 0x00..=0x7F; 0x7F is NaN).
pub const UE4M3: Minifloat = Minifloat {
    name: "ue4m3",
    ebits: 4,
    mbits: 3,
    bias: 7,
    signed: false,
    specials: Specials::NanOnly,
};

impl Minifloat {
    /// Total bits of a code.
    pub const fn width(&self) -> u32 {
        self.ebits + self.mbits + self.signed as u32
    }

    /// Exponent of the smallest normal value.
    pub const fn emin(&self) -> i32 {
        1 - self.bias
    }

    const fn top_exp_field(&self) -> i32 {
        let all = (1 << self.ebits) - 1;
        match self.specials {
            Specials::Ieee => all - 1,
            _ => all,
        }
    }

    /// Exponent of the largest power of two in the format (`emax_elem` of OCP MX: 2, 8, 15).
    pub const fn emax(&self) -> i32 {
        self.top_exp_field() - self.bias
    }

    /// Largest finite value (6, 448, 57344, 448).
    pub const fn max(&self) -> f32 {
        let all_m = (1u32 << self.mbits) - 1;
        let top_m = match self.specials {
            Specials::NanOnly => all_m - 1,
            _ => all_m,
        };
        ((1u32 << self.mbits) + top_m) as f32 * pow2(self.emax() - self.mbits as i32)
    }

    /// Code used for NaN (E2M1 has none: NaN encodes to +0, and block quantizers flag NaN in the
    /// block scale instead).
    pub fn nan_code(&self) -> u8 {
        let all_e = (1u32 << self.ebits) - 1;
        let all_m = (1u32 << self.mbits) - 1;
        match self.specials {
            Specials::None => 0,
            Specials::NanOnly => ((all_e << self.mbits) | all_m) as u8,
            Specials::Ieee => ((all_e << self.mbits) | (1 << (self.mbits - 1))) as u8,
        }
    }

    /// Decode a code. Unsigned formats return NaN for codes with the (absent) sign bit set.
    pub fn decode(&self, code: u8) -> f32 {
        let code = code as u32;
        let mag_bits = self.ebits + self.mbits;
        if code >> self.width() != 0 || (!self.signed && code >> mag_bits != 0) {
            return f32::NAN;
        }
        let neg = self.signed && (code >> mag_bits) & 1 == 1;
        let e = (code >> self.mbits) & ((1 << self.ebits) - 1);
        let m = code & ((1 << self.mbits) - 1);
        let all_e = (1u32 << self.ebits) - 1;
        let all_m = (1u32 << self.mbits) - 1;
        let mag = match self.specials {
            Specials::NanOnly if e == all_e && m == all_m => f32::NAN,
            Specials::Ieee if e == all_e && m == 0 => f32::INFINITY,
            Specials::Ieee if e == all_e => f32::NAN,
            _ if e == 0 => m as f32 * pow2(self.emin() - self.mbits as i32),
            _ => ((1 << self.mbits) + m) as f32 * pow2(e as i32 - self.bias - self.mbits as i32),
        };
        if neg { -mag } else { mag }
    }

    /// Quantum exponent machinery shared by RNE, SR and round-up: returns (|y| capped, quantum, 1/quantum).
    #[inline(always)]
    fn binade(&self, y: f32) -> (f32, f32, f32) {
        let cap = 2.0 * self.max();
        let a = y.abs();
        // A comparison, not `min`, so that NaN passes through.
        let a = if a > cap { cap } else { a };
        let e = ((a.to_bits() >> 23) as i32).max(self.emin() + 127);
        let k = e - 127 - self.mbits as i32; // exponent of the quantum, in [-126, 127] for our formats
        let q = f32::from_bits(((k + 127) as u32) << 23);
        let iq = f32::from_bits(((127 - k) as u32) << 23);
        (a, q, iq)
    }

    #[inline(always)]
    fn finish(&self, y: f32, v: f32) -> f32 {
        let max = self.max();
        let v = if v > max { max } else { v };
        // Selects, not an early return, so the loop stays branch-free and vectorizes.
        let neg_unsigned = !self.signed && y < 0.0;
        if neg_unsigned { 0.0 } else { v.copysign(y) }
    }

    /// Round to nearest even with saturation; NaN propagates.
    #[inline(always)]
    pub fn round_rne(&self, y: f32) -> f32 {
        let (a, q, iq) = self.binade(y);
        self.finish(y, rne_small(a * iq) * q)
    }

    /// Stochastic rounding: `hi` with probability `(|y| - lo) / (hi - lo)`, else `lo`.
    #[inline(always)]
    pub fn round_sr(&self, y: f32, u: f32) -> f32 {
        let (a, q, iq) = self.binade(y);
        let t = a * iq;
        let fl = floor_small(t);
        let n = if u < t - fl { fl + 1.0 } else { fl };
        self.finish(y, n * q)
    }

    /// Round the magnitude up to the next grid value (cubecl's "round up" scale storage policy).
    #[inline(always)]
    pub fn round_up(&self, y: f32) -> f32 {
        let (a, q, iq) = self.binade(y);
        let t = a * iq;
        let fl = floor_small(t);
        let n = if fl < t { fl + 1.0 } else { fl };
        self.finish(y, n * q)
    }

    /// Code of a grid value (as produced by the rounding functions).
    pub fn code_of(&self, v: f32) -> u8 {
        if v.is_nan() {
            return self.nan_code();
        }
        let sign = if self.signed && v.is_sign_negative() {
            1u32 << (self.ebits + self.mbits)
        } else {
            0
        };
        let a = v.abs();
        let body = if a < pow2(self.emin()) {
            (a * pow2(self.mbits as i32 - self.emin())) as u32
        } else {
            let bits = a.to_bits();
            let e = (bits >> 23) as i32 - 127;
            let m = (bits >> (23 - self.mbits)) & ((1 << self.mbits) - 1);
            (((e + self.bias) as u32) << self.mbits) | m
        };
        (sign | body) as u8
    }

    /// Encode an f32 with RNE and saturation.
    pub fn encode(&self, x: f32) -> u8 {
        self.code_of(self.round_rne(x))
    }
}

impl Grid for Minifloat {
    #[inline(always)]
    fn lo(&self) -> f32 {
        if self.signed { -self.max() } else { 0.0 }
    }
    #[inline(always)]
    fn hi(&self) -> f32 {
        self.max()
    }
    #[inline(always)]
    fn rne(&self, y: f32) -> f32 {
        self.round_rne(y)
    }
    #[inline(always)]
    fn sr(&self, y: f32, u: f32) -> f32 {
        self.round_sr(y, u)
    }
    #[inline(always)]
    fn code(&self, q: f32) -> u8 {
        self.code_of(q)
    }
    fn decode(&self, code: u8) -> f32 {
        Minifloat::decode(self, code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maxima_and_emax() {
        assert_eq!((E2M1.max(), E2M1.emax()), (6.0, 2));
        assert_eq!((E4M3.max(), E4M3.emax()), (448.0, 8));
        assert_eq!((E5M2.max(), E5M2.emax()), (57344.0, 15));
        assert_eq!(UE4M3.max(), 448.0);
    }

    #[test]
    fn round_up_goes_to_next_code() {
        assert_eq!(E4M3.round_up(257.0), 288.0);
        assert_eq!(E4M3.round_up(256.0), 256.0);
        assert_eq!(E4M3.round_up(447.5), 448.0);
        assert_eq!(E4M3.round_up(1000.0), 448.0);
    }
}
