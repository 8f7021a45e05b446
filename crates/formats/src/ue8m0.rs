//! UE8M0, the MX shared scale: byte b means 2^(b−127); 0xFF is NaN; no zero, no Inf.

use crate::bits::{ceil_log2, floor_log2, pow2};

/// The NaN byte.
pub const NAN: u8 = 0xFF;

/// Value of a UE8M0 byte (b = 0 is 2^−127, an f32 subnormal).
pub fn decode(b: u8) -> f32 {
    if b == NAN {
        f32::NAN
    } else {
        pow2(b as i32 - 127)
    }
}

/// Byte of the power of two 2^k, clamped to the representable range [−127, 127].
pub fn from_exponent(k: i32) -> u8 {
    (k.clamp(-127, 127) + 127) as u8
}

/// Byte of `2^floor(log2 x)` (truncation of the f32 exponent field); NaN/Inf/≤0 give NaN.
pub fn encode_floor(x: f32) -> u8 {
    if !(x.is_finite() && x > 0.0) {
        NAN
    } else {
        from_exponent(floor_log2(x))
    }
}

/// Byte of `2^ceil(log2 x)`, like PTX `cvt.rp.satfinite.ue8m0x2.f32`; NaN/Inf/≤0 give NaN.
pub fn encode_ceil(x: f32) -> u8 {
    if !(x.is_finite() && x > 0.0) {
        NAN
    } else {
        from_exponent(ceil_log2(x))
    }
}
