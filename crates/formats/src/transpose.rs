//! Parallel cache-blocked transpose of a row-major f32 matrix: the backward's GEMM operands are
//! quantized along the other axis (dYᵀ, Xᵀ, Wᵀ), and a strided element-by-element copy costs as
//! much as the quantizer itself.

use rayon::prelude::*;

/// Tile edge: a 32×32 f32 tile of source and destination (4 KiB each) stays in L1.
const TILE: usize = 32;

/// `dst` (cols × rows) ← `src` (rows × cols)ᵀ.
pub fn transpose_into(src: &[f32], rows: usize, cols: usize, dst: &mut [f32]) {
    assert_eq!(
        src.len(),
        rows * cols,
        "transpose: source is not {rows}×{cols}"
    );
    assert_eq!(dst.len(), rows * cols, "transpose: destination size");
    if rows == 0 || cols == 0 {
        return;
    }
    // Each task owns a band of TILE destination rows (= TILE source columns).
    dst.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(band, out)| {
            let j0 = band * TILE;
            let nj = out.len() / rows;
            for i0 in (0..rows).step_by(TILE) {
                let ni = TILE.min(rows - i0);
                for j in 0..nj {
                    let o = &mut out[j * rows + i0..j * rows + i0 + ni];
                    for (k, v) in o.iter_mut().enumerate() {
                        *v = src[(i0 + k) * cols + j0 + j];
                    }
                }
            }
        });
}

/// `src`ᵀ as a new vector.
pub fn transposed(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut dst = vec![0f32; src.len()];
    transpose_into(src, rows, cols, &mut dst);
    dst
}
