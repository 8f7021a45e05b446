//! N:M sparsity diagnostics at every log step: per masked layer the achieved density (kept
//! share of its mask, N/M when the mask is exact), over all masked layers the mask flip rate
//! against the previous log step (the stability measure of the N:M literature), and MDGF's
//! current β. The previous masks are kept on the host, one byte per weight.

use std::collections::BTreeMap;

use nibble_model::techniques::AnyTechnique;
use nibble_model::{Llama, LpBackend, Params};

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
    ) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let (mut compared, mut flips) = (0u64, 0u64);
        let mut beta = None;
        for l in model.linears() {
            let name = format!("{}.weight_mask", l.name);
            let Some(mask) = params.buffers.get(&name) else {
                continue;
            };
            for t in &l.techniques {
                if let AnyTechnique::Mdgf(m) = t {
                    beta = Some(m.beta_at(step));
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
        out
    }
}
