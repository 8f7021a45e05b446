use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use nibble_model::Params;
use serde::{Deserialize, Serialize};

use super::atomic::{fsync_dir, write_atomic};
use super::manifest::{TENSOR_FILES, check_file_bytes, dir_step, file_entries, open_state, seal};
use super::tensors::{
    LazyTensor, Stored, StreamError, from_host, read_checked, write_f32_safetensors,
};
use crate::optim::{AdamW, AdamWState, ParamGroup};

/// Everything besides tensors that a bit-identical resume needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps completed.
    pub step: u64,
    /// Tokens consumed so far.
    pub tokens: u64,
    /// Data cursor of the batcher (opaque JSON owned by nibble-data).
    pub data_cursor: serde_json::Value,
    /// SHA-256 of the resolved recipe, to refuse resuming a different run.
    pub recipe_hash: String,
    /// Best validation loss so far, if evaluated.
    pub best_val_loss: Option<f64>,
    /// Wall-clock seconds spent in all processes of this run so far (summed across resumes).
    #[serde(default)]
    pub wall_secs: f64,
    /// Data-parallel peers that trained it (1: one device).
    #[serde(default = "one")]
    pub world: u64,
}

fn one() -> u64 {
    1
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    /// A file of a checkpoint fails its integrity check (checksum, size, step, missing).
    #[error("{path}: damaged checkpoint: {message}")]
    Damaged { path: PathBuf, message: String },
    #[error(
        "refusing to save step {step}: tensor `{tensor}` holds NaN or Inf (the last good checkpoint is kept)"
    )]
    NonFinite { step: u64, tensor: String },
    /// The recipe's optimizer groups do not match the checkpoint's: its moments would be
    /// applied to the wrong hyperparameters.
    #[error("{path}: cannot resume: {message}")]
    GroupingChanged { path: PathBuf, message: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `<run>/checkpoints/step-00000042`.
pub fn step_dir(run_dir: &Path, step: u64) -> PathBuf {
    run_dir.join("checkpoints").join(format!("step-{step:08}"))
}

/// HF shape of a stored parameter: norm weights are vectors.
fn hf_shape(shape: [usize; 2]) -> Vec<usize> {
    if shape[0] == 1 {
        vec![shape[1]]
    } else {
        shape.to_vec()
    }
}

/// The tensors of a map under their stored names (`<name><suffix>`), with their stored shapes.
fn entries<'a, B: Backend>(
    tensors: &'a BTreeMap<String, Tensor<B, 2>>,
    suffix: &str,
) -> Vec<LazyTensor<'a, B>> {
    tensors
        .iter()
        .map(|(name, t)| LazyTensor::new(format!("{name}{suffix}"), hf_shape(t.dims()), t))
        .collect()
}
/// Write a checkpoint for `state.step`: `model.safetensors` holds the parameters and the
/// techniques' buffers, `optimizer.safetensors` the moments of every parameter that is not
/// frozen, `state.json` the train state and the optimizer's grouping. Staged in `<dir>.tmp`,
/// renamed when complete.
pub fn save<B: Backend>(
    run_dir: &Path,
    params: &Params<B>,
    opt: &AdamW<B>,
    state: &TrainState,
) -> Result<PathBuf, CheckpointError> {
    let model: Vec<_> = entries(&params.tensors, "")
        .into_iter()
        .chain(entries(&params.buffers, ""))
        .collect();
    let optim: Vec<_> = entries(&opt.state.exp_avg, ".exp_avg")
        .into_iter()
        .chain(entries(&opt.state.exp_avg_sq, ".exp_avg_sq"))
        .collect();
    let dir = step_dir(run_dir, state.step);
    let tmp = dir.with_extension("tmp");
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    // Any failure after staging began removes the staging directory: the last good
    // checkpoint stays the newest and nothing half-written is left behind.
    let staged = stage(&tmp, model, optim, state, opt).and_then(|()| {
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(io(&dir))?;
        }
        fs::rename(&tmp, &dir).map_err(io(&dir))?;
        fsync_dir(dir.parent().expect("checkpoints dir")).map_err(io(&dir))
    });
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(dir)
}

/// Writes the tensor files (streamed; a non-finite tensor stops the save), then `state.json`
/// last, sealed with the files' checksums read back from disk.
fn stage<B: Backend>(
    tmp: &Path,
    model: Vec<LazyTensor<'_, B>>,
    optim: Vec<LazyTensor<'_, B>>,
    state: &TrainState,
    opt: &AdamW<B>,
) -> Result<(), CheckpointError> {
    write_f32_safetensors(&tmp.join(TENSOR_FILES[0]), model)
        .and_then(|()| write_f32_safetensors(&tmp.join(TENSOR_FILES[1]), optim))
        .map_err(|e| match e {
            StreamError::NonFinite(tensor) => CheckpointError::NonFinite {
                step: state.step,
                tensor,
            },
            StreamError::Io(source) => CheckpointError::Io {
                path: tmp.to_path_buf(),
                source,
            },
        })?;
    let files = file_entries(tmp).map_err(io(tmp))?;
    let serde_json::Value::Object(meta) = serde_json::json!({
        "state": state,
        "adam_step": opt.state.step,
        "optim_groups": opt.groups.saved(),
        "files": files,
    }) else {
        unreachable!("a JSON object literal")
    };
    write_atomic(&tmp.join("state.json"), seal(meta).as_bytes()).map_err(io(tmp))
}

