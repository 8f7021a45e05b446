//! Every schedule is laid out as warmup-stable-decay cycles over absolute steps, so one function
//! evaluates all kinds: constant is one cycle without decay, cosine one cycle whose decay starts
//! right after warmup, WSD one cycle, WSD-S one cycle per budget.

use super::config::{DecayFractionOf, ScheduleConfig};
use nibble_config::KeyError;

/// One warmup-stable-decay cycle over the steps `start .. end` (0-based, `end` exclusive).
///
/// Steps `start .. start + warmup_steps` warm up, `start + warmup_steps .. decay_start` hold the
/// peak, `decay_start .. end` decay (`decay_steps = end − decay_start`, possibly 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    /// First step of the cycle (0, or the previous budget).
    pub start: u64,
    /// Warmup (first cycle) or re-warmup (later cycles) length in steps.
    pub warmup_steps: u64,
    /// First decay step.
    pub decay_start: u64,
    /// Decay length in steps.
    pub decay_steps: u64,
    /// One past the last step of the cycle: the total steps, or the WSD-S budget.
    pub end: u64,
}

/// `fraction · len` rounded to the nearest step (ties away from zero). Rounding, not flooring:
/// products such as 0.29 · 100 = 28.999999999999996 must give 29.
pub(crate) fn fraction_steps(fraction: f64, len: u64) -> u64 {
    (fraction * len as f64).round() as u64
}

/// Lays out the WSD-S cycles from the budgets, checking that each cycle holds its (re-)warmup and
/// its decay. Following spec §6.3: cycle k spans `B_{k−1} .. B_k` (B_{−1} = 0) and decays over
/// `D_k = round(decay_fraction · B_k)` (`budget`) or `round(decay_fraction · (B_k − B_{k−1}))`
/// (`cycle`) steps ending at `B_k`.
pub(crate) fn wsd_s_cycles(cfg: &ScheduleConfig) -> Result<Vec<Cycle>, KeyError> {
    let budgets = cfg.budgets.as_deref().unwrap_or(&[]);
    if budgets.is_empty() {
        return Err(KeyError::new(
            "budgets",
            "needs at least one budget, e.g. [2500, 5000, 10000]",
        ));
    }
    let fraction = cfg.decay_fraction();
    let mut cycles = Vec::with_capacity(budgets.len());
    let mut start = 0u64;
    for (k, &end) in budgets.iter().enumerate() {
        if end <= start {
            return Err(KeyError::new(
                "budgets",
                format!("must be strictly increasing and positive, got {budgets:?}"),
            ));
        }
        let len = end - start;
        let base = match cfg.decay_fraction_of() {
            DecayFractionOf::Budget => end,
            DecayFractionOf::Cycle => len,
        };
        let decay_steps = fraction_steps(fraction, base);
        let (warm_key, warmup_steps) = if k == 0 {
            ("warmup_steps", cfg.warmup_steps)
        } else {
            ("rewarmup_steps", cfg.rewarmup_steps())
        };
        if decay_steps > len {
            return Err(KeyError::new(
                "decay_fraction",
                format!(
                    "budget {end}: its decay of {decay_steps} steps is longer than its cycle \
                     {start}..{end} ({len} steps)"
                ),
            ));
        }
        if warmup_steps.saturating_add(decay_steps) > len {
            return Err(KeyError::new(
                warm_key,
                format!(
                    "budget {end}: {warm_key} ({warmup_steps}) + decay ({decay_steps}) exceed its \
                     cycle {start}..{end} ({len} steps)"
                ),
            ));
        }
        cycles.push(Cycle {
            start,
            warmup_steps,
            decay_start: end - decay_steps,
            decay_steps,
            end,
        });
        start = end;
    }
    Ok(cycles)
}
