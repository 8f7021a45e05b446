//! QAT diagnostics at every log step, over all layers with a `[qat]` grid: the deadzone fraction
//! of ternary grids, the fraction of integer codes at the grid's ends (clipped), and, against
//! the previous log step, the flip rate (codes that changed) and the deadzone escape rate (of
//! the weights that were 0, the share that is not 0 now: Tequila's "trapping", which it should
//! raise). The previous codes are kept on the host, one byte per weight.

use std::collections::BTreeMap;

use nibble_model::techniques::StepInfo;
use nibble_model::{Llama, LpBackend, Params};

#[derive(Default)]
pub(crate) struct QatStats {
    /// Per layer: `code − lo` of the last log step.
    prev: BTreeMap<String, Vec<u8>>,
}

#[derive(Default)]
struct Counts {
    ternary: u64,
    zeros: u64,
    int: u64,
    clipped: u64,
    compared: u64,
    flips: u64,
    were_zero: u64,
    escaped: u64,
}

impl QatStats {
    /// The metrics after `step` updates (none when no layer has a QAT grid acting yet).
    pub(crate) fn measure<B: LpBackend>(
        &mut self,
        model: &Llama,
        params: &Params<B>,
        step: u64,
    ) -> Vec<(&'static str, f64)> {
        let at = StepInfo { step, train: false };
        let mut c = Counts::default();
        for (name, codes) in model.qat_codes(params, at) {
            let (lo, hi, ternary) = (codes.lo, codes.hi, codes.is_ternary());
            let now: Vec<u8> = codes
                .codes
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 codes")
                .iter()
                .map(|v| (v - lo) as u8)
                .collect();
            let n = now.len() as u64;
            let (zero, top) = ((0.0 - lo) as u8, (hi - lo) as u8);
            if ternary {
                c.ternary += n;
                c.zeros += now.iter().filter(|&&v| v == zero).count() as u64;
            } else {
                c.int += n;
                c.clipped += now.iter().filter(|&&v| v == 0 || v == top).count() as u64;
            }
            if let Some(prev) = self.prev.get(&name).filter(|p| p.len() == now.len()) {
                c.compared += n;
                c.flips += prev.iter().zip(&now).filter(|(a, b)| a != b).count() as u64;
                if ternary {
                    for (a, b) in prev.iter().zip(&now) {
                        if *a == zero {
                            c.were_zero += 1;
                            c.escaped += u64::from(*b != zero);
                        }
                    }
                }
            }
            self.prev.insert(name, now);
        }
        let ratio = |a: u64, b: u64| a as f64 / b as f64;
        let mut out = Vec::new();
        if c.ternary > 0 {
            out.push(("qat/deadzone", ratio(c.zeros, c.ternary)));
        }
        if c.int > 0 {
            out.push(("qat/clipped", ratio(c.clipped, c.int)));
        }
        if c.compared > 0 {
            out.push(("qat/flip_rate", ratio(c.flips, c.compared)));
        }
        if c.were_zero > 0 {
            out.push(("qat/escape_rate", ratio(c.escaped, c.were_zero)));
        }
        out
    }
}
