//! EfficientQAT's affine quantizer against its formulas evaluated independently in f64:
//! min–max init, the forward grid, and the gradients of w, s and z inside the range and where
//! the codes clip; the step gradient also against central differences.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{AT, tensor, vals};
use nibble_techniques::{Affine, LayerSlots, ScaleDtype, ScaleSets, Technique};

#[test]
fn init_is_min_max_per_group() {
    let q = Affine {
        scale: ScaleDtype::F32,
        bits: 2,
        sets: ScaleSets::Group(4),
    };
    let w = [-0.3f32, 0.0, 0.6, 0.3, 0.1, 0.2, 0.4, 0.7];
    let sz = q.init(&tensor(&w, [1, 8]));
    let (s, z) = (vals(sz[0].clone()), vals(sz[1].clone()));
    assert_eq!(q.slots([1, 8]).unwrap()[0].shape, [1, 2]);
    // Group 1: (0.6 + 0.3) / 3 = 0.3, z = round(0.3 / 0.3) = 1; group 2: 0.6 / 3 = 0.2,
    // z = round(−0.1 / 0.2) = round(−0.5) = −0 or −1 depending on the rounding of the ratio.
    assert!(
        (s[0] - 0.3).abs() < 1e-6 && (s[1] - 0.2).abs() < 1e-6,
        "{s:?}"
    );
    assert_eq!(z[0], 1.0);
    assert_eq!(z[1], (-0.1f32 / s[1]).round_ties_even());
}

#[test]
fn forward_and_gradients_follow_the_reference() {
    let bits = 2; // codes 0..=3
    let qmax = 3.0f64;
    let q = Affine {
        scale: ScaleDtype::F32,
        bits,
        sets: ScaleSets::Channel,
    };
    // Row 0 covers the inside and both clips (s = 0.25, z = 1.3 → round 1); row 1 its own step.
    let w = [
        -0.6f32, -0.2, 0.05, 0.31, 0.44, 0.9, -0.01, 0.2, //
        0.1, -0.06, 0.33, 0.02, -0.4, 0.27, 0.6, -0.13,
    ];
    let (s0, z0) = ([0.25f32, 0.1], [1.3f32, 2.0]);
    let r: Vec<f32> = (0..16).map(|i| 0.7 - i as f32 * 0.09).collect();
    let wt = tensor(&w, [2, 8]).require_grad();
    let st = tensor(&s0, [2, 1]).require_grad();
    let zt = tensor(&z0, [2, 1]).require_grad();
    let params = BTreeMap::from([
        ("l.weight_scale".to_string(), st.clone()),
        ("l.weight_zero_point".to_string(), zt.clone()),
    ]);
    let buffers = BTreeMap::new();
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let y = q.apply(wt.clone(), &slots, AT);
    let g = (y.clone() * tensor(&r, [2, 8])).sum().backward();
    let (gy, gw, gs, gz) = (
        vals(y),
        vals(wt.grad(&g).map(Tensor::from_inner).unwrap()),
        vals(st.grad(&g).map(Tensor::from_inner).unwrap()),
        vals(zt.grad(&g).map(Tensor::from_inner).unwrap()),
    );
    let mut clipped = 0;
    for row in 0..2 {
        let (s, z) = (s0[row] as f64, (z0[row] as f64).round_ties_even());
        let (mut ws, mut wz) = (0.0, 0.0);
        for j in 0..8 {
            let i = row * 8 + j;
            let v = w[i] as f64 / s;
            let code = v.round_ties_even() + z;
            let (want_y, dw, ds, dz) = if code > qmax {
                clipped += 1;
                ((qmax - z) * s, 0.0, qmax - z, -s)
            } else if code < 0.0 {
                clipped += 1;
                (-z * s, 0.0, -z, -s)
            } else {
                (v.round_ties_even() * s, 1.0, v.round_ties_even() - v, 0.0)
            };
            assert!(
                (gy[i] as f64 - want_y).abs() < 1e-6,
                "y[{i}] {} vs {want_y}",
                gy[i]
            );
            assert!((gw[i] as f64 - dw * r[i] as f64).abs() < 1e-6, "dw[{i}]");
            ws += ds * r[i] as f64;
            wz += dz * r[i] as f64;
        }
        assert!(
            (gs[row] as f64 - ws).abs() < 1e-5,
            "ds[{row}] {} vs {ws}",
            gs[row]
        );
        assert!(
            (gz[row] as f64 - wz).abs() < 1e-5,
            "dz[{row}] {} vs {wz}",
            gz[row]
        );
    }
    assert!(clipped >= 2, "the example clips at both ends");

    // Against central differences of Σ r·ŵ(s) (h small enough that no code changes): away from
    // rounding boundaries the codes are constant, so the true derivative is Σ r·(code − z); the
    // straight-through gradient differs from it by exactly Σ_inside r·w/s (LSQ's `− v` term).
    let loss = |s: [f32; 2]| -> f64 {
        let st = tensor(&s, [2, 1]);
        let p = BTreeMap::from([
            ("l.weight_scale".to_string(), st),
            ("l.weight_zero_point".to_string(), tensor(&z0, [2, 1])),
        ]);
        let sl = LayerSlots {
            module: "l",
            params: &p,
            buffers: &buffers,
            keep: None,
        };
        vals(q.apply(tensor(&w, [2, 8]), &sl, AT))
            .iter()
            .zip(&r)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum()
    };
    let h = 1e-4f32;
    for row in 0..2 {
        let (mut a, mut b) = (s0, s0);
        a[row] += h;
        b[row] -= h;
        let fd = (loss(a) - loss(b)) / (2.0 * h as f64);
        let (s, z) = (s0[row] as f64, (z0[row] as f64).round_ties_even());
        let inside: f64 = (0..8)
            .map(|j| row * 8 + j)
            .filter(|&i| (0.0..=qmax).contains(&((w[i] as f64 / s).round_ties_even() + z)))
            .map(|i| r[i] as f64 * w[i] as f64 / s)
            .sum();
        let want = fd - inside;
        assert!(
            (want - gs[row] as f64).abs() < 1e-3,
            "ds[{row}] {} vs fd − Σv·r {want}",
            gs[row]
        );
    }
}

