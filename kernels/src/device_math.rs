//! Device twins of nibble-formats' scalar helpers (`bits.rs`, `minifloat.rs`): exponents from
//! bit patterns, exact powers of two, round-half-even, minifloat rounding with OCP saturation.
//! Each mirrors its CPU counterpart operation for operation.

use cubecl::prelude::*;

/// `floor(log2 |x|)` for finite x, exact (subnormals included); -1,000,000 for 0 (the CPU's
/// `i32::MIN`; callers guard zero before using it).
#[cube]
pub fn floor_log2(x: f32) -> i32 {
    let bits = u32::reinterpret(x) & 0x7fff_ffffu32;
    let e = bits >> 23;
    // A literal binds as a comptime value; negate at run time to get a mutable variable.
    let mut r = 1_000_000i32;
    r = -r;
    if e != 0u32 {
        r = e as i32 - 127i32;
    } else if bits != 0u32 {
        r = (31i32 - u32::leading_zeros(bits) as i32) - 149i32;
    }
    r
}

/// Whether finite positive `x` is an exact power of two.
#[cube]
pub fn is_pow2(x: f32) -> bool {
    let bits = u32::reinterpret(x) & 0x7fff_ffffu32;
    let e = bits >> 23;
    let m = bits & 0x7f_ffffu32;
    let mut r = m == 0u32;
    if e == 0u32 {
        r = m != 0u32 && (m & (m - 1u32)) == 0u32;
    }
    r
}

/// `ceil(log2 x)` for finite `x > 0`, exact.
#[cube]
pub fn ceil_log2(x: f32) -> i32 {
    let f = floor_log2(x);
    let mut r = f + 1i32;
    if f == -1_000_000i32 || is_pow2(x) {
        r = f;
    }
    r
}

/// `round(log2 s)` for finite `s > 0`: significand ≥ 0x3504F4 (first f32 above √2) rounds up.
#[cube]
pub fn round_log2(s: f32) -> i32 {
    let e = floor_log2(s);
    let bits = u32::reinterpret(s) & 0x7fff_ffffu32;
    let mut frac = bits & 0x7f_ffffu32;
    if bits >> 23 == 0u32 {
        frac = (bits << (u32::leading_zeros(bits) - 8u32)) & 0x7f_ffffu32;
    }
    let mut r = e;
    if frac >= 0x35_04f4u32 {
        r = e + 1i32;
    }
    r
}

/// Exact `2^k` for k in [-149, 127]; 0 below, +Inf above.
#[cube]
pub fn pow2(k: i32) -> f32 {
    let mut r = 0.0f32;
    if k > 127i32 {
        r = f32::reinterpret(0x7f80_0000u32);
    } else if k >= -126i32 {
        r = f32::reinterpret(((k + 127i32) as u32) << 23);
    } else if k >= -149i32 {
        r = f32::reinterpret(1u32 << ((k + 149i32) as u32));
    }
    r
}

/// Round to nearest integer, ties to even (`bits::rne_small`, which gives +0 where this may give
/// −0: see `rne_int`). The CPU's add-and-subtract of 1.5·2^23 is folded away by shader
/// compilers; `round` is ties-to-even in WGSL and compiles to `rint` on CUDA.
#[cube]
pub fn rne_small(t: f32) -> f32 {
    f32::round(t)
}

/// `a` capped at 2·max (NaN passes), as `Minifloat::binade` does.
#[cube]
fn cap(a0: f32, max: f32) -> f32 {
    let c = 2.0f32 * max;
    let mut a = a0;
    if a0 > c {
        a = c;
    }
    a
}

/// Exponent of the quantum of `a`'s binade (`Minifloat::binade`).
#[cube]
fn quantum_exp(a: f32, mbits: u32, emin_biased: i32) -> i32 {
    let e = i32::max((u32::reinterpret(a) >> 23) as i32, emin_biased);
    e - 127i32 - mbits as i32
}

/// Saturate the magnitude `v` at `max` and give it `y`'s sign (signed grids).
#[cube]
fn finish(y: f32, v: f32, max: f32) -> f32 {
    let mut m = v;
    if v > max {
        m = max;
    }
    f32::reinterpret(u32::reinterpret(m) | (u32::reinterpret(y) & 0x8000_0000u32))
}

