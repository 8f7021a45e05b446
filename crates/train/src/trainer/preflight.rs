//! The checks a run makes before it writes anything (`train --check` runs them alone): the
//! recipe, the parts built from it, the module rules, the run directory and, with `--resume`,
//! the checkpoint a resume would use.

use nibble_model::LpBackend;

use super::error::TrainError;
use super::parts::Parts;
use super::rules::unused_rules;
use super::run::TrainOptions;
use super::run_dir::RunDir;
use crate::checkpoint;
use crate::sections::Recipe;

/// Every check `train` makes before it writes anything, in its order, writing nothing: the
/// recipe, the data sources, the model and teacher built, the module rules and the run
/// directory (fresh, or holding a checkpoint with `resume`). `train --check` runs this; the
/// data cache (`data.cache_dir`) may be filled, as fetching and tokenizing is the data's check.
/// Returns the warnings a run would print (unused rules allowed by the options).
pub fn check<B: LpBackend>(
    recipe: &Recipe,
    resolved_toml: &str,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<Vec<String>, TrainError> {
    let (_, mut warnings) = preflight::<B>(recipe, opts, device)?;
    let dir = RunDir::plan(recipe, resolved_toml, opts)?;
    if opts.resume {
        // What `--resume` would use, found without moving anything: the recipe must match it.
        let (found, damaged) = checkpoint::scan(&dir.path);
        for (step, _, e) in &damaged {
            warnings.push(format!(
                "checkpoint step {step} is damaged ({e}); a resume moves it aside"
            ));
        }
        let ck = found.ok_or_else(|| TrainError::NoIntactCheckpoint {
            run: dir.path.clone(),
            damaged: damaged
                .iter()
                .map(|d| d.2.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        })?;
        if checkpoint::saved_state(&ck)?.recipe_hash != dir.hash {
            return Err(TrainError::RecipeMismatch { dir: ck });
        }
    }
    Ok(warnings)
}

/// The recipe validated and the parts built, with the unused-rule warnings the options allow.
pub(super) fn preflight<B: LpBackend>(
    recipe: &Recipe,
    opts: &TrainOptions,
    device: &B::Device,
) -> Result<(Parts<B>, Vec<String>), TrainError> {
    recipe.validate()?;
    let parts = Parts::<B>::build_with(recipe, opts.resume, opts.memory_limit, device)?;
    let unused = unused_rules(recipe, &parts.model);
    if let Some(e) = unused.first().filter(|_| !opts.allow_unused_rules) {
        return Err(e.clone().into());
    }
    let warnings = unused
        .into_iter()
        .map(|e| format!("{e} (allowed by --allow-unused-rules)"))
        .collect();
    Ok((parts, warnings))
}
