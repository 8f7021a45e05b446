//! `quantize_dequantize` and `quantize_packed`: the block quantizer.
//!
//! Per block: (optional) Hadamard along the last axis → statistics → [`BlockScale`] →
//! `y = (v·enc)·pre + off` → clip bit → RNE or SR onto the grid → code → `((q − off)·dec)·post`.
//! Values come back in the transformed domain (what a GEMM consumes); invert with
//! [`crate::hadamard::inverse_rows`] if you need the original basis.
//!
//! The tensor is viewed as rows × cols with cols the last axis. Work is split into groups of
//! whole rows (whole tile rows for g×g tiles) and run on rayon's pool (the per-task loops are in
//! `task.rs`).

use rayon::prelude::*;

use crate::block_scale::{BlockScale, TensorInfo};
use crate::clip_mask::ClipMask;
use crate::element::AnyGrid;
use crate::error::{FormatError, Result};
use crate::grid::Grid;
use crate::minifloat::Minifloat;
use crate::packed::Packed;
use crate::simd_row::SimdRow;
use crate::spec::{Block, QuantSpec, ScaleRule};
use crate::stats::Stats;
use crate::task::{Ctx, Task, process_dispatch, transform_row};

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
    if let Some(g) = spec.transform.size()
        && !cols.is_multiple_of(g)
    {
        return Err(FormatError::HadamardDivisibility { cols, g });
    }
    Ok((rows, cols))
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
            Some(m),
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
            None,
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
            None,
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
    minifloat: Option<Minifloat>,
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
    let signs = spec.transform.signs(seed);
    let simd = minifloat.and_then(|m| SimdRow::new(spec, &m, cols, signs.as_deref()));
    let mut ctx = Ctx {
        grid,
        spec: *spec,
        cols,
        seed,
        signs,
        max_elem,
        emax,
        needs,
        tensor: TensorInfo::default(),
        tensor_scale: None,
        pre_transformed: false,
        simd,
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
        ctx.simd = None;
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
