//! Block scales as a table indexed by the block's amax, built on the host from the CPU oracle's
//! own `BlockScale::compute`.
//!
//! Rules whose scale depends on the block amax alone and takes few distinct values (NVFP4's
//! E4M3 block scale under a tensor scale, an absmax encode scale rounded to a power of two, the
//! UE8M0 rules) are step functions of amax, monotone in it. The host finds every step by binary
//! search over f32 bit patterns and the device only compares amax bits against the thresholds:
//! no device division (whose accuracy WGSL and CUDA fast paths do not promise), so every block
//! gets the CPU's exact scale.

use nibble_formats::block_scale::BlockScale;

/// Largest finite f32 bit pattern: block amaxes are finite (a non-finite block is NaN).
const MAX_FINITE: u32 = 0x7f7f_ffff;

/// More steps than any supported rule has (UE8M0 spans 255 exponents).
const MAX_ENTRIES: usize = 1024;

/// Step `i` holds for amax bit patterns in `[thresholds[i-1], thresholds[i])` (with
/// `thresholds[-1] = 0` and `thresholds[len] = ∞`); `entries` has one more element than
/// `thresholds`. An entry is `[enc, dec, post, nan]`, `nan` 1.0 when the block's output is NaN.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleTable {
    pub thresholds: Vec<u32>,
    pub entries: Vec<[f32; 4]>,
}

/// The numbers the device applies for one block scale, or None if the scale has a pre-factor
/// or zero point (rules the table path does not cover).
pub fn entry(bs: &BlockScale) -> Option<[f32; 4]> {
    (bs.pre == 1.0 && bs.off == 0.0).then_some([
        bs.enc,
        bs.dec,
        bs.post,
        if bs.nan { 1.0 } else { 0.0 },
    ])
}

fn same(a: &[f32; 4], b: &[f32; 4]) -> bool {
    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

impl ScaleTable {
    /// The table of `scale(amax)`. `scale` must be a step function of amax whose value, once
    /// left, is not taken again for larger amaxes (true of every rule it is used for; amax 0 is
    /// isolated as its own step, so rules that special-case it are fine). None if a scale has a
    /// pre-factor or zero point, or the table would exceed 1,024 steps.
    pub fn build(scale: impl Fn(f32) -> BlockScale) -> Option<ScaleTable> {
        let at = |bits: u32| entry(&scale(f32::from_bits(bits)));
        let mut thresholds = vec![1u32];
        let mut entries = vec![at(0)?, at(1)?];
        let last = at(MAX_FINITE)?;
        let mut lo = 1u32;
        loop {
            let cur = *entries.last().expect("non-empty");
            if same(&cur, &last) {
                return Some(ScaleTable {
                    thresholds,
                    entries,
                });
            }
            // Invariant: at(lo) == cur, at(hi) != cur.
            let mut hi = MAX_FINITE;
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if same(&at(mid)?, &cur) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            thresholds.push(hi);
            entries.push(at(hi)?);
            lo = hi;
            if entries.len() > MAX_ENTRIES {
                return None;
            }
        }
    }

    /// The entry for a (finite, non-negative) amax: the device's lookup, on the host.
    pub fn lookup(&self, amax: f32) -> [f32; 4] {
        let a = amax.to_bits();
        self.entries[self.thresholds.partition_point(|&t| t <= a)]
    }

    /// Entries flattened for upload (4 f32 per entry).
    pub fn flat_entries(&self) -> Vec<f32> {
        self.entries.iter().flatten().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nibble_formats::block_scale::TensorInfo;
    use nibble_formats::spec::{ScaleRounding, ScaleRule};
    use nibble_formats::stats::Stats;

    fn direct(rule: ScaleRule, max: f32, emax: i32, tensor_amax: f32, a: f32) -> [f32; 4] {
        let st = Stats {
            amax: a,
            n: 16,
            ..Stats::EMPTY
        };
        let t = TensorInfo { amax: tensor_amax };
        entry(&BlockScale::compute(rule, max, emax, &st, &t)).expect("entry")
    }

    /// The table equals the direct computation at every threshold, one bit pattern below it,
    /// and on amaxes spread over every binade.
    #[test]
    fn table_lookup_equals_direct_scale() {
        let nv = ScaleRule::Nvfp4 {
            scale_rounding: ScaleRounding::Rne,
        };
        let up = ScaleRule::Nvfp4 {
            scale_rounding: ScaleRounding::Up,
        };
        let cases = [
            (nv, 6.0, 2, 1.0),
            (nv, 6.0, 2, 3.7e-3),
            (nv, 6.0, 2, 2.9e31),
            (nv, 6.0, 2, 1e-40),
            (nv, 6.0, 2, f32::NAN),
            (up, 6.0, 2, 17.0),
            (ScaleRule::Absmax { pow2: true }, 448.0, 8, 0.0),
            (ScaleRule::Absmax { pow2: true }, 57344.0, 15, 0.0),
            (ScaleRule::OcpFloor, 6.0, 2, 0.0),
            (ScaleRule::RCeil, 448.0, 8, 0.0),
        ];
        for (rule, max, emax, ta) in cases {
            let f = |a| {
                BlockScale::compute(
                    rule,
                    max,
                    emax,
                    &Stats {
                        amax: a,
                        n: 16,
                        ..Stats::EMPTY
                    },
                    &TensorInfo { amax: ta },
                )
            };
            let t = ScaleTable::build(f).expect("table");
            assert!(t.thresholds.windows(2).all(|w| w[0] < w[1]));
            let mut probes: Vec<u32> = vec![0, 1, 2, MAX_FINITE];
            for &th in &t.thresholds {
                probes.extend([th - 1, th, th + 1]);
            }
            probes.extend((0..4000u32).map(|i| i.wrapping_mul(0x9E37_79B9) % MAX_FINITE));
            for b in probes {
                let a = f32::from_bits(b);
                let want = direct(rule, max, emax, ta, a);
                assert!(
                    same(&t.lookup(a), &want),
                    "{rule:?} tensor amax {ta:e}: amax {a:e}"
                );
            }
        }
    }
}
