use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use nibble_model::Params;
use serde::{Deserialize, Serialize};

use super::atomic::{fsync_dir, write_atomic};
use super::tensors::{
    HostTensors, LazyTensor, StreamError, from_host, read_safetensors, write_f32_safetensors,
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
    // Tensors stream to the staging directory one at a time (no whole-file buffers); a
    // non-finite one stops the save and the staging directory goes, so the last good
    // checkpoint stays the newest.
    let staged = write_f32_safetensors(&tmp.join("model.safetensors"), model)
        .and_then(|()| write_f32_safetensors(&tmp.join("optimizer.safetensors"), optim));
    if let Err(e) = staged {
        let _ = fs::remove_dir_all(&tmp);
        return Err(match e {
            StreamError::NonFinite(tensor) => CheckpointError::NonFinite {
                step: state.step,
                tensor,
            },
            StreamError::Io(source) => CheckpointError::Io { path: tmp, source },
        });
    }
    let meta = serde_json::json!({
        "state": state,
        "adam_step": opt.state.step,
        "optim_groups": opt.groups.saved(),
    });
    write_atomic(
        &tmp.join("state.json"),
        serde_json::to_string_pretty(&meta)
            .expect("json")
            .as_bytes(),
    )
    .map_err(io(&tmp))?;
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(io(&dir))?;
    }
    fs::rename(&tmp, &dir).map_err(io(&dir))?;
    fsync_dir(dir.parent().expect("checkpoints dir")).map_err(io(&dir))?;
    Ok(dir)
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
    let fmt = |m: String| CheckpointError::Format {
        path: dir.to_path_buf(),
        message: m,
    };
    let read = |f: &str| fs::read(dir.join(f)).map_err(io(dir));
    let model = read_safetensors(&read("model.safetensors")?).map_err(fmt)?;
    let optim = read_safetensors(&read("optimizer.safetensors")?).map_err(fmt)?;
    let meta: serde_json::Value =
        serde_json::from_slice(&read("state.json")?).map_err(|e| fmt(e.to_string()))?;
    let state: TrainState =
        serde_json::from_value(meta["state"].clone()).map_err(|e| fmt(e.to_string()))?;
    let adam_step = meta["adam_step"]
        .as_u64()
        .ok_or_else(|| fmt("state.json: missing adam_step".into()))?;
    let saved_groups: Vec<ParamGroup> = serde_json::from_value(meta["optim_groups"].clone())
        .map_err(|e| fmt(format!("state.json: optim_groups: {e}")))?;
    if let Some(message) = opt.groups.diff(&saved_groups) {
        return Err(CheckpointError::GroupingChanged {
            path: dir.to_path_buf(),
            message,
        });
    }
    let take = |map: &HostTensors, key: &str, like: &Tensor<B, 2>| {
        let (shape, v) = map
            .get(key)
            .ok_or_else(|| fmt(format!("missing tensor `{key}`")))?;
        let want = like.dims();
        if shape.iter().product::<usize>() != want[0] * want[1] {
            return Err(fmt(format!(
                "tensor `{key}` has shape {shape:?}, the model expects {want:?}"
            )));
        }
        Ok(from_host::<B>(v.clone(), want, device))
    };
    let mut st = AdamWState {
        step: adam_step,
        exp_avg: BTreeMap::new(),
        exp_avg_sq: BTreeMap::new(),
    };
    for (name, t) in params.buffers.iter_mut() {
        let like = t.clone();
        *t = take(&model, name, &like)?;
    }
    for (name, t) in params.tensors.iter_mut() {
        let like = t.clone();
        *t = take(&model, name, &like)?;
        if opt.groups.is_frozen(name) {
            continue;
        }
        st.exp_avg.insert(
            name.clone(),
            take(&optim, &format!("{name}.exp_avg"), &like)?,
        );
        st.exp_avg_sq.insert(
            name.clone(),
            take(&optim, &format!("{name}.exp_avg_sq"), &like)?,
        );
    }
    let known = |k: &String| params.tensors.contains_key(k) || params.buffers.contains_key(k);
    if let Some(extra) = model.keys().find(|k| !known(k)) {
        return Err(fmt(format!(
            "unexpected tensor `{extra}` (a different architecture?)"
        )));
    }
    opt.state = st;
    Ok(state)
}

/// The step a checkpoint holds (from its `state.json`), before loading it: which stage's
/// optimizer its moments belong to.
pub fn saved_step(dir: &Path) -> Result<u64, CheckpointError> {
    let path = dir.join("state.json");
    let bytes = fs::read(&path).map_err(io(&path))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| CheckpointError::Format {
            path: path.clone(),
            message: e.to_string(),
        })?;
    meta["state"]["step"]
        .as_u64()
        .ok_or_else(|| CheckpointError::Format {
            path,
            message: "missing state.step".into(),
        })
}

/// Complete checkpoints of a run, oldest first.
fn complete(run_dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = fs::read_dir(run_dir.join("checkpoints")) else {
        return Vec::new();
    };
    let mut v: Vec<(u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let step = name.strip_prefix("step-")?.parse::<u64>().ok()?;
            e.path()
                .join("state.json")
                .is_file()
                .then(|| (step, e.path()))
        })
        .collect();
    v.sort();
    v
}

/// The newest complete checkpoint of a run.
pub fn latest(run_dir: &Path) -> Option<PathBuf> {
    complete(run_dir).pop().map(|(_, p)| p)
}

/// Keep the newest `keep` complete checkpoints (plus any in `protect`, e.g. WSD-S budget ends);
/// remove older ones and stale temporary directories.
pub fn prune(run_dir: &Path, keep: usize, protect: &[u64]) -> Result<(), CheckpointError> {
    let all = complete(run_dir);
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
