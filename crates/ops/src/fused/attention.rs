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
use std::ops::Range;

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

/// One tile of query rows of head `hq` and its key/value head `g`, as strided views of the
/// projection layout (query rows `h·hd` apart, key/value rows `kv·hd` apart).
struct Tile {
    /// Query positions of the tile; keys `0..rows.end` are visible to it.
    rows: Range<usize>,
    /// Offset of the tile's first query row (head `hq`).
    at: usize,
    /// Offset of key/value head `g` in a row.
    kv_at: usize,
    q_stride: usize,
    kv_stride: usize,
}

impl Tile {
    fn new(i0: usize, hq: usize, g: usize, dm: Dims) -> Self {
        Tile {
            rows: i0..(i0 + TILE).min(dm.t),
            at: (i0 * dm.h + hq) * dm.hd,
            kv_at: g * dm.hd,
            q_stride: dm.h * dm.hd,
            kv_stride: dm.kv * dm.hd,
        }
    }

    /// The tile's rows of a query-layout tensor (q, dO, O), `[n, hd]`.
    fn queries<'a>(&self, data: &'a [f32]) -> View<'a> {
        View {
            data,
            off: self.at,
            rs: self.q_stride,
            cs: 1,
        }
    }

    /// Keys or values `0..rows.end` of the head, `[i1, hd]`.
    fn kv<'a>(&self, data: &'a [f32]) -> View<'a> {
        View {
            data,
            off: self.kv_at,
            rs: self.kv_stride,
            cs: 1,
        }
    }

    /// Their transpose, `[hd, i1]`.
    fn kv_t<'a>(&self, data: &'a [f32]) -> View<'a> {
        View {
            data,
            off: self.kv_at,
            rs: 1,
            cs: self.kv_stride,
        }
    }

    /// The query-layout destination of the tile's rows.
    fn q_dst(&self) -> (usize, usize, usize) {
        (self.at, self.q_stride, 1)
    }

    /// The key/value-layout destination of the head's rows.
    fn kv_dst(&self) -> (usize, usize, usize) {
        (self.kv_at, self.kv_stride, 1)
    }

    /// `out[n, i1] = scale · Q_tile · K[..i1]ᵀ`, the tile's scores (causal mask not applied).
    fn scores(&self, q: &[f32], k: &[f32], hd: usize, scale: f32, out: &mut [f32]) {
        let (n, i1) = (self.rows.len(), self.rows.end);
        matmul(
            n,
            i1,
            hd,
            out,
            (0, i1, 1),
            false,
            self.queries(q),
            self.kv_t(k),
            scale,
        );
    }
}

/// A `[rows, cols]` row-major scratch matrix (transposed with `t`).
fn scratch(data: &[f32], cols: usize, t: bool) -> View<'_> {
    if t {
        View {
            data,
            off: 0,
            rs: 1,
            cs: cols,
        }
    } else {
        View {
            data,
            off: 0,
            rs: cols,
            cs: 1,
        }
    }
}

/// Returns the output `[b, t, h, hd]` and the log-sum-exp of each row `[b, h, t]`.
pub fn forward(q: &[f32], k: &[f32], v: &[f32], dm: Dims) -> (Vec<f32>, Vec<f32>) {
    let Dims { b, t, h, kv, hd } = dm;
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
                for i0 in (0..t).step_by(TILE) {
                    let tile = Tile::new(i0, hq, hq / (h / kv), dm);
                    let (n, i1) = (tile.rows.len(), tile.rows.end);
                    let s = &mut s[..n * i1];
                    tile.scores(q, k, hd, scale, s);
                    for (row, i) in s.chunks_exact_mut(i1).zip(tile.rows.clone()) {
                        let m = max(&row[..=i]);
                        let l = exp_shifted(&mut row[..=i], m);
                        let inv = 1.0 / l;
                        row[..=i].iter_mut().for_each(|p| *p *= inv);
                        row[i + 1..].fill(0.0);
                        lse[hq * t + i] = m + l.ln();
                    }
                    // O_tile = P · V[..i1]
                    let p = scratch(s, i1, false);
                    matmul(n, hd, i1, o, tile.q_dst(), false, p, tile.kv(v), 1.0);
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
    let scale = dm.scale();
    let mut dq = vec![0f32; b * t * h * hd];
    let mut dk = vec![0f32; b * t * kv * hd];
    let mut dv = vec![0f32; b * t * kv * hd];
    dq.par_chunks_mut(t * h * hd)
        .zip(dk.par_chunks_mut(t * kv * hd))
        .zip(dv.par_chunks_mut(t * kv * hd))
        .enumerate()
        .for_each(|(bi, ((dq, dk), dv))| {
            let (qo, ko) = (bi * t * h * hd, bi * t * kv * hd);
            let q = &q[qo..][..t * h * hd];
            let d_o = &d_o[qo..][..t * h * hd];
            let o = &o[qo..][..t * h * hd];
            let (k, v) = (&k[ko..][..t * kv * hd], &v[ko..][..t * kv * hd]);
            let lse = &lse[bi * h * t..][..h * t];
            let mut p = vec![0f32; TILE.min(t) * t];
            let mut ds = vec![0f32; TILE.min(t) * t];
            for hq in 0..h {
                for i0 in (0..t).step_by(TILE) {
                    let tile = Tile::new(i0, hq, hq / (h / kv), dm);
                    let (n, i1) = (tile.rows.len(), tile.rows.end);
                    let (p, ds) = (&mut p[..n * i1], &mut ds[..n * i1]);
                    // P = exp(scale · Q_tile · K[..i1]ᵀ − lse) on the visible keys, 0 elsewhere.
                    tile.scores(q, k, hd, scale, p);
                    for (row, i) in p.chunks_exact_mut(i1).zip(tile.rows.clone()) {
                        exp_shifted(&mut row[..=i], lse[hq * t + i]);
                        row[i + 1..].fill(0.0);
                    }
                    // dV[..i1] += Pᵀ · dO_tile
                    let pt = scratch(p, i1, true);
                    matmul(
                        i1,
                        hd,
                        n,
                        dv,
                        tile.kv_dst(),
                        true,
                        pt,
                        tile.queries(d_o),
                        1.0,
                    );
                    // dS = P ⊙ (dO_tile · V[..i1]ᵀ − rowsum(dO ⊙ O))
                    let (dov, vt) = (tile.queries(d_o), tile.kv_t(v));
                    matmul(n, i1, hd, ds, (0, i1, 1), false, dov, vt, 1.0);
                    for (r, (dsr, pr)) in
                        ds.chunks_exact_mut(i1).zip(p.chunks_exact(i1)).enumerate()
                    {
                        let ai = tile.at + r * tile.q_stride;
                        let di = dot(&d_o[ai..][..hd], &o[ai..][..hd]);
                        for (d, p) in dsr.iter_mut().zip(pr) {
                            *d = p * (*d - di);
                        }
                    }
                    // dQ_tile = scale · dS · K[..i1];  dK[..i1] += scale · dSᵀ · Q_tile
                    let dsv = scratch(ds, i1, false);
                    matmul(n, hd, i1, dq, tile.q_dst(), false, dsv, tile.kv(k), scale);
                    let dst = scratch(ds, i1, true);
                    matmul(
                        i1,
                        hd,
                        n,
                        dk,
                        tile.kv_dst(),
                        true,
                        dst,
                        tile.queries(q),
                        scale,
                    );
                }
            }
        });
    (dq, dk, dv)
}
