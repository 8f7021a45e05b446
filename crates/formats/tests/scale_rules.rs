//! Block scale rules: range invariants, the spec's worked example, clipping behaviour.

mod common;

use nibble_formats::block_scale::{BlockScale, TensorInfo};
use nibble_formats::minifloat::{E2M1, E4M3, E5M2, Minifloat};
use nibble_formats::stats::{Needs, Stats};
use nibble_formats::{
    Block, Element, ExpRounding, QuantSpec, Rounding, ScaleRule, Transform, quantize_dequantize,
};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn scale_of(rule: ScaleRule, f: &Minifloat, amax: f32) -> BlockScale {
    let st = Stats::of(&[amax, -amax / 3.0], Needs::ALL);
    BlockScale::compute(rule, f.max(), f.emax(), &st, &TensorInfo { amax })
}

fn random_amaxes() -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(3);
    let mut v: Vec<f32> = (0..20000)
        .map(|_| 2f32.powf(rng.random_range(-60.0..60.0)))
        .collect();
    for k in -60..60 {
        let p = 2f32.powi(k);
        v.extend([
            p,
            f32::from_bits(p.to_bits() - 1),
            f32::from_bits(p.to_bits() + 1),
            p * 1.5,
            p * 0.75,
        ]);
    }
    v
}

#[test]
fn ocp_floor_range() {
    for f in [E2M1, E4M3, E5M2] {
        let (lo, hi) = (2f64.powi(f.emax()), 2f64.powi(f.emax() + 1));
        for a in random_amaxes() {
            let r = a as f64 / scale_of(ScaleRule::OcpFloor, &f, a).dec as f64;
            assert!(r >= lo && r < hi, "{} amax {a:e}: amax/X = {r}", f.name);
        }
    }
}

#[test]
fn rceil_range_never_clips() {
    for f in [E2M1, E4M3, E5M2] {
        let m = f.max() as f64;
        for a in random_amaxes() {
            let r = a as f64 / scale_of(ScaleRule::RCeil, &f, a).dec as f64;
            assert!(r > m / 2.0 && r <= m, "{} amax {a:e}: amax/X = {r}", f.name);
        }
    }
}

#[test]
fn ceil_range() {
    for f in [E2M1, E4M3] {
        let (lo, hi) = (2f64.powi(f.emax() - 1), 2f64.powi(f.emax()));
        for a in random_amaxes() {
            let r = a as f64 / scale_of(ScaleRule::Ceil, &f, a).dec as f64;
            assert!(r > lo && r <= hi, "{} amax {a:e}: amax/X = {r}", f.name);
        }
    }
}

#[test]
fn three_quarters_range() {
    for a in random_amaxes() {
        let bs = scale_of(ScaleRule::ThreeQuarters, &E2M1, a);
        let r = 0.75 * a as f64 / bs.dec as f64;
        assert!((3.0..6.0).contains(&r), "amax {a:e}: (3/4)amax/X = {r}");
        assert_eq!((bs.pre, bs.post), (0.75, 4.0 / 3.0));
    }
}

#[test]
fn worked_example_amax_150_e4m3_rceil_is_byte_126() {
    let bs = scale_of(ScaleRule::RCeil, &E4M3, 150.0);
    assert_eq!(bs.code, 126);
    assert_eq!(bs.dec, 0.5);
    // OCP floor for comparison: floor(log2 150) − 8 = −1 as well; OCP-style ceil gives 127.
    assert_eq!(scale_of(ScaleRule::Ceil, &E4M3, 150.0).code, 127);
}

#[test]
fn floor_clips_about_41_percent_of_fp4_blocks() {
    let (data, _) = common::gaussian_blocks(1 << 20, 32, 5);
    let spec = QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor);
    let out = quantize_dequantize(&spec, &data, &[data.len() / 32, 32], 0).unwrap();
    let clipped_blocks = (0..data.len() / 32)
        .filter(|&b| (0..32).any(|c| out.clip.get(b, c)))
        .count();
    let frac = clipped_blocks as f64 / (data.len() / 32) as f64;
    assert!(
        (0.39..0.435).contains(&frac),
        "fraction of clipped FP4 blocks {frac}"
    );
    // RCEIL and the 3/4 rule never clip.
    for rule in [ScaleRule::RCeil, ScaleRule::ThreeQuarters] {
        let out = quantize_dequantize(
            &QuantSpec::mx(Element::E2M1, rule),
            &data,
            &[data.len() / 32, 32],
            0,
        )
        .unwrap();
        assert_eq!(out.clip.count(), 0, "{rule:?}");
    }
}

