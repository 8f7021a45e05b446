use std::collections::BTreeMap;

use burn::prelude::*;
use burn::tensor::TensorData;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

/// Host tensors by name: (shape, row-major f32 values).
pub type HostTensors = BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Serialize f32 tensors (name → (shape, values)) to safetensors bytes.
pub fn write_safetensors(tensors: &HostTensors) -> Result<Vec<u8>, String> {
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, (shape, v))| {
            (
                n.clone(),
                shape.clone(),
                v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, shape, b)| TensorView::new(Dtype::F32, shape.clone(), b).map(|v| (n.clone(), v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    safetensors::serialize(views, None).map_err(|e| e.to_string())
}

/// Parse safetensors bytes holding f32 tensors.
pub fn read_safetensors(bytes: &[u8]) -> Result<HostTensors, String> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            return Err(format!(
                "tensor `{name}`: expected F32, found {:?}",
                view.dtype()
            ));
        }
        let v = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        out.insert(name, (view.shape().to_vec(), v));
    }
    Ok(out)
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
