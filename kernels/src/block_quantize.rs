//! The two-pass block quantizer: block statistics on the device, the scales from the CPU
//! oracle's `BlockScale::compute` on the host, then an element-wise device pass.
//!
//! Three ways to get a block's scale to the device:
//! - **table** (rules of the block amax alone: NVFP4 two-level, absmax→2^k, the UE8M0 rules;
//!   1×g groups and g×g tiles): block amaxes stay on the device and index a
//!   [`ScaleTable`]; NVFP4's tensor amax is reduced on the device, only the per-chunk partials
//!   are read back. This is how NVFP4 (1×16 activations and gradients, 16×16 weight tiles) and
//!   FP8 block scaling's 128×128 weight tiles run.
//! - **tensor** (one scale from the tensor's amax: FP8 current scaling, INT absmax, unscaled
//!   casts incl. bf16): device partial amaxes, the scale computed on the host (so 448/amax is
//!   the CPU's division), one element-wise pass.
//! - **direct** (absmean: ternary and signed INT, per tensor, row or 1×g group; absmax per row
//!   or group): per-block amax and Σ|v| are read back, the host computes each block's scale
//!   (a tensor's Σ|v| merged over rows in f64, as the CPU does), the device applies them.
//!
//! Transforms are not covered here (the fused group kernel handles transformed 1×g blocks).

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};
use nibble_formats::Grid;
use nibble_formats::block_scale::{BlockScale, TensorInfo};
use nibble_formats::element::AnyGrid;
use nibble_formats::spec::{Block, QuantSpec, Rounding, ScaleRule, Transform};
use nibble_formats::stats::Stats;

use crate::block_apply::{BF16, INT, MINIFLOAT, block_apply};
use crate::block_stats::{block_amax, reduce_amax, row_block_stats};
use crate::group_quantize::GroupOutput;
use crate::scale_table::{ScaleTable, entry};

/// How the scales of a covered spec reach the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Block amaxes on the device index a scale table; blocks of bh×bw.
    Table { bh: usize, bw: usize },
    /// Per-block statistics read back, scales computed on the host; 1-row blocks of bw columns
    /// (`per_tensor`: one scale from all rows merged).
    Direct { bw: usize, per_tensor: bool },
    /// One scale from the tensor's amax, reduced on the device.
    Tensor,
}

/// The element grid as the apply pass sees it.
struct GridParams {
    kind: u32,
    lo: f32,
    hi: f32,
    mbits: u32,
    emin_biased: i32,
    /// `max_elem` and `emax` as the CPU passes them to `BlockScale::compute`.
    max_elem: f32,
    emax: i32,
}

fn grid_params(spec: &QuantSpec) -> Option<GridParams> {
    match spec.element.grid() {
        AnyGrid::Mini(m) if m.signed => Some(GridParams {
            kind: MINIFLOAT,
            lo: -m.max(),
            hi: m.max(),
            mbits: m.mbits,
            emin_biased: m.emin() + 127,
            max_elem: m.max(),
            emax: m.emax(),
        }),
        AnyGrid::Half(h) if h.bf16 => Some(GridParams {
            kind: BF16,
            lo: h.lo(),
            hi: h.hi(),
            mbits: 0,
            emin_biased: 0,
            max_elem: h.hi(),
            emax: 0,
        }),
        AnyGrid::Int(g) if g.qmin < 0 => Some(GridParams {
            kind: INT,
            lo: g.lo(),
            hi: g.hi(),
            mbits: 0,
            emin_biased: 0,
            max_elem: g.hi(),
            emax: 0,
        }),
        _ => None,
    }
}

