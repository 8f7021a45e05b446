//! The technique trait and the description of the tensors a technique keeps.

use burn::prelude::*;
use nibble_ops::LpBackend;

use crate::slots::{LayerSlots, LayerSlotsMut};

/// Trainable parameter (in the optimizer's `techniques` group unless a recipe group claims it)
/// or buffer (non-trainable state: masks, histories; never gets a gradient).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotKind {
    Param,
    Buffer,
}

/// One tensor a technique keeps for a layer: stored as `<module>.<suffix>` (e.g.
/// `model.layers.3.mlp.up_proj.weight_scale`), shape `[rows, cols]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotSpec {
    pub suffix: &'static str,
    pub shape: [usize; 2],
    pub kind: SlotKind,
}

/// A weight's codes on a technique's grid (`[out, in]`) and the grid's lowest and highest code.
pub struct Codes<B: Backend> {
    pub codes: Tensor<B, 2>,
    pub lo: f32,
    pub hi: f32,
}

impl<B: Backend> Codes<B> {
    /// Ternary codes −1, 0, +1.
    pub fn ternary(codes: Tensor<B, 2>) -> Self {
        Codes {
            codes,
            lo: -1.0,
            hi: 1.0,
        }
    }

    /// Whether the grid is ternary (its diagnostics are the deadzone's).
    pub fn is_ternary(&self) -> bool {
        self.lo == -1.0 && self.hi == 1.0
    }
}

/// A weight's grid as a serving format stores it: a scale (and, asymmetric, an integer zero
/// point) per set of `group` consecutive inputs of a row, `[out, in/group]`; the forward weight
/// is `(code − zero)·scale` with codes `lo..=hi`.
pub struct GridScales<B: Backend> {
    pub group: usize,
    pub scales: Tensor<B, 2>,
    pub zeros: Option<Tensor<B, 2>>,
    pub lo: i32,
    pub hi: i32,
}

impl<B: Backend> GridScales<B> {
    /// A ternary grid (codes −1..=1, no zero points) with α per set of `sets` (`[sets, 1]`) of a
    /// weight of `shape`.
    pub(crate) fn ternary(sets: crate::ScaleSets, alpha: Tensor<B, 2>, shape: [usize; 2]) -> Self {
        let (scales, group) = sets.per_row(alpha, shape);
        GridScales {
            group,
            scales,
            zeros: None,
            lo: -1,
            hi: 1,
        }
    }
}

/// What a technique knows of the call it runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepInfo {
    /// Optimizer steps completed before this forward (0 during the first step).
    pub step: u64,
    /// Training forward (records statistics) or evaluation.
    pub train: bool,
}

/// A transformation of one layer's weight before its GEMM scheme. Implementations are small
/// per-layer values (configuration plus, at most, host-side caches); every tensor they keep is a
/// slot in the model's `Params`, so checkpoints and resume need nothing technique-specific.
pub trait Technique {
    /// Short name for logs and errors (`nm_ste`, `lsq`, ...).
    fn name(&self) -> &'static str;

    /// The tensors this technique keeps for a layer whose weight has `shape` (`[out, in]`);
    /// an error names what does not fit (e.g. `in` not divisible by M).
    fn slots(&self, shape: [usize; 2]) -> Result<Vec<SlotSpec>, String>;

    /// Initial values of the slots, in [`Technique::slots`] order, from the layer's initial
    /// weight (a fresh run; a resumed run loads them from the checkpoint instead).
    fn init<B: LpBackend>(&self, weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>>;

    /// The weight the next technique (or the GEMM) sees. Gradients reach `w` and this
    /// technique's parameters through burn autodiff.
    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> Tensor<B, 2>;

    /// [`Technique::apply`] and, optionally, a per-output-channel term `[1, out]` added to the
    /// layer's output, from the weight this technique receives (Tequila's deadzone bias, which
    /// shares the grid `apply` computes); gradients flow through both by autodiff. Default: no
    /// term.
    fn apply_with_bias<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        slots: &LayerSlots<B>,
        at: StepInfo,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        (self.apply(w, slots, at), None)
    }

    /// The grid codes of the weight this technique receives, for diagnostics (deadzone, flips,
    /// clipping): ternary −1/0/+1 or the integer codes with the grid's ends. Default: none.
    fn codes<B: LpBackend>(
        &self,
        _w: &Tensor<B, 2>,
        _slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Option<Codes<B>> {
        None
    }

    /// The scales of the grid this technique puts the weight it receives on (learned and
    /// ternary grids), for exports that store the trained grid as it is. Default: none.
    fn grid_scales<B: LpBackend>(
        &self,
        _w: &Tensor<B, 2>,
        _slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Option<GridScales<B>> {
        None
    }

    /// A term added to the training objective for this layer, from the weight the technique
    /// receives (SR-STE's `(λ/2)·‖(1 − m)⊙W‖²`, whose gradient is its sparse-refined term).
    /// Default: none.
    fn aux_loss<B: LpBackend>(
        &self,
        _w: &Tensor<B, 2>,
        _slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Option<Tensor<B, 1>> {
        None
    }

    /// The entries of the weight this technique leaves for the techniques after it (1 kept, 0
    /// pruned) at `at`, when it prunes (an acting N:M mask); they see it as
    /// [`LayerSlots::keep`]. Default: none.
    fn keep<B: LpBackend>(&self, _slots: &LayerSlots<B>, _at: StepInfo) -> Option<Tensor<B, 2>> {
        None
    }

    /// After optimizer step `step` (1-based: the updates now done), a replacement for the
    /// updated master weight, before the end-of-step hooks (the hard-mask phase zeroes pruned
    /// weights). Default: none.
    fn project<B: LpBackend>(
        &self,
        _step: u64,
        _w: &Tensor<B, 2>,
        _slots: &LayerSlots<B>,
    ) -> Option<Tensor<B, 2>> {
        None
    }

    /// After optimizer step `step` (1-based: the number of steps now done), on the updated
    /// master weight: roll histories, recompute masks, ... Default: nothing.
    fn end_step<B: LpBackend>(&self, _step: u64, _weight: &Tensor<B, 2>, _slots: LayerSlotsMut<B>) {
    }

    /// Statistics of this step that data-parallel peers reduce by maximum before `end_step`
    /// (FP8 delayed scaling's staged amaxes, as Transformer Engine reduces them), so every peer
    /// rolls the same history. Default: none.
    fn step_maxima(&self) -> Vec<f32> {
        Vec::new()
    }

    /// The reduced values of [`Technique::step_maxima`], as many as it gave.
    fn set_step_maxima(&self, _maxima: &[f32]) {}
}

/// A serving-grid forward computed on the host: `grid(values, rows, cols)` of the row-major
/// weight, uploaded, with a straight-through gradient. The result is the grid's weight bit for
/// bit: `ŵ − sg(w − w)` (w − w is +0 for finite w, and x − (+0) = x for every x, −0 included;
/// `w + sg(ŵ − w)` would round ŵ − w), and its gradient w.r.t. w is the identity.
pub(crate) fn host_grid<B: LpBackend>(
    w: Tensor<B, 2>,
    grid: impl FnOnce(&[f32], usize, usize) -> Vec<f32>,
) -> Tensor<B, 2> {
    let (host, [rows, cols]) = nibble_ops::host::to_host(w.clone());
    let q = nibble_ops::host::from_host::<B>(grid(&host, rows, cols), [rows, cols], &w.device());
    q - (w.clone().detach() - w)
}
