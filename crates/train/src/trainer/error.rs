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
    /// A data-parallel peer failed (an error or a panic): the run stops.
    #[error("data-parallel peer {rank} failed: {message}")]
    PeerFailed { rank: usize, message: String },
    /// A peer waited in a collective operation past `[distributed] timeout_secs`: another peer
    /// died or hung.
    #[error(
        "data-parallel peer {rank} waited {secs:.0} s for the others at step {step} (a peer died \
         or hung; [distributed] timeout_secs): stopping"
    )]
    PeerLost { rank: usize, step: u64, secs: f64 },
    /// The peers' parameters differ (`[distributed] check_every`).
    #[error("step {step}: the data-parallel peers hold different parameters")]
    PeersDiverged { step: u64 },
    /// The checkpoint was written by another number of peers.
    #[error(
        "--resume: {dir} was written by {saved} data-parallel peer(s); this run has {now}: \
         resume with the same [distributed] devices (the data order and global batch depend on it)"
    )]
    WorldMismatch { dir: PathBuf, saved: u64, now: u64 },
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
            | TrainError::RecipeMismatch { .. }
            | TrainError::WorldMismatch { .. } => 2,
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
