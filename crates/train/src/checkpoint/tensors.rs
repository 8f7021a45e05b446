use std::path::Path;

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_modelfiles::HfDtype;

/// Host tensors by name: (shape, row-major f32 values).
pub use nibble_modelfiles::HostTensors;

/// Serialize f32 tensors to safetensors bytes (nibble-modelfiles' writer, f32).
pub fn write_safetensors(tensors: &HostTensors) -> Result<Vec<u8>, String> {
    nibble_modelfiles::llama::write_safetensors(tensors, HfDtype::F32).map_err(|e| e.to_string())
}

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
