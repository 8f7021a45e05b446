//! Properties of the block quantizer: NaN/Inf policy, zeros, partial blocks, tiles, errors,
//! determinism and the transformed domain.

use nibble_formats::hadamard;
use nibble_formats::minifloat::E2M1;
use nibble_formats::{
    Block, Element, ExpRounding, FormatError, QuantSpec, Rounding, ScaleRule, Transform,
    quantize_dequantize, quantize_packed, ue8m0,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn nonfinite_poisons_only_its_block() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut data = vec![1.0f32; 96];
        data[40] = bad;
        let spec = QuantSpec::mx(Element::E2M1, ScaleRule::RCeil);
        let out = quantize_dequantize(&spec, &data, &[96], 0).unwrap();
        assert!(out.values[32..64].iter().all(|v| v.is_nan()), "{bad}");
        assert!(
            out.values[..32]
                .iter()
                .chain(&out.values[64..])
                .all(|v| *v == 1.0)
        );
        assert!((32..64).all(|c| out.clip.get(0, c)));
        let p = quantize_packed(&spec, &data, &[96], 0).unwrap();
        // RCEIL for amax 1 on E2M1: 2^ceil(log2(1/6)) = 2^-2, byte 125.
        assert_eq!(p.scale_codes(), [125, ue8m0::NAN, 125]);
    }
    // Per-tensor scaling: one NaN makes the whole tensor NaN (the scale is NaN).
    let out = quantize_dequantize(
        &QuantSpec::fp8_tensor(Element::E4M3),
        &[1.0, f32::NAN, 2.0],
        &[3],
        0,
    )
    .unwrap();
    assert!(out.values.iter().all(|v| v.is_nan()));
}

#[test]
fn zero_blocks_stay_zero_with_the_smallest_scale() {
    let data = vec![0.0f32; 64];
    for spec in [
        QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor),
        QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        QuantSpec::quartet_backward(Rounding::Stochastic),
        QuantSpec::quartet_forward(ExpRounding::Nearest),
    ] {
        let out = quantize_dequantize(&spec, &data, &[2, 32], 1).unwrap();
        assert!(out.values.iter().all(|v| *v == 0.0), "{spec:?}");
        assert_eq!(out.clip.count(), 0);
    }
    let p = quantize_packed(
        &QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor),
        &data,
        &[2, 32],
        0,
    )
    .unwrap();
    assert_eq!(p.scale_codes(), [0, 0]);
}

#[test]
fn negative_zero_is_preserved() {
    let out = quantize_dequantize(
        &QuantSpec::mx(Element::E2M1, ScaleRule::RCeil),
        &[-0.0, 1.0],
        &[2],
        0,
    )
    .unwrap();
    assert!(out.values[0] == 0.0 && out.values[0].is_sign_negative());
}

#[test]
fn partial_last_block_uses_its_own_amax() {
    // 40 columns, g = 32: the second block has 8 elements.
    let mut data = vec![0.1f32; 40];
    data[35] = 5.0;
    let p = quantize_packed(
        &QuantSpec::mx(Element::E2M1, ScaleRule::RCeil),
        &data,
        &[40],
        0,
    )
    .unwrap();
    assert_eq!(p.blocks.len(), 2);
    assert_eq!(p.scales(), [2f32.powi(-5), 1.0]);
}

#[test]
fn tiles_share_one_scale_per_g_by_g() {
    let (rows, cols, g) = (40, 48, 16);
    let mut data = vec![1.0f32; rows * cols];
    data[17 * cols + 20] = 448.0; // tile (1, 1)
    let spec = QuantSpec {
        block: Block::Tile(g),
        ..QuantSpec::fp8_tensor(Element::E4M3)
    };
    let p = quantize_packed(&spec, &data, &[rows, cols], 0).unwrap();
    assert_eq!(p.blocks.len(), 3 * 3);
    let s = p.scales();
    for (t, &v) in s.iter().enumerate() {
        let want = if t == 4 { 1.0 } else { 1.0 / 448.0 };
        assert!((v - want).abs() <= want * 1e-6, "tile {t}: {v}");
    }
    assert_eq!(p.block_of(17, 20), 4);
    assert_eq!(p.block_of(39, 47), 8);
}

