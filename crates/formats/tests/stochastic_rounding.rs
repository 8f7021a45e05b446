//! Stochastic rounding: unbiased wherever nothing clips, biased (negative control) when a FLOOR
//! scale clips, deterministic in (seed, index).

use nibble_formats::Grid;
use nibble_formats::int_grid::IntGrid;
use nibble_formats::minifloat::{E2M1, E4M3};
use nibble_formats::philox::{STREAM_SR, uniform};
use nibble_formats::{Element, QuantSpec, Rounding, ScaleRule, quantize_dequantize};

const N: u64 = 100_000;

fn neighbours<G: Grid>(g: &G, y: f32) -> (f64, f64) {
    let lo = (0..=255u8)
        .map(|c| g.decode(c))
        .filter(|v| v.is_finite() && *v <= y)
        .fold(f32::MIN, f32::max);
    let hi = (0..=255u8)
        .map(|c| g.decode(c))
        .filter(|v| v.is_finite() && *v >= y)
        .fold(f32::MAX, f32::min);
    (lo as f64, hi as f64)
}

fn check_unbiased<G: Grid>(g: &G, name: &str, points: &[f32]) {
    for (p, &y) in points.iter().enumerate() {
        let sum: f64 = (0..N)
            .map(|i| g.sr(y, uniform(1234 + p as u64, STREAM_SR, i)) as f64)
            .sum();
        let mean = sum / N as f64;
        let (lo, hi) = neighbours(g, y);
        let sd = ((y as f64 - lo) * (hi - y as f64) / N as f64).sqrt();
        let err = (mean - y as f64).abs();
        assert!(
            err <= 5.0 * sd,
            "{name}: SR({y}) mean {mean} (lo {lo}, hi {hi}, 5σ = {})",
            5.0 * sd
        );
    }
}

#[test]
fn sr_is_unbiased_on_e2m1() {
    let mut pts = vec![
        0.0,
        1e-3,
        -1e-3,
        0.2,
        0.25,
        0.26,
        0.5,
        0.7501,
        1.0 - 1e-4,
        1.3,
        1.75,
        2.0001,
        2.5,
        3.7,
    ];
    pts.extend([4.0, 4.5, 5.0, 5.999, 6.0, -0.3, -1.1, -2.9, -5.5, -6.0]);
    check_unbiased(&E2M1, "e2m1", &pts);
}

#[test]
fn sr_is_unbiased_on_e4m3_and_int4() {
    check_unbiased(
        &E4M3,
        "e4m3",
        &[
            0.001, 0.0101, 0.3, 1.06, 17.5, 250.0, 300.0, 447.0, -13.3, -0.02,
        ],
    );
    check_unbiased(
        &IntGrid::signed(4),
        "int4",
        &[0.1, 0.5, -0.5, 3.3, 6.9, -7.7, -8.0, 7.0],
    );
}

#[test]
fn sr_on_the_grid_is_exact() {
    for c in 0..16u8 {
        let v = E2M1.decode(c);
        assert!(
            (0..1000).all(|i| E2M1.sr(v, uniform(9, STREAM_SR, i)).to_bits() == v.to_bits()),
            "{v}"
        );
    }
}

/// The block [7.5, 1, 1, ...]: OCP FLOOR gives X = 1 and 7.5 saturates at 6 on every draw, so SR
/// is biased. The 3/4 rule maps it to 5.625 and SR(5.625)·4/3 is unbiased.
#[test]
fn floor_scale_with_sr_is_biased_when_the_block_clips() {
    let rows = 20_000;
    let mut data = vec![1.0f32; rows * 32];
    for r in 0..rows {
        data[r * 32] = 7.5;
    }
    let mean_first = |rule: ScaleRule| {
        let spec = QuantSpec {
            rounding: Rounding::Stochastic,
            ..QuantSpec::mx(Element::E2M1, rule)
        };
        let out = quantize_dequantize(&spec, &data, &[rows, 32], 77).unwrap();
        (0..rows).map(|r| out.values[r * 32] as f64).sum::<f64>() / rows as f64
    };
    let sd = ((5.625 - 4.0) * (6.0 - 5.625) / rows as f64).sqrt() * 4.0 / 3.0;
    let floor = mean_first(ScaleRule::OcpFloor);
    assert!(
        (floor - 7.5).abs() > 100.0 * sd,
        "FLOOR+SR mean {floor} should be biased toward 6"
    );
    assert_eq!(floor, 6.0);
    let tq = mean_first(ScaleRule::ThreeQuarters);
    assert!((tq - 7.5).abs() < 5.0 * sd, "3/4 rule + SR mean {tq}");
}

#[test]
fn sr_is_deterministic_in_seed_and_index() {
    let spec = QuantSpec::quartet_backward(Rounding::Stochastic);
    let data: Vec<f32> = (0..64 * 64)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
        .collect();
    let a = quantize_dequantize(&spec, &data, &[64, 64], 5)
        .unwrap()
        .values;
    let b = quantize_dequantize(&spec, &data, &[64, 64], 5)
        .unwrap()
        .values;
    let c = quantize_dequantize(&spec, &data, &[64, 64], 6)
        .unwrap()
        .values;
    assert!(a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()));
    assert!(a.iter().zip(&c).any(|(x, y)| x != y));
}

/// GEMM level: the mean of SR(A)·SR(B)ᵀ over k seeds converges to A·Bᵀ with error ∝ 1/√k.
#[test]
fn sr_gemm_average_converges() {
    let (m, k) = (4, 64);
    let a: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
        .collect();
    let b: Vec<f32> = (0..m * k)
        .map(|i| ((i * 53 % 97) as f32 - 48.0) / 13.0)
        .collect();
    let spec = QuantSpec {
        rounding: Rounding::Stochastic,
        ..QuantSpec::mx(Element::E2M1, ScaleRule::ThreeQuarters)
    };
    let exact: Vec<f64> = (0..m * m)
        .map(|ij| {
            (0..k)
                .map(|t| a[ij / m * k + t] as f64 * b[ij % m * k + t] as f64)
                .sum()
        })
        .collect();
    let err_after = |seeds: u64| {
        let mut acc = vec![0f64; m * m];
        for s in 0..seeds {
            let qa = quantize_dequantize(&spec, &a, &[m, k], 2 * s)
                .unwrap()
                .values;
            let qb = quantize_dequantize(&spec, &b, &[m, k], 2 * s + 1)
                .unwrap()
                .values;
            for (ij, v) in acc.iter_mut().enumerate() {
                *v += (0..k)
                    .map(|t| qa[ij / m * k + t] as f64 * qb[ij % m * k + t] as f64)
                    .sum::<f64>();
            }
        }
        acc.iter()
            .zip(&exact)
            .map(|(s, e)| (s / seeds as f64 - e).powi(2))
            .sum::<f64>()
            .sqrt()
    };
    let (e16, e1024) = (err_after(16), err_after(1024));
    // 64x more samples: error should shrink ~8x; allow 4x.
    assert!(
        e1024 < e16 / 4.0,
        "error after 16 seeds {e16}, after 1024 seeds {e1024}"
    );
}
