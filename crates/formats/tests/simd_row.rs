//! The explicit-SIMD row kernel (1×N blocks, power-of-two scales, FP grids, RNE; AVX2 and
//! AVX-512) against the baseline path and an independent scalar reference, on data aimed at its
//! branches: NaN (quiet and signalling) and ±Inf blocks, finite blocks whose sum of squares
//! overflows, zero and −0 blocks, subnormals, values at rounding ties, 3/4-rule values that
//! underflow after scaling, Hadamard sums that overflow, nearly constant blocks (QuEST's variance
//! then depends on every rounding of the moments' fixed summation order), partial batches and
//! groups of blocks, in place and out of place.

use nibble_formats::block_scale::{BlockScale, TensorInfo};
use nibble_formats::isa::{self, Isa};
use nibble_formats::minifloat::Minifloat;
use nibble_formats::stats::Stats;
use nibble_formats::{
    Block, ClipMask, Element, ExpRounding, QuantSpec, Rounding, ScaleRule, Signs, Transform,
    hadamard, quantize_dequantize, quantize_dequantize_in_place, quantize_dequantize_into,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

/// `isa::force` is process-wide: the tests of this file take turns.
static ISA: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The specs the kernel takes: every power-of-two rule, each FP element, N = 16/32/64, no
/// transform, the plain Hadamard and the randomized one.
fn specs() -> Vec<QuantSpec> {
    let mut v = Vec::new();
    let rules = [
        ScaleRule::OcpFloor,
        ScaleRule::Ceil,
        ScaleRule::RCeil,
        ScaleRule::ThreeQuarters,
    ];
    for n in [16, 32, 64] {
        let transforms = [
            Transform::None,
            Transform::Hadamard { g: n },
            Transform::RandomizedHadamard {
                g: n,
                signs: Signs::Seeded,
            },
        ];
        for transform in transforms {
            for element in [Element::E2M1, Element::E4M3, Element::E5M2] {
                for scale in rules {
                    v.push(QuantSpec {
                        element,
                        block: Block::Group(n),
                        scale,
                        rounding: Rounding::Rne,
                        transform,
                    });
                }
            }
            for (exp_rounding, mult) in [(ExpRounding::Nearest, 1.0), (ExpRounding::Floor, 0.75)] {
                v.push(QuantSpec {
                    block: Block::Group(n),
                    scale: ScaleRule::Quest { exp_rounding, mult },
                    transform,
                    ..QuantSpec::quartet_forward(exp_rounding)
                });
            }
        }
    }
    v
}

/// Rows of adversarial blocks (`n` values each) for a grid with largest value `max`.
fn data(rows: usize, cols: usize, n: usize, max: f32, seed: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(rows * cols);
    let mut kind = 0;
    while v.len() < rows * cols {
        kind += 1;
        let scale = 2f32.powi(rng.random_range(-40..40));
        let mut b: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * scale)
            .collect();
        match kind % 17 {
            0 => b[rng.random_range(0..n)] = f32::NAN,
            1 => b[rng.random_range(0..n)] = f32::from_bits(0x7f80_0001), // signalling NaN
            2 => b[rng.random_range(0..n)] = f32::INFINITY,
            3 => b[rng.random_range(0..n)] = f32::NEG_INFINITY,
            // Finite, but the sum of squares overflows (and the Hadamard sums may).
            4 => b
                .iter_mut()
                .for_each(|x| *x = rng.random_range(2e37f32..3.4e38)),
            5 => b.fill(0.0),
            6 => b.fill(-0.0),
            7 => b
                .iter_mut()
                .for_each(|x| *x = -f32::from_bits(rng.random_range(1..0x80_0000))),
            // Grid midpoints and grid values under a power-of-two scale (ties for RNE).
            8 => {
                let s = 2f32.powi(rng.random_range(-20..20));
                b.iter_mut()
                    .for_each(|x| *x = rng.random_range(-64i32..64) as f32 * 0.125 * s);
                b[0] = max * s;
            }
            // One huge value and tiny ones: v·enc underflows (the 3/4 rule's fused pre).
            9 => {
                b.iter_mut()
                    .for_each(|x| *x = rng.random_range(-1.0f32..1.0) * 1e-35);
                b[1] = 3e38;
            }
            10 => b.fill(1.0),
            11 => b
                .iter_mut()
                .for_each(|x| *x = rng.random_range(-9.0f32..9.0).round()),
            // Nearly constant: QuEST's variance cancels, so any change in the summation order
            // of the moments changes the scale.
            12..=14 => b
                .iter_mut()
                .for_each(|x| *x = (1.0 + rng.random_range(-1e-3f32..1e-3)) * scale),
            _ => {}
        }
        v.extend_from_slice(&b);
    }
    v.truncate(rows * cols);
    v
}

