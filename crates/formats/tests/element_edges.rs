//! Element formats: the spec's decode table, tie table, saturation and special codes, and the
//! encoder against a brute-force nearest-value search.

mod common;

use nibble_formats::Grid;
use nibble_formats::int_grid::IntGrid;
use nibble_formats::minifloat::{E2M1, E4M3, E5M2, Minifloat, UE4M3};
use nibble_formats::ue8m0;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// §1.1 of the spec, typed in from the table (not from our decoder).
const E2M1_TABLE: [f32; 16] = [
    0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
];

#[test]
fn e2m1_decode_matches_spec_table() {
    for (c, &v) in E2M1_TABLE.iter().enumerate() {
        let d = E2M1.decode(c as u8);
        assert_eq!(d.to_bits(), v.to_bits(), "code {c:#x}");
        assert_eq!(E2M1.encode(v), c as u8, "round trip of {v}");
    }
}

#[test]
fn e2m1_rne_tie_table() {
    // §1.1: the mantissa-even neighbour wins each tie.
    for (x, r) in [
        (0.25, 0.0),
        (0.75, 1.0),
        (1.25, 1.0),
        (1.75, 2.0),
        (2.5, 2.0),
        (3.5, 4.0),
        (5.0, 4.0),
    ] {
        assert_eq!(E2M1.round_rne(x), r, "{x}");
        assert_eq!(E2M1.round_rne(-x), -r, "-{x}");
    }
    // Quartet's Triton kernel rounds these down; RNE must not.
    assert_eq!(E2M1.round_rne(0.75), 1.0);
    assert_eq!(E2M1.round_rne(3.5), 4.0);
}

#[test]
fn e2m1_saturates_never_inf() {
    for (x, r) in [
        (6.01, 6.0),
        (7.0, 6.0),
        (1e9, 6.0),
        (f32::INFINITY, 6.0),
        (f32::MAX, 6.0),
    ] {
        assert_eq!(E2M1.round_rne(x), r, "{x}");
        assert_eq!(E2M1.round_rne(-x), -r, "-{x}");
        assert_eq!(E2M1.encode(x), 0x7);
        assert_eq!(E2M1.encode(-x), 0xF);
    }
}

#[test]
fn e4m3_saturation_and_nan() {
    assert_eq!(E4M3.max(), 448.0);
    assert_eq!(E4M3.round_rne(448.0), 448.0);
    assert_eq!(
        E4M3.round_rne(464.0),
        448.0,
        "midpoint 448/480 saturates to 448"
    );
    assert_eq!(E4M3.round_rne(1e6), 448.0);
    assert_eq!(E4M3.round_rne(f32::INFINITY), 448.0);
    assert_eq!(E4M3.encode(448.0), 0x7E);
    assert_eq!(E4M3.encode(-1e30), 0xFE);
    assert!(E4M3.decode(0x7F).is_nan());
    assert!(E4M3.decode(0xFF).is_nan());
    assert_eq!(E4M3.encode(f32::NAN), 0x7F);
    // Top binade 256..448 in steps of 32.
    let top: Vec<f32> = (0x78..=0x7E).map(|c| E4M3.decode(c)).collect();
    assert_eq!(top, [256.0, 288.0, 320.0, 352.0, 384.0, 416.0, 448.0]);
    // Smallest subnormal 2^-9, smallest normal 2^-6; 126 positive finite non-zero values.
    assert_eq!(E4M3.decode(0x01), 2f32.powi(-9));
    assert_eq!(E4M3.decode(0x08), 2f32.powi(-6));
    let positive = (1u8..0x80).filter(|&c| E4M3.decode(c).is_finite()).count();
    assert_eq!(positive, 126);
}

#[test]
fn e5m2_inf_nan_and_max() {
    assert_eq!(E5M2.max(), 57344.0);
    assert_eq!(E5M2.decode(0x7B), 57344.0);
    assert_eq!(E5M2.decode(0x7C), f32::INFINITY);
    assert_eq!(E5M2.decode(0xFC), f32::NEG_INFINITY);
    for c in [0x7D, 0x7E, 0x7F, 0xFD, 0xFE, 0xFF] {
        assert!(E5M2.decode(c).is_nan(), "{c:#x}");
    }
    assert_eq!(
        E5M2.round_rne(61440.0),
        57344.0,
        "satfinite: the tie with 2^16 saturates"
    );
    assert_eq!(E5M2.round_rne(f32::INFINITY), 57344.0);
    assert_eq!(E5M2.decode(0x01), 2f32.powi(-16));
    assert_eq!(E5M2.decode(0x04), 2f32.powi(-14));
}

#[test]
fn ue8m0_bytes_are_powers_of_two() {
    assert_eq!(ue8m0::decode(127), 1.0);
    assert_eq!(ue8m0::decode(126), 0.5);
    assert_eq!(ue8m0::decode(254), 2f32.powi(127));
    assert_eq!(
        ue8m0::decode(0).to_bits(),
        (2f64.powi(-127) as f32).to_bits()
    );
    assert!(ue8m0::decode(0xFF).is_nan());
    for b in 0u8..255 {
        let v = ue8m0::decode(b);
        assert_eq!(ue8m0::encode_floor(v), b);
        assert_eq!(ue8m0::encode_ceil(v), b);
        assert_eq!(v as f64, 2f64.powi(b as i32 - 127));
    }
    // nextafter(2^k, 0): floor goes one binade down, ceil stays (cvt.rp semantics).
    for k in -120..120 {
        let below = f32::from_bits(2f32.powi(k).to_bits() - 1);
        assert_eq!(ue8m0::encode_floor(below) as i32 - 127, k - 1);
        assert_eq!(ue8m0::encode_ceil(below) as i32 - 127, k);
    }
    assert_eq!(ue8m0::encode_floor(0.0), 0xFF);
    assert_eq!(ue8m0::encode_ceil(f32::INFINITY), 0xFF);
}

