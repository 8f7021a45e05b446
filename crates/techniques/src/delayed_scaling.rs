//! FP8 delayed scaling's per-layer state on the technique seam. The amax histories and scales of
//! the layer's three tensor roles (x, w, dy) are buffers (`fp8_amax_history` `[3, len]`,
//! `fp8_scale` `[1, 3]`), so they are checkpointed like any other technique state. The GEMM
//! itself (nibble-ops' delayed-scaling path) stages amaxes into a host-side working copy during
//! the step; the end-of-step hook rolls the histories (Transformer Engine's rule, in
//! `nibble_ops::delayed`) and writes the buffers back. The working copy is reloaded from the
//! buffers whenever it is not known to match them (first call, after a resume).

use std::sync::{Arc, Mutex};

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_ops::delayed::fp8_max;
use nibble_ops::{DelayedScaling, DelayedState, LinearScheme, LpBackend};

use crate::slots::{LayerSlots, LayerSlotsMut};
use crate::technique::{SlotKind, SlotSpec, StepInfo, Technique};

const HISTORY: &str = "fp8_amax_history";
const SCALE: &str = "fp8_scale";

#[derive(Clone, Debug)]
pub struct DelayedScalingState {
    cfg: DelayedScaling,
    /// FP8 maxima of the x, w and dy operands.
    maxima: [f32; 3],
    work: Arc<Mutex<DelayedState>>,
    /// The step whose buffers the working copy holds (None: reload before use).
    synced: Arc<Mutex<Option<u64>>>,
}

impl PartialEq for DelayedScalingState {
    fn eq(&self, other: &Self) -> bool {
        self.cfg == other.cfg && self.maxima == other.maxima
    }
}

impl DelayedScalingState {
    /// The state for a layer whose scheme has delayed scaling (None otherwise).
    pub fn for_scheme(scheme: &LinearScheme) -> Option<Self> {
        let cfg = scheme.delayed?;
        // Validation guarantees FP8 specs on every operand of a delayed-scaling scheme.
        let [x, w, dy, ..] = scheme.operand_specs();
        let max = |q: Option<nibble_formats::spec::QuantSpec>| {
            fp8_max(q.expect("delayed scaling has FP8 operand specs").element)
        };
        Some(DelayedScalingState {
            cfg,
            maxima: [max(x), max(w), max(dy)],
            work: Arc::new(Mutex::new(DelayedState::new(&cfg))),
            synced: Arc::new(Mutex::new(None)),
        })
    }

    fn len(&self) -> usize {
        self.cfg.history_len.max(1)
    }

    /// The working state the layer's GEMM stages amaxes into, matching the buffers of `at.step`.
    pub fn gemm_state<B: LpBackend>(
        &self,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Arc<Mutex<DelayedState>> {
        let mut synced = self.synced.lock().expect("delayed-scaling sync");
        if *synced != Some(at.step) {
            let hist = host(slots.buffer(HISTORY));
            let scale = host(slots.buffer(SCALE));
            let mut guard = self.work.lock().expect("delayed-scaling state");
            let st = &mut *guard;
            let n = self.len();
            for (r, role) in [&mut st.x, &mut st.w, &mut st.dy].into_iter().enumerate() {
                role.history.copy_from_slice(&hist[r * n..(r + 1) * n]);
                role.scale = scale[r];
            }
            *synced = Some(at.step);
        }
        self.work.clone()
    }
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 buffer")
}

impl Technique for DelayedScalingState {
    fn name(&self) -> &'static str {
        "fp8_delayed_scaling"
    }

    fn slots(&self, _: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        Ok(vec![
            SlotSpec {
                suffix: HISTORY,
                shape: [3, self.len()],
                kind: SlotKind::Buffer,
            },
            SlotSpec {
                suffix: SCALE,
                shape: [1, 3],
                kind: SlotKind::Buffer,
            },
        ])
    }

    /// Transformer Engine's start: empty histories, scale 1.
    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        let d = weight.device();
        vec![Tensor::zeros([3, self.len()], &d), Tensor::ones([1, 3], &d)]
    }

    /// The weight is untouched: delayed scaling acts inside the GEMM.
    fn apply<B: LpBackend>(&self, w: Tensor<B, 2>, _: &LayerSlots<B>, _: StepInfo) -> Tensor<B, 2> {
        w
    }

    /// The amaxes staged this step (slot 0 of the x, w and dy histories).
    fn step_maxima(&self) -> Vec<f32> {
        let st = self.work.lock().expect("delayed-scaling state");
        vec![st.x.history[0], st.w.history[0], st.dy.history[0]]
    }

    fn set_step_maxima(&self, maxima: &[f32]) {
        let mut guard = self.work.lock().expect("delayed-scaling state");
        let st = &mut *guard;
        for (role, m) in [&mut st.x, &mut st.w, &mut st.dy].into_iter().zip(maxima) {
            role.history[0] = *m;
        }
    }

    fn end_step<B: LpBackend>(
        &self,
        step: u64,
        weight: &Tensor<B, 2>,
        mut slots: LayerSlotsMut<B>,
    ) {
        let mut guard = self.work.lock().expect("delayed-scaling state");
        let st = &mut *guard;
        let roles = [&mut st.x, &mut st.w, &mut st.dy];
        let (mut hist, mut scale) = (Vec::new(), Vec::new());
        for (role, max) in roles.into_iter().zip(self.maxima) {
            role.update(&self.cfg, max);
            hist.extend_from_slice(&role.history);
            scale.push(role.scale);
        }
        let d = weight.device();
        let n = self.len();
        slots.set_buffer(
            HISTORY,
            Tensor::from_data(TensorData::new(hist, [3, n]), &d),
        );
        slots.set_buffer(SCALE, Tensor::from_data(TensorData::new(scale, [1, 3]), &d));
        *self.synced.lock().expect("delayed-scaling sync") = Some(step);
    }
}
