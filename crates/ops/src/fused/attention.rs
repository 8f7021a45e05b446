//! Fused causal grouped-query attention on the projections' own layout: q `[b, t, h, hd]`,
//! k and v `[b, t, kv, hd]`, output `[b, t, h, hd]` (what the output projection reads, no
//! transposes). Query head j reads key/value head j / (h / kv) without repeating them.
//!
//! Per head and per tile of `TILE` queries, the scores against the keys the tile can see (the
//! causal prefix only, no T×T mask tensor) are one GEMM, the max-shifted softmax runs in place
//! on the tile (visible keys only), and the output is a second GEMM; each row's log-sum-exp is
//! saved. The backward recomputes the tile's probabilities from q, k and the log-sum-exp
//! (nothing T×T is kept between forward and backward) and forms dV += Pᵀ·dO, dP = dO·Vᵀ,
//! dS = P ⊙ (dP − rowsum(dO ⊙ O)), dQ = dS·K, dK += dSᵀ·Q as GEMMs on strided views of the
//! projection layout. One parallel task per batch element owns its slabs of every output, and
//! the GEMMs are single-threaded, so sums run in a fixed order (same bits on any thread count).

use rayon::prelude::*;

use super::gemm::{View, matmul};
use super::simd::{dot, exp_shifted, max};

/// Queries per tile: a tile's scores are `TILE × t` floats of scratch.
const TILE: usize = 64;

/// Shapes: batch, sequence, query heads, key/value heads, head dim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dims {
    pub b: usize,
    pub t: usize,
    pub h: usize,
    pub kv: usize,
    pub hd: usize,
}

impl Dims {
    fn scale(&self) -> f32 {
        (1.0 / (self.hd as f64).sqrt()) as f32
    }
}

/// Returns the output `[b, t, h, hd]` and the log-sum-exp of each row `[b, h, t]`.
pub fn forward(q: &[f32], k: &[f32], v: &[f32], dm: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, t, h, kv, hd } = dm;
    let rep = h / kv;
    let scale = dm.scale();
    let mut o = vec![0f32; b * t * h * hd];
    let mut lse = vec![0f32; b * h * t];
    o.par_chunks_mut(t * h * hd)
        .zip(lse.par_chunks_mut(h * t))
        .enumerate()
        .for_each(|(bi, (o, lse))| {
            let q = &q[bi * t * h * hd..][..t * h * hd];
            let k = &k[bi * t * kv * hd..][..t * kv * hd];
            let v = &v[bi * t * kv * hd..][..t * kv * hd];
            let mut s = vec![0f32; TILE.min(t) * t];
            for hq in 0..h {
                let g = hq / rep;
                for i0 in (0..t).step_by(TILE) {
                    let (i1, n) = ((i0 + TILE).min(t), TILE.min(t - i0));
                    let at = (i0 * h + hq) * hd;
                    let s = &mut s[..n * i1];
                    // S = scale · Q_tile · K[..i1]ᵀ
                    let qv = View {
                        data: q,
                        off: at,
                        rs: h * hd,
                        cs: 1,
                    };
                    let kt = View {
                        data: k,
                        off: g * hd,
                        rs: 1,
                        cs: kv * hd,
                    };
                    matmul(n, i1, hd, s, (0, i1, 1), false, qv, kt, scale);
                    for r in 0..n {
                        let i = i0 + r;
                        let row = &mut s[r * i1..][..i1];
                        let m = max(&row[..=i]);
                        let l = exp_shifted(&mut row[..=i], m);
                        let inv = 1.0 / l;
                        row[..=i].iter_mut().for_each(|p| *p *= inv);
                        row[i + 1..].fill(0.0);
                        lse[hq * t + i] = m + l.ln();
                    }
                    // O_tile = P · V[..i1]
                    let pv = View {
                        data: s,
                        off: 0,
                        rs: i1,
                        cs: 1,
                    };
                    let vv = View {
                        data: v,
                        off: g * hd,
                        rs: kv * hd,
                        cs: 1,
                    };
                    matmul(n, hd, i1, o, (at, h * hd, 1), false, pv, vv, 1.0);
                }
            }
        });
    (o, lse)
}

