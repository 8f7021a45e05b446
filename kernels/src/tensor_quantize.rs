//! Per-tensor quantizers (FP8 current scaling, bf16 casts): a device pass of partial amaxes, the
//! scale computed on the host by the CPU oracle's own `BlockScale::compute` (so divisions such as
//! 448/amax are the CPU's bits, whatever the device's division accuracy), then an element-wise
//! device pass that scales, flags clipping, rounds and dequantizes.

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};
use nibble_formats::block_scale::{BlockScale, TensorInfo};
use nibble_formats::element::AnyGrid;
use nibble_formats::spec::{Block, QuantSpec, Rounding, ScaleRule, Transform};
use nibble_formats::stats::Stats;

use crate::device_math::{mini_rne, round_bf16};
use crate::group_quantize::GroupOutput;

/// Elements per unit of the amax pass.
const CHUNK: usize = 1024;

/// Element kinds of the cast pass (comptime selector).
const MINIFLOAT: u32 = 0;
const BF16: u32 = 1;

#[cube(launch)]
fn amax_partials(input: &Array<f32>, amax: &mut Array<f32>, bad: &mut Array<u32>, len: u32) {
    let c = ABSOLUTE_POS;
    if c >= amax.len() {
        terminate!();
    }
    let start = c * CHUNK;
    let mut end = start + CHUNK;
    if end > len as usize {
        end = len as usize;
    }
    // Max is order-free and NaN never wins `>`: any order gives the CPU's bits.
    let mut m = 0.0f32;
    let mut b = 0u32;
    for i in start..end {
        let x = input[i];
        let a = f32::abs(x);
        if a > m {
            m = a;
        }
        if (u32::reinterpret(x) & 0x7f80_0000u32) == 0x7f80_0000u32 {
            b = 1u32;
        }
    }
    amax[c] = m;
    bad[c] = b;
}

// The comptime element branch assigns `r` on every path; rustc sees the initial value as dead.
#[allow(unused_assignments)]
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn scaled_cast(
    input: &Array<f32>,
    out: &mut Array<f32>,
    keep: &mut Array<f32>,
    len: u32,
    enc: f32,
    dec: f32,
    nan_scale: u32,
    max: f32,
    mbits: u32,
    emin_biased: i32,
    #[comptime] kind: u32,
    #[comptime] want_keep: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= len as usize {
        terminate!();
    }
    let mut q = f32::reinterpret(0x7fc0_0000u32);
    let mut kept = 0.0f32;
    if nan_scale == 0u32 {
        let y = input[i] * enc;
        let clipped = y > max || y < -max;
        let mut r = y;
        if comptime![kind == BF16] {
            r = round_bf16(y);
        } else {
            r = mini_rne(y, max, mbits, emin_biased);
        }
        q = r * dec;
        if !clipped {
            kept = 1.0f32;
        }
    }
    out[i] = q;
    if comptime![want_keep] {
        keep[i] = kept;
    }
}

/// amax over non-NaN values of `len` contiguous f32 values and whether any is NaN or ±Inf:
/// device partials per chunk of 1,024, finished on the host.
pub(crate) fn reduce_amax<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
) -> (f32, bool) {
    let chunks = len.div_ceil(CHUNK);
    if chunks == 0 {
        return (0.0, false);
    }
    let amax_h = client.empty(chunks * 4);
    let bad_h = client.empty(chunks * 4);
    let dim = CubeDim::new_1d(64);
    // SAFETY: each handle holds at least the declared number of 4-byte elements.
    #[allow(unsafe_code)]
    let (a_in, a_amax, a_bad) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(amax_h.clone(), chunks),
            ArrayArg::from_raw_parts(bad_h.clone(), chunks),
        )
    };
    amax_partials::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, chunks, dim),
        dim,
        a_in,
        a_amax,
        a_bad,
        len as u32,
    );
    let partial = f32::from_bytes(&client.read_one(amax_h).expect("read amax")).to_vec();
    let flags = u32::from_bytes(&client.read_one(bad_h).expect("read flags")).to_vec();
    (
        partial.iter().fold(0f32, |m, &a| if a > m { a } else { m }),
        flags.iter().any(|&b| b != 0),
    )
}

/// Whether the per-tensor path covers `spec`: one scale for the tensor, no transform, RNE,
/// absmax (FP8 current scaling) or no scale (plain casts), onto a signed minifloat or bf16.
pub fn covers(spec: &QuantSpec) -> bool {
    spec.validate().is_ok()
        && spec.block == Block::Tensor
        && spec.transform == Transform::None
        && spec.rounding == Rounding::Rne
        && matches!(spec.scale, ScaleRule::Absmax { .. } | ScaleRule::None)
        && match spec.element.grid() {
            AnyGrid::Mini(m) => m.signed,
            AnyGrid::Half(h) => h.bf16,
            AnyGrid::Int(_) => false,
        }
}

/// Per-tensor quantize-dequantize of `len` contiguous f32 values; None if [`covers`] is false.
pub fn quantize_tensor<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
    spec: &QuantSpec,
    want_keep: bool,
) -> Option<GroupOutput> {
    if !covers(spec) {
        return None;
    }
    assert!(len < (1usize << 32), "tensor too large for 32-bit indexing");
    let values = client.empty(len.max(1) * 4);
    let keep = want_keep.then(|| client.empty(len.max(1) * 4));
    if len == 0 {
        return Some(GroupOutput { values, keep });
    }
    // Pass 1: the tensor's amax and non-finite flag.
    let (amax, bad) = reduce_amax::<R>(client, input, len);
    let st = Stats {
        amax,
        n: len,
        nonfinite: bad,
        ..Stats::EMPTY
    };
    let dim = CubeDim::new_1d(64);
    // Pass 2: the CPU's scale, applied element-wise on the device.
    let (max, mbits, emin_biased, kind) = match spec.element.grid() {
        AnyGrid::Mini(m) => (m.max(), m.mbits, m.emin() + 127, MINIFLOAT),
        AnyGrid::Half(h) => (nibble_formats::Grid::hi(&h), 0, 0, BF16),
        AnyGrid::Int(_) => unreachable!("covers() rejects integer grids"),
    };
    let tensor = TensorInfo {
        amax: if st.nonfinite { f32::NAN } else { st.amax },
    };
    let bs = BlockScale::compute(spec.scale, max, 0, &st, &tensor);
    let dummy = (!want_keep).then(|| client.empty(4));
    let keep_h = keep.clone().or(dummy).expect("keep or dummy buffer");
    // SAFETY: as above.
    #[allow(unsafe_code)]
    let (a_in, a_out, a_keep) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(values.clone(), len),
            ArrayArg::from_raw_parts(keep_h, if want_keep { len } else { 1 }),
        )
    };
    scaled_cast::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, len, dim),
        dim,
        a_in,
        a_out,
        a_keep,
        len as u32,
        bs.enc,
        bs.dec,
        bs.nan as u32,
        max,
        mbits,
        emin_biased,
        kind,
        want_keep,
    );
    Some(GroupOutput { values, keep })
}
