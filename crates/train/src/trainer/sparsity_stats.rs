//! N:M sparsity diagnostics at every log step: per masked layer the achieved density (kept
//! share of its mask, N/M when the mask is exact), over all masked layers the mask flip rate
//! against the previous log step (the stability measure of the N:M literature), MDGF's current
//! β, SDGF's current frame and its density N/M, and the variance of the step's weight gradient on
//! pruned and on kept entries. The previous masks are kept on the host, one byte per weight.

use std::collections::BTreeMap;

use nibble_model::techniques::AnyTechnique;
use nibble_model::{Llama, LpBackend, Params};

use super::step::GradProbe;

#[derive(Default)]
pub(crate) struct SparsityStats {
    prev: BTreeMap<String, Vec<u8>>,
}

impl SparsityStats {
    /// The metrics after `step` updates (none without a masked layer).
    pub(crate) fn measure<B: LpBackend>(
        &mut self,
        model: &Llama,
        params: &Params<B>,
        step: u64,
        probe: Option<GradProbe>,
    ) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let (mut compared, mut flips) = (0u64, 0u64);
        let (mut beta, mut frame) = (None, None);
        for l in model.linears() {
            let name = format!("{}.weight_mask", l.name);
            let Some(mask) = params.buffers.get(&name) else {
                continue;
            };
            for t in &l.techniques {
                match t {
                    AnyTechnique::Mdgf(m) => beta = Some(m.beta_at(step)),
                    AnyTechnique::Sdgf(d) if frame.is_none() => {
                        let (n, m) = d.pattern_at(step);
                        frame = Some((d.frame_at(step), n as f64 / m as f64));
                    }
                    _ => {}
                }
            }
            let now: Vec<u8> = mask
                .to_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32 mask")
                .iter()
                .map(|&v| u8::from(v != 0.0))
                .collect();
            let kept = now.iter().filter(|&&v| v == 1).count();
            out.push((
                format!("sparsity/{}/density", l.name),
                kept as f64 / now.len() as f64,
            ));
            if let Some(prev) = self.prev.get(&name).filter(|p| p.len() == now.len()) {
                compared += now.len() as u64;
                flips += prev.iter().zip(&now).filter(|(a, b)| a != b).count() as u64;
            }
            self.prev.insert(name, now);
        }
        if compared > 0 {
            out.push(("sparsity/flip_rate".into(), flips as f64 / compared as f64));
        }
        if let Some(b) = beta {
            out.push(("sparsity/beta".into(), b));
        }
        if let Some((k, density)) = frame {
            out.push(("sparsity/sdgf_frame".into(), k as f64));
            out.push(("sparsity/sdgf_density".into(), density));
        }
        if let Some(p) = probe {
            out.push(("sparsity/grad_var_pruned".into(), p.pruned_var));
            out.push(("sparsity/grad_var_kept".into(), p.kept_var));
        }
        out
    }
}