/// Gradients w.r.t. q, k, v from the output gradient `d_o` and the forward's inputs, output and
/// log-sum-exp.
pub fn backward(
    d_o: &[f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    o: &[f32],
    lse: &[f32],
    dm: Dims,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { b, t, h, kv, hd } = dm;
    let rep = h / kv;
    let scale = dm.scale();
    let mut dq = vec![0f32; b * t * h * hd];
    let mut dk = vec![0f32; b * t * kv * hd];
    let mut dv = vec![0f32; b * t * kv * hd];
    dq.par_chunks_mut(t * h * hd)
        .zip(dk.par_chunks_mut(t * kv * hd))
        .zip(dv.par_chunks_mut(t * kv * hd))
        .enumerate()
        .for_each(|(bi, ((dq, dk), dv))| {
            let qo = bi * t * h * hd;
            let ko = bi * t * kv * hd;
            let (q, d_o, o) = (
                &q[qo..][..t * h * hd],
                &d_o[qo..][..t * h * hd],
                &o[qo..][..t * h * hd],
            );
            let (k, v) = (&k[ko..][..t * kv * hd], &v[ko..][..t * kv * hd]);
            let lse = &lse[bi * h * t..][..h * t];
            let mut p = vec![0f32; TILE.min(t) * t];
            let mut ds = vec![0f32; TILE.min(t) * t];
            for hq in 0..h {
                let g = hq / rep;
                for i0 in (0..t).step_by(TILE) {
                    let (i1, n) = ((i0 + TILE).min(t), TILE.min(t - i0));
                    let at = (i0 * h + hq) * hd;
                    let (p, ds) = (&mut p[..n * i1], &mut ds[..n * i1]);
                    let tile = |data| View {
                        data,
                        off: at,
                        rs: h * hd,
                        cs: 1,
                    };
                    let keys = |data| View {
                        data,
                        off: g * hd,
                        rs: kv * hd,
                        cs: 1,
                    };
                    let keys_t = |data| View {
                        data,
                        off: g * hd,
                        rs: 1,
                        cs: kv * hd,
                    };
                    // P = exp(scale · Q_tile · K[..i1]ᵀ − lse) on the visible keys, 0 elsewhere.
                    matmul(n, i1, hd, p, (0, i1, 1), false, tile(q), keys_t(k), scale);
                    for r in 0..n {
                        let i = i0 + r;
                        let row = &mut p[r * i1..][..i1];
                        exp_shifted(&mut row[..=i], lse[hq * t + i]);
                        row[i + 1..].fill(0.0);
                    }
                    // dV[..i1] += Pᵀ · dO_tile
                    let pt = View {
                        data: p,
                        off: 0,
                        rs: 1,
                        cs: i1,
                    };
                    matmul(
                        i1,
                        hd,
                        n,
                        dv,
                        (g * hd, kv * hd, 1),
                        true,
                        pt,
                        tile(d_o),
                        1.0,
                    );
                    // dS = P ⊙ (dO_tile · V[..i1]ᵀ − rowsum(dO ⊙ O))
                    matmul(n, i1, hd, ds, (0, i1, 1), false, tile(d_o), keys_t(v), 1.0);
                    for r in 0..n {
                        let ai = at + r * h * hd;
                        let di = dot(&d_o[ai..][..hd], &o[ai..][..hd]);
                        let (dsr, pr) = (&mut ds[r * i1..][..i1], &p[r * i1..][..i1]);
                        for (d, p) in dsr.iter_mut().zip(pr) {
                            *d = p * (*d - di);
                        }
                    }
                    // dQ_tile = scale · dS · K[..i1];  dK[..i1] += scale · dSᵀ · Q_tile
                    let dsv = View {
                        data: ds,
                        off: 0,
                        rs: i1,
                        cs: 1,
                    };
                    matmul(n, hd, i1, dq, (at, h * hd, 1), false, dsv, keys(k), scale);
                    let dst = View {
                        data: ds,
                        off: 0,
                        rs: 1,
                        cs: i1,
                    };
                    matmul(
                        i1,
                        hd,
                        n,
                        dk,
                        (g * hd, kv * hd, 1),
                        true,
                        dst,
                        tile(q),
                        scale,
                    );
                }
            }
        });
    (dq, dk, dv)
}
