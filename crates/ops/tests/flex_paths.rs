//! The Flex primitives read tensors in place, quantize owned buffers in place and gather
//! transposed views with a blocked transpose; they must return exactly what the generic host
//! path (contiguous copy, then nibble-formats) returns, for every kind of input layout.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::spec::{
    Block, ExpRounding, QuantSpec, Rounding, ScaleRounding, ScaleRule, Signs, Transform,
};
use nibble_formats::{Element, hadamard};
use nibble_ops::{LpBackend, host};

fn values(n: usize, seed: u64) -> Vec<f32> {
    // A cheap deterministic spread with outliers, zeros and a NaN-free tail.
    (0..n)
        .map(|i| {
            let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let u = (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if i % 97 == 0 {
                u * 300.0
            } else if i % 89 == 0 {
                0.0
            } else {
                u
            }
        })
        .collect()
}

fn tensor(v: Vec<f32>, dims: [usize; 2]) -> Tensor<Flex, 2> {
    Tensor::from_data(TensorData::new(v, dims), &Default::default())
}

fn bits(t: Tensor<Flex, 2>) -> Vec<u32> {
    let v: Vec<f32> = t.into_data().into_vec().unwrap();
    v.iter().map(|x| x.to_bits()).collect()
}

/// The same logical [64, 128] tensor in four layouts: unique, shared, a transposed view and a
/// sliced view (offset into a larger buffer).
/// (name, the tensor, a second handle that keeps it shared).
type Layout = (&'static str, Tensor<Flex, 2>, Option<Tensor<Flex, 2>>);

fn layouts(seed: u64) -> Vec<Layout> {
    let (r, c) = (64, 128);
    let v = values(r * c, seed);
    let unique = tensor(v.clone(), [r, c]);
    let shared = tensor(v.clone(), [r, c]);
    let keep_alive = shared.clone();
    let mut t = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = v[i * c + j];
        }
    }
    let transposed = tensor(t, [c, r]).transpose();
    let mut big = vec![7f32; (r + 3) * c];
    big[3 * c..].copy_from_slice(&v);
    let sliced = tensor(big, [r + 3, c]).slice([3..r + 3, 0..c]);
    vec![
        ("unique", unique, None),
        ("shared", shared, Some(keep_alive)),
        ("transposed", transposed, None),
        ("sliced", sliced, None),
    ]
}

fn specs() -> Vec<QuantSpec> {
    vec![
        QuantSpec {
            transform: Transform::Hadamard { g: 32 },
            ..QuantSpec::quartet_forward(ExpRounding::Nearest)
        },
        QuantSpec {
            transform: Transform::RandomizedHadamard {
                g: 32,
                signs: Signs::Key(99),
            },
            ..QuantSpec::quartet_backward(Rounding::Stochastic)
        },
        QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        QuantSpec::nvfp4(
            Block::Group(16),
            Rounding::Stochastic,
            Transform::RandomizedHadamard {
                g: 16,
                signs: Signs::TeFixed16,
            },
        ),
        QuantSpec {
            block: Block::Tile(32),
            scale: ScaleRule::Nvfp4 {
                scale_rounding: ScaleRounding::Rne,
            },
            ..QuantSpec::nvfp4(Block::Tile(16), Rounding::Rne, Transform::None)
        },
        QuantSpec::bf16(),
    ]
}

#[test]
fn flex_quantize_equals_the_generic_host_path_for_every_layout() {
    let prim = |t: Tensor<Flex, 2>| t.into_primitive().tensor();
    let tensor_of = |p| Tensor::<Flex, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(p));
    for spec in specs() {
        for want_mask in [true, false] {
            // The reference reads its own copy, so that the tensor under test keeps its layout and
            // ownership (the unique one is moved in and quantized in place).
            let reference = layouts(5);
            for ((name, t, _keep_alive), (_, r, _)) in layouts(5).into_iter().zip(reference) {
                let (want, want_keep) = host::quantize::<Flex>(r, &spec, 42, want_mask);
                let (got, got_keep) = Flex::lp_quantize(prim(t), &spec, 42, want_mask);
                assert!(
                    bits(want) == bits(tensor_of(got)),
                    "{name} values differ for {spec:?} (mask {want_mask})"
                );
                assert_eq!(want_keep.is_some(), got_keep.is_some());
                if let (Some(w), Some(g)) = (want_keep, got_keep) {
                    assert!(bits(w) == bits(tensor_of(g)), "{name} keep mask, {spec:?}");
                }
            }
        }
    }
}

#[test]
fn flex_scaled_cast_equals_the_generic_host_path() {
    for (name, t, _keep_alive) in layouts(6) {
        let (want, want_amax) = host::cast_scaled::<Flex>(t.clone(), Element::E4M3, 3.5);
        let (got, got_amax) = Flex::lp_cast_scaled(t.into_primitive().tensor(), Element::E4M3, 3.5);
        let got = Tensor::<Flex, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(got));
        assert_eq!(want_amax.to_bits(), got_amax.to_bits(), "{name} amax");
        assert!(bits(want) == bits(got), "{name} values");
    }
}

#[test]
fn flex_hadamard_and_unrotate_equal_the_generic_host_path() {
    let signs = hadamard::random_signs(3, 32);
    for (name, t, _keep_alive) in layouts(8) {
        for (inverse, after) in [(false, false), (true, false), (false, true), (true, true)] {
            let want = host::hadamard::<Flex>(t.clone(), 32, Some(&signs), inverse, after);
            let got = Flex::lp_hadamard(
                t.clone().into_primitive().tensor(),
                32,
                Some(&signs),
                inverse,
                after,
            );
            let got = Tensor::<Flex, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(got));
            assert!(
                bits(want) == bits(got),
                "{name} hadamard (inverse {inverse}, after {after})"
            );
        }
        let keep = tensor(
            values(64 * 128, 11)
                .iter()
                .map(|v| if *v > 0.1 { 0.0 } else { 1.0 })
                .collect(),
            [64, 128],
        );
        for (k, g) in [(true, Some(32)), (false, Some(16)), (true, None)] {
            let keep = k.then(|| keep.clone());
            // Reference from other parts: burn's multiply, then the host inverse Hadamard.
            let masked = match keep.clone() {
                Some(k) => t.clone() * k,
                None => t.clone(),
            };
            let want = match g {
                Some(g) => host::hadamard::<Flex>(masked, g, None, true, false),
                None => masked,
            };
            let got = Flex::lp_unrotate(
                t.clone().into_primitive().tensor(),
                keep.map(|k| k.into_primitive().tensor()),
                g,
            );
            let got = Tensor::<Flex, 2>::from_primitive(burn::tensor::TensorPrimitive::Float(got));
            assert!(
                bits(want) == bits(got),
                "{name} unrotate (keep {k}, g {g:?})"
            );
        }
    }
}
