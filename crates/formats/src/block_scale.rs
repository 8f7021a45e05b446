//! From block statistics to the numbers the quantizer applies: `y = (v·enc)·pre + off`,
//! `q = round(y)`, `v̂ = ((q − off)·dec)·post`, plus the stored scale byte.

use crate::bits::{ceil_log2, floor_log2, pow2};
use crate::minifloat::UE4M3;
use crate::spec::{ExpRounding, QUEST_C, ScaleRounding, ScaleRule};
use crate::stats::{Needs, Stats};
use crate::ue8m0;

/// The affine maps of one block.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BlockScale {
    pub enc: f32,
    /// Extra factor after `enc` (3/4 for the Tseng rule), 1 otherwise.
    pub pre: f32,
    /// Zero point in grid units (affine INT), 0 otherwise.
    pub off: f32,
    /// Decode scale: the value the stored scale stands for.
    pub dec: f32,
    /// Second-level factor after `dec` (NVFP4 tensor scale, 4/3 for the Tseng rule), 1 otherwise.
    pub post: f32,
    /// Stored scale code: UE8M0 byte (power-of-two rules) or UE4M3 byte (NVFP4); 0 for FP32 scales.
    pub code: u8,
    /// The block holds NaN or Inf: every output is NaN and the scale code is NaN.
    pub nan: bool,
}

/// Tensor-level inputs of two-level rules.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct TensorInfo {
    pub amax: f32,
}

/// The statistics a rule reads, so the hot loop computes nothing else.
pub fn needs(rule: ScaleRule) -> Needs {
    Needs {
        moments: matches!(rule, ScaleRule::Quest { .. }),
        abs_sum: matches!(rule, ScaleRule::Absmean),
        min_max: matches!(rule, ScaleRule::MinMax),
    }
}

impl BlockScale {
    pub const IDENTITY: BlockScale = BlockScale {
        enc: 1.0,
        pre: 1.0,
        off: 0.0,
        dec: 1.0,
        post: 1.0,
        code: 0,
        nan: false,
    };

    fn pow2_scale(k: i32) -> BlockScale {
        let k = k.clamp(-127, 127);
        BlockScale {
            enc: pow2(-k),
            dec: pow2(k),
            code: ue8m0::from_exponent(k),
            ..Self::IDENTITY
        }
    }

    fn from_encode(enc: f32) -> BlockScale {
        BlockScale {
            enc,
            dec: 1.0 / enc,
            ..Self::IDENTITY
        }
    }

