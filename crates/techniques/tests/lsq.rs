//! LSQ's forward grid and gradients against the formulas of the paper (Esser et al. 2020),
//! evaluated here independently in f64.

use std::collections::BTreeMap;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_techniques::{LayerSlots, Lsq, ScaleDtype, ScaleSets, StepInfo, Technique};

type A = Autodiff<Flex>;

fn vals<const D: usize>(t: Tensor<A, D>) -> Vec<f32> {
    t.inner().into_data().convert::<f32>().into_vec().unwrap()
}

#[test]
fn lsq_matches_the_papers_forward_and_gradients() {
    let dev = Default::default();
    let bits = 3; // Q_N = 4, Q_P = 3
    let (qn, qp) = (4.0f64, 3.0f64);
    // Row 0 has values inside, at the edges and beyond both ends; row 1 a scale of its own.
    let w = vec![
        0.05f32, -0.12, 0.33, -0.5, 0.9, -1.3, 0.0, 0.26, //
        0.01, 0.02, -0.03, 0.2, -0.2, 0.07, -0.5, 0.6,
    ];
    let s = [0.25f32, 0.1];
    let r: Vec<f32> = (0..16).map(|i| 0.5 - (i as f32) * 0.13).collect();
    let lsq = Lsq {
        scale: ScaleDtype::F32,
        bits,
        sets: ScaleSets::Channel,
        grad_scale: true,
    };
    let wt = Tensor::<A, 2>::from_data(TensorData::new(w.clone(), [2, 8]), &dev).require_grad();
    let st = Tensor::<A, 2>::from_data(TensorData::new(s.to_vec(), [2, 1]), &dev).require_grad();
    let params = BTreeMap::from([("l.weight_scale".to_string(), st.clone())]);
    let buffers = BTreeMap::new();
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let at = StepInfo {
        step: 0,
        train: true,
    };
    let y = lsq.apply(wt.clone(), &slots, at);
    let rt = Tensor::<A, 2>::from_data(TensorData::new(r.clone(), [2, 8]), &dev);
    let g = (y.clone() * rt).sum().backward();
    let (got_y, got_gw, got_gs) = (
        vals(y),
        vals(wt.grad(&g).map(Tensor::from_inner).unwrap()),
        vals(st.grad(&g).map(Tensor::from_inner).unwrap()),
    );
    let gscale = 1.0 / (8.0 * qp).sqrt(); // N = 8 weights per step
    for row in 0..2 {
        let sv = s[row] as f64;
        let mut gs = 0.0;
        for j in 0..8 {
            let i = row * 8 + j;
            let v = w[i] as f64 / sv;
            let inside = v > -qn && v < qp;
            let q = v.clamp(-qn, qp).round_ties_even();
            assert!(
                (got_y[i] as f64 - q * sv).abs() < 1e-6,
                "value {i}: {} vs {}",
                got_y[i],
                q * sv
            );
            let want_gw = if inside { r[i] as f64 } else { 0.0 };
            assert!((got_gw[i] as f64 - want_gw).abs() < 1e-6, "dL/dw {i}");
            let ds = if inside {
                v.round_ties_even() - v
            } else if v <= -qn {
                -qn
            } else {
                qp
            };
            gs += r[i] as f64 * ds;
        }
        let want = gs * gscale;
        assert!(
            (got_gs[row] as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
            "dL/ds row {row}: {} vs {want}",
            got_gs[row]
        );
    }
    // Init: s = 2·mean|w| / √Q_P per row.
    let wf = Tensor::<Flex, 2>::from_data(TensorData::new(w.clone(), [2, 8]), &dev);
    let init = lsq.init(&wf);
    let iv: Vec<f32> = init[0].clone().into_data().into_vec().unwrap();
    for row in 0..2 {
        let mean = w[row * 8..row * 8 + 8]
            .iter()
            .map(|v| v.abs() as f64)
            .sum::<f64>()
            / 8.0;
        assert!((iv[row] as f64 - 2.0 * mean / qp.sqrt()).abs() < 1e-6);
    }
}

#[test]
fn lsq_per_group_matches_the_formulas() {
    let dev = Default::default();
    let (qn, qp) = (4.0f64, 3.0f64); // 3 bits
    let w = vec![
        0.05f32, -0.12, 0.33, -0.5, 0.9, -1.3, 0.0, 0.26, //
        0.01, 0.02, -0.03, 0.2, -0.2, 0.07, -0.5, 0.6,
    ];
    // Groups of 4 inputs: steps stored [out, in/4] = [2, 2], set k covers w[4k..4k + 4].
    let s = [0.25f32, 0.3, 0.1, 0.15];
    let r: Vec<f32> = (0..16).map(|i| 0.5 - (i as f32) * 0.13).collect();
    let lsq = Lsq {
        scale: ScaleDtype::F32,
        bits: 3,
        sets: ScaleSets::Group(4),
        grad_scale: true,
    };
    assert_eq!(lsq.slots([2, 8]).unwrap()[0].shape, [2, 2]);
    assert!(lsq.slots([2, 6]).is_err(), "a group must divide the row");
    let wt = Tensor::<A, 2>::from_data(TensorData::new(w.clone(), [2, 8]), &dev).require_grad();
    let st = Tensor::<A, 2>::from_data(TensorData::new(s.to_vec(), [2, 2]), &dev).require_grad();
    let params = BTreeMap::from([("l.weight_scale".to_string(), st.clone())]);
    let buffers = BTreeMap::new();
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let at = StepInfo {
        step: 0,
        train: true,
    };
    let y = lsq.apply(wt.clone(), &slots, at);
    let rt = Tensor::<A, 2>::from_data(TensorData::new(r.clone(), [2, 8]), &dev);
    let g = (y.clone() * rt).sum().backward();
    let (got_y, got_gs) = (vals(y), vals(st.grad(&g).map(Tensor::from_inner).unwrap()));
    let gscale = 1.0 / (4.0 * qp).sqrt(); // N = 4 weights per step
    for (k, sk) in s.iter().enumerate() {
        let sv = *sk as f64;
        let mut gs = 0.0;
        for i in 4 * k..4 * k + 4 {
            let v = w[i] as f64 / sv;
            let q = v.clamp(-qn, qp).round_ties_even();
            assert!((got_y[i] as f64 - q * sv).abs() < 1e-6, "value {i}");
            gs += r[i] as f64
                * if v > -qn && v < qp {
                    v.round_ties_even() - v
                } else if v <= -qn {
                    -qn
                } else {
                    qp
                };
        }
        let want = gs * gscale;
        assert!(
            (got_gs[k] as f64 - want).abs() < 1e-5,
            "dL/ds set {k}: {} vs {want}",
            got_gs[k]
        );
    }
}
