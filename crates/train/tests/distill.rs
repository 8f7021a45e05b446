//! `[distill]` and Teacher Intervention: the KD losses against their formulas and finite
//! differences; a student equal to its teacher has zero KD losses and, under every intervention,
//! the teacher's logits; under TI-M the main path sends no gradient to Q/K (the score loss
//! does), under TI-C none to Q/K/V, under TI-O none to Q/K/V/O; the gradual, inverted and
//! stochastic schedules; a run resumes bit for bit in stage 1, across the boundary and in stage
//! 2; a teacher of the wrong layout or vocabulary is refused before the run directory exists.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use common::{ckpt_bytes, metric, recipe_with, run, tmp_dir};
use nibble_model::{ForwardCtx, Intervention, Llama, ModelConfig, Params, PrecisionConfig};
use nibble_train::objective::{
    BatchTensors, Distill, Objective, Teacher, kd_logits, masked_score_mse, mse,
};
use nibble_train::sections::{DistillConfig, InterventionMode};
use nibble_train::trainer::TrainError;

type B = Flex;
type A = Autodiff<Flex>;

fn vals<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

fn t<const D: usize>(v: &[f32], shape: [usize; D]) -> Tensor<A, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), &Default::default())
}

/// Central differences of `f` at `x` against autodiff's gradient, entry by entry.
fn check_fd<const D: usize>(
    x: &[f32],
    shape: [usize; D],
    f: &dyn Fn(Tensor<A, D>) -> Tensor<A, 1>,
) {
    let leaf = t(x, shape).require_grad();
    let g = f(leaf.clone()).backward();
    let grad = vals(leaf.grad(&g).unwrap());
    let h = 1e-2f32;
    for i in 0..x.len() {
        let at = |d: f32| {
            let mut v = x.to_vec();
            v[i] += d;
            f64::from(vals(f(t(&v, shape)))[0])
        };
        let fd = (at(h) - at(-h)) / (2.0 * f64::from(h));
        let tol = 2e-3 * fd.abs().max(1e-2);
        assert!(
            (f64::from(grad[i]) - fd).abs() <= tol,
            "entry {i}: {} vs {fd}",
            grad[i]
        );
    }
}

