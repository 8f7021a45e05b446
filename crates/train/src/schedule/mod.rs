//! Learning-rate schedules (spec `qat-sparsity-schedules.md` §6): constant, cosine, WSD and WSD-S.
//!
//! The recipe's `[schedule]` section is a [`ScheduleConfig`]; [`Schedule::new`] resolves it
//! against the run length and [`Schedule::lr`] maps a 0-based update index and the peak LR
//! (`[optim] lr`) to the LR of that update. The schedule holds no state, so a resumed run gets
//! the same LR bits from the step count alone.

mod config;
mod cycles;
mod error;
mod resolved;
mod shape;

pub use config::{DEFAULT_DECAY_FRACTION, DecayFractionOf, ScheduleConfig, ScheduleKind};
pub use cycles::Cycle;
pub use error::ScheduleError;
pub use resolved::{Phase, Schedule};
pub use shape::DecayShape;

#[cfg(test)]
mod tests;
