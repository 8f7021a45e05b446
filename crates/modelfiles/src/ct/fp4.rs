//! The FP4 (E2M1) schemes. Both store `weight_packed` U8 `[rows, cols/2]`: codes (sign bit 3,
//! magnitude index into {0, ½, 1, 1½, 2, 3, 4, 6}), element 2i in the low nibble.
//!
//! - NVFP4: `weight_scale` F8_E4M3 `[rows, cols/16]` and `weight_global_scale` F32 `[1]`,
//!   `gs = 448·6 / amax` over the fused layers; a block's scale is `e4m3(amax_b / 6 · gs)`
//!   (saturating at 448) and its elements `e2m1(w / (s / gs))`. The global scale *divides*.
//! - MXFP4: `weight_scale` U8 `[rows, cols/32]`, a biased exponent e for the scale 2^(e−127).
//!   Codes and exponents are ggml's MXFP4 quantizer's (`quantize_row_mxfp4_ref`), re-packed
//!   from ggml's block order (element j low, j + 16 high) into pairs.

use super::{CtLinear, CtTensor, tensor};
use crate::quants::{self, GgmlType};
use nibble_formats::bits::pow2;
use nibble_formats::minifloat::{E2M1, E4M3};
use nibble_formats::pack::{pack_nibbles, unpack_nibbles};
use safetensors::Dtype;

fn packed(rows: usize, cols: usize, codes: &[u8]) -> (&'static str, CtTensor) {
    (
        "weight_packed",
        CtTensor {
            dtype: Dtype::U8,
            shape: vec![rows, cols / 2],
            bytes: pack_nibbles(codes),
        },
    )
}

/// NVFP4's global scale for a (fused) amax: `448·6 / amax`, 1 for an all-zero weight.
pub(super) fn global_scale(amax: f32) -> f32 {
    let gs = (448.0f32 * 6.0) / amax;
    if gs.is_finite() { gs } else { 1.0 }
}

pub(super) fn encode_nvfp4(rows: usize, cols: usize, w: &[f32], fused_amax: f32) -> CtLinear {
    let gs = global_scale(fused_amax);
    let mut codes = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows * cols / 16);
    for block in w.chunks_exact(16) {
        let s = E4M3.round_rne((super::amax(block) / 6.0 * gs).min(448.0));
        scales.push(E4M3.code_of(s));
        let step = s / gs;
        codes.extend(
            block
                .iter()
                .map(|&x| if step > 0.0 { E2M1.encode(x / step) } else { 0 }),
        );
    }
    vec![
        packed(rows, cols, &codes),
        (
            "weight_scale",
            CtTensor {
                dtype: Dtype::F8_E4M3,
                shape: vec![rows, cols / 16],
                bytes: scales,
            },
        ),
        (
            "weight_global_scale",
            CtTensor {
                dtype: Dtype::F32,
                shape: vec![1],
                bytes: gs.to_le_bytes().to_vec(),
            },
        ),
    ]
}

pub(super) fn decode_nvfp4(rows: usize, cols: usize, l: &CtLinear) -> Vec<f32> {
    let codes = unpack_nibbles(&tensor(l, "weight_packed").bytes, rows * cols);
    let scales = &tensor(l, "weight_scale").bytes;
    let b = &tensor(l, "weight_global_scale").bytes;
    let gs = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    (0..rows * cols)
        .map(|i| E2M1.decode(codes[i]) * (E4M3.decode(scales[i / 16]) / gs))
        .collect()
}

pub(super) fn encode_mxfp4(rows: usize, cols: usize, w: &[f32]) -> CtLinear {
    let blocks = quants::quantize(GgmlType::MXFP4, w).expect("cols checked to be a multiple of 32");
    let mut codes = Vec::with_capacity(rows * cols);
    let mut exps = Vec::with_capacity(rows * cols / 32);
    for b in blocks.chunks_exact(17) {
        exps.push(b[0]);
        let qs = &b[1..];
        codes.extend(qs.iter().map(|q| q & 0xF));
        codes.extend(qs.iter().map(|q| q >> 4));
    }
    vec![
        packed(rows, cols, &codes),
        (
            "weight_scale",
            CtTensor {
                dtype: Dtype::U8,
                shape: vec![rows, cols / 32],
                bytes: exps,
            },
        ),
    ]
}

pub(super) fn decode_mxfp4(rows: usize, cols: usize, l: &CtLinear) -> Vec<f32> {
    let codes = unpack_nibbles(&tensor(l, "weight_packed").bytes, rows * cols);
    let exps = &tensor(l, "weight_scale").bytes;
    (0..rows * cols)
        .map(|i| E2M1.decode(codes[i]) * pow2(exps[i / 32] as i32 - 127))
        .collect()
}