#[test]
fn quest_exponent_rounding() {
    // A block with σ such that c·σ = 1.5: floor gives 2^0, nearest gives 2^1 (1.5 > √2).
    let c = nibble_formats::spec::QUEST_C as f64;
    let sigma = 1.5 / c;
    let block: Vec<f32> = (0..32)
        .map(|i| {
            if i % 2 == 0 {
                sigma as f32
            } else {
                -sigma as f32
            }
        })
        .collect();
    let st = Stats::of(&block, Needs::ALL);
    let t = TensorInfo::default();
    let fl = BlockScale::compute(
        ScaleRule::Quest {
            exp_rounding: ExpRounding::Floor,
            mult: 1.0,
        },
        6.0,
        2,
        &st,
        &t,
    );
    let nr = BlockScale::compute(
        ScaleRule::Quest {
            exp_rounding: ExpRounding::Nearest,
            mult: 1.0,
        },
        6.0,
        2,
        &st,
        &t,
    );
    assert_eq!((fl.dec, nr.dec), (1.0, 2.0));
    // c·σ = 1.4 < √2: both give 2^0.
    let block: Vec<f32> = block.iter().map(|v| v * (1.4 / 1.5)).collect();
    let st = Stats::of(&block, Needs::ALL);
    let nr = BlockScale::compute(
        ScaleRule::Quest {
            exp_rounding: ExpRounding::Nearest,
            mult: 1.0,
        },
        6.0,
        2,
        &st,
        &t,
    );
    assert_eq!(nr.dec, 1.0);
    // The `mult` knob multiplies before rounding.
    let m = BlockScale::compute(
        ScaleRule::Quest {
            exp_rounding: ExpRounding::Floor,
            mult: 1.5,
        },
        6.0,
        2,
        &st,
        &t,
    );
    assert_eq!(m.dec, 2.0);
}

#[test]
fn quest_clip_mask_is_abs_y_ge_6() {
    let spec = QuantSpec {
        transform: Transform::None,
        ..QuantSpec::quartet_forward(ExpRounding::Floor)
    };
    let (data, _) = common::gaussian_blocks(1 << 16, 32, 9);
    let out = quantize_dequantize(&spec, &data, &[data.len() / 32, 32], 0).unwrap();
    let mut n = 0;
    for b in 0..data.len() / 32 {
        let blk = &data[b * 32..(b + 1) * 32];
        let st = Stats::of(blk, Needs::ALL);
        let x = BlockScale::compute(spec.scale, 6.0, 2, &st, &TensorInfo::default()).dec;
        for (c, &v) in blk.iter().enumerate() {
            let clipped = (v / x).abs() >= 6.0;
            n += clipped as usize;
            assert_eq!(
                out.clip.get(b, c),
                clipped,
                "block {b} col {c}: v/X = {}",
                v / x
            );
            if clipped {
                assert_eq!(out.values[b * 32 + c].abs(), 6.0 * x);
            }
        }
    }
    assert!(n > 100, "the floored QuEST scale clips often ({n})");
}

#[test]
fn nvfp4_two_level_scale() {
    // Transformer Engine order: g_enc = 2688/amax_t; s_b = e4m3(amax_b/6·g_enc); enc = 1/(s_b/g_enc).
    let mut rng = StdRng::seed_from_u64(1);
    let data: Vec<f32> = (0..64 * 64)
        .map(|_| rng.random_range(-3.0f32..3.0) * 10f32.powi(rng.random_range(-2..2)))
        .collect();
    let spec = QuantSpec::nvfp4(Block::Group(16), Rounding::Rne, Transform::None);
    let p = nibble_formats::quantize_packed(&spec, &data, &[64, 64], 0).unwrap();
    let amax_t = data.iter().fold(0f32, |a, v| a.max(v.abs()));
    let g_enc = 2688.0 / amax_t;
    assert_eq!(p.global_scale(), 1.0 / g_enc);
    for (b, blk) in data.chunks(16).enumerate() {
        let amax_b = blk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let sb = E4M3.round_rne((amax_b / 6.0) * g_enc);
        assert_eq!(p.scales()[b], sb, "block {b}");
        assert_eq!(p.scale_codes()[b], E4M3.encode(sb));
        let enc = 1.0 / (sb * (1.0 / g_enc));
        for (i, &v) in blk.iter().enumerate() {
            assert_eq!(
                E2M1.decode(p.codes[b * 16 + i]),
                E2M1.round_rne(v * enc),
                "block {b} elt {i}"
            );
        }
    }
    // The tensor amax element lands exactly on ±6·s_b·g_dec ≈ amax.
    let deq = p.dequantize();
    let i = data.iter().position(|v| v.abs() == amax_t).unwrap();
    assert!(
        (deq[i] - data[i]).abs() <= 0.07 * amax_t,
        "{} vs {}",
        deq[i],
        data[i]
    );
}

#[test]
fn absmax_per_tensor_fp8() {
    let data = [1.0f32, -3.5, 0.25, 7.0];
    let out = quantize_dequantize(&QuantSpec::fp8_tensor(Element::E4M3), &data, &[4], 0).unwrap();
    // scale = 448/7 = 64: exact, so every value round-trips.
    assert_eq!(out.values, data);
    assert_eq!(out.clip.count(), 0);
    let pow2 = QuantSpec {
        scale: ScaleRule::Absmax { pow2: true },
        ..QuantSpec::fp8_tensor(Element::E4M3)
    };
    let p = nibble_formats::quantize_packed(&pow2, &[3.0, 1.0], &[2], 0).unwrap();
    assert_eq!(
        p.scales()[0],
        1.0 / 128.0,
        "encode scale 448/3 rounded down to 128"
    );
    // An all-zero tensor gets scale 1 (TE) and stays zero.
    let z = quantize_dequantize(&QuantSpec::fp8_tensor(Element::E5M2), &[0.0; 8], &[8], 0).unwrap();
    assert_eq!(z.values, [0.0; 8]);
}
