//! [`LlamaModel`] -> compressed-tensors checkpoint directory: the HF directory of
//! [`super::export_hf_dir`] (bf16) with every decoder projection stored in a
//! compressed-tensors scheme and `quantization_config` in `config.json`. Embeddings, norms and
//! `lm_head` stay bf16 (`ignore: ["lm_head"]`), which is what vLLM and transformers expect.

use super::error::ModelFileError;
use super::hf_export::{side_files, write_dir_atomic};
use super::model::LlamaModel;
use super::safetensors_io::{Encoded, HfDtype, encode_values, serialize};
use crate::ct::{self, CtLinear, CtScheme, CtTensor};
use std::collections::BTreeMap;
use std::path::Path;

/// Writes the directory atomically (like [`super::export_hf_dir`]): nothing at `dir` on error.
pub fn export_ct_dir(
    model: &LlamaModel,
    scheme: CtScheme,
    dir: &Path,
) -> Result<(), ModelFileError> {
    let files = ct_files(model, scheme).map_err(|e| e.with_file(dir))?;
    write_dir_atomic(dir, &files)
}

/// The files [`export_ct_dir`] writes: (file name, bytes).
pub fn ct_files(
    model: &LlamaModel,
    scheme: CtScheme,
) -> Result<Vec<(&'static str, Vec<u8>)>, ModelFileError> {
    model.validate()?;
    model.no_biases("compressed-tensors")?;
    let linears = ct_linears(model, scheme)?;
    let mut encoded: Vec<Encoded> = Vec::new();
    for (name, (shape, values)) in &model.tensors {
        match name.strip_suffix(".weight").and_then(|m| linears.get(m)) {
            Some(linear) => {
                let module = &name[..name.len() - ".weight".len()];
                for (local, t) in linear {
                    encoded.push((
                        format!("{module}.{local}"),
                        t.dtype,
                        t.shape.clone(),
                        t.bytes.clone(),
                    ));
                }
            }
            None => encoded.push((
                name.clone(),
                HfDtype::Bf16.safetensors(),
                shape.clone(),
                encode_values(name, values, HfDtype::Bf16)?,
            )),
        }
    }
    encoded.sort_by(|a, b| a.0.cmp(&b.0));
    let mut files = side_files(model, HfDtype::Bf16, Some(scheme.quantization_config()))?;
    files.push(("model.safetensors", serialize(&encoded)?));
    Ok(files)
}

/// Whether an HF tensor is a decoder projection (a `Linear` the scheme quantizes).
pub fn is_projection(name: &str) -> bool {
    name.starts_with("model.layers.") && name.ends_with("_proj.weight")
}

/// The projections an engine fuses with `name` (q/k/v; gate/up), `name` included.
fn fused_with(name: &str) -> Vec<String> {
    let groups: [&[&str]; 2] = [
        &["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        &["mlp.gate_proj", "mlp.up_proj"],
    ];
    for g in groups {
        if let Some(part) = g.iter().find(|p| name.ends_with(&format!(".{p}.weight"))) {
            let prefix = &name[..name.len() - part.len() - ".weight".len()];
            return g.iter().map(|p| format!("{prefix}{p}.weight")).collect();
        }
    }
    vec![name.to_string()]
}

/// Every projection of `model` encoded in `scheme`, by module name (the tensor name without
/// `.weight`). An input dimension the scheme cannot take is an error naming the tensor.
pub fn ct_linears(
    model: &LlamaModel,
    scheme: CtScheme,
) -> Result<BTreeMap<String, CtLinear>, ModelFileError> {
    let mut out = BTreeMap::new();
    for (name, (shape, values)) in &model.tensors {
        if !is_projection(name) {
            continue;
        }
        let [rows, cols] = shape[..] else {
            return Err(ModelFileError::new("a projection must be 2-D").with_tensor(name));
        };
        scheme
            .check_shape(cols)
            .map_err(|m| ModelFileError::new(m).with_tensor(name))?;
        if let Some(g) = model.grids.get(name) {
            let linear = ct::encode_grid(
                scheme,
                rows,
                cols,
                values,
                g.group,
                &g.scales,
                g.zeros.as_deref(),
                (g.lo, g.hi),
            )
            .map_err(|m| ModelFileError::new(m).with_tensor(name))?;
            out.insert(name.trim_end_matches(".weight").to_string(), linear);
            continue;
        }
        let fused_amax = fused_with(name)
            .iter()
            .filter_map(|n| model.tensors.get(n))
            .fold(0f32, |m, (_, v)| m.max(ct::amax(v)));
        let module = name
            .strip_suffix(".weight")
            .expect("projection")
            .to_string();
        out.insert(module, ct::encode(scheme, rows, cols, values, fused_amax));
    }
    Ok(out)
}

/// Reads back the projections of a compressed-tensors `model.safetensors` written by
/// [`export_ct_dir`]: module name -> its tensors (the local names [`ct::encode`] uses).
pub fn read_ct_linears(
    bytes: &[u8],
    path: &Path,
) -> Result<BTreeMap<String, CtLinear>, ModelFileError> {
    const LOCAL: [&str; 6] = [
        "weight_packed",
        "weight_scale",
        "weight_shape",
        "weight_zero_point",
        "weight_global_scale",
        "weight",
    ];
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
        ModelFileError::new(format!("invalid safetensors file: {e}")).with_file(path)
    })?;
    let mut out: BTreeMap<String, CtLinear> = BTreeMap::new();
    for (name, view) in st.tensors() {
        let Some((module, local)) = name.rsplit_once('.') else {
            continue;
        };
        let Some(local) = LOCAL.iter().find(|l| **l == local) else {
            continue;
        };
        if !is_projection(&format!("{module}.weight")) {
            continue;
        }
        out.entry(module.to_string()).or_default().push((
            local,
            CtTensor {
                dtype: view.dtype(),
                shape: view.shape().to_vec(),
                bytes: view.data().to_vec(),
            },
        ));
    }
    Ok(out)
}
