//! Techniques through the trainer: an N:M mask (a buffer) and LSQ step sizes (parameters) survive
//! an interruption bit for bit, and the mask is what the technique promises.

mod common;

use common::{ckpt_bytes, ckpt_tensors, metric, recipe_with, run, tmp_dir};

const TECHNIQUES: &str = r#"
[sparsity]
method = "ste"
pattern = "2:4"
modules = ["model.layers.*.mlp.*"]
mask_interval = 3

[qat]
method = "lsq"
bits = 4
modules = ["model.layers.*"]
"#;

#[test]
fn resume_is_bit_identical_with_technique_params_and_buffers() {
    let tmp = tmp_dir("resume-tech");
    let s = run(&recipe_with(&tmp, "straight", 8, TECHNIQUES), false, None).unwrap();
    let full = recipe_with(&tmp, "resumed", 8, TECHNIQUES);
    // Cut after step 4: the resume starts from step 3, whose mask was recomputed at step 3 and
    // must come from the checkpoint (the mask is recomputed only every 3 steps).
    run(&full, false, Some(4)).unwrap();
    let r = run(&full, true, None).unwrap();
    let (a_model, a_opt) = ckpt_bytes(&s.run_dir, 8);
    let (b_model, b_opt) = ckpt_bytes(&r.run_dir, 8);
    assert!(a_model == b_model, "model tensors differ after resume");
    assert!(a_opt == b_opt, "optimizer state differs after resume");
    assert_eq!(s.final_eval.loss.to_bits(), r.final_eval.loss.to_bits());

    let t6 = ckpt_tensors(&s.run_dir, 6);
    let t8 = ckpt_tensors(&s.run_dir, 8);
    // LSQ's integer grid: the share of codes at its ends is logged, below 1.
    let clipped = metric(&s.run_dir, "qat/clipped");
    assert_eq!(clipped.len(), 8);
    assert!(
        clipped.iter().all(|(_, v)| (0.0..1.0).contains(v)),
        "{clipped:?}"
    );
    // The step size is a trained parameter with optimizer moments.
    let scale = "model.layers.0.self_attn.q_proj.weight_scale";
    assert_eq!(t8[scale].0, [128, 1]);
    assert!(t6[scale].1 != t8[scale].1, "the LSQ step sizes train");
    // Per-layer statistics of the learned steps, logged at every log step (here: every step).
    for (stat, want) in [
        (
            "mean",
            t6[scale].1.iter().map(|&x| f64::from(x)).sum::<f64>() / 128.0,
        ),
        (
            "min",
            f64::from(t6[scale].1.iter().fold(f32::INFINITY, |m, &x| m.min(x))),
        ),
        (
            "max",
            f64::from(t6[scale].1.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x))),
        ),
    ] {
        let got = metric(&s.run_dir, &format!("qat/{scale}/{stat}"));
        let at6 = got
            .iter()
            .find(|(st, _)| *st == 6)
            .expect("logged at step 6")
            .1;
        assert!(
            (at6 - want).abs() <= 1e-12 * want.abs(),
            "{stat}: {at6} vs {want}"
        );
    }
    let opt = nibble_train::checkpoint::read_safetensors(&a_opt).unwrap();
    assert!(opt.contains_key(&format!("{scale}.exp_avg")));
    // The mask is a buffer: no moments; 2 of every 4 inputs kept; recomputed at step 6 from the
    // step-6 weights and kept until the next recomputation (step 9).
    let mask = "model.layers.1.mlp.down_proj.weight_mask";
    assert!(!opt.contains_key(&format!("{mask}.exp_avg")));
    for g in t8[mask].1.chunks(4) {
        assert_eq!(g.iter().filter(|&&v| v == 1.0).count(), 2, "{g:?}");
        assert!(g.iter().all(|&v| v == 0.0 || v == 1.0));
    }
    let (shape, w6) = &t6["model.layers.1.mlp.down_proj.weight"];
    let want = nibble_formats::nm_mask::nm_mask(w6, shape[1], 2, 4).unwrap();
    assert_eq!(
        t6[mask].1, want,
        "mask = magnitude 2:4 mask of the step-6 weights"
    );
    assert_eq!(t8[mask].1, want, "no recomputation between steps 6 and 8");
    assert!(
        !t8.keys()
            .any(|k| k.contains("self_attn") && k.ends_with("weight_mask"))
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

const TEQUILA: &str = r#"
[qat]
method = "tequila"
granularity = "group"
group_size = 32
lambda_learnable = true
"#;

#[test]
fn tequila_trains_its_lambda_and_resumes_bit_identically() {
    let tmp = tmp_dir("resume-tequila");
    let s = run(&recipe_with(&tmp, "straight", 6, TEQUILA), false, None).unwrap();
    let full = recipe_with(&tmp, "resumed", 6, TEQUILA);
    run(&full, false, Some(4)).unwrap();
    let r = run(&full, true, None).unwrap();
    let (a_model, a_opt) = ckpt_bytes(&s.run_dir, 6);
    let (b_model, b_opt) = ckpt_bytes(&r.run_dir, 6);
    assert!(a_model == b_model, "model tensors differ after resume");
    assert!(a_opt == b_opt, "optimizer state differs after resume");
    assert!(s.final_eval.loss.is_finite());
    let t6 = ckpt_tensors(&s.run_dir, 6);
    let lambda = "model.layers.1.mlp.up_proj.weight_lambda";
    let (shape, v) = &t6[lambda];
    assert_eq!(shape[1], 1, "one λ per output channel");
    assert!(
        v.iter().any(|&l| l != 1e-3),
        "the learnable λ moved from its init"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn qat_switched_on_at_the_decay_leaves_the_earlier_updates_unchanged() {
    // 8 updates, WSD with 2 warmup steps and a quarter decay: the decay starts at update 6.
    let tmp = tmp_dir("qat-start");
    let plain = run(&recipe_with(&tmp, "plain", 8, ""), false, None).unwrap();
    let late = "[qat]\nmethod = \"absmean\"\nstart = \"decay\"\n";
    let late = run(&recipe_with(&tmp, "late", 8, late), false, None).unwrap();
    let (a, b) = (
        metric(&plain.run_dir, "train/loss"),
        metric(&late.run_dir, "train/loss"),
    );
    assert_eq!(a.len(), 8);
    for ((sa, la), (sb, lb)) in a.iter().zip(&b) {
        assert_eq!(sa, sb);
        // Logged step s reports update s − 1.
        if *sa <= 6 {
            assert_eq!(
                la.to_bits(),
                lb.to_bits(),
                "update {} is before the switch",
                sa - 1
            );
        } else {
            assert_ne!(la, lb, "update {} runs on the ternary grid", sa - 1);
        }
    }
    let bad = "[qat]\nmethod = \"absmean\"\nstart = 8\n";
    let e = run(&recipe_with(&tmp, "bad", 8, bad), false, None).unwrap_err();
    assert!(e.to_string().contains("qat.start"), "{e}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// The logged values of `key`, by step.

#[test]
fn ternary_diagnostics_are_logged_and_match_the_checkpoint() {
    let tmp = tmp_dir("qat-diag");
    let qat = "[qat]\nmethod = \"absmean\"\n";
    let s = run(&recipe_with(&tmp, "diag", 6, qat), false, None).unwrap();
    let dead = metric(&s.run_dir, "qat/deadzone");
    assert_eq!(dead.len(), 6, "one deadzone fraction per log step");
    let flips = metric(&s.run_dir, "qat/flip_rate");
    let escapes = metric(&s.run_dir, "qat/escape_rate");
    assert_eq!(flips.len(), 5, "flip rates from the second log step on");
    assert_eq!(escapes.len(), 5);
    assert!(
        flips
            .iter()
            .chain(&escapes)
            .all(|(_, v)| (0.0..=1.0).contains(v))
    );
    assert!(
        flips.iter().any(|(_, v)| *v > 0.0),
        "training moves some codes"
    );
    // The step-6 deadzone from the checkpoint's weights, independently: per row, |w| < mean|w|/2.
    let t = ckpt_tensors(&s.run_dir, 6);
    let (mut zeros, mut total) = (0usize, 0usize);
    for (name, (shape, w)) in &t {
        if !(name.starts_with("model.layers.") && name.ends_with("_proj.weight")) {
            continue;
        }
        for row in w.chunks(shape[1]) {
            let alpha = row.iter().map(|v| v.abs()).sum::<f32>() / row.len() as f32;
            zeros += row.iter().filter(|v| v.abs() < alpha * 0.5).count();
            total += row.len();
        }
    }
    let want = zeros as f64 / total as f64;
    let (step, got) = dead[5];
    assert_eq!(step, 6);
    assert!(
        (got - want).abs() < 1e-4,
        "deadzone {got} vs {want} from the checkpoint"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

/// SR-STE (its decay term through an auxiliary loss) and MDGF (β decaying with the step) train
/// and resume bit for bit; SR-STE's pruned weights shrink against plain STE's.
#[test]
fn sr_ste_and_mdgf_resume_bit_identically() {
    let tmp = tmp_dir("resume-nm-methods");
    for (tag, body) in [
        (
            "sr-ste",
            "method = \"sr-ste\"\npattern = \"2:4\"\nlambda_w = 0.5",
        ),
        (
            "mdgf",
            "method = \"mdgf\"\npattern = \"1:4\"\nbeta_zero_at = 6",
        ),
    ] {
        let extra = format!("\n[sparsity]\n{body}\n");
        let s = run(
            &recipe_with(&tmp, &format!("{tag}-a"), 8, &extra),
            false,
            None,
        )
        .unwrap();
        let cut = recipe_with(&tmp, &format!("{tag}-b"), 8, &extra);
        run(&cut, false, Some(4)).unwrap();
        let r = run(&cut, true, None).unwrap();
        assert!(
            ckpt_bytes(&s.run_dir, 8) == ckpt_bytes(&r.run_dir, 8),
            "{tag}"
        );
        assert!(s.final_eval.loss.is_finite(), "{tag}");
        // Diagnostics at every log step (every step here): each masked layer's density is
        // exactly N/M, the flip rate a share, MDGF's β the formula's (α = 5/6 from
        // beta_zero_at = 6) after each step's updates.
        let density = metric(&s.run_dir, "sparsity/model.layers.1.mlp.down_proj/density");
        let want = if tag == "mdgf" { 0.25 } else { 0.5 };
        assert_eq!(density.len(), 8, "{tag}");
        assert!(
            density.iter().all(|(_, d)| *d == want),
            "{tag}: {density:?}"
        );
        let flips = metric(&s.run_dir, "sparsity/flip_rate");
        assert_eq!(flips.len(), 7, "{tag}: from the second log step");
        assert!(flips.iter().all(|(_, f)| (0.0..=1.0).contains(f)), "{tag}");
        let beta = metric(&s.run_dir, "sparsity/beta");
        if tag == "mdgf" {
            for (step, b) in &beta {
                let want = (-(5.0 / 6.0) * *step as f64).exp();
                assert!((b - want).abs() < 1e-12, "β({step}) = {b}, want {want}");
            }
            assert_eq!(beta.len(), 8);
        } else {
            assert!(beta.is_empty());
        }
    }
    // SR-STE's term pulls the pruned weights towards 0: their norm ends below plain STE's.
    let pruned_norm = |tag: &str, body: &str| {
        let extra = format!("\n[sparsity]\n{body}\n");
        let s = run(&recipe_with(&tmp, tag, 8, &extra), false, None).unwrap();
        let t = ckpt_tensors(&s.run_dir, 8);
        let name = "model.layers.0.mlp.up_proj";
        let (w, m) = (
            &t[&format!("{name}.weight")].1,
            &t[&format!("{name}.weight_mask")].1,
        );
        w.iter()
            .zip(m)
            .map(|(w, m)| f64::from(w * (1.0 - m)).powi(2))
            .sum::<f64>()
    };
    let ste = pruned_norm("ste", "method = \"ste\"");
    let sr = pruned_norm("sr", "method = \"sr-ste\"\nlambda_w = 0.5");
    assert!(sr < ste, "SR-STE pruned norm {sr} vs STE {ste}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A dense start and a hard-mask end: the first updates equal an unmasked run's bit for bit,
/// the hard phase freezes the mask and leaves the pruned weights at exactly 0 in the checkpoint,
/// MDGF's β is 1 through the dense phase and 0 in the hard one, and a resume across the hard
/// boundary is bit-identical.
#[test]
fn dense_and_hard_phases() {
    let tmp = tmp_dir("nm-phases");
    // 8 updates: dense 0..2, MDGF 2..6 (t = 0 at update 2), hard 6..8.
    let body = "\n[sparsity]\nmethod = \"mdgf\"\npattern = \"1:4\"\ndecay_coef = 0.5\n\
                dense_fraction = 0.25\nfinetune_fraction = 0.25\n";
    let s = run(&recipe_with(&tmp, "phases", 8, body), false, None).unwrap();
    let plain = run(&recipe_with(&tmp, "plain", 8, ""), false, None).unwrap();
    let (a, b) = (
        metric(&s.run_dir, "train/loss"),
        metric(&plain.run_dir, "train/loss"),
    );
    // Dense updates 0 and 1, and update 2 with MDGF's β(0) = 1 (W⊙(m + (1 − m)) = W): the
    // unmasked run's losses bit for bit; from update 3 on the pruned weights are scaled down.
    assert_eq!(a[..3], b[..3], "the dense updates are the unmasked run's");
    assert_ne!(a[3], b[3], "the mask acts from update 3");
    let beta = metric(&s.run_dir, "sparsity/beta");
    for (step, got) in &beta {
        let want = match step {
            0..=2 => 1.0,
            3..=5 => (-0.5 * (*step - 2) as f64).exp(),
            _ => 0.0,
        };
        assert!(
            (got - want).abs() < 1e-12,
            "β after {step} updates: {got} vs {want}"
        );
    }
    let (t6, t8) = (ckpt_tensors(&s.run_dir, 6), ckpt_tensors(&s.run_dir, 8));
    for layer in [
        "model.layers.0.mlp.up_proj",
        "model.layers.1.self_attn.q_proj",
    ] {
        let (w, m) = (
            &t8[&format!("{layer}.weight")].1,
            &t8[&format!("{layer}.weight_mask")].1,
        );
        assert_eq!(
            m,
            &t6[&format!("{layer}.weight_mask")].1,
            "{layer}: frozen mask"
        );
        for g in m.chunks(4) {
            assert_eq!(g.iter().filter(|&&v| v == 1.0).count(), 1, "{layer}: 1:4");
        }
        assert!(
            w.iter().zip(m).all(|(w, m)| *m == 1.0 || *w == 0.0),
            "{layer}: pruned weights are 0"
        );
    }
    let cut = recipe_with(&tmp, "phases-cut", 8, body);
    run(&cut, false, Some(7)).unwrap();
    let r = run(&cut, true, None).unwrap();
    assert!(ckpt_bytes(&s.run_dir, 8) == ckpt_bytes(&r.run_dir, 8));
    let _ = std::fs::remove_dir_all(&tmp);
}
