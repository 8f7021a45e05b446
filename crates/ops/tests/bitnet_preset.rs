//! The `bitnet-w158a8` preset against BitNet b1.58's published quantizer code, evaluated here
//! independently: weights `clamp(round(w·s), −1, 1)/s` with `s = 1/max(mean|w|, 1e-5)` per
//! tensor, activations `clamp(round(x·q), −128, 127)/q` with `q = 127/max|x_t|` per token, and
//! the straight-through backward (the GEMMs of the quantized operands).

mod common;

use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use common::lcg;
use nibble_ops::{LayerCall, lp_linear, preset};

type AD = Autodiff<Flex>;

fn t2(v: &[f32], dims: [usize; 2]) -> Tensor<AD, 2> {
    Tensor::from_data(TensorData::new(v.to_vec(), dims), &Default::default())
}

fn host(t: Tensor<Flex, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// `a[m×k]·b[n×k]ᵀ` in f64.
fn gemm_nt(a: &[f64], b: &[f64], m: usize, n: usize, k: usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).map(|l| a[i * k + l] * b[j * k + l]).sum();
        }
    }
    c
}

fn transpose(a: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    (0..cols * rows)
        .map(|i| a[(i % rows) * cols + i / rows])
        .collect()
}

fn close(got: &[f32], want: &[f64], what: &str) {
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (*g as f64 - w).abs() <= 1e-5 * scale,
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

#[test]
fn bitnet_preset_is_the_published_w158a8_quantizer_with_a_straight_through_backward() {
    let (t, k, n) = (6, 16, 5);
    let x: Vec<f32> = lcg(t * k, 1).iter().map(|v| v * 3.0).collect();
    let w: Vec<f32> = lcg(n * k, 2).iter().map(|v| v * 0.05).collect();
    let c = lcg(t * n, 3);
    // The published code, in f32 as it runs.
    let s = 1.0 / (w.iter().map(|v| v.abs()).sum::<f32>() / w.len() as f32).max(1e-5);
    let wq: Vec<f64> = w
        .iter()
        .map(|v| ((v * s).round_ties_even().clamp(-1.0, 1.0) / s) as f64)
        .collect();
    let xq: Vec<f64> = x
        .chunks(k)
        .flat_map(|row| {
            let q = 127.0 / row.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-5);
            row.iter()
                .map(move |v| ((v * q).round_ties_even().clamp(-128.0, 127.0) / q) as f64)
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(wq.contains(&0.0) && wq.iter().any(|v| *v != 0.0));

    let scheme = Arc::new(preset("bitnet-w158a8").unwrap());
    let (xa, wa) = (t2(&x, [t, k]).require_grad(), t2(&w, [n, k]).require_grad());
    let y = lp_linear(xa.clone(), wa.clone(), &scheme, &LayerCall::key(7));
    let g = (y.clone() * t2(&c, [t, n])).sum().backward();
    let cd: Vec<f64> = c.iter().map(|v| *v as f64).collect();
    close(&host(y.inner()), &gemm_nt(&xq, &wq, t, n, k), "y");
    // dX = C·Ŵ, dW = Cᵀ·X̂: the GEMMs of the quantized operands.
    let dx = gemm_nt(&cd, &transpose(&wq, n, k), t, k, n);
    let dw = gemm_nt(&transpose(&cd, t, n), &transpose(&xq, t, k), n, k, t);
    close(&host(xa.grad(&g).unwrap()), &dx, "dx");
    close(&host(wa.grad(&g).unwrap()), &dw, "dw");
}

/// `a8-tensor`: TernaryBERT's activations, `clamp(round(x·q), −128, 127)/q` with one
/// `q = 127/max|x|` for the whole tensor; the weight untouched; straight-through backward.
#[test]
fn a8_tensor_preset_quantizes_activations_per_tensor_only() {
    let (t, k, n) = (6, 16, 5);
    let x: Vec<f32> = lcg(t * k, 4).iter().map(|v| v * 3.0).collect();
    let w: Vec<f32> = lcg(n * k, 5).iter().map(|v| v * 0.05).collect();
    let c = lcg(t * n, 6);
    let q = 127.0 / x.iter().fold(0f32, |m, v| m.max(v.abs()));
    let xq: Vec<f64> = x
        .iter()
        .map(|v| ((v * q).round_ties_even().clamp(-128.0, 127.0) / q) as f64)
        .collect();
    let wd: Vec<f64> = w.iter().map(|v| *v as f64).collect();
    let scheme = Arc::new(preset("a8-tensor").unwrap());
    let (xa, wa) = (t2(&x, [t, k]).require_grad(), t2(&w, [n, k]).require_grad());
    let y = lp_linear(xa.clone(), wa.clone(), &scheme, &LayerCall::key(7));
    let g = (y.clone() * t2(&c, [t, n])).sum().backward();
    let cd: Vec<f64> = c.iter().map(|v| *v as f64).collect();
    close(&host(y.inner()), &gemm_nt(&xq, &wd, t, n, k), "y");
    let dx = gemm_nt(&cd, &transpose(&wd, n, k), t, k, n);
    let dw = gemm_nt(&transpose(&cd, t, n), &transpose(&xq, t, k), n, k, t);
    close(&host(xa.grad(&g).unwrap()), &dx, "dx");
    close(&host(wa.grad(&g).unwrap()), &dw, "dw");
}
