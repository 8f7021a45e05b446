//! EfficientQAT's stages through the trainer (`[block_ap]`, `[e2e_qp]`): Block-AP lowers each
//! block's reconstruction MSE and leaves every frozen block exactly on its grid; the conversion
//! writes integer codes that compute exactly what the fake-quantized model computed; E2E-QP
//! changes only the steps; a run interrupted mid-block, at the conversion and inside E2E-QP
//! resumes bit for bit; bad recipes are refused at their file, line and key.

mod common;

use std::collections::BTreeMap;

use burn::backend::Flex;
use burn::prelude::*;
use common::{assert_refused_at, ckpt_bytes, ckpt_tensors, metric, recipe_with, run, tmp_dir};
use nibble_model::techniques::{QatConfig, QatMethod, SparsityConfig, techniques_for};
use nibble_model::{ForwardCtx, Llama, ModelConfig, PrecisionConfig};

/// 2 blocks × 8 iterations of Block-AP (steps 0..16), then 6 E2E-QP steps (16..22).
const STAGES: &str = r#"
[qat]
method = "efficientqat"
bits = 2
granularity = "group"
group_size = 32

[block_ap]
enabled = true
samples = 8
val_samples = 4
batch = 2
epochs = 2
lr_quant = 2e-3
lr_weight = 5e-4

[e2e_qp]
enabled = true
"#;

/// `w` is exactly on the affine grid of its stored steps and zero points: quantizing it again
/// (the reference's formula, here in f32 as the model computes it) gives it back bit for bit.
fn on_grid(w: &[f32], s: &[f32], z: &[f32], group: usize, qmax: f32) -> bool {
    w.iter().enumerate().all(|(i, &x)| {
        let (s, z) = (
            s[i / group].clamp(1e-4, 1e4),
            z[i / group].round().clamp(0.0, qmax),
        );
        let q = ((x / s).round_ties_even() + z).clamp(0.0, qmax);
        ((q - z) * s).to_bits() == x.to_bits()
    })
}

