//! SR-STE and MDGF against their definitions (spec §5.2–5.3): SR-STE's forward is `W⊙m` and
//! its gradient `g + λ_W·(1 − m)⊙W`; MDGF's forward is `W⊙(m + (1 − m)·β(t))` with the dense
//! gradient `g`, β(t) = exp(−α·t) or max(1 − α·t, 0); the recipe keys and their refusals.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{A, AT, tensor, vals};
use nibble_techniques::{
    DecayShape, LayerSlots, Mdgf, NmSte, SparsityConfig, SrSte, StepInfo, Technique,
};

const W: [f32; 16] = [
    0.9, -0.1, 0.3, -0.7, 0.05, 0.6, -0.2, 0.4, //
    -0.8, 0.2, 0.1, 0.5, -0.3, -0.6, 0.7, 0.15,
];

fn mask_of(nm: &NmSte) -> Tensor<A, 2> {
    nm.init(&tensor(&W, [2, 8]))[0].clone()
}

/// Forward values and the gradient w.r.t. W of `Σ apply(W)⊙G (+ aux)`.
fn run<T: Technique>(t: &T, mask: Tensor<A, 2>, at: StepInfo) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let params = BTreeMap::new();
    let buffers = BTreeMap::from([("l.weight_mask".to_string(), mask.clone())]);
    let slots = LayerSlots {
        module: "l",
        params: &params,
        buffers: &buffers,
        keep: None,
    };
    let w = tensor(&W, [2, 8]).require_grad();
    let g: Vec<f32> = (0..16).map(|i| (i as f32 * 0.37).cos()).collect();
    let out = t.apply(w.clone(), &slots, at);
    let fwd = vals(out.clone());
    let mut loss = (out * tensor(&g, [2, 8])).sum();
    if let Some(aux) = t.aux_loss(&w, &slots, at) {
        loss = loss + aux;
    }
    let grads = loss.backward();
    let gw: Vec<f32> = w
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .into_vec()
        .unwrap();
    (fwd, gw, g)
}

#[test]
fn sr_ste_masks_forward_and_decays_pruned_weights_in_the_gradient() {
    let nm = NmSte {
        n: 2,
        m: 4,
        dim: Default::default(),
        interval: 1,
        phases: Default::default(),
    };
    let mask = mask_of(&nm);
    let m = vals(mask.clone());
    // 2:4 by magnitude per group of 4: kept 0.9, −0.7 | 0.6, 0.4 | −0.8, 0.5 | −0.6, 0.7.
    assert_eq!(
        m,
        [
            1., 0., 0., 1., 0., 1., 0., 1., 1., 0., 0., 1., 0., 1., 1., 0.
        ]
    );
    let lambda = 0.05;
    let t = SrSte { mask: nm, lambda };
    let (fwd, gw, g) = run(&t, mask, AT);
    for i in 0..16 {
        // Pruned entries are +0 (the straight-through sum), equal to W⊙m's ±0.
        assert_eq!(fwd[i], W[i] * m[i], "forward {i}");
        let want = f64::from(g[i]) + lambda * f64::from(1.0 - m[i]) * f64::from(W[i]);
        assert!(
            (f64::from(gw[i]) - want).abs() < 1e-6,
            "grad {i}: {} vs {want}",
            gw[i]
        );
    }
}

#[test]
fn mdgf_blends_pruned_weights_with_beta_and_passes_the_dense_gradient() {
    let nm = NmSte {
        n: 2,
        m: 4,
        dim: Default::default(),
        interval: 1,
        phases: Default::default(),
    };
    let mask = mask_of(&nm);
    let m = vals(mask.clone());
    for (shape, coef, step, beta) in [
        (DecayShape::Exp, 0.01, 0, 1.0),
        (DecayShape::Exp, 0.01, 100, (-1.0f64).exp()),
        (DecayShape::Exp, 2e-4, 2500, (-0.5f64).exp()),
        (DecayShape::Linear, 0.01, 30, 0.7),
        (DecayShape::Linear, 0.01, 250, 0.0),
    ] {
        let t = Mdgf {
            mask: nm.clone(),
            shape,
            coef,
        };
        assert!((t.beta(step) - beta).abs() < 1e-12, "{shape:?} β({step})");
        let at = StepInfo { step, train: true };
        let (fwd, gw, g) = run(&t, mask.clone(), at);
        let b = beta as f32;
        for i in 0..16 {
            let want = if m[i] == 1.0 { W[i] } else { W[i] * b };
            assert_eq!(
                fwd[i].to_bits(),
                want.to_bits(),
                "{shape:?} t={step} forward {i}"
            );
            assert_eq!(gw[i], g[i], "dense gradient {i}");
        }
    }
}

