//! `LpLinear`: every projection of the model. Its weight path is `W → techniques (recipe
//! order) → lp_linear(scheme)`: the techniques transform the master weight (N:M mask, learnable
//! quantizer, ...) and may contribute GEMM state (delayed scaling); nibble-ops' quantized linear
//! with its custom backward runs the GEMM (a plain matmul for `f32`).

use std::sync::{Arc, Mutex};

use burn::prelude::*;
use nibble_config::KeyError;
use nibble_ops::{DelayedState, LayerCall, LinearScheme, LpBackend, keys, lp_linear};
use nibble_techniques::{AnyTechnique, DelayedScalingState, LayerSlots, LayerSlotsMut, Technique};

use crate::ctx::ForwardCtx;
use crate::params::Params;

/// One linear layer: its HF module name, the parameter holding its weight (`<name>.weight`, or
/// the embedding for a tied lm_head), the scheme the precision policy gave it, its index in the
/// model (it keys the layer's random streams) and its techniques.
#[derive(Debug, Clone)]
pub struct LpLinear {
    pub name: String,
    pub weight: String,
    pub scheme: Arc<LinearScheme>,
    pub index: u64,
    pub techniques: Vec<AnyTechnique>,
    /// The first update in which the `[qat]` techniques act (0: from the start).
    pub qat_from: u64,
}

impl LpLinear {
    /// A layer whose weight is `<name>.weight`, with the techniques its scheme implies (delayed
    /// scaling's state).
    pub fn new(name: String, scheme: Arc<LinearScheme>, index: u64) -> Self {
        let weight = format!("{name}.weight");
        let techniques = DelayedScalingState::for_scheme(&scheme)
            .map(AnyTechnique::DelayedScaling)
            .into_iter()
            .collect();
        LpLinear {
            name,
            weight,
            scheme,
            index,
            techniques,
            qat_from: 0,
        }
    }

    /// Recipe techniques go before the scheme's own (delayed scaling acts inside the GEMM).
    pub fn with_techniques(mut self, mut before: Vec<AnyTechnique>) -> Self {
        before.append(&mut self.techniques);
        self.techniques = before;
        self
    }

    fn slots<'a, B: Backend>(&'a self, p: &'a Params<B>) -> LayerSlots<'a, B> {
        LayerSlots {
            module: &self.name,
            params: &p.tensors,
            buffers: &p.buffers,
            keep: None,
        }
    }

    /// `x`: `[batch, seq, in]` → `[batch, seq, out]` with the weight from `p` through the
    /// techniques, then the scheme.
    pub fn forward<B: LpBackend>(
        &self,
        x: Tensor<B, 3>,
        p: &Params<B>,
        ctx: &ForwardCtx<B>,
    ) -> Tensor<B, 3> {
        let slots = self.slots(p);
        let at = ctx.step_info();
        let (w, bias) = self.weight_and_bias(p, at);
        let delayed = self
            .techniques
            .iter()
            .find_map(|t| t.gemm_state(&slots, at));
        let y = self.gemm(x, w, ctx.key, ctx.train, delayed);
        match bias {
            Some(b) => y + b.unsqueeze::<3>(),
            None => y,
        }
    }

    /// The codes of the last `[qat]` technique that has a grid, on the weight it receives
    /// (diagnostics), if any acts at `at`.
    pub fn qat_codes<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Option<nibble_techniques::Codes<B>> {
        let mut codes = None;
        self.walk(p, at, &self.techniques, |t, w, slots| {
            if t.section() == "qat" {
                codes = t.codes(&w, slots, at).or(codes.take());
            }
            t.apply(w, slots, at)
        });
        codes
    }

    /// The scales of the grid the layer's weight ends on, when its last weight-changing
    /// technique is a `[qat]` quantizer with one (LSQ, the affine grid, the ternary grids):
    /// what a lossless export stores beside the codes.
    pub fn export_grid<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Option<nibble_techniques::GridScales<B>> {
        let last = self
            .techniques
            .iter()
            .rposition(|t| !matches!(t, AnyTechnique::DelayedScaling(_)))?;
        let t = &self.techniques[last];
        if t.section() != "qat" || !self.acts(t, at) {
            return None;
        }
        let (w, keep) = self.walk(p, at, &self.techniques[..last], |t, w, slots| {
            t.apply(w, slots, at)
        });
        t.grid_scales(&w, &self.slots(p).with_keep(keep), at)
    }

    /// The sum of the acting techniques' auxiliary losses (SR-STE's decay term), each from the
    /// weight that technique receives.
    pub fn aux_loss<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Option<Tensor<B, 1>> {
        let mut total: Option<Tensor<B, 1>> = None;
        self.walk(p, at, &self.techniques, |t, w, slots| {
            if let Some(a) = t.aux_loss(&w, slots, at) {
                total = Some(match total.take() {
                    Some(s) => s + a,
                    None => a,
                });
            }
            t.apply(w, slots, at)
        });
        total
    }

