//! `pack-quantized` INT4 (W4A16) and INT2 (W2A16): signed b-bit codes q ∈ [−2^(b−1),
//! 2^(b−1) − 1] per group of inputs, a bf16 scale per (row, group), and for the asymmetric
//! variant a signed zero point per (row, group).
//!
//! Scales follow compressed-tensors' own calibration (symmetric `amax / ((qmax − qmin)/2)`, i.e.
//! amax/7.5 at 4 bits, asymmetric `(max − min) / (qmax − qmin)` over a range that includes 0),
//! rounded to bf16 *before* the codes are computed, so the stored scale is the one the codes
//! were made with.
//!
//! Stored (compressed-tensors' `pack_to_int32`): `weight_packed` I32 `[rows, cols·b/32]` (code +
//! 2^(b−1), 32/b per word, LSB first), `weight_scale` BF16 `[rows, cols/group]`, `weight_shape`
//! I64 `[2]`, and (asymmetric) `weight_zero_point` I32 `[ceil(rows·b/32), cols/group]`, packed
//! along the *rows*: the point of (row r, group g) is field r % (32/b) of word [r / (32/b), g].

use super::{CtLinear, CtTensor, bf16_bytes, bf16_scale, bf16_values, tensor};
use safetensors::Dtype;

/// The code range of `bits`-bit signed integers.
fn range(bits: u32) -> (i32, i32) {
    (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
}

/// Codes + 2^(b−1), 32/b per word, LSB first.
fn pack(codes: &[u8], bits: u32) -> Vec<i32> {
    let per = (32 / bits) as usize;
    let mask = (1u32 << bits) - 1;
    codes
        .chunks(per)
        .map(|c| {
            c.iter().enumerate().fold(0u32, |w, (j, &q)| {
                w | ((q as u32 & mask) << (bits as usize * j))
            }) as i32
        })
        .collect()
}

fn unpack(words: &[i32], n: usize, bits: u32) -> Vec<u8> {
    let per = (32 / bits) as usize;
    let mask = (1u32 << bits) - 1;
    (0..n)
        .map(|i| ((words[i / per] as u32 >> (bits as usize * (i % per))) & mask) as u8)
        .collect()
}

fn i32_bytes(words: &[i32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn i32_words(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Scale and zero point of one group.
fn group_params(v: &[f32], symmetric: bool, bits: u32) -> (f32, i32) {
    let (qmin, qmax) = range(bits);
    let span = (qmax - qmin) as f32;
    if symmetric {
        (bf16_scale(super::amax(v) / (span / 2.0)), 0)
    } else {
        let lo = v.iter().fold(0f32, |m, x| m.min(*x));
        let hi = v.iter().fold(0f32, |m, x| m.max(*x));
        let s = bf16_scale((hi - lo) / span);
        let zp = (qmin as f32 - lo / s)
            .round_ties_even()
            .clamp(qmin as f32, qmax as f32) as i32;
        (s, zp)
    }
}

/// The code of `x` on the grid (s, zp).
fn code(x: f32, s: f32, zp: i32, bits: u32) -> i32 {
    let (qmin, qmax) = range(bits);
    ((x / s).round_ties_even() + zp as f32).clamp(qmin as f32, qmax as f32) as i32
}

pub(super) fn encode(
    bits: u32,
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    w: &[f32],
) -> CtLinear {
    let params = |_, v: &[f32]| group_params(v, symmetric, bits);
    encode_with(bits, rows, cols, group, symmetric, w, params)
}

/// Packed integers with the trained grid's scale and signed zero point of each (row, group) set (index
/// `r·groups + g`), the codes computed against them as compressed-tensors' quantizer does.
pub(super) fn encode_grid(
    bits: u32,
    rows: usize,
    cols: usize,
    group: usize,
    w: &[f32],
    scales: &[f32],
    zps: Option<&[i32]>,
) -> CtLinear {
    let params = |i: usize, _: &[f32]| (scales[i], zps.map_or(0, |z| z[i]));
    encode_with(bits, rows, cols, group, zps.is_none(), w, params)
}

fn encode_with(
    bits: u32,
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    w: &[f32],
    params: impl Fn(usize, &[f32]) -> (f32, i32),
) -> CtLinear {
    let groups = cols / group;
    let qmin = range(bits).0;
    let mut codes = Vec::with_capacity(rows * cols);
    let mut scales = Vec::with_capacity(rows * groups);
    let mut zps = vec![0i32; rows * groups];
    for r in 0..rows {
        for g in 0..groups {
            let v = &w[r * cols + g * group..r * cols + (g + 1) * group];
            let (s, zp) = params(r * groups + g, v);
            scales.push(s);
            zps[r * groups + g] = zp;
            codes.extend(v.iter().map(|&x| (code(x, s, zp, bits) - qmin) as u8));
        }
    }
    let mut out = vec![
        (
            "weight_packed",
            CtTensor {
                dtype: Dtype::I32,
                shape: vec![rows, cols * bits as usize / 32],
                bytes: i32_bytes(&pack(&codes, bits)),
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
        let per = (32 / bits) as usize;
        let words = rows.div_ceil(per);
        let mut packed = vec![0u32; words * groups];
        for r in 0..rows {
            for g in 0..groups {
                let field = (zps[r * groups + g] - qmin) as u32 & ((1 << bits) - 1);
                packed[(r / per) * groups + g] |= field << (bits as usize * (r % per));
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
    bits: u32,
    rows: usize,
    cols: usize,
    group: usize,
    symmetric: bool,
    l: &CtLinear,
) -> Vec<f32> {
    let groups = cols / group;
    let (qmin, per, mask) = (
        range(bits).0 as f32,
        (32 / bits) as usize,
        (1u32 << bits) - 1,
    );
    let words = i32_words(&tensor(l, "weight_packed").bytes);
    let codes = unpack(&words, rows * cols, bits);
    let scales = bf16_values(&tensor(l, "weight_scale").bytes);
    let zps: Vec<f32> = if symmetric {
        vec![0.0; rows * groups]
    } else {
        let words = i32_words(&tensor(l, "weight_zero_point").bytes);
        (0..rows * groups)
            .map(|i| {
                let (r, g) = (i / groups, i % groups);
                let w = words[r / per * groups + g] as u32;
                ((w >> (bits as usize * (r % per))) & mask) as f32 + qmin
            })
            .collect()
    };
    (0..rows * cols)
        .map(|i| {
            let (r, g) = (i / cols, i % cols / group);
            let q = codes[i] as f32 + qmin;
            (q - zps[r * groups + g]) * scales[r * groups + g]
        })
        .collect()
}
