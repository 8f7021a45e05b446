//! `quantize_dequantize` and `quantize_packed`: the block quantizer.
//!
//! Per block: (optional) Hadamard along the last axis → statistics → [`BlockScale`] →
//! `y = (v·enc)·pre + off` → clip bit → RNE or SR onto the grid → code → `((q − off)·dec)·post`.
//! Values come back in the transformed domain (what a GEMM consumes); invert with
//! [`crate::hadamard::inverse_rows`] if you need the original basis.
//!
//! The tensor is viewed as rows × cols with cols the last axis. Work is split into groups of
//! whole rows (whole tile rows for g×g tiles) and run on rayon's pool.

use rayon::prelude::*;

use crate::block_scale::{BlockScale, TensorInfo};
use crate::clip_mask::ClipMask;
use crate::element::AnyGrid;
use crate::error::{FormatError, Result};
use crate::grid::Grid;
use crate::group_kernel;
use crate::hadamard;
use crate::packed::Packed;
use crate::philox::{STREAM_SR, UniformCursor};
use crate::spec::{Block, QuantSpec, Rounding, ScaleRule};
use crate::stats::{Needs, Stats};

/// Dequantized values (same shape as the input) and the clip mask.
#[derive(Clone, Debug)]
pub struct QuantOutput {
    pub values: Vec<f32>,
    pub clip: ClipMask,
}

/// Quantize and dequantize `data` (row-major, `shape`) with `spec`. `seed` keys stochastic
/// rounding (Philox stream 0) and seeded Hadamard signs (stream 1).
pub fn quantize_dequantize(
    spec: &QuantSpec,
    data: &[f32],
    shape: &[usize],
    seed: u64,
) -> Result<QuantOutput> {
    let (rows, cols) = check(spec, data, shape)?;
    let mut values = vec![0f32; data.len()];
    let mut clip = ClipMask::new(rows, cols);
    run(
        spec,
        Some(data),
        rows,
        cols,
        seed,
        &mut values,
        &mut clip,
        None,
    );
    Ok(QuantOutput { values, clip })
}

/// Like [`quantize_dequantize`], writing into caller-owned buffers (reused across calls, no
/// allocation). `clip` is reset.
pub fn quantize_dequantize_into(
    spec: &QuantSpec,
    data: &[f32],
    shape: &[usize],
    seed: u64,
    out: &mut [f32],
    clip: &mut ClipMask,
) -> Result<()> {
    let (rows, cols) = check(spec, data, shape)?;
    if out.len() != data.len() {
        return Err(FormatError::ShapeMismatch {
            shape: shape.to_vec(),
            expected: data.len(),
            actual: out.len(),
        });
    }
    clip.reset(rows, cols);
    run(spec, Some(data), rows, cols, seed, out, clip, None);
    Ok(())
}

/// Like [`quantize_dequantize_into`] with the input already in `buf` (quantized in place: no
/// second buffer, no copy). Same bits as the out-of-place forms.
pub fn quantize_dequantize_in_place(
    spec: &QuantSpec,
    buf: &mut [f32],
    shape: &[usize],
    seed: u64,
    clip: &mut ClipMask,
) -> Result<()> {
    let (rows, cols) = check(spec, buf, shape)?;
    clip.reset(rows, cols);
    run(spec, None, rows, cols, seed, buf, clip, None);
    Ok(())
}

/// Quantize to codes + scales (the packed form used for export). `Packed::dequantize` returns the
/// same bits as [`quantize_dequantize`].
pub fn quantize_packed(
    spec: &QuantSpec,
    data: &[f32],
    shape: &[usize],
    seed: u64,
) -> Result<Packed> {
    let (rows, cols) = check(spec, data, shape)?;
    if matches!(spec.element.grid(), AnyGrid::Half(_)) {
        return Err(FormatError::InvalidSpec(
            "bf16/f16 have no byte codes to pack".into(),
        ));
    }
    let mut values = vec![0f32; data.len()];
    let mut clip = ClipMask::new(rows, cols);
    let mut codes = vec![0u8; data.len()];
    let mut blocks = vec![BlockScale::IDENTITY; block_count(spec.block, rows, cols)];
    run(
        spec,
        Some(data),
        rows,
        cols,
        seed,
        &mut values,
        &mut clip,
        Some((&mut codes, &mut blocks)),
    );
    Ok(Packed {
        spec: *spec,
        shape: shape.to_vec(),
        rows,
        cols,
        codes,
        blocks,
    })
}

