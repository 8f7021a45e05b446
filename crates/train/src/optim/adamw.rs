use std::collections::BTreeMap;

use burn::prelude::*;
use nibble_model::Params;
use nibble_model::params::{ParamKind, kind_of};

use super::OptimConfig;

/// First and second moments per parameter, and the number of steps taken.
#[derive(Debug, Clone)]
pub struct AdamWState<B: Backend> {
    pub step: u64,
    pub exp_avg: BTreeMap<String, Tensor<B, 2>>,
    pub exp_avg_sq: BTreeMap<String, Tensor<B, 2>>,
}

/// AdamW with PyTorch's semantics: `p ← p·(1 − lr·wd)`, then
/// `p ← p − lr · m̂ / (√v̂ + ε)` with bias-corrected moments.
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    pub cfg: OptimConfig,
    pub state: AdamWState<B>,
}

impl<B: Backend> AdamW<B> {
    /// Zero moments for every parameter.
    pub fn new(cfg: OptimConfig, params: &Params<B>) -> Self {
        let zeros = || {
            params
                .tensors
                .iter()
                .map(|(n, t)| (n.clone(), t.zeros_like()))
                .collect()
        };
        Self {
            cfg,
            state: AdamWState {
                step: 0,
                exp_avg: zeros(),
                exp_avg_sq: zeros(),
            },
        }
    }

    /// Weight decay of a parameter: none for norms and embeddings.
    pub fn decay_of(&self, name: &str) -> f64 {
        match kind_of(name) {
            ParamKind::Matrix => self.cfg.weight_decay,
            ParamKind::Norm | ParamKind::Embedding => 0.0,
        }
    }

    /// One update with learning rate `lr` (already scheduled). Parameters without a gradient
    /// (unused in the graph) are left unchanged.
    pub fn step(
        &mut self,
        params: &mut Params<B>,
        grads: &BTreeMap<String, Tensor<B, 2>>,
        lr: f64,
    ) {
        let decays: Vec<f64> = params.tensors.keys().map(|n| self.decay_of(n)).collect();
        let c = &self.cfg;
        self.state.step += 1;
        let t = self.state.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for ((name, p), wd) in params.tensors.iter_mut().zip(decays) {
            let Some(g) = grads.get(name) else { continue };
            let m = self.state.exp_avg.get_mut(name).expect("moment");
            *m = m.clone() * c.beta1 + g.clone() * (1.0 - c.beta1);
            let v = self.state.exp_avg_sq.get_mut(name).expect("moment");
            *v = v.clone() * c.beta2 + g.clone() * g.clone() * (1.0 - c.beta2);
            let mut np = p.clone();
            if wd > 0.0 {
                np = np * (1.0 - lr * wd);
            }
            let denom = (v.clone() / bc2).sqrt() + c.eps;
            *p = np - (m.clone() / bc1) / denom * lr;
        }
    }
}
