//! Explicit-SIMD path for the common MX layout: 1×N blocks (N = 16, 32, 64) along rows, an
//! optional Hadamard of the block's size, a power-of-two scale rule (OCP floor, ceil, RCEIL, 3/4,
//! QuEST), an FP element grid and round-to-nearest-even.
//!
//! The kernel ([`simd_row_kernel!`]) is written once over a 16-lane f32 vector and instantiated
//! per ISA in `simd_avx512.rs` (one `__m512`) and `simd_avx2.rs` (two `__m256`). It computes the
//! generic path's values: butterflies on the same operands, statistics in the 8-lane order of
//! [`crate::stats`], the scales of [`BlockScale::compute`] ([`crate::simd_scale`]), and the
//! results of [`Minifloat::round_rne`]. Where an operation differs from the scalar one (a fused
//! multiply-add by ±1, the rounding by a magic constant, the 3/4 rule's factors folded into the
//! scales)
//! the substitute is exact, as argued at each place. Every path therefore returns the bits of the
//! scalar code (`tests/isa_paths.rs`, `tests/simd_row.rs`).
//!
//! Per batch of 16 blocks: pass 1 loads and transforms each block (storing it back to `dst`) and
//! reduces the statistics of 4 blocks at a time; the 16 scales are computed together; pass 2
//! scales, writes the clip bits with vector compares, rounds and dequantizes. The kernel is
//! specialized (const generics) on the statistic, the 3/4 factors and the transform, so that the
//! inner loops test no flags.

use crate::block_scale::{BlockScale, TensorInfo};
use crate::grid::Grid;
use crate::hadamard;
use crate::minifloat::Minifloat;
use crate::simd_scale::Pow2Scale;
use crate::spec::{Block, QuantSpec, Rounding, ScaleRule};
use crate::stats::Stats;

/// Blocks per batch: the scale computation runs over this many lanes.
pub(crate) const BATCH: usize = crate::simd_scale::LANES;
/// Blocks whose statistics are reduced together (a divisor of [`BATCH`]).
pub(crate) const GROUP: usize = 4;

/// Everything the kernel needs, fixed for one quantizer call.
#[derive(Clone, Debug)]
pub(crate) struct SimdRow {
    /// Block size N (16, 32 or 64).
    pub n: usize,
    pub scale: Pow2Scale,
    /// QuEST's trust mask (`|y| ≥ max`) instead of strict clipping (`|y| > max`).
    pub quest: bool,
    /// `pre` and `post` of the rule when they are not 1 (the 3/4 rule).
    pub pre: Option<f32>,
    pub post: Option<f32>,
    /// Hadamard of size N: random signs (if any) and `fl(1/√N)`.
    pub transform: bool,
    pub has_signs: bool,
    pub signs: [f32; 64],
    pub norm: f32,
    /// Rounding constants of the element grid (see [`Minifloat::round_rne`]).
    pub max: f32,
    pub cap: f32,
    pub emin_biased: i32,
    pub mbits: i32,
}

impl SimdRow {
    /// The kernel's parameters, or None when the spec is not one it implements. `signs` are the
    /// randomized Hadamard's (the call's [`crate::spec::Transform::signs`]).
    pub(crate) fn new(
        spec: &QuantSpec,
        grid: &Minifloat,
        cols: usize,
        signs: Option<&[f32]>,
    ) -> Option<Self> {
        let Block::Group(n) = spec.block else {
            return None;
        };
        let scale = Pow2Scale::new(spec.scale, grid.emax(), grid.max(), n)?;
        let fits = matches!(n, 16 | 32 | 64)
            && cols.is_multiple_of(n)
            && spec.transform.size().is_none_or(|h| h == n);
        if !(fits && spec.rounding == Rounding::Rne && grid.signed) {
            return None;
        }
        let mut sign_lanes = [1f32; 64];
        if let Some(s) = signs {
            sign_lanes[..n].copy_from_slice(s);
        }
        // The rule's constant factors, read off one ordinary block.
        let probe = BlockScale::compute(
            spec.scale,
            grid.max(),
            grid.emax(),
            &Stats {
                amax: 1.0,
                sum: 1.0,
                sumsq: 1.0,
                n,
                ..Stats::EMPTY
            },
            &TensorInfo::default(),
        );
        Some(Self {
            n,
            scale,
            quest: matches!(spec.scale, ScaleRule::Quest { .. }),
            pre: (probe.pre != 1.0).then_some(probe.pre),
            post: (probe.post != 1.0).then_some(probe.post),
            transform: spec.transform.size().is_some(),
            has_signs: signs.is_some(),
            signs: sign_lanes,
            norm: hadamard::norm(n),
            max: grid.hi(),
            cap: 2.0 * grid.max(),
            emin_biased: grid.emin() + 127,
            mbits: grid.mbits as i32,
        })
    }
}

/// Per-block statistics of one batch (lane k is block k).
#[derive(Clone, Copy, Default)]
pub(crate) struct BatchStats {
    pub amax: [f32; BATCH],
    pub sum: [f32; BATCH],
    pub sumsq: [f32; BATCH],
}

