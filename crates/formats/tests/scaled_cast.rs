//! The one-pass per-tensor cast with a given scale (FP8 delayed scaling) against the general
//! quantizer doing the same thing in three steps, and a hand-worked example.

use nibble_formats::quantize_dequantize;
use nibble_formats::scaled_cast::cast_with_scale;
use nibble_formats::{Block, Element, QuantSpec, Rounding, ScaleRule, Transform};

/// Scale, unscaled per-tensor cast through the block quantizer, unscale.
fn reference(v: &[f32], element: Element, scale: f32) -> (Vec<f32>, f32) {
    let cast = QuantSpec {
        element,
        block: Block::Tensor,
        scale: ScaleRule::None,
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    let scaled: Vec<f32> = v.iter().map(|x| x * scale).collect();
    let q = quantize_dequantize(&cast, &scaled, &[scaled.len()], 0)
        .unwrap()
        .values;
    let amax = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    (q.into_iter().map(|x| x * (1.0 / scale)).collect(), amax)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn one_pass_cast_equals_the_per_tensor_quantizer() {
    // Lengths that are not multiples of the 16 lanes or the task chunk.
    let mut v: Vec<f32> = (0..100_003)
        .map(|i| ((i * 7919 % 20011) as f32 - 10005.0) / 97.0)
        .collect();
    v[5] = 0.0;
    v[6] = -0.0;
    for element in [Element::E4M3, Element::E5M2] {
        for scale in [1.0f32, 3.7, 0.01, 1e6] {
            let (a, am) = cast_with_scale(&v, element, scale);
            let (b, bm) = reference(&v, element, scale);
            assert_eq!(am.to_bits(), bm.to_bits(), "{element:?} amax");
            assert!(bits(&a) == bits(&b), "{element:?} scale {scale}");
        }
    }
    // A NaN or an overflow to Inf anywhere poisons the tensor in both.
    for (i, bad) in [(77_777, f32::NAN), (3, f32::MAX)] {
        let mut w = v.clone();
        w[i] = bad;
        let (a, _) = cast_with_scale(&w, Element::E4M3, 2.0);
        let (b, _) = reference(&w, Element::E4M3, 2.0);
        assert!(a.iter().all(|x| x.is_nan()) && b.iter().all(|x| x.is_nan()));
    }
}

#[test]
fn given_scale_saturates_and_rounds() {
    // scale 2: 1.1 -> 2.2 -> e4m3 2.25 -> 1.125; 300 -> 600 saturates to 448 -> 224.
    let (q, amax) = cast_with_scale(&[1.1, -300.0, 0.0], Element::E4M3, 2.0);
    assert_eq!(q, vec![1.125, -224.0, 0.0]);
    assert_eq!(amax, 300.0);
}