/// How `spec` runs on a `rows × cols` tensor here, or None (another kernel or the host path).
pub fn mode(spec: &QuantSpec, cols: usize) -> Option<Mode> {
    spec.validate().ok()?;
    if spec.transform != Transform::None || cols == 0 {
        return None;
    }
    let gp = grid_params(spec)?;
    if gp.kind == BF16 && (spec.block != Block::Tensor || spec.rounding != Rounding::Rne) {
        return None;
    }
    let amax_only = match spec.scale {
        ScaleRule::Nvfp4 { .. } | ScaleRule::Absmax { pow2: true } => true,
        ScaleRule::OcpFloor | ScaleRule::Ceil | ScaleRule::RCeil => gp.kind == MINIFLOAT,
        _ => false,
    };
    let host_scaled = matches!(
        spec.scale,
        ScaleRule::Absmean | ScaleRule::Absmax { .. } | ScaleRule::Nvfp4 { .. }
    );
    match spec.block {
        Block::Group(g) | Block::Tile(g) if amax_only => Some(Mode::Table {
            bh: if matches!(spec.block, Block::Tile(_)) {
                g
            } else {
                1
            },
            bw: g,
        }),
        Block::Group(g) if host_scaled => Some(Mode::Direct {
            bw: g,
            per_tensor: false,
        }),
        Block::Row if host_scaled => Some(Mode::Direct {
            bw: cols,
            per_tensor: false,
        }),
        Block::Tensor if matches!(spec.scale, ScaleRule::Absmax { .. } | ScaleRule::None) => {
            Some(Mode::Tensor)
        }
        Block::Tensor if spec.scale == ScaleRule::Absmean => Some(Mode::Direct {
            bw: cols,
            per_tensor: true,
        }),
        _ => None,
    }
}

fn dim() -> CubeDim {
    CubeDim::new_1d(64)
}

fn read_f32<R: Runtime>(client: &ComputeClient<R>, h: Handle) -> Vec<f32> {
    f32::from_bytes(&client.read_one(h).expect("read device buffer")).to_vec()
}

