//! Errors of the `[schedule]` section: what the recipe loader maps to a file, line and key.

use nibble_config::KeyError;

/// Why a [`Schedule`](super::Schedule) could not be built from a config and a run length.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The section is invalid on its own (the error of
    /// [`ScheduleConfig::validate`](super::ScheduleConfig::validate)).
    #[error("[schedule] {0}")]
    Config(#[from] KeyError),
    /// The run has no steps.
    #[error("total_steps must be at least 1")]
    NoSteps,
    /// The section is valid but does not fit the run length (`[run] steps`). `key` names the
    /// `[schedule]` key in conflict with it.
    #[error("[schedule] {key} does not fit total_steps = {total_steps}: {message}")]
    DoesNotFit {
        /// The `[schedule]` key in conflict with the run length.
        key: String,
        /// The run length the schedule was built for.
        total_steps: u64,
        /// The conflict, with the numbers involved.
        message: String,
    },
}

impl ScheduleError {
    pub(crate) fn does_not_fit(key: &str, total_steps: u64, message: impl Into<String>) -> Self {
        Self::DoesNotFit {
            key: key.to_owned(),
            total_steps,
            message: message.into(),
        }
    }
}
