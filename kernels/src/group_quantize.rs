//! Fused 1×g group quantizer: one unit per block loads its g values, applies the (randomized)
//! Hadamard, takes the block statistics, derives the power-of-two scale, scales, flags clipping,
//! rounds (RNE or Philox SR) and writes the dequantized values and the keep mask — one pass over
//! memory. Every step is the CPU oracle's (`nibble_formats::group_kernel`) in the same order.

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};

use crate::device_math::{ceil_log2, floor_log2, hadamard_block, mini_rne, mini_sr, pow2};
use crate::group_params::{GroupParams, rule, transform};
use crate::philox::{philox_word, to_unit};
use crate::quest_scale::quest_exponent;

// Comptime branches assign runtime variables on every path; rustc sees the initial values as dead.
#[allow(unused_assignments)]
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn group_kernel(
    input: &Array<f32>,
    signs: &Array<f32>,
    out: &mut Array<f32>,
    keep: &mut Array<f32>,
    n_blocks: u32,
    norm: f32,
    max: f32,
    mbits: u32,
    emin_biased: i32,
    emax: i32,
    mult: f32,
    pre: f32,
    post: f32,
    seed_lo: u32,
    seed_hi: u32,
    zero: u32,
    #[comptime] g: usize,
    #[comptime] tf: u32,
    #[comptime] rl: u32,
    #[comptime] stochastic: bool,
    #[comptime] want_keep: bool,
) {
    let b = ABSOLUTE_POS;
    if b >= n_blocks as usize {
        terminate!();
    }
    let base = b * g;
    let mut v = Array::<f32>::new(g);
    for i in 0..g {
        v[i] = input[base + i];
    }

    // Transform: signs, butterflies with strides 1, 2, …, g/2, one multiply by fl(1/√g).
    if comptime![tf == transform::SIGNED_HADAMARD] {
        for i in 0..g {
            v[i] *= signs[i];
        }
    }
    if comptime![tf != transform::NONE] {
        hadamard_block(&mut v, norm, zero, g);
    }

    // Statistics: amax over non-NaN values, non-finite flag; QuEST's σ from Σx and Σx² in
    // eight interleaved lanes (`quest_scale`).
    let mut amax = 0.0f32;
    let mut bad = false;
    for i in 0..g {
        let a = f32::abs(v[i]);
        if a > amax {
            amax = a;
        }
        if (u32::reinterpret(v[i]) & 0x7f80_0000u32) == 0x7f80_0000u32 {
            bad = true;
        }
    }
    let mut k = 0i32;
    if comptime![rl == rule::QUEST_FLOOR || rl == rule::QUEST_NEAREST] {
        // A non-finite block's output is NaN whatever its scale.
        if !bad {
            k = quest_exponent(&v, mult, zero, g, comptime![rl == rule::QUEST_NEAREST]);
        }
    } else if amax == 0.0f32 {
        k = -127i32;
    } else if comptime![rl == rule::CEIL] {
        k = ceil_log2(amax) - emax;
    } else {
        k = floor_log2(amax) - emax;
        if comptime![rl == rule::RCEIL] && amax * pow2(-k) > max {
            k += 1i32;
        }
    }
    k = i32::clamp(k, -127i32, 127i32);
    let enc = pow2(-k);
    let dec = pow2(k);

    let quest = comptime![rl == rule::QUEST_FLOOR || rl == rule::QUEST_NEAREST];
    for i in 0..g {
        let mut q = f32::reinterpret(0x7fc0_0000u32);
        let mut kept = 0.0f32;
        if !bad {
            let y = (v[i] * enc) * pre;
            let mut clipped = y > max || y < -max;
            if quest {
                clipped = y >= max || y <= -max;
            }
            let mut r = 0.0f32;
            if comptime![stochastic] {
                let u = to_unit(philox_word(seed_lo, seed_hi, 0u32, (base + i) as u32));
                r = mini_sr(y, u, max, mbits, emin_biased);
            } else {
                r = mini_rne(y, max, mbits, emin_biased);
            }
            q = (r * dec) * post;
            if !clipped {
                kept = 1.0f32;
            }
        }
        out[base + i] = q;
        if comptime![want_keep] {
            keep[base + i] = kept;
        }
    }
}

/// The kernel's outputs: dequantized values (same layout as the input) and, if asked, the keep
/// mask (1.0 where the quantizer did not clip).
pub struct GroupOutput {
    pub values: Handle,
    pub keep: Option<Handle>,
}

/// Quantize-dequantize `len` contiguous f32 values (rows of a multiple of `p.g` columns) with
/// the group kernel. `len` must be below 2^32 (Philox counters are 32-bit here).
pub fn quantize_group<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
    p: &GroupParams,
    want_keep: bool,
) -> GroupOutput {
    assert!(
        len.is_multiple_of(p.g),
        "length {len} is not a multiple of the block {}",
        p.g
    );
    assert!(
        len < (1usize << 32),
        "tensor too large for 32-bit SR counters"
    );
    let n_blocks = len / p.g;
    let values = client.empty(len * 4);
    let keep = want_keep.then(|| client.empty(len * 4));
    let dummy = (!want_keep).then(|| client.empty(4));
    let signs = client.create_from_slice(f32::as_bytes(&p.signs));
    if n_blocks == 0 {
        return GroupOutput { values, keep };
    }
    let cube_dim = CubeDim::new_1d(64);
    let cube_count = calculate_cube_count_elemwise(client, n_blocks, cube_dim);
    let keep_h = keep.clone().or(dummy).expect("keep or dummy buffer");
    let keep_len = if want_keep { len } else { 1 };
    // SAFETY: every handle holds at least the declared number of f32 elements (allocated above
    // or by the caller for `len` values); the kernel bounds its block index by `n_blocks`.
    #[allow(unsafe_code)]
    let (a_in, a_signs, a_out, a_keep) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(signs, p.signs.len()),
            ArrayArg::from_raw_parts(values.clone(), len),
            ArrayArg::from_raw_parts(keep_h, keep_len),
        )
    };
    group_kernel::launch::<R>(
        client,
        cube_count,
        cube_dim,
        a_in,
        a_signs,
        a_out,
        a_keep,
        n_blocks as u32,
        p.norm,
        p.max,
        p.mbits,
        p.emin_biased,
        p.emax,
        p.quest_mult,
        p.pre,
        p.post,
        p.seed as u32,
        (p.seed >> 32) as u32,
        0u32,
        p.g,
        p.transform,
        p.rule,
        p.stochastic,
        want_keep,
    );
    GroupOutput { values, keep }
}
