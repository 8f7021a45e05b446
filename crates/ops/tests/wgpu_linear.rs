//! On burn's wgpu backend (lavapipe in CI) the quantizers run as nibble-kernels' kernels (fused
//! group kernel, two-pass block quantizer): the primitive must equal the CPU
//! (Flex) path bit for bit, and the quantized linear layers of the presets with their custom
//! backward must match the CPU layers up to GEMM summation order.
#![cfg(feature = "wgpu")]

use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{TensorData, TensorPrimitive};
use nibble_formats::Element;
use nibble_formats::spec::{Block, ExpRounding, QuantSpec, Rounding, ScaleRule, Signs, Transform};
use nibble_ops::{LayerCall, LpBackend, lp_linear, preset};

type Wgpu = burn::backend::Wgpu<f32, i32, u32>;

/// `Wgpu` must be burn's plain cube backend (no fusion), which the kernels are implemented for.
fn _is_cube_backend(
    b: Wgpu,
) -> burn_cubecl::CubeBackend<burn_cubecl::cubecl::wgpu::WgpuRuntime, f32, i32, u32> {
    b
}

fn values(n: usize, seed: u64) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = (i as u64 ^ seed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let u = (h >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            if i % 97 == 0 { u * 40.0 } else { u }
        })
        .collect()
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

#[test]
fn wgpu_quantize_equals_the_cpu_bit_for_bit() {
    let (r, c) = (64, 128);
    let v = values(r * c, 1);
    let nv = |block, rounding| QuantSpec::nvfp4(block, rounding, Transform::None);
    let fp8_tile = QuantSpec {
        element: Element::E4M3,
        block: Block::Tile(128),
        scale: ScaleRule::Absmax { pow2: true },
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    let ternary = QuantSpec {
        element: Element::Ternary,
        block: Block::Tensor,
        scale: ScaleRule::Absmean,
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    let asym = QuantSpec {
        element: Element::Int {
            bits: 4,
            signed: false,
        },
        block: Block::Group(32),
        scale: ScaleRule::MinMax,
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    // (spec, the device quantizer expected to cover it)
    let specs = [
        (QuantSpec::quartet_forward(ExpRounding::Nearest), "group"),
        (
            QuantSpec {
                transform: Transform::RandomizedHadamard {
                    g: 32,
                    signs: Signs::Key(5),
                },
                ..QuantSpec::quartet_backward(Rounding::Stochastic)
            },
            "group",
        ),
        (QuantSpec::bf16(), "blocks"),
        (QuantSpec::fp8_tensor(Element::E5M2), "blocks"),
        (nv(Block::Group(16), Rounding::Stochastic), "blocks"),
        (nv(Block::Tile(16), Rounding::Rne), "blocks"),
        (fp8_tile, "blocks"),
        (ternary, "blocks"),
        // Not covered by any kernel: the host path on the device.
        (asym, "host"),
    ];
    for (spec, path) in specs {
        let covered = device_path(&spec, c);
        assert_eq!(covered, path, "{spec:?}");
        let cpu =
            Tensor::<Flex, 2>::from_data(TensorData::new(v.clone(), [r, c]), &Default::default());
        let gpu =
            Tensor::<Wgpu, 2>::from_data(TensorData::new(v.clone(), [r, c]), &Default::default());
        let (a, ka) =
            <Flex as LpBackend>::lp_quantize(cpu.into_primitive().tensor(), &spec, 9, true);
        // A transposed view exercises the kernel's contiguous copy.
        let gpu_t = gpu.transpose().transpose();
        let (b, kb) =
            <Wgpu as LpBackend>::lp_quantize(gpu_t.into_primitive().tensor(), &spec, 9, true);
        let f = |p| host(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(p)));
        let g = |p| host(Tensor::<Wgpu, 2>::from_primitive(TensorPrimitive::Float(p)));
        let (a, b) = (f(a), g(b));
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "values differ for {spec:?}"
        );
        assert_eq!(
            f(ka.unwrap()),
            g(kb.unwrap()),
            "keep mask differs for {spec:?}"
        );
    }
}

/// Which device quantizer `LpBackend::lp_quantize` on a cube backend uses for `spec` on rows
/// of `cols` (the same order of preference as `nibble_ops`' cube impl).
fn device_path(spec: &QuantSpec, cols: usize) -> &'static str {
    if nibble_kernels::GroupParams::from_spec(spec, cols, 9).is_some() {
        "group"
    } else if nibble_kernels::block_quantize::mode(spec, cols).is_some() {
        "blocks"
    } else {
        "host"
    }
}

