//! Bit packing layouts, and the packed form (codes + scales) against quantize-dequantize.

use nibble_formats::pack::*;
use nibble_formats::{
    Block, Element, ExpRounding, QuantSpec, Rounding, ScaleRounding, ScaleRule, Signs, Transform,
    quantize_dequantize, quantize_packed,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn e2m1_pairs_even_element_in_low_nibble() {
    // Elements 0x1, 0xF, 0x7 → bytes 0xF1, 0x07 (odd tail padded with 0).
    assert_eq!(pack_nibbles(&[0x1, 0xF, 0x7]), [0xF1, 0x07]);
    assert_eq!(unpack_nibbles(&[0xF1, 0x07], 3), [0x1, 0xF, 0x7]);
}

#[test]
fn int4_into_int32_lsb_first() {
    let codes = [1u8, 2, 3, 4, 5, 6, 7, 8, 0xF];
    let words = pack_int4_i32(&codes);
    assert_eq!(words, [0x8765_4321u32 as i32, 0xF]);
    assert_eq!(unpack_int4_i32(&words, 9), codes);
}

#[test]
fn two_bit_four_per_byte() {
    // Ternary −1, 0, +1, +1, −1 → codes 0, 1, 2, 2, 0 → 0b10_10_01_00 = 0xA4, then 0x00.
    assert_eq!(pack_2bit(&[0, 1, 2, 2, 0]), [0xA4, 0x00]);
    assert_eq!(unpack_2bit(&[0xA4, 0x00], 5), [0, 1, 2, 2, 0]);
}

#[test]
fn pack_round_trips_random() {
    let mut rng = StdRng::seed_from_u64(1);
    for n in [0usize, 1, 7, 8, 9, 1001] {
        let c4: Vec<u8> = (0..n).map(|_| rng.random_range(0..16)).collect();
        let c2: Vec<u8> = (0..n).map(|_| rng.random_range(0..4)).collect();
        assert_eq!(unpack_nibbles(&pack_nibbles(&c4), n), c4);
        assert_eq!(unpack_int4_i32(&pack_int4_i32(&c4), n), c4);
        assert_eq!(unpack_2bit(&pack_2bit(&c2), n), c2);
    }
}

fn presets() -> Vec<(&'static str, QuantSpec)> {
    let sr = |s: QuantSpec| QuantSpec {
        rounding: Rounding::Stochastic,
        ..s
    };
    vec![
        (
            "quartet fwd floor",
            QuantSpec::quartet_forward(ExpRounding::Floor),
        ),
        (
            "quartet fwd nearest",
            QuantSpec::quartet_forward(ExpRounding::Nearest),
        ),
        (
            "quartet bwd rtn",
            QuantSpec::quartet_backward(Rounding::Rne),
        ),
        (
            "quartet bwd sr",
            QuantSpec::quartet_backward(Rounding::Stochastic),
        ),
        (
            "mxfp4 ocp",
            QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor),
        ),
        ("mxfp4 ceil", QuantSpec::mx(Element::E2M1, ScaleRule::Ceil)),
        (
            "mxfp8 rceil",
            QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        ),
        (
            "mxfp8 e5m2 sr",
            sr(QuantSpec::mx(Element::E5M2, ScaleRule::RCeil)),
        ),
        (
            "nvfp4 1x16",
            QuantSpec::nvfp4(Block::Group(16), Rounding::Rne, Transform::None),
        ),
        (
            "nvfp4 16x16 up",
            QuantSpec {
                scale: ScaleRule::Nvfp4 {
                    scale_rounding: ScaleRounding::Up,
                },
                ..QuantSpec::nvfp4(Block::Tile(16), Rounding::Rne, Transform::None)
            },
        ),
        (
            "nvfp4 grad rht16 sr",
            QuantSpec::nvfp4(
                Block::Group(16),
                Rounding::Stochastic,
                Transform::RandomizedHadamard {
                    g: 16,
                    signs: Signs::TeFixed16,
                },
            ),
        ),
        ("fp8 tensor", QuantSpec::fp8_tensor(Element::E4M3)),
        (
            "fp8 block 128x128",
            QuantSpec {
                block: Block::Tile(128),
                scale: ScaleRule::Absmax { pow2: true },
                ..QuantSpec::fp8_tensor(Element::E4M3)
            },
        ),
        (
            "int4 sym group 64",
            QuantSpec {
                block: Block::Group(64),
                ..QuantSpec::fp8_tensor(Element::Int {
                    bits: 4,
                    signed: true,
                })
            },
        ),
        (
            "uint4 affine group 128",
            QuantSpec {
                block: Block::Group(128),
                scale: ScaleRule::MinMax,
                ..QuantSpec::fp8_tensor(Element::Int {
                    bits: 4,
                    signed: false,
                })
            },
        ),
        (
            "int2 affine per row",
            QuantSpec {
                block: Block::Row,
                scale: ScaleRule::MinMax,
                ..QuantSpec::fp8_tensor(Element::Int {
                    bits: 2,
                    signed: false,
                })
            },
        ),
        (
            "ternary tensor",
            QuantSpec {
                scale: ScaleRule::Absmean,
                ..QuantSpec::fp8_tensor(Element::Ternary)
            },
        ),
        (
            "ternary group 64",
            QuantSpec {
                block: Block::Group(64),
                scale: ScaleRule::Absmean,
                ..QuantSpec::fp8_tensor(Element::Ternary)
            },
        ),
    ]
}

#[test]
fn packed_dequantize_is_bit_identical_for_every_preset() {
    let mut rng = StdRng::seed_from_u64(5);
    let (rows, cols) = (200, 256);
    let data: Vec<f32> = (0..rows * cols)
        .map(|i| rng.random_range(-1.0f32..1.0) * if i % 97 == 0 { 40.0 } else { 1.0 })
        .collect();
    for (name, spec) in presets() {
        let out = quantize_dequantize(&spec, &data, &[rows, cols], 3).unwrap();
        let p = quantize_packed(&spec, &data, &[rows, cols], 3).unwrap();
        let deq = p.dequantize();
        for (i, (a, b)) in out.values.iter().zip(&deq).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{name}: element {i}: {a} vs {b}");
        }
        let bits = spec.element.bits() as usize;
        assert_eq!(
            p.packed_codes().len(),
            (rows * cols * bits).div_ceil(8),
            "{name}"
        );
        // Error sanity: dequantized values are close to the input (transformed domain aside).
        if spec.transform == Transform::None {
            let rel = out
                .values
                .iter()
                .zip(&data)
                .map(|(q, v)| ((q - v) as f64).powi(2))
                .sum::<f64>()
                / data.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
            let bound = match spec.element {
                // Outliers (×40) carry ~98% of the energy and ternary clips them to ±mean|v|.
                Element::Ternary | Element::Int { bits: 2, .. } => 0.95,
                Element::Int { .. } | Element::E2M1 => 0.1,
                _ => 0.01,
            };
            assert!(rel < bound, "{name}: relative error {rel}");
        }
    }
}