/// Quantize-dequantize `rows × cols` contiguous f32 values with `spec`; None if [`mode`]
/// declines the spec. `rows · cols` must be below 2^32 (32-bit indices and SR counters).
#[allow(clippy::too_many_arguments)]
pub fn quantize_blocks<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    rows: usize,
    cols: usize,
    spec: &QuantSpec,
    seed: u64,
    want_keep: bool,
) -> Option<GroupOutput> {
    let mode = mode(spec, cols)?;
    let gp = grid_params(spec)?;
    let len = rows * cols;
    assert!(len < (1usize << 32), "tensor too large for 32-bit indexing");
    let values = client.empty(len.max(1) * 4);
    let keep = want_keep.then(|| client.empty(len.max(1) * 4));
    if len == 0 {
        return Some(GroupOutput { values, keep });
    }
    let scale_of =
        |st: &Stats, t: &TensorInfo| BlockScale::compute(spec.scale, gp.max_elem, gp.emax, st, t);
    // SAFETY (every `from_raw_parts` below): each handle holds at least the declared number of
    // 4-byte elements; kernels bound their indices by those lengths.
    #[allow(unsafe_code)]
    let a_in = || unsafe { ArrayArg::from_raw_parts(input.clone(), len) };
    let (bh, bw, stat, thresholds, entries) = match mode {
        Mode::Table { bh, bw } => {
            let nbc = cols.div_ceil(bw);
            let nb = rows.div_ceil(bh) * nbc;
            let stat = client.empty(nb * 4);
            #[allow(unsafe_code)]
            let a_stat = unsafe { ArrayArg::from_raw_parts(stat.clone(), nb) };
            block_amax::launch::<R>(
                client,
                calculate_cube_count_elemwise(client, nb, dim()),
                dim(),
                a_in(),
                a_stat,
                rows as u32,
                cols as u32,
                bh as u32,
                bw as u32,
                nbc as u32,
            );
            let tensor = if matches!(spec.scale, ScaleRule::Nvfp4 { .. }) {
                // A NaN block amax flags the tensor non-finite, as the CPU's pre-pass does.
                let (amax, bad) = reduce_amax::<R>(client, &stat, nb);
                TensorInfo {
                    amax: if bad { f32::NAN } else { amax },
                }
            } else {
                TensorInfo::default()
            };
            let table = ScaleTable::build(|a| {
                let st = Stats {
                    amax: a,
                    n: bh * bw,
                    ..Stats::EMPTY
                };
                scale_of(&st, &tensor)
            })?;
            let entries = table.flat_entries();
            (bh, bw, stat, table.thresholds, entries)
        }
        Mode::Tensor => {
            let (amax, bad) = reduce_amax::<R>(client, input, len);
            let st = Stats {
                amax,
                n: len,
                nonfinite: bad,
                ..Stats::EMPTY
            };
            let tensor = TensorInfo {
                amax: if bad { f32::NAN } else { amax },
            };
            let entries = entry(&scale_of(&st, &tensor))?.to_vec();
            (rows, cols, client.empty(4), vec![0u32], entries)
        }
        Mode::Direct { bw, per_tensor } => {
            let nbc = cols.div_ceil(bw);
            let nb = rows * nbc;
            let amax_h = client.empty(nb * 4);
            let sum_h = client.empty(nb * 4);
            #[allow(unsafe_code)]
            let (a_amax, a_sum) = unsafe {
                (
                    ArrayArg::from_raw_parts(amax_h.clone(), nb),
                    ArrayArg::from_raw_parts(sum_h.clone(), nb),
                )
            };
            row_block_stats::launch::<R>(
                client,
                calculate_cube_count_elemwise(client, nb, dim()),
                dim(),
                a_in(),
                a_amax,
                a_sum,
                cols as u32,
                bw as u32,
                nbc as u32,
            );
            let amax = read_f32(client, amax_h);
            let sums = read_f32(client, sum_h);
            let stats: Vec<Stats> = (0..nb)
                .map(|b| {
                    let a = amax[b];
                    Stats {
                        amax: if a.is_nan() { 0.0 } else { a },
                        sum_abs: sums[b],
                        n: bw.min(cols - (b % nbc) * bw),
                        nonfinite: a.is_nan(),
                        ..Stats::EMPTY
                    }
                })
                .collect();
            let merged = Stats::merge_rows(&stats);
            let tensor = TensorInfo {
                amax: if merged.nonfinite {
                    f32::NAN
                } else {
                    merged.amax
                },
            };
            let entries: Option<Vec<[f32; 4]>> = if per_tensor {
                entry(&scale_of(&merged, &tensor)).map(|e| vec![e])
            } else {
                stats
                    .iter()
                    .map(|st| entry(&scale_of(st, &tensor)))
                    .collect()
            };
            let entries = entries?.into_iter().flatten().collect();
            let bh = if per_tensor { rows } else { 1 };
            (bh, bw, client.empty(4), vec![0u32], entries)
        }
    };
    let lookup = matches!(mode, Mode::Table { .. });
    let thr_len = thresholds.len();
    let tab_len = entries.len();
    let thr_h = client.create_from_slice(u32::as_bytes(&thresholds));
    let tab_h = client.create_from_slice(f32::as_bytes(&entries));
    let keep_h = keep.clone().unwrap_or_else(|| client.empty(4));
    let stat_len = if lookup {
        rows.div_ceil(bh) * cols.div_ceil(bw)
    } else {
        1
    };
    #[allow(unsafe_code)]
    let (a_out, a_keep, a_stat, a_thr, a_tab) = unsafe {
        (
            ArrayArg::from_raw_parts(values.clone(), len),
            ArrayArg::from_raw_parts(keep_h, if want_keep { len } else { 1 }),
            ArrayArg::from_raw_parts(stat, stat_len),
            ArrayArg::from_raw_parts(thr_h, thr_len),
            ArrayArg::from_raw_parts(tab_h, tab_len),
        )
    };
    block_apply::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, len, dim()),
        dim(),
        a_in(),
        a_out,
        a_keep,
        a_stat,
        a_thr,
        a_tab,
        len as u32,
        cols as u32,
        bh as u32,
        bw as u32,
        cols.div_ceil(bw) as u32,
        if lookup { thr_len as u32 } else { 0 },
        gp.lo,
        gp.hi,
        gp.mbits,
        gp.emin_biased,
        seed as u32,
        (seed >> 32) as u32,
        gp.kind,
        lookup,
        spec.rounding == Rounding::Stochastic,
        want_keep,
    );
    Some(GroupOutput { values, keep })
}