#[test]
fn ue4m3_is_unsigned_e4m3() {
    assert_eq!(UE4M3.max(), 448.0);
    for c in 0u8..0x7F {
        assert_eq!(UE4M3.decode(c).to_bits(), E4M3.decode(c).to_bits());
    }
    assert!(UE4M3.decode(0x7F).is_nan());
    assert!(UE4M3.decode(0x80).is_nan(), "no sign bit");
    assert_eq!(UE4M3.round_rne(-3.0), 0.0);
}

fn table(f: &Minifloat) -> Vec<(u8, f32)> {
    (0..(1u32 << f.width()))
        .map(|c| (c as u8, f.decode(c as u8)))
        .collect()
}

/// Ties of every pair of neighbours, ±1 ulp around them, and log-uniform random inputs: the
/// bit-pattern encoder must agree with an exhaustive nearest search (ties to even code).
#[test]
fn encoder_matches_brute_force_nearest() {
    let mut rng = StdRng::seed_from_u64(11);
    for f in [E2M1, E4M3, E5M2, UE4M3] {
        let t = table(&f);
        let mut pos: Vec<f32> = t
            .iter()
            .map(|&(_, v)| v)
            .filter(|v| v.is_finite() && *v >= 0.0)
            .collect();
        pos.sort_by(f32::total_cmp);
        pos.dedup();
        let mut inputs = Vec::new();
        for w in pos.windows(2) {
            let mid = ((w[0] as f64 + w[1] as f64) / 2.0) as f32;
            inputs.extend([
                mid,
                f32::from_bits(mid.to_bits() + 1),
                f32::from_bits(mid.to_bits() - 1),
                w[0],
            ]);
        }
        let (lo, hi) = (f.decode(1).log2(), f.max().log2() + 0.5);
        for _ in 0..20000 {
            inputs.push(2f32.powf(rng.random_range(lo - 2.0..hi)));
        }
        for x in inputs {
            for x in [x, -x] {
                let want = if !f.signed && x < 0.0 {
                    0
                } else {
                    common::nearest_code(x, &t)
                };
                let got = f.encode(x);
                // ±0 are both the nearest value to tiny inputs; signed formats keep the input's sign.
                let (wv, gv) = (f.decode(want), f.decode(got));
                assert!(
                    wv == gv,
                    "{}: encode({x:e}) = {got:#x} ({gv}), nearest is {want:#x} ({wv})",
                    f.name
                );
                if gv == 0.0 && f.signed {
                    assert_eq!(
                        gv.is_sign_negative(),
                        x.is_sign_negative(),
                        "{} zero sign for {x:e}",
                        f.name
                    );
                }
            }
        }
    }
}

#[test]
fn int_grids_round_and_saturate() {
    for bits in 2..=8u32 {
        let s = IntGrid::signed(bits);
        let u = IntGrid::unsigned(bits);
        let (lo, hi) = (-(1i32 << (bits - 1)), (1i32 << (bits - 1)) - 1);
        assert_eq!((s.lo(), s.hi()), (lo as f32, hi as f32));
        assert_eq!((u.lo(), u.hi()), (0.0, ((1 << bits) - 1) as f32));
        assert_eq!(s.rne(1e9), hi as f32);
        assert_eq!(s.rne(-1e9), lo as f32);
        assert_eq!(s.rne(f32::NEG_INFINITY), lo as f32);
        assert_eq!(u.rne(-3.0), 0.0);
        assert!(s.rne(f32::NAN).is_nan());
        // Ties to even.
        assert_eq!(s.rne(0.5), 0.0);
        assert_eq!(s.rne(-0.5), 0.0);
        if hi >= 2 {
            assert_eq!(s.rne(1.5), 2.0);
            assert_eq!(s.rne(-1.5), -2.0);
        }
        // Every code decodes to its two's-complement value and re-encodes to itself.
        for c in 0..(1u32 << bits) {
            let v = s.decode(c as u8);
            let want = if c >= 1 << (bits - 1) {
                c as i32 - (1 << bits)
            } else {
                c as i32
            };
            assert_eq!(v, want as f32);
            assert_eq!(s.code(v), c as u8);
            assert_eq!(u.decode(c as u8), c as f32);
            assert_eq!(u.code(c as f32), c as u8);
        }
    }
    let t = IntGrid::ternary();
    assert_eq!([t.decode(0), t.decode(1), t.decode(2)], [-1.0, 0.0, 1.0]);
    assert_eq!(
        [t.rne(-7.0), t.rne(0.49), t.rne(0.51), t.rne(3.0)],
        [-1.0, 0.0, 1.0, 1.0]
    );
}

/// The branch-free bf16 rounding against the `half` crate on every one of the 2^32 f32 bit
/// patterns (all NaN payloads, both infinities, subnormals, every tie).
#[test]
fn bf16_rounding_equals_half_on_every_f32() {
    use rayon::prelude::*;
    let mismatches: u64 = (0u32..=u16::MAX as u32)
        .into_par_iter()
        .map(|hi| {
            let mut bad = 0u64;
            for lo in 0u32..=u16::MAX as u32 {
                let x = f32::from_bits((hi << 16) | lo);
                let want = half::bf16::from_f32(x).to_f32().to_bits();
                bad += (nibble_formats::element::round_bf16(x).to_bits() != want) as u64;
            }
            bad
        })
        .sum();
    assert_eq!(mismatches, 0);
}
