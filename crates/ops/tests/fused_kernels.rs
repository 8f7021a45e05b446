//! The fused CPU kernels against independent references: RMSNorm and causal GQA attention
//! forwards against naive f64 loops, their backwards against central finite differences of those
//! f64 forwards (and the f64 analytic gradients), on shapes with ragged SIMD tails.

mod common;

use common::{f64s, lcg, rel};
use nibble_ops::fused::attention::{self, Dims};
use nibble_ops::fused::rms_norm;

fn rms_ref(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let d = w.len();
    x.chunks(d)
        .flat_map(|r| {
            let ms = r.iter().map(|v| v * v).sum::<f64>() / d as f64;
            let k = 1.0 / (ms + eps).sqrt();
            r.iter()
                .zip(w)
                .map(move |(v, w)| v * k * w)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Naive causal GQA attention in f64 on the projection layout.
fn attn_ref(q: &[f64], k: &[f64], v: &[f64], dm: Dims) -> Vec<f64> {
    let Dims { b, t, h, kv, hd } = dm;
    let scale = 1.0 / (hd as f64).sqrt();
    let mut o = vec![0f64; b * t * h * hd];
    for bi in 0..b {
        for hq in 0..h {
            let g = hq / (h / kv);
            for i in 0..t {
                let qi = &q[((bi * t + i) * h + hq) * hd..][..hd];
                let s: Vec<f64> = (0..=i)
                    .map(|j| {
                        let kj = &k[((bi * t + j) * kv + g) * hd..][..hd];
                        qi.iter().zip(kj).map(|(a, b)| a * b).sum::<f64>() * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for (j, sj) in s.iter().enumerate() {
                    let p = (sj - m).exp() / z;
                    let vj = &v[((bi * t + j) * kv + g) * hd..][..hd];
                    for c in 0..hd {
                        o[((bi * t + i) * h + hq) * hd + c] += p * vj[c];
                    }
                }
            }
        }
    }
    o
}

/// Central differences of `Σ c ⊙ f(x)` w.r.t. each entry of `x` (f64).
fn fd(x: &[f64], c: &[f64], f: &dyn Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let h = 1e-6;
    (0..x.len())
        .map(|i| {
            let (mut a, mut b) = (x.to_vec(), x.to_vec());
            a[i] += h;
            b[i] -= h;
            let fa: f64 = f(&a).iter().zip(c).map(|(y, c)| y * c).sum();
            let fb: f64 = f(&b).iter().zip(c).map(|(y, c)| y * c).sum();
            (fa - fb) / (2.0 * h)
        })
        .collect()
}

#[test]
fn rms_norm_matches_f64_and_finite_differences() {
    let (n, d) = (70, 37); // rows over two parallel chunks, a ragged SIMD tail
    let x = lcg(n * d, 1);
    let w: Vec<f32> = lcg(d, 2).iter().map(|v| 1.0 + 0.5 * v).collect();
    let c = lcg(n * d, 3);
    let eps = 1e-5;
    let (y, r) = rms_norm::forward(&x, &w, eps);
    assert!(rel(&y, &rms_ref(&f64s(&x), &f64s(&w), eps)) < 1e-6);
    let (dx, dw) = rms_norm::backward(&c, &x, &w, &r);
    let (xd, wd, cd) = (f64s(&x), f64s(&w), f64s(&c));
    let gx = fd(&xd, &cd, &|x| rms_ref(x, &wd, eps));
    let gw = fd(&wd, &cd, &|w| rms_ref(&xd, w, eps));
    assert!(rel(&dx, &gx) < 1e-5, "dx {}", rel(&dx, &gx));
    assert!(rel(&dw, &gw) < 1e-5, "dw {}", rel(&dw, &gw));
}

#[test]
fn attention_matches_f64_and_finite_differences() {
    // 3 query heads per kv head, head dim with a SIMD tail, two batch elements.
    let dm = Dims {
        b: 2,
        t: 9,
        h: 6,
        kv: 2,
        hd: 11,
    };
    let nq = dm.b * dm.t * dm.h * dm.hd;
    let nk = dm.b * dm.t * dm.kv * dm.hd;
    let (q, k, v) = (lcg(nq, 4), lcg(nk, 5), lcg(nk, 6));
    let c = lcg(nq, 7);
    let (o, lse) = attention::forward(&q, &k, &v, dm);
    let (qd, kd, vd, cd) = (f64s(&q), f64s(&k), f64s(&v), f64s(&c));
    assert!(rel(&o, &attn_ref(&qd, &kd, &vd, dm)) < 1e-6);
    let (dq, dk, dv) = attention::backward(&c, &q, &k, &v, &o, &lse, dm);
    let gq = fd(&qd, &cd, &|q| attn_ref(q, &kd, &vd, dm));
    let gk = fd(&kd, &cd, &|k| attn_ref(&qd, k, &vd, dm));
    let gv = fd(&vd, &cd, &|v| attn_ref(&qd, &kd, v, dm));
    for (name, ours, want) in [("dq", &dq, &gq), ("dk", &dk, &gk), ("dv", &dv, &gv)] {
        let e = rel(ours, want);
        assert!(e < 1e-5, "{name}: relative error {e}");
    }
    // Causality: the first query of every head reads only the first value.
    for hq in 0..dm.h {
        let g = hq / 3;
        assert_eq!(
            o[hq * dm.hd..][..dm.hd],
            v[g * dm.hd..][..dm.hd],
            "head {hq}, position 0"
        );
    }
}

#[test]
fn kernels_are_deterministic_across_thread_counts() {
    let dm = Dims {
        b: 3,
        t: 17,
        h: 4,
        kv: 2,
        hd: 16,
    };
    let nq = dm.b * dm.t * dm.h * dm.hd;
    let nk = dm.b * dm.t * dm.kv * dm.hd;
    let (q, k, v, c) = (lcg(nq, 8), lcg(nk, 9), lcg(nk, 10), lcg(nq, 11));
    let run = || {
        let (o, lse) = attention::forward(&q, &k, &v, dm);
        let g = attention::backward(&c, &q, &k, &v, &o, &lse, dm);
        let x = lcg(100 * 48, 12);
        let w = lcg(48, 13);
        let (y, r) = rms_norm::forward(&x, &w, 1e-6);
        let (dx, dw) = rms_norm::backward(&x, &x, &w, &r);
        (o, g, y, dx, dw)
    };
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(run);
    let three = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap()
        .install(run);
    assert!(one == three, "results depend on the thread count");
}

#[test]
fn attention_across_query_tiles() {
    // 70 positions: a full tile of 64 queries and a ragged one of 6 that sees all 70 keys.
    let dm = Dims {
        b: 1,
        t: 70,
        h: 4,
        kv: 2,
        hd: 8,
    };
    let nq = dm.t * dm.h * dm.hd;
    let nk = dm.t * dm.kv * dm.hd;
    let (q, k, v, c) = (lcg(nq, 14), lcg(nk, 15), lcg(nk, 16), lcg(nq, 17));
    let (qd, kd, vd, cd) = (f64s(&q), f64s(&k), f64s(&v), f64s(&c));
    let (o, lse) = attention::forward(&q, &k, &v, dm);
    assert!(rel(&o, &attn_ref(&qd, &kd, &vd, dm)) < 1e-6);
    let (dq, dk, dv) = attention::backward(&c, &q, &k, &v, &o, &lse, dm);
    // Central differences at 60 coordinates of each input, spread over both tiles.
    let loss = |q: &[f64], k: &[f64], v: &[f64]| -> f64 {
        attn_ref(q, k, v, dm)
            .iter()
            .zip(&cd)
            .map(|(y, c)| y * c)
            .sum()
    };
    let h = 1e-6;
    for (name, n, grad) in [("dq", nq, &dq), ("dk", nk, &dk), ("dv", nk, &dv)] {
        let scale = grad.iter().fold(0f32, |m, g| m.max(g.abs())) as f64;
        for s in 0..60 {
            let i = (s * 7919 + 13) % n;
            let bump = |d: f64| {
                let (mut a, mut b2, mut c2) = (qd.clone(), kd.clone(), vd.clone());
                match name {
                    "dq" => a[i] += d,
                    "dk" => b2[i] += d,
                    _ => c2[i] += d,
                }
                loss(&a, &b2, &c2)
            };
            let want = (bump(h) - bump(-h)) / (2.0 * h);
            let got = grad[i] as f64;
            assert!(
                (got - want).abs() <= 1e-5 * scale,
                "{name}[{i}]: {got} vs {want}"
            );
        }
    }
}

#[test]
fn swiglu_matches_f64_and_finite_differences() {
    use nibble_ops::fused::swiglu;
    let n = 4099; // two parallel chunks and a ragged tail
    let g: Vec<f32> = lcg(n, 18).iter().map(|v| v * 12.0).collect();
    let u = lcg(n, 19);
    let dy = lcg(n, 20);
    let f = |g: f64, u: f64| g / (1.0 + (-g).exp()) * u;
    let y = swiglu::forward(&g, &u);
    let want: Vec<f64> = g
        .iter()
        .zip(&u)
        .map(|(g, u)| f(*g as f64, *u as f64))
        .collect();
    assert!(rel(&y, &want) < 1e-6, "y {}", rel(&y, &want));
    let (dg, du) = swiglu::backward(&dy, &g, &u);
    let h = 1e-6;
    let fdg: Vec<f64> = (0..n)
        .map(|i| {
            let (g, u) = (g[i] as f64, u[i] as f64);
            dy[i] as f64 * (f(g + h, u) - f(g - h, u)) / (2.0 * h)
        })
        .collect();
    let fdu: Vec<f64> = (0..n)
        .map(|i| {
            let (g, u) = (g[i] as f64, u[i] as f64);
            dy[i] as f64 * (f(g, u + h) - f(g, u - h)) / (2.0 * h)
        })
        .collect();
    assert!(rel(&dg, &fdg) < 1e-5, "dg {}", rel(&dg, &fdg));
    assert!(rel(&du, &fdu) < 1e-5, "du {}", rel(&du, &fdu));
}

#[test]
fn fused_adamw_equals_the_composition_bit_for_bit() {
    use burn::backend::Flex;
    use burn::prelude::*;
    use burn::tensor::TensorData;
    use nibble_ops::fused::adamw::AdamWStep;
    use nibble_ops::fused::{adamw_composition, adamw_step};
    let t = |v: Vec<f32>| {
        Tensor::<Flex, 2>::from_data(TensorData::new(v, [37, 29]), &Default::default())
    };
    let n = 37 * 29;
    let v0: Vec<f32> = lcg(n, 22).iter().map(|x| x * x * 1e-3).collect();
    for weight_decay in [0.0, 0.1] {
        let s = AdamWStep {
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            lr: 3e-3,
            weight_decay,
            bc1: 1.0 - 0.9f64.powi(3),
            bc2: 1.0 - 0.95f64.powi(3),
        };
        let args = || (t(lcg(n, 19)), t(lcg(n, 20)), t(lcg(n, 21)), t(v0.clone()));
        let (p, g, m, v) = args();
        let fused = adamw_step(p, g, m, v, &s);
        let (p, g, m, v) = args();
        let reference = adamw_composition(p, g, m, v, &s);
        let bits = |x: Tensor<Flex, 2>| -> Vec<u32> {
            x.into_data()
                .into_vec::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        assert_eq!(bits(fused.0), bits(reference.0), "p, wd {weight_decay}");
        assert_eq!(bits(fused.1), bits(reference.1), "m");
        assert_eq!(bits(fused.2), bits(reference.2), "v");
    }
}
