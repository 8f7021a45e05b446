//! The fused CPU ops (Flex) through autodiff against the composition of burn ops they replace:
//! RMSNorm and causal GQA attention, values and gradients equal to float rounding. The model
//! takes the fused path on Flex; these compositions remain its path on other backends and with
//! the KV cache or attention taps.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use nibble_model::layers::{attend, attention_probs, rms_norm, rms_norm_reference};
use nibble_ops::LpBackend;

type A = Autodiff<Flex>;

fn vals<const D: usize>(t: Tensor<Flex, D>) -> Vec<f32> {
    t.into_data().into_vec().unwrap()
}

/// max |a − b| / max |b|.
fn rel(a: &[f32], b: &[f32]) -> f32 {
    let s = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / s
}

fn rand<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<A, D> {
    A::seed(&Default::default(), seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Default::default())
}

#[test]
fn flex_has_fused_kernels() {
    assert!(<A as LpBackend>::fused_kernels());
}

#[test]
fn fused_rms_norm_equals_the_composition() {
    let x0 = rand([3, 5, 40], 1);
    let w0 = rand([1, 40], 2) * 0.1 + 1.0;
    let c = rand([3, 5, 40], 3).detach();
    let run = |fused: bool| {
        let x = x0.clone().detach().require_grad();
        let w = w0.clone().detach().require_grad();
        let y = if fused {
            rms_norm(x.clone(), w.clone(), 1e-5)
        } else {
            rms_norm_reference(x.clone(), w.clone(), 1e-5)
        };
        let g = (y.clone() * c.clone()).sum().backward();
        (
            vals(y.inner()),
            vals(x.grad(&g).unwrap()),
            vals(w.grad(&g).unwrap()),
        )
    };
    let (f, r) = (run(true), run(false));
    assert!(rel(&f.0, &r.0) < 1e-6, "y {}", rel(&f.0, &r.0));
    assert!(rel(&f.1, &r.1) < 1e-5, "dx {}", rel(&f.1, &r.1));
    assert!(rel(&f.2, &r.2) < 1e-5, "dw {}", rel(&f.2, &r.2));
}

#[test]
fn fused_attention_equals_the_composition() {
    let (b, t, h, kv, hd) = (2, 13, 6, 2, 16);
    let q0 = rand([b, t, h, hd], 4);
    let k0 = rand([b, t, kv, hd], 5);
    let v0 = rand([b, t, kv, hd], 6);
    let c = rand([b, t, h, hd], 7).detach();
    let run = |fused: bool| {
        let q = q0.clone().detach().require_grad();
        let k = k0.clone().detach().require_grad();
        let v = v0.clone().detach().require_grad();
        let o = if fused {
            nibble_ops::fused::causal_attention(q.clone(), k.clone(), v.clone())
        } else {
            let p = attention_probs(q.clone().swap_dims(1, 2), k.clone().swap_dims(1, 2), 0);
            attend(p, v.clone().swap_dims(1, 2)).swap_dims(1, 2)
        };
        let g = (o.clone() * c.clone()).sum().backward();
        [
            vals(o.inner()),
            vals(q.grad(&g).unwrap()),
            vals(k.grad(&g).unwrap()),
            vals(v.grad(&g).unwrap()),
        ]
    };
    let (f, r) = (run(true), run(false));
    for (name, a, b) in ["o", "dq", "dk", "dv"]
        .iter()
        .zip(&f)
        .zip(&r)
        .map(|((n, a), b)| (n, a, b))
    {
        let e = rel(a, b);
        assert!(e < 1e-5, "{name}: relative difference {e}");
    }
    // And on the plain backend (no autodiff): the forward alone.
    let o = nibble_ops::fused::causal_attention(q0.inner(), k0.inner(), v0.inner());
    assert!(rel(&vals(o), &f[0]) == 0.0);
    let _ = TensorData::new(vec![0f32], [1]);
}