/// Round `y` to the grid by search over every finite code (ties to the even code), saturating,
/// with y's sign: independent of the crate's bit recipes.
fn round_reference(grid: &Minifloat, y: f32) -> f32 {
    let a = y.abs().min(grid.max()) as f64; // everything above max saturates to it
    let mut best = (0u8, f64::INFINITY);
    for c in 0..(1u8 << (grid.ebits + grid.mbits)) {
        let g = grid.decode(c);
        if !g.is_finite() {
            continue;
        }
        let d = (g as f64 - a).abs();
        if d < best.1 || (d == best.1 && c % 2 == 0) {
            best = (c, d);
        }
    }
    grid.decode(best.0).copysign(y)
}

/// Sum in eight interleaved lanes, combined `(l0+l4) + (l2+l6)`, `(l1+l5) + (l3+l7)`.
fn lane_sum(v: &[f32]) -> f32 {
    let mut l = [0f32; 8];
    for (i, x) in v.iter().enumerate() {
        l[i % 8] += *x;
    }
    ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
}

/// The quantizer's definition, block by block, in plain scalar code.
fn reference(spec: &QuantSpec, x: &[f32], seed: u64) -> (Vec<f32>, Vec<bool>) {
    let Block::Group(n) = spec.block else {
        unreachable!()
    };
    let grid = spec.element.minifloat().unwrap();
    let signs = spec.transform.signs(seed);
    let quest = matches!(spec.scale, ScaleRule::Quest { .. });
    let (mut out, mut clip) = (x.to_vec(), vec![false; x.len()]);
    for (blk, clip) in out.chunks_mut(n).zip(clip.chunks_mut(n)) {
        if spec.transform != Transform::None {
            // Signs, butterflies with strides 1, 2, 4, …, then fl(1/√n).
            if let Some(s) = &signs {
                blk.iter_mut().zip(s).for_each(|(v, s)| *v *= s);
            }
            let mut h = 1;
            while h < n {
                for i in (0..n).filter(|i| i & h == 0) {
                    let (a, b) = (blk[i], blk[i + h]);
                    (blk[i], blk[i + h]) = (a + b, a - b);
                }
                h *= 2;
            }
            blk.iter_mut().for_each(|v| *v *= hadamard::norm(n));
        }
        let st = Stats {
            amax: blk
                .iter()
                .fold(0f32, |m, v| if v.abs() > m { v.abs() } else { m }),
            sum: lane_sum(blk),
            sumsq: lane_sum(&blk.iter().map(|v| v * v).collect::<Vec<_>>()),
            n,
            nonfinite: blk.iter().any(|v| !v.is_finite()),
            ..Stats::EMPTY
        };
        let bs = BlockScale::compute(
            spec.scale,
            grid.max(),
            grid.emax(),
            &st,
            &TensorInfo::default(),
        );
        for (v, c) in blk.iter_mut().zip(clip.iter_mut()) {
            if bs.nan {
                (*v, *c) = (f32::NAN, true);
                continue;
            }
            let y = (*v * bs.enc) * bs.pre;
            *c = if quest {
                y.abs() >= grid.max()
            } else {
                y.abs() > grid.max()
            };
            *v = (round_reference(&grid, y) * bs.dec) * bs.post;
        }
    }
    (out, clip)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn simd_kernel_matches_baseline_and_scalar_reference() {
    let _isa = ISA.lock().unwrap_or_else(|e| e.into_inner());
    // 13 blocks of 32 per row: a partial batch (16) and a partial group (4).
    for (k, spec) in specs().into_iter().enumerate() {
        let Block::Group(n) = spec.block else {
            unreachable!()
        };
        let max = spec.element.max_value();
        let (rows, cols) = (7, n * 13);
        let x = data(rows, cols, n, max, k as u64);
        let seed = 100 + k as u64;
        let (want, want_clip) = reference(&spec, &x, seed);
        for path in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
            isa::force(Some(path));
            let o = quantize_dequantize(&spec, &x, &[rows, cols], seed).unwrap();
            let mut buf = x.clone();
            let mut clip = ClipMask::new(rows, cols);
            quantize_dequantize_in_place(&spec, &mut buf, &[rows, cols], seed, &mut clip).unwrap();
            let mut into = vec![0f32; x.len()];
            let mut clip_into = ClipMask::new(1, 1);
            quantize_dequantize_into(&spec, &x, &[rows, cols], seed, &mut into, &mut clip_into)
                .unwrap();
            isa::force(None);
            let got = bits(&o.values);
            if let Some(i) = (0..x.len()).find(|&i| got[i] != want[i].to_bits()) {
                panic!(
                    "{path:?} {spec:?}: element {i} (input {:e}) is {:e}, reference {:e}",
                    x[i], o.values[i], want[i]
                );
            }
            assert_eq!(o.clip.to_bools(), want_clip, "{path:?} clip mask, {spec:?}");
            assert_eq!(bits(&buf), got, "{path:?} in place, {spec:?}");
            assert_eq!(clip, o.clip, "{path:?} in-place clip mask, {spec:?}");
            assert_eq!(bits(&into), got, "{path:?} into, {spec:?}");
            assert_eq!(clip_into, o.clip, "{path:?} into clip mask, {spec:?}");
        }
    }
}

