//! Second pass of the two-pass quantizer: one unit per element finds its block's scale entry
//! (by the block amax in a [`crate::scale_table::ScaleTable`], or directly by block index for
//! host-computed scales), then scales, flags clipping, rounds (RNE or Philox SR) onto a signed
//! minifloat, integer or bf16 grid and dequantizes: `q = ((round(v·enc))·dec)·post`, the CPU's order.

use cubecl::prelude::*;

use crate::device_math::{int_rne, int_sr, mini_rne, mini_sr, round_bf16};
use crate::philox::{philox_word, to_unit};

/// Element grids (comptime selector).
pub const MINIFLOAT: u32 = 0;
pub const INT: u32 = 1;
pub const BF16: u32 = 2;

/// Index of the table step holding amax bits `a`: the number of thresholds ≤ `a`.
#[cube]
fn step_of(thr: &Array<u32>, n_thr: u32, a: u32) -> u32 {
    let mut lo = 0u32;
    let mut n = n_thr;
    while n > 0u32 {
        let half = n / 2u32;
        if thr[(lo + half) as usize] <= a {
            lo = lo + half + 1u32;
            n = n - half - 1u32;
        } else {
            n = half;
        }
    }
    lo
}

// Comptime branches assign runtime variables on every path; rustc sees initial values as dead.
#[allow(unused_assignments)]
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
pub fn block_apply(
    input: &Array<f32>,
    out: &mut Array<f32>,
    keep: &mut Array<f32>,
    stat: &Array<f32>,
    thr: &Array<u32>,
    tab: &Array<f32>,
    len: u32,
    cols: u32,
    bh: u32,
    bw: u32,
    nbc: u32,
    n_thr: u32,
    lo: f32,
    hi: f32,
    mbits: u32,
    emin_biased: i32,
    seed_lo: u32,
    seed_hi: u32,
    #[comptime] kind: u32,
    #[comptime] lookup: bool,
    #[comptime] stochastic: bool,
    #[comptime] want_keep: bool,
) {
    let i = ABSOLUTE_POS as u32;
    if i >= len {
        terminate!();
    }
    let row = i / cols;
    let col = i % cols;
    let b = (row / bh) * nbc + col / bw;
    let mut e = b;
    let mut nan = false;
    if comptime![lookup] {
        let a = u32::reinterpret(stat[b as usize]);
        nan = (a & 0x7f80_0000u32) == 0x7f80_0000u32;
        if !nan {
            e = step_of(thr, n_thr, a);
        }
    }
    let t = (e * 4u32) as usize;
    let mut q = f32::reinterpret(0x7fc0_0000u32);
    let mut kept = 0.0f32;
    if !nan && tab[t + 3] == 0.0f32 {
        let y = input[i as usize] * tab[t];
        let clipped = y > hi || y < lo;
        let mut r = 0.0f32;
        if comptime![stochastic] {
            let u = to_unit(philox_word(seed_lo, seed_hi, 0u32, i));
            if comptime![kind == INT] {
                r = int_sr(y, u, lo, hi);
            } else {
                r = mini_sr(y, u, hi, mbits, emin_biased);
            }
        } else if comptime![kind == INT] {
            r = int_rne(y, lo, hi);
        } else if comptime![kind == BF16] {
            r = round_bf16(y);
        } else {
            r = mini_rne(y, hi, mbits, emin_biased);
        }
        q = (r * tab[t + 1]) * tab[t + 2];
        if !clipped {
            kept = 1.0f32;
        }
    }
    out[i as usize] = q;
    if comptime![want_keep] {
        keep[i as usize] = kept;
    }
}
