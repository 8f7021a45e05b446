//! One task of the block quantizer (a group of whole rows): the ISA dispatch and the block loops.
//!
//! Per block: statistics → [`BlockScale`] → `y = (v·enc)·pre + off` → clip bit → RNE or SR onto
//! the grid → code → `((q − off)·dec)·post`. 1×N row blocks go to the fused kernels
//! ([`crate::simd_row`] where it applies on AVX2/AVX-512, else [`crate::group_kernel`]).

use crate::block_scale::{BlockScale, TensorInfo};
use crate::grid::Grid;
use crate::group_kernel;
use crate::hadamard;
use crate::philox::{STREAM_SR, UniformCursor};
use crate::simd_row::SimdRow;
use crate::spec::{Block, QuantSpec, Rounding, ScaleRule};
use crate::stats::{Needs, Stats};

/// Everything the per-task workers share.
pub(crate) struct Ctx<G> {
    pub(crate) grid: G,
    pub(crate) spec: QuantSpec,
    pub(crate) cols: usize,
    pub(crate) seed: u64,
    pub(crate) signs: Option<Vec<f32>>,
    pub(crate) max_elem: f32,
    pub(crate) emax: i32,
    pub(crate) needs: Needs,
    pub(crate) tensor: TensorInfo,
    pub(crate) tensor_scale: Option<BlockScale>,
    pub(crate) pre_transformed: bool,
    /// Parameters of the explicit-SIMD row kernel, where it applies to the spec.
    pub(crate) simd: Option<SimdRow>,
}

pub(crate) struct Task<'a> {
    pub(crate) row0: usize,
    /// The input rows, or None when `dst` already holds them (in place).
    pub(crate) src: Option<&'a [f32]>,
    pub(crate) dst: &'a mut [f32],
    pub(crate) mask: &'a mut [u64],
    pub(crate) codes: Option<&'a mut [u8]>,
    pub(crate) scales: Option<&'a mut [BlockScale]>,
}

