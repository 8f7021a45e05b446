//! Block Hadamard transforms along the last axis: orthonormal Sylvester H_g for
//! g ∈ {16, 32, 64, 128, 256}, and the randomized form diag(s)·H_g.
//!
//! A row vector x is mapped block by block to `x·H` (H is symmetric, so this is also `H·x`).
//! The randomized transform multiplies by the signs *before* H: `x·diag(s)·H`. Signs applied after
//! H (`x·H·diag(s)`) commute with a sign-symmetric quantizer and cancel in the GEMM, which makes
//! the "random" transform deterministic (the bug in Quartet's released code).
//!
//! Arithmetic order is fixed so that GPU kernels can reproduce the bits: signs, then the
//! unnormalized butterflies with strides 1, 2, 4, …, g/2 (`a+b`, `a−b`), then one multiply by
//! `fl(1/√g)` (exact for g = 16, 64, 256).

use rayon::prelude::*;

use crate::philox;

/// Supported Hadamard sizes.
pub const SIZES: [usize; 5] = [16, 32, 64, 128, 256];

/// Transformer Engine's fixed RHT16 sign vector (NVFP4 recipe).
pub const TE_SIGNS_16: [i8; 16] = [1, 1, 1, -1, 1, -1, -1, -1, -1, -1, -1, 1, -1, 1, -1, -1];

/// Whether `g` is a supported Hadamard size.
pub fn is_supported(g: usize) -> bool {
    SIZES.contains(&g)
}

/// `fl(1/√g)`, the orthonormal scale.
pub fn norm(g: usize) -> f32 {
    (1.0 / (g as f64).sqrt()) as f32
}

#[inline(always)]
fn butterflies<const G: usize>(x: &mut [f32; G]) {
    let mut h = 1;
    while h < G {
        let mut i = 0;
        while i < G {
            for j in i..i + h {
                let (a, b) = (x[j], x[j + h]);
                x[j] = a + b;
                x[j + h] = a - b;
            }
            i += 2 * h;
        }
        h *= 2;
    }
}

/// [`forward_block`] for a compile-time size (used by fused kernels).
#[inline(always)]
pub fn forward_fixed<const G: usize>(x: &mut [f32; G], signs: Option<&[f32]>) {
    block_fixed::<G>(x, signs, norm(G));
}

#[inline(always)]
fn block_fixed<const G: usize>(x: &mut [f32], signs: Option<&[f32]>, scale: f32) {
    let x: &mut [f32; G] = x.try_into().expect("block length");
    if let Some(s) = signs {
        for (v, s) in x.iter_mut().zip(s) {
            *v *= *s;
        }
    }
    butterflies(x);
    for v in x.iter_mut() {
        *v *= scale;
    }
}

/// Transform one block in place: `x ← x·diag(s)·H_g` (no signs when `signs` is None).
/// `x.len()` must be a supported size.
#[inline]
pub fn forward_block(x: &mut [f32], signs: Option<&[f32]>) {
    let g = x.len();
    let s = norm(g);
    match g {
        16 => block_fixed::<16>(x, signs, s),
        32 => block_fixed::<32>(x, signs, s),
        64 => block_fixed::<64>(x, signs, s),
        128 => block_fixed::<128>(x, signs, s),
        256 => block_fixed::<256>(x, signs, s),
        _ => panic!("unsupported Hadamard size {g}"),
    }
}

/// Inverse of [`forward_block`]: `x ← x·H_g·diag(s)` (H is its own inverse).
pub fn inverse_block(x: &mut [f32], signs: Option<&[f32]>) {
    forward_block(x, None);
    if let Some(s) = signs {
        for (v, s) in x.iter_mut().zip(s) {
            *v *= *s;
        }
    }
}

/// Forward transform of every g-block of every row of a row-major matrix with `cols` columns.
pub fn forward_rows(data: &mut [f32], cols: usize, g: usize, signs: Option<&[f32]>) {
    assert!(
        is_supported(g) && cols.is_multiple_of(g),
        "cols {cols} must be a multiple of g {g}"
    );
    data.par_chunks_mut(g.max(4096 / g * g)).for_each(|chunk| {
        for b in chunk.chunks_exact_mut(g) {
            forward_block(b, signs);
        }
    });
}

/// Inverse transform of every g-block of every row.
pub fn inverse_rows(data: &mut [f32], cols: usize, g: usize, signs: Option<&[f32]>) {
    assert!(
        is_supported(g) && cols.is_multiple_of(g),
        "cols {cols} must be a multiple of g {g}"
    );
    data.par_chunks_mut(g.max(4096 / g * g)).for_each(|chunk| {
        for b in chunk.chunks_exact_mut(g) {
            inverse_block(b, signs);
        }
    });
}

/// Random ±1 signs for a g-vector: sign j is the top bit of Philox word j of (seed, STREAM_SIGNS).
pub fn random_signs(seed: u64, g: usize) -> Vec<f32> {
    (0..g as u64)
        .map(|j| {
            if philox::word(seed, philox::STREAM_SIGNS, j) >> 31 == 0 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// The dense orthonormal Sylvester matrix H_g, row-major, entry (i, j) = (−1)^popcount(i & j) / √g.
/// Built from the definition, independently of the butterflies (for tests and references).
pub fn dense(g: usize) -> Vec<f64> {
    let s = 1.0 / (g as f64).sqrt();
    (0..g * g)
        .map(|ij| {
            if ((ij / g) & (ij % g)).count_ones().is_multiple_of(2) {
                s
            } else {
                -s
            }
        })
        .collect()
}
