//! Cross-entropy fused with the lm_head: the mean over rows of `lse(h·Wᵀ) − (h·Wᵀ)[target]`
//! without the `[rows, vocab]` logits tensor. Rows go in chunks of about [`CHUNK_FLOATS`]
//! logits; each chunk's logits live only in one reused buffer, where they become the
//! gradient `(softmax − onehot) / rows` in place, so the gradients of h and W come out of the
//! same pass (`dh = dZ·W` per chunk, `dW += dZᵀ·h`). That costs the unfused op's three GEMMs
//! and no T×V memory beyond one chunk: SmolLM2's 49,152-entry vocabulary makes the logits of
//! a 4×256 batch 200 MB, and their log-softmax, its gradient and the softmax of the backward
//! as many again. The loss is a scalar, so its backward only scales these gradients.

use rayon::prelude::*;

use super::gemm::{View, matmul_parallel};
use super::simd::{exp_shifted, max};

/// Logits held at once (64 MiB of f32; a quarter of SmolLM2's 4×256-token logits), at least 64
/// rows. Each chunk reads and writes all of `dW` once (113 MB for SmolLM2), so fewer, larger
/// chunks trade memory for that traffic.
const CHUNK_FLOATS: usize = 1 << 24;

/// Shapes: `n` rows of width `d`, a vocabulary of `v`.
#[derive(Clone, Copy, Debug)]
pub struct CeDims {
    pub n: usize,
    pub d: usize,
    pub v: usize,
}

/// The mean loss and, when asked for, the gradients of the mean loss: `dh` `[n, d]` and
/// `dw` `[v, d]`.
pub struct CeOut {
    pub loss: f32,
    pub grads: Option<(Vec<f32>, Vec<f32>)>,
}

/// Rows per chunk for a vocabulary of `v`.
pub fn chunk_rows(n: usize, v: usize) -> usize {
    (CHUNK_FLOATS / v.max(1)).max(64).min(n.max(1))
}

/// `h` `[n, d]`, `w` `[v, d]` (row-major), `targets` `[n]` (each `< v`).
pub fn linear_cross_entropy(
    h: &[f32],
    w: &[f32],
    targets: &[usize],
    dm: CeDims,
    grads: bool,
) -> CeOut {
    linear_cross_entropy_in_chunks(h, w, targets, dm, grads, chunk_rows(dm.n, dm.v))
}

/// [`linear_cross_entropy`] with `rows` rows per chunk (the tests cross chunk boundaries with
/// small vocabularies).
pub fn linear_cross_entropy_in_chunks(
    h: &[f32],
    w: &[f32],
    targets: &[usize],
    dm: CeDims,
    grads: bool,
    rows: usize,
) -> CeOut {
    let CeDims { n, d, v } = dm;
    assert!(rows > 0, "chunks of at least one row");
    assert!(
        h.len() == n * d && w.len() == v * d && targets.len() == n,
        "linear cross-entropy shapes: h {} (n {n} × d {d}), w {} (v {v} × d), targets {}",
        h.len(),
        w.len(),
        targets.len()
    );
    if let Some(t) = targets.iter().find(|&&t| t >= v) {
        panic!("target token {t} is outside the vocabulary of {v}");
    }
    let mut z = vec![0f32; rows * v];
    let mut grad = grads.then(|| (vec![0f32; n * d], vec![0f32; v * d]));
    let inv_n = 1.0 / n.max(1) as f32;
    let mut total = 0f64;
    let wt = View {
        data: w,
        off: 0,
        rs: 1,
        cs: d,
    };
    for r0 in (0..n).step_by(rows) {
        let m = rows.min(n - r0);
        let zc = &mut z[..m * v];
        let hc = View {
            data: h,
            off: r0 * d,
            rs: d,
            cs: 1,
        };
        matmul_parallel(m, v, d, zc, (0, v, 1), false, hc, wt);
        let tg = &targets[r0..r0 + m];
        total += rows_loss(zc, tg, v, grads.then_some(inv_n));
        if let Some((dh, dw)) = grad.as_mut() {
            let dz = View {
                data: zc,
                off: 0,
                rs: v,
                cs: 1,
            };
            let wv = View {
                data: w,
                off: 0,
                rs: d,
                cs: 1,
            };
            matmul_parallel(m, d, v, dh, (r0 * d, d, 1), false, dz, wv);
            let dzt = View { rs: 1, cs: v, ..dz };
            matmul_parallel(v, d, m, dw, (0, d, 1), r0 > 0, dzt, hc);
        }
    }
    CeOut {
        loss: (total / n.max(1) as f64) as f32,
        grads: grad,
    }
}

/// Σ over the chunk's rows of `lse − z[target]` (summed in row order, so the bits do not depend
/// on the thread count); with `scale`, each row of `z` becomes `(softmax − onehot)·scale` in
/// place.
fn rows_loss(z: &mut [f32], targets: &[usize], v: usize, scale: Option<f32>) -> f64 {
    let per_row: Vec<f64> = z
        .par_chunks_mut(v)
        .zip(targets.par_iter())
        .map(|(row, &t)| {
            let picked = row[t];
            let mx = max(row);
            if !mx.is_finite() {
                // An infinite or NaN logit: the loss is not finite; keep it visible.
                row.fill(f32::NAN);
                return f64::NAN;
            }
            let sum = exp_shifted(row, mx);
            let lse = mx + sum.ln();
            if let Some(s) = scale {
                let k = s / sum;
                row.iter_mut().for_each(|p| *p *= k);
                row[t] -= s;
            }
            (lse - picked) as f64
        })
        .collect();
    per_row.iter().sum()
}
