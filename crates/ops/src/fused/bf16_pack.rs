//! The AVX-512 half of [`super::bf16_gemm`] (x86-64 only): packing with the f32→bf16
//! rounding fused in, and the micro-kernels.
//!
//! `PAIRS` picks the `Dot` kernel: panels hold k-pairs of bf16 packed in a u32
//! (`bf16(x[2p+1]) << 16 | bf16(x[2p])`, the layout `vdpbf16ps` multiplies lane-wise); without
//! it (`Fma`) panels hold one k each, as the f32 bits of the rounded value. A panel "slot" is
//! one k-pair or one k.

use std::arch::x86_64::*;
use std::ops::Range;

/// Slots ahead that packing along the rows prefetches.
const AHEAD: usize = 8;

/// Rows of the micro-kernel (one broadcast lhs slot each).
pub(super) const MR: usize = 8;

/// A source block for packing: element (kk, w) at `ptr + kk·sk + w·sw`, `kk < k`, `w < w`.
/// For the lhs `w` runs over rows, for the rhs over columns.
#[derive(Clone, Copy)]
pub(super) struct Src {
    pub(super) ptr: *const f32,
    pub(super) sk: usize,
    pub(super) sw: usize,
    pub(super) k: usize,
    pub(super) w: usize,
}

// SAFETY: a `Src` only reads elements of the views borrowed for the call of
// `bf16_gemm::blocked::matmul`.
#[allow(unsafe_code)]
unsafe impl Sync for Src {}

impl Src {
    /// The sub-block of k-range `kk` and w-range `w`.
    ///
    /// # Safety
    /// The ranges lie inside `self`.
    #[allow(unsafe_code)]
    pub(super) unsafe fn block(self, kk: Range<usize>, w: Range<usize>) -> Src {
        Src {
            // SAFETY: the first element of the sub-block is an element of `self`.
            ptr: unsafe { self.ptr.add(kk.start * self.sk + w.start * self.sw) },
            k: kk.len(),
            w: w.len(),
            ..self
        }
    }
}

/// An output tile of `rows × cols` (at most MR × 16·Z) with row stride `ldc`.
pub(super) struct Tile {
    pub(super) ptr: *mut f32,
    pub(super) ldc: usize,
    pub(super) rows: usize,
    pub(super) cols: usize,
    /// The next tile's first element (null if none): its partial sums are prefetched, one
    /// line per slot, so that its kernel does not start with a miss.
    pub(super) next: *const f32,
}

/// The `Dot` micro-kernel.
///
/// # Safety
/// As [`kernel`]; the CPU has AVX512-F and AVX512-BF16.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bf16")]
pub(super) unsafe fn kernel_dot<const Z: usize>(ap: &[u32], bp: &[u32], t: Tile, first: bool) {
    // SAFETY: per the caller.
    unsafe { kernel::<true, Z>(ap, bp, t, first) }
}

/// The `Fma` micro-kernel.
///
/// # Safety
/// As [`kernel`]; the CPU has AVX512-F.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn kernel_fma<const Z: usize>(ap: &[u32], bp: &[u32], t: Tile, first: bool) {
    // SAFETY: per the caller.
    unsafe { kernel::<false, Z>(ap, bp, t, first) }
}

/// The MR×16Z micro-kernel (Z = 2 or 3): 8Z zmm accumulators, per slot Z rhs loads and MR
/// broadcast lhs slots. Starts from zero (`first`) or the tile's partial sums.
///
/// # Safety
/// `ap` holds MR·s and `bp` 16Z·s u32 for s slots; the tile's `rows × cols` elements are
/// valid for reads and writes; the caller has the target features (inlined into it).
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn kernel<const PAIRS: bool, const Z: usize>(ap: &[u32], bp: &[u32], t: Tile, first: bool) {
    let lanes = |z: usize| t.cols.saturating_sub(16 * z).min(16);
    let masks: [__mmask16; Z] = std::array::from_fn(|z| ((1u32 << lanes(z)) - 1) as u16);
    let at = |r: usize, z: usize| t.ptr.wrapping_add(r * t.ldc + 16 * z);
    // SAFETY: the loads and stores are masked to the tile's elements (per the caller);
    // the slices hold 16Z (bp) and MR (ap) u32 per slot; the caller has the features.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); Z]; MR];
        if !first {
            for (r, row) in acc.iter_mut().enumerate().take(t.rows) {
                for (z, v) in row.iter_mut().enumerate() {
                    *v = _mm512_maskz_loadu_ps(masks[z], at(r, z));
                }
            }
        }
        for (i, (a, b)) in ap.chunks_exact(MR).zip(bp.chunks_exact(16 * Z)).enumerate() {
            if i < 2 * MR && !t.next.is_null() {
                _mm_prefetch::<_MM_HINT_T0>(t.next.wrapping_add(i / 2 * t.ldc + i % 2 * 16).cast());
            }
            let bv: [__m512; Z] =
                std::array::from_fn(|z| _mm512_loadu_ps(b.as_ptr().add(16 * z).cast()));
            for (row, &x) in acc.iter_mut().zip(a) {
                let av = _mm512_set1_ps(f32::from_bits(x));
                for (v, &bz) in row.iter_mut().zip(&bv) {
                    *v = if PAIRS {
                        let bh = |x: __m512| std::mem::transmute::<__m512, __m512bh>(x);
                        _mm512_dpbf16_ps(*v, bh(av), bh(bz))
                    } else {
                        _mm512_fmadd_ps(av, bz, *v)
                    };
                }
            }
        }
        for (r, row) in acc.iter().enumerate().take(t.rows) {
            for (z, &v) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(at(r, z), masks[z], v);
            }
        }
    }
}

