//! QAT diagnostics at every log step, over all layers with a `[qat]` grid: the deadzone fraction
//! of ternary grids, the fraction of integer codes at the grid's ends (clipped), and, against
//! the previous log step, the flip rate (codes that changed) and the deadzone escape rate (of
//! the weights that were 0, the share that is not 0 now: Tequila's "trapping", which it should
//! raise). The previous codes are kept on the host, one byte per weight. Per layer, the
//! learned quantizer parameters (steps, SEQ clips, Tequila's λ): mean, min and max of each, as
//! `qat/<module>.<slot>/{mean,min,max}`.

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
    ) -> Vec<(String, f64)> {
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
        let mut out: Vec<(String, f64)> = Vec::new();
        if c.ternary > 0 {
            out.push(("qat/deadzone".into(), ratio(c.zeros, c.ternary)));
        }
        if c.int > 0 {
            out.push(("qat/clipped".into(), ratio(c.clipped, c.int)));
        }
        if c.compared > 0 {
            out.push(("qat/flip_rate".into(), ratio(c.flips, c.compared)));
        }
        if c.were_zero > 0 {
            out.push(("qat/escape_rate".into(), ratio(c.escaped, c.were_zero)));
        }
        if !out.is_empty() {
            out.extend(scale_stats(params));
        }
        out
    }
}

/// The learned quantizer parameters a layer keeps, by slot suffix.
const LEARNED: [&str; 3] = ["weight_scale", "weight_clip_val", "weight_lambda"];

/// Mean, min and max of every learned quantizer parameter.
fn scale_stats<B: LpBackend>(params: &Params<B>) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for (name, t) in &params.tensors {
        if !LEARNED.iter().any(|s| name.ends_with(s)) {
            continue;
        }
        let v: Vec<f32> = t.to_data().convert::<f32>().into_vec().expect("f32");
        let mean = v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
        let min = v.iter().fold(f32::INFINITY, |m, &x| m.min(x));
        let max = v.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        out.push((format!("qat/{name}/mean"), mean));
        out.push((format!("qat/{name}/min"), f64::from(min)));
        out.push((format!("qat/{name}/max"), f64::from(max)));
    }
    out
}
