//! QuEST's block scale exponent on the device, overflow-exact.
//!
//! The CPU sums Σx and Σx² in eight interleaved f32 lanes and lets them overflow to ±Inf (σ is
//! then +Inf, 0 or NaN-guarded 0, see `Stats::std`). WGSL lets shader compilers assume floats
//! are finite, so a sum that overflows is undefined on the device. Here no operation ever
//! overflows: each add is first tested in the half domain (`fl(a+b)` overflows iff
//! `|fl(a/2 + b/2)| ≥ 2^127`), a square iff `|x| ≥ 2^64`, and overflow is carried as a flag —
//! once a lane of Σx² is +Inf the CPU's total is +Inf, once a lane of Σx is non-finite so is
//! its total. Finite results are the CPU's bits: the same adds in the same order.
//!
//! Products that feed an add go through [`opaque`] so that CUDA's default FMA contraction
//! (nvrtc `--fmad=true`) cannot fuse them: the CPU rounds the product first.

use cubecl::prelude::*;

use crate::device_math::{floor_log2, round_log2};

/// 2^127: `fl(a + b)` overflows iff `|fl(a/2 + b/2)|` reaches it.
const HALF_OVERFLOW: f32 = 1.701_411_8e38;
/// 2^64: `fl(x·x)` overflows iff `|x|` reaches it (`(2^64 − 2^40)²` rounds to a finite value).
pub const SQUARE_OVERFLOW: f32 = 18_446_744_073_709_551_616.0;

/// `x` unchanged, through an integer XOR with a run-time zero that no compiler can fold, so a
/// product stays rounded on its own instead of being fused into a following add.
#[cube]
pub fn opaque(x: f32, zero: u32) -> f32 {
    f32::reinterpret(u32::reinterpret(x) ^ zero)
}

/// Whether `fl(a + b)` overflows (finite a, b).
#[cube]
fn add_overflows(a: f32, b: f32) -> bool {
    f32::abs(a * 0.5f32 + b * 0.5f32) >= HALF_OVERFLOW
}

/// `a + b` where it does not overflow, 0 where it does (the caller carries the flag).
#[cube]
fn add_or_zero(a: f32, b: f32) -> f32 {
    let mut r = 0.0f32;
    if !add_overflows(a, b) {
        r = a + b;
    }
    r
}

/// Whether the CPU's lane tree `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))` overflows anywhere.
#[cube]
fn tree_overflows(l: &Array<f32>) -> bool {
    let a = add_or_zero(l[0], l[4]);
    let b = add_or_zero(l[2], l[6]);
    let c = add_or_zero(l[1], l[5]);
    let d = add_or_zero(l[3], l[7]);
    let ab = add_or_zero(a, b);
    let cd = add_or_zero(c, d);
    add_overflows(l[0], l[4])
        || add_overflows(l[2], l[6])
        || add_overflows(l[1], l[5])
        || add_overflows(l[3], l[7])
        || add_overflows(a, b)
        || add_overflows(c, d)
        || add_overflows(ab, cd)
}

/// The lane tree's sum (valid when [`tree_overflows`] is false).
#[cube]
fn tree_sum(l: &Array<f32>) -> f32 {
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// The unclamped exponent k of QuEST's scale `2^k` for the finite g-block `v`:
/// s = (c·σ)·mult + 1e-8, k = round(log2 s) (`nearest`) or floor(log2 s), with σ and its
/// overflow cases exactly as `nibble_formats::stats::Stats::std` computes them.
#[cube]
pub fn quest_exponent(
    v: &Array<f32>,
    mult: f32,
    zero: u32,
    #[comptime] g: usize,
    #[comptime] nearest: bool,
) -> i32 {
    let mut l1 = Array::<f32>::new(8usize);
    let mut l2 = Array::<f32>::new(8usize);
    for j in 0..8usize {
        l1[j] = 0.0f32;
        l2[j] = 0.0f32;
    }
    let mut sum_bad = false;
    let mut sq_bad = false;
    for c in 0..comptime![g / 8] {
        for j in 0..8usize {
            let x = v[c * 8 + j];
            if !sum_bad {
                if add_overflows(l1[j], x) {
                    sum_bad = true;
                } else {
                    l1[j] += x;
                }
            }
            if !sq_bad {
                if f32::abs(x) >= SQUARE_OVERFLOW {
                    sq_bad = true;
                } else {
                    let sq = opaque(x * x, zero);
                    if add_overflows(l2[j], sq) {
                        sq_bad = true;
                    } else {
                        l2[j] += sq;
                    }
                }
            }
        }
    }
    if !sum_bad {
        sum_bad = tree_overflows(&l1);
    }
    if !sq_bad {
        sq_bad = tree_overflows(&l2);
    }
    let n = comptime![g as f32];
    // m = Σx/n is exact scaling (n a power of two); m² overflows iff |m| ≥ 2^64. A non-finite
    // Σx makes m² +Inf or NaN on the CPU: either way σ comes out 0 below.
    let mut m = 0.0f32;
    if !sum_bad {
        m = tree_sum(&l1) / n;
    }
    let mm_bad = sum_bad || f32::abs(m) >= SQUARE_OVERFLOW;
    let mut k = 127i32;
    // CPU: Σx² = +Inf with m² finite gives σ = +Inf and a clamped exponent (127); with m²
    // non-finite, var is NaN (σ = 0); Σx² finite with m² = +Inf gives var = −Inf (σ = 0).
    if !sq_bad || mm_bad {
        let mut sd = 0.0f32;
        if !sq_bad && !mm_bad {
            let mm = opaque(m * m, zero);
            let var = tree_sum(&l2) / n - mm;
            if var > 0.0f32 {
                sd = f32::sqrt(var);
            }
        }
        let s = opaque(opaque(QUEST_C * sd, zero) * mult, zero) + 1e-8f32;
        if comptime![nearest] {
            k = round_log2(s);
        } else {
            k = floor_log2(s);
        }
    }
    k
}

/// QuEST's constant c = 2.92247856 / 6 (`nibble_formats::spec::QUEST_C`).
const QUEST_C: f32 = nibble_formats::spec::QUEST_C;

#[cfg(test)]
mod tests {
    use super::SQUARE_OVERFLOW;

    /// The thresholds the kernel relies on, checked against f32 arithmetic.
    #[test]
    fn overflow_thresholds() {
        let below = f32::from_bits(SQUARE_OVERFLOW.to_bits() - 1);
        assert!((below * below).is_finite());
        assert!((SQUARE_OVERFLOW * SQUARE_OVERFLOW).is_infinite());
        let half = 1.701_411_8e38f32;
        assert_eq!(half, 2f32.powi(127));
        // fl(a+b) overflows iff |fl(a/2 + b/2)| ≥ 2^127, around the rounding boundary.
        let max = f32::MAX;
        for (a, b) in [
            (max, 2f32.powi(103)),
            (max, f32::from_bits(2f32.powi(103).to_bits() - 1)),
            (max, 2f32.powi(104)),
            (2f32.powi(127), 2f32.powi(127)),
            (-max, -2f32.powi(103)),
            (max, -max),
            (3e38, 1e37),
        ] {
            assert_eq!(
                (a + b).is_infinite(),
                (a * 0.5 + b * 0.5).abs() >= half,
                "{a:e} + {b:e}"
            );
        }
    }
}
