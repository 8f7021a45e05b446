//! Composition inside a layer (spec §7.1): an N:M mask, then a ternary quantizer. The quantizer
//! sees the kept entries (`LayerSlots::keep`): its scale is the mean over them (pruned zeros do
//! not shrink it), TWN's threshold and survivors count them only, and Tequila's deadzone bias
//! sums, and sends its gradient to, kept deadzone weights only. Checked against the formulas
//! written out here.

mod common;

use std::collections::BTreeMap;

use common::{A, AT, tensor, vals};
use nibble_techniques::{
    Absmean, LayerSlots, NmSte, ScaleDtype, ScaleSets, Technique, Tequila, Twn,
};

const W: [f32; 16] = [
    0.9, -0.1, 0.3, -0.7, 0.05, 0.6, -0.2, 0.4, //
    -0.8, 0.2, 0.1, 0.5, -0.3, -0.06, 0.7, 0.15,
];

/// The 2:4 mask of W and W⊙m.
fn masked() -> (Vec<f32>, Vec<f32>) {
    let m = vals(NmSte::new(2, 4).mask_for(&tensor(&W, [2, 8]), 2, 4));
    let ws = W.iter().zip(&m).map(|(w, m)| w * m).collect();
    (m, ws)
}

/// Per row: the mean |w| over kept entries.
fn kept_mean(ws: &[f32], m: &[f32]) -> Vec<f64> {
    ws.chunks(8)
        .zip(m.chunks(8))
        .map(|(w, m)| {
            let k: Vec<f64> = w
                .iter()
                .zip(m)
                .filter(|(_, m)| **m == 1.0)
                .map(|(w, _)| f64::from(w.abs()))
                .collect();
            k.iter().sum::<f64>() / k.len() as f64
        })
        .collect()
}

#[test]
fn absmean_and_twn_scale_over_the_kept_entries() {
    let (m, ws) = masked();
    let keep = tensor(&m, [2, 8]);
    let mean = kept_mean(&ws, &m);
    let grid = Absmean {
        sets: ScaleSets::Channel,
        scale: ScaleDtype::F32,
    };
    let (q, c) = grid.grid(&tensor(&ws, [2, 8]), Some(&keep));
    let (q, c) = (vals(q), vals(c));
    for i in 0..16 {
        let a = mean[i / 8] as f32;
        let want = if ws[i] >= a / 2.0 {
            1.0
        } else if ws[i] <= -a / 2.0 {
            -1.0
        } else {
            0.0
        };
        assert_eq!(c[i], want, "code {i}");
        assert_eq!(q[i], want * a, "weight {i}");
        if m[i] == 0.0 {
            assert_eq!(c[i], 0.0, "a pruned zero stays 0");
        }
    }
    // Without the mask the zeros count: the row's scale halves (2 of 4 kept).
    let (q_all, _) = grid.grid(&tensor(&ws, [2, 8]), None);
    assert_ne!(vals(q_all), q, "keep changes the scale");

    let twn = Twn {
        sets: ScaleSets::Channel,
        scale: ScaleDtype::F32,
    };
    let q = vals(twn.grid(&tensor(&ws, [2, 8]), Some(&keep)));
    for r in 0..2 {
        let delta = 0.7 * mean[r] as f32;
        let row = &ws[r * 8..r * 8 + 8];
        let surv: Vec<f32> = row.iter().filter(|x| x.abs() > delta).copied().collect();
        let alpha =
            (surv.iter().map(|x| f64::from(x.abs())).sum::<f64>() / surv.len() as f64) as f32;
        for (j, &x) in row.iter().enumerate() {
            let want = if x.abs() > delta {
                x.signum() * alpha
            } else {
                0.0
            };
            assert_eq!(q[r * 8 + j], want, "TWN row {r} entry {j}");
        }
    }
}

#[test]
fn tequila_deadzone_bias_excludes_pruned_weights() {
    let (m, ws) = masked();
    // A pruned weight with a value (MDGF's β·W): it must not reach the bias either.
    let ws: Vec<f32> = ws
        .iter()
        .zip(&W)
        .zip(&m)
        .map(|((s, w), m)| if *m == 0.0 { 0.01 * w } else { *s })
        .collect();
    let lambda = 0.5;
    let t = Tequila {
        sets: ScaleSets::Channel,
        lambda,
        learnable: false,
        scale: ScaleDtype::F32,
    };
    let (params, buffers) = (BTreeMap::new(), BTreeMap::new());
    let slots = LayerSlots::<A> {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: Some(tensor(&m, [2, 8])),
    };
    let w = tensor(&ws, [2, 8]).require_grad();
    let (_, bias) = t.apply_with_bias(w.clone(), &slots, AT);
    let bias = bias.unwrap();
    let mean = kept_mean(&ws, &m);
    let deadzone = |i: usize| m[i] == 1.0 && ws[i].abs() < mean[i / 8] as f32 / 2.0;
    let b = vals(bias.clone());
    assert_eq!(b.len(), 2);
    for (r, got) in b.iter().enumerate() {
        let want: f64 = (r * 8..r * 8 + 8)
            .filter(|&i| deadzone(i))
            .map(|i| f64::from(ws[i]))
            .sum::<f64>()
            * lambda;
        assert!(
            (f64::from(*got) - want).abs() < 1e-7,
            "row {r}: {got} vs {want}"
        );
    }
    // d(Σ b)/dw = λ on kept deadzone weights, 0 elsewhere (pruned ones included).
    let g = bias.sum().backward();
    let gw = vals(w.grad(&g).map(burn::tensor::Tensor::from_inner).unwrap());
    for (i, gv) in gw.iter().enumerate() {
        let want = if deadzone(i) { lambda as f32 } else { 0.0 };
        assert_eq!(*gv, want, "bias gradient {i}");
    }
    assert!(
        (0..16).any(|i| m[i] == 0.0 && ws[i].abs() < 0.01),
        "pruned entries in the test"
    );
}
