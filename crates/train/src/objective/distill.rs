//! Distillation from a teacher run in the same step (`[distill]`): the teacher's forward on the
//! micro-batch without autograd, its signals kept for that micro-batch only, the weighted KD
//! losses, and Teacher Intervention's replacements in stage 1.

use std::cell::RefCell;
use std::collections::BTreeMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use nibble_model::layers::Rope;
use nibble_model::{ForwardCtx, Hidden, Intervention, Llama, LpBackend, Params, TapKind, TapPoint};

use super::kd_losses::{kd_logits, masked_score_mse, mse};
use super::{BatchTensors, Objective};
use crate::sections::DistillConfig;

/// The teacher: a plain f32 model (no schemes, no techniques) and its weights.
pub struct Teacher<B: LpBackend> {
    pub model: Llama,
    pub params: Params<B>,
    pub rope: Rope<B>,
}

/// The teacher's logits and the signals it recorded, for one micro-batch.
pub struct TeacherOut<B: Backend> {
    pub logits: Tensor<B, 3>,
    pub taps: BTreeMap<TapPoint, Tensor<B, 4>>,
}

/// The tap an intervention replaces.
pub fn replaced_kind(mode: Intervention) -> TapKind {
    match mode {
        Intervention::Map => TapKind::AttnProbs,
        Intervention::Context => TapKind::HeadContext,
        Intervention::Output => TapKind::AttnOut,
    }
}

impl<B: LpBackend> Teacher<B> {
    /// The teacher on `inputs`, recording `kinds` in every block.
    pub fn run(&self, inputs: Tensor<B, 2, Int>, kinds: &[TapKind]) -> TeacherOut<B> {
        teacher_forward(&self.model, &self.params, &self.rope, inputs, kinds)
    }

    /// The teacher on the autodiff backend, as constants (no tensor requires a gradient): the
    /// student's training forward runs there, and the same backend computes the same bits, so
    /// a student equal to its teacher reproduces it exactly.
    fn lifted(&self, device: &B::Device) -> (Params<Autodiff<B>>, Rope<Autodiff<B>>) {
        let lift = |m: &BTreeMap<String, Tensor<B, 2>>| {
            m.iter()
                .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone())))
                .collect()
        };
        let params = Params {
            tensors: lift(&self.params.tensors),
            buffers: lift(&self.params.buffers),
        };
        (params, self.model.rope(device))
    }
}

/// `model`'s forward on `inputs` with `kinds` recorded in every block.
fn teacher_forward<C: LpBackend>(
    model: &Llama,
    params: &Params<C>,
    rope: &Rope<C>,
    inputs: Tensor<C, 2, Int>,
    kinds: &[TapKind],
) -> TeacherOut<C> {
    let mut ctx = ForwardCtx::new(0, 0, false);
    kinds.iter().for_each(|k| {
        ctx.taps.record(*k);
    });
    let logits = model.forward(params, rope, inputs, &mut ctx).detach();
    let taps = ctx
        .taps
        .take_recorded()
        .into_iter()
        .map(|(p, t)| (p, t.detach()))
        .collect();
    TeacherOut { logits, taps }
}

/// Sets `mode`'s teacher signals (from `out`) as replacements in every block of `ctx`.
pub fn intervene<C: Backend>(
    ctx: &mut ForwardCtx<C>,
    mode: Option<Intervention>,
    out: &TeacherOut<C>,
) {
    ctx.intervention = mode;
    if let Some(mode) = mode {
        let kind = replaced_kind(mode);
        for (point, value) in out.taps.iter().filter(|(p, _)| p.kind == kind) {
            ctx.taps.replace(*point, value.clone());
        }
    }
}

/// Running sums of the loss components over a log window's micro-batches, kept on the device
/// (read back once per log step, not once per micro-batch).
struct Sums<B: Backend> {
    n: u64,
    by_name: BTreeMap<&'static str, Tensor<B, 1>>,
}

impl<B: Backend> Default for Sums<B> {
    fn default() -> Self {
        Sums {
            n: 0,
            by_name: BTreeMap::new(),
        }
    }
}

/// KD (+ Teacher Intervention) as the step's objective.
pub struct Distill<B: LpBackend> {
    pub teacher: Teacher<B>,
    pub cfg: DistillConfig,
    /// The run's seed (stochastic intervention draws from it).
    pub seed: u64,
    /// The teacher's weights and RoPE tables on the student's autodiff backend.
    ad: (Params<Autodiff<B>>, Rope<Autodiff<B>>),
    current: RefCell<Option<TeacherOut<Autodiff<B>>>>,
    sums: RefCell<Sums<B>>,
}

impl<B: LpBackend> Distill<B> {
    pub fn new(teacher: Teacher<B>, cfg: DistillConfig, seed: u64, device: &B::Device) -> Self {
        Distill {
            ad: teacher.lifted(device),
            teacher,
            cfg,
            seed,
            current: RefCell::new(None),
            sums: RefCell::new(Sums::default()),
        }
    }

