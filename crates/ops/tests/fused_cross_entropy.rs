//! The cross-entropy fused with the lm_head against an f64 reference (the loss, and its
//! analytic gradients, themselves checked by central finite differences), across chunk
//! boundaries and thread counts.

mod common;

use common::{f64s, lcg, rel};
use nibble_ops::fused::cross_entropy::{CeDims, linear_cross_entropy_in_chunks};

/// The mean loss of h·Wᵀ in f64, and its gradients (dh, dw).
fn reference(h: &[f64], w: &[f64], t: &[usize], dm: CeDims) -> (f64, Vec<f64>, Vec<f64>) {
    let CeDims { n, d, v } = dm;
    let (mut loss, mut dh, mut dw) = (0.0, vec![0.0; n * d], vec![0.0; v * d]);
    for i in 0..n {
        let hi = &h[i * d..][..d];
        let z: Vec<f64> = (0..v)
            .map(|j| hi.iter().zip(&w[j * d..][..d]).map(|(a, b)| a * b).sum())
            .collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let s: f64 = z.iter().map(|x| (x - m).exp()).sum();
        loss += m + s.ln() - z[t[i]];
        for j in 0..v {
            let g = ((z[j] - m).exp() / s - f64::from(j == t[i])) / n as f64;
            for c in 0..d {
                dh[i * d + c] += g * w[j * d + c];
                dw[j * d + c] += g * hi[c];
            }
        }
    }
    (loss / n as f64, dh, dw)
}

struct Case {
    h: Vec<f32>,
    w: Vec<f32>,
    t: Vec<usize>,
    dm: CeDims,
}

fn case(n: usize, d: usize, v: usize) -> Case {
    Case {
        h: lcg(n * d, 1),
        w: lcg(v * d, 2).iter().map(|x| x * 0.5).collect(),
        t: (0..n).map(|i| (i * 7919 + 3) % v).collect(),
        dm: CeDims { n, d, v },
    }
}

#[test]
fn loss_and_gradients_match_f64_across_chunks() {
    let c = case(37, 19, 301); // ragged SIMD tails, chunks of 8 rows leave a partial one
    let (loss, dh, dw) = reference(&f64s(&c.h), &f64s(&c.w), &c.t, c.dm);
    for rows in [1, 8, 37, 64] {
        let out = linear_cross_entropy_in_chunks(&c.h, &c.w, &c.t, c.dm, true, rows);
        assert!(
            (out.loss as f64 - loss).abs() < 1e-6 * loss,
            "rows {rows}: loss {} vs {loss}",
            out.loss
        );
        let (gh, gw) = out.grads.expect("gradients");
        assert!(rel(&gh, &dh) < 1e-5, "rows {rows}: dh {}", rel(&gh, &dh));
        assert!(rel(&gw, &dw) < 1e-5, "rows {rows}: dw {}", rel(&gw, &dw));
        let plain = linear_cross_entropy_in_chunks(&c.h, &c.w, &c.t, c.dm, false, rows);
        assert_eq!(plain.loss.to_bits(), out.loss.to_bits());
        assert!(plain.grads.is_none());
    }
}

#[test]
fn the_reference_gradients_are_the_finite_differences_of_the_loss() {
    let c = case(5, 4, 9);
    let (h, w) = (f64s(&c.h), f64s(&c.w));
    let (_, dh, dw) = reference(&h, &w, &c.t, c.dm);
    let eps = 1e-6;
    let fd = |x: &[f64], at: usize, f: &dyn Fn(&[f64]) -> f64| {
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[at] += eps;
        b[at] -= eps;
        (f(&a) - f(&b)) / (2.0 * eps)
    };
    for (i, want) in dh.iter().enumerate() {
        let g = fd(&h, i, &|h| reference(h, &w, &c.t, c.dm).0);
        assert!((g - want).abs() < 1e-7, "dh[{i}]: {g} vs {want}");
    }
    for (i, want) in dw.iter().enumerate() {
        let g = fd(&w, i, &|w| reference(&h, w, &c.t, c.dm).0);
        assert!((g - want).abs() < 1e-7, "dw[{i}]: {g} vs {want}");
    }
}

#[test]
fn bits_do_not_depend_on_the_thread_count() {
    let c = case(200, 64, 1000);
    let run = || {
        let o = linear_cross_entropy_in_chunks(&c.h, &c.w, &c.t, c.dm, true, 48);
        (o.loss.to_bits(), o.grads)
    };
    let pool = |n| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    };
    let one = pool(1).install(run);
    let three = pool(3).install(run);
    assert!(one == three, "results depend on the thread count");
}

#[test]
fn a_non_finite_logit_gives_a_nan_loss() {
    let mut c = case(4, 3, 10);
    c.h[5] = f32::INFINITY;
    let out = linear_cross_entropy_in_chunks(&c.h, &c.w, &c.t, c.dm, true, 2);
    assert!(out.loss.is_nan());
}

#[test]
#[should_panic(expected = "outside the vocabulary")]
fn a_target_outside_the_vocabulary_is_refused() {
    let mut c = case(4, 3, 10);
    c.t[2] = 10;
    linear_cross_entropy_in_chunks(&c.h, &c.w, &c.t, c.dm, false, 2);
}
