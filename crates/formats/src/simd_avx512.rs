//! AVX-512 instantiation of the [`crate::simd_row`] kernel: one `__m512` holds the 16 lanes.
//! Every operation is correctly rounded and uses the scalar code's operands; where it is not the
//! scalar operation itself, the note at the function says why the result is the same. min/max
//! follow the x86 rule (`a < b ? a : b`), which is that of the scalar selects.

use std::arch::x86_64::*;

use crate::simd_row::SimdRow;

type V = __m512;

/// Load 16 lanes from the start of `s` (panics if shorter).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
#[allow(unsafe_code)]
fn load(s: &[f32]) -> V {
    let s: &[f32; 16] = s[..16].try_into().expect("16 lanes");
    // SAFETY: `s` is 16 readable f32; the load is unaligned.
    unsafe { _mm512_loadu_ps(s.as_ptr()) }
}

/// Store 16 lanes at the start of `d` (panics if shorter).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
#[allow(unsafe_code)]
fn store(d: &mut [f32], v: V) {
    let d: &mut [f32; 16] = (&mut d[..16]).try_into().expect("16 lanes");
    // SAFETY: `d` is 16 writable f32, borrowed exclusively; the store is unaligned.
    unsafe { _mm512_storeu_ps(d.as_mut_ptr(), v) }
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn splat(x: f32) -> V {
    _mm512_set1_ps(x)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn add(a: V, b: V) -> V {
    _mm512_add_ps(a, b)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn sub(a: V, b: V) -> V {
    _mm512_sub_ps(a, b)
}

#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn mul(a: V, b: V) -> V {
    _mm512_mul_ps(a, b)
}

/// Butterfly stages with strides 1, 2, 4, 8 inside the vector. Stage H: `t` is `x` with lanes j
/// and j^H swapped; lanes without bit H need `x + t` (a + b), the others `t − x` (a − b). Both
/// are `x·s + t` with s = ±1: the product is exact, so the fused multiply-add rounds once, like
/// the add it stands for.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn butterflies(x: V) -> V {
    let sign = |upper: u16| _mm512_mask_blend_ps(upper, _mm512_set1_ps(1.0), _mm512_set1_ps(-1.0));
    let x = _mm512_fmadd_ps(x, sign(0xAAAA), _mm512_permute_ps::<0xB1>(x));
    let x = _mm512_fmadd_ps(x, sign(0xCCCC), _mm512_permute_ps::<0x4E>(x));
    let x = _mm512_fmadd_ps(x, sign(0xF0F0), _mm512_shuffle_f32x4::<0xB1>(x, x));
    _mm512_fmadd_ps(x, sign(0xFF00), _mm512_shuffle_f32x4::<0x4E>(x, x))
}

/// Bit j: lane j is NaN or ±Inf (classes QNaN | +Inf | −Inf | SNaN).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn nonfinite(x: V) -> u16 {
    _mm512_fpclass_ps_mask::<0x99>(x)
}

/// Bit k: `v[k]` is NaN or ±Inf.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn nonfinite_lanes(v: &[f32; 16]) -> u32 {
    nonfinite(load(v)) as u32
}

/// Whether a block holds NaN or ±Inf.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn block_nonfinite<const R: usize>(x: &[V; R]) -> bool {
    let mut m = 0;
    for v in x {
        m |= nonfinite(*v);
    }
    m != 0
}

/// Whether a block holds a NaN (unordered compares, two vectors at a time).
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn block_nan<const R: usize>(x: &[V; R]) -> bool {
    let mut m = 0;
    for i in (0..R).step_by(2) {
        m |= _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x[i], x[(i + 1).min(R - 1)]);
    }
    m != 0
}

/// Vector lanes as an array.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn lanes(v: V) -> [f32; 16] {
    let mut a = [0f32; 16];
    store(&mut a, v);
    a
}

/// max |v| of each of 4 blocks. Per block, `vrangeps` keeps max(|a|, |b|) lane-wise (it skips a
/// quiet NaN and returns NaN for a signalling one: NaN blocks are flagged apart and their amax is
/// not used); then one reduction tree for the 4 blocks, lanes of different blocks never mixed.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn group_amax<const R: usize>(xs: &[[V; R]; 4]) -> [f32; 4] {
    // (No closures through `map`/`fold` here: they would not inherit the target features.)
    let mut m = [_mm512_setzero_ps(); 4];
    for (m, x) in m.iter_mut().zip(xs) {
        *m = _mm512_range_ps::<0b1011>(x[0], x[(R - 1).min(1)]); // max(|a|, |b|)
        for i in (2..R).step_by(2) {
            let y = _mm512_range_ps::<0b1011>(x[i], x[(i + 1).min(R - 1)]);
            *m = _mm512_range_ps::<0b1011>(*m, y);
        }
    }
    // [8 lanes of block 0 | 8 of block 1] and likewise for blocks 2, 3.
    let half = |a: V, b: V| {
        _mm512_max_ps(
            _mm512_shuffle_f32x4::<0x44>(a, b),
            _mm512_shuffle_f32x4::<0xEE>(a, b),
        )
    };
    let (p01, p23) = (half(m[0], m[1]), half(m[2], m[3]));
    // Quarter q holds 4 lanes of block q.
    let q = _mm512_max_ps(
        _mm512_shuffle_f32x4::<0x88>(p01, p23),
        _mm512_shuffle_f32x4::<0xDD>(p01, p23),
    );
    let q = _mm512_max_ps(q, _mm512_permute_ps::<0x4E>(q));
    let q = lanes(_mm512_max_ps(q, _mm512_permute_ps::<0xB1>(q)));
    [q[0], q[4], q[8], q[12]]
}

