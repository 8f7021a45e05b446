//! `Llama::export_weights`: a projection trained on a GGUF grid exports, for that grid's type,
//! the weight its grid quantizes (master weight, or masked by an N:M technique before it), so the
//! exporter's quantizer writes the trained codes and scales; for any other target, the effective
//! (fake-quantized) weight.

mod common;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::techniques::{AnyTechnique, GgmlGrid, GgmlType, NmSte, ServingGrid};
use nibble_model::{Llama, PrecisionConfig};
use nibble_modelfiles::quants::{dequantize, quantize};

type B = Flex;

fn vals(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn grid_layers_export_what_their_grid_quantizes() {
    let arch = common::tiny_arch();
    let policy = PrecisionConfig::default().policy().unwrap();
    let q4 = GgmlType::Q4_0;
    let grid = AnyTechnique::GgmlGrid(GgmlGrid { ty: q4 });
    let model = Llama::with_techniques(arch, policy, |m| {
        if m.contains(".mlp.") {
            let nm = AnyTechnique::NmSte(NmSte {
                n: 2,
                m: 4,
                dim: Default::default(),
                interval: 1,
                phases: Default::default(),
            });
            vec![nm, grid.clone()]
        } else if m.contains(".self_attn.") {
            vec![grid.clone()]
        } else {
            Vec::new()
        }
    })
    .unwrap();
    let dev = Default::default();
    let mut p = model.init_params::<B>(3, &dev);
    // A block too small for an f16 scale (d = f16(1e-9 / −8) = −0): its grid values are −0,
    // which Q4_0 re-quantizes with d = −0 / −8 = +0 to +0. The exporter's bytes tell the master
    // weight (d = −0) from the effective one (d = +0).
    let q = "model.layers.0.self_attn.q_proj.weight";
    let mut w = vals(p.get(q));
    let cols = p.get(q).dims();
    w[..32].iter_mut().for_each(|x| *x = 1e-9);
    p.tensors.insert(
        q.into(),
        Tensor::from_data(TensorData::new(w.clone(), cols), &dev),
    );

    let exported = model
        .export_weights(&p, 0, Some(ServingGrid::Ggml(q4)))
        .unwrap();
    let effective = model.effective_weights(&p, 0).unwrap();
    let other = model
        .export_weights(&p, 0, Some(ServingGrid::Ggml(GgmlType::Q8_0)))
        .unwrap();
    let mut n = 0;
    for (name, t) in &exported {
        let Some(module) = name.strip_suffix(".weight") else {
            continue;
        };
        let e = vals(t.clone());
        let eff = vals(effective[name].clone());
        assert_eq!(bits(&vals(other[name].clone())), bits(&eff), "{name}");
        if module.contains(".self_attn.") {
            assert_eq!(bits(&e), bits(&vals(p.get(name))), "{name}: master weight");
        } else if module.contains(".mlp.") {
            let mask = vals(p.buffers[&format!("{module}.weight_mask")].clone());
            let masked: Vec<f32> = vals(p.get(name))
                .iter()
                .zip(&mask)
                .map(|(w, m)| w * m)
                .collect();
            assert_eq!(e, masked, "{name}: the masked weight the grid sees");
        } else {
            assert_eq!(bits(&e), bits(&eff), "{name}");
            continue;
        }
        // What the file holds decodes to the effective weight exactly.
        let dq = dequantize(q4, &quantize(q4, &e).unwrap()).unwrap();
        assert_eq!(bits(&dq), bits(&eff), "{name}");
        n += 1;
    }
    assert_eq!(n, 2 * 7);
    let from_master = quantize(q4, &vals(exported[q].clone())).unwrap();
    let from_effective = quantize(q4, &vals(effective[q].clone())).unwrap();
    assert_eq!(&from_master[..2], &[0x00, 0x80], "d = −0 as trained");
    assert_ne!(
        from_master, from_effective,
        "re-quantizing the grid loses d = −0"
    );
}

#[test]
fn serving_grids_match_only_their_own_export() {
    use nibble_model::techniques::{CtGrid, CtScheme};
    let arch = common::tiny_arch();
    let policy = PrecisionConfig::default().policy().unwrap();
    let w4 = CtScheme::W4a16 {
        group: 32,
        symmetric: true,
    };
    let model = Llama::with_techniques(arch, policy, |m| {
        if m.contains(".mlp.") {
            vec![AnyTechnique::GgmlGrid(GgmlGrid {
                ty: GgmlType::MXFP4,
            })]
        } else if m.contains(".self_attn.") {
            vec![AnyTechnique::CtGrid(CtGrid { scheme: w4 })]
        } else {
            Vec::new()
        }
    })
    .unwrap();
    let p = model.init_params::<B>(5, &Default::default());
    let effective = model.effective_weights(&p, 0).unwrap();
    let targets = [
        ServingGrid::Ct(CtScheme::Mxfp4),
        ServingGrid::Ggml(GgmlType::MXFP4),
        ServingGrid::Ct(w4),
        ServingGrid::Ct(CtScheme::W4a16 {
            group: 64,
            symmetric: true,
        }),
        ServingGrid::Ct(CtScheme::Nvfp4),
    ];
    for target in targets {
        let exported = model.export_weights(&p, 0, Some(target)).unwrap();
        for (name, t) in &exported {
            let kind = if name.contains(".mlp.") {
                "mlp"
            } else if name.contains(".self_attn.") {
                "attn"
            } else {
                continue;
            };
            // MXFP4 grids export their master weight to GGUF and compressed-tensors MXFP4 (the
            // same quantizer); the W4A16 g32 grid only to W4A16 g32.
            let exact = match (kind, target) {
                ("mlp", ServingGrid::Ct(CtScheme::Mxfp4) | ServingGrid::Ggml(_)) => true,
                ("attn", ServingGrid::Ct(s)) => s == w4,
                _ => false,
            };
            let want = if exact {
                vals(p.get(name))
            } else {
                vals(effective[name].clone())
            };
            assert_eq!(bits(&vals(t.clone())), bits(&want), "{name} to {target:?}");
            assert_ne!(vals(p.get(name)), vals(effective[name].clone()), "{name}");
        }
    }
}