/// `Minifloat::round_rne` for a signed grid (`emin_biased` = smallest normal exponent + 127).
#[cube]
pub fn mini_rne(y: f32, max: f32, mbits: u32, emin_biased: i32) -> f32 {
    let a = cap(f32::abs(y), max);
    let k = quantum_exp(a, mbits, emin_biased);
    let q = f32::reinterpret(((k + 127i32) as u32) << 23);
    let iq = f32::reinterpret(((127i32 - k) as u32) << 23);
    let n = rne_small(a * iq);
    finish(y, n * q, max)
}

/// `Minifloat::round_sr` for a signed grid: up with probability equal to the fraction.
#[cube]
pub fn mini_sr(y: f32, u: f32, max: f32, mbits: u32, emin_biased: i32) -> f32 {
    let a = cap(f32::abs(y), max);
    let k = quantum_exp(a, mbits, emin_biased);
    let q = f32::reinterpret(((k + 127i32) as u32) << 23);
    let iq = f32::reinterpret(((127i32 - k) as u32) << 23);
    let t = a * iq;
    let r = rne_small(t);
    let mut fl = r;
    if r > t {
        fl = r - 1.0f32;
    }
    let mut n = fl;
    if u < t - fl {
        n = fl + 1.0f32;
    }
    finish(y, n * q, max)
}

/// `IntGrid::clamp_wide`: clamp to [lo − 1, hi + 1] so that rounding stays in range.
#[cube]
fn clamp_wide(y: f32, lo: f32, hi: f32) -> f32 {
    let mut v = y;
    if y < lo - 1.0f32 {
        v = lo - 1.0f32;
    } else if y > hi + 1.0f32 {
        v = hi + 1.0f32;
    }
    v
}

/// Clamp to [lo, hi] with comparisons (`IntGrid::clamp`).
#[cube]
fn clamp_int(v: f32, lo: f32, hi: f32) -> f32 {
    let mut r = v;
    if v < lo {
        r = lo;
    } else if v > hi {
        r = hi;
    }
    r
}

/// Round half to even of a small integer-grid value, as the CPU's add-and-subtract of 1.5·2^23
/// does: its result is never −0, so a zero from `round` is made +0.
#[cube]
fn rne_int(t: f32) -> f32 {
    let mut r = rne_small(t);
    if r == 0.0f32 {
        r = 0.0f32;
    }
    r
}

/// `IntGrid::rne` (signed INT-b and ternary): clamp wide, round half to even, clamp.
#[cube]
pub fn int_rne(y: f32, lo: f32, hi: f32) -> f32 {
    clamp_int(rne_int(clamp_wide(y, lo, hi)), lo, hi)
}

/// `IntGrid::sr`: up with probability equal to the fraction above the floor.
#[cube]
pub fn int_sr(y: f32, u: f32, lo: f32, hi: f32) -> f32 {
    let t = clamp_wide(y, lo, hi);
    let r = rne_int(t);
    let mut fl = r;
    if r > t {
        fl = r - 1.0f32;
    }
    let mut n = fl;
    if u < t - fl {
        n = fl + 1.0f32;
    }
    clamp_int(n, lo, hi)
}

/// `Element::Bf16`'s RNE on the bits (`nibble_formats::element::round_bf16`).
#[cube]
pub fn round_bf16(x: f32) -> f32 {
    let b = u32::reinterpret(x);
    let mut r = (b + 0x7fffu32 + ((b >> 16) & 1u32)) & 0xffff_0000u32;
    if (b & 0x7fff_ffffu32) > 0x7f80_0000u32 {
        r = (b | 0x0040_0000u32) & 0xffff_0000u32;
    }
    f32::reinterpret(r)
}

/// The unnormalized Sylvester butterflies of a g-block in place, strides 1, 2, …, g/2, then one
/// multiply by `norm` = fl(1/√g) (`nibble_formats::hadamard`'s order; pairs within a stage are
/// independent, so visiting them in index order gives the same bits). The normalized values
/// pass through `opaque` (with the run-time `zero`) so that no later add fuses the multiply.
#[cube]
pub fn hadamard_block(v: &mut Array<f32>, norm: f32, zero: u32, #[comptime] g: usize) {
    let mut h = 1usize;
    while h < g {
        for i in 0..g {
            if (i / h).is_multiple_of(2) {
                let a = v[i];
                let c = v[i + h];
                v[i] = a + c;
                v[i + h] = a - c;
            }
        }
        h *= 2;
    }
    for i in 0..g {
        v[i] = crate::quest_scale::opaque(v[i] * norm, zero);
    }
}
