use std::collections::BTreeMap;

use burn::prelude::*;

/// √(Σ‖g‖²) over all gradients, accumulated in f64 in name order.
pub fn global_norm<B: Backend>(grads: &BTreeMap<String, Tensor<B, 2>>) -> f64 {
    grads
        .values()
        .map(|g| {
            (g.clone() * g.clone())
                .sum()
                .into_data()
                .convert::<f64>()
                .into_vec::<f64>()
                .expect("scalar")[0]
        })
        .sum::<f64>()
        .sqrt()
}

/// Scale gradients so that their global norm is at most `max_norm` (PyTorch's rule: factor
/// `max_norm / (norm + 1e-6)`, capped at 1). Returns the norm before clipping.
pub fn clip_global_norm<B: Backend>(
    grads: &mut BTreeMap<String, Tensor<B, 2>>,
    max_norm: f64,
) -> f64 {
    let norm = global_norm(grads);
    if max_norm > 0.0 {
        let coef = max_norm / (norm + 1e-6);
        if coef < 1.0 {
            for g in grads.values_mut() {
                *g = g.clone() * coef;
            }
        }
    }
    norm
}