/// Packs `s` into panels of `width` (MR, 32 or 48) along w: panel q holds, for each slot, the
/// `width` packed values of w in `q·width..`. Pads w to whole panels (and k to even for
/// `PAIRS`) with zeros.
///
/// # Safety
/// `s` addresses in-bounds elements for `kk < s.k`, `w < s.w`; the CPU has AVX512-F/BW.
#[allow(unsafe_code)]
pub(super) unsafe fn pack<const PAIRS: bool>(s: Src, width: usize, out: &mut [u32]) {
    // SAFETY: per the caller.
    unsafe {
        match width {
            MR => pack_as::<PAIRS, MR>(s, out),
            32 => pack_as::<PAIRS, 32>(s, out),
            48 => pack_as::<PAIRS, 48>(s, out),
            _ => unreachable!("panel width {width}"),
        }
    }
}

/// [`pack`] with the panel width `W` known (a multiple of 8), so the layout arithmetic is
/// shifts.
///
/// # Safety
/// As [`pack`].
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn pack_as<const PAIRS: bool, const W: usize>(s: Src, out: &mut [u32]) {
    let slots = if PAIRS { s.k.div_ceil(2) } else { s.k };
    let padded = s.w.next_multiple_of(W);
    let top = _mm512_set1_epi32(0xffff_0000u32 as i32);
    // Stores the values of w0..w0+16 for one slot (a panel holds whole halves of 8).
    let mut put = |w0: usize, slot: usize, v: __m512i| {
        let at = |w: usize| w / W * W * slots + slot * W + w % W;
        if W.is_multiple_of(16) {
            let dst = &mut out[at(w0)..][..16];
            // SAFETY: `dst` holds 16 u32.
            return unsafe { _mm512_storeu_si512(dst.as_mut_ptr().cast(), v) };
        }
        let halves = [_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64::<1>(v)];
        for (w, half) in [w0, w0 + 8].into_iter().zip(halves) {
            if w < padded {
                let dst = &mut out[at(w)..][..8];
                // SAFETY: `dst` holds 8 u32.
                unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), half) };
            }
        }
    };
    if s.sk == 1 && s.sw != 1 {
        // k contiguous: 16 slots of each of 16 w, transposed.
        for w0 in (0..padded).step_by(16) {
            for s0 in (0..slots).step_by(16) {
                // SAFETY: `along_k` reads only elements of `s`.
                let rows = std::array::from_fn(|l| unsafe { along_k::<PAIRS>(s, w0 + l, s0) });
                for (i, v) in transpose16(rows).into_iter().enumerate().take(slots - s0) {
                    put(w0, s0 + i, v);
                }
            }
        }
        return;
    }
    // w contiguous (or neither): along the rows of `s`, so that reads are sequential.
    for slot in 0..slots {
        if s.sw == 1 {
            // A task's chunk of a long-k operand is a short piece of each row, too short for
            // the hardware prefetcher.
            let per_slot = 1 + PAIRS as usize;
            for kk in (slot + AHEAD) * per_slot..((slot + AHEAD + 1) * per_slot).min(s.k) {
                for w in (0..s.w).step_by(16) {
                    _mm_prefetch::<_MM_HINT_T0>(s.ptr.wrapping_add(kk * s.sk + w).cast());
                }
            }
        }
        for w0 in (0..padded).step_by(16) {
            // SAFETY: `along_w` reads only elements of `s`.
            let v = unsafe {
                if PAIRS {
                    let (e, o) = (along_w(s, 2 * slot, w0), along_w(s, 2 * slot + 1, w0));
                    _mm512_or_si512(_mm512_and_si512(o, top), _mm512_srli_epi32::<16>(e))
                } else {
                    _mm512_and_si512(along_w(s, slot, w0), top)
                }
            };
            put(w0, slot, v);
        }
    }
}

