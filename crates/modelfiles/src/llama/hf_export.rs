//! [`LlamaModel`] -> HF checkpoint directory, written atomically.

use super::error::ModelFileError;
use super::hf_config::{config_json, generation_config_json};
use super::model::LlamaModel;
use super::safetensors_io::{HfDtype, write_safetensors};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes an HF Llama directory: `config.json`, `model.safetensors` (f32 or bf16, the latter
/// rounded to nearest even), `generation_config.json`, and when the model has a tokenizer,
/// `tokenizer.json` (the imported text if any, else built from [`super::TokenizerParts`]) and
/// `tokenizer_config.json`. Everything is checked and encoded first; the files go into a sibling
/// `<dir>.tmp-*` directory that is renamed to `dir` at the end (an existing `dir` is moved
/// aside first and removed after). On any error nothing is left at `dir` (or the old `dir`
/// stays).
pub fn export_hf_dir(model: &LlamaModel, dtype: HfDtype, dir: &Path) -> Result<(), ModelFileError> {
    let files = hf_files(model, dtype).map_err(|e| e.with_file(dir))?;
    write_dir_atomic(dir, &files)
}

/// The files [`export_hf_dir`] writes: (file name, bytes).
pub fn hf_files(
    model: &LlamaModel,
    dtype: HfDtype,
) -> Result<Vec<(&'static str, Vec<u8>)>, ModelFileError> {
    model.validate()?;
    model.no_biases("Hugging Face")?;
    let mut files = side_files(model, dtype, None)?;
    files.push((
        "model.safetensors",
        write_safetensors(&model.tensors, dtype)?,
    ));
    Ok(files)
}

/// Everything but the weights: `config.json` (with `quantization` as its
/// `quantization_config` when given), `generation_config.json` and the tokenizer files.
pub(crate) fn side_files(
    model: &LlamaModel,
    dtype: HfDtype,
    quantization: Option<serde_json::Value>,
) -> Result<Vec<(&'static str, Vec<u8>)>, ModelFileError> {
    let c = &model.config;
    let mut config = config_json(c, dtype.torch_name());
    if let Some(q) = quantization {
        let mut v: serde_json::Value = serde_json::from_str(&config).expect("own JSON");
        v["quantization_config"] = q;
        config = serde_json::to_string_pretty(&v).expect("JSON");
    }
    let mut files = vec![
        ("config.json", config.into_bytes()),
        (
            "generation_config.json",
            generation_config_json(c).into_bytes(),
        ),
    ];
    let tokenizer_json = match (&model.tokenizer_json, &model.tokenizer) {
        (Some(text), _) => Some(text.clone()),
        (None, Some(parts)) => Some(
            parts
                .to_tokenizer_json()
                .map_err(|e| e.with_tensor("tokenizer.json"))?,
        ),
        (None, None) => None,
    };
    if let Some(t) = tokenizer_json {
        files.push(("tokenizer.json", t.into_bytes()));
    }
    if let Some(parts) = &model.tokenizer {
        files.push((
            "tokenizer_config.json",
            parts
                .to_tokenizer_config_json(c.max_position_embeddings)
                .into_bytes(),
        ));
    }
    Ok(files)
}

fn sibling(dir: &Path, tag: &str) -> Result<PathBuf, ModelFileError> {
    let name = dir
        .file_name()
        .ok_or_else(|| ModelFileError::new("output path has no directory name").with_file(dir))?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Ok(dir.with_file_name(format!(
        "{}.{tag}-{}-{n}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

pub(crate) fn write_dir_atomic(
    dir: &Path,
    files: &[(&str, Vec<u8>)],
) -> Result<(), ModelFileError> {
    let tmp = sibling(dir, "tmp")?;
    let result = (|| {
        fs::create_dir(&tmp).map_err(|e| ModelFileError::io("create directory", &tmp, e))?;
        for (name, bytes) in files {
            let p = tmp.join(name);
            let mut f = File::create(&p).map_err(|e| ModelFileError::io("create", &p, e))?;
            f.write_all(bytes)
                .map_err(|e| ModelFileError::io("write", &p, e))?;
            f.sync_all()
                .map_err(|e| ModelFileError::io("sync", &p, e))?;
        }
        if let Ok(d) = File::open(&tmp) {
            let _ = d.sync_all();
        }
        if dir.exists() {
            let old = sibling(dir, "old")?;
            fs::rename(dir, &old).map_err(|e| ModelFileError::io("move aside", dir, e))?;
            if let Err(e) = fs::rename(&tmp, dir) {
                let _ = fs::rename(&old, dir);
                return Err(ModelFileError::io("rename into place", dir, e));
            }
            let _ = fs::remove_dir_all(&old);
        } else {
            fs::rename(&tmp, dir).map_err(|e| ModelFileError::io("rename into place", dir, e))?;
        }
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(parent)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}
