//! Fused SwiGLU, `y = silu(g) ⊙ u = g·σ(g)·u`, and its backward `dg = dy·u·σ(g)·(1 + g·(1 −
//! σ(g)))`, `du = dy·g·σ(g)`, with the vectorizing exp of [`super::simd`] (burn's path calls
//! libm's `expf` per element and keeps the intermediate tensors).

use rayon::prelude::*;

use super::simd::exp;

const CHUNK: usize = 4096;

#[inline(always)]
fn sigmoid(g: f32) -> f32 {
    1.0 / (1.0 + exp(-g))
}

pub fn forward(g: &[f32], u: &[f32]) -> Vec<f32> {
    let mut y = vec![0f32; g.len()];
    y.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK))
        .zip(u.par_chunks(CHUNK))
        .for_each(|((y, g), u)| {
            for ((y, g), u) in y.iter_mut().zip(g).zip(u) {
                *y = g * sigmoid(*g) * u;
            }
        });
    y
}

pub fn backward(dy: &[f32], g: &[f32], u: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut dg = vec![0f32; g.len()];
    let mut du = vec![0f32; g.len()];
    dg.par_chunks_mut(CHUNK)
        .zip(du.par_chunks_mut(CHUNK))
        .zip(dy.par_chunks(CHUNK))
        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
        .for_each(|(((dg, du), dy), (g, u))| {
            for ((((dg, du), dy), g), u) in dg.iter_mut().zip(du).zip(dy).zip(g).zip(u) {
                let s = sigmoid(*g);
                *du = dy * (g * s);
                *dg = dy * u * s * (1.0 + g * (1.0 - s));
            }
        });
    (dg, du)
}
