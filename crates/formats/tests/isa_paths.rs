//! The quantizer is compiled for several vector ISAs and picked at run time; every path must
//! return the same bits (values, clip mask, codes and scales), for every kind of spec.

mod common;

use nibble_formats::isa::{self, Isa};
use nibble_formats::{Element, quantize_dequantize, quantize_packed};
use rand::{Rng, SeedableRng, rngs::StdRng};

#[test]
fn all_isa_paths_agree_bit_for_bit() {
    let mut rng = StdRng::seed_from_u64(12);
    let (rows, cols) = (96, 512);
    let mut data: Vec<f32> = (0..rows * cols)
        .map(|i| rng.random_range(-1.0f32..1.0) * if i % 61 == 0 { 300.0 } else { 1.0 })
        .collect();
    data[777] = f32::NAN;
    data[5000] = -0.0;
    data[9000] = f32::INFINITY;
    let specs = common::spec_zoo();
    let run = |isa: Option<Isa>| {
        isa::force(isa);
        let r: Vec<_> = specs
            .iter()
            .map(|s| {
                let o = quantize_dequantize(s, &data, &[rows, cols], 9).unwrap();
                let p = (s.element != Element::Bf16)
                    .then(|| quantize_packed(s, &data, &[rows, cols], 9).unwrap());
                let bits: Vec<u32> = o.values.iter().map(|v| v.to_bits()).collect();
                (
                    bits,
                    o.clip,
                    p.map(|p| {
                        (
                            p.codes.clone(),
                            p.scale_codes(),
                            p.scales().iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                        )
                    }),
                )
            })
            .collect();
        isa::force(None);
        r
    };
    let reference = run(Some(Isa::Baseline));
    for isa in [Some(Isa::Avx2), None] {
        let got = run(isa);
        for (k, (a, b)) in reference.iter().zip(&got).enumerate() {
            assert!(
                a == b,
                "ISA {isa:?} differs from baseline for spec {:?}",
                specs[k]
            );
        }
    }
}
