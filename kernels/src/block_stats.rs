//! Per-block statistics for the two-pass quantizer: block amaxes of bh×bw rectangles (1×g
//! groups, g×g tiles, whole rows), NaN for a block holding NaN or ±Inf; and for 1-row blocks
//! also Σ|v| in the CPU's eight interleaved lanes (absmean).

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};

/// Elements per unit when [`reduce_amax`] treats a tensor as one long row.
const CHUNK: usize = 1024;

/// A NaN written for a non-finite block (bit pattern; WGSL may assume floats are finite).
pub const NAN_BITS: u32 = 0x7fc0_0000;

/// amax of block `ABSOLUTE_POS` (blocks row-major, `nbc` per block row), NaN if non-finite.
/// Edge blocks are clipped to the tensor.
#[cube(launch)]
pub fn block_amax(
    input: &Array<f32>,
    amax: &mut Array<f32>,
    rows: u32,
    cols: u32,
    bh: u32,
    bw: u32,
    nbc: u32,
) {
    let b = ABSOLUTE_POS as u32;
    if b as usize >= amax.len() {
        terminate!();
    }
    let r0 = (b / nbc) * bh;
    let c0 = (b % nbc) * bw;
    let r1 = u32::min(r0 + bh, rows);
    let c1 = u32::min(c0 + bw, cols);
    // Max is order-free and NaN never wins `>`: any order gives the CPU's bits.
    let mut m = 0.0f32;
    let mut bad = false;
    for r in r0..r1 {
        for c in c0..c1 {
            let x = input[(r * cols + c) as usize];
            let a = f32::abs(x);
            if a > m {
                m = a;
            }
            if (u32::reinterpret(x) & 0x7f80_0000u32) == 0x7f80_0000u32 {
                bad = true;
            }
        }
    }
    if bad {
        m = f32::reinterpret(NAN_BITS);
    }
    amax[b as usize] = m;
}

/// amax (NaN if non-finite) and Σ|v| of the 1-row block `ABSOLUTE_POS` (`nbc` blocks of `bw`
/// columns per row, the last one clipped). Σ|v| as `nibble_formats::stats`: lane j sums
/// elements j, j+8, … in order; lanes combine as (l0+l4, l1+l5, l2+l6, l3+l7), pairs, last.
#[cube(launch)]
pub fn row_block_stats(
    input: &Array<f32>,
    amax: &mut Array<f32>,
    sum_abs: &mut Array<f32>,
    cols: u32,
    bw: u32,
    nbc: u32,
) {
    let b = ABSOLUTE_POS as u32;
    if b as usize >= amax.len() {
        terminate!();
    }
    let start = (b / nbc) * cols + (b % nbc) * bw;
    let len = u32::min(bw, cols - (b % nbc) * bw);
    let mut l = Array::<f32>::new(8usize);
    for j in 0..8usize {
        l[j] = 0.0f32;
    }
    let mut m = 0.0f32;
    let mut bad = false;
    for i in 0..len {
        let x = input[(start + i) as usize];
        let a = f32::abs(x);
        if a > m {
            m = a;
        }
        if (u32::reinterpret(x) & 0x7f80_0000u32) == 0x7f80_0000u32 {
            bad = true;
        }
        let j = (i % 8u32) as usize;
        l[j] += a;
    }
    if bad {
        m = f32::reinterpret(NAN_BITS);
    }
    amax[b as usize] = m;
    sum_abs[b as usize] = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/// amax over `len` contiguous f32 values and whether any is NaN or ±Inf (the amax is only
/// meaningful when none is): [`block_amax`] over chunks of one long row, finished on the host.
pub fn reduce_amax<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
) -> (f32, bool) {
    let chunks = len.div_ceil(CHUNK);
    if chunks == 0 {
        return (0.0, false);
    }
    let partial = client.empty(chunks * 4);
    let dim = CubeDim::new_1d(64);
    // SAFETY: the handles hold `len` and `chunks` f32 values; the kernel bounds its block index
    // by the output's length and its elements by `cols = len`.
    #[allow(unsafe_code)]
    let (a_in, a_out) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(partial.clone(), chunks),
        )
    };
    block_amax::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, chunks, dim),
        dim,
        a_in,
        a_out,
        1,
        len as u32,
        1,
        CHUNK as u32,
        chunks as u32,
    );
    let partial = f32::from_bytes(&client.read_one(partial).expect("read amax")).to_vec();
    let bad = partial.iter().any(|a| a.is_nan());
    (
        partial.iter().fold(0f32, |m, &a| if a > m { a } else { m }),
        bad,
    )
}
