//! Scalar helpers shared by the block formats: little-endian f16 fields, and the float→byte cast
//! that numpy's `astype` and ggml's C casts perform on x86-64.

/// The f16 at `bytes[at..at + 2]`, widened exactly to f32.
#[inline]
pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([bytes[at], bytes[at + 1]])).to_f32()
}

/// `x` rounded to f16 (round to nearest even, like numpy's `astype(float16)`), little-endian.
#[inline]
pub(crate) fn f16_bytes(x: f32) -> [u8; 2] {
    half::f16::from_f32(x).to_bits().to_le_bytes()
}

/// Truncates `v` to an integer and keeps its low byte, as the reference quantizers' C casts
/// (`(int8_t)x`, `(uint8_t)x`) and numpy's `astype(int8/uint8)` do on x86-64: in range that is a
/// plain truncation; NaN, ±inf and |v| ≥ 2^31 give cvttss2si's 0x80000000, whose low byte is 0.
/// Rust's saturating `as` would differ (inf → 255), and degenerate blocks (a subnormal absmax
/// makes `1/d` overflow to inf) do reach this path.
#[inline]
pub(crate) fn trunc_to_byte(v: f32) -> u8 {
    if v.is_nan() || !(-2_147_483_648.0..2_147_483_648.0).contains(&v) {
        0
    } else {
        (v as i32) as u8
    }
}

/// Largest |x| of a block, skipping NaN like ggml's `if (amax < fabsf(v))` scan.
#[inline]
pub(crate) fn abs_max(src: &[f32]) -> f32 {
    src.iter()
        .fold(0.0f32, |m, &v| if m < v.abs() { v.abs() } else { m })
}

/// `1/d`, or 0 for a zero scale (the reference quantizers' `id = d ? 1/d : 0`).
#[inline]
pub(crate) fn inverse_or_zero(d: f32) -> f32 {
    if d == 0.0 { 0.0 } else { 1.0 / d }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_cast_matches_x86_truncation() {
        assert_eq!(trunc_to_byte(15.9), 15);
        assert_eq!(trunc_to_byte(-1.0), 0xff);
        assert_eq!(trunc_to_byte(-24.0), 232);
        assert_eq!(trunc_to_byte(-0.7), 0);
        assert_eq!(trunc_to_byte(300.0), 44);
        assert_eq!(trunc_to_byte(f32::INFINITY), 0);
        assert_eq!(trunc_to_byte(f32::NEG_INFINITY), 0);
        assert_eq!(trunc_to_byte(f32::NAN), 0);
        assert_eq!(trunc_to_byte(3.0e9), 0);
    }

    #[test]
    fn f16_fields() {
        assert_eq!(f16_bytes(1.0), [0x00, 0x3c]);
        assert_eq!(f16_at(&[0x00, 0xb8], 0), -0.5);
        assert_eq!(f16_bytes(65520.0), [0x00, 0x7c]); // rounds to +inf
        assert_eq!(abs_max(&[1.0, -3.0, f32::NAN, 2.0]), 3.0);
    }
}
