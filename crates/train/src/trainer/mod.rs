//! The training loop: recipe → data → model → AdamW steps with a schedule, evaluation, logging
//! and checkpoints; `resume` continues bit-identically from the newest checkpoint.

mod error;
mod eval;
mod run;
mod step;

pub use error::TrainError;
pub use eval::{EvalResult, evaluate};
pub use run::{RunSummaryFile, SUMMARY_FILE, TrainOptions, TrainSummary, recipe_hash, train};
pub use step::{StepStats, train_step};
