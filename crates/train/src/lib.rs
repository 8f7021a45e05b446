//! nibble-train: recipes, the trainer loop, optimizer groups, LR schedules, checkpoints, metrics.

pub mod checkpoint;
pub mod metrics;
pub mod objective;
pub mod optim;
pub mod panics;
pub mod recipe;
pub mod schedule;
pub mod sections;
pub mod step_bench;
pub mod trainer;