/// Run [`process`] compiled for the widest available vector ISA (see [`crate::isa`]), with that
/// ISA's [`crate::simd_row`] kernel (none on the baseline path).
#[allow(unsafe_code)]
pub(crate) fn process_dispatch<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    #[cfg(target_arch = "x86_64")]
    match crate::isa::current() {
        // SAFETY: `isa::current` only returns an ISA whose features the running CPU reports.
        crate::isa::Isa::Avx512 => return unsafe { process_avx512(ctx, t) },
        // SAFETY: as above.
        crate::isa::Isa::Avx2 => return unsafe { process_avx2(ctx, t) },
        crate::isa::Isa::Baseline => {}
    }
    process(ctx, t, |_, _, _, _| false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn process_avx512<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    process(ctx, t, |p, src, dst, mask| {
        crate::simd_avx512::row(p, src, dst, mask);
        true
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn process_avx2<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    process(ctx, t, |p, src, dst, mask| {
        crate::simd_avx2::row(p, src, dst, mask);
        true
    })
}

pub(crate) fn transform_row<G>(ctx: &Ctx<G>, row: &mut [f32]) {
    if let Some(g) = ctx.spec.transform.size() {
        for b in row.chunks_exact_mut(g) {
            hadamard::forward_block(b, ctx.signs.as_deref());
        }
    }
}

/// `simd_row` runs the ISA's SIMD kernel on one row and returns true, or returns false (no
/// kernel on this path): see [`crate::simd_row`].
#[inline(always)]
fn process<G: Grid>(
    ctx: &Ctx<G>,
    t: Task<'_>,
    simd_row: impl Fn(&SimdRow, Option<&[f32]>, &mut [f32], &mut [u64]) -> bool,
) {
    let Task {
        row0,
        src,
        dst,
        mask,
        mut codes,
        mut scales,
    } = t;
    let cols = ctx.cols;
    let wpr = cols.div_ceil(64);
    let mut cursor = (ctx.spec.rounding == Rounding::Stochastic)
        .then(|| UniformCursor::new(ctx.seed, STREAM_SR));
    if let Block::Group(g) = ctx.spec.block
        && let Some(n) = group_kernel::fused_size(g, cols, ctx.spec.transform.size())
    {
        let nblk = cols / n;
        for r in 0..dst.len() / cols {
            let src_row = src
                .filter(|_| !ctx.pre_transformed)
                .map(|s| &s[r * cols..(r + 1) * cols]);
            let transform = !ctx.pre_transformed;
            let row = &mut dst[r * cols..(r + 1) * cols];
            let mrow = &mut mask[r * wpr..(r + 1) * wpr];
            let c = codes
                .as_deref_mut()
                .map(|c| &mut c[r * cols..(r + 1) * cols]);
            let s = scales
                .as_deref_mut()
                .map(|s| &mut s[r * nblk..(r + 1) * nblk]);
            // The SIMD kernel writes no codes or scales: packing takes the portable kernel.
            if let (Some(p), None) = (&ctx.simd, &c)
                && simd_row(p, src_row, row, mrow)
            {
                continue;
            }
            let base = ((row0 + r) * cols) as u64;
            let cur = cursor.as_mut();
            match n {
                16 => {
                    group_kernel::row::<G, 16>(ctx, src_row, transform, row, mrow, c, s, cur, base)
                }
                32 => {
                    group_kernel::row::<G, 32>(ctx, src_row, transform, row, mrow, c, s, cur, base)
                }
                _ => {
                    group_kernel::row::<G, 64>(ctx, src_row, transform, row, mrow, c, s, cur, base)
                }
            }
        }
        return;
    }
    if !ctx.pre_transformed {
        if let Some(src) = src {
            dst.copy_from_slice(src);
        }
        for row in dst.chunks_mut(cols) {
            transform_row(ctx, row);
        }
    }
    let scale_of =
        |st: &Stats| BlockScale::compute(ctx.spec.scale, ctx.max_elem, ctx.emax, st, &ctx.tensor);
    let nrows = dst.len() / cols;
    match ctx.spec.block {
        Block::Tensor | Block::Row | Block::Group(_) => {
            let g = match ctx.spec.block {
                Block::Group(g) => g,
                _ => cols,
            };
            let nblk = cols.div_ceil(g);
            for r in 0..nrows {
                let row = &mut dst[r * cols..(r + 1) * cols];
                let mrow = &mut mask[r * wpr..(r + 1) * wpr];
                let base = ((row0 + r) * cols) as u64;
                for (b, vals) in row.chunks_mut(g).enumerate() {
                    let bs = match ctx.tensor_scale {
                        Some(bs) => bs,
                        None => scale_of(&Stats::of(vals, ctx.needs)),
                    };
                    if let Some(s) = scales.as_deref_mut() {
                        s[r * nblk + b] = bs;
                    }
                    let c0 = b * g;
                    let code_slice = codes
                        .as_deref_mut()
                        .map(|c| &mut c[r * cols + c0..r * cols + c0 + vals.len()]);
                    quantize_span(
                        ctx,
                        &bs,
                        vals,
                        mrow,
                        c0,
                        code_slice,
                        cursor.as_mut(),
                        base + c0 as u64,
                    );
                }
            }
        }
        Block::Tile(g) => {
            let ntc = cols.div_ceil(g);
            for (tr, band) in dst.chunks_mut(g * cols).enumerate() {
                let band_rows = band.len() / cols;
                for tc in 0..ntc {
                    let c0 = tc * g;
                    let c1 = (c0 + g).min(cols);
                    let st = (0..band_rows)
                        .map(|r| Stats::of(&band[r * cols + c0..r * cols + c1], ctx.needs))
                        .fold(Stats::EMPTY, Stats::merge);
                    let bs = scale_of(&st);
                    if let Some(s) = scales.as_deref_mut() {
                        s[tr * ntc + tc] = bs;
                    }
                    for r in 0..band_rows {
                        let rr = tr * g + r;
                        let vals = &mut band[r * cols + c0..r * cols + c1];
                        let mrow = &mut mask[rr * wpr..(rr + 1) * wpr];
                        let code_slice = codes
                            .as_deref_mut()
                            .map(|c| &mut c[rr * cols + c0..rr * cols + c1]);
                        let base = ((row0 + rr) * cols + c0) as u64;
                        quantize_span(ctx, &bs, vals, mrow, c0, code_slice, cursor.as_mut(), base);
                    }
                }
            }
        }
    }
}

/// Quantize-dequantize one span (a block, or the part of a tile in one row) in place.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn quantize_span<G: Grid>(
    ctx: &Ctx<G>,
    bs: &BlockScale,
    vals: &mut [f32],
    mask_row: &mut [u64],
    col0: usize,
    codes: Option<&mut [u8]>,
    cursor: Option<&mut UniformCursor>,
    base: u64,
) {
    let grid = &ctx.grid;
    if bs.nan {
        vals.fill(f32::NAN);
        for i in 0..vals.len() {
            let c = col0 + i;
            mask_row[c / 64] |= 1 << (c % 64);
        }
        if let Some(codes) = codes {
            codes.fill(grid.code(f32::NAN));
        }
        return;
    }
    for v in vals.iter_mut() {
        *v *= bs.enc;
    }
    if bs.pre != 1.0 {
        for v in vals.iter_mut() {
            *v *= bs.pre;
        }
    }
    if bs.off != 0.0 {
        for v in vals.iter_mut() {
            *v += bs.off;
        }
    }
    let (lo, hi) = (grid.lo(), grid.hi());
    // QuEST's trust mask keeps |y| < 6 only; other rules flag values strictly outside the grid.
    let quest = matches!(ctx.spec.scale, ScaleRule::Quest { .. });
    for (i, &y) in vals.iter().enumerate() {
        let clipped = if quest {
            y >= hi || y <= lo
        } else {
            y > hi || y < lo
        };
        let c = col0 + i;
        mask_row[c / 64] |= (clipped as u64) << (c % 64);
    }
    match cursor {
        None => {
            for v in vals.iter_mut() {
                *v = grid.rne(*v);
            }
        }
        Some(cur) => {
            for (i, v) in vals.iter_mut().enumerate() {
                *v = grid.sr(*v, cur.at(base + i as u64));
            }
        }
    }
    if let Some(codes) = codes {
        for (c, &q) in codes.iter_mut().zip(vals.iter()) {
            *c = grid.code(q);
        }
    }
    if bs.off != 0.0 {
        for v in vals.iter_mut() {
            *v -= bs.off;
        }
    }
    for v in vals.iter_mut() {
        *v *= bs.dec;
    }
    if bs.post != 1.0 {
        for v in vals.iter_mut() {
            *v *= bs.post;
        }
    }
}
