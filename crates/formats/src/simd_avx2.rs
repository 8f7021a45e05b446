//! AVX2 instantiation of the [`crate::simd_row`] kernel: the 16 lanes are two `__m256` (lanes
//! 0–7 in `lo`, 8–15 in `hi`). Same values as the AVX-512 version, with the scalar code's own
//! operations where AVX2 lacks the shortcut (butterflies as add, subtract and blend; moments
//! accumulated from +0; amax by compare-select).

use std::arch::x86_64::*;

use crate::simd_row::SimdRow;

#[derive(Clone, Copy)]
struct V {
    lo: __m256,
    hi: __m256,
}

/// Apply a 256-bit operation to both halves.
macro_rules! halves {
    ($f:expr, $a:expr) => {
        V {
            lo: $f($a.lo),
            hi: $f($a.hi),
        }
    };
    ($f:expr, $a:expr, $b:expr) => {
        V {
            lo: $f($a.lo, $b.lo),
            hi: $f($a.hi, $b.hi),
        }
    };
}

/// Load 16 lanes from the start of `s` (panics if shorter).
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
fn load(s: &[f32]) -> V {
    let s: &[f32; 16] = s[..16].try_into().expect("16 lanes");
    // SAFETY: `s` is 16 readable f32; the loads are unaligned.
    unsafe {
        V {
            lo: _mm256_loadu_ps(s.as_ptr()),
            hi: _mm256_loadu_ps(s.as_ptr().add(8)),
        }
    }
}

/// Store 16 lanes at the start of `d` (panics if shorter).
#[target_feature(enable = "avx2")]
#[inline]
#[allow(unsafe_code)]
fn store(d: &mut [f32], v: V) {
    let d: &mut [f32; 16] = (&mut d[..16]).try_into().expect("16 lanes");
    // SAFETY: `d` is 16 writable f32, borrowed exclusively; the stores are unaligned.
    unsafe {
        _mm256_storeu_ps(d.as_mut_ptr(), v.lo);
        _mm256_storeu_ps(d.as_mut_ptr().add(8), v.hi);
    }
}

#[target_feature(enable = "avx2")]
#[inline]
fn splat(x: f32) -> V {
    let v = _mm256_set1_ps(x);
    V { lo: v, hi: v }
}

#[target_feature(enable = "avx2")]
#[inline]
fn add(a: V, b: V) -> V {
    halves!(|x, y| _mm256_add_ps(x, y), a, b)
}

#[target_feature(enable = "avx2")]
#[inline]
fn sub(a: V, b: V) -> V {
    halves!(|x, y| _mm256_sub_ps(x, y), a, b)
}

#[target_feature(enable = "avx2")]
#[inline]
fn mul(a: V, b: V) -> V {
    halves!(|x, y| _mm256_mul_ps(x, y), a, b)
}

/// Butterfly stage of stride H < 8 inside each half: `t` swaps lanes j and j^H; lanes without
/// bit H take `x + t` (a + b), the others `t − x` (a − b).
macro_rules! butterfly {
    ($name:ident, $swap:expr, $upper:literal) => {
        #[target_feature(enable = "avx2")]
        #[inline]
        fn $name(x: __m256) -> __m256 {
            let t = $swap(x);
            _mm256_blend_ps::<$upper>(_mm256_add_ps(x, t), _mm256_sub_ps(t, x))
        }
    };
}
butterfly!(bfly1, |x| _mm256_permute_ps::<0xB1>(x), 0xAA);
butterfly!(bfly2, |x| _mm256_permute_ps::<0x4E>(x), 0xCC);
butterfly!(bfly4, |x| _mm256_permute2f128_ps::<0x01>(x, x), 0xF0);

/// Butterfly stages with strides 1, 2, 4 inside each half, then stride 8 between the halves.
#[target_feature(enable = "avx2")]
#[inline]
fn butterflies(x: V) -> V {
    let x = halves!(|h| bfly4(bfly2(bfly1(h))), x);
    V {
        lo: _mm256_add_ps(x.lo, x.hi),
        hi: _mm256_sub_ps(x.lo, x.hi),
    }
}

/// Bit j: lane j is NaN or ±Inf (exponent field all ones).
#[target_feature(enable = "avx2")]
#[inline]
fn nonfinite(x: V) -> u32 {
    let e = _mm256_set1_epi32(0x7f80_0000);
    let f = |h: __m256| {
        let m = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_castps_si256(h), e), e);
        _mm256_movemask_ps(_mm256_castsi256_ps(m)) as u32
    };
    f(x.lo) | (f(x.hi) << 8)
}

/// Bit k: `v[k]` is NaN or ±Inf.
#[target_feature(enable = "avx2")]
#[inline]
fn nonfinite_lanes(v: &[f32; 16]) -> u32 {
    nonfinite(load(v))
}

/// Whether a block holds NaN or ±Inf.
#[target_feature(enable = "avx2")]
#[inline]
fn block_nonfinite<const R: usize>(x: &[V; R]) -> bool {
    let mut m = 0;
    for v in x {
        m |= nonfinite(*v);
    }
    m != 0
}

