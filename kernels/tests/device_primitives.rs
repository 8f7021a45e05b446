//! The rotation and delayed-scaling cast kernels on the device runtime (lavapipe in CI) against
//! nibble-formats, bit for bit: block Hadamard for every size with signs before / after H, forward
//! and inverse; the backward's masked inverse rotation; the per-tensor cast with a given scale onto
//! FP8, bf16 and integer grids, including overflow and NaN poisoning.
#![cfg(any(feature = "wgpu", feature = "cuda"))]

use cubecl::prelude::*;
mod common;
use common::{Rt, client};
use nibble_formats::Element;
use nibble_formats::hadamard;
use nibble_formats::scaled_cast::cast_with_scale;
use nibble_kernels::cast_scaled::cast_scaled;
use nibble_kernels::rotate::{SignSide, covers, rotate};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..n)
        .map(|i| {
            let x: f32 = rng.sample(StandardNormal);
            x * 2f32.powi((i % 37) as i32 - 18)
        })
        .collect();
    v[3] = 0.0;
    v[4] = -0.0;
    v[5] = f32::from_bits(7);
    v[6] = -f32::from_bits(0x3f_ffff);
    v
}

fn same_bits(a: &[f32], b: &[f32], what: &str) {
    let bad: Vec<_> = (0..a.len())
        .filter(|&i| a[i].to_bits() != b[i].to_bits())
        .map(|i| (i, a[i], b[i]))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: {} mismatches, first (index, cpu, gpu): {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

fn read(client: &ComputeClient<Rt>, h: cubecl::server::Handle) -> Vec<f32> {
    f32::from_bytes(&client.read_one(h).unwrap()).to_vec()
}

#[test]
fn rotations_are_bit_identical_to_the_cpu() {
    let client = client();
    let cols = 512;
    let rows = 12;
    let x = data(rows * cols, 1);
    let keep: Vec<f32> = (0..x.len())
        .map(|i| if i % 7 == 3 { 0.0 } else { 1.0 })
        .collect();
    let input = client.create_from_slice(f32::as_bytes(&x));
    let keep_h = client.create_from_slice(f32::as_bytes(&keep));
    for g in hadamard::SIZES {
        assert!(covers(g, cols));
        let signs = hadamard::random_signs(g as u64, g);
        let scale = |v: &mut [f32]| {
            for b in v.chunks_exact_mut(g) {
                for (x, s) in b.iter_mut().zip(&signs) {
                    *x *= s;
                }
            }
        };
        // x·diag(s)·H (forward) and x·H·diag(s) (inverse, or forward with signs after).
        let mut before = x.clone();
        hadamard::forward_rows(&mut before, cols, g, Some(&signs));
        let mut after = x.clone();
        hadamard::inverse_rows(&mut after, cols, g, Some(&signs));
        let mut plain = x.clone();
        hadamard::forward_rows(&mut plain, cols, g, None);
        let mut plain_after = plain.clone();
        scale(&mut plain_after);
        assert_eq!(
            after.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            plain_after.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        // (x ⊙ keep)·H, the backward's unrotate.
        let mut masked: Vec<f32> = x.iter().zip(&keep).map(|(a, b)| a * b).collect();
        hadamard::inverse_rows(&mut masked, cols, g, None);
        let run = |k: Option<&cubecl::server::Handle>, s| {
            read(&client, rotate(&client, &input, x.len(), g, k, s))
        };
        same_bits(
            &before,
            &run(None, Some((&signs, SignSide::Before))),
            "signs before H",
        );
        same_bits(
            &after,
            &run(None, Some((&signs, SignSide::After))),
            "signs after H",
        );
        same_bits(&plain, &run(None, None), "plain H");
        same_bits(&masked, &run(Some(&keep_h), None), "masked unrotate");
    }
    assert!(!covers(16, 40) && !covers(24, 48));
}

#[test]
fn delayed_scaling_cast_is_bit_identical_to_the_cpu() {
    let client = client();
    let n = 70_001;
    let clean = data(n, 2);
    let mut overflow = clean.clone();
    overflow[n / 2] = 3e38;
    let mut nan = clean.clone();
    nan[17] = f32::NAN;
    let int8 = Element::Int {
        bits: 8,
        signed: true,
    };
    for (element, scale) in [
        (Element::E4M3, 448.0 / 3.1),
        (Element::E4M3, 2f32.powi(20)),
        (Element::E5M2, 1.0 / 3.0),
        (Element::Bf16, 1.0),
        (Element::Ternary, 0.7),
        (int8, 127.0 / 5.0),
    ] {
        for (what, x) in [("clean", &clean), ("overflow", &overflow), ("nan", &nan)] {
            let (want, want_amax) = cast_with_scale(x, element, scale);
            let input = client.create_from_slice(f32::as_bytes(x));
            let (h, amax) = cast_scaled(&client, &input, n, element, scale);
            let label = format!("{element:?} × {scale} ({what})");
            same_bits(&want, &read(&client, h), &label);
            assert_eq!(amax.to_bits(), want_amax.to_bits(), "amax of {label}");
        }
    }
}

#[test]
fn nm_mask_is_identical_to_the_cpu() {
    let client = client();
    let (rows, cols) = (24, 96);
    // Few distinct magnitudes (many ties), signed zeros, NaN and Inf.
    let mut w: Vec<f32> = data(rows * cols, 3)
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            if i % 3 == 0 {
                (x * 4.0).round() / 4.0
            } else {
                x
            }
        })
        .collect();
    w[10] = f32::NAN;
    w[11] = f32::INFINITY;
    w[12] = f32::NEG_INFINITY;
    w[40] = -0.0;
    let input = client.create_from_slice(f32::as_bytes(&w));
    for (n, m) in [
        (2, 4),
        (1, 4),
        (3, 4),
        (1, 8),
        (2, 8),
        (4, 8),
        (7, 8),
        (4, 32),
        (0, 4),
    ] {
        let want = nibble_formats::nm_mask::nm_mask(&w, cols, n, m).unwrap();
        let got = read(
            &client,
            nibble_kernels::nm_mask::nm_mask(&client, &input, w.len(), cols, n, m).unwrap(),
        );
        same_bits(&want, &got, &format!("{n}:{m} mask"));
    }
    assert!(nibble_kernels::nm_mask::nm_mask(&client, &input, w.len(), cols, 2, 5).is_err());
}