/// Sum and sum of squares of each of 4 blocks in the order of [`crate::stats`]: 8 interleaved
/// lanes l (elements in index order), then `(l0+l4) + (l2+l6)` and `(l1+l5) + (l3+l7)`, then
/// those two. A block's two 8-lane accumulators share one vector, `[sum lanes | sumsq lanes]`,
/// and the combination runs on 4 blocks at once. The lanes start from the first elements, not
/// from +0 + element: that only turns a −0 lane sum into +0, and a zero sum gives the same
/// variance either way.
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn group_moments<const R: usize>(xs: &[[V; R]; 4]) -> ([f32; 4], [f32; 4]) {
    let mut z = [_mm512_setzero_ps(); 4];
    for (z, x) in z.iter_mut().zip(xs) {
        for (i, v) in x.iter().enumerate() {
            let sq = _mm512_mul_ps(*v, *v);
            let lo = _mm512_shuffle_f32x4::<0x44>(*v, sq); // elements 0..8
            *z = if i == 0 { lo } else { _mm512_add_ps(*z, lo) };
            *z = _mm512_add_ps(*z, _mm512_shuffle_f32x4::<0xEE>(*v, sq)); // elements 8..16
        }
    }
    // a[i] = l[i] + l[i+4]: quarters [sum, sumsq] of block 0 then block 1 (and 2, 3).
    let first = |a: V, b: V| {
        _mm512_add_ps(
            _mm512_shuffle_f32x4::<0x88>(a, b),
            _mm512_shuffle_f32x4::<0xDD>(a, b),
        )
    };
    let (a01, a23) = (first(z[0], z[1]), first(z[2], z[3]));
    // b[i] = a[i] + a[i+2] (lanes 0, 1 from a01, lanes 2, 3 from a23 in each quarter).
    let b = _mm512_add_ps(
        _mm512_shuffle_ps::<0x44>(a01, a23),
        _mm512_shuffle_ps::<0xEE>(a01, a23),
    );
    // b[0] + b[1] in lanes 0 and 2 of each quarter.
    let c = lanes(_mm512_add_ps(b, _mm512_permute_ps::<0xB1>(b)));
    ([c[0], c[8], c[2], c[10]], [c[4], c[12], c[6], c[14]])
}

/// Splatted constants of [`quantize`].
struct Consts {
    cap: V,
    max: V,
    /// Bits of 2^emin, the smallest binade whose quantum [`quantize`] uses.
    emin_bits: __m512i,
    /// Added to the bits of 2^e to give those of 1.5·2^(e − mbits + 23).
    magic_offset: __m512i,
}

impl Consts {
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    #[inline]
    fn new(p: &SimdRow) -> Self {
        Self {
            cap: _mm512_set1_ps(p.cap),
            max: _mm512_set1_ps(p.max),
            emin_bits: _mm512_set1_epi32(p.emin_biased << 23),
            magic_offset: _mm512_set1_epi32(((23 - p.mbits) << 23) + 0x40_0000),
        }
    }
}

/// `y = x·enc` for 16 values, their clip bits and [`Minifloat::round_rne`] of `y`.
///
/// The rounding gives the scalar results by an exact shortcut: with `a = min(|y|, cap)` in the
/// binade 2^e (e at least emin) and the quantum 2^k, k = e − mbits, `(a + C) − C` with
/// C = 1.5·2^(k+23) is `rne(a·2^−k)·2^k` (the sum has ulp 2^k and C/2^k is even, so ties go to
/// even; the difference is exact), which the scalar code computes as `rne_small(a·iq)·q`. Then
/// `min(·, max)` and y's sign. The clip bits compare `a` with max: `a > max ⟺ y > max ∨ y < −max`
/// as cap > max. QuEST (`Q`) clips at `|y| ≥ max`, so there `a = min(|y|, max)` serves both:
/// `a ≥ max` is the clip bit and, max being on the grid, a rounds to at most max (no saturation
/// step). (A NaN `y`, only in blocks flagged non-finite, would differ; those are replaced.)
///
/// [`Minifloat::round_rne`]: crate::minifloat::Minifloat::round_rne
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
#[inline]
fn quantize<const Q: bool>(x: V, enc: V, c: &Consts) -> (V, u16) {
    let y = _mm512_mul_ps(x, enc);
    // min(|y|, max or cap)
    let a = _mm512_range_ps::<0b1010>(y, if Q { c.max } else { c.cap });
    let clip = if Q {
        _mm512_cmp_ps_mask::<_CMP_GE_OQ>(a, c.max)
    } else {
        _mm512_cmp_ps_mask::<_CMP_GT_OQ>(a, c.max)
    };
    let binade = _mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7f80_0000));
    let binade = _mm512_max_epi32(binade, c.emin_bits);
    let magic = _mm512_castsi512_ps(_mm512_add_epi32(binade, c.magic_offset));
    let mut v = _mm512_sub_ps(_mm512_add_ps(a, magic), magic);
    if !Q {
        v = _mm512_min_ps(c.max, v);
    }
    // copysign(v, y): the sign bit from y, the rest from v.
    let v = _mm512_ternarylogic_epi32::<0xCA>(
        _mm512_set1_epi32(i32::MIN),
        _mm512_castps_si512(y),
        _mm512_castps_si512(v),
    );
    (_mm512_castsi512_ps(v), clip)
}

crate::simd_row::simd_row_kernel!("avx512f,avx512bw,avx512dq,avx512vl");
