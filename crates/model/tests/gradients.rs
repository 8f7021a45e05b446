//! Autodiff gradients of LpLinear (f32), RMSNorm, RoPE attention (GQA) and SwiGLU against
//! central finite differences, in f64 (`Autodiff<Flex<f64>>`).

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::layers::{Rope, causal_attention, rms_norm, swiglu};
use std::sync::Arc;

use nibble_model::{LinearScheme, LpLinear};

/// Flex with f64 as the device's default float dtype (set once, before any tensor exists).
type B = Autodiff<Flex>;

fn f64_device() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        burn::tensor::set_default_dtypes::<B>(
            &Default::default(),
            burn::tensor::FloatDType::F64,
            burn::tensor::IntDType::I32,
        )
        .expect("set f64 default");
    });
    let probe = Tensor::<B, 1>::from_data(TensorData::new(vec![0.5f32], [1]), &Default::default());
    assert_eq!(
        probe.dtype(),
        burn::tensor::DType::F64,
        "finite differences need f64"
    );
}

fn rand_vec(n: usize, seed: u64) -> Vec<f64> {
    // SplitMix64 → uniform(-1, 1): independent of the code under test.
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect()
}

fn tensor<const D: usize>(v: &[f64], shape: [usize; D]) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

fn scalar(t: Tensor<B, 1>) -> f64 {
    t.into_data().convert::<f64>().into_vec::<f64>().unwrap()[0]
}

/// Check d f / d inputs[k] for every input, at up to `probes` coordinates each.
fn check<const D: usize>(
    inputs: &[(Vec<f64>, [usize; D])],
    f: impl Fn(&[Tensor<B, D>]) -> Tensor<B, 1>,
    probes: usize,
) {
    f64_device();
    let ts: Vec<Tensor<B, D>> = inputs
        .iter()
        .map(|(v, s)| tensor(v, *s).require_grad())
        .collect();
    let grads = f(&ts).backward();
    for (k, (v, s)) in inputs.iter().enumerate() {
        let g: Vec<f64> = ts[k]
            .grad(&grads)
            .expect("grad")
            .into_data()
            .convert::<f64>()
            .into_vec()
            .unwrap();
        let step = (v.len() / probes).max(1);
        for i in (0..v.len()).step_by(step) {
            let eval = |delta: f64| {
                let mut w = v.clone();
                w[i] += delta;
                let args: Vec<Tensor<B, D>> = inputs
                    .iter()
                    .enumerate()
                    .map(|(j, (vj, sj))| {
                        if j == k {
                            tensor(&w, *s)
                        } else {
                            tensor(vj, *sj)
                        }
                    })
                    .collect();
                scalar(f(&args))
            };
            let h = 1e-6;
            let fd = (eval(h) - eval(-h)) / (2.0 * h);
            let tol = 1e-6 * (1.0 + fd.abs());
            assert!(
                (g[i] - fd).abs() < tol,
                "input {k} coord {i}: autodiff {} vs finite difference {fd}",
                g[i]
            );
        }
    }
}

#[test]
fn lp_linear_f32() {
    let lin = LpLinear::new("x".into(), Arc::new(LinearScheme::identity("f32")), 0);
    let r = rand_vec(2 * 3 * 5, 9);
    check(
        &[(rand_vec(2 * 3 * 4, 1), [2, 3, 4])],
        |t| {
            let w = tensor(&rand_vec(5 * 4, 2), [5, 4]);
            (lin.gemm(t[0].clone(), w, 0, true, None) * tensor(&r, [2, 3, 5])).sum()
        },
        24,
    );
    check(
        &[(rand_vec(5 * 4, 2), [5, 4])],
        |t| {
            let x = tensor(&rand_vec(2 * 3 * 4, 1), [2, 3, 4]);
            (lin.gemm(x, t[0].clone(), 0, true, None) * tensor(&r, [2, 3, 5])).sum()
        },
        20,
    );
}

#[test]
fn rms_norm_input_and_weight() {
    let r = rand_vec(2 * 3 * 8, 5);
    check(
        &[(rand_vec(2 * 3 * 8, 3), [2, 3, 8])],
        |t| {
            (rms_norm(t[0].clone(), tensor(&rand_vec(8, 4), [1, 8]), 1e-5) * tensor(&r, [2, 3, 8]))
                .sum()
        },
        48,
    );
    check(
        &[(rand_vec(8, 4), [1, 8])],
        |t| {
            (rms_norm(
                tensor(&rand_vec(2 * 3 * 8, 3), [2, 3, 8]),
                t[0].clone(),
                1e-5,
            ) * tensor(&r, [2, 3, 8]))
            .sum()
        },
        8,
    );
}

#[test]
fn rope_attention_with_gqa() {
    let (b, h, kv, t, hd) = (2, 4, 2, 5, 6);
    f64_device();
    let rope = Rope::<B>::new(hd, 8, 10_000.0, &Default::default());
    let r = rand_vec(b * h * t * hd, 8);
    // q and k in the projection layout [b, t, heads, hd] (RoPE's input), v in [b, kv, t, hd].
    let q = (rand_vec(b * h * t * hd, 11), [b, t, h, hd]);
    let k = (rand_vec(b * kv * t * hd, 12), [b, t, kv, hd]);
    let v = (rand_vec(b * kv * t * hd, 13), [b, kv, t, hd]);
    check(
        &[q, k, v],
        |x| {
            let q = rope.apply(x[0].clone()).swap_dims(1, 2);
            let k = rope.apply(x[1].clone()).swap_dims(1, 2);
            let y = causal_attention(q, k, x[2].clone());
            (y * tensor(&r, [b, h, t, hd])).sum()
        },
        30,
    );
}

#[test]
fn swiglu_both_inputs() {
    let r = rand_vec(2 * 3 * 7, 21);
    check(
        &[
            (rand_vec(2 * 3 * 7, 22), [2, 3, 7]),
            (rand_vec(2 * 3 * 7, 23), [2, 3, 7]),
        ],
        |x| (swiglu(x[0].clone(), x[1].clone()) * tensor(&r, [2, 3, 7])).sum(),
        42,
    );
}
