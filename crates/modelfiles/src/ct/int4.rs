//! W4A16 `pack-quantized`: signed INT4 codes q ∈ [−8, 7] per group of inputs, a bf16 scale per
//! (row, group), and for the asymmetric variant a signed zero point per (row, group).
//!
//! Scales follow compressed-tensors' own calibration (symmetric `amax / 7.5`, asymmetric
//! `(max − min) / 15` over a range that includes 0), rounded to bf16 *before* the codes are
//! computed, so the stored scale is the one the codes were made with.
//!
//! Stored: `weight_packed` I32 `[rows, cols/8]` (code + 8, eight per word, LSB first),
//! `weight_scale` BF16 `[rows, cols/group]`, `weight_shape` I64 `[2]`, and (asymmetric)
//! `weight_zero_point` I32 `[ceil(rows/8), cols/group]`, packed along the *rows*: the point of
//! (row r, group g) is nibble r % 8 of word [r / 8, g], as zp + 8.

use super::{CtLinear, CtTensor, bf16_bytes, bf16_scale, bf16_values, tensor};
use nibble_formats::pack::{pack_int4_i32, unpack_int4_i32};
use safetensors::Dtype;

fn i32_bytes(words: &[i32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn i32_words(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Scale and zero point of one group.
fn group_params(v: &[f32], symmetric: bool) -> (f32, i32) {
    if symmetric {
        (bf16_scale(super::amax(v) / 7.5), 0)
    } else {
        let lo = v.iter().fold(0f32, |m, x| m.min(*x));
        let hi = v.iter().fold(0f32, |m, x| m.max(*x));
        let s = bf16_scale((hi - lo) / 15.0);
        let zp = (-8.0 - lo / s).round_ties_even().clamp(-8.0, 7.0) as i32;
        (s, zp)
    }
}

/// The code of `x` on the grid (s, zp).
fn code(x: f32, s: f32, zp: i32) -> i32 {
    ((x / s).round_ties_even() + zp as f32).clamp(-8.0, 7.0) as i32
}

pub(super) fn encode(
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    w: &[f32],
) -> CtLinear {
    encode_with(rows, cols, group, symmetric, w, |_, v| {
        group_params(v, symmetric)
    })
}

/// W4A16 with the trained grid's scale and signed zero point of each (row, group) set (index
/// `r·groups + g`), the codes computed against them as compressed-tensors' quantizer does.
pub(super) fn encode_grid(
    rows: usize,
    cols: usize,
    group: usize,
    w: &[f32],
    scales: &[f32],
    zps: Option<&[i32]>,
) -> CtLinear {
    let params = |i: usize, _: &[f32]| (scales[i], zps.map_or(0, |z| z[i]));
    encode_with(rows, cols, group, zps.is_none(), w, params)
}

fn encode_with(
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    w: &[f32],
    params: impl Fn(usize, &[f32]) -> (f32, i32),
) -> CtLinear {
    let groups = cols / group;
    let mut codes = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows * groups);
    let mut zps = vec![0i32; rows * groups];
    for r in 0..rows {
        for g in 0..groups {
            let v = &w[r * cols + g * group..r * cols + (g + 1) * group];
            let (s, zp) = params(r * groups + g, v);
            scales.push(s);
            zps[r * groups + g] = zp;
            codes.extend(v.iter().map(|&x| (code(x, s, zp) + 8) as u8));
        }
    }
    let mut out = vec![
        (
            "weight_packed",
            CtTensor {
                dtype: Dtype::I32,
                shape: vec![rows, cols / 8],
                bytes: i32_bytes(&pack_int4_i32(&codes)),
            },
        ),
        (
            "weight_scale",
            CtTensor {
                dtype: Dtype::BF16,
                shape: vec![rows, groups],
                bytes: bf16_bytes(&scales),
            },
        ),
        (
            "weight_shape",
            CtTensor {
                dtype: Dtype::I64,
                shape: vec![2],
                bytes: [rows as i64, cols as i64]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            },
        ),
    ];
    if !symmetric {
        let words = rows.div_ceil(8);
        let mut packed = vec![0u32; words * groups];
        for r in 0..rows {
            for g in 0..groups {
                let nib = (zps[r * groups + g] + 8) as u32 & 0xF;
                packed[(r / 8) * groups + g] |= nib << (4 * (r % 8));
            }
        }
        let packed: Vec<i32> = packed.into_iter().map(|w| w as i32).collect();
        out.push((
            "weight_zero_point",
            CtTensor {
                dtype: Dtype::I32,
                shape: vec![words, groups],
                bytes: i32_bytes(&packed),
            },
        ));
    }
    out
}

pub(super) fn decode(
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    l: &CtLinear,
) -> Vec<f32> {
    let groups = cols / group;
    let codes = unpack_int4_i32(&i32_words(&tensor(l, "weight_packed").bytes), rows * cols);
    let scales = bf16_values(&tensor(l, "weight_scale").bytes);
    let zps: Vec<f32> = if symmetric {
        vec![0.0; rows * groups]
    } else {
        let words = i32_words(&tensor(l, "weight_zero_point").bytes);
        (0..rows * groups)
            .map(|i| {
                let (r, g) = (i / groups, i % groups);
                ((words[r / 8 * groups + g] as u32 >> (4 * (r % 8))) & 0xF) as f32 - 8.0
            })
            .collect()
    };
    (0..rows * cols)
        .map(|i| {
            let (r, g) = (i / cols, i % cols / group);
            let q = codes[i] as f32 - 8.0;
            (q - zps[r * groups + g]) * scales[r * groups + g]
        })
        .collect()
}
