//! The in-place quantizer and the blocked transpose are plumbing for the training path; they
//! must return exactly what the out-of-place quantizer returns on the naively transposed data.

mod common;

use nibble_formats::transpose::{transpose_into, transposed};
use nibble_formats::{ClipMask, quantize_dequantize, quantize_dequantize_in_place};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn data(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..rows * cols)
        .map(|i| rng.random_range(-1.0f32..1.0) * if i % 53 == 0 { 200.0 } else { 1.0 })
        .collect();
    v[101] = f32::NAN;
    v[rows * cols / 2] = -0.0;
    v
}

#[test]
fn in_place_equals_out_of_place_for_every_kind_of_spec() {
    let (rows, cols) = (160, 256);
    let x = data(rows, cols, 3);
    for spec in common::spec_zoo() {
        let want = quantize_dequantize(&spec, &x, &[rows, cols], 17).unwrap();
        let mut buf = x.clone();
        // A stale mask of the right shape must be cleared.
        let mut clip = ClipMask::new(rows, cols);
        clip.bits.fill(u64::MAX);
        quantize_dequantize_in_place(&spec, &mut buf, &[rows, cols], 17, &mut clip).unwrap();
        let a: Vec<u32> = want.values.iter().map(|v| v.to_bits()).collect();
        let b: Vec<u32> = buf.iter().map(|v| v.to_bits()).collect();
        assert!(a == b, "values differ in place for {spec:?}");
        assert_eq!(want.clip, clip, "clip mask differs in place for {spec:?}");
    }
}

#[test]
fn blocked_transpose_matches_the_definition() {
    // Shapes that are not multiples of the tile, single rows/columns, and empty.
    for (rows, cols) in [
        (1, 1),
        (1, 77),
        (77, 1),
        (33, 65),
        (64, 32),
        (100, 257),
        (0, 5),
    ] {
        let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = transposed(&x, rows, cols);
        for i in 0..rows {
            for j in 0..cols {
                assert_eq!(
                    t[j * rows + i],
                    x[i * cols + j],
                    "({i},{j}) of {rows}×{cols}"
                );
            }
        }
        let mut back = vec![f32::NAN; x.len()];
        transpose_into(&t, cols, rows, &mut back);
        assert_eq!(back, x);
    }
}