/// Restore parameters, buffers, optimizer state and train state from a checkpoint directory.
/// `params` has the full layout (weights and technique tensors) and `opt` the recipe's grouping,
/// which must be the checkpoint's.
pub fn load<B: Backend>(
    dir: &Path,
    params: &mut Params<B>,
    opt: &mut AdamW<B>,
    device: &B::Device,
) -> Result<TrainState, CheckpointError> {
    let meta = open_state(dir)?;
    let fmt = |path: &Path, m: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message: m,
    };
    let state_path = dir.join("state.json");
    let read = |f: &str| {
        let path = dir.join(f);
        let bytes = fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => CheckpointError::Damaged {
                path: path.clone(),
                message: "missing".into(),
            },
            _ => io(&path)(e),
        })?;
        check_file_bytes(&meta, &path, &bytes)?;
        Ok::<_, CheckpointError>((path, bytes))
    };
    let (model_path, model_bytes) = read(TENSOR_FILES[0])?;
    let (optim_path, optim_bytes) = read(TENSOR_FILES[1])?;
    let model = read_checked(&model_bytes).map_err(|m| fmt(&model_path, m))?;
    let optim = read_checked(&optim_bytes).map_err(|m| fmt(&optim_path, m))?;
    let state: TrainState = serde_json::from_value(meta["state"].clone())
        .map_err(|e| fmt(&state_path, format!("state: {e}")))?;
    let adam_step = meta["adam_step"].as_u64().expect("checked by open_state");
    let saved_groups: Vec<ParamGroup> = serde_json::from_value(meta["optim_groups"].clone())
        .map_err(|e| fmt(&state_path, format!("optim_groups: {e}")))?;
    if let Some(message) = opt.groups.diff(&saved_groups) {
        return Err(CheckpointError::GroupingChanged {
            path: dir.to_path_buf(),
            message,
        });
    }
    let take = |stored: &Stored, path: &Path, key: &str, like: &Tensor<B, 2>| {
        let want = like.dims();
        let v = stored
            .take(key, &hf_shape(want))
            .map_err(|m| fmt(path, m))?;
        Ok::<_, CheckpointError>(from_host::<B>(v, want, device))
    };
    let mut st = AdamWState {
        step: adam_step,
        exp_avg: BTreeMap::new(),
        exp_avg_sq: BTreeMap::new(),
    };
    for (name, t) in params.buffers.iter_mut() {
        let like = t.clone();
        *t = take(&model, &model_path, name, &like)?;
    }
    for (name, t) in params.tensors.iter_mut() {
        let like = t.clone();
        *t = take(&model, &model_path, name, &like)?;
        if opt.groups.is_frozen(name) {
            continue;
        }
        st.exp_avg.insert(
            name.clone(),
            take(&optim, &optim_path, &format!("{name}.exp_avg"), &like)?,
        );
        st.exp_avg_sq.insert(
            name.clone(),
            take(&optim, &optim_path, &format!("{name}.exp_avg_sq"), &like)?,
        );
    }
    let known = |k: &String| params.tensors.contains_key(k) || params.buffers.contains_key(k);
    if let Some(extra) = model.0.keys().find(|k| !known(k)) {
        return Err(fmt(
            &model_path,
            format!("unexpected tensor `{extra}` (a different architecture?)"),
        ));
    }
    let moments = 2 * st.exp_avg.len();
    if optim.0.len() != moments {
        return Err(fmt(
            &optim_path,
            format!(
                "{} tensors, the optimizer has {moments} moments",
                optim.0.len()
            ),
        ));
    }
    opt.state = st;
    Ok(state)
}

/// The step a checkpoint holds (from its `state.json`), before loading it: which stage's
/// optimizer its moments belong to.
pub fn saved_step(dir: &Path) -> Result<u64, CheckpointError> {
    Ok(open_state(dir)?["state"]["step"]
        .as_u64()
        .expect("checked by open_state"))
}

/// The train state of a checkpoint (its `state.json`, checksum verified), without its tensors.
pub fn saved_state(dir: &Path) -> Result<TrainState, CheckpointError> {
    let path = dir.join("state.json");
    serde_json::from_value(open_state(dir)?["state"].clone()).map_err(|e| CheckpointError::Format {
        path,
        message: format!("state: {e}"),
    })
}

/// The checkpoint directories of a run (`step-N`, whatever their state), oldest first. A
/// staging directory is `step-N.tmp` and not among them; a `step-N` directory is only ever
/// created by renaming a complete staging directory, so one without `state.json` is damaged.
pub(crate) fn step_dirs(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = fs::read_dir(run_dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut v: Vec<(u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| Some((dir_step(&e.path())?, e.path())))
        .collect();
    v.sort();
    v
}

/// The newest checkpoint directory of a run (not verified: see `newest_intact`).
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    step_dirs(run_dir).pop().map(|(_, p)| p)
}

/// Keep the newest `keep` complete checkpoints (plus any in `protect`, e.g. WSD-S budget ends);
/// remove older ones and stale temporary directories.
pub fn prune(run_dir: &Path, keep: usize, protect: &[u64]) -> Result<(), CheckpointError> {
    let all = step_dirs(run_dir);
    let cut = all.len().saturating_sub(keep);
    for (step, p) in &all[..cut] {
        if !protect.contains(step) {
            fs::remove_dir_all(p).map_err(io(p))?;
        }
    }
    if let Ok(rd) = fs::read_dir(run_dir.join("checkpoints")) {
        for e in rd.filter_map(|e| e.ok()) {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                fs::remove_dir_all(e.path()).map_err(io(&e.path()))?;
            }
        }
    }
    Ok(())
}
