use std::path::PathBuf;

use nibble_train::recipe::RecipeError;

#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error(transparent)]
    File(#[from] RecipeError),
    /// An arm's recipe does not load or validate.
    #[error("{}: arm `{arm}`, seed {seed}: {message}", sweep.display())]
    Arm {
        sweep: PathBuf,
        arm: String,
        seed: u64,
        message: String,
    },
    /// A run directory holds a run of a different definition: never mix them.
    #[error(
        "{}: holds a run of a different definition (recipe hash {found}, this sweep wants \
         {wanted}); move it away or rename the sweep's out_dir",
        dir.display()
    )]
    Conflict {
        dir: PathBuf,
        found: String,
        wanted: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Format { path: PathBuf, message: String },
    #[error("{}: no run directories (with sweep.json) found", .0.display())]
    NoRuns(PathBuf),
    #[error("plot {}: {message}", path.display())]
    Plot { path: PathBuf, message: String },
}

impl SweepError {
    pub fn io(path: &std::path::Path) -> impl Fn(std::io::Error) -> SweepError + '_ {
        move |source| SweepError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
