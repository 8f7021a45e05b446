//! nibble-train: recipes, the trainer loop, optimizer groups, LR schedules, checkpoints, metrics.

pub mod recipe;
pub mod schedule;
