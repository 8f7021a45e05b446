//! What an export writes from a [`Llama`]: the weights as the model computes with them (or as a
//! serving grid's exporter wants them), the techniques' output biases and trained grids.

use std::collections::BTreeMap;

use burn::prelude::*;
use nibble_ops::LpBackend;
use nibble_techniques::{AnyTechnique, GridScales, ServingGrid, StepInfo};

use crate::llama::Llama;
use crate::params::{Params, layout};

impl Llama {
    /// The model's weights as it computes with them after `step` steps: each projection's
    /// weight through its techniques (masked, fake-quantized), every other parameter as it is;
    /// the layout's names only. What an export writes.
    pub fn effective_weights<B: LpBackend>(
        &self,
        p: &Params<B>,
        step: u64,
    ) -> Result<BTreeMap<String, Tensor<B, 2>>, String> {
        self.export_weights(p, step, None)
    }

    /// The weights an export to serving grid `target` writes: [`Llama::effective_weights`],
    /// except that a projection trained on exactly that grid (a GGUF or compressed-tensors grid
    /// technique of `target`) gives the weight its grid quantizes (see
    /// [`LpLinear::export_weight`]): the exporter then writes the trained codes and scales
    /// instead of re-quantizing the dequantized grid. `None` (HF, F32/F16): effective weights.
    pub fn export_weights<B: LpBackend>(
        &self,
        p: &Params<B>,
        step: u64,
        target: Option<ServingGrid>,
    ) -> Result<BTreeMap<String, Tensor<B, 2>>, String> {
        let at = StepInfo { step, train: false };
        let mut out: BTreeMap<String, Tensor<B, 2>> = layout(&self.arch)
            .into_iter()
            .map(|(n, _)| {
                let t = p.get(&n);
                (n, t)
            })
            .collect();
        for l in self.linears() {
            let transforms = l
                .techniques
                .iter()
                .any(|t| !matches!(t, AnyTechnique::DelayedScaling(_)));
            if l.name == "lm_head" && self.arch.tie_embeddings && transforms {
                return Err(
                    "lm_head has weight techniques but shares the embedding (tied): its \
                     transformed weight has no tensor of its own to export"
                        .into(),
                );
            }
            if transforms {
                out.insert(l.weight.clone(), l.export_weight(p, at, target));
            }
        }
        Ok(out)
    }

    /// The output biases the projections' techniques add (Tequila's deadzone bias), by bias
    /// name (`<module>.bias`), `[1, out]`, after `step` steps.
    pub fn export_biases<B: LpBackend>(
        &self,
        p: &Params<B>,
        step: u64,
    ) -> BTreeMap<String, Tensor<B, 2>> {
        let at = StepInfo { step, train: false };
        self.linears()
            .into_iter()
            .filter(|l| l.has_output_bias())
            .filter_map(|l| Some((format!("{}.bias", l.name), l.weight_and_bias(p, at).1?)))
            .collect()
    }

    /// The grids of the projections trained on one (see [`LpLinear::export_grid`]), by weight
    /// name, after `step` steps.
    pub fn export_grids<B: LpBackend>(
        &self,
        p: &Params<B>,
        step: u64,
    ) -> BTreeMap<String, GridScales<B>> {
        let at = StepInfo { step, train: false };
        self.linears()
            .into_iter()
            .filter_map(|l| Some((l.weight.clone(), l.export_grid(p, at)?)))
            .collect()
    }
}
