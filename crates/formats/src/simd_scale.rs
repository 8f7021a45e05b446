//! Power-of-two (UE8M0) scales of a batch of blocks, lane by lane in straight-line code that the
//! compiler vectorizes (one `sqrt`/divide per 16 blocks, not per block). The results are those
//! of [`BlockScale::compute`] for finite blocks (tested below over edge and random inputs);
//! blocks with NaN/Inf are flagged separately and never read their scale.
//!
//! [`BlockScale::compute`]: crate::block_scale::BlockScale::compute

use crate::spec::{ExpRounding, QUEST_C, ScaleRule};
use crate::stats::Stats;

/// Lanes of a batch (blocks whose scales are computed together).
pub(crate) const LANES: usize = 16;

/// How the exponent k of the scale 2^k follows from a block's statistics.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Pow2Rule {
    /// `floor(log2 amax) − emax` (OCP; also the 3/4 rule, whose factors are applied apart).
    Floor,
    /// `ceil(log2 amax) − emax`.
    Ceil,
    /// The smallest k with `amax ≤ max_elem·2^k`.
    RCeil,
    /// `floor` or `round` of `log2(c·σ·mult + 1e-8)`.
    Quest { nearest: bool, mult: f32 },
}

/// A power-of-two rule with the element grid's constants.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Pow2Scale {
    pub rule: Pow2Rule,
    pub emax: i32,
    pub max_elem: f32,
    /// Elements per block (QuEST's mean and variance).
    pub n: usize,
}

impl Pow2Scale {
    /// The rule of `scale`, or None if it is not a power-of-two rule.
    pub(crate) fn new(scale: ScaleRule, emax: i32, max_elem: f32, n: usize) -> Option<Self> {
        let rule = match scale {
            ScaleRule::OcpFloor | ScaleRule::ThreeQuarters => Pow2Rule::Floor,
            ScaleRule::Ceil => Pow2Rule::Ceil,
            ScaleRule::RCeil => Pow2Rule::RCeil,
            ScaleRule::Quest { exp_rounding, mult } => Pow2Rule::Quest {
                nearest: exp_rounding == ExpRounding::Nearest,
                mult,
            },
            _ => return None,
        };
        Some(Self {
            rule,
            emax,
            max_elem,
            n,
        })
    }

    /// `enc = 2^−k` and `dec = 2^k` of each lane, k clamped to UE8M0's [−127, 127]. `amax` is
    /// read by the amax rules, `sum` and `sumsq` by QuEST.
    #[inline(always)]
    pub(crate) fn enc_dec(
        &self,
        amax: &[f32; LANES],
        sum: &[f32; LANES],
        sumsq: &[f32; LANES],
    ) -> ([f32; LANES], [f32; LANES]) {
        let mut k = [0i32; LANES];
        let emax = self.emax;
        // One loop per rule, each without branches between lanes.
        match self.rule {
            Pow2Rule::Floor => {
                for (k, &a) in k.iter_mut().zip(amax) {
                    *k = if a == 0.0 {
                        -127
                    } else {
                        log2_parts(a).0 - emax
                    };
                }
            }
            Pow2Rule::Ceil => {
                for (k, &a) in k.iter_mut().zip(amax) {
                    let (e, pow2) = log2_parts(a);
                    *k = if a == 0.0 {
                        -127
                    } else {
                        e + !pow2 as i32 - emax
                    };
                }
            }
            Pow2Rule::RCeil => {
                for (k, &a) in k.iter_mut().zip(amax) {
                    let f = log2_parts(a).0 - emax;
                    // a·2^−f is exact; for f < −127 the result clamps to −127 either way, so
                    // 2^−f is capped at 2^127 (the scalar code gets +Inf there).
                    let up = a * pow2_bits(-f) > self.max_elem;
                    *k = if a == 0.0 { -127 } else { f + up as i32 };
                }
            }
            Pow2Rule::Quest { nearest, mult } => {
                for ((k, &s1), &s2) in k.iter_mut().zip(sum).zip(sumsq) {
                    let st = Stats {
                        sum: s1,
                        sumsq: s2,
                        n: self.n,
                        ..Stats::EMPTY
                    };
                    // Normal or +Inf, never NaN: σ ≥ 0 and 1e-8 > 2^−126.
                    let s = (QUEST_C * st.std()) * mult + 1e-8;
                    let b = s.to_bits();
                    let up = nearest && (b & 0x7f_ffff) >= 0x35_04f4; // significand ≥ √2
                    *k = (b >> 23) as i32 - 127 + up as i32;
                }
            }
        }
        let (mut enc, mut dec) = ([0f32; LANES], [0f32; LANES]);
        for j in 0..LANES {
            let kc = k[j].clamp(-127, 127);
            enc[j] = pow2_bits(-kc);
            dec[j] = pow2_bits(kc);
        }
        (enc, dec)
    }
}

