//! What a run tells: metric sinks (tensorboard, jsonl), the progress bar and log lines.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use super::error::TrainError;
use crate::metrics::{JsonlSink, Sink, TensorboardSink};
use crate::sections::Recipe;

pub struct Reporter {
    sinks: Vec<Box<dyn Sink>>,
    run_dir: PathBuf,
    pub bar: ProgressBar,
    quiet: bool,
    tty: bool,
}

impl Reporter {
    pub fn new(
        recipe: &Recipe,
        run_dir: &Path,
        quiet: bool,
        start_step: u64,
    ) -> Result<Self, TrainError> {
        let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
        if recipe.log.tensorboard {
            sinks.push(Box::new(
                TensorboardSink::new(&run_dir.join("tb")).map_err(TrainError::io(run_dir))?,
            ));
        }
        if recipe.log.jsonl {
            sinks.push(Box::new(
                JsonlSink::new(&run_dir.join("metrics.jsonl")).map_err(TrainError::io(run_dir))?,
            ));
        }
        let tty = std::io::stderr().is_terminal();
        let bar = if quiet || !recipe.log.progress || !tty {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(recipe.run.steps)
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {msg} ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_position(start_step);
        Ok(Reporter {
            sinks,
            run_dir: run_dir.to_path_buf(),
            bar,
            quiet,
            tty,
        })
    }

    /// A reporter that writes and says nothing: data-parallel peers other than 0.
    pub fn silent() -> Self {
        Reporter {
            sinks: Vec::new(),
            run_dir: PathBuf::new(),
            bar: ProgressBar::hidden(),
            quiet: true,
            tty: false,
        }
    }

    /// A log line (above the bar on a terminal, to stdout otherwise; nothing when quiet).
    pub fn say(&self, line: String) {
        if !self.quiet {
            if self.tty {
                self.bar.println(line)
            } else {
                println!("{line}")
            }
        }
    }

    pub fn emit(&mut self, step: u64, values: &[(&str, f64)]) -> Result<(), TrainError> {
        for s in self.sinks.iter_mut() {
            s.scalars(step, values)
                .map_err(TrainError::io(&self.run_dir))?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), TrainError> {
        for s in self.sinks.iter_mut() {
            s.flush().map_err(TrainError::io(&self.run_dir))?;
        }
        Ok(())
    }
}
