//! Per-tensor quantizers on the device runtime (FP8 current scaling, bf16 casts) against the CPU
//! oracle, bit for bit, including the NaN policy (one non-finite value poisons the tensor), all-
//! zero tensors (identity scale) and amaxes that make the encode scale saturate.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use cubecl::prelude::*;
mod common;
use common::{Rt, client};
use nibble_formats::spec::{QuantSpec, ScaleRule};
use nibble_formats::{Element, quantize_dequantize};
use nibble_kernels::quantize_blocks;
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

fn check(client: &ComputeClient<Rt>, spec: &QuantSpec, x: &[f32], what: &str) {
    let (rows, cols) = (x.len() / 100, 100);
    let want = quantize_dequantize(spec, x, &[rows, cols], 0).unwrap();
    let input = client.create_from_slice(f32::as_bytes(x));
    let out = quantize_blocks::<Rt>(client, &input, rows, cols, spec, 0, true)
        .unwrap_or_else(|| panic!("the per-tensor mode should cover {spec:?}"));
    let got = f32::from_bytes(&client.read_one(out.values).unwrap()).to_vec();
    let keep = f32::from_bytes(&client.read_one(out.keep.unwrap()).unwrap()).to_vec();
    for i in 0..x.len() {
        assert_eq!(
            got[i].to_bits(),
            want.values[i].to_bits(),
            "{what}: value {i} (input {}) for {spec:?}",
            x[i]
        );
        let k = if want.clip.get_flat(i) { 0.0 } else { 1.0 };
        assert_eq!(keep[i], k, "{what}: keep {i} for {spec:?}");
    }
}

#[test]
fn per_tensor_kernels_are_bit_identical_to_the_cpu_oracle() {
    let client = client();
    let mut rng = StdRng::seed_from_u64(4);
    // 3000 values: not a multiple of the 1024-element amax chunks.
    let random: Vec<f32> = (0..3000)
        .map(|i| {
            let x: f32 = rng.sample(StandardNormal);
            if i % 301 == 0 {
                x * 1e3
            } else {
                x * 2f32.powi(rng.random_range(-30..5))
            }
        })
        .collect();
    let mut with_nan = random.clone();
    with_nan[2999] = f32::NAN;
    let zeros = vec![0.0f32; 300];
    let tiny: Vec<f32> = (0..300)
        .map(|i| f32::from_bits(1 + i as u32) * if i % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let huge: Vec<f32> = (0..300).map(|i| f32::MAX / (1.0 + i as f32)).collect();
    // bf16 ties: values whose low 16 bits are exactly 0x8000.
    let ties: Vec<f32> = (0..300)
        .map(|i| f32::from_bits(0x3f80_8000 + ((i as u32) << 16)))
        .collect();
    let specs = [
        QuantSpec::fp8_tensor(Element::E4M3),
        QuantSpec::fp8_tensor(Element::E5M2),
        QuantSpec {
            scale: ScaleRule::Absmax { pow2: true },
            ..QuantSpec::fp8_tensor(Element::E4M3)
        },
        QuantSpec::bf16(),
    ];
    for spec in &specs {
        for (what, x) in [
            ("random", &random),
            ("one NaN", &with_nan),
            ("zeros", &zeros),
            ("subnormal amax", &tiny),
            ("near f32::MAX", &huge),
            ("bf16 ties", &ties),
        ] {
            check(&client, spec, x, what);
        }
    }
}
