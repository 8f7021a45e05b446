//! Host (CPU) implementations of the primitives: read the tensor, run nibble-formats, write it
//! back. Every backend gets these by default; GPU backends override them with kernels.

use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::ClipMask;
use nibble_formats::element::Element;
use nibble_formats::hadamard;
use nibble_formats::quantize::quantize_dequantize;
use nibble_formats::scaled_cast::cast_with_scale;
use nibble_formats::spec::QuantSpec;
use rayon::prelude::*;

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
    let keep = want_mask.then(|| from_host(keep_of(&out.clip), dims, &device));
    (from_host(out.values, dims, &device), keep)
}

/// Per-tensor cast with a given scale; returns the values and amax(|x|).
pub fn cast_scaled<B: Backend>(
    t: Tensor<B, 2>,
    element: Element,
    scale: f32,
) -> (Tensor<B, 2>, f32) {
    let device = t.device();
    let (v, dims) = to_host(t);
    let (q, amax) = cast_with_scale(&v, element, scale);
    (from_host(q, dims, &device), amax)
}

/// N:M magnitude keep mask along the last axis (`nibble_formats::nm_mask`). Panics on a
/// pattern that does not fit (recipes are validated before training starts).
pub fn nm_mask<B: Backend>(w: Tensor<B, 2>, n: usize, m: usize) -> Tensor<B, 2> {
    let device = w.device();
    let (v, dims) = to_host(w);
    let mask = nibble_formats::nm_mask::nm_mask(&v, dims[1], n, m)
        .unwrap_or_else(|e| panic!("N:M mask of a {dims:?} weight: {e}"));
    from_host(mask, dims, &device)
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
    hadamard_rows(&mut v, dims[1], g, signs, inverse, signs_after);
    from_host(v, dims, &device)
}

/// [`hadamard`] on a row-major host buffer with `cols` columns, in place.
pub fn hadamard_rows(
    v: &mut [f32],
    cols: usize,
    g: usize,
    signs: Option<&[f32]>,
    inverse: bool,
    signs_after: bool,
) {
    match (signs_after, inverse) {
        (false, false) => hadamard::forward_rows(v, cols, g, signs),
        (false, true) => hadamard::inverse_rows(v, cols, g, signs),
        (true, _) => {
            // H·diag(s) and its inverse diag(s)·H: H is symmetric and its own inverse.
            if inverse {
                scale_blocks(v, g, signs);
                hadamard::forward_rows(v, cols, g, None);
            } else {
                hadamard::forward_rows(v, cols, g, None);
                scale_blocks(v, g, signs);
            }
        }
    }
}

/// The backward's last step: `(d ⊙ keep)·Hᵀ` (clipped elements zeroed, the forward Hadamard
/// undone), either part optional.
pub fn unrotate<B: Backend>(
    d: Tensor<B, 2>,
    keep: Option<Tensor<B, 2>>,
    g: Option<usize>,
) -> Tensor<B, 2> {
    let device = d.device();
    let (mut v, dims) = to_host(d);
    let keep = keep.map(|k| to_host(k).0);
    unrotate_rows(&mut v, keep.as_deref(), dims[1], g);
    from_host(v, dims, &device)
}

/// [`unrotate`] on a row-major host buffer, in place, one pass per cache-sized chunk.
pub fn unrotate_rows(v: &mut [f32], keep: Option<&[f32]>, cols: usize, g: Option<usize>) {
    if let Some(k) = keep {
        assert_eq!(k.len(), v.len(), "keep mask shape");
    }
    let chunk = cols * (8192 / cols).max(1);
    v.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| {
        if let Some(k) = keep {
            for (x, m) in c.iter_mut().zip(&k[i * chunk..]) {
                *x *= m;
            }
        }
        if let Some(g) = g {
            for b in c.chunks_exact_mut(g) {
                hadamard::inverse_block(b, None);
            }
        }
    });
}

/// Keep mask (1 = not clipped) of a clip mask, row-major.
pub fn keep_of(clip: &ClipMask) -> Vec<f32> {
    let cols = clip.cols;
    let mut keep = vec![0f32; clip.rows * cols];
    if cols == 0 {
        return keep;
    }
    keep.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
        for (c, k) in row.iter_mut().enumerate() {
            *k = if clip.get(r, c) { 0.0 } else { 1.0 };
        }
    });
    keep
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