#[test]
fn errors_are_reported_not_panics() {
    let spec = QuantSpec::quartet_forward(ExpRounding::Nearest);
    assert!(matches!(
        quantize_dequantize(&spec, &[0.0; 48], &[48], 0),
        Err(FormatError::HadamardDivisibility { cols: 48, g: 32 })
    ));
    assert!(matches!(
        quantize_dequantize(&spec, &[0.0; 10], &[2, 32], 0),
        Err(FormatError::ShapeMismatch {
            expected: 64,
            actual: 10,
            ..
        })
    ));
    let bad = QuantSpec {
        element: Element::Int {
            bits: 4,
            signed: true,
        },
        ..QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor)
    };
    assert!(matches!(
        quantize_dequantize(&bad, &[0.0; 32], &[32], 0),
        Err(FormatError::InvalidSpec(_))
    ));
    let bad = QuantSpec {
        rounding: Rounding::Stochastic,
        ..QuantSpec::bf16()
    };
    assert!(bad.validate().is_err());
    let bad = QuantSpec {
        transform: Transform::Hadamard { g: 48 },
        ..QuantSpec::mx(Element::E2M1, ScaleRule::RCeil)
    };
    assert!(bad.validate().is_err());
    assert!(quantize_packed(&QuantSpec::bf16(), &[1.0], &[1], 0).is_err());
}

#[test]
fn bf16_spec_is_rne_cast() {
    let x = [
        1.0f32 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        3.0e38,
        -1.0e-40,
    ];
    let out = quantize_dequantize(&QuantSpec::bf16(), &x, &[4], 0).unwrap();
    assert_eq!(out.values[0], 1.0, "tie to even");
    assert_eq!(out.values[1], 1.0 + 2f32.powi(-6));
    assert_eq!(out.values[2], half::bf16::from_f32(3.0e38).to_f32());
}

#[test]
fn transform_output_is_in_the_rotated_domain() {
    let mut rng = StdRng::seed_from_u64(3);
    let data: Vec<f32> = (0..8 * 64).map(|_| rng.random_range(-2.0..2.0)).collect();
    let spec = QuantSpec::quartet_forward(ExpRounding::Nearest);
    let out = quantize_dequantize(&spec, &data, &[8, 64], 0).unwrap();
    // Equal to rotating first and quantizing without a transform.
    let mut rot = data.clone();
    hadamard::forward_rows(&mut rot, 64, 32, None);
    let plain = QuantSpec {
        transform: Transform::None,
        ..spec
    };
    let ref_out = quantize_dequantize(&plain, &rot, &[8, 64], 0).unwrap();
    assert!(
        out.values
            .iter()
            .zip(&ref_out.values)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    assert_eq!(out.clip, ref_out.clip);
    // Rotating back gives a close approximation of the input.
    let mut back = out.values.clone();
    hadamard::inverse_rows(&mut back, 64, 32, None);
    let err: f32 = back
        .iter()
        .zip(&data)
        .map(|(a, b)| (a - b).powi(2))
        .sum::<f32>()
        / data.len() as f32;
    assert!(err < 0.05, "{err}");
}

#[test]
fn results_do_not_depend_on_how_rows_are_split() {
    // Same rows quantized alone and inside a large tensor (different task splits) agree.
    let mut rng = StdRng::seed_from_u64(4);
    let cols = 128;
    let data: Vec<f32> = (0..3000 * cols)
        .map(|_| rng.random_range(-3.0..3.0))
        .collect();
    let spec = QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor);
    let big = quantize_dequantize(&spec, &data, &[3000, cols], 0).unwrap();
    let row = 2047;
    let one = quantize_dequantize(&spec, &data[row * cols..(row + 1) * cols], &[cols], 0).unwrap();
    assert_eq!(&big.values[row * cols..(row + 1) * cols], &one.values[..]);
    // E2M1 values times a power of two.
    assert!(big.values.iter().all(|v| {
        let x = v.abs();
        x == 0.0 || (0..16).any(|c| (E2M1.decode(c) / x).log2().fract() == 0.0)
    }));
}
