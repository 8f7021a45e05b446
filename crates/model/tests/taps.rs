//! Taps record and replace internal signals; replaced values carry no gradient, and nothing
//! flows through the signal they replaced.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::layers::rms_norm;
use nibble_model::{
    ForwardCtx, Llama, Params, PrecisionConfig, PrecisionPolicy, TapKind, TapPoint,
};

type B = Flex;
type A = Autodiff<Flex>;

fn model() -> Llama {
    let policy: PrecisionPolicy = PrecisionConfig::default().policy().unwrap();
    Llama::new(common::tiny_arch(), policy)
}

fn tokens<Bk: Backend>() -> Tensor<Bk, 2, Int> {
    let t: Vec<i32> = (0..2 * 16).map(|i| (i * 37 + 11) % 256).collect();
    Tensor::from_data(TensorData::new(t, [2, 16]), &Default::default())
}

fn vals<Bk: Backend, const D: usize>(t: Tensor<Bk, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

const KINDS: [TapKind; 4] = [
    TapKind::AttnProbs,
    TapKind::HeadContext,
    TapKind::AttnOut,
    TapKind::BlockOut,
];

#[test]
fn records_every_kind_with_its_shape_and_the_last_block_output_gives_the_logits() {
    let m = model();
    let p = m.init_params::<B>(1, &Default::default());
    let rope = m.rope::<B>(&Default::default());
    let mut ctx = ForwardCtx::new(0, 0, false);
    KINDS.iter().for_each(|&k| {
        ctx.taps.record(k);
    });
    let logits = m.forward(&p, &rope, tokens(), &mut ctx);
    assert_eq!(ctx.taps.recorded().len(), 4 * 2);
    let shape = |k| ctx.taps.get(TapPoint::new(1, k)).unwrap().dims();
    assert_eq!(shape(TapKind::AttnProbs), [2, 4, 16, 16]);
    assert_eq!(shape(TapKind::HeadContext), [2, 4, 16, 32]);
    assert_eq!(shape(TapKind::AttnOut), [2, 1, 16, 128]);
    assert_eq!(shape(TapKind::BlockOut), [2, 1, 16, 128]);
    // Rows of the attention probabilities are causal distributions.
    let pr = vals(
        ctx.taps
            .get(TapPoint::new(0, TapKind::AttnProbs))
            .unwrap()
            .clone(),
    );
    for (r, row) in pr.chunks(16).enumerate() {
        let i = r % 16;
        assert!(
            row[i + 1..].iter().all(|&v| v == 0.0),
            "row {r} looks ahead"
        );
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
    // The recorded hidden state is the real one: final norm + lm_head on it reproduce the logits.
    let h = ctx
        .taps
        .get(TapPoint::new(1, TapKind::BlockOut))
        .unwrap()
        .clone();
    let h = rms_norm(
        h.reshape([2, 16, 128]),
        p.get("model.norm.weight"),
        m.arch.norm_eps,
    );
    let head = p.get("lm_head.weight");
    let again = h
        .reshape([32, 128])
        .matmul(head.transpose())
        .reshape([2, 16, 256]);
    assert_eq!(vals(again), vals(logits));
}

/// Teacher Intervention's mechanism: a student whose attention maps are replaced by those of
/// an identical teacher gives identical logits; a different teacher's maps change them.
#[test]
fn replacing_attention_probs_with_an_identical_teachers_gives_identical_logits() {
    let m = model();
    let dev = Default::default();
    let rope = m.rope::<B>(&dev);
    let student = m.init_params::<B>(1, &dev);
    let run = |p: &Params<B>, replace_from: Option<&Params<B>>| {
        let mut ctx = ForwardCtx::new(0, 0, false);
        // Recording keeps the student on the attention composition (the fused kernel has no
        // probabilities to tap) with or without a replacement: the same float operations.
        ctx.taps.record(TapKind::AttnProbs);
        if let Some(t) = replace_from {
            let mut tctx = ForwardCtx::new(0, 0, false);
            tctx.taps.record(TapKind::AttnProbs);
            m.forward(t, &rope, tokens(), &mut tctx);
            for (point, v) in tctx.taps.take_recorded() {
                ctx.taps.replace(point, v);
            }
        }
        vals(m.forward(p, &rope, tokens(), &mut ctx))
    };
    let own = run(&student, None);
    assert_eq!(run(&student, Some(&student.clone())), own);
    let other = m.init_params::<B>(2, &dev);
    assert_ne!(run(&student, Some(&other)), own, "the replacement is used");
}

#[test]
fn no_gradient_flows_into_replaced_values_or_through_what_they_replaced() {
    let m = model();
    let dev = Default::default();
    let rope = m.rope::<A>(&dev);
    let lift = |p: Params<B>| Params::<A> {
        tensors: p
            .tensors
            .into_iter()
            .map(|(k, t)| (k, Tensor::from_inner(t).require_grad()))
            .collect(),
        buffers: Default::default(),
    };
    let student = lift(m.init_params::<B>(1, &dev));
    let teacher = lift(m.init_params::<B>(2, &dev));
    let mut tctx = ForwardCtx::new(0, 0, true);
    tctx.taps.record(TapKind::AttnProbs);
    m.forward(&teacher, &rope, tokens(), &mut tctx);
    let mut ctx = ForwardCtx::new(0, 0, true);
    for (point, v) in tctx.taps.take_recorded() {
        ctx.taps.replace(point, v);
    }
    let loss = m.forward(&student, &rope, tokens(), &mut ctx).sum();
    let g = loss.backward();
    for (name, t) in &teacher.tensors {
        assert!(t.grad(&g).is_none(), "teacher {name} got a gradient");
    }
    let zero = |name: &str| {
        student.tensors[name]
            .grad(&g)
            .is_none_or(|gr| vals(gr).iter().all(|&v| v == 0.0))
    };
    for l in 0..2 {
        for proj in ["q_proj", "k_proj"] {
            let name = format!("model.layers.{l}.self_attn.{proj}.weight");
            assert!(
                zero(&name),
                "{name}: gradient through replaced probabilities"
            );
        }
        let v = format!("model.layers.{l}.self_attn.v_proj.weight");
        assert!(!zero(&v), "{v} still trains");
    }
}
