//! The two-pass block quantizer on the device runtime (wgpu: lavapipe in CI; CUDA in a cuda build)
//! against the CPU oracle, bit for bit (values and keep mask): NVFP4 two-level (1×16 RTN/SR, 16×16
//! tiles, both scale roundings), FP8 block scaling (1×128 and 128×128, absmax→2^k), UE8M0 tiles,
//! absmax per group/row, ternary and INT absmean per tensor/row/group — on shapes whose rows and
//! columns the blocks do not divide, on random data with outliers and adversarial blocks, and with
//! a NaN or an Inf in the tensor.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use cubecl::prelude::*;
mod common;
use common::{Rt, client};
use nibble_formats::spec::{Block, QuantSpec, Rounding, ScaleRounding, ScaleRule, Transform};
use nibble_formats::{Element, quantize_dequantize};
use nibble_kernels::block_quantize::{Mode, mode};
use nibble_kernels::quantize_blocks;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

fn specs() -> Vec<(QuantSpec, bool)> {
    let nv = |block, rounding| QuantSpec::nvfp4(block, rounding, Transform::None);
    let fp8 = |block| QuantSpec {
        element: Element::E4M3,
        block,
        scale: ScaleRule::Absmax { pow2: true },
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    let absmean = |element, block, rounding| QuantSpec {
        element,
        block,
        scale: ScaleRule::Absmean,
        rounding,
        transform: Transform::None,
    };
    let int4 = Element::Int {
        bits: 4,
        signed: true,
    };
    // (spec, table mode expected)
    vec![
        (nv(Block::Group(16), Rounding::Rne), true),
        (nv(Block::Group(16), Rounding::Stochastic), true),
        (nv(Block::Tile(16), Rounding::Rne), true),
        (
            QuantSpec {
                scale: ScaleRule::Nvfp4 {
                    scale_rounding: ScaleRounding::Up,
                },
                ..nv(Block::Group(16), Rounding::Rne)
            },
            true,
        ),
        (fp8(Block::Group(128)), true),
        (fp8(Block::Tile(128)), true),
        (
            QuantSpec {
                block: Block::Tile(32),
                ..QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor)
            },
            true,
        ),
        (
            QuantSpec {
                block: Block::Group(32),
                scale: ScaleRule::Absmax { pow2: false },
                ..fp8(Block::Group(32))
            },
            false,
        ),
        (
            QuantSpec {
                element: Element::E5M2,
                scale: ScaleRule::Absmax { pow2: false },
                ..fp8(Block::Row)
            },
            false,
        ),
        (
            absmean(Element::Ternary, Block::Tensor, Rounding::Rne),
            false,
        ),
        (absmean(Element::Ternary, Block::Row, Rounding::Rne), false),
        (
            absmean(Element::Ternary, Block::Group(64), Rounding::Stochastic),
            false,
        ),
        (absmean(int4, Block::Row, Rounding::Stochastic), false),
        (
            QuantSpec {
                scale: ScaleRule::Absmax { pow2: false },
                ..absmean(
                    Element::Int {
                        bits: 8,
                        signed: true,
                    },
                    Block::Tensor,
                    Rounding::Rne,
                )
            },
            false,
        ),
    ]
}

/// Random rows (magnitudes over 40 binades, outliers) plus adversarial runs of 16 values.
fn data(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let x: f32 = rng.sample(StandardNormal);
            let row_scale = 2f32.powi(((i / cols) as i32 % 40) - 20);
            if i % 211 == 0 {
                x * 1e4 * row_scale
            } else {
                x * row_scale
            }
        })
        .collect();
    let mut put = |at: usize, vals: &[f32]| {
        for (i, x) in vals.iter().enumerate() {
            v[at + i] = *x;
        }
    };
    // Zeros and −0 (a whole first tile row segment), E2M1 ties, a saturating outlier among
    // tiny values, subnormals, values near f32::MAX.
    put(0, &[0.0; 16]);
    put(cols, &[-0.0; 16]);
    put(
        2 * cols,
        &[
            6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -2.5, -5.0, 4.0, 0.5, -1.5, 3.0, 2.0,
        ],
    );
    let mut sat = [1e-3f32; 16];
    sat[7] = 3e38;
    put(3 * cols + 16, &sat);
    let sub: Vec<f32> = (0..16)
        .map(|i| f32::from_bits(1 + i * 12345) * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    put(5 * cols + 32, &sub);
    let big: Vec<f32> = (0..16).map(|i| f32::MAX / (1.0 + i as f32)).collect();
    put(7 * cols, &big);
    v
}