/// Every operand of every preset is quantized on the device (no host round trip), for the
/// inner dimensions of the `tiny` and `small` models and of SmolLM2-135M.
#[test]
fn every_preset_operand_has_a_device_quantizer() {
    for name in nibble_ops::presets::PRESETS {
        let scheme = preset(name).unwrap();
        for spec in scheme.operand_specs().into_iter().flatten() {
            for cols in [128, 256, 512, 576, 1536] {
                assert_ne!(
                    device_path(&spec, cols),
                    "host",
                    "{name}: {spec:?} on rows of {cols}"
                );
            }
        }
    }
}

fn linear<B: LpBackend>(
    scheme: &str,
    x: &[f32],
    w: &[f32],
    t: usize,
    k: usize,
    n: usize,
) -> [Vec<f32>; 3] {
    let dev = Default::default();
    let scheme = Arc::new(preset(scheme).unwrap());
    let xa = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(x.to_vec(), [t, k]), &dev)
        .require_grad();
    let wa = Tensor::<Autodiff<B>, 2>::from_data(TensorData::new(w.to_vec(), [n, k]), &dev)
        .require_grad();
    let y = lp_linear(xa.clone(), wa.clone(), &scheme, &LayerCall::key(77));
    let g = y.clone().sum().backward();
    [
        host(y.inner()),
        host(xa.grad(&g).unwrap()),
        host(wa.grad(&g).unwrap()),
    ]
}

#[test]
fn quantized_linears_on_wgpu_match_the_cpu_up_to_summation_order() {
    let (t, k, n) = (64, 256, 160);
    let x = values(t * k, 2);
    let w: Vec<f32> = values(n * k, 3).iter().map(|v| v * 0.1).collect();
    for scheme in [
        "quartet-mxfp4",
        "nvfp4-te",
        "fp8-block",
        "mxfp8",
        "fp8-current",
    ] {
        compare_linear(scheme, &x, &w, t, k, n);
    }
}

fn compare_linear(scheme: &str, x: &[f32], w: &[f32], t: usize, k: usize, n: usize) {
    let cpu = linear::<Flex>(scheme, x, w, t, k, n);
    let gpu = linear::<Wgpu>(scheme, x, w, t, k, n);
    for (name, a, b) in [
        ("y", &cpu[0], &gpu[0]),
        ("dx", &cpu[1], &gpu[1]),
        ("dw", &cpu[2], &gpu[2]),
    ] {
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max);
        let err = a
            .iter()
            .zip(b)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max);
        // Quantized operands are bit-identical (dY = 1 exactly); only the GEMMs' summation
        // order differs between the backends.
        assert!(
            err <= 1e-5 * scale.max(1.0),
            "{scheme} {name}: max error {err} (scale {scale})"
        );
    }
}