/// Rules: the first matching rule gives its modules their pattern and dimension, and selects
/// them even outside `modules`; other modules take the section's.
#[test]
fn rules_give_modules_their_own_pattern() {
    let cfg: SparsityConfig = toml::from_str(
        "method = \"ste\"\npattern = \"1:8\"\nmodules = [\"model.layers.*.mlp.*\"]\n\
         [[rules]]\nmodules = [\"model.layers.*.self_attn.*\"]\npattern = \"2:4\"\n\
         [[rules]]\nmodules = [\"model.layers.*.mlp.down_proj\"]\ndimension = \"output\"",
    )
    .unwrap();
    cfg.validate().unwrap();
    let nm = |module: &str| cfg.technique_for(module).map(|t| t.nm().unwrap().clone());
    let attn = nm("model.layers.0.self_attn.q_proj").unwrap();
    assert_eq!(
        (attn.n, attn.m, attn.dim),
        (2, 4, nibble_techniques::NmDim::Input)
    );
    let up = nm("model.layers.0.mlp.up_proj").unwrap();
    assert_eq!((up.n, up.m), (1, 8));
    let down = nm("model.layers.1.mlp.down_proj").unwrap();
    assert_eq!(
        (down.n, down.m, down.dim),
        (1, 8, nibble_techniques::NmDim::Output)
    );
    assert!(nm("lm_head").is_none());
}

#[test]
fn sparsity_keys_build_the_methods_and_refuse_misplaced_ones() {
    let parse = |t: &str| toml::from_str::<SparsityConfig>(t).unwrap();
    let sr = parse("method = \"sr-ste\"\npattern = \"1:8\"\nlambda_w = 1e-3");
    sr.validate().unwrap();
    let mdgf = parse("method = \"mdgf\"\ndecay = \"exp\"\nbeta_zero_at = 1000");
    mdgf.validate().unwrap();
    assert!((mdgf.mdgf_coef() - 5e-3).abs() < 1e-15);
    let lin = parse("method = \"mdgf\"\ndecay = \"linear\"\nbeta_zero_at = 400");
    assert!((lin.mdgf_coef() - 2.5e-3).abs() < 1e-15);
    assert_eq!(parse("method = \"mdgf\"").mdgf_coef(), 2e-4);
    for (text, key) in [
        ("method = \"ste\"\nlambda_w = 1e-3", "lambda_w"),
        ("method = \"sr-ste\"\ndecay = \"exp\"", "decay"),
        (
            "method = \"mdgf\"\ndecay_coef = 1e-3\nbeta_zero_at = 10",
            "beta_zero_at",
        ),
        ("method = \"mdgf\"\ndecay_coef = -1.0", "decay_coef"),
        ("method = \"mdgf\"\nbeta_zero_at = 0", "beta_zero_at"),
        ("method = \"ste\"\npattern = \"4:4\"", "pattern"),
        ("method = \"ste\"\npattern = \"3:2\"", "pattern"),
        ("method = \"ste\"\npattern = \"0:4\"", "pattern"),
        ("method = \"ste\"\nsdgf_type = \"stepwise\"", "sdgf_type"),
        ("method = \"sdgf\"\nsdgf_type = \"custom\"", "sdgf_patterns"),
        (
            "method = \"sdgf\"\npattern = \"1:4\"\nsdgf_type = \"custom\"\nsdgf_patterns = [\"3:4\", \"2:4\"]",
            "sdgf_patterns[1]",
        ),
        (
            "method = \"sdgf\"\nsdgf_patterns = [\"3:4\"]",
            "sdgf_patterns",
        ),
        (
            "method = \"ste\"\n[[rules]]\nmodules = []\npattern = \"1:8\"",
            "rules[0].modules",
        ),
        (
            "method = \"ste\"\n[[rules]]\nmodules = [\"a\"]\n[[rules]]\nmodules = [\"b\"]\npattern = \"8:8\"",
            "rules[1].pattern",
        ),
    ] {
        assert_eq!(parse(text).validate().unwrap_err().key, key, "{text}");
    }
}

/// The phases: dense for round(dense_fraction·steps) updates, hard for the last
/// round(finetune_fraction·steps); MDGF's t counts from the sparse phase's first update (the
/// reference's off-by-`dense_steps` pitfall), β = 1 before it and 0 in the hard phase.
#[test]
fn phases_count_from_the_sparse_start() {
    let cfg = toml::from_str::<SparsityConfig>(
        "method = \"mdgf\"\ndecay_coef = 0.1\ndense_fraction = 0.2\nfinetune_fraction = 0.3",
    )
    .unwrap();
    cfg.validate().unwrap();
    let phases = cfg.phases(20);
    assert_eq!((phases.dense_until, phases.hard_from), (4, 14));
    assert_eq!(cfg.phases(10).hard_from, 7);
    let none = toml::from_str::<SparsityConfig>("method = \"mdgf\"").unwrap();
    let open_ended = nibble_techniques::SparsePhases {
        end: 20,
        ..Default::default()
    };
    assert_eq!(none.phases(20), open_ended);
    let mut nm = NmSte {
        n: 2,
        m: 4,
        dim: Default::default(),
        interval: 1,
        phases: Default::default(),
    };
    nm.phases = phases;
    let t = Mdgf {
        mask: nm,
        shape: DecayShape::Exp,
        coef: 0.1,
    };
    for (step, want) in [
        (0, 1.0),
        (3, 1.0),
        (4, 1.0),
        (5, (-0.1f64).exp()),
        (13, (-0.9f64).exp()),
        (14, 0.0),
        (19, 0.0),
    ] {
        assert_eq!(t.beta_at(step), want, "β at update {step}");
    }
    let bad = toml::from_str::<SparsityConfig>(
        "method = \"ste\"\ndense_fraction = 0.6\nfinetune_fraction = 0.4",
    )
    .unwrap();
    assert_eq!(bad.validate().unwrap_err().key, "finetune_fraction");
}