    /// Whether a technique adds a term to the output (Tequila's deadzone bias).
    pub fn has_output_bias(&self) -> bool {
        self.techniques.iter().any(AnyTechnique::adds_output_bias)
    }

    /// The weight the GEMM receives and the sum of the techniques' output biases (`[1, out]`),
    /// each computed from the weight that technique receives.
    pub fn weight_and_bias<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let mut bias: Option<Tensor<B, 2>> = None;
        let (w, _) = self.walk(p, at, &self.techniques, |t, w, slots| {
            let (w, b) = t.apply_with_bias(w, slots, at);
            if let Some(b) = b {
                bias = Some(match bias.take() {
                    Some(a) => a + b,
                    None => b,
                });
            }
            w
        });
        (w, bias)
    }

    /// The weight the GEMM receives: the master weight through every technique.
    pub fn effective_weight<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
    ) -> Tensor<B, 2> {
        self.weight_and_bias(p, at).0
    }

    /// Whether `t` acts at `at`: every technique does, except the `[qat]` ones before
    /// `qat_from`.
    fn acts(&self, t: &AnyTechnique, at: nibble_techniques::StepInfo) -> bool {
        at.step >= self.qat_from || t.section() != "qat"
    }

    /// Runs the techniques of `list` that act at `at` in order from the master weight:
    /// `visit(t, w, slots)` gives the weight the next one receives. Every technique after one
    /// that prunes (an acting N:M mask) sees the kept entries in `slots.keep`, so a quantizer
    /// takes its statistics over them only (spec §7.1). Returns the last weight and the kept
    /// entries after the list.
    fn walk<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
        list: &[AnyTechnique],
        mut visit: impl FnMut(&AnyTechnique, Tensor<B, 2>, &LayerSlots<B>) -> Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let base = self.slots(p);
        let mut keep = None;
        let mut w = p.get(&self.weight);
        for t in list.iter().filter(|t| self.acts(t, at)) {
            let slots = base.with_keep(keep.clone());
            w = visit(t, w, &slots);
            keep = t.keep(&slots, at).or(keep);
        }
        (w, keep)
    }

    /// The weight an export to the serving grid `target` should write for this layer: when the
    /// last technique that changes the weight's value trains on exactly that grid
    /// ([`AnyTechnique::exports_exactly_to`]), the weight that grid receives (the master weight, or what the techniques before
    /// it leave), so the exporter's quantizer (the grid's own function) writes exactly the
    /// trained codes and scales; otherwise the effective weight (re-quantized by the format).
    /// Exporting the effective weight of a grid layer would be lossy: ggml's quantizers (and
    /// recomputed scales in general) are not idempotent on their own dequantized values.
    pub fn export_weight<B: LpBackend>(
        &self,
        p: &Params<B>,
        at: nibble_techniques::StepInfo,
        target: Option<nibble_techniques::ServingGrid>,
    ) -> Tensor<B, 2> {
        let last = self
            .techniques
            .iter()
            .rposition(|t| !matches!(t, AnyTechnique::DelayedScaling(_)));
        let upto = match (last.map(|i| &self.techniques[i]), target) {
            (Some(t), Some(target)) if t.exports_exactly_to(target) => last.unwrap_or(0),
            _ => self.techniques.len(),
        };
        self.walk(p, at, &self.techniques[..upto], |t, w, slots| {
            t.apply(w, slots, at)
        })
        .0
    }

    /// The GEMM alone on a given weight (no techniques; a delayed-scaling scheme needs
    /// `delayed`). `key` is the forward call's key; the layer derives its own.
    pub fn gemm<B: LpBackend>(
        &self,
        x: Tensor<B, 3>,
        w: Tensor<B, 2>,
        key: u64,
        train: bool,
        delayed: Option<Arc<Mutex<DelayedState>>>,
    ) -> Tensor<B, 3> {
        let [b, t, i] = x.dims();
        let o = w.dims()[0];
        let x = x.reshape([b * t, i]);
        let y = if self.scheme.is_identity() {
            x.matmul(w.transpose())
        } else {
            let call = LayerCall {
                key: keys::child(key, self.index),
                record: train,
                delayed,
            };
            lp_linear(x, w, &self.scheme, &call)
        };
        y.reshape([b, t, o])
    }

    /// The techniques' tensors for this layer's weight of `shape`: (full name, shape, kind).
    pub fn slot_layout(
        &self,
        shape: [usize; 2],
    ) -> Result<Vec<(String, nibble_techniques::SlotSpec)>, KeyError> {
        let mut v = Vec::new();
        if let (Some(g), Some(t)) = (
            self.scheme.fwd_hadamard,
            self.techniques.iter().find(|t| t.section() == "sparsity"),
        ) {
            return Err(KeyError::new(
                "sparsity.modules",
                format!(
                    "{}: {} with scheme `{}`, which applies a {g}-point Hadamard to the weight \
                     operand: the transform mixes each group's pruned zeros into every entry, so \
                     the GEMM would not see an N:M weight. Leave this layer out of [sparsity] or \
                     give it a scheme without the forward Hadamard",
                    self.name,
                    t.name(),
                    self.scheme.name
                ),
            ));
        }
        for t in &self.techniques {
            let specs = t.slots(shape).map_err(|m| {
                KeyError::new(t.section(), format!("{}: {}: {m}", self.name, t.name()))
            })?;
            v.extend(
                specs
                    .into_iter()
                    .map(|s| (format!("{}.{}", self.name, s.suffix), s)),
            );
        }
        Ok(v)
    }

    /// Adds this layer's technique tensors to `p`, initialized from its current weight (each
    /// technique sees the weight as the techniques before it leave it).
    pub fn init_slots<B: LpBackend>(&self, p: &mut Params<B>) {
        let mut w = p.get(&self.weight);
        let mut keep = None;
        let at = nibble_techniques::StepInfo {
            step: 0,
            train: false,
        };
        for t in &self.techniques {
            let specs = t
                .slots(w.dims())
                .expect("slots validated when the model was built");
            for (spec, value) in specs.iter().zip(t.init(&w)) {
                assert_eq!(value.dims(), spec.shape, "{}: init shape", t.name());
                p.insert_slot(&format!("{}.{}", self.name, spec.suffix), spec.kind, value);
            }
            let slots = self.slots(p).with_keep(keep.clone());
            w = t.apply(w, &slots, at);
            keep = t.keep(&slots, at).or(keep);
        }
    }

    /// EfficientQAT's conversion ("real quantized" weights): a layer whose quantizer is the
    /// affine grid in its codes form ([`AnyTechnique::AffineCodes`]) gets its float weight
    /// replaced by the integer codes, its zero points rounded and clamped and its steps clamped
    /// (the values the forward uses, so the layer computes bit for bit what it computed before).
    /// Returns whether the layer was converted.
    pub fn convert_to_codes<B: LpBackend>(&self, p: &mut Params<B>) -> Result<bool, String> {
        let Some(grid) = self.techniques.iter().find_map(|t| match t {
            AnyTechnique::AffineCodes(c) => Some(c.grid.clone()),
            _ => None,
        }) else {
            return Ok(false);
        };
        if self.techniques.first().map(AnyTechnique::section) != Some("qat") {
            return Err(format!(
                "{}: the codes replace the weight, so the affine quantizer must act first \
                 (no technique before it)",
                self.name
            ));
        }
        if self.weight != format!("{}.weight", self.name) {
            return Err(format!(
                "{}: its weight is `{}` (tied), which the codes would overwrite",
                self.name, self.weight
            ));
        }
        let (codes, z, s) = grid.encode(&p.get(&self.weight), &self.slots(p));
        p.tensors.insert(self.weight.clone(), codes);
        p.tensors
            .insert(format!("{}.weight_zero_point", self.name), z);
        p.tensors.insert(format!("{}.weight_scale", self.name), s);
        Ok(true)
    }

    /// Block-AP's freeze: the weight replaced by its `[qat]` quantizer's forward weight (on the
    /// grid), so that quantizing it again gives it back.
    pub fn freeze_on_grid<B: LpBackend>(&self, p: &mut Params<B>, at: nibble_techniques::StepInfo) {
        let slots = self.slots(p);
        let w = self
            .techniques
            .iter()
            .filter(|t| t.section() == "qat")
            .fold(p.get(&self.weight), |w, t| t.apply(w, &slots, at))
            .detach();
        p.tensors.insert(self.weight.clone(), w);
    }

    /// Every technique's [`Technique::step_maxima`], concatenated in order.
    pub fn step_maxima(&self) -> Vec<f32> {
        self.techniques
            .iter()
            .flat_map(|t| t.step_maxima())
            .collect()
    }

    /// The reduced maxima back, taken from the front of `v` (as many as each technique gave).
    pub fn set_step_maxima(&self, v: &mut &[f32]) {
        for t in &self.techniques {
            let n = t.step_maxima().len();
            let (mine, rest) = v.split_at(n);
            t.set_step_maxima(mine);
            *v = rest;
        }
    }

    /// After optimizer step `step`: every technique's hook on the updated master weight.
    pub fn end_step<B: LpBackend>(&self, step: u64, p: &mut Params<B>) {
        for t in &self.techniques {
            let w = p.get(&self.weight);
            if let Some(w) = t.project(step, &w, &self.slots(p)) {
                p.tensors.insert(self.weight.clone(), w);
            }
        }
        let w = p.get(&self.weight);
        for t in &self.techniques {
            let slots = LayerSlotsMut {
                module: &self.name,
                buffers: &mut p.buffers,
            };
            t.end_step(step, &w, slots);
        }
    }
}