/// (rows, cols) of a shape: cols is the last axis.
pub fn rows_cols(shape: &[usize]) -> (usize, usize) {
    match shape.split_last() {
        None => (1, 1),
        Some((&c, rest)) => (rest.iter().product(), c),
    }
}

/// Number of scale blocks of a tensor, in the row-major block order used by `Packed`.
pub fn block_count(block: Block, rows: usize, cols: usize) -> usize {
    match block {
        Block::Tensor => 1,
        Block::Row => rows,
        Block::Group(g) => rows * cols.div_ceil(g),
        Block::Tile(g) => rows.div_ceil(g) * cols.div_ceil(g),
    }
}

fn check(spec: &QuantSpec, data: &[f32], shape: &[usize]) -> Result<(usize, usize)> {
    spec.validate()?;
    let n: usize = shape.iter().product();
    if n != data.len() {
        return Err(FormatError::ShapeMismatch {
            shape: shape.to_vec(),
            expected: n,
            actual: data.len(),
        });
    }
    let (rows, cols) = rows_cols(shape);
    if let Some(g) = spec.transform.size() {
        if cols % g != 0 {
            return Err(FormatError::HadamardDivisibility { cols, g });
        }
    }
    Ok((rows, cols))
}

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
}

pub(crate) struct Task<'a> {
    row0: usize,
    /// The input rows, or None when `dst` already holds them (in place).
    src: Option<&'a [f32]>,
    dst: &'a mut [f32],
    mask: &'a mut [u64],
    codes: Option<&'a mut [u8]>,
    scales: Option<&'a mut [BlockScale]>,
}

