//! Taps: named points inside the forward where a caller records internal signals or replaces
//! them (Teacher Intervention swaps a student's attention maps, per-head contexts or attention
//! outputs for a teacher's; feature distillation and block reconstruction read block outputs).
//!
//! Every value is 4-D: attention scores (scaled `q·kᵀ`, before the causal mask) and
//! probabilities `[b, heads, t, t]`, per-head context `[b, heads, t, head_dim]`, the embedding
//! output (`layer` 0), attention block output (o_proj, before the residual add) and block output
//! (the hidden state after the block) `[b, 1, t, d]`. A replacement is detached when it is
//! set: no gradient flows into it, and none flows through the signal it replaced. A recording is
//! the model's own value, before any replacement.

use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TapKind {
    Embedded,
    AttnScores,
    AttnProbs,
    HeadContext,
    AttnOut,
    BlockOut,
}

/// A tap: a kind of signal in one block (`layer` counts blocks from 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TapPoint {
    pub layer: usize,
    pub kind: TapKind,
}

impl TapPoint {
    pub fn new(layer: usize, kind: TapKind) -> Self {
        TapPoint { layer, kind }
    }
}

/// What to record and replace in one forward, and what was recorded.
#[derive(Clone, Debug)]
pub struct Taps<B: Backend> {
    record_kinds: BTreeSet<TapKind>,
    record_points: BTreeSet<TapPoint>,
    replace: BTreeMap<TapPoint, Tensor<B, 4>>,
    recorded: BTreeMap<TapPoint, Tensor<B, 4>>,
}

impl<B: Backend> Default for Taps<B> {
    fn default() -> Self {
        Taps {
            record_kinds: BTreeSet::new(),
            record_points: BTreeSet::new(),
            replace: BTreeMap::new(),
            recorded: BTreeMap::new(),
        }
    }
}

impl<B: Backend> Taps<B> {
    /// Record `kind` in every block.
    pub fn record(&mut self, kind: TapKind) -> &mut Self {
        self.record_kinds.insert(kind);
        self
    }

    /// Record one point.
    pub fn record_at(&mut self, point: TapPoint) -> &mut Self {
        self.record_points.insert(point);
        self
    }

    /// Use `value` instead of the model's own signal at `point` (detached).
    pub fn replace(&mut self, point: TapPoint, value: Tensor<B, 4>) -> &mut Self {
        self.replace.insert(point, value.detach());
        self
    }

    /// Drop every replacement (recordings and requests stay).
    pub fn clear_replacements(&mut self) {
        self.replace.clear();
    }

    /// A recorded value.
    pub fn get(&self, point: TapPoint) -> Option<&Tensor<B, 4>> {
        self.recorded.get(&point)
    }

    /// Every recorded value, by point.
    pub fn recorded(&self) -> &BTreeMap<TapPoint, Tensor<B, 4>> {
        &self.recorded
    }

    /// Takes the recordings out (e.g. a teacher's, to become a student's replacements).
    pub fn take_recorded(&mut self) -> BTreeMap<TapPoint, Tensor<B, 4>> {
        std::mem::take(&mut self.recorded)
    }

    /// Whether the forward must materialize the signal at `point`.
    pub(crate) fn wants(&self, point: TapPoint) -> bool {
        self.record_kinds.contains(&point.kind)
            || self.record_points.contains(&point)
            || self.replace.contains_key(&point)
    }

    /// [`Taps::tap`] if the point is in use, else `own` untouched.
    pub(crate) fn tap_if(&mut self, point: TapPoint, own: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.wants(point) {
            self.tap(point, own)
        } else {
            own
        }
    }

    /// The forward's hook: records `own` if asked, returns the replacement if one is set.
    pub(crate) fn tap(&mut self, point: TapPoint, own: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.record_kinds.contains(&point.kind) || self.record_points.contains(&point) {
            self.recorded.insert(point, own.clone());
        }
        match self.replace.get(&point) {
            Some(r) => {
                assert_eq!(
                    r.dims(),
                    own.dims(),
                    "replacement at {point:?} has the wrong shape"
                );
                r.clone()
            }
            None => own,
        }
    }
}