    /// The student's recorded kinds the losses read.
    fn loss_kinds(&self) -> Vec<TapKind> {
        let c = &self.cfg;
        let mut k = Vec::new();
        if c.hidden > 0.0 {
            k.extend([TapKind::Embedded, TapKind::BlockOut]);
        }
        if c.attn_scores > 0.0 {
            k.push(TapKind::AttnScores);
        }
        if c.attn_out > 0.0 {
            k.push(TapKind::AttnOut);
        }
        k
    }

    /// The teacher's signals for `inputs` under `mode`: the losses' and the replaced one.
    pub fn teacher_out(
        &self,
        inputs: Tensor<B, 2, Int>,
        mode: Option<Intervention>,
    ) -> TeacherOut<B> {
        self.teacher.run(inputs, &self.teacher_kinds(mode))
    }

    /// [`Distill::teacher_out`] on the autodiff backend (constants).
    pub fn teacher_out_ad(
        &self,
        inputs: Tensor<Autodiff<B>, 2, Int>,
        mode: Option<Intervention>,
    ) -> TeacherOut<Autodiff<B>> {
        let (params, rope) = &self.ad;
        let kinds = self.teacher_kinds(mode);
        teacher_forward(&self.teacher.model, params, rope, inputs, &kinds)
    }

    fn teacher_kinds(&self, mode: Option<Intervention>) -> Vec<TapKind> {
        let mut kinds = self.loss_kinds();
        kinds.extend(mode.map(replaced_kind));
        kinds
    }

    /// The means of the loss components since the last call (`distill/<name>`), then reset.
    pub fn take_metrics(&self) -> Vec<(String, f64)> {
        let s = std::mem::take(&mut *self.sums.borrow_mut());
        s.by_name
            .into_iter()
            .map(|(k, v)| (format!("distill/{k}"), scalar(v) / s.n.max(1) as f64))
            .collect()
    }
}

fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_data()
        .convert::<f64>()
        .into_vec::<f64>()
        .expect("scalar")[0]
}

impl<B: LpBackend> Objective<Autodiff<B>> for Distill<B> {
    fn name(&self) -> &str {
        "distill"
    }

    fn prepare(&self, batch: &BatchTensors<Autodiff<B>>, ctx: &mut ForwardCtx<Autodiff<B>>) {
        let mode = self.cfg.intervention_at(ctx.step, self.seed);
        let lifted = self.teacher_out_ad(batch.inputs.clone(), mode);
        for k in self.loss_kinds() {
            ctx.taps.record(k);
        }
        intervene(ctx, mode, &lifted);
        *self.current.borrow_mut() = Some(lifted);
    }

    fn loss(
        &self,
        out: &Hidden<'_, Autodiff<B>>,
        batch: &BatchTensors<Autodiff<B>>,
        ctx: &ForwardCtx<Autodiff<B>>,
    ) -> Tensor<Autodiff<B>, 1> {
        let teacher = self
            .current
            .borrow_mut()
            .take()
            .expect("prepare ran before loss");
        let c = &self.cfg;
        let logits = out.logits(ctx);
        let mut parts: Vec<(&'static str, f64, Tensor<Autodiff<B>, 1>)> = Vec::new();
        parts.push((
            "ce",
            c.ce,
            nibble_model::cross_entropy(logits.clone(), batch.targets.clone()),
        ));
        if c.logits > 0.0 {
            let kd = kd_logits(logits, teacher.logits, c.temperature);
            parts.push(("logits", c.logits, kd));
        }
        // Σ over the recorded points of `kinds` of the loss against the teacher's.
        let sum_over =
            |kinds: &[TapKind], f: &dyn Fn(Tensor<_, 4>, Tensor<_, 4>) -> Tensor<_, 1>| {
                let mut total: Option<Tensor<Autodiff<B>, 1>> = None;
                for (p, s) in ctx
                    .taps
                    .recorded()
                    .iter()
                    .filter(|(p, _)| kinds.contains(&p.kind))
                {
                    let t = teacher
                        .taps
                        .get(p)
                        .expect("the teacher recorded every point");
                    let l = f(s.clone(), t.clone());
                    total = Some(match total.take() {
                        Some(a) => a + l,
                        None => l,
                    });
                }
                total.expect("recorded points")
            };
        if c.hidden > 0.0 {
            let l = sum_over(&[TapKind::Embedded, TapKind::BlockOut], &|a, b| mse(a, b));
            parts.push(("hidden", c.hidden, l));
        }
        if c.attn_scores > 0.0 {
            let l = sum_over(&[TapKind::AttnScores], &|a, b| masked_score_mse(a, b));
            parts.push(("attn_scores", c.attn_scores, l));
        }
        if c.attn_out > 0.0 {
            let l = sum_over(&[TapKind::AttnOut], &|a, b| mse(a, b));
            parts.push(("attn_out", c.attn_out, l));
        }
        let mut sums = self.sums.borrow_mut();
        sums.n += 1;
        let mut total: Option<Tensor<Autodiff<B>, 1>> = None;
        for (name, w, l) in parts {
            let v = l.clone().inner().detach();
            let sum = match sums.by_name.remove(name) {
                Some(prev) => prev + v,
                None => v,
            };
            sums.by_name.insert(name, sum);
            if w > 0.0 {
                let l = l * w;
                total = Some(match total.take() {
                    Some(a) => a + l,
                    None => l,
                });
            }
        }
        total.expect("validation keeps a weight > 0")
    }
}
