//! nibble-sweep: ablation sweeps over recipes (grid expansion, skip/resume execution) and their
//! reports (Markdown and CSV tables, PNG plots), rebuilt from run directories alone.

pub mod aggregate;
pub mod collect;
pub mod config;
pub mod error;
pub mod expand;
pub mod failure;
pub mod flatten;
pub mod meta;
pub mod plot;
pub mod readme;
pub mod report;
pub mod runner;
pub mod state;
pub mod stats;
pub mod table;

pub use config::SweepFile;
pub use error::SweepError;
pub use expand::{Plan, PlannedRun};
pub use report::{Report, report};
pub use runner::{SweepReport, TrainFn, execute, states};
