//! Layout and value checks of the compressed-tensors codecs against hand-worked tensors and
//! ggml's MXFP4; the byte-level check against compressed-tensors' own decompressor is in
//! `tests/compressed_tensors.rs`.

use super::*;
use crate::quants::{self, GgmlType};

fn lcg(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.2
        })
        .collect()
}

#[test]
fn w4a16_symmetric_layout_by_hand() {
    // One row, one group of 8: amax 7.5 gives the scale 1 (exact in bf16).
    let w = [7.5, -7.5, 1.0, -2.0, 0.4, 0.6, 3.5, -0.5];
    let l = encode(
        CtScheme::W4a16 {
            group: 8,
            symmetric: true,
        },
        1,
        8,
        &w,
        7.5,
    );
    // Codes: 7.5 → 8 clamps to 7; −7.5 → −8; 0.4 → 0; 0.6 → 1; 3.5 → 4 (ties to even);
    // −0.5 → −0 (ties to even). Stored as code + 8, element c in bits 4c.
    let nibbles: [u32; 8] = [15, 0, 9, 6, 8, 9, 12, 8];
    let word = nibbles
        .iter()
        .enumerate()
        .fold(0u32, |w, (c, n)| w | n << (4 * c));
    assert_eq!(tensor(&l, "weight_packed").bytes, word.to_le_bytes());
    assert_eq!(tensor(&l, "weight_packed").shape, vec![1, 1]);
    assert_eq!(
        tensor(&l, "weight_scale").bytes,
        half::bf16::from_f32(1.0).to_bits().to_le_bytes()
    );
    assert_eq!(tensor(&l, "weight_shape").bytes[..8], 1i64.to_le_bytes());
    assert_eq!(tensor(&l, "weight_shape").bytes[8..], 8i64.to_le_bytes());
    assert!(l.iter().all(|(n, _)| *n != "weight_zero_point"));
    let d = decode(
        CtScheme::W4a16 {
            group: 8,
            symmetric: true,
        },
        1,
        8,
        &l,
    );
    assert_eq!(d, vec![7.0, -8.0, 1.0, -2.0, 0.0, 1.0, 4.0, 0.0]);
}

#[test]
fn w4a16_zero_points_pack_along_rows() {
    // 10 rows of one group each: row r < 8 holds c·(r + 1), so min 0 → zp = −8; row 8 is all
    // negative (min −15 → zp = 7); row 9 is all zeros (zp −8, every value exact).
    let (rows, cols) = (10, 8);
    let mut w = vec![0f32; rows * cols];
    for r in 0..8 {
        for c in 0..cols {
            w[r * cols + c] = (c * (r + 1)) as f32;
        }
    }
    for c in 0..cols {
        w[8 * cols + c] = -15.0 + c as f32;
    }
    let s = CtScheme::W4a16 {
        group: 8,
        symmetric: false,
    };
    let l = encode(s, rows, cols, &w, 0.0);
    let zp = tensor(&l, "weight_zero_point");
    assert_eq!(zp.shape, vec![2, 1]);
    // Rows 0..8 in word 0 (zp −8 → nibble 0), row 8 in word 1's low nibble (7 → 15), row 9 next.
    assert_eq!(zp.bytes, [0, 0, 0, 0, 15, 0, 0, 0]);
    let d = decode(s, rows, cols, &l);
    // Row 8: scale 1, every value on the grid.
    assert_eq!(&d[8 * cols..], &w[8 * cols..]);
    assert!(d[9 * cols..].iter().all(|v| *v == 0.0));
}

#[test]
fn w4a16_error_is_about_half_a_step() {
    let (rows, cols, group) = (6, 256, 64);
    let w = lcg(rows * cols, 1);
    for symmetric in [true, false] {
        let s = CtScheme::W4a16 { group, symmetric };
        let l = encode(s, rows, cols, &w, 0.0);
        let scales = bf16_values(&tensor(&l, "weight_scale").bytes);
        let d = decode(s, rows, cols, &l);
        for i in 0..w.len() {
            let step = scales[i / cols * (cols / group) + i % cols / group];
            assert!(
                // Half a step, plus the clip of a symmetric group's positive max at 7·s
                // (s = amax / 7.5 rounded to bf16, relative 2^-8: at most 0.5·s + 7.5·2^-8·s).
                (d[i] - w[i]).abs() <= 0.5 * step * (1.0 + 16.0 / 256.0),
                "sym {symmetric} {i}: {} vs {} (step {step})",
                d[i],
                w[i]
            );
        }
    }
}

