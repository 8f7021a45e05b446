//! The group kernel on the device runtime (wgpu: lavapipe in CI; CUDA in a cuda build) against the
//! CPU oracle, bit for bit: values and keep mask, for every spec kind the kernel covers, on random
//! data and on adversarial blocks (zeros, exact ties, saturating outliers, NaN/Inf, subnormals, -0,
//! finite values whose QuEST sums overflow f32).
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use cubecl::prelude::*;
mod common;
use common::{Rt, client};
use nibble_formats::spec::{Block, ExpRounding, QuantSpec, Rounding, ScaleRule, Signs, Transform};
use nibble_formats::{Element, quantize_dequantize};
use nibble_kernels::{GroupParams, quantize_group};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

fn specs() -> Vec<QuantSpec> {
    let rht = |g| Transform::RandomizedHadamard {
        g,
        signs: Signs::Key(0xfeed),
    };
    vec![
        // Quartet forward (QuEST, H32; both exponent roundings; a multiplier).
        QuantSpec::quartet_forward(ExpRounding::Nearest),
        QuantSpec::quartet_forward(ExpRounding::Floor),
        QuantSpec {
            scale: ScaleRule::Quest {
                exp_rounding: ExpRounding::Nearest,
                mult: 1.25,
            },
            ..QuantSpec::quartet_forward(ExpRounding::Nearest)
        },
        // QuEST without a transform: the overflow blocks reach the statistics unmixed.
        QuantSpec {
            transform: Transform::None,
            ..QuantSpec::quartet_forward(ExpRounding::Nearest)
        },
        // Quartet backward (3/4 rule, RHT32 with a key; RTN and SR).
        QuantSpec {
            transform: rht(32),
            ..QuantSpec::quartet_backward(Rounding::Rne)
        },
        QuantSpec {
            transform: rht(32),
            ..QuantSpec::quartet_backward(Rounding::Stochastic)
        },
        // Seeded signs (drawn from the call's seed).
        QuantSpec {
            transform: Transform::RandomizedHadamard {
                g: 32,
                signs: Signs::Seeded,
            },
            ..QuantSpec::quartet_backward(Rounding::Stochastic)
        },
        // MXFP8 RCEIL, E4M3 and E5M2; naive MXFP4 (OCP floor); CEIL.
        QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        QuantSpec::mx(Element::E5M2, ScaleRule::RCeil),
        QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor),
        QuantSpec::mx(Element::E2M1, ScaleRule::Ceil),
        // Other block sizes: g = 16 with H16 and SR, g = 64 with QuEST H64.
        QuantSpec {
            block: Block::Group(16),
            transform: Transform::Hadamard { g: 16 },
            rounding: Rounding::Stochastic,
            ..QuantSpec::mx(Element::E2M1, ScaleRule::ThreeQuarters)
        },
        QuantSpec {
            block: Block::Group(64),
            transform: Transform::Hadamard { g: 64 },
            ..QuantSpec::quartet_forward(ExpRounding::Nearest)
        },
        // g = 128 with RHT.
        QuantSpec {
            block: Block::Group(128),
            transform: rht(128),
            ..QuantSpec::quartet_backward(Rounding::Stochastic)
        },
    ]
}

