//! Helpers shared by the integration tests (independent of the code under test).
#![allow(dead_code)]

use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

/// The §7.2 protocol of the spec: `n` samples in blocks of `g`, block b ~ N(0, σ_b²) with
/// σ_b = 2^U, U ~ Uniform[0, 1). Returns (data, σ per block).
pub fn gaussian_blocks(n: usize, g: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sig = Vec::with_capacity(n / g);
    let mut data = Vec::with_capacity(n);
    for _ in 0..n / g {
        let s = 2f64.powf(rng.random::<f64>());
        sig.push(s as f32);
        for _ in 0..g {
            data.push((rng.sample::<f64, _>(StandardNormal) * s) as f32);
        }
    }
    (data, sig)
}

/// Mean of (q − v)² / σ_b² over all elements.
pub fn relative_mse(data: &[f32], q: &[f32], sig: &[f32], g: usize) -> f64 {
    let mut acc = 0f64;
    for (i, (&v, &w)) in data.iter().zip(q).enumerate() {
        let s = sig[i / g] as f64;
        acc += ((w as f64 - v as f64) / s).powi(2);
    }
    acc / data.len() as f64
}

/// Brute-force round-to-nearest over an explicit list of finite grid values (ties to the value
/// whose code is even), saturating to the extremes. Independent of the bit-twiddling encoder.
pub fn nearest_code(x: f32, table: &[(u8, f32)]) -> u8 {
    let mut best: Option<(u8, f64)> = None;
    for &(c, v) in table {
        if !v.is_finite() {
            continue;
        }
        let d = (v as f64 - x as f64).abs();
        best = match best {
            None => Some((c, d)),
            Some((bc, bd)) => {
                if d < bd || (d == bd && mantissa_even(c) && !mantissa_even(bc)) {
                    Some((c, d))
                } else {
                    Some((bc, bd))
                }
            }
        };
    }
    best.unwrap().0
}

fn mantissa_even(code: u8) -> bool {
    code & 1 == 0
}

/// One spec of every kind the quantizer distinguishes (block shapes, scale rules, fused
/// transforms, SR, tensor-level pre-pass, bf16), for path-equivalence tests.
pub fn spec_zoo() -> Vec<nibble_formats::QuantSpec> {
    use nibble_formats::{
        Block, Element, ExpRounding, QuantSpec, Rounding, ScaleRule, Signs, Transform,
    };
    vec![
        QuantSpec::quartet_forward(ExpRounding::Nearest),
        QuantSpec::quartet_forward(ExpRounding::Floor),
        QuantSpec::quartet_backward(Rounding::Rne),
        QuantSpec::quartet_backward(Rounding::Stochastic),
        QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor),
        QuantSpec::nvfp4(
            Block::Group(16),
            Rounding::Stochastic,
            Transform::RandomizedHadamard {
                g: 16,
                signs: Signs::TeFixed16,
            },
        ),
        QuantSpec {
            block: Block::Group(64),
            ..QuantSpec::mx(Element::E5M2, ScaleRule::Ceil)
        },
        QuantSpec {
            block: Block::Tile(128),
            scale: ScaleRule::Absmax { pow2: true },
            ..QuantSpec::fp8_tensor(Element::E4M3)
        },
        QuantSpec {
            block: Block::Group(128),
            scale: ScaleRule::MinMax,
            ..QuantSpec::fp8_tensor(Element::Int {
                bits: 4,
                signed: false,
            })
        },
        QuantSpec {
            block: Block::Group(32),
            scale: ScaleRule::Absmean,
            ..QuantSpec::fp8_tensor(Element::Ternary)
        },
        QuantSpec::bf16(),
    ]
}