/// `data` None: `out` holds the input (quantized in place).
#[allow(clippy::too_many_arguments)]
fn run(
    spec: &QuantSpec,
    data: Option<&[f32]>,
    rows: usize,
    cols: usize,
    seed: u64,
    out: &mut [f32],
    clip: &mut ClipMask,
    packed: Option<(&mut [u8], &mut [BlockScale])>,
) {
    match spec.element.grid() {
        AnyGrid::Mini(m) => run_grid(
            m,
            m.max(),
            m.emax(),
            spec,
            data,
            rows,
            cols,
            seed,
            out,
            clip,
            packed,
        ),
        AnyGrid::Int(g) => run_grid(
            g,
            g.hi(),
            0,
            spec,
            data,
            rows,
            cols,
            seed,
            out,
            clip,
            packed,
        ),
        AnyGrid::Half(h) => run_grid(
            h,
            h.hi(),
            0,
            spec,
            data,
            rows,
            cols,
            seed,
            out,
            clip,
            packed,
        ),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_grid<G: Grid>(
    grid: G,
    max_elem: f32,
    emax: i32,
    spec: &QuantSpec,
    data: Option<&[f32]>,
    rows: usize,
    cols: usize,
    seed: u64,
    out: &mut [f32],
    clip: &mut ClipMask,
    packed: Option<(&mut [u8], &mut [BlockScale])>,
) {
    if out.is_empty() {
        return;
    }
    let needs = crate::block_scale::needs(spec.scale);
    let mut ctx = Ctx {
        grid,
        spec: *spec,
        cols,
        seed,
        signs: spec.transform.signs(seed),
        max_elem,
        emax,
        needs,
        tensor: TensorInfo::default(),
        tensor_scale: None,
        pre_transformed: false,
    };
    let (codes, mut scales) = match packed {
        Some((c, s)) => (Some(c), Some(s)),
        None => (None, None),
    };

    // Tensor-level statistics (per-tensor scales, NVFP4's global amax) need a pass first; it also
    // applies the transform so that the statistics are those of the transformed tensor.
    if spec.block == Block::Tensor || matches!(spec.scale, ScaleRule::Nvfp4 { .. }) {
        let row_stats: Vec<Stats> = out
            .par_chunks_mut(cols)
            .enumerate()
            .map(|(r, d)| {
                if let Some(s) = data {
                    d.copy_from_slice(&s[r * cols..(r + 1) * cols]);
                }
                transform_row(&ctx, d);
                Stats::of(d, needs)
            })
            .collect();
        let st = Stats::merge_rows(&row_stats);
        ctx.tensor = TensorInfo {
            amax: if st.nonfinite { f32::NAN } else { st.amax },
        };
        if spec.block == Block::Tensor {
            let bs = BlockScale::compute(spec.scale, max_elem, emax, &st, &ctx.tensor);
            if let Some(s) = scales.as_deref_mut() {
                s[0] = bs;
            }
            ctx.tensor_scale = Some(bs);
        }
        ctx.pre_transformed = true;
    }

    let rows_per_task = match spec.block {
        Block::Tile(g) => (1usize << 15).div_ceil(cols * g).max(1) * g,
        _ => ((1usize << 15) / cols).max(1),
    };
    let scales_per_task = match spec.block {
        Block::Tensor => 0,
        Block::Row => rows_per_task,
        Block::Group(g) => rows_per_task * cols.div_ceil(g),
        Block::Tile(g) => rows_per_task / g * cols.div_ceil(g),
    };
    let chunk = rows_per_task * cols;
    let wpr = clip.words_per_row;
    let mut tasks = Vec::with_capacity(rows.div_ceil(rows_per_task));
    let mut code_chunks = codes.map(|c| c.chunks_mut(chunk));
    let mut scale_chunks = match spec.block {
        Block::Tensor => None,
        _ => scales.map(|s| s.chunks_mut(scales_per_task)),
    };
    for (i, (dst, mask)) in out
        .chunks_mut(chunk)
        .zip(clip.bits.chunks_mut(rows_per_task * wpr))
        .enumerate()
    {
        tasks.push(Task {
            row0: i * rows_per_task,
            src: data.map(|d| &d[i * chunk..i * chunk + dst.len()]),
            dst,
            mask,
            codes: code_chunks.as_mut().and_then(|it| it.next()),
            scales: scale_chunks.as_mut().and_then(|it| it.next()),
        });
    }
    tasks
        .into_par_iter()
        .for_each(|t| process_dispatch(&ctx, t));
}

/// Run [`process`] compiled for the widest available vector ISA (see [`crate::isa`]).
#[allow(unsafe_code)]
fn process_dispatch<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    #[cfg(target_arch = "x86_64")]
    match crate::isa::current() {
        // SAFETY: `isa::current` only returns an ISA whose features the running CPU reports.
        crate::isa::Isa::Avx512 => return unsafe { process_avx512(ctx, t) },
        // SAFETY: as above.
        crate::isa::Isa::Avx2 => return unsafe { process_avx2(ctx, t) },
        crate::isa::Isa::Baseline => {}
    }
    process(ctx, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn process_avx512<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    process(ctx, t)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn process_avx2<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
    process(ctx, t)
}

fn transform_row<G>(ctx: &Ctx<G>, row: &mut [f32]) {
    if let Some(g) = ctx.spec.transform.size() {
        for b in row.chunks_exact_mut(g) {
            hadamard::forward_block(b, ctx.signs.as_deref());
        }
    }
}

#[inline(always)]
fn process<G: Grid>(ctx: &Ctx<G>, t: Task<'_>) {
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
    if let Block::Group(g) = ctx.spec.block {
        if let Some(n) = group_kernel::fused_size(g, cols, ctx.spec.transform.size()) {
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
                let base = ((row0 + r) * cols) as u64;
                let cur = cursor.as_mut();
                match n {
                    16 => group_kernel::row::<G, 16>(
                        ctx, src_row, transform, row, mrow, c, s, cur, base,
                    ),
                    32 => group_kernel::row::<G, 32>(
                        ctx, src_row, transform, row, mrow, c, s, cur, base,
                    ),
                    _ => group_kernel::row::<G, 64>(
                        ctx, src_row, transform, row, mrow, c, s, cur, base,
                    ),
                }
            }
            return;
        }
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