#[test]
fn bad_configurations_are_refused() {
    let w = [4, 96];
    let bad = |q: Affine| q.slots(w).unwrap_err();
    assert!(
        bad(Affine {
            scale: ScaleDtype::F32,
            bits: 1,
            sets: ScaleSets::Channel
        })
        .contains("2..=8")
    );
    assert!(
        bad(Affine {
            scale: ScaleDtype::F32,
            bits: 9,
            sets: ScaleSets::Channel
        })
        .contains("2..=8")
    );
    assert!(
        bad(Affine {
            scale: ScaleDtype::F32,
            bits: 4,
            sets: ScaleSets::Group(64)
        })
        .contains("does not divide")
    );
    assert!(
        bad(Affine {
            scale: ScaleDtype::F32,
            bits: 4,
            sets: ScaleSets::Tensor
        })
        .contains("per row or per group")
    );
}

/// E2E-QP's form: the codes `Affine::encode` writes, dequantized by `AffineCodes`, are the
/// affine quantizer's forward weight bit for bit, even from trained (non-integer) zero points and
/// steps outside the clamp range; the codes are integers on the grid; the step gradient is
/// exactly `Σ (q − z)·g` per set and nothing reaches the codes or the zero points.
#[test]
fn codes_dequantize_to_the_forward_and_train_only_the_step() {
    use nibble_techniques::AffineCodes;
    let grid = Affine {
        scale: ScaleDtype::F32,
        bits: 3,
        sets: ScaleSets::Group(4),
    };
    let w: Vec<f32> = (0..24)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.037)
        .collect();
    // Group 2's step is below the clamp (1e-4 is used), group 0's zero point non-integer.
    let s0 = [0.031f32, 0.05, 0.00005, 0.07, 0.02, 0.11];
    let z0 = [2.6f32, 4.0, 3.0, -1.2, 9.5, 3.49];
    let make = |s: &[f32], z: &[f32]| {
        BTreeMap::from([
            ("l.weight_scale".to_string(), tensor(s, [2, 3])),
            ("l.weight_zero_point".to_string(), tensor(z, [2, 3])),
        ])
    };
    let buffers = BTreeMap::new();
    let params = make(&s0, &z0);
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let fake = vals(grid.apply(tensor(&w, [2, 12]), &slots, AT));
    let (codes, z, s) = grid.encode(&tensor(&w, [2, 12]), &slots);
    let (codes_v, z_v) = (vals(codes.clone()), vals(z.clone()));
    assert!(
        codes_v
            .iter()
            .all(|c| c.fract() == 0.0 && (0.0..=7.0).contains(c))
    );
    assert!(
        z_v.iter()
            .all(|c| c.fract() == 0.0 && (0.0..=7.0).contains(c))
    );
    assert_eq!(z_v, [3.0, 4.0, 3.0, 0.0, 7.0, 3.0]);
    assert_eq!(vals(s.clone())[2], 1e-4);
    let conv = AffineCodes { grid: grid.clone() };
    let st = s.require_grad();
    let params = BTreeMap::from([
        ("l.weight_scale".to_string(), st.clone()),
        ("l.weight_zero_point".to_string(), z),
    ]);
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let out = conv.apply(codes.require_grad(), &slots, AT);
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(
        bits(&vals(out.clone())),
        bits(&fake),
        "(codes − z)·s = forward"
    );
    let g: Vec<f32> = (0..24).map(|i| (i as f32 * 0.61).sin()).collect();
    let grads = (out * tensor(&g, [2, 12])).sum().backward();
    let gs: Vec<f32> = st
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    for set in 0..6 {
        let want: f64 = (0..4)
            .map(|j| {
                let i = set * 4 + j;
                (codes_v[i] as f64 - z_v[set] as f64) * g[i] as f64
            })
            .sum();
        assert!(
            (gs[set] as f64 - want).abs() < 1e-5,
            "set {set}: {} vs {want}",
            gs[set]
        );
    }
}
