//! ParetoQ's SEQ against its reference (`StretchedElasticQuant` in facebookresearch/ParetoQ):
//! hand-computed levels, the custom backward's formulas evaluated independently in f64 (inside,
//! clipped at both ends, and under the α floor), the init, and the bit widths it refuses.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{A, AT, tensor, vals};
use nibble_techniques::{LayerSlots, Seq, SlotKind, SlotSpec, Technique};

/// ŵ and the gradients of Σ r·ŵ w.r.t. w and α.
fn run(q: &Seq, w: &[f32], alpha: &[f32], r: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let shape = [alpha.len(), w.len() / alpha.len()];
    let wt = tensor(w, shape).require_grad();
    let at = tensor(alpha, [alpha.len(), 1]).require_grad();
    let params: BTreeMap<String, Tensor<A, 2>> =
        BTreeMap::from([("l.weight_clip_val".to_string(), at.clone())]);
    let buffers = BTreeMap::new();
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let y = q.apply(wt.clone(), &slots, AT);
    let g = (y.clone() * tensor(r, shape)).sum().backward();
    (
        vals(y),
        vals(wt.grad(&g).map(Tensor::from_inner).unwrap()),
        vals(at.grad(&g).map(Tensor::from_inner).unwrap()),
    )
}

fn close(got: &[f32], want: &[f32]) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() < 1e-6, "[{i}] {g} vs {w} (all: {got:?})");
    }
}

#[test]
fn forward_levels_are_the_stretched_grids() {
    // 2-bit, α = 2: levels α·{±1/4, ±3/4} = {±0.5, ±1.5}; w/α = 0 sits on a rounding tie
    // (0·2 − 0.5 = −0.5 → −0, half to even) and goes to +0.5; 2.5 and −3 clip.
    let two = Seq { bits: 2.0 };
    let w = [-3.0f32, -1.2, -0.6, -0.1, 0.0, 0.3, 0.9, 1.5, 2.5];
    let (y, _, _) = run(&two, &w, &[2.0], &[0.0; 9]);
    close(&y, &[-1.5, -1.5, -0.5, -0.5, 0.5, 0.5, 0.5, 1.5, 1.5]);

    // Ternary, α = 1.5: levels α·{−2/3, 0, 2/3} = {−1, 0, 1}, thresholds at |w| = α/3 = 0.5.
    let ternary = Seq { bits: 1.58 };
    let w = [-2.0f32, -0.6, -0.4, 0.0, 0.4, 0.6, 0.9];
    let (y, _, _) = run(&ternary, &w, &[1.5], &[0.0; 7]);
    close(&y, &[-1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
}

/// The reference's forward and backward in f64 for one bit width.
fn check_gradients(bits: f32, n: f64, shift: f64) {
    let c = 0.99f64;
    let qp = (n - shift) / n;
    // Row 0 (α = 0.25) and row 1 (α = 0.1) hold values inside and clipped at both ends; row 2
    // has α = 0, floored to 1e-5 in the forward, and still gets a gradient.
    let w = [
        0.05f32, -0.12, 0.3, -0.5, 0.9, -1.3, 0.01, 0.2, //
        0.01, 0.02, -0.03, 0.2, -0.2, 0.07, -0.045, 0.06, //
        0.0, 1e-6, -2e-6, 3e-6, -1e-4, 0.5, -0.5, 4e-6,
    ];
    let alpha = [0.25f32, 0.1, 0.0];
    let r: Vec<f32> = (0..24).map(|i| 0.5 - i as f32 * 0.07).collect();
    let (y, gw, ga) = run(&Seq { bits }, &w, &alpha, &r);
    let g = 1.0 / (24f64).sqrt(); // the whole tensor's numel, not the row's
    let (mut small, mut big, mut mid) = (0, 0, 0);
    for row in 0..3 {
        let a = if alpha[row] as f64 > 1e-5 {
            alpha[row] as f64
        } else {
            1e-5
        };
        let mut want_ga = 0.0;
        for j in 0..8 {
            let i = row * 8 + j;
            let q = w[i] as f64 / a;
            let lv = ((q.clamp(-c, c) * n - shift).round_ties_even() + shift) / n;
            let want_y = lv * a;
            assert!(
                (y[i] as f64 - want_y).abs() <= 1e-5 * want_y.abs() + 1e-12,
                "{bits} y[{i}] {} vs {want_y}",
                y[i]
            );
            let (dw, da) = if q < -c {
                small += 1;
                (0.0, -qp)
            } else if q > c {
                big += 1;
                (0.0, qp)
            } else {
                mid += 1;
                (1.0, lv - q)
            };
            assert_eq!(gw[i] as f64, dw * r[i] as f64, "{bits} dL/dw[{i}]");
            want_ga += da * r[i] as f64 * g;
        }
        assert!(
            (ga[row] as f64 - want_ga).abs() < 1e-5 * want_ga.abs().max(1.0),
            "{bits} dL/dα[{row}] {} vs {want_ga}",
            ga[row]
        );
    }
    assert!(small >= 3 && big >= 3 && mid >= 10, "{small} {big} {mid}");
}

#[test]
fn two_bit_gradients_follow_the_reference_backward() {
    check_gradients(2.0, 2.0, 0.5);
}

#[test]
fn ternary_gradients_follow_the_reference_backward() {
    // Clipped weights give α the gradient ±Q_p = ±1 although their value is ±2/3·α.
    check_gradients(1.58, 1.5, 0.0);
}

#[test]
fn init_is_the_row_max_of_abs_w() {
    let w = [0.1f32, -0.7, 0.3, 0.2, 0.05, 0.4, -0.4, 0.0];
    for bits in [1.58, 2.0] {
        let init = Seq { bits }.init(&tensor(&w, [2, 4]));
        assert_eq!(init.len(), 1);
        assert_eq!(init[0].dims(), [2, 1]);
        close(&vals(init[0].clone()), &[0.7, 0.4]);
    }
}

#[test]
fn slots_take_ternary_and_two_bits_only() {
    for bits in [1.58, 2.0] {
        assert_eq!(
            Seq { bits }.slots([5, 16]).unwrap(),
            vec![SlotSpec {
                suffix: "weight_clip_val",
                shape: [5, 1],
                kind: SlotKind::Param,
            }]
        );
    }
    for bits in [0.0, 1.0, 1.5, 1.6, 3.0, 4.0, 8.0] {
        let e = Seq { bits }.slots([5, 16]).unwrap_err();
        assert!(e.contains("1.58 (ternary) or 2"), "{bits}: {e}");
    }
}

#[test]
fn qat_section_builds_seq_and_refuses_what_it_cannot_hold() {
    use nibble_techniques::{AnyTechnique, Granularity, QatConfig};
    let q: QatConfig = toml::from_str("method = \"seq_ternary\"").unwrap();
    q.validate().unwrap();
    assert_eq!(
        q.technique_for("model.layers.0.mlp.up_proj"),
        Some(AnyTechnique::Seq(Seq { bits: 1.58 }))
    );
    let q: QatConfig = toml::from_str("method = \"seq\"\nbits = 2").unwrap();
    q.validate().unwrap();
    let q: QatConfig = toml::from_str("method = \"seq\"").unwrap();
    assert_eq!(
        q.validate().unwrap_err().key,
        "bits",
        "the default 4 bits is not SEQ's"
    );
    let q = QatConfig {
        granularity: Granularity::Tensor,
        ..toml::from_str("method = \"seq_ternary\"").unwrap()
    };
    assert_eq!(q.validate().unwrap_err().key, "granularity");
}
