//! The objective seam takes a second model's outputs and a block-reconstruction loss without
//! changes to the trainer: a distillation objective defined here (KL to a teacher's logits plus
//! the MSE of every block output) runs through the ordinary `train_step`.

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use nibble_data::Batch;
use nibble_model::layers::Rope;
use nibble_model::{
    ForwardCtx, Hidden, Llama, ModelConfig, Params, PrecisionConfig, TapKind, TapPoint,
};
use nibble_train::objective::{BatchTensors, Objective};
use nibble_train::optim::{AdamW, OptimConfig};
use nibble_train::trainer::{StepSetup, train_step};

type B = Flex;
type A = Autodiff<Flex>;

/// A teacher's logits and block outputs.
type TeacherOut = (Tensor<A, 3>, BTreeMap<TapPoint, Tensor<A, 4>>);

struct Distill<'a> {
    teacher: &'a Llama,
    params: Params<A>,
    rope: Rope<A>,
    /// The teacher's logits and block outputs for the batch being prepared.
    seen: RefCell<Option<TeacherOut>>,
}

impl Objective<A> for Distill<'_> {
    fn name(&self) -> &str {
        "distill"
    }

    fn prepare(&self, batch: &BatchTensors<A>, ctx: &mut ForwardCtx<A>) {
        let mut tctx = ForwardCtx::new(ctx.key, ctx.step, false);
        tctx.taps.record(TapKind::BlockOut);
        let logits =
            self.teacher
                .forward(&self.params, &self.rope, batch.inputs.clone(), &mut tctx);
        *self.seen.borrow_mut() = Some((logits.detach(), tctx.taps.take_recorded()));
        ctx.taps.record(TapKind::BlockOut);
    }

    fn loss(&self, out: &Hidden<'_, A>, _: &BatchTensors<A>, ctx: &ForwardCtx<A>) -> Tensor<A, 1> {
        let logits = out.logits(ctx);
        let (teacher, blocks) = self.seen.borrow_mut().take().expect("prepared");
        let (lt, ls) = (log_softmax(teacher, 2), log_softmax(logits, 2));
        let kl = (lt.clone().exp() * (lt - ls)).sum_dim(2).mean();
        let mut loss = kl;
        for (point, t) in blocks {
            let s = ctx.taps.get(point).expect("student block output").clone();
            loss = loss + (s - t.detach()).powi_scalar(2).mean();
        }
        loss
    }
}

fn lift(p: &Params<B>) -> Params<A> {
    Params {
        tensors: p
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone())))
            .collect(),
        buffers: Default::default(),
    }
}

#[test]
fn a_teacher_and_block_reconstruction_objective_runs_through_train_step() {
    let arch = ModelConfig {
        seq_len: Some(16),
        n_layers: Some(2),
        ..Default::default()
    }
    .resolve(Some(256))
    .unwrap();
    let model = Llama::new(arch, PrecisionConfig::default().policy().unwrap());
    let dev = Default::default();
    let toks: Vec<u32> = (0..4 * 16).map(|i| (i * 53 + 5) % 256).collect();
    let micro = [Batch {
        inputs: toks.clone(),
        targets: toks.iter().map(|t| (t + 1) % 256).collect(),
        rows: 4,
        seq_len: 16,
    }];
    let rope = model.rope::<A>(&dev);
    let run = |student_seed: u64, teacher_seed: u64, steps: u64| -> Vec<f64> {
        let mut params = model.init_params::<B>(student_seed, &dev);
        let teacher = model.init_params::<B>(teacher_seed, &dev);
        let objective = Distill {
            teacher: &model,
            params: lift(&teacher),
            rope: model.rope::<A>(&dev),
            seen: RefCell::new(None),
        };
        let mut opt = AdamW::for_model(OptimConfig::default(), &model, &params).unwrap();
        let setup = StepSetup {
            model: &model,
            rope: &rope,
            objective: &objective,
            grad_clip: 1.0,
            device: &dev,
            probe_grads: false,
            peer: None,
        };
        (0..steps)
            .map(|s| train_step(&setup, &mut params, &mut opt, &micro, 3e-3, 9, s).loss)
            .collect()
    };
    // A student identical to its teacher has nothing to learn: KL and every MSE are exactly 0.
    assert_eq!(run(1, 1, 1), [0.0]);
    // A different teacher: the objective is positive and training reduces it.
    let losses = run(1, 2, 6);
    assert!(losses[0] > 0.0);
    assert!(
        losses[5] < 0.8 * losses[0],
        "distillation loss did not fall: {losses:?}"
    );
}