/// Whether a block holds a NaN (unordered compares of its halves).
#[target_feature(enable = "avx2")]
#[inline]
fn block_nan<const R: usize>(x: &[V; R]) -> bool {
    let mut m = _mm256_setzero_ps();
    for v in x {
        m = _mm256_or_ps(m, _mm256_cmp_ps::<_CMP_UNORD_Q>(v.lo, v.hi));
    }
    _mm256_movemask_ps(m) != 0
}

#[target_feature(enable = "avx2")]
#[inline]
fn abs(x: __m256) -> __m256 {
    _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(i32::MAX)))
}

/// max |v| of each of 4 blocks (`|v| > m ? |v| : m` per lane: NaN never wins).
#[target_feature(enable = "avx2")]
#[inline]
fn group_amax<const R: usize>(xs: &[[V; R]; 4]) -> [f32; 4] {
    // (No closures through `map`/`fold` here: they would not inherit the target features.)
    let mut out = [0f32; 4];
    for (o, x) in out.iter_mut().zip(xs) {
        let mut m = _mm256_setzero_ps();
        for v in x {
            m = _mm256_max_ps(abs(v.hi), _mm256_max_ps(abs(v.lo), m));
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        *o = _mm_cvtss_f32(_mm_max_ss(m2, _mm_shuffle_ps::<1>(m2, m2)));
    }
    out
}

/// `((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))`: the lane combination of [`crate::stats`].
#[target_feature(enable = "avx2")]
#[inline]
fn combine8(l: __m256) -> f32 {
    let a = _mm_add_ps(_mm256_castps256_ps128(l), _mm256_extractf128_ps::<1>(l));
    let b = _mm_add_ps(a, _mm_movehl_ps(a, a));
    _mm_cvtss_f32(_mm_add_ss(b, _mm_shuffle_ps::<1>(b, b)))
}

/// Sum and sum of squares of each of 4 blocks in the order of [`crate::stats`] (8 interleaved
/// lanes from zero, elements in index order).
#[target_feature(enable = "avx2")]
#[inline]
fn group_moments<const R: usize>(xs: &[[V; R]; 4]) -> ([f32; 4], [f32; 4]) {
    let (mut s1, mut s2) = ([0f32; 4], [0f32; 4]);
    for (b, x) in xs.iter().enumerate() {
        let (mut l1, mut l2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        for v in x {
            l1 = _mm256_add_ps(_mm256_add_ps(l1, v.lo), v.hi);
            let sq = mul(*v, *v);
            l2 = _mm256_add_ps(_mm256_add_ps(l2, sq.lo), sq.hi);
        }
        (s1[b], s2[b]) = (combine8(l1), combine8(l2));
    }
    (s1, s2)
}

/// Splatted constants of [`quantize`].
struct Consts {
    cap: __m256,
    max: __m256,
    /// Bits of 2^emin, the smallest binade whose quantum [`quantize`] uses.
    emin_bits: __m256i,
    /// Added to the bits of 2^e to give those of 1.5·2^(e − mbits + 23).
    magic_offset: __m256i,
}

impl Consts {
    #[target_feature(enable = "avx2")]
    #[inline]
    fn new(p: &SimdRow) -> Self {
        Self {
            cap: _mm256_set1_ps(p.cap),
            max: _mm256_set1_ps(p.max),
            emin_bits: _mm256_set1_epi32(p.emin_biased << 23),
            magic_offset: _mm256_set1_epi32(((23 - p.mbits) << 23) + 0x40_0000),
        }
    }
}

/// `y = x·enc` for 16 values, their clip bits and [`Minifloat::round_rne`] of `y`, as in the
/// AVX-512 version (which explains the rounding).
///
/// [`Minifloat::round_rne`]: crate::minifloat::Minifloat::round_rne
#[target_feature(enable = "avx2")]
#[inline]
fn quantize<const Q: bool>(x: V, enc: V, c: &Consts) -> (V, u32) {
    let y = mul(x, enc);
    let (lo, clip_lo) = round_half::<Q>(y.lo, c);
    let (hi, clip_hi) = round_half::<Q>(y.hi, c);
    (V { lo, hi }, clip_lo | (clip_hi << 8))
}

/// [`quantize`]'s rounding and clip bits for 8 lanes.
#[target_feature(enable = "avx2")]
#[inline]
fn round_half<const Q: bool>(y: __m256, c: &Consts) -> (__m256, u32) {
    let a = _mm256_min_ps(if Q { c.max } else { c.cap }, abs(y));
    let clip = if Q {
        _mm256_cmp_ps::<_CMP_GE_OQ>(a, c.max)
    } else {
        _mm256_cmp_ps::<_CMP_GT_OQ>(a, c.max)
    };
    let binade = _mm256_and_si256(_mm256_castps_si256(a), _mm256_set1_epi32(0x7f80_0000));
    let binade = _mm256_max_epi32(binade, c.emin_bits);
    let magic = _mm256_castsi256_ps(_mm256_add_epi32(binade, c.magic_offset));
    let mut v = _mm256_sub_ps(_mm256_add_ps(a, magic), magic);
    if !Q {
        v = _mm256_min_ps(c.max, v);
    }
    let sign = _mm256_castsi256_ps(_mm256_set1_epi32(i32::MIN));
    let v = _mm256_or_ps(_mm256_andnot_ps(sign, v), _mm256_and_ps(sign, y));
    (v, _mm256_movemask_ps(clip) as u32)
}

crate::simd_row::simd_row_kernel!("avx2");
