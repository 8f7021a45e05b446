//! Block Hadamard rotations on the device, the CPU's `nibble_formats::hadamard` operation for
//! operation: `lp_hadamard` (signs before or after H, forward or inverse) and `lp_unrotate`
//! (`(d ⊙ keep)·H`, the backward's last step). One unit per g-block.

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};
use nibble_formats::hadamard;

use crate::device_math::hadamard_block;

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn rotate_kernel(
    input: &Array<f32>,
    keep: &Array<f32>,
    signs: &Array<f32>,
    out: &mut Array<f32>,
    n_blocks: u32,
    norm: f32,
    zero: u32,
    #[comptime] g: usize,
    #[comptime] masked: bool,
    #[comptime] pre_signs: bool,
    #[comptime] post_signs: bool,
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
    if comptime![masked] {
        for i in 0..g {
            v[i] *= keep[base + i];
        }
    }
    if comptime![pre_signs] {
        for i in 0..g {
            v[i] *= signs[i];
        }
    }
    hadamard_block(&mut v, norm, zero, g);
    if comptime![post_signs] {
        for i in 0..g {
            v[i] *= signs[i];
        }
    }
    for i in 0..g {
        out[base + i] = v[i];
    }
}

/// Where a rotation's signs go (`x·diag(s)·H` is `Before`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignSide {
    Before,
    After,
}

/// Whether the rotation kernels cover block size `g` on rows of `cols` elements.
pub fn covers(g: usize, cols: usize) -> bool {
    hadamard::is_supported(g) && cols.is_multiple_of(g)
}

/// `len` contiguous f32 values (rows of a multiple of `g`), every g-block rotated: optionally
/// multiplied element-wise by `keep` (same layout) first, then `x·diag(s)·H` or `x·H·diag(s)`
/// by `signs`. Panics if [`covers`] is false for `(g, len)`.
pub fn rotate<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
    g: usize,
    keep: Option<&Handle>,
    signs: Option<(&[f32], SignSide)>,
) -> Handle {
    assert!(covers(g, len), "rotation of {len} values by blocks of {g}");
    assert_eq!(
        signs.map_or(g, |(s, _)| s.len()),
        g,
        "one sign per block element"
    );
    let out = client.empty(len.max(1) * 4);
    let n_blocks = len / g;
    if n_blocks == 0 {
        return out;
    }
    let sign_h = client.create_from_slice(f32::as_bytes(signs.map_or(&[1.0][..], |(s, _)| s)));
    let keep_h = keep.cloned().unwrap_or_else(|| client.empty(4));
    let dim = CubeDim::new_1d(64);
    // SAFETY: each handle holds at least the declared number of f32 values; the kernel bounds
    // its block index by `n_blocks`.
    #[allow(unsafe_code)]
    let (a_in, a_keep, a_signs, a_out) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(keep_h, if keep.is_some() { len } else { 1 }),
            ArrayArg::from_raw_parts(sign_h, signs.map_or(1, |_| g)),
            ArrayArg::from_raw_parts(out.clone(), len),
        )
    };
    rotate_kernel::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, n_blocks, dim),
        dim,
        a_in,
        a_keep,
        a_signs,
        a_out,
        n_blocks as u32,
        hadamard::norm(g),
        0u32,
        g,
        keep.is_some(),
        matches!(signs, Some((_, SignSide::Before))),
        matches!(signs, Some((_, SignSide::After))),
    );
    out
}
