//! A `[schedule]` resolved against the run length: a pure function from step to LR.

use super::config::{ScheduleConfig, ScheduleKind};
use super::cycles::{Cycle, fraction_steps, wsd_s_cycles};
use super::error::ScheduleError;
use super::shape::{DecayCurve, DecayShape};

/// Which part of the schedule a step is in, for logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Linear warmup (first cycle) or WSD-S re-warmup (later cycles).
    Warmup,
    /// At the peak LR.
    Stable,
    /// Decaying towards `min_ratio · peak` (all post-warmup steps of `cosine`).
    Decay,
    /// `step >= total_steps`: no update uses this step.
    Done,
}

impl Phase {
    /// Lower-case name for logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Warmup => "warmup",
            Self::Stable => "stable",
            Self::Decay => "decay",
            Self::Done => "done",
        }
    }
}

/// The LR schedule of one run. Stateless: the LR depends only on the config, `total_steps` and
/// the step, so resuming needs nothing but the step count.
///
/// Convention: `step` is the 0-based index of the optimizer update; update `t` (t = 0 ..
/// total_steps − 1) uses `lr(t, peak)`. This is the spec's `s` verbatim, so with
/// `warmup_init = 0` update 0 runs at LR 0, warmup updates run at `t/W · peak`, update `W` is the
/// first at the peak, and a decay of `D` steps uses progress `p = 0, 1/D, …, (D−1)/D`; the decay's
/// endpoint `p = 1` (exactly `min_ratio · peak`) is the value at `step = total_steps` (or at the
/// WSD-S budget, which is the first step of the next cycle). Steps past `total_steps` are clamped
/// to it.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    kind: ScheduleKind,
    total_steps: u64,
    warmup_init: f64,
    curve: DecayCurve,
    cycles: Vec<Cycle>,
    checkpoints: Vec<u64>,
}

impl Schedule {
    /// Validates `cfg` and lays it out over `total_steps` updates. Errors instead of clamping when
    /// warmup and decay do not fit (spec §7.3: `warmup + decay ≤ cycle`).
    pub fn new(cfg: &ScheduleConfig, total_steps: u64) -> Result<Self, ScheduleError> {
        cfg.validate()?;
        if total_steps == 0 {
            return Err(ScheduleError::NoSteps);
        }
        let warmup = cfg.warmup_steps;
        let one_cycle = |decay_steps: u64| Cycle {
            start: 0,
            warmup_steps: warmup,
            decay_start: total_steps - decay_steps,
            decay_steps,
            end: total_steps,
        };
        let mut curve = DecayCurve {
            shape: cfg.decay_shape(),
            min_ratio: cfg.min_ratio(),
            half_life: cfg.exp_half_life,
        };
        let mut checkpoints = Vec::new();
        let cycles = match cfg.kind {
            ScheduleKind::Constant => {
                if warmup > total_steps {
                    return Err(ScheduleError::does_not_fit(
                        "warmup_steps",
                        total_steps,
                        format!("warmup of {warmup} steps is longer than the run"),
                    ));
                }
                vec![one_cycle(0)]
            }
            ScheduleKind::Cosine => {
                if warmup >= total_steps {
                    return Err(ScheduleError::does_not_fit(
                        "warmup_steps",
                        total_steps,
                        format!("cosine needs at least one step after a warmup of {warmup} steps"),
                    ));
                }
                curve.shape = DecayShape::Cosine;
                vec![one_cycle(total_steps - warmup)]
            }
            ScheduleKind::Wsd => {
                let (key, decay) = match cfg.decay_steps {
                    Some(d) => ("decay_steps", d),
                    None => (
                        "decay_fraction",
                        fraction_steps(cfg.decay_fraction(), total_steps),
                    ),
                };
                if decay > total_steps {
                    return Err(ScheduleError::does_not_fit(
                        key,
                        total_steps,
                        format!("decay of {decay} steps is longer than the run"),
                    ));
                }
                if warmup.saturating_add(decay) > total_steps {
                    return Err(ScheduleError::does_not_fit(
                        "warmup_steps",
                        total_steps,
                        format!("warmup ({warmup}) + decay ({decay}) exceed the run"),
                    ));
                }
                vec![one_cycle(decay)]
            }
            ScheduleKind::WsdS => {
                let cycles = wsd_s_cycles(cfg)?;
                let last = cycles.last().map_or(0, |c| c.end);
                if last != total_steps {
                    return Err(ScheduleError::does_not_fit(
                        "budgets",
                        total_steps,
                        format!("the last budget ({last}) must equal the run's total steps"),
                    ));
                }
                checkpoints = cycles.iter().map(|c| c.end).collect();
                cycles
            }
        };
        Ok(Self {
            kind: cfg.kind,
            total_steps,
            warmup_init: cfg.warmup_init,
            curve,
            cycles,
            checkpoints,
        })
    }

    /// LR multiplier in [0, 1] for update `step` (see the type's convention).
    pub fn factor(&self, step: u64) -> f64 {
        let s = step.min(self.total_steps);
        if s == self.total_steps {
            return self.decay_end(self.cycles.len() - 1);
        }
        let k = self.cycles.partition_point(|c| c.end <= s);
        let c = &self.cycles[k];
        let into_cycle = s - c.start;
        if into_cycle < c.warmup_steps {
            let from = if k == 0 {
                self.warmup_init
            } else {
                self.decay_end(k - 1)
            };
            return from + (1.0 - from) * (into_cycle as f64 / c.warmup_steps as f64);
        }
        if s < c.decay_start {
            return 1.0;
        }
        self.curve.factor(s - c.decay_start, c.decay_steps)
    }

    /// LR for update `step`: `peak_lr · factor(step)`.
    pub fn lr(&self, step: u64, peak_lr: f64) -> f64 {
        peak_lr * self.factor(step)
    }

    /// Phase of update `step`, for logging.
    pub fn phase(&self, step: u64) -> Phase {
        if step >= self.total_steps {
            return Phase::Done;
        }
        let c = &self.cycles[self.cycles.partition_point(|c| c.end <= step)];
        if step - c.start < c.warmup_steps {
            Phase::Warmup
        } else if step < c.decay_start {
            Phase::Stable
        } else {
            Phase::Decay
        }
    }

    /// WSD-S budgets: after this many completed updates (i.e. right after update `B − 1`, before
    /// update `B` re-warms) the weights are fully decayed and the trainer must write a checkpoint.
    /// Empty for the other kinds. The last one is `total_steps`.
    pub fn checkpoint_steps(&self) -> &[u64] {
        &self.checkpoints
    }

    /// Whether a checkpoint is due once `completed_steps` updates are done.
    pub fn is_checkpoint_step(&self, completed_steps: u64) -> bool {
        self.checkpoints.binary_search(&completed_steps).is_ok()
    }

    /// The resolved cycles (one for every kind but WSD-S), in absolute steps.
    pub fn cycles(&self) -> &[Cycle] {
        &self.cycles
    }

    /// The run length the schedule was built for.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// The schedule family.
    pub fn kind(&self) -> ScheduleKind {
        self.kind
    }

    /// Multiplier that cycle `k`'s decay ends on (1 when it has no decay).
    fn decay_end(&self, k: usize) -> f64 {
        self.curve.end(self.cycles[k].decay_steps)
    }
}