/// Deterministic data without the `rand` crate (so that the digest below cannot move with it):
/// arbitrary bit patterns (NaN, Inf, subnormals), grid-like values with ties, zeros, nearly
/// constant blocks and scaled uniforms, one kind per block.
fn golden_data(len: usize, n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let (blk, u) = ((i / n) as i32, (s >> 40) as f32 / 16_777_216.0 - 0.5);
            let scale = 2f32.powi(blk * 7 % 41 - 20);
            match blk % 6 {
                0 => f32::from_bits((s >> 32) as u32),
                1 => ((u * 64.0).round() / 8.0) * scale,
                2 => [0.0, -0.0][(s & 1) as usize],
                3 => (1.0 + u * 1e-3) * scale,
                _ => u * scale,
            }
        })
        .collect()
}

/// FNV-1a over the value bits and clip words of every spec on one ISA path.
fn digest(path: Isa) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |w: u64| {
        for b in w.to_le_bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
    };
    isa::force(Some(path));
    for (k, spec) in specs().into_iter().enumerate() {
        let Block::Group(n) = spec.block else {
            unreachable!()
        };
        let (rows, cols) = (5, n * 13);
        let x = golden_data(rows * cols, n, k as u64);
        let o = quantize_dequantize(&spec, &x, &[rows, cols], k as u64).unwrap();
        o.values.iter().for_each(|v| eat(v.to_bits() as u64));
        o.clip.bits.iter().for_each(|w| eat(*w));
    }
    isa::force(None);
    h
}

/// The digest recorded with the quantizer before the SIMD kernel existed (all paths agreed;
/// it changes with `specs` or `golden_data`).
const PRE_SIMD_DIGEST: u64 = 0x6656_6383_7a03_1b3b;

#[test]
fn outputs_match_the_pre_simd_quantizer() {
    let _isa = ISA.lock().unwrap_or_else(|e| e.into_inner());
    for path in [Isa::Baseline, Isa::Avx2, Isa::Avx512] {
        assert_eq!(digest(path), PRE_SIMD_DIGEST, "{path:?}");
    }
}
