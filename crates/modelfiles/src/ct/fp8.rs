//! FP8 `float-quantized` with per-channel weight scales: `weight` F8_E4M3 `[rows, cols]` holding
//! `e4m3(w / s)` (round to nearest even, saturating at ±448) and `weight_scale` BF16 `[rows, 1]`
//! with `s = amax(row) / 448` rounded to bf16 first.

use super::{CtLinear, CtTensor, bf16_bytes, bf16_scale, bf16_values, tensor};
use nibble_formats::minifloat::E4M3;
use safetensors::Dtype;

pub(super) fn encode(rows: usize, cols: usize, w: &[f32]) -> CtLinear {
    let mut codes = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows);
    for row in w.chunks_exact(cols) {
        let s = bf16_scale(super::amax(row) / 448.0);
        scales.push(s);
        codes.extend(
            row.iter()
                .map(|&x| E4M3.encode((x / s).clamp(-448.0, 448.0))),
        );
    }
    vec![
        (
            "weight",
            CtTensor {
                dtype: Dtype::F8_E4M3,
                shape: vec![rows, cols],
                bytes: codes,
            },
        ),
        (
            "weight_scale",
            CtTensor {
                dtype: Dtype::BF16,
                shape: vec![rows, 1],
                bytes: bf16_bytes(&scales),
            },
        ),
    ]
}

pub(super) fn decode(rows: usize, cols: usize, l: &CtLinear) -> Vec<f32> {
    let codes = &tensor(l, "weight").bytes;
    let scales = bf16_values(&tensor(l, "weight_scale").bytes);
    (0..rows * cols)
        .map(|i| E4M3.decode(codes[i]) * scales[i / cols])
        .collect()
}
