//! GgmlGrid: the forward is nibble-modelfiles' `dequantize(quantize(w))` bit for bit (signed
//! zeros included) and the gradient w.r.t. w is the upstream gradient (straight through).

use std::collections::BTreeMap;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_modelfiles::quants::{self, GgmlType};
use nibble_techniques::{
    AnyTechnique, GgmlGrid, GgmlGridType, LayerSlots, QatConfig, QatMethod, StepInfo, Technique,
};

type A = Autodiff<Flex>;

fn vals<const D: usize>(t: Tensor<A, D>) -> Vec<f32> {
    t.inner().into_data().convert::<f32>().into_vec().unwrap()
}

/// Deterministic weights with blocks of mixed signs and magnitudes, one all-zero block and one
/// block whose largest magnitude is negative (Q4_0's d > 0).
fn weights(rows: usize, cols: usize) -> Vec<f32> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|i| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let u = ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5;
            u * (1.0 + (i % 7) as f32) * 0.05
        })
        .collect();
    v[..32].iter_mut().for_each(|x| *x = 0.0);
    v[32 + 5] = -1.0;
    v
}

#[test]
fn forward_is_the_ggml_round_trip_and_the_gradient_passes_through() {
    let dev = Default::default();
    for ty in [
        GgmlType::Q4_0,
        GgmlType::Q8_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ] {
        let (rows, cols) = (3, 2 * ty.block_size());
        let w = weights(rows, cols);
        let expect = quants::dequantize(ty, &quants::quantize(ty, &w).unwrap()).unwrap();
        // The grid must actually move the weights, or the test would prove nothing.
        assert!(expect.iter().zip(&w).any(|(a, b)| a != b), "{ty}");
        let grid = GgmlGrid { ty };
        assert!(grid.slots([rows, cols]).unwrap().is_empty());
        let wt = Tensor::<A, 2>::from_data(TensorData::new(w.clone(), [rows, cols]), &dev)
            .require_grad();
        let (params, buffers) = (BTreeMap::new(), BTreeMap::new());
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
        let y = grid.apply(wt.clone(), &slots, at);
        let got = vals(y.clone());
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&expect), "{ty}: forward");
        // Upstream gradient r: ∂(Σ r·ŵ)/∂w must be r exactly.
        let r: Vec<f32> = (0..rows * cols).map(|i| 0.5 - i as f32 * 0.01).collect();
        let rt = Tensor::<A, 2>::from_data(TensorData::new(r.clone(), [rows, cols]), &dev);
        let g = (y * rt).sum().backward();
        let gw = vals(wt.grad(&g).map(Tensor::from_inner).unwrap());
        assert_eq!(bits(&gw), bits(&r), "{ty}: gradient");
    }
    // Q4_0 of the test weights has −0 values (d = max/−8 < 0, or the all-zero block's d = −0,
    // times code 8 − 8): the bitwise check above covers signed zeros only if some appear.
    let w = weights(3, 64);
    let q = quants::dequantize(
        GgmlType::Q4_0,
        &quants::quantize(GgmlType::Q4_0, &w).unwrap(),
    )
    .unwrap();
    assert!(q.iter().any(|x| x.to_bits() == (-0.0f32).to_bits()));
}

#[test]
fn input_dimension_must_be_a_block_multiple() {
    let e = GgmlGrid { ty: GgmlType::Q4_0 }.slots([8, 48]).unwrap_err();
    assert!(e.contains("block size 32") && e.contains("48"), "{e}");
    let e = GgmlGrid {
        ty: GgmlType::TQ2_0,
    }
    .slots([8, 128])
    .unwrap_err();
    assert!(e.contains("block size 256"), "{e}");
    assert!(
        GgmlGrid {
            ty: GgmlType::TQ2_0
        }
        .slots([8, 512])
        .is_ok()
    );
    assert!(GgmlGrid { ty: GgmlType::Q4_K }.slots([8, 256]).is_err());
}

#[test]
fn qat_section_builds_and_validates_the_grid() {
    let mut q = QatConfig {
        method: QatMethod::Ggml,
        ..QatConfig::default()
    };
    assert_eq!(q.validate().unwrap_err().key, "ggml_type");
    q.ggml_type = Some(GgmlGridType::Tq2_0);
    q.validate().unwrap();
    assert_eq!(
        q.technique_for("model.layers.0.mlp.up_proj"),
        Some(AnyTechnique::GgmlGrid(GgmlGrid {
            ty: GgmlType::TQ2_0
        }))
    );
    assert_eq!(q.technique_for("lm_head"), None);
    q.method = QatMethod::Lsq;
    assert_eq!(q.validate().unwrap_err().key, "ggml_type");
    let q: QatConfig = toml::from_str("method = \"ggml\"\nggml_type = \"q4_0\"").unwrap();
    assert_eq!(q.ggml_type, Some(GgmlGridType::Q4_0));
    assert!(toml::from_str::<QatConfig>("method = \"ggml\"\nggml_type = \"q4_k\"").is_err());
}
