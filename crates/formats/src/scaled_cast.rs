//! Per-tensor cast with a given scale (FP8 delayed scaling): `rne_sat(v·scale)·(1/scale)` and the
//! tensor's amax in one parallel pass. Compiled per vector ISA like the block quantizer.

use rayon::prelude::*;

use crate::element::{AnyGrid, Element};
use crate::grid::Grid;

/// Elements per parallel task.
const CHUNK: usize = 1 << 14;

/// Returns the cast values and amax (max |v| over non-NaN values). If any `v·scale` is not
/// finite every output is NaN, as the per-tensor quantizer does for a non-finite tensor.
pub fn cast_with_scale(v: &[f32], element: Element, scale: f32) -> (Vec<f32>, f32) {
    match element.grid() {
        AnyGrid::Mini(g) => run(v, g, scale),
        AnyGrid::Int(g) => run(v, g, scale),
        AnyGrid::Half(g) => run(v, g, scale),
    }
}

fn run<G: Grid>(v: &[f32], grid: G, scale: f32) -> (Vec<f32>, f32) {
    let mut out = vec![0f32; v.len()];
    let (amax, bad) = out
        .par_chunks_mut(CHUNK)
        .zip(v.par_chunks(CHUNK))
        .map(|(o, x)| chunk_dispatch(grid, scale, x, o))
        .reduce(|| (0f32, false), |a, b| (a.0.max(b.0), a.1 | b.1));
    if bad {
        out.fill(f32::NAN);
    }
    (out, amax)
}

#[allow(unsafe_code)]
fn chunk_dispatch<G: Grid>(grid: G, scale: f32, x: &[f32], o: &mut [f32]) -> (f32, bool) {
    #[cfg(target_arch = "x86_64")]
    match crate::isa::current() {
        // SAFETY: `isa::current` only returns an ISA whose features the running CPU reports.
        crate::isa::Isa::Avx512 => return unsafe { chunk_avx512(grid, scale, x, o) },
        // SAFETY: as above.
        crate::isa::Isa::Avx2 => return unsafe { chunk_avx2(grid, scale, x, o) },
        crate::isa::Isa::Baseline => {}
    }
    chunk(grid, scale, x, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
fn chunk_avx512<G: Grid>(grid: G, scale: f32, x: &[f32], o: &mut [f32]) -> (f32, bool) {
    chunk(grid, scale, x, o)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn chunk_avx2<G: Grid>(grid: G, scale: f32, x: &[f32], o: &mut [f32]) -> (f32, bool) {
    chunk(grid, scale, x, o)
}

/// Sixteen independent lanes (max is order-free, so lanes give the sequential result) with
/// selects instead of `f32::max`, so the loop vectorizes.
#[inline(always)]
fn chunk<G: Grid>(grid: G, scale: f32, x: &[f32], o: &mut [f32]) -> (f32, bool) {
    let inv = 1.0 / scale;
    let mut m = [0f32; 16];
    let mut bad = [0u32; 16];
    let mut xs = x.chunks_exact(16);
    let mut os = o.chunks_exact_mut(16);
    for (xc, oc) in (&mut xs).zip(&mut os) {
        for j in 0..16 {
            let a = xc[j].abs();
            m[j] = if a > m[j] { a } else { m[j] };
            let y = xc[j] * scale;
            bad[j] |= ((y.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
            oc[j] = grid.rne(y) * inv;
        }
    }
    for ((xv, ov), j) in xs.remainder().iter().zip(os.into_remainder()).zip(0..) {
        let a = xv.abs();
        m[j] = if a > m[j] { a } else { m[j] };
        let y = xv * scale;
        bad[j] |= ((y.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
        *ov = grid.rne(y) * inv;
    }
    let amax = m.iter().fold(0f32, |a, &b| if b > a { b } else { a });
    (amax, bad.iter().any(|&b| b != 0))
}
