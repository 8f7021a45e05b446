//! The ternary quantizers against hand-computed grids (absmean with AngelSlim's ties, TWN) and
//! Tequila's deadzone bias: its value, the release's backward (straight-through plus λ·Σ_t ∂L/∂y
//! on deadzone weights) against an independent computation and central finite differences, and
//! the learnable λ's gradient.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{A, AT, tensor, vals};
use nibble_techniques::{
    Absmean, AnyTechnique, Granularity, LayerSlots, QatConfig, QatMethod, ScaleDtype, ScaleSets,
    Technique, Tequila, Twn,
};

fn no_slots<'a>(
    p: &'a BTreeMap<String, Tensor<A, 2>>,
    b: &'a BTreeMap<String, Tensor<A, 2>>,
) -> LayerSlots<'a, A> {
    LayerSlots {
        module: "l",
        params: p,
        buffers: b,
        keep: None,
    }
}

#[test]
fn absmean_per_group_matches_a_hand_computed_grid() {
    // Binary fractions, so every mean and threshold is exact. Group 1: mean|w| = 1.0 / 4 = 0.25,
    // Δ = 0.125: ±0.125 sit exactly on the threshold and go to ±1 (AngelSlim's >=).
    // Group 2: mean|w| = 2.0 / 4 = 0.5, Δ = 0.25: 0.375 and 0.625 → +1, -1 → -1, 0 → 0.
    let w = [-0.5f32, 0.25, 0.125, -0.125, -1.0, 0.0, 0.375, 0.625];
    let t = Absmean {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Group(4),
    };
    let (q, c) = t.grid(&tensor(&w, [1, 8]), None);
    assert_eq!(vals(c), [-1.0, 1.0, 1.0, -1.0, -1.0, 0.0, 1.0, 1.0]);
    assert_eq!(vals(q), [-0.25, 0.25, 0.25, -0.25, -0.5, 0.0, 0.5, 0.5]);
    // Per tensor, the same weights share α = 3.0 / 8 = 0.375, Δ = 0.1875: ±0.125 fall in the
    // deadzone, 0.25 and 0.375 (on the threshold's right) are kept.
    let (_, c) = Absmean {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Tensor,
    }
    .grid(&tensor(&w, [1, 8]), None);
    assert_eq!(vals(c), [-1.0, 1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 1.0]);
}

#[test]
fn twn_matches_a_hand_computed_grid() {
    // Row 0: mean|w| = 2.0 / 5 = 0.4, Δ = 0.28: survivors -0.9, 0.5, 0.3 (0.28 itself is not
    // > Δ), α = (0.9 + 0.5 + 0.3) / 3. Row 1 (per channel): all |w| = 0.1 = mean, Δ = 0.07, all
    // survive with α = 0.1.
    let w = [-0.9f32, 0.5, 0.3, 0.02, 0.28, 0.1, -0.1, 0.1, -0.1, 0.1];
    let q = vals(
        Twn {
            scale: ScaleDtype::F32,
            sets: ScaleSets::Channel,
        }
        .grid(&tensor(&w, [2, 5]), None),
    );
    let a = (0.9f32 + 0.5 + 0.3) / 3.0;
    let want = [-a, a, a, 0.0, 0.0, 0.1, -0.1, 0.1, -0.1, 0.1];
    for (got, want) in q.iter().zip(want) {
        assert!((got - want).abs() <= 1e-7, "{q:?}");
    }
}

/// A weight away from every threshold (|w| / Δ not within 5% of 1), so small perturbations
/// keep the ternary codes.
fn weights(out: usize, inp: usize) -> Vec<f32> {
    (0..out * inp)
        .map(|i| ((i * 7919 + 13) % 97) as f32 / 97.0 * 2.0 - 1.0)
        .map(|v| v * 0.1)
        .collect()
}

