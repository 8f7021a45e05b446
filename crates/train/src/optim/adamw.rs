use std::collections::{BTreeMap, BTreeSet};

use burn::prelude::*;
use nibble_config::KeyError;
use nibble_model::{Llama, Params};
use nibble_ops::LpBackend;
use nibble_ops::fused::adamw::AdamWStep;
use nibble_ops::fused::adamw_step;

use super::OptimConfig;
use super::groups::Groups;

/// First and second moments per trainable (not frozen) parameter, and the number of steps taken.
#[derive(Debug, Clone)]
pub struct AdamWState<B: Backend> {
    pub step: u64,
    pub exp_avg: BTreeMap<String, Tensor<B, 2>>,
    pub exp_avg_sq: BTreeMap<String, Tensor<B, 2>>,
}

/// AdamW with PyTorch's semantics: `p ← p·(1 − lr·wd)`, then
/// `p ← p − lr · m̂ / (√v̂ + ε)` with bias-corrected moments; lr and wd per parameter group.
#[derive(Debug, Clone)]
pub struct AdamW<B: Backend> {
    pub cfg: OptimConfig,
    pub groups: Groups,
    pub state: AdamWState<B>,
}

impl<B: LpBackend> AdamW<B> {
    /// Zero moments for every parameter that is not frozen.
    pub fn new(cfg: OptimConfig, groups: Groups, params: &Params<B>) -> Self {
        let zeros = || {
            params
                .tensors
                .iter()
                .filter(|(n, _)| !groups.is_frozen(n))
                .map(|(n, t)| (n.clone(), t.zeros_like()))
                .collect()
        };
        Self {
            state: AdamWState {
                step: 0,
                exp_avg: zeros(),
                exp_avg_sq: zeros(),
            },
            cfg,
            groups,
        }
    }

    /// The optimizer of `model`'s parameters, grouped per `cfg.groups` (errors under `optim`).
    pub fn for_model(
        cfg: OptimConfig,
        model: &Llama,
        params: &Params<B>,
    ) -> Result<Self, KeyError> {
        let names: Vec<String> = params.tensors.keys().cloned().collect();
        let tech: BTreeSet<String> = model.technique_params().into_iter().collect();
        let groups = Groups::resolve(&cfg.groups, cfg.weight_decay, &names, &tech)
            .map_err(|e| e.within("optim"))?;
        Ok(Self::new(cfg, groups, params))
    }

    /// Weight decay of a parameter: its group's, else none for norms and embeddings.
    pub fn decay_of(&self, name: &str) -> f64 {
        self.groups.decay_of(name)
    }

    /// One update with learning rate `lr` (already scheduled; groups scale it). Parameters
    /// without a gradient (unused in the graph, or frozen) are left unchanged.
    pub fn step(
        &mut self,
        params: &mut Params<B>,
        grads: &BTreeMap<String, Tensor<B, 2>>,
        lr: f64,
    ) {
        self.state.step += 1;
        let t = self.state.step as i32;
        let c = &self.cfg;
        let (bc1, bc2) = (1.0 - c.beta1.powi(t), 1.0 - c.beta2.powi(t));
        let names: Vec<String> = params.tensors.keys().cloned().collect();
        for name in names {
            let Some(g) = grads.get(&name) else { continue };
            if self.groups.is_frozen(&name) {
                continue;
            }
            // Taken out of their maps so the fused pass can update the buffers in place.
            let p = params.tensors.remove(&name).expect("listed");
            let m = self.state.exp_avg.remove(&name).expect("moment");
            let v = self.state.exp_avg_sq.remove(&name).expect("moment");
            let step = AdamWStep {
                beta1: c.beta1,
                beta2: c.beta2,
                eps: c.eps,
                lr: self.groups.lr_of(&name, lr, c.lr),
                weight_decay: self.groups.decay_of(&name),
                bc1,
                bc2,
            };
            let (p, m, v) = adamw_step(p, g.clone(), m, v, &step);
            params.tensors.insert(name.clone(), p);
            self.state.exp_avg.insert(name.clone(), m);
            self.state.exp_avg_sq.insert(name, v);
        }
    }
}