#[test]
fn fp8_channel_scales_and_codes() {
    let mut w = lcg(4 * 32, 2);
    w[5] = 0.9; // row 0's amax: its scale is bf16(0.9 / 448)
    let l = encode(CtScheme::Fp8, 4, 32, &w, 0.0);
    let s0 = half::bf16::from_f32(0.9 / 448.0).to_f32();
    assert_eq!(bf16_values(&tensor(&l, "weight_scale").bytes)[0], s0);
    assert_eq!(tensor(&l, "weight_scale").shape, vec![4, 1]);
    let d = decode(CtScheme::Fp8, 4, 32, &l);
    for (i, (a, b)) in d.iter().zip(&w).enumerate() {
        // E4M3 has 3 mantissa bits: relative error ≤ 2^-4 above the subnormal range.
        assert!(
            (a - b).abs() <= b.abs() / 16.0 + 1e-3 * 0.9 / 448.0 * 8.0,
            "{i}: {a} vs {b}"
        );
    }
    // 0x7E is 448, the largest finite E4M3: the row's amax maps onto it (within bf16's scale
    // rounding) and never to NaN (0x7F).
    assert!(tensor(&l, "weight").bytes.iter().all(|&c| c & 0x7F != 0x7F));
}

#[test]
fn nvfp4_global_scale_divides() {
    // amax 6: gs = 448; a block with amax 6 gets the scale e4m3(1 · 448) = 448, so the step is
    // 448 / 448 = 1 and the codes are the E2M1 values themselves.
    let mut w = vec![0f32; 32];
    let vals = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0];
    for (i, v) in vals.iter().enumerate() {
        w[i] = *v;
        w[8 + i] = -*v;
    }
    w[16] = 0.75; // second block: amax 0.75 → scale e4m3(0.125 · 448 = 56) → step 0.125
    let l = encode(CtScheme::Nvfp4, 1, 32, &w, 6.0);
    assert_eq!(
        tensor(&l, "weight_global_scale").bytes,
        448f32.to_le_bytes()
    );
    let sc = &tensor(&l, "weight_scale").bytes;
    assert_eq!(sc.len(), 2);
    assert_eq!(nibble_formats::minifloat::E4M3.decode(sc[0]), 448.0);
    assert_eq!(nibble_formats::minifloat::E4M3.decode(sc[1]), 56.0);
    let p = &tensor(&l, "weight_packed").bytes;
    // Elements 0, 1 → codes 0, 1 (low, high); elements 8, 9 → −0 (0x8), −0.5 (0x9).
    assert_eq!(p[0], 0x10);
    assert_eq!(p[4], 0x98);
    let d = decode(CtScheme::Nvfp4, 1, 32, &l);
    assert_eq!(&d[..16], &w[..16]);
    assert_eq!(d[16], 0.75);
}

#[test]
fn mxfp4_equals_ggml_mxfp4() {
    let (rows, cols) = (3, 96);
    let w = lcg(rows * cols, 3);
    let l = encode(CtScheme::Mxfp4, rows, cols, &w, 0.0);
    let ggml = quants::dequantize(
        GgmlType::MXFP4,
        &quants::quantize(GgmlType::MXFP4, &w).unwrap(),
    )
    .unwrap();
    let d = decode(CtScheme::Mxfp4, rows, cols, &l);
    assert_eq!(
        d.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
        ggml.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    assert_eq!(tensor(&l, "weight_scale").shape, vec![3, 3]);
    assert_eq!(tensor(&l, "weight_packed").shape, vec![3, 48]);
}

#[test]
fn shapes_the_scheme_cannot_take_are_refused() {
    assert!(CtScheme::Nvfp4.check_shape(24).is_err());
    assert!(CtScheme::Mxfp4.check_shape(48).is_err());
    assert!(
        CtScheme::W4a16 {
            group: 128,
            symmetric: true
        }
        .check_shape(192)
        .is_err()
    );
    assert!(
        CtScheme::W4a16 {
            group: 12,
            symmetric: true
        }
        .check_shape(48)
        .is_err()
    );
    assert!(CtScheme::Fp8.check_shape(7).is_ok());
}