#[test]
fn wgpu_rotation_and_cast_primitives_equal_the_cpu_bit_for_bit() {
    let (r, c) = (48, 256);
    let v = values(r * c, 4);
    let keep: Vec<f32> = (0..r * c).map(|i| (i % 5 != 2) as u8 as f32).collect();
    let cpu = |v: &[f32]| {
        Tensor::<Flex, 2>::from_data(TensorData::new(v.to_vec(), [r, c]), &Default::default())
            .into_primitive()
            .tensor()
    };
    // Transposed twice: a non-trivial layout the device path must make contiguous.
    let gpu = |v: &[f32]| {
        Tensor::<Wgpu, 2>::from_data(TensorData::new(v.to_vec(), [r, c]), &Default::default())
            .transpose()
            .transpose()
            .into_primitive()
            .tensor()
    };
    let f = |p| host(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(p)));
    let g = |p| host(Tensor::<Wgpu, 2>::from_primitive(TensorPrimitive::Float(p)));
    let same = |a: Vec<f32>, b: Vec<f32>, what: &str| {
        assert!(
            a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
            "{what} differs"
        );
    };
    let signs = nibble_formats::hadamard::random_signs(3, 32);
    for (inverse, after) in [(false, false), (true, false), (false, true), (true, true)] {
        for s in [None, Some(&signs[..])] {
            same(
                f(Flex::lp_hadamard(cpu(&v), 32, s, inverse, after)),
                g(Wgpu::lp_hadamard(gpu(&v), 32, s, inverse, after)),
                &format!(
                    "hadamard inverse={inverse} after={after} signs={}",
                    s.is_some()
                ),
            );
        }
    }
    for (k, h) in [
        (true, Some(64)),
        (false, Some(16)),
        (true, None),
        (false, None),
    ] {
        let (kc, kg) = if k {
            (Some(cpu(&keep)), Some(gpu(&keep)))
        } else {
            (None, None)
        };
        same(
            f(Flex::lp_unrotate(cpu(&v), kc, h)),
            g(Wgpu::lp_unrotate(gpu(&v), kg, h)),
            &format!("unrotate keep={k} g={h:?}"),
        );
    }
    for (element, scale) in [(Element::E4M3, 448.0 / 17.0), (Element::E5M2, 0.5)] {
        let (a, am) = Flex::lp_cast_scaled(cpu(&v), element, scale);
        let (b, bm) = Wgpu::lp_cast_scaled(gpu(&v), element, scale);
        same(f(a), g(b), &format!("cast {element:?}"));
        assert_eq!(am.to_bits(), bm.to_bits(), "amax of the {element:?} cast");
    }
}

#[test]
fn wgpu_nm_mask_equals_the_cpu() {
    let (r, c) = (40, 64);
    let v: Vec<f32> = values(r * c, 6)
        .iter()
        .map(|x| (x * 8.0).round() / 8.0)
        .collect();
    for (n, m) in [(2, 4), (1, 8), (4, 16)] {
        let a = Flex::lp_nm_mask(
            Tensor::<Flex, 2>::from_data(TensorData::new(v.clone(), [r, c]), &Default::default())
                .into_primitive()
                .tensor(),
            n,
            m,
        );
        let b = Wgpu::lp_nm_mask(
            Tensor::<Wgpu, 2>::from_data(TensorData::new(v.clone(), [r, c]), &Default::default())
                .into_primitive()
                .tensor(),
            n,
            m,
        );
        let a = host(Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(a)));
        let b = host(Tensor::<Wgpu, 2>::from_primitive(TensorPrimitive::Float(b)));
        assert_eq!(a, b, "{n}:{m}");
        assert_eq!(a.iter().sum::<f32>() as usize, r * c / m * n);
    }
}

/// Host fallbacks are counted per primitive: a spec the kernels do not cover (asymmetric INT
/// min-max) takes the host path and is counted each time. Counters are process-wide and other
/// tests of this binary run beside this one, so the check is on the increase.
#[test]
fn host_fallbacks_are_counted_per_primitive() {
    use nibble_ops::fallbacks::{self, Primitive};
    let dev = Default::default();
    let v = values(8 * 64, 3);
    let x = || Tensor::<Wgpu, 2>::from_data(TensorData::new(v.clone(), [8, 64]), &dev);
    let asym = QuantSpec {
        element: Element::Int {
            bits: 4,
            signed: false,
        },
        block: Block::Group(32),
        scale: ScaleRule::MinMax,
        rounding: Rounding::Rne,
        transform: Transform::None,
    };
    let count = |p: Primitive| {
        fallbacks::counts()
            .into_iter()
            .find(|(q, _)| *q == p)
            .unwrap()
            .1
    };
    let before = count(Primitive::Quantize);
    let run = |spec: &QuantSpec| {
        let p = x().into_primitive().tensor();
        let _ = Wgpu::lp_quantize(p, spec, 0, false);
    };
    run(&asym);
    run(&asym);
    assert!(count(Primitive::Quantize) >= before + 2);
    let line = fallbacks::summary().expect("a summary line");
    assert!(line.contains("quantize"), "{line}");
}
