use std::path::PathBuf;

use crate::checkpoint::CheckpointError;
use crate::recipe::{KeyError, RecipeError, ResolvedRecipe};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid recipe: {0}")]
    Config(#[from] KeyError),
    /// A `Config` error located in the recipe (file:line:column or `--set`), see [`located`].
    ///
    /// [`located`]: TrainError::located
    #[error(transparent)]
    Recipe(#[from] RecipeError),
    #[error(transparent)]
    Data(#[from] nibble_data::DataError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{0} already holds checkpoints; pass --resume to continue it, or choose another run.name"
    )]
    RunExists(PathBuf),
    #[error("--resume: {0} has no checkpoint to resume from")]
    NothingToResume(PathBuf),
    #[error("--resume: no intact checkpoint in {run}: {damaged}")]
    NoIntactCheckpoint { run: PathBuf, damaged: String },
    #[error(
        "--resume: the recipe differs from the one this run was started with ({dir}); refusing to mix runs"
    )]
    RecipeMismatch { dir: PathBuf },
    /// `step`: the update whose loss it is, counted from 1 as checkpoint directories count.
    #[error(
        "update {step}: the training loss is {loss} (not finite); stopping before anything is saved"
    )]
    NonFiniteLoss { step: u64, loss: f64 },
    /// `step`: the updates done when the evaluation ran (the checkpoint it would have been).
    #[error(
        "step {step}: the validation loss is {loss} (not finite); stopping without saving this \
         step as a checkpoint (the last good one stays the newest)"
    )]
    NonFiniteValLoss { step: u64, loss: f64 },
}

impl TrainError {
    /// The CLI's exit code: 2 for a bad recipe or arguments (refused before anything is
    /// written), 1 for a failure while working.
    pub fn exit_code(&self) -> u8 {
        match self {
            TrainError::Config(_)
            | TrainError::Recipe(_)
            | TrainError::RunExists(_)
            | TrainError::NothingToResume(_)
            | TrainError::RecipeMismatch { .. } => 2,
            _ => 1,
        }
    }

    /// A `Config` error as the file:line:column (or `--set`) of its key in `recipe`.
    pub fn located(self, recipe: &ResolvedRecipe) -> TrainError {
        match self {
            TrainError::Config(e) => TrainError::Recipe(recipe.locate_error(e)),
            other => other,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}