/// `s(kk, w0..w0+16)` rounded (bf16 in the top 16 bits, the low bits garbage), zero
/// outside `s`.
///
/// # Safety
/// `s` addresses in-bounds elements for `kk < s.k`, `w < s.w`.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn along_w(s: Src, kk: usize, w0: usize) -> __m512i {
    let lanes = s.w.saturating_sub(w0).min(16);
    if kk >= s.k || lanes == 0 {
        return _mm512_setzero_si512();
    }
    // SAFETY: element (kk, w0) is in `s`, and so are the `lanes` elements read from it.
    unsafe {
        let base = s.ptr.add(kk * s.sk + w0 * s.sw);
        if s.sw == 1 {
            return round(_mm512_maskz_loadu_ps(((1u32 << lanes) - 1) as u16, base));
        }
        let mut g = [0.0f32; 16];
        for (l, x) in g.iter_mut().enumerate().take(lanes) {
            *x = *base.add(l * s.sw);
        }
        round(_mm512_loadu_ps(g.as_ptr()))
    }
}

/// For `s.sk == 1`: the 16 slots from `s0` of column `w`, packed (zero outside `s`).
///
/// # Safety
/// `s.sk == 1` and `s` addresses in-bounds elements for `kk < s.k`, `w < s.w`.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
unsafe fn along_k<const PAIRS: bool>(s: Src, w: usize, s0: usize) -> __m512i {
    let k0 = s0 * (1 + PAIRS as usize);
    let n = s.k.saturating_sub(k0).min(if PAIRS { 32 } else { 16 });
    if w >= s.w || n == 0 {
        return _mm512_setzero_si512();
    }
    let mask = |z: usize| ((1u32 << n.saturating_sub(16 * z).min(16)) - 1) as u16;
    // SAFETY: elements (k0 .. k0 + n, w) are in `s` and contiguous; the masks stop there.
    unsafe {
        let base = s.ptr.add(k0 + w * s.sw);
        let lo = round(_mm512_maskz_loadu_ps(mask(0), base));
        if !PAIRS {
            return _mm512_and_si512(lo, _mm512_set1_epi32(0xffff_0000u32 as i32));
        }
        let hi = round(_mm512_maskz_loadu_ps(mask(1), base.wrapping_add(16)));
        // The top 16-bit half of each of the 32 lanes, in order: pair q = (k 2q, k 2q+1).
        let odd_halves = _mm512_set_epi16(
            63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29, 27, 25, 23, 21,
            19, 17, 15, 13, 11, 9, 7, 5, 3, 1,
        );
        _mm512_permutex2var_epi16(lo, odd_halves, hi)
    }
}

/// f32 → bf16 RNE on 16 lanes, as `bf16_gemm::round_bf16` (bf16 in the top 16 bits; the low
/// bits are garbage).
#[inline]
#[target_feature(enable = "avx512f")]
fn round(x: __m512) -> __m512i {
    let b = _mm512_castps_si512(x);
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(b), _mm512_set1_epi32(1));
    let rounded = _mm512_add_epi32(b, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff)));
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(x, x);
    _mm512_mask_or_epi32(rounded, nan, b, _mm512_set1_epi32(0x0040_0000))
}

/// Transposes a 16×16 matrix of u32 (row i in `r[i]`).
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: [__m512i; 16]) -> [__m512i; 16] {
    // t: 2×2 blocks within each 128-bit lane.
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let (x, y) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi32(x, y)
        } else {
            _mm512_unpackhi_epi32(x, y)
        }
    });
    // u[4g + c], 128-bit lane L: rows 4g..4g+4 of column 4L + c.
    let u: [__m512i; 16] = std::array::from_fn(|i| {
        let (g, c) = (i & !3, i % 4);
        let (x, y) = (t[g + c / 2], t[g + 2 + c / 2]);
        if c % 2 == 0 {
            _mm512_unpacklo_epi64(x, y)
        } else {
            _mm512_unpackhi_epi64(x, y)
        }
    });
    // Output row 4L + c gathers lane L of u[c], u[4 + c], u[8 + c], u[12 + c].
    let mut o = [_mm512_setzero_si512(); 16];
    for c in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x88>(u[c], u[4 + c]);
        let v1 = _mm512_shuffle_i32x4::<0xdd>(u[c], u[4 + c]);
        let w0 = _mm512_shuffle_i32x4::<0x88>(u[8 + c], u[12 + c]);
        let w1 = _mm512_shuffle_i32x4::<0xdd>(u[8 + c], u[12 + c]);
        o[c] = _mm512_shuffle_i32x4::<0x88>(v0, w0);
        o[4 + c] = _mm512_shuffle_i32x4::<0x88>(v1, w1);
        o[8 + c] = _mm512_shuffle_i32x4::<0xdd>(v0, w0);
        o[12 + c] = _mm512_shuffle_i32x4::<0xdd>(v1, w1);
    }
    o
}