#[test]
fn kd_losses_match_their_formulas_and_finite_differences() {
    let (s, te) = (noise(2 * 3 * 5, 1), noise(2 * 3 * 5, 2));
    let temp = 2.0;
    // T²·Σ_v p_T (log p_T − log p_S), mean over the 6 tokens, in f64.
    let lsm = |z: &[f32]| {
        let z: Vec<f64> = z.iter().map(|&x| f64::from(x) / temp).collect();
        let m = z.iter().cloned().fold(f64::MIN, f64::max);
        let lse = m + z.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
        z.iter().map(|x| x - lse).collect::<Vec<_>>()
    };
    let want: f64 = s
        .chunks(5)
        .zip(te.chunks(5))
        .map(|(a, b)| {
            let (la, lb) = (lsm(a), lsm(b));
            lb.iter()
                .zip(&la)
                .map(|(q, p)| q.exp() * (q - p))
                .sum::<f64>()
        })
        .sum::<f64>()
        / 6.0
        * temp
        * temp;
    let got = f64::from(vals(kd_logits(t(&s, [2, 3, 5]), t(&te, [2, 3, 5]), temp))[0]);
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    assert_eq!(
        vals(kd_logits(t(&s, [2, 3, 5]), t(&s, [2, 3, 5]), temp))[0],
        0.0
    );
    check_fd(&s, [2, 3, 5], &|x| kd_logits(x, t(&te, [2, 3, 5]), temp));

    let (a, b) = (noise(24, 3), noise(24, 4));
    let want = a
        .iter()
        .zip(&b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        / 24.0;
    let got = f64::from(vals(mse(t(&a, [2, 1, 3, 4]), t(&b, [2, 1, 3, 4])))[0]);
    assert!((got - want).abs() < 1e-6);
    check_fd(&a, [2, 1, 3, 4], &|x| mse(x, t(&b, [2, 1, 3, 4])));

    // Scores [1, 2, 3, 3]: the 6 causal entries per head count; the others (set huge in the
    // teacher, as a masked score would be) do not.
    let mut sc = noise(18, 5);
    let mut tc = noise(18, 6);
    let seen = |e: usize| e % 3 <= (e / 3) % 3;
    for e in 0..18 {
        if !seen(e) {
            (sc[e], tc[e]) = (sc[e] + 50.0, -1e4);
        }
    }
    let want = (0..18)
        .filter(|&e| seen(e))
        .map(|e| f64::from(sc[e] - tc[e]).powi(2))
        .sum::<f64>()
        / 12.0;
    let got = f64::from(vals(masked_score_mse(t(&sc, [1, 2, 3, 3]), t(&tc, [1, 2, 3, 3])))[0]);
    assert!((got - want).abs() < 1e-5 * want, "{got} vs {want}");
    check_fd(&sc, [1, 2, 3, 3], &|x| {
        masked_score_mse(x, t(&tc, [1, 2, 3, 3]))
    });
}

fn arch() -> nibble_model::Arch {
    ModelConfig {
        seq_len: Some(16),
        n_layers: Some(2),
        ..Default::default()
    }
    .resolve(None)
    .unwrap()
}

/// A student and a teacher with the same weights, and a batch.
fn pair() -> (Llama, Params<B>, BatchTensors<A>) {
    let policy = PrecisionConfig::default().policy().unwrap();
    let model = Llama::new(arch(), policy);
    let p = model.init_params::<B>(11, &Default::default());
    let ids: Vec<i32> = (0..2 * 16).map(|i| (i * 37 + 5) % 256).collect();
    let tg: Vec<i32> = ids.iter().map(|x| (x + 1) % 256).collect();
    let dev = Default::default();
    let batch = BatchTensors {
        inputs: Tensor::from_data(TensorData::new(ids, [2, 16]), &dev),
        targets: Tensor::from_data(TensorData::new(tg, [2, 16]), &dev),
    };
    (model, p, batch)
}

fn lift(p: &Params<B>) -> Params<A> {
    Params {
        tensors: p
            .tensors
            .iter()
            .map(|(k, v)| (k.clone(), Tensor::from_inner(v.clone()).require_grad()))
            .collect(),
        buffers: Default::default(),
    }
}

fn distill(model: &Llama, p: &Params<B>, cfg: DistillConfig) -> Distill<B> {
    let dev = Default::default();
    let teacher = Teacher {
        model: model.clone(),
        params: p.clone(),
        rope: model.rope(&dev),
    };
    Distill::new(teacher, cfg, 0, &dev)
}

fn all_losses(mode: InterventionMode) -> DistillConfig {
    DistillConfig {
        ce: 0.0,
        logits: 1.0,
        hidden: 1.0,
        attn_scores: 1.0,
        attn_out: 1.0,
        temperature: 2.0,
        intervention: mode,
        intervention_steps: 4,
        ..Default::default()
    }
}

/// One student step's loss, logits and gradients through the objective at update `step`.
fn student_step(
    model: &Llama,
    d: &Distill<B>,
    p: &Params<B>,
    batch: &BatchTensors<A>,
    step: u64,
) -> (
    f32,
    Vec<f32>,
    Params<A>,
    <A as burn::tensor::backend::AutodiffBackend>::Gradients,
) {
    let leaves = lift(p);
    let rope = model.rope::<A>(&Default::default());
    let mut ctx = ForwardCtx::new(0, step, true);
    d.prepare(batch, &mut ctx);
    let out = model.hidden(&leaves, &rope, batch.inputs.clone(), &mut ctx);
    let logits = vals(out.logits(&ctx));
    let loss = d.loss(&out, batch, &ctx);
    let value = vals(loss.clone())[0];
    let g = loss.backward();
    (value, logits, leaves, g)
}

#[test]
fn a_student_equal_to_its_teacher_has_zero_losses_and_its_logits_under_every_mode() {
    let (model, p, batch) = pair();
    for mode in [
        InterventionMode::None,
        InterventionMode::Map,
        InterventionMode::Context,
        InterventionMode::Output,
    ] {
        let d = distill(&model, &p, all_losses(mode));
        let (loss, logits, _, _) = student_step(&model, &d, &p, &batch, 0);
        assert_eq!(loss, 0.0, "{mode:?}: total loss");
        for (k, v) in d.take_metrics() {
            if k != "distill/ce" {
                assert_eq!(v, 0.0, "{mode:?}: {k}");
            }
        }
        let want = d
            .teacher_out_ad(batch.inputs.clone(), d.cfg.intervention_at(0, 0))
            .logits;
        assert_eq!(logits, vals(want), "{mode:?}: the teacher's logits");
    }
}

/// The norm of a parameter's gradient (0 when none reached it).
fn grad_norm(
    leaves: &Params<A>,
    g: &<A as burn::tensor::backend::AutodiffBackend>::Gradients,
    name: &str,
) -> f64 {
    leaves.tensors[name].grad(g).map_or(0.0, |t| {
        vals(t).iter().map(|x| f64::from(*x).powi(2)).sum::<f64>()
    })
}

#[test]
fn interventions_cut_the_main_path_gradient_to_what_they_replace() {
    let (model, p0, batch) = pair();
    // A student that differs from its teacher (so the losses have gradients).
    let mut p = p0.clone();
    for (k, v) in p.tensors.iter_mut() {
        if k.contains("layers.") && k.ends_with("proj.weight") {
            *v = v.clone() * 1.1;
        }
    }
    let teacher = distill(&model, &p0, DistillConfig::default());
    let with = |mode, attn_scores| DistillConfig {
        ce: 1.0,
        logits: 0.0,
        attn_scores,
        intervention: mode,
        intervention_steps: 4,
        ..Default::default()
    };
    let proj = |l: usize, x: &str| format!("model.layers.{l}.self_attn.{x}_proj.weight");
    for (mode, cut) in [
        (InterventionMode::Map, vec!["q", "k"]),
        (InterventionMode::Context, vec!["q", "k", "v"]),
        (InterventionMode::Output, vec!["q", "k", "v", "o"]),
    ] {
        let d = Distill::new(
            Teacher {
                model: teacher.teacher.model.clone(),
                params: p0.clone(),
                rope: model.rope(&Default::default()),
            },
            with(mode, 0.0),
            0,
            &Default::default(),
        );
        let (_, _, leaves, g) = student_step(&model, &d, &p, &batch, 0);
        for l in 0..2 {
            for x in ["q", "k", "v", "o"] {
                let n = grad_norm(&leaves, &g, &proj(l, x));
                match cut.contains(&x) {
                    true => assert_eq!(n, 0.0, "{mode:?}: {x}_proj of block {l}"),
                    false => assert!(n > 0.0, "{mode:?}: {x}_proj of block {l} trains"),
                }
            }
        }
        // The score loss reaches Q and K (and nothing before the block: their input is
        // detached, so block 0's MLP gets the same gradient with or without it).
        let d = Distill::new(
            Teacher {
                model: teacher.teacher.model.clone(),
                params: p0.clone(),
                rope: model.rope(&Default::default()),
            },
            with(mode, 1.0),
            0,
            &Default::default(),
        );
        let (_, _, leaves, g) = student_step(&model, &d, &p, &batch, 0);
        for x in ["q", "k"] {
            assert!(
                grad_norm(&leaves, &g, &proj(1, x)) > 0.0,
                "{mode:?}: score loss → {x}"
            );
        }
    }
}

#[test]
fn schedules_switch_modes_at_exact_steps() {
    use Intervention::{Context, Map, Output};
    let cfg = |mode, s| DistillConfig {
        intervention: mode,
        intervention_steps: s,
        ..Default::default()
    };
    let g = cfg(InterventionMode::Gradual, 60);
    for (step, want) in [
        (0, Some(Output)),
        (9, Some(Output)),
        (10, Some(Context)),
        (19, Some(Context)),
        (20, Some(Map)),
        (59, Some(Map)),
        (60, None),
    ] {
        assert_eq!(
            g.intervention_at(step, 0),
            want,
            "gradual, update {step} of 60"
        );
    }
    // s = 61: s/6 = 10.17 and s/3 = 20.33.
    let g = cfg(InterventionMode::Gradual, 61);
    for (step, want) in [
        (10, Some(Output)),
        (11, Some(Context)),
        (20, Some(Context)),
        (21, Some(Map)),
    ] {
        assert_eq!(
            g.intervention_at(step, 0),
            want,
            "gradual, update {step} of 61"
        );
    }
    let inv = cfg(InterventionMode::Inverted, 60);
    for (step, want) in [
        (19, Some(Map)),
        (20, Some(Context)),
        (39, Some(Context)),
        (40, Some(Output)),
        (60, None),
    ] {
        assert_eq!(
            inv.intervention_at(step, 0),
            want,
            "inverted, update {step}"
        );
    }
    let st = cfg(InterventionMode::Stochastic, 60);
    let draws: Vec<_> = (0..60).map(|s| st.intervention_at(s, 7).unwrap()).collect();
    for m in [Map, Context, Output] {
        let n = draws.iter().filter(|d| **d == m).count();
        assert!((10..=30).contains(&n), "{m:?} drawn {n} times of 60");
    }
    let again: Vec<_> = (0..60).map(|s| st.intervention_at(s, 7).unwrap()).collect();
    assert_eq!(draws, again, "a counter-based draw");
    let other: Vec<_> = (0..60).map(|s| st.intervention_at(s, 8).unwrap()).collect();
    assert_ne!(draws, other, "the seed changes the draws");
}

/// A teacher run, then a student distilling from it with TI-G over 4 of 8 updates, composed
/// with Tequila on every block projection and a 2:4 mask on the MLP.
#[test]
fn distillation_resumes_bit_identically_in_both_stages() {
    let tmp = tmp_dir("distill-resume");
    let teacher = run(&recipe_with(&tmp, "teacher", 3, ""), false, None).unwrap();
    let body = format!(
        "\n[distill]\nteacher.run = \"{}\"\nce = 0.5\nhidden = 0.1\nattn_scores = 0.1\n\
         attn_out = 0.1\nintervention = \"gradual\"\nintervention_steps = 4\nrewarmup = true\n\n\
         [qat]\nmethod = \"tequila\"\ngranularity = \"channel\"\n\n\
         [sparsity]\nmethod = \"ste\"\npattern = \"2:4\"\nmodules = [\"model.layers.*.mlp.*\"]\n",
        teacher.run_dir.display()
    );
    let s = run(&recipe_with(&tmp, "straight", 8, &body), false, None).unwrap();
    assert!(s.final_eval.loss.is_finite());
    for key in [
        "distill/logits",
        "distill/ce",
        "distill/hidden",
        "distill/attn_scores",
        "distill/attn_out",
    ] {
        assert_eq!(metric(&s.run_dir, key).len(), 8, "{key}");
    }
    // Stage 1's evaluations (after update 3) report the intervened loss too; stage 2's do not.
    let iv = metric(&s.run_dir, "val/loss_intervened");
    assert_eq!(iv.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [3]);
    // Stops after update 4 (resumes from 3: stage 1, crossing into stage 2) and after 7
    // (resumes from 6: stage 2).
    for (tag, cut) in [("cut4", 4), ("cut7", 7)] {
        let r = recipe_with(&tmp, tag, 8, &body);
        run(&r, false, Some(cut)).unwrap();
        let done = run(&r, true, None).unwrap();
        assert!(
            ckpt_bytes(&s.run_dir, 8) == ckpt_bytes(&done.run_dir, 8),
            "{tag}"
        );
        assert_eq!(
            s.final_eval.loss.to_bits(),
            done.final_eval.loss.to_bits(),
            "{tag}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_teacher_of_another_layout_or_vocabulary_is_refused_before_any_work() {
    let tmp = tmp_dir("distill-refuse");
    let one = recipe_with(&tmp, "one-block", 3, "").replace("n_layers = 2", "n_layers = 1");
    let one = run(&one, false, None).unwrap();
    let gpt2 = recipe_with(&tmp, "gpt2", 3, "").replace(
        "source = \"sample\"",
        "source = \"sample\"\ntokenizer = \"gpt2\"",
    );
    let gpt2 = run(&gpt2, false, None).unwrap();
    for (tag, teacher, extra, words) in [
        ("layout", &one.run_dir, "hidden = 1.0", "block layout"),
        ("vocab", &gpt2.run_dir, "", "vocabulary"),
    ] {
        let body = format!(
            "\n[distill]\nteacher.run = \"{}\"\n{extra}\n",
            teacher.display()
        );
        let err = run(&recipe_with(&tmp, tag, 4, &body), false, None).unwrap_err();
        let TrainError::Config(k) = &err else {
            panic!("{tag}: {err}");
        };
        assert_eq!(k.key, "distill.teacher", "{tag}: {err}");
        assert!(k.message.contains(words), "{tag}: {err}");
        assert!(!tmp.join(tag).exists(), "{tag}: no run directory");
    }
    // Logit-only KD takes a teacher of another layout with the same vocabulary.
    let body = format!("\n[distill]\nteacher.run = \"{}\"\n", one.run_dir.display());
    run(&recipe_with(&tmp, "logits-only", 4, &body), false, None).unwrap();
    let _ = std::fs::remove_dir_all(&tmp);
}