#[test]
fn fused_rope_equals_the_composition_bit_for_bit() {
    let (b, t, n, hd) = (2, 9, 3, 16);
    let rope = nibble_model::layers::Rope::<A>::new(hd, 12, 10000.0, &Default::default());
    let x0 = rand([b, t, n, hd], 8);
    let c = rand([b, t, n, hd], 9).detach();
    let run = |fused: bool| {
        let x = x0.clone().detach().require_grad();
        let y = if fused {
            rope.apply(x.clone())
        } else {
            // x·cos + rotate_half(x)·sin with rotate_half(x) = cat(−x₂, x₁).
            let cos = rope.cos.clone().narrow(0, 0, t).reshape([1, t, 1, hd]);
            let sin = rope.sin.clone().narrow(0, 0, t).reshape([1, t, 1, hd]);
            let x1 = x.clone().narrow(3, 0, hd / 2);
            let x2 = x.clone().narrow(3, hd / 2, hd / 2);
            x.clone() * cos + Tensor::cat(vec![x2.neg(), x1], 3) * sin
        };
        let g = (y.clone() * c.clone()).sum().backward();
        (vals(y.inner()), vals(x.grad(&g).unwrap()))
    };
    let (f, r) = (run(true), run(false));
    assert_eq!(f.0, r.0, "values");
    assert!(rel(&f.1, &r.1) < 1e-6, "dx {}", rel(&f.1, &r.1));
}

#[test]
fn fused_swiglu_equals_the_composition() {
    use nibble_model::layers::{swiglu, swiglu_reference};
    let g0 = rand([2, 7, 33], 10) * 4.0;
    let u0 = rand([2, 7, 33], 11);
    let c = rand([2, 7, 33], 12).detach();
    let run = |fused: bool| {
        let g = g0.clone().detach().require_grad();
        let u = u0.clone().detach().require_grad();
        let y = if fused {
            swiglu(g.clone(), u.clone())
        } else {
            swiglu_reference(g.clone(), u.clone())
        };
        let gr = (y.clone() * c.clone()).sum().backward();
        [
            vals(y.inner()),
            vals(g.grad(&gr).unwrap()),
            vals(u.grad(&gr).unwrap()),
        ]
    };
    let (f, r) = (run(true), run(false));
    for (name, (a, b)) in ["y", "dg", "du"].iter().zip(f.iter().zip(&r)) {
        let e = rel(a, b);
        assert!(e < 1e-6, "{name}: relative difference {e}");
    }
}

#[test]
fn fused_cross_entropy_equals_the_composition() {
    use nibble_model::cross_entropy;
    use nibble_ops::fused::linear_cross_entropy;
    let (b, t, d, v) = (2, 9, 24, 131);
    let h0 = rand([b, t, d], 13);
    let w0 = rand([v, d], 14) * 0.3;
    let ids: Vec<i64> = (0..b * t).map(|i| (i as i64 * 37 + 5) % v as i64).collect();
    let targets =
        Tensor::<A, 1, Int>::from_data(TensorData::new(ids, [b * t]), &Default::default());
    let run = |fused: bool| {
        let h = h0.clone().detach().require_grad();
        let w = w0.clone().detach().require_grad();
        let loss = if fused {
            linear_cross_entropy(h.clone().reshape([b * t, d]), w.clone(), targets.clone())
        } else {
            let logits = h.clone().matmul(w.clone().transpose().unsqueeze::<3>());
            cross_entropy(logits, targets.clone().reshape([b, t]))
        };
        // An upstream factor other than 1, as gradient accumulation gives.
        let g = (loss.clone() * 0.25).backward();
        [
            vals(loss.inner()),
            vals(h.grad(&g).unwrap()),
            vals(w.grad(&g).unwrap()),
        ]
    };
    let (f, r) = (run(true), run(false));
    for (name, (a, b)) in ["loss", "dh", "dw"].iter().zip(f.iter().zip(&r)) {
        let e = rel(a, b);
        assert!(e < 1e-5, "{name}: relative difference {e}");
    }
}
