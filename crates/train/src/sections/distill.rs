//! `[distill]`: a teacher in the same step and the knowledge-distillation losses, with Teacher
//! Intervention (Kim et al., EACL 2023) as a first stage: for `intervention_steps` updates every
//! student block takes the teacher's attention probabilities (TI-M), per-head contexts (TI-C) or
//! attention block output (TI-O) instead of its own, so quantization error cannot compound
//! across blocks; then plain KD-QAT (stage 2).

use serde::{Deserialize, Serialize};

use nibble_model::Intervention;
use nibble_ops::keys::child;

use super::InitConfig;
use crate::recipe::KeyError;

/// `none` (default: KD only) | `map` | `context` | `output` | `gradual` (O for the first sixth
/// of stage 1, C until a third, then M: the paper's TI-G) | `inverted` (M, C, O at thirds) |
/// `stochastic` (a uniformly drawn mode per update, from a counter-based key).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InterventionMode {
    #[default]
    None,
    Map,
    Context,
    Output,
    Gradual,
    Inverted,
    Stochastic,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DistillConfig {
    /// The teacher, one source as in `[init]`: `run` (a Nibble run's newest checkpoint), `gguf`,
    /// `hf` or `pretrained`. It runs in f32 without autograd.
    pub teacher: InitConfig,
    /// Softmax temperature of the logit loss.
    pub temperature: f64,
    /// Weight of the logit loss `T²·KL(p_T ‖ p_S)` (forward KL, the soft cross-entropy less the
    /// teacher's entropy: the same gradient, 0 for a student equal to its teacher).
    pub logits: f64,
    /// Weight of the ground-truth next-token cross-entropy.
    pub ce: f64,
    /// Weight of Σ over the embedding output and every block output of the hidden-state MSE.
    pub hidden: f64,
    /// Weight of Σ over blocks of the attention-score MSE (pre-softmax, causally masked entries
    /// left out).
    pub attn_scores: f64,
    /// Weight of Σ over blocks of the attention block output MSE (o_proj, before the residual).
    pub attn_out: f64,
    /// Teacher Intervention's mode in stage 1.
    pub intervention: InterventionMode,
    /// Stage 1's length in updates (the reference: 60, 120 for small tasks).
    pub intervention_steps: u64,
    /// Stage 2 restarts the LR schedule (warmup included) over its own length, as the reference
    /// code does; stage 1 then runs the schedule over its own length too. Default: one schedule
    /// over the whole run.
    pub rewarmup: bool,
}

impl Default for DistillConfig {
    fn default() -> Self {
        DistillConfig {
            teacher: InitConfig::default(),
            temperature: 1.0,
            logits: 1.0,
            ce: 0.0,
            hidden: 0.0,
            attn_scores: 0.0,
            attn_out: 0.0,
            intervention: InterventionMode::None,
            intervention_steps: 0,
            rewarmup: false,
        }
    }
}

impl DistillConfig {
    /// Whether the recipe distills (a teacher is set).
    pub fn enabled(&self) -> bool {
        self.teacher.source().is_some()
    }

    /// Stage 1's length (0 without intervention).
    pub fn stage1(&self) -> u64 {
        match self.intervention {
            InterventionMode::None => 0,
            _ => self.intervention_steps,
        }
    }

    pub fn validate(&self, steps: u64) -> Result<(), KeyError> {
        self.teacher.validate().map_err(|e| e.within("teacher"))?;
        if !self.enabled() {
            return match *self == DistillConfig::default() {
                true => Ok(()),
                false => Err(KeyError::new(
                    "teacher",
                    "the [distill] keys need a teacher: set one of teacher.run, teacher.gguf, \
                     teacher.hf, teacher.pretrained",
                )),
            };
        }
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(KeyError::new("temperature", "must be finite and > 0"));
        }
        nibble_config::f32_values([
            ("temperature", self.temperature),
            ("logits", self.logits),
            ("ce", self.ce),
            ("hidden", self.hidden),
            ("attn_scores", self.attn_scores),
            ("attn_out", self.attn_out),
        ])?;
        let weights = [
            ("logits", self.logits),
            ("ce", self.ce),
            ("hidden", self.hidden),
            ("attn_scores", self.attn_scores),
            ("attn_out", self.attn_out),
        ];
        for (k, w) in weights {
            if !(w.is_finite() && w >= 0.0) {
                return Err(KeyError::new(
                    k,
                    format!("must be finite and ≥ 0 (got {w})"),
                ));
            }
        }
        if weights.iter().all(|(_, w)| *w == 0.0) {
            return Err(KeyError::new(
                "logits",
                "every loss weight is 0: nothing to train",
            ));
        }
        match (self.intervention, self.intervention_steps) {
            (InterventionMode::None, 0) => Ok(()),
            (InterventionMode::None, _) => Err(KeyError::new(
                "intervention_steps",
                "set an intervention mode for stage 1",
            )),
            (_, 0) => Err(KeyError::new(
                "intervention_steps",
                "an intervention needs a stage 1 of at least one update",
            )),
            (_, s) if s >= steps && steps > 0 => Err(KeyError::new(
                "intervention_steps",
                format!("stage 1 ({s} updates) must leave stage 2 some of the run's {steps}"),
            )),
            _ => Ok(()),
        }
    }

    /// The intervention at update `step` (0-based) of a run seeded `seed`: stage 1 only.
    pub fn intervention_at(&self, step: u64, seed: u64) -> Option<Intervention> {
        let s = self.stage1();
        if step >= s {
            return None;
        }
        use Intervention::{Context, Map, Output};
        Some(match self.intervention {
            InterventionMode::None => return None,
            InterventionMode::Map => Map,
            InterventionMode::Context => Context,
            InterventionMode::Output => Output,
            // t < s/6: O; t < s/3: C; then M (exact in integers: 6t < s, 3t < s).
            InterventionMode::Gradual if 6 * step < s => Output,
            InterventionMode::Gradual if 3 * step < s => Context,
            InterventionMode::Gradual => Map,
            InterventionMode::Inverted if 3 * step < s => Map,
            InterventionMode::Inverted if 3 * step < 2 * s => Context,
            InterventionMode::Inverted => Output,
            InterventionMode::Stochastic => match child(child(seed, 0x7469_6d6f_6465), step) % 3 {
                0 => Map,
                1 => Context,
                _ => Output,
            },
        })
    }
}
