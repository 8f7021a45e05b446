//! Where scalars go: tensorboard event files and `metrics.jsonl`, behind one trait.

mod jsonl;
mod tensorboard;

pub use jsonl::JsonlSink;
pub use tensorboard::{TensorboardSink, truncate_events};

/// A destination for scalar metrics.
pub trait Sink {
    /// Record `values` (tag, value) at `step`.
    fn scalars(&mut self, step: u64, values: &[(&str, f64)]) -> std::io::Result<()>;
    /// Make everything written so far durable.
    fn flush(&mut self) -> std::io::Result<()>;
}
