//! Exponent arithmetic on IEEE binary32 bit patterns.
//!
//! Scale rules need `floor(log2 x)` and exact powers of two. Computing them with `log2` in floating
//! point is fragile (for the largest f32 just below 2^k, `log2` can round up to k), so every
//! exponent in this crate comes from the bit pattern.

/// `floor(log2 x)` for finite `x > 0`, exact, subnormals included. Returns `i32::MIN` for 0.
#[inline]
pub fn floor_log2(x: f32) -> i32 {
    let bits = x.abs().to_bits();
    let e = (bits >> 23) as i32;
    if e != 0 {
        e - 127
    } else if bits == 0 {
        i32::MIN
    } else {
        // Subnormal: value = m * 2^-149 with m < 2^23.
        (31 - bits.leading_zeros() as i32) - 149
    }
}

/// `ceil(log2 x)` for finite `x > 0`, exact. Returns `i32::MIN` for 0.
#[inline]
pub fn ceil_log2(x: f32) -> i32 {
    let f = floor_log2(x);
    if f == i32::MIN || is_pow2(x) {
        f
    } else {
        f + 1
    }
}

/// Whether a finite positive `x` is an exact power of two (subnormal powers included).
#[inline]
pub fn is_pow2(x: f32) -> bool {
    let bits = x.abs().to_bits();
    let e = bits >> 23;
    let m = bits & 0x7f_ffff;
    if e != 0 {
        m == 0
    } else {
        m != 0 && m.is_power_of_two()
    }
}

/// Exact `2^k` as f32 for k in [-149, 127]; 0 below, +inf above.
#[inline]
pub const fn pow2(k: i32) -> f32 {
    if k > 127 {
        f32::INFINITY
    } else if k >= -126 {
        f32::from_bits(((k + 127) as u32) << 23)
    } else if k >= -149 {
        f32::from_bits(1u32 << (k + 149))
    } else {
        0.0
    }
}

/// Round to nearest integer, ties to even, for |t| < 2^22, without SSE4.1 (vectorizes on SSE2).
///
/// Adding and subtracting 1.5 * 2^23 leaves the integer part in the mantissa under the default
/// round-to-nearest-even mode; Rust never reassociates float arithmetic, so this is exact RNE.
#[inline(always)]
pub fn rne_small(t: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23
    (t + MAGIC) - MAGIC
}

/// `floor(t)` for 0 <= t < 2^22, vectorizable on SSE2 (see [`rne_small`]).
#[inline(always)]
pub fn floor_small(t: f32) -> f32 {
    let r = rne_small(t);
    if r > t { r - 1.0 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_log2_just_below_powers_of_two() {
        for k in -149..=127 {
            let p = pow2(k);
            assert_eq!(floor_log2(p), k, "2^{k}");
            let below = f32::from_bits(p.to_bits() - 1); // nextafter(2^k, 0)
            // (For k = -148 the neighbour below is 2^-149, itself a power of two.)
            if k > -148 {
                assert_eq!(floor_log2(below), k - 1, "nextafter(2^{k}, 0)");
                assert_eq!(ceil_log2(below), k, "ceil nextafter(2^{k}, 0)");
            }
            assert_eq!(ceil_log2(p), k);
        }
    }

    #[test]
    fn pow2_matches_powi() {
        for k in -126..=127 {
            assert_eq!(pow2(k), 2f64.powi(k) as f32);
        }
        assert_eq!(pow2(-149), f32::from_bits(1));
        assert_eq!(pow2(-150), 0.0);
    }

    #[test]
    fn rne_small_ties_to_even() {
        for (t, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (3.5, 4.0),
            (-2.5, -2.0),
            (2.49, 2.0),
        ] {
            assert_eq!(rne_small(t), r, "{t}");
            assert_eq!(rne_small(t), f32::round_ties_even(t));
        }
        assert_eq!(floor_small(2.999), 2.0);
        assert_eq!(floor_small(3.0), 3.0);
        assert_eq!(floor_small(0.0), 0.0);
    }
}
