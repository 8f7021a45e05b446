//! Fused RMSNorm over rows, `y = x · r · w` with `r = 1/√(mean(x²) + ε)`, and its backward
//! `dx = r·g − r³·x·(g·x)/d` (g = dy ⊙ w), `dw = Σ_rows dy ⊙ x · r`: one pass over each row
//! instead of burn's broadcasting element-wise ops. Rows run in parallel; `dw` sums fixed
//! chunks of rows in order, so the bits do not depend on the thread count.

use rayon::prelude::*;

use super::simd::dot;

/// Rows per parallel task (and per `dw` partial sum).
const CHUNK: usize = 32;

/// `x`: `[n, d]` row-major, `w`: `[d]`. Returns `y` and `r` (`[n]`).
pub fn forward(x: &[f32], w: &[f32], eps: f64) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    let n = x.len() / d;
    let mut y = vec![0f32; n * d];
    let mut r = vec![0f32; n];
    y.par_chunks_mut(CHUNK * d)
        .zip(r.par_chunks_mut(CHUNK))
        .zip(x.par_chunks(CHUNK * d))
        .for_each(|((y, r), x)| {
            for ((y, r), x) in y
                .chunks_exact_mut(d)
                .zip(r.iter_mut())
                .zip(x.chunks_exact(d))
            {
                let ms = dot(x, x) / d as f32;
                *r = 1.0 / (ms + eps as f32).sqrt();
                for ((y, x), w) in y.iter_mut().zip(x).zip(w) {
                    *y = x * *r * w;
                }
            }
        });
    (y, r)
}

/// Gradients w.r.t. `x` (`[n, d]`) and `w` (`[d]`) from `dy`, the input and the saved `r`.
pub fn backward(dy: &[f32], x: &[f32], w: &[f32], r: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    let n = x.len() / d;
    let mut dx = vec![0f32; n * d];
    let partials: Vec<Vec<f32>> = dx
        .par_chunks_mut(CHUNK * d)
        .zip(dy.par_chunks(CHUNK * d))
        .zip(x.par_chunks(CHUNK * d))
        .zip(r.par_chunks(CHUNK))
        .map(|(((dx, dy), x), r)| {
            let mut dw = vec![0f32; d];
            let mut g = vec![0f32; d];
            for (((dx, dy), x), &r) in dx
                .chunks_exact_mut(d)
                .zip(dy.chunks_exact(d))
                .zip(x.chunks_exact(d))
                .zip(r)
            {
                for ((g, dy), w) in g.iter_mut().zip(dy).zip(w) {
                    *g = dy * w;
                }
                let c = r * r * r * dot(&g, x) / d as f32;
                for ((dx, g), x) in dx.iter_mut().zip(&g).zip(x) {
                    *dx = r * g - c * x;
                }
                for ((dw, dy), x) in dw.iter_mut().zip(dy).zip(x) {
                    *dw += dy * x * r;
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0f32; d];
    for p in partials {
        for (a, b) in dw.iter_mut().zip(p) {
            *a += b;
        }
    }
    (dx, dw)
}
