//! The knowledge-distillation losses, each a mean over tokens (or entries) so that their
//! weights in `[distill]` are comparable across shapes.

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use nibble_model::layers::causal_mask;

/// `T²·KL(p_T ‖ p_S)` per token, mean over tokens, of logits `[b, t, v]` at temperature `t`:
/// the soft cross-entropy `−Σ p_T log p_S` less the teacher's entropy (a constant), so its
/// gradient is the soft cross-entropy's and it is 0 for a student equal to its teacher.
pub fn kd_logits<B: Backend>(
    student: Tensor<B, 3>,
    teacher: Tensor<B, 3>,
    temperature: f64,
) -> Tensor<B, 1> {
    let ls = log_softmax(student / temperature, 2);
    let lt = log_softmax(teacher.detach() / temperature, 2);
    let pt = lt.clone().exp();
    (pt * (lt - ls)).sum_dim(2).mean() * (temperature * temperature)
}

/// Mean squared difference over every entry.
pub fn mse<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> Tensor<B, 1> {
    let d = a - b.detach();
    (d.clone() * d).mean()
}

/// Mean squared difference of attention scores `[b, h, t, t]` over the entries a causal
/// query sees (key j ≤ query i); the masked ones, −∞ after the mask, are left out.
pub fn masked_score_mse<B: Backend>(student: Tensor<B, 4>, teacher: Tensor<B, 4>) -> Tensor<B, 1> {
    let [b, h, n, total] = student.dims();
    let start = total - n;
    // The attention's own mask (0 where seen, −∞ after), as 1 / 0.
    let keep = causal_mask::<B>(n, total, start, &student.device())
        .equal_elem(0.0)
        .float();
    // Query i sees start + i + 1 keys.
    let seen = n * start + n * (n + 1) / 2;
    let d = (student - teacher.detach()) * keep;
    (d.clone() * d).sum() / (b * h * seen) as f64
}