/// The row kernel over a 16-lane vector type `V`. The enclosing module imports `SimdRow` and
/// provides, compiled for `$features`: `load`, `store`, `splat`, `add`, `sub`, `mul`;
/// `butterflies` (strides 1, 2, 4, 8 inside a vector); `group_amax` and `group_moments` (the
/// statistics of [`GROUP`] blocks); `block_nan`, `block_nonfinite` (whether a block holds NaN,
/// NaN or ±Inf) and `nonfinite_lanes` (bit k: lane k is NaN or ±Inf); `Consts::new` and
/// `quantize` (scale, clip bits and rounding of 16 values).
macro_rules! simd_row_kernel {
    ($features:literal) => {
        use crate::simd_row::{BATCH, BatchStats, GROUP};

        /// Quantize-dequantize one row (`src` None: `dst` holds the input) and OR its clip bits
        /// into `mask` (the row's words, zero on entry).
        #[target_feature(enable = $features)]
        pub(crate) fn row(p: &SimdRow, src: Option<&[f32]>, dst: &mut [f32], mask: &mut [u64]) {
            match p.n {
                16 => row_r::<1>(p, src, dst, mask),
                32 => row_r::<2>(p, src, dst, mask),
                _ => row_r::<4>(p, src, dst, mask),
            }
        }

        /// The kernel specialized for the spec's statistic, 3/4 factors and transform.
        #[target_feature(enable = $features)]
        fn row_r<const R: usize>(
            p: &SimdRow,
            src: Option<&[f32]>,
            dst: &mut [f32],
            mask: &mut [u64],
        ) {
            let (q, f) = (p.quest, p.pre.is_some());
            match (q, f, p.transform) {
                (true, _, false) => row_n::<R, true, false, false>(p, src, dst, mask),
                (true, _, true) => row_n::<R, true, false, true>(p, src, dst, mask),
                (false, false, false) => row_n::<R, false, false, false>(p, src, dst, mask),
                (false, false, true) => row_n::<R, false, false, true>(p, src, dst, mask),
                (false, true, false) => row_n::<R, false, true, false>(p, src, dst, mask),
                (false, true, true) => row_n::<R, false, true, true>(p, src, dst, mask),
            }
        }

        /// Blocks of `R` vectors (N = 16·R); QuEST statistics (`Q`), 3/4 factors (`F`), a
        /// Hadamard transform (`T`).
        #[target_feature(enable = $features)]
        fn row_n<const R: usize, const Q: bool, const F: bool, const T: bool>(
            p: &SimdRow,
            src: Option<&[f32]>,
            dst: &mut [f32],
            mask: &mut [u64],
        ) {
            let n = 16 * R;
            let nblk = dst.len() / n;
            let mut signs = [splat(1.0); R];
            for (r, s) in signs.iter_mut().enumerate() {
                *s = load(&p.signs[16 * r..]);
            }
            let signs = if p.has_signs { Some(&signs) } else { None };
            let norm = splat(p.norm);
            let post = splat(p.post.unwrap_or(1.0));
            let c = Consts::new(p);
            // Pass 2 reads transformed values back from `dst`, untransformed ones from `src`.
            let src2 = if T { None } else { src };
            let mut st = BatchStats::default();
            for b0 in (0..nblk).step_by(BATCH) {
                let nb = BATCH.min(nblk - b0);
                // Blocks with NaN: flagged in pass 1 (amax rules) or checked below (QuEST).
                let mut bad = 0u32;
                // Pass 1: load (and transform) each block; statistics of GROUP blocks at a time.
                for g in (0..nb).step_by(GROUP) {
                    let mut xs = [[splat(0.0); R]; GROUP];
                    let m = GROUP.min(nb - g);
                    for (i, x) in xs.iter_mut().enumerate() {
                        // A full group has a constant trip count (unrolled, `xs` in registers).
                        if m < GROUP && i >= m {
                            break;
                        }
                        let c0 = (b0 + g + i) * n;
                        let d = &mut dst[c0..c0 + n];
                        let s = match src {
                            Some(s) => Some(&s[c0..c0 + n]),
                            None => None,
                        };
                        let nan = pass1::<R, Q, T>(x, s, d, signs, norm);
                        bad |= (nan as u32) << (g + i);
                    }
                    if Q {
                        let (s1, s2) = group_moments::<R>(&xs);
                        st.sum[g..g + GROUP].copy_from_slice(&s1);
                        st.sumsq[g..g + GROUP].copy_from_slice(&s2);
                    } else {
                        st.amax[g..g + GROUP].copy_from_slice(&group_amax::<R>(&xs));
                    }
                }
                let live = u32::MAX >> (32 - nb);
                if Q {
                    // NaN or Inf makes the sum of squares NaN or Inf (squares are ≥ 0, so no
                    // Inf − Inf); a finite block whose squares overflow is checked exactly.
                    let mut maybe = nonfinite_lanes(&st.sumsq) & live;
                    while maybe != 0 {
                        let k = maybe.trailing_zeros() as usize;
                        maybe &= maybe - 1;
                        let c0 = (b0 + k) * n;
                        let s = match src2 {
                            Some(s) => &s[c0..c0 + n],
                            None => &dst[c0..c0 + n],
                        };
                        let mut x = [splat(0.0); R];
                        for (r, v) in x.iter_mut().enumerate() {
                            *v = load(&s[16 * r..]);
                        }
                        bad |= (block_nonfinite::<R>(&x) as u32) << k;
                    }
                } else {
                    // ±Inf (and only Inf, besides the NaN blocks already flagged) makes amax Inf.
                    bad |= nonfinite_lanes(&st.amax) & live;
                }
                let (mut enc, mut dec) = p.scale.enc_dec(&st.amax, &st.sum, &st.sumsq);
                // Blocks whose 3/4-rule factors are applied as two multiplies.
                let mut two_step = 0u32;
                if F {
                    // (v·enc)·pre = v·(enc·pre): enc·pre is exact (3/4 of a power of two ≥
                    // 2^−127), and so is v·enc unless it is below 2^−126, where both forms
                    // round to a signed zero on every grid and clip nothing. Likewise
                    // (q·dec)·post = q·(dec·post) since q·dec is exact, when dec·post is exact:
                    // dec ≥ 2^−126 (normal); dec = 2^−127 keeps the two multiplies.
                    let (pre, post) = (p.pre.unwrap_or(1.0), p.post.unwrap_or(1.0));
                    for (j, (e, d)) in enc.iter_mut().zip(dec.iter_mut()).enumerate() {
                        *e *= pre;
                        let exact = d.to_bits() > 0x40_0000;
                        two_step |= (!exact as u32) << j;
                        *d = if exact { *d * post } else { *d };
                    }
                }
                // Pass 2: scale, clip bits, round, dequantize.
                for k in 0..nb {
                    let c0 = (b0 + k) * n;
                    let mut bits = u64::MAX >> (64 - n);
                    if (bad >> k) & 1 == 1 {
                        let d = &mut dst[c0..c0 + n];
                        for r in 0..R {
                            store(&mut d[16 * r..], splat(f32::NAN));
                        }
                    } else {
                        let (e, dq) = (splat(enc[k]), splat(dec[k]));
                        let two = F && (two_step >> k) & 1 == 1;
                        let mut x = [splat(0.0); R];
                        let s = match src2 {
                            Some(s) => &s[c0..c0 + n],
                            None => &dst[c0..c0 + n],
                        };
                        for (r, v) in x.iter_mut().enumerate() {
                            *v = load(&s[16 * r..]);
                        }
                        let d = &mut dst[c0..c0 + n];
                        bits = 0;
                        for (r, x) in x.iter().enumerate() {
                            let (q, clip) = quantize::<Q>(*x, e, &c);
                            bits |= (clip as u64) << (16 * r);
                            let v = mul(q, dq);
                            store(&mut d[16 * r..], if two { mul(v, post) } else { v });
                        }
                    }
                    mask[c0 / 64] |= bits << (c0 % 64);
                }
            }
        }

        /// Pass 1 of one block: load it from `s` (None: from `d`) into `x`, transform it and store
        /// it to `d` (if `T`). Returns whether it holds a NaN (amax rules; QuEST checks later).
        #[target_feature(enable = $features)]
        #[inline]
        fn pass1<const R: usize, const Q: bool, const T: bool>(
            x: &mut [V; R],
            s: Option<&[f32]>,
            d: &mut [f32],
            signs: Option<&[V; R]>,
            norm: V,
        ) -> bool {
            let s = match s {
                Some(s) => s,
                None => &*d,
            };
            for (r, v) in x.iter_mut().enumerate() {
                *v = load(&s[16 * r..]);
            }
            if T {
                hadamard::<R>(x, signs, norm);
                for (r, v) in x.iter().enumerate() {
                    store(&mut d[16 * r..], *v);
                }
            }
            !Q && block_nan::<R>(x)
        }

        /// Signs, butterflies with strides 1, 2, …, N/2, then the orthonormal scale.
        #[target_feature(enable = $features)]
        #[inline]
        fn hadamard<const R: usize>(x: &mut [V; R], signs: Option<&[V; R]>, norm: V) {
            if let Some(signs) = signs {
                for (v, s) in x.iter_mut().zip(signs) {
                    *v = mul(*v, *s);
                }
            }
            for v in x.iter_mut() {
                *v = butterflies(*v);
            }
            let mut h = 1;
            while h < R {
                for i in (0..R).step_by(2 * h) {
                    for j in i..i + h {
                        let (a, b) = (x[j], x[j + h]);
                        x[j] = add(a, b);
                        x[j + h] = sub(a, b);
                    }
                }
                h *= 2;
            }
            for v in x.iter_mut() {
                *v = mul(*v, norm);
            }
        }
    };
}
pub(crate) use simd_row_kernel;
