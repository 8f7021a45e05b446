//! Host (CPU) implementations of the primitives: read the tensor, run nibble-formats, write it
//! back. Every backend gets these by default; GPU backends override them with kernels.

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::hadamard;
use nibble_formats::quantize::quantize_dequantize;
use nibble_formats::spec::QuantSpec;

pub fn to_host<B: Backend>(t: Tensor<B, 2>) -> (Vec<f32>, [usize; 2]) {
    let dims = t.dims();
    let v = t
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("f32 tensor data");
    (v, dims)
}

pub fn from_host<B: Backend>(v: Vec<f32>, dims: [usize; 2], device: &B::Device) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, dims), device)
}

/// Quantize-dequantize along the last axis; returns the values and, if `want_mask`, a keep
/// mask (1 where the quantizer did not clip, 0 where it did).
pub fn quantize<B: Backend>(
    t: Tensor<B, 2>,
    spec: &QuantSpec,
    seed: u64,
    want_mask: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let device = t.device();
    let (v, dims) = to_host(t);
    let out = quantize_dequantize(spec, &v, &dims, seed)
        .unwrap_or_else(|e| panic!("quantize {dims:?} with {spec:?}: {e}"));
    let keep = want_mask.then(|| {
        let keep: Vec<f32> = (0..v.len())
            .map(|i| if out.clip.get_flat(i) { 0.0 } else { 1.0 })
            .collect();
        from_host(keep, dims, &device)
    });
    (from_host(out.values, dims, &device), keep)
}

/// Block Hadamard of every g-block along the last axis: `x·diag(s)·H` (or its inverse
/// `y·H·diag(s)` when `inverse`). With `signs_after`, `x·H·diag(s)` instead (the sign bug).
pub fn hadamard<B: Backend>(
    t: Tensor<B, 2>,
    g: usize,
    signs: Option<&[f32]>,
    inverse: bool,
    signs_after: bool,
) -> Tensor<B, 2> {
    let device = t.device();
    let (mut v, dims) = to_host(t);
    let cols = dims[1];
    match (signs_after, inverse) {
        (false, false) => hadamard::forward_rows(&mut v, cols, g, signs),
        (false, true) => hadamard::inverse_rows(&mut v, cols, g, signs),
        (true, _) => {
            // H·diag(s) and its inverse diag(s)·H: H is symmetric and its own inverse.
            if inverse {
                scale_blocks(&mut v, g, signs);
                hadamard::forward_rows(&mut v, cols, g, None);
            } else {
                hadamard::forward_rows(&mut v, cols, g, None);
                scale_blocks(&mut v, g, signs);
            }
        }
    }
    from_host(v, dims, &device)
}

fn scale_blocks(v: &mut [f32], g: usize, signs: Option<&[f32]>) {
    if let Some(s) = signs {
        for block in v.chunks_exact_mut(g) {
            for (x, s) in block.iter_mut().zip(s) {
                *x *= s;
            }
        }
    }
}
