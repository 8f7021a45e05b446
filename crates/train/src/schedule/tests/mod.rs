//! Schedule tests. Expected values are hand-derived from the spec's formulas (§6.1–6.3), written
//! as literals or independent closed forms, never produced by the code under test.

mod boundaries;
mod config_errors;
mod properties;
mod shapes;
mod wsd_s;

use super::{Schedule, ScheduleConfig, ScheduleError};

/// Parses a `[schedule]` body the way a recipe would hold it.
fn parse(body: &str) -> ScheduleConfig {
    toml::from_str(body).unwrap_or_else(|e| panic!("test TOML does not parse: {e}\n{body}"))
}

/// Parses and resolves a schedule that must be valid.
fn build(body: &str, total_steps: u64) -> Schedule {
    Schedule::new(&parse(body), total_steps)
        .unwrap_or_else(|e| panic!("schedule must build: {e}\n{body}"))
}

/// Resolves a schedule that must fail, returning the error.
fn build_err(body: &str, total_steps: u64) -> ScheduleError {
    match Schedule::new(&parse(body), total_steps) {
        Ok(s) => panic!("schedule must not build, got {s:?}\n{body}"),
        Err(e) => e,
    }
}

/// Asserts `actual` matches `expected` to 1e-12 relative (for irrational closed forms).
#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    let tol = 1e-12 * expected.abs().max(1e-300);
    assert!(
        (actual - expected).abs() <= tol,
        "got {actual:e}, expected {expected:e}"
    );
}