/// Random rows plus adversarial blocks, `cols` = 128.
fn data(rows: usize, seed: u64) -> Vec<f32> {
    let cols = 128;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|i| {
            let x: f32 = rng.sample(StandardNormal);
            let scale = 2f32.powi(rng.random_range(-20..20));
            if i % 211 == 0 {
                x * 1e4 * scale
            } else {
                x * scale
            }
        })
        .collect();
    let block = |v: &mut Vec<f32>, b: usize, vals: &[f32]| {
        for (i, x) in vals.iter().enumerate() {
            v[b * 64 + i % 64] = *x;
        }
    };
    // All zeros (scale 2^-127) and -0.
    block(&mut v, 0, &[0.0]);
    block(&mut v, 1, &[-0.0, 0.0]);
    // E2M1 ties at scale 1 (amax 6): 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.
    block(
        &mut v,
        2,
        &[
            6.0, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, -0.25, -2.5, -5.0, 4.0,
        ],
    );
    // One saturating outlier among small values.
    let mut sat = vec![1e-3f32; 64];
    sat[7] = 3e38;
    block(&mut v, 3, &sat);
    // NaN and Inf blocks.
    let mut nan = vec![1.0f32; 64];
    nan[5] = f32::NAN;
    block(&mut v, 4, &nan);
    let mut inf = vec![1.0f32; 64];
    inf[9] = f32::NEG_INFINITY;
    block(&mut v, 5, &inf);
    // Subnormals and tiny values.
    let sub: Vec<f32> = (0..64)
        .map(|i| f32::from_bits(1 + i * 12345) * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    block(&mut v, 6, &sub);
    // Values at the top of the range.
    let big: Vec<f32> = (0..64).map(|i| f32::MAX / (1.0 + i as f32)).collect();
    block(&mut v, 7, &big);
    // Sums that overflow f32 from finite values (QuEST's Σx and Σx² lanes and their tree):
    // same-sign 1.5e38 (Σx and Σx² overflow), 1e19 (squares finite, their sum overflows),
    // alternating ±1.1e19 (Σx cancels, Σx² overflows), 2^64 (the square overflows) next to
    // 2^64 − 2^40 (the largest finite square).
    block(&mut v, 8, &[1.5e38]);
    block(&mut v, 9, &[1e19]);
    block(&mut v, 10, &[1.1e19, -1.1e19]);
    let edge: Vec<f32> = (0..64)
        .map(|i| {
            if i < 32 {
                2f32.powi(64)
            } else {
                f32::from_bits(2f32.powi(64).to_bits() - 1)
            }
        })
        .collect();
    block(&mut v, 11, &edge);
    v
}

#[test]
fn group_kernel_is_bit_identical_to_the_cpu_oracle() {
    let client = client();
    let (rows, cols) = (96, 128);
    let x = data(rows, 3);
    let input = client.create_from_slice(f32::as_bytes(&x));
    let mut checked = 0;
    for spec in specs() {
        for seed in [1u64, 0x1234_5678_9abc_def0] {
            let p = GroupParams::from_spec(&spec, cols, seed)
                .unwrap_or_else(|| panic!("kernel should cover {spec:?}"));
            let want = quantize_dequantize(&spec, &x, &[rows, cols], seed).unwrap();
            let out = quantize_group::<Rt>(&client, &input, x.len(), &p, true);
            let got = f32::from_bytes(&client.read_one(out.values).unwrap()).to_vec();
            let keep = f32::from_bytes(&client.read_one(out.keep.unwrap()).unwrap()).to_vec();
            let mut bad = Vec::new();
            for i in 0..x.len() {
                if got[i].to_bits() != want.values[i].to_bits() {
                    bad.push((i, x[i], want.values[i], got[i]));
                }
            }
            assert!(
                bad.is_empty(),
                "{} value mismatches for {spec:?} seed {seed}; first (index, input, cpu, gpu): {:?}",
                bad.len(),
                &bad[..bad.len().min(5)]
            );
            for (i, &kept) in keep.iter().enumerate() {
                let k = if want.clip.get_flat(i) { 0.0 } else { 1.0 };
                assert_eq!(kept, k, "keep mask at {i} for {spec:?}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * specs().len());
}

#[test]
fn specs_outside_the_kernel_are_declined() {
    let cols = 128;
    for spec in [
        QuantSpec::bf16(),
        QuantSpec::fp8_tensor(Element::E4M3),
        QuantSpec {
            block: Block::Group(256),
            ..QuantSpec::mx(Element::E4M3, ScaleRule::RCeil)
        },
        QuantSpec {
            block: Block::Group(32),
            scale: ScaleRule::Absmax { pow2: false },
            ..QuantSpec::mx(Element::E4M3, ScaleRule::RCeil)
        },
        QuantSpec::nvfp4(Block::Group(16), Rounding::Rne, Transform::None),
        // FP8 block scaling's absmax→2^k: the block path's scale table (no device division).
        QuantSpec {
            block: Block::Group(128),
            scale: ScaleRule::Absmax { pow2: true },
            ..QuantSpec::mx(Element::E4M3, ScaleRule::RCeil)
        },
    ] {
        assert!(GroupParams::from_spec(&spec, cols, 0).is_none(), "{spec:?}");
    }
    // A row length the blocks do not divide.
    assert!(
        GroupParams::from_spec(&QuantSpec::mx(Element::E4M3, ScaleRule::RCeil), 48, 0).is_none()
    );
}