    /// Scale of a block. `max_elem` / `emax` describe the element grid (6 / 2 for E2M1).
    #[inline(always)]
    pub fn compute(
        rule: ScaleRule,
        max_elem: f32,
        emax: i32,
        st: &Stats,
        t: &TensorInfo,
    ) -> BlockScale {
        if st.nonfinite || (matches!(rule, ScaleRule::Nvfp4 { .. }) && !t.amax.is_finite()) {
            let code = match rule {
                ScaleRule::Nvfp4 { .. } => UE4M3.nan_code(),
                ScaleRule::OcpFloor
                | ScaleRule::Ceil
                | ScaleRule::RCeil
                | ScaleRule::ThreeQuarters
                | ScaleRule::Quest { .. } => ue8m0::NAN,
                _ => 0,
            };
            return BlockScale {
                dec: f32::NAN,
                code,
                nan: true,
                ..Self::IDENTITY
            };
        }
        let amax = st.amax;
        match rule {
            ScaleRule::None => Self::IDENTITY,
            ScaleRule::OcpFloor if amax == 0.0 => Self::pow2_scale(-127),
            ScaleRule::OcpFloor => Self::pow2_scale(floor_log2(amax) - emax),
            ScaleRule::Ceil if amax == 0.0 => Self::pow2_scale(-127),
            ScaleRule::Ceil => Self::pow2_scale(ceil_log2(amax) - emax),
            ScaleRule::RCeil if amax == 0.0 => Self::pow2_scale(-127),
            ScaleRule::RCeil => {
                // Smallest k with amax <= max_elem·2^k. amax·2^-k is exact (a power-of-two scaling).
                let k = floor_log2(amax) - emax;
                let k = if amax * pow2(-k) > max_elem { k + 1 } else { k };
                Self::pow2_scale(k)
            }
            ScaleRule::ThreeQuarters => {
                let k = if amax == 0.0 {
                    -127
                } else {
                    floor_log2(amax) - emax
                };
                BlockScale {
                    pre: 0.75,
                    post: 4.0 / 3.0,
                    ..Self::pow2_scale(k)
                }
            }
            ScaleRule::Quest { exp_rounding, mult } => {
                let s = (QUEST_C * st.std()) * mult + 1e-8;
                let e = floor_log2(s);
                let k = match exp_rounding {
                    ExpRounding::Floor => e,
                    ExpRounding::Nearest => round_log2(s),
                };
                Self::pow2_scale(k)
            }
            ScaleRule::Nvfp4 { scale_rounding } => {
                // Transformer Engine's reference order (quantization_nvfp4.py).
                let mut g_enc = (448.0f32 * 6.0) / t.amax;
                if g_enc > f32::MAX {
                    g_enc = f32::MAX;
                }
                if g_enc == 0.0 {
                    g_enc = 1.0;
                }
                let g_dec = 1.0 / g_enc;
                let mut s = (amax / 6.0) * g_enc;
                if s > f32::MAX {
                    s = f32::MAX;
                }
                let s = if s > 448.0 { 448.0 } else { s };
                let sb = match scale_rounding {
                    ScaleRounding::Rne => UE4M3.round_rne(s),
                    ScaleRounding::Up => UE4M3.round_up(s),
                };
                let mut enc = 1.0 / (sb * g_dec);
                if enc > f32::MAX {
                    enc = f32::MAX;
                }
                BlockScale {
                    enc,
                    dec: sb,
                    post: g_dec,
                    code: UE4M3.code_of(sb),
                    ..Self::IDENTITY
                }
            }
            ScaleRule::Absmax { pow2: p2 } => {
                if amax == 0.0 {
                    return Self::IDENTITY;
                }
                let mut enc = max_elem / amax;
                if enc > f32::MAX {
                    enc = f32::MAX;
                }
                if p2 {
                    enc = pow2(floor_log2(enc));
                }
                Self::from_encode(enc)
            }
            ScaleRule::Absmean => {
                let m = st.sum_abs / st.n as f32;
                Self::from_encode(1.0 / if m > 1e-5 { m } else { 1e-5 })
            }
            ScaleRule::MinMax => {
                let range = st.max - st.min;
                let dec = (if range > 1e-5 { range } else { 1e-5 }) / max_elem;
                let enc = 1.0 / dec;
                let zp = crate::bits::rne_small((-st.min * enc).clamp(0.0, max_elem));
                BlockScale {
                    enc,
                    dec,
                    off: zp,
                    ..Self::IDENTITY
                }
            }
        }
    }
}

/// `round(log2 s)` for finite `s > 0`, exact: `e + 1` (e = floor(log2 s)) iff `s ≥ 2^(e+1/2)`,
/// i.e. iff the significand of `s` is at least √2. √2 is irrational, so no f32 significand equals
/// it: the test is `significand ≥ 0x3504F4` (1.41421366, the first f32 above √2), integer-only so
/// that GPU kernels (no f64 on WGSL) decide it the same way.
#[inline(always)]
pub fn round_log2(s: f32) -> i32 {
    let e = floor_log2(s);
    let bits = s.to_bits() & 0x7fff_ffff;
    // Significand bits of the normalized value (subnormals shifted up to a leading 1).
    let frac = if bits >> 23 != 0 {
        bits & 0x7f_ffff
    } else {
        (bits << (bits.leading_zeros() - 8)) & 0x7f_ffff
    };
    if frac >= 0x35_04f4 { e + 1 } else { e }
}

#[cfg(test)]
mod tests {
    use super::round_log2;

    #[test]
    fn round_log2_matches_f64_log2_across_all_binades() {
        // Every binade (subnormals included), at the power, around √2·2^e and just below 2^(e+1).
        for e in -149..=127 {
            let p = crate::bits::pow2(e);
            let mid = (2f64.powf(e as f64 + 0.5)) as f32;
            for s in [
                p,
                mid,
                f32::from_bits(mid.to_bits() - 1),
                f32::from_bits(mid.to_bits() + 1),
                f32::from_bits((p * 1.999).to_bits()),
            ] {
                if s > 0.0 && s.is_finite() {
                    let want = (s as f64).log2().round() as i32;
                    assert_eq!(round_log2(s), want, "s = {s:e} (binade {e})");
                }
            }
        }
    }
}