/// `floor(log2 a)` and whether `a` is a power of two, for finite `a > 0` (subnormals included,
/// through `a·2^23`, which is exact and normal).
#[inline(always)]
fn log2_parts(a: f32) -> (i32, bool) {
    let b = a.to_bits();
    let sub = b >> 23 == 0;
    let nb = if sub { (a * 8_388_608.0).to_bits() } else { b };
    let bias = if sub { 150 } else { 127 };
    ((nb >> 23) as i32 - bias, nb & 0x7f_ffff == 0)
}

/// `2^j` for j ≤ 127 (j below −127 gives 2^−127; callers stay in [−127, 127] or do not care).
#[inline(always)]
fn pow2_bits(j: i32) -> f32 {
    let j = if j > 127 { 127 } else { j };
    f32::from_bits(if j > -127 {
        ((j + 127) as u32) << 23
    } else {
        0x40_0000
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_scale::{BlockScale, TensorInfo};
    use crate::minifloat::{E2M1, E4M3, E5M2};

    /// Inputs at every binade edge (subnormals, powers of two and their neighbours, √2 points,
    /// the grid maxima, overflow of the moments) plus pseudo-random bit patterns.
    fn amaxes() -> Vec<f32> {
        let mut v = vec![0.0, f32::MIN_POSITIVE, f32::MAX, 1e-45, 6.0, 448.0, 57344.0];
        for e in -149..=127 {
            let p = crate::bits::pow2(e);
            for x in [p, p * 1.5, p * 0.75, p * std::f32::consts::SQRT_2] {
                for d in [-1i32, 0, 1] {
                    let b = x.to_bits() as i32 + d;
                    if b > 0 {
                        v.push(f32::from_bits(b as u32));
                    }
                }
            }
        }
        let mut s = 0x1234_5678u32;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            v.push(f32::from_bits(s & 0x7f7f_ffff));
        }
        v.retain(|a| a.is_finite() && *a >= 0.0);
        v
    }

    #[test]
    fn matches_block_scale_compute() {
        let rules = [
            ScaleRule::OcpFloor,
            ScaleRule::ThreeQuarters,
            ScaleRule::Ceil,
            ScaleRule::RCeil,
            ScaleRule::Quest {
                exp_rounding: ExpRounding::Nearest,
                mult: 1.0,
            },
            ScaleRule::Quest {
                exp_rounding: ExpRounding::Floor,
                mult: 0.75,
            },
        ];
        let xs = amaxes();
        for grid in [E2M1, E4M3, E5M2] {
            for rule in rules {
                for n in [16, 32, 64] {
                    let p = Pow2Scale::new(rule, grid.emax(), grid.max(), n).unwrap();
                    for chunk in xs.chunks(LANES) {
                        let mut a = [0f32; LANES];
                        a[..chunk.len()].copy_from_slice(chunk);
                        // Moments from the same values: sum of ±x, sum of squares (may overflow).
                        let s1 = a.map(|x| if x.to_bits() & 1 == 0 { x } else { -x });
                        let s2 = a.map(|x| x * x * 3.0);
                        let (enc, dec) = p.enc_dec(&a, &s1, &s2);
                        for j in 0..LANES {
                            let st = Stats {
                                amax: a[j],
                                sum: s1[j],
                                sumsq: s2[j],
                                n,
                                ..Stats::EMPTY
                            };
                            let bs = BlockScale::compute(
                                rule,
                                grid.max(),
                                grid.emax(),
                                &st,
                                &TensorInfo::default(),
                            );
                            assert_eq!(
                                (enc[j].to_bits(), dec[j].to_bits()),
                                (bs.enc.to_bits(), bs.dec.to_bits()),
                                "{rule:?} {} n={n} amax={:e} sum={:e} sumsq={:e}",
                                grid.name,
                                a[j],
                                s1[j],
                                s2[j]
                            );
                        }
                    }
                }
            }
        }
    }
}
