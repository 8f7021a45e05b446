//! Rotary position embedding in place on the projection layout `[b, t, heads, hd]` (HF
//! `rotate_half` pairs: dimension j with j + hd/2), from cos/sin tables `[t, hd]`:
//! `y = x·cos + rotate_half(x)·sin`, each output one product pair and one sum, the same
//! operations as the composition (so the same bits). The backward is the inverse rotation
//! (`sin → −sin`).

use rayon::prelude::*;

/// Rotates `x` (`[b, t, n, hd]` row-major) by the tables' angles (`cos`, `sin`: `[t, hd]`),
/// or by their negatives with `inverse`.
pub fn apply(
    x: &[f32],
    cos: &[f32],
    sin: &[f32],
    t: usize,
    n: usize,
    hd: usize,
    inverse: bool,
) -> Vec<f32> {
    let half = hd / 2;
    let mut y = vec![0f32; x.len()];
    y.par_chunks_mut(n * hd)
        .zip(x.par_chunks(n * hd))
        .enumerate()
        .for_each(|(row, (y, x))| {
            let pos = row % t;
            let (c, s) = (&cos[pos * hd..][..hd], &sin[pos * hd..][..hd]);
            for (y, x) in y.chunks_exact_mut(hd).zip(x.chunks_exact(hd)) {
                let (x1, x2) = x.split_at(half);
                let (y1, y2) = y.split_at_mut(half);
                if inverse {
                    for j in 0..half {
                        y1[j] = x1[j] * c[j] + x2[j] * s[j];
                        y2[j] = x2[j] * c[half + j] + -x1[j] * s[half + j];
                    }
                } else {
                    for j in 0..half {
                        y1[j] = x1[j] * c[j] + -x2[j] * s[j];
                        y2[j] = x2[j] * c[half + j] + x1[j] * s[half + j];
                    }
                }
            }
        });
    y
}
