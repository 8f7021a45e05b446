//! The training loop: recipe → data → model → AdamW steps with a schedule, evaluation, logging
//! and checkpoints; `resume` continues bit-identically from the newest checkpoint. One file per
//! lifecycle piece: run_dir, parts (with fit and rules, its checks), resume, run (the loop),
//! eval, step, report, summary.

mod block_ap;
mod error;
mod eval;
mod fit;
mod initial;
mod launch;
mod parts;
mod peer;
mod preflight;
mod qat_stats;
mod report;
mod resume;
mod rules;
mod run;
mod run_dir;
mod sparsity_stats;
mod step;
mod summary;
mod teacher;

pub use error::TrainError;
pub use eval::{EvalResult, evaluate};
pub use initial::{Initial, Origin};
pub use parts::Parts;
pub use peer::{Peer, Watch};
pub use preflight::check;
pub use run::{TrainOptions, TrainSummary, train};
pub use step::{StepSetup, StepStats, train_step};
pub use summary::{RunSummaryFile, SUMMARY_FILE, recipe_hash};