fn check(spec: &QuantSpec, x: &[f32], rows: usize, cols: usize, seed: u64, what: &str) {
    let client = client();
    let input = client.create_from_slice(f32::as_bytes(x));
    let want = quantize_dequantize(spec, x, &[rows, cols], seed).unwrap();
    let out = quantize_blocks::<Rt>(&client, &input, rows, cols, spec, seed, true)
        .unwrap_or_else(|| panic!("block path should cover {spec:?}"));
    let got = f32::from_bytes(&client.read_one(out.values).unwrap()).to_vec();
    let keep = f32::from_bytes(&client.read_one(out.keep.unwrap()).unwrap()).to_vec();
    let bad: Vec<_> = (0..x.len())
        .filter(|&i| got[i].to_bits() != want.values[i].to_bits())
        .map(|i| (i, x[i], want.values[i], got[i]))
        .collect();
    assert!(
        bad.is_empty(),
        "{} value mismatches for {spec:?} ({what}, {rows}×{cols}, seed {seed}); first (index, input, cpu, gpu): {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    for (i, &kept) in keep.iter().enumerate() {
        let k = if want.clip.get_flat(i) { 0.0 } else { 1.0 };
        assert_eq!(kept, k, "keep mask at {i} for {spec:?} ({what})");
    }
}

#[test]
fn block_path_is_bit_identical_to_the_cpu_oracle() {
    let mut checked = 0;
    for (rows, cols) in [(96, 256), (37, 200)] {
        let clean = data(rows, cols, 7);
        // Without the adversarial values and the outliers, whose tensor amax sends most NVFP4
        // block scales to 0: rows over 2^±5, clamped at 100, so the block scales use the
        // whole E4M3 range.
        let moderate: Vec<f32> = data(rows, cols, 8)
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let r = (i / cols) as i32 % 40 - 20;
                let y = x * 2f32.powf(-0.75 * r as f32);
                if y.abs() > 100.0 {
                    100f32.copysign(y)
                } else {
                    y
                }
            })
            .collect();
        for (spec, table) in specs() {
            let m = mode(&spec, cols).unwrap_or_else(|| panic!("{spec:?} not covered"));
            assert_eq!(matches!(m, Mode::Table { .. }), table, "{spec:?}: {m:?}");
            for seed in [1u64, 0x1234_5678_9abc_def0] {
                check(&spec, &clean, rows, cols, seed, "random + adversarial");
                check(&spec, &moderate, rows, cols, seed, "moderate");
                checked += 2;
            }
            // One NaN, one −Inf: per-tensor and two-level scales poison everything, block
            // scales only their blocks.
            for (at, bad) in [
                (5 * cols + 3, f32::NAN),
                (rows * cols - 1, f32::NEG_INFINITY),
            ] {
                let mut x = clean.clone();
                x[at] = bad;
                check(&spec, &x, rows, cols, 3, &format!("{bad} at {at}"));
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 2 * 6 * specs().len());
}

#[test]
fn specs_outside_the_block_path_are_declined() {
    for spec in [
        // Transforms belong to the fused group kernel or the host.
        QuantSpec::nvfp4(
            Block::Group(16),
            Rounding::Rne,
            Transform::Hadamard { g: 16 },
        ),
        // QuEST needs block moments; the 3/4 rule a pre-factor; min-max a zero point.
        QuantSpec::quartet_forward(nibble_formats::spec::ExpRounding::Nearest),
        QuantSpec {
            transform: Transform::None,
            ..QuantSpec::quartet_backward(Rounding::Rne)
        },
        QuantSpec {
            element: Element::Int {
                bits: 4,
                signed: false,
            },
            block: Block::Group(32),
            scale: ScaleRule::MinMax,
            rounding: Rounding::Rne,
            transform: Transform::None,
        },
        // bf16 has no stochastic rounding here, and no blocks.
        QuantSpec {
            rounding: Rounding::Stochastic,
            ..QuantSpec::bf16()
        },
        QuantSpec {
            block: Block::Row,
            ..QuantSpec::bf16()
        },
        // Absmean over a tile is not implemented on the device.
        QuantSpec {
            element: Element::Ternary,
            block: Block::Tile(16),
            scale: ScaleRule::Absmean,
            rounding: Rounding::Rne,
            transform: Transform::None,
        },
    ] {
        assert!(mode(&spec, 128).is_none(), "{spec:?}");
    }
}