#[test]
fn block_ap_then_e2e_qp() {
    let tmp = tmp_dir("effqat");
    let text = recipe_with(&tmp, "stages", 6, STAGES).replace("keep_last = 2", "keep_last = 20");
    let s = run(&text, false, None).unwrap();
    assert_eq!(s.steps, 22);
    // Each block's validation MSE falls from its min–max init to the end of its iterations.
    let before = metric(&s.run_dir, "block_ap/val_mse_before");
    let after = metric(&s.run_dir, "block_ap/val_mse_after");
    assert_eq!(before.iter().map(|p| p.0).collect::<Vec<_>>(), [0, 8]);
    assert_eq!(after.iter().map(|p| p.0).collect::<Vec<_>>(), [8, 16]);
    for (b, a) in before.iter().zip(&after) {
        assert!(a.1 < b.1, "block MSE {} → {}", b.1, a.1);
    }
    let layers = ["self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj"];
    // Step 12 is inside block 1: block 0 is frozen on its grid, block 1 still trains off it.
    let t6 = ckpt_tensors(&s.run_dir, 12);
    for (block, frozen) in [(0, true), (1, false)] {
        let all = layers.iter().all(|l| {
            let n = format!("model.layers.{block}.{l}");
            let w = &t6[&format!("{n}.weight")].1;
            on_grid(
                w,
                &t6[&format!("{n}.weight_scale")].1,
                &t6[&format!("{n}.weight_zero_point")].1,
                32,
                3.0,
            )
        });
        assert_eq!(all, frozen, "block {block}");
    }
    // After the conversion the weights are integer codes 0..=3 with integer zero points; E2E-QP
    // (steps 18 → 21) changes the steps and nothing else.
    let (t9, t14) = (ckpt_tensors(&s.run_dir, 18), ckpt_tensors(&s.run_dir, 21));
    for (name, (_, v)) in &t9 {
        let later = &t14[name].1;
        if name.ends_with("weight_scale") {
            assert!(v != later, "{name}: the steps train");
        } else {
            assert!(v == later, "{name}: only the steps train");
        }
        if name.starts_with("model.layers.") && name.ends_with("_proj.weight")
            || name.ends_with("zero_point")
        {
            assert!(
                v.iter()
                    .all(|c| c.fract() == 0.0 && (0.0..=3.0).contains(c)),
                "{name}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn stages_resume_bit_identically() {
    let tmp = tmp_dir("effqat-resume");
    let text = recipe_with(&tmp, "straight", 6, STAGES);
    let s = run(&text, false, None).unwrap();
    let cut = recipe_with(&tmp, "cut", 6, STAGES);
    // Stops after steps 3 (mid block 0), 13 (mid block 1, after block 0 froze: resumed from
    // 12) and 19 (E2E-QP, resumed from 18); each resume starts from the newest checkpoint.
    run(&cut, false, Some(3)).unwrap();
    run(&cut, true, Some(13)).unwrap();
    run(&cut, true, Some(19)).unwrap();
    let r = run(&cut, true, None).unwrap();
    assert_eq!(ckpt_bytes(&s.run_dir, 22), ckpt_bytes(&r.run_dir, 22));
    assert_eq!(s.final_eval.loss.to_bits(), r.final_eval.loss.to_bits());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Round to nearest (E2E-QP enabled, no steps): the run converts, evaluates (logged like any
/// evaluation) and saves its codes at step 0.
#[test]
fn a_run_without_steps_converts_evaluates_and_saves() {
    let tmp = tmp_dir("effqat-rtn");
    let stages = STAGES.replace("[block_ap]\nenabled = true", "[block_ap]\nenabled = false");
    let text = recipe_with(&tmp, "rtn", 0, &stages).replace("warmup_steps = 2\n", "");
    let s = run(&text, false, None).unwrap();
    assert_eq!(s.steps, 0);
    let logged = metric(&s.run_dir, "val/loss");
    assert_eq!(logged, [(0, s.final_eval.loss)]);
    let t0 = ckpt_tensors(&s.run_dir, 0);
    let w = &t0["model.layers.1.mlp.down_proj.weight"].1;
    assert!(
        w.iter()
            .all(|c| c.fract() == 0.0 && (0.0..=3.0).contains(c))
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A converted model (codes, steps, zero points) computes the fake-quantized model's logits bit
/// for bit, from trained-looking (perturbed) steps and zero points.
#[test]
fn converted_checkpoint_computes_the_fake_quantized_forward() {
    let qat = QatConfig {
        method: QatMethod::Efficientqat,
        bits: 3,
        granularity: nibble_model::techniques::Granularity::Group,
        group_size: 32,
        ..QatConfig::default()
    };
    let sp = SparsityConfig::default();
    let mcfg = ModelConfig {
        n_layers: Some(2),
        seq_len: Some(16),
        vocab_size: Some(64),
        ..ModelConfig::default()
    };
    let arch = mcfg.resolve(None).unwrap();
    let policy = PrecisionConfig::default().policy().unwrap();
    let fake = Llama::with_techniques(arch.clone(), policy.clone(), |m| {
        techniques_for(&sp, &qat, m)
    })
    .unwrap();
    let codes = Llama::with_techniques(arch, policy, |m| {
        techniques_for(&sp, &qat, m)
            .into_iter()
            .map(|t| t.into_codes())
            .collect()
    })
    .unwrap();
    let dev = Default::default();
    let mut p = fake.init_params::<Flex>(5, &dev);
    // Steps and zero points as training leaves them: off their init, z not integer.
    for (name, t) in p.tensors.iter_mut() {
        if name.ends_with("weight_scale") {
            *t = t.clone() * 0.93;
        } else if name.ends_with("weight_zero_point") {
            *t = t.clone() + 0.4;
        }
    }
    let mut conv = p.deep_copy();
    assert_eq!(codes.convert_to_codes(&mut conv).unwrap(), 14);
    let tokens = Tensor::<Flex, 2, Int>::from_data([[1, 5, 9, 3, 60, 2, 7, 7]], &dev);
    let rope = fake.rope::<Flex>(&dev);
    let logits = |m: &Llama, p| {
        let mut ctx = ForwardCtx::new(1, 0, false);
        let v: Vec<f32> = m
            .forward(p, &rope, tokens.clone(), &mut ctx)
            .into_data()
            .convert::<f32>()
            .into_vec()
            .unwrap();
        v.into_iter().map(f32::to_bits).collect::<Vec<_>>()
    };
    assert_eq!(logits(&fake, &p), logits(&codes, &conv));
    let w: BTreeMap<_, _> = conv
        .tensors
        .iter()
        .filter(|(n, _)| n.ends_with("up_proj.weight"))
        .collect();
    for t in w.values() {
        let v: Vec<f32> = t.to_data().convert::<f32>().into_vec().unwrap();
        assert!(
            v.iter()
                .all(|c| c.fract() == 0.0 && (0.0..=7.0).contains(c))
        );
    }
}

/// Each bad value is refused before any work, at its file, line and key.
#[test]
fn bad_stage_recipes_name_file_line_and_key() {
    let dir = tmp_dir("effqat-bad");
    let cases: [(&str, &str, &str); 5] = [
        (
            "[qat]\nmethod = \"efficientqat\"\nbits = 9\n",
            "qat.bits",
            ":3:",
        ),
        ("[qat]\nmethod = \"lsq\"\nbits = 1\n", "qat.bits", ":3:"),
        (
            "[qat]\nmethod = \"efficientqat\"\ngranularity = \"group\"\ngroup_size = 48\n",
            "qat.group_size",
            ":4:",
        ),
        (
            "[qat]\nmethod = \"efficientqat\"\nmodules = [\"lm_head\"]\n\n[block_ap]\nenabled = true\n\n[e2e_qp]\nenabled = true\n",
            "block_ap.enabled",
            ":6:",
        ),
        (
            "[qat]\nmethod = \"lsq\"\n\n[e2e_qp]\nenabled = true\n",
            "e2e_qp.enabled",
            ":5:",
        ),
    ];
    assert_refused_at(&dir, &cases);
}
