//! Per-tensor cast with a given scale (FP8 delayed scaling) on the device:
//! `rne_sat(v·scale)·(1/scale)` and the tensor's amax in one pass, as
//! `nibble_formats::scaled_cast` (the reciprocal computed once on the host, as the CPU does).
//! Units stride over the tensor (coalesced loads) and leave partial amaxes and non-finite flags
//! that the host finishes; a non-finite `v·scale` anywhere makes every output NaN.

use cubecl::prelude::*;
use cubecl::server::Handle;
use cubecl::{calculate_cube_count_elemwise, frontend::ArrayArg};
use nibble_formats::Grid;
use nibble_formats::element::{AnyGrid, Element};

use crate::device_math::{int_rne, mini_rne, round_bf16};

const MINIFLOAT: u32 = 0;
const BF16: u32 = 1;
const INT: u32 = 2;

/// Most units of the pass (each strides over the tensor).
const MAX_UNITS: usize = 1 << 14;

#[allow(unused_assignments)]
#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn cast_scaled_kernel(
    input: &Array<f32>,
    out: &mut Array<f32>,
    amax: &mut Array<f32>,
    bad: &mut Array<u32>,
    len: u32,
    scale: f32,
    inv: f32,
    lo: f32,
    hi: f32,
    mbits: u32,
    emin_biased: i32,
    #[comptime] kind: u32,
) {
    let u = ABSOLUTE_POS as u32;
    let units = amax.len() as u32;
    if u >= units {
        terminate!();
    }
    let mut m = 0.0f32;
    let mut b = 0u32;
    let mut i = u;
    while i < len {
        let x = input[i as usize];
        let a = f32::abs(x);
        if a > m {
            m = a;
        }
        let y = x * scale;
        if (u32::reinterpret(y) & 0x7f80_0000u32) == 0x7f80_0000u32 {
            b = 1u32;
        }
        let mut r = y;
        if comptime![kind == BF16] {
            r = round_bf16(y);
        } else if comptime![kind == INT] {
            r = int_rne(y, lo, hi);
        } else {
            r = mini_rne(y, hi, mbits, emin_biased);
        }
        out[i as usize] = r * inv;
        i += units;
    }
    amax[u as usize] = m;
    bad[u as usize] = b;
}

/// Whether the device cast covers `element` (signed minifloats, bf16, signed INT / ternary).
pub fn covers(element: Element) -> bool {
    match element.grid() {
        AnyGrid::Mini(m) => m.signed,
        AnyGrid::Half(h) => h.bf16,
        AnyGrid::Int(g) => g.qmin < 0,
    }
}

/// Cast `len` contiguous f32 values with `scale`; returns the values and amax(|v|) over
/// non-NaN values. Panics if [`covers`] is false.
pub fn cast_scaled<R: Runtime>(
    client: &ComputeClient<R>,
    input: &Handle,
    len: usize,
    element: Element,
    scale: f32,
) -> (Handle, f32) {
    assert!(covers(element), "device cast does not cover {element:?}");
    assert!(len < (1usize << 32), "tensor too large for 32-bit indexing");
    let (kind, lo, hi, mbits, emin_biased) = match element.grid() {
        AnyGrid::Mini(m) => (MINIFLOAT, -m.max(), m.max(), m.mbits, m.emin() + 127),
        AnyGrid::Half(h) => (BF16, h.lo(), h.hi(), 0, 0),
        AnyGrid::Int(g) => (INT, g.lo(), g.hi(), 0, 0),
    };
    let out = client.empty(len.max(1) * 4);
    if len == 0 {
        return (out, 0.0);
    }
    let units = len.div_ceil(64).min(MAX_UNITS);
    let amax_h = client.empty(units * 4);
    let bad_h = client.empty(units * 4);
    let dim = CubeDim::new_1d(64);
    // SAFETY: each handle holds at least the declared number of 4-byte elements.
    #[allow(unsafe_code)]
    let (a_in, a_out, a_amax, a_bad) = unsafe {
        (
            ArrayArg::from_raw_parts(input.clone(), len),
            ArrayArg::from_raw_parts(out.clone(), len),
            ArrayArg::from_raw_parts(amax_h.clone(), units),
            ArrayArg::from_raw_parts(bad_h.clone(), units),
        )
    };
    cast_scaled_kernel::launch::<R>(
        client,
        calculate_cube_count_elemwise(client, units, dim),
        dim,
        a_in,
        a_out,
        a_amax,
        a_bad,
        len as u32,
        scale,
        1.0 / scale,
        lo,
        hi,
        mbits,
        emin_biased,
        kind,
    );
    let partial = f32::from_bytes(&client.read_one(amax_h).expect("read amax")).to_vec();
    let flags = u32::from_bytes(&client.read_one(bad_h).expect("read flags")).to_vec();
    let amax = partial.iter().fold(0f32, |m, &a| if a > m { a } else { m });
    if flags.iter().any(|&b| b != 0) {
        return (
            client.create_from_slice(f32::as_bytes(&vec![f32::NAN; len])),
            amax,
        );
    }
    (out, amax)
}
