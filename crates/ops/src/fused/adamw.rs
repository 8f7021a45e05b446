//! One AdamW update (PyTorch's decoupled form) of a parameter and its moments in a single pass,
//! in place where the buffers are not shared: the same f32 operations, in the same order, as the
//! chain of burn tensor ops it replaces (`m·β1 + g·(1−β1)`, `v·β2 + g·g·(1−β2)`,
//! `p·(1 − lr·wd)`, `np − (m/bc1)/(√(v/bc2) + ε)·lr`, every scalar rounded to f32 once), so the
//! bits do not change; only the ~12 intermediate tensors and passes over memory go.

use rayon::prelude::*;

/// The scalars of one update: moments' decay, ε, the parameter's learning rate and weight
/// decay, and the bias corrections `1 − β^t`.
#[derive(Clone, Copy, Debug)]
pub struct AdamWStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub lr: f64,
    pub weight_decay: f64,
    pub bc1: f64,
    pub bc2: f64,
}

const CHUNK: usize = 8192;

/// Updates `p`, `m`, `v` in place from the gradient `g`.
pub fn update(p: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32], s: &AdamWStep) {
    let (b1, omb1) = (s.beta1 as f32, (1.0 - s.beta1) as f32);
    let (b2, omb2) = (s.beta2 as f32, (1.0 - s.beta2) as f32);
    let decay = (s.weight_decay > 0.0).then_some((1.0 - s.lr * s.weight_decay) as f32);
    let (bc1, bc2, eps, lr) = (s.bc1 as f32, s.bc2 as f32, s.eps as f32, s.lr as f32);
    p.par_chunks_mut(CHUNK)
        .zip(m.par_chunks_mut(CHUNK))
        .zip(v.par_chunks_mut(CHUNK))
        .zip(g.par_chunks(CHUNK))
        .for_each(|(((p, m), v), g)| {
            for (((p, m), v), g) in p.iter_mut().zip(m).zip(v).zip(g) {
                *m = *m * b1 + *g * omb1;
                *v = *v * b2 + *g * *g * omb2;
                let np = match decay {
                    Some(d) => *p * d,
                    None => *p,
                };
                let denom = (*v / bc2).sqrt() + eps;
                *p = np - *m / bc1 / denom * lr;
            }
        });
}
