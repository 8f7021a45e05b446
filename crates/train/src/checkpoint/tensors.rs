use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorData;

/// Host tensors by name: (shape, row-major f32 values).
pub use nibble_modelfiles::HostTensors;

/// Parse safetensors bytes (f32; bf16/f16 are widened) into host tensors.
pub fn read_safetensors(bytes: &[u8]) -> Result<HostTensors, String> {
    let named =
        nibble_modelfiles::llama::read_safetensors(bytes, Path::new("checkpoint"), &|_| true)
            .map_err(|e| e.to_string())?;
    Ok(named
        .into_iter()
        .map(|(n, shape, v)| (n, (shape, v)))
        .collect())
}

/// The tensors of a checkpoint file with their stored dtype and shape, for a load that checks
/// both exactly (the header is parsed by the `safetensors` crate, which bounds every offset).
pub(crate) fn read_checked(bytes: &[u8]) -> Result<Stored<'_>, String> {
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    Ok(Stored(
        st.iter()
            .map(|(n, v)| (n.to_string(), (v.dtype(), v.shape().to_vec(), v.data())))
            .collect(),
    ))
}

/// Tensors of one file by name: (dtype, shape, little-endian bytes).
pub(crate) struct Stored<'a>(pub HashMap<String, (safetensors::Dtype, Vec<usize>, &'a [u8])>);

impl Stored<'_> {
    /// The f32 values of `name`, which must be stored as F32 with exactly `shape`.
    pub(crate) fn take(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>, String> {
        let (dtype, got, data) = self
            .0
            .get(name)
            .ok_or_else(|| format!("missing tensor `{name}`"))?;
        if *dtype != safetensors::Dtype::F32 {
            return Err(format!(
                "tensor `{name}` is {dtype:?}, checkpoints hold F32"
            ));
        }
        if got != shape {
            return Err(format!(
                "tensor `{name}` has shape {got:?}, the model expects {shape:?}"
            ));
        }
        Ok(data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}

/// Host copy of a tensor as f32.
pub(crate) fn to_host<B: Backend>(t: &Tensor<B, 2>) -> Vec<f32> {
    t.to_data().convert::<f32>().into_vec().expect("f32 data")
}

/// Tensor from host f32 values.
pub(crate) fn from_host<B: Backend>(
    v: Vec<f32>,
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// One f32 tensor that reaches the host only when the safetensors writer asks for its bytes,
/// so a save holds one tensor's copy at a time (whole-file buffers of the parameters and the
/// optimizer's moments used to triple the memory of a save). A non-finite value is noted in
/// `bad` (the writer's `View` cannot fail) and the save is abandoned after the file.
pub(crate) struct LazyTensor<'a, B: Backend> {
    name: String,
    shape: Vec<usize>,
    t: &'a Tensor<B, 2>,
    bad: RefCell<Option<String>>,
}

impl<'a, B: Backend> LazyTensor<'a, B> {
    pub(crate) fn new(name: String, shape: Vec<usize>, t: &'a Tensor<B, 2>) -> Self {
        LazyTensor {
            name,
            shape,
            t,
            bad: RefCell::new(None),
        }
    }
}

impl<B: Backend> safetensors::View for &LazyTensor<'_, B> {
    fn dtype(&self) -> safetensors::Dtype {
        safetensors::Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        let v = to_host(self.t);
        if v.iter().any(|x| !x.is_finite()) {
            *self.bad.borrow_mut() = Some(self.name.clone());
        }
        Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect())
    }

    fn data_len(&self) -> usize {
        self.shape.iter().product::<usize>() * 4
    }
}

/// Why a streamed save failed.
#[derive(Debug)]
pub(crate) enum StreamError {
    NonFinite(String),
    Io(std::io::Error),
}

/// Writes `tensors` as one f32 safetensors file at `path` (metadata `{"format": "pt"}`, the
/// bytes `nibble_modelfiles::llama::write_safetensors` gives), tensor by tensor, then fsyncs it.
pub(crate) fn write_f32_safetensors<B: Backend>(
    path: &Path,
    tensors: Vec<LazyTensor<'_, B>>,
) -> Result<(), StreamError> {
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(
        tensors.iter().map(|t| (t.name.as_str(), t)),
        Some(meta),
        path,
    )
    .map_err(|e| match e {
        safetensors::SafeTensorError::IoError(e) => StreamError::Io(e),
        other => StreamError::Io(std::io::Error::other(other.to_string())),
    })?;
    if let Some(name) = tensors.iter().find_map(|t| t.bad.borrow().clone()) {
        return Err(StreamError::NonFinite(name));
    }
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(StreamError::Io)
}