#[test]
fn tequila_bias_and_backward_match_the_release() {
    let (out, inp, tokens, g, lambda) = (3, 8, 5, 4, 0.01);
    let w = weights(out, inp);
    let x: Vec<f32> = (0..tokens * inp)
        .map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5)
        .collect();
    let c: Vec<f32> = (0..tokens * out)
        .map(|i| ((i * 13) % 11) as f32 / 11.0 - 0.4)
        .collect();
    let teq = Tequila {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Group(g),
        lambda,
        learnable: false,
    };
    let (p, b) = (BTreeMap::new(), BTreeMap::new());
    let slots = no_slots(&p, &b);
    let wt = tensor(&w, [out, inp]).require_grad();
    let (wq, bias) = teq.apply_with_bias(wt.clone(), &slots, AT);
    let bias = bias.expect("a bias");
    let y = tensor(&x, [tokens, inp]).matmul(wq.clone().transpose()) + bias.clone();
    let grads = (y * tensor(&c, [tokens, out])).sum().backward();
    let gw = vals(wt.grad(&grads).map(Tensor::from_inner).unwrap());

    // Independently: codes from the absmean rule, the deadzone D, b_i = λ Σ_{D_i} w_ij, and
    // ∂L/∂w_ij = Σ_t c_ti x_tj + λ D_ij Σ_t c_ti.
    let mut deadzone = vec![false; out * inp];
    for (k, grp) in w.chunks(g).enumerate() {
        let alpha = grp.iter().map(|v| v.abs()).sum::<f32>() / g as f32;
        for (j, v) in grp.iter().enumerate() {
            deadzone[k * g + j] = v.abs() < alpha / 2.0;
        }
    }
    assert!(deadzone.iter().any(|&d| d) && !deadzone.iter().all(|&d| d));
    let want_b: Vec<f64> = (0..out)
        .map(|i| {
            (0..inp)
                .filter(|&j| deadzone[i * inp + j])
                .map(|j| w[i * inp + j] as f64)
                .sum::<f64>()
                * lambda
        })
        .collect();
    for (got, want) in vals(bias).iter().zip(&want_b) {
        assert!((*got as f64 - want).abs() < 1e-9, "bias {got} vs {want}");
    }
    for i in 0..out {
        let csum: f64 = (0..tokens).map(|t| c[t * out + i] as f64).sum();
        for j in 0..inp {
            let ste: f64 = (0..tokens)
                .map(|t| c[t * out + i] as f64 * x[t * inp + j] as f64)
                .sum();
            let extra = if deadzone[i * inp + j] {
                lambda * csum
            } else {
                0.0
            };
            let got = gw[i * inp + j] as f64;
            assert!(
                (got - (ste + extra)).abs() < 1e-5,
                "dw[{i},{j}]: {got} vs {}",
                ste + extra
            );
        }
    }

    // The bias path alone against central differences of Σ c·b(w) (codes unchanged by ±h).
    let bias_sum = |w: &[f32]| -> f64 {
        let b = teq
            .apply_with_bias(tensor(w, [out, inp]), &slots, AT)
            .1
            .unwrap();
        vals(b)
            .iter()
            .enumerate()
            .map(|(i, v)| *v as f64 * (0..tokens).map(|t| c[t * out + i] as f64).sum::<f64>())
            .sum()
    };
    let h = 1e-3;
    for k in 0..out * inp {
        let (mut a, mut z) = (w.clone(), w.clone());
        a[k] += h;
        z[k] -= h;
        let fd = (bias_sum(&a) - bias_sum(&z)) / (2.0 * h as f64);
        let i = k / inp;
        let csum: f64 = (0..tokens).map(|t| c[t * out + i] as f64).sum();
        let want = if deadzone[k] { lambda * csum } else { 0.0 };
        assert!((fd - want).abs() < 1e-4, "fd[{k}]: {fd} vs {want}");
    }
}

#[test]
fn tequila_learnable_lambda_gets_the_deadzone_sums() {
    let (out, inp) = (2, 8);
    let w = weights(out, inp);
    let teq = Tequila {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Channel,
        lambda: 1e-3,
        learnable: true,
    };
    let spec = teq.slots([out, inp]).unwrap();
    assert_eq!(spec[0].shape, [out, 1]);
    let lam = teq.init(&tensor(&w, [out, inp])).remove(0).require_grad();
    assert_eq!(vals(lam.clone()), [1e-3f32, 1e-3]);
    let p = BTreeMap::from([("l.weight_lambda".to_string(), lam.clone())]);
    let b = BTreeMap::new();
    let slots = no_slots(&p, &b);
    let bias = teq
        .apply_with_bias(tensor(&w, [out, inp]), &slots, AT)
        .1
        .unwrap();
    let weights_c = tensor(&[2.0, -3.0], [1, 2]);
    let g = (bias * weights_c).sum().backward();
    let got = vals(lam.grad(&g).map(Tensor::from_inner).unwrap());
    let (_, codes) = Absmean {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Channel,
    }
    .grid(&tensor(&w, [out, inp]), None);
    let codes = vals(codes);
    for (i, (got, c)) in got.iter().zip([2.0f32, -3.0]).enumerate() {
        let s: f32 = (0..inp)
            .filter(|&j| codes[i * inp + j] == 0.0)
            .map(|j| w[i * inp + j])
            .sum();
        assert!((got - c * s).abs() < 1e-6, "row {i}: {got} vs {}", c * s);
    }
}

#[test]
fn qat_section_builds_and_validates_the_ternary_methods() {
    let q: QatConfig = toml::from_str(
        "method = \"tequila\"\ngranularity = \"group\"\ngroup_size = 64\nlambda = 0.01",
    )
    .unwrap();
    q.validate().unwrap();
    assert_eq!(
        q.technique_for("model.layers.2.self_attn.o_proj"),
        Some(AnyTechnique::Tequila(Tequila {
            scale: ScaleDtype::F32,
            sets: ScaleSets::Group(64),
            lambda: 0.01,
            learnable: false,
        }))
    );
    let bad = |text: &str, key: &str| {
        let q: QatConfig = toml::from_str(text).unwrap();
        assert_eq!(q.validate().unwrap_err().key, key, "{text}");
    };
    bad("method = \"absmean\"\nlambda = 0.01", "lambda");
    bad(
        "method = \"twn\"\nlambda_learnable = true",
        "lambda_learnable",
    );
    bad("granularity = \"group\"", "granularity");
    bad("method = \"tequila\"\nlambda = -1.0", "lambda");
    let q = QatConfig {
        method: QatMethod::Twn,
        granularity: Granularity::Tensor,
        ..QatConfig::default()
    };
    q.validate().unwrap();
    let t = q.technique_for("model.layers.0.mlp.down_proj").unwrap();
    assert!(t.slots([4, 8]).unwrap().is_empty());
    // A group that does not divide the row is refused when the layer is built.
    let t = Absmean {
        scale: ScaleDtype::F32,
        sets: ScaleSets::Group(64),
    };
    assert!(t.slots([4, 96]).unwrap_err().contains("does not divide"));
}
