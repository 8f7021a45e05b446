//! The technique seam in the model: the N:M straight-through mask is exactly "the dense model on
//! the masked weights" in the forward, with the dense gradient in the backward.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::techniques::{AnyTechnique, NmSte};
use nibble_model::{ForwardCtx, Llama, Params, PrecisionConfig, cross_entropy};

type B = Flex;
type A = Autodiff<Flex>;

fn vals<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

#[test]
fn nm_ste_forward_is_the_masked_model_and_its_gradient_is_dense() {
    let arch = common::tiny_arch();
    let policy = PrecisionConfig::default().policy().unwrap();
    let mlp = |m: &str| m.contains(".mlp.");
    let sparse = Llama::with_techniques(arch.clone(), policy.clone(), |m| {
        if mlp(m) {
            vec![AnyTechnique::NmSte(NmSte {
                n: 2,
                m: 4,
                dim: Default::default(),
                interval: 1,
                phases: Default::default(),
            })]
        } else {
            Vec::new()
        }
    })
    .unwrap();
    let dense = Llama::new(arch.clone(), policy);
    let dev = Default::default();
    let p = sparse.init_params::<B>(5, &dev);
    // The dense twin holds W ⊙ mask where the sparse model masks.
    let mut q = Params::<B> {
        tensors: p.tensors.clone(),
        buffers: Default::default(),
    };
    let mut masks = 0;
    for (name, mask) in &p.buffers {
        let w = name.replace("weight_mask", "weight");
        let mv = vals(mask.clone());
        assert_eq!(mv.iter().filter(|&&v| v == 1.0).count() * 2, mv.len());
        q.tensors
            .insert(w.clone(), p.tensors[&w].clone() * mask.clone());
        masks += 1;
    }
    assert_eq!(masks, 2 * 3, "gate, up, down in both blocks");
    let toks: Vec<i32> = (0..2 * 16).map(|i| (i * 31 + 7) % 256).collect();
    let ids = || Tensor::<A, 2, Int>::from_data(TensorData::new(toks.clone(), [2, 16]), &dev);
    let tg: Vec<i32> = toks.iter().map(|x| (x + 1) % 256).collect();
    let tg = Tensor::<A, 2, Int>::from_data(TensorData::new(tg, [2, 16]), &dev);
    let lift = |p: &Params<B>| Params::<A> {
        tensors: p
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone()).require_grad()))
            .collect(),
        buffers: p
            .buffers
            .iter()
            .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone())))
            .collect(),
    };
    let (ps, pd) = (lift(&p), lift(&q));
    let rs = sparse.rope::<A>(&dev);
    let ls = sparse.forward(&ps, &rs, ids(), &mut ForwardCtx::new(0, 0, true));
    let ld = dense.forward(&pd, &rs, ids(), &mut ForwardCtx::new(0, 0, true));
    assert_eq!(
        vals(ls.clone()),
        vals(ld.clone()),
        "forward = dense model on W ⊙ mask"
    );
    let (gs, gd) = (
        cross_entropy(ls, tg.clone()).backward(),
        cross_entropy(ld, tg).backward(),
    );
    for (name, t) in &ps.tensors {
        let a = vals(t.grad(&gs).unwrap());
        let b = vals(pd.tensors[name].grad(&gd).unwrap());
        assert_eq!(a, b, "{name}: STE passes dL/d(W ⊙ mask) to W");
        if name.contains(".mlp.") {
            let mask = vals(p.buffers[&name.replace("weight", "weight_mask")].clone());
            let pruned_grads = a
                .iter()
                .zip(&mask)
                .filter(|&(g, m)| *m == 0.0 && *g != 0.0)
                .count();
            assert!(
                pruned_grads > 0,
                "{name}: pruned weights get gradients (dense STE)"
            );
        }
    }
}

/// A mask then a ternary grid in one layer: the chain hands the quantizer the kept entries, so
/// the effective weight and the exported scales are the grid's over kept weights only
/// (`Absmean::grid` with the mask), not over the zero-filled weight.
#[test]
fn a_quantizer_after_a_mask_sees_the_kept_entries() {
    use nibble_model::techniques::{Absmean, ScaleDtype, ScaleSets, StepInfo};
    let arch = common::tiny_arch();
    let policy = PrecisionConfig::default().policy().unwrap();
    let grid = Absmean {
        sets: ScaleSets::Channel,
        scale: ScaleDtype::F32,
    };
    let model = Llama::with_techniques(arch, policy, |m| {
        if m.contains(".mlp.") {
            vec![
                AnyTechnique::NmSte(NmSte::new(2, 4)),
                AnyTechnique::Absmean(grid.clone()),
            ]
        } else {
            Vec::new()
        }
    })
    .unwrap();
    let dev = Default::default();
    let p = model.init_params::<B>(5, &dev);
    let name = "model.layers.1.mlp.up_proj";
    let layer = model.linear(name).unwrap();
    let at = StepInfo {
        step: 0,
        train: false,
    };
    let mask = p.buffers[&format!("{name}.weight_mask")].clone();
    let masked = p.tensors[&format!("{name}.weight")].clone() * mask.clone();
    let (want, _) = grid.grid(&masked, Some(&mask));
    let (unkept, _) = grid.grid(&masked, None);
    let got = vals(layer.effective_weight(&p, at));
    assert_eq!(got, vals(want.clone()), "the grid over kept entries");
    assert_ne!(got, vals(unkept), "differs from the zero-filled statistics");
    // The exported scale per row: the mean |w| over the row's kept weights.
    let scales = vals(layer.export_grid(&p, at).unwrap().scales);
    let (w, m) = (vals(masked), vals(mask));
    let cols = w.len() / scales.len();
    for (r, s) in scales.iter().enumerate() {
        let row = r * cols..(r + 1) * cols;
        let kept: Vec<f64> = row
            .filter(|&i| m[i] == 1.0)
            .map(|i| f64::from(w[i].abs()))
            .collect();
        let mean = (kept.iter().sum::<f64>() / kept.len() as f64) as f32;
        assert_eq!(*s, mean, "row {r}");
    }
}
