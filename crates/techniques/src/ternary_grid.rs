//! What the ternary quantizers share: the absmean of each scale set, the codes, and the
//! straight-through weight; and the absmean grid computed on the host in one pass per set
//! (BitNet's absmean and Tequila call it every forward: one read of the weight and two writes,
//! where the same grid from tensor ops takes a dozen passes).

use burn::prelude::*;
use rayon::prelude::*;

use crate::scale_dtype::ScaleDtype;
use crate::scale_sets::ScaleSets;

/// The absmean ternary grid of a weight: the quantized weight `c·α`, the codes and α per set.
pub struct TernaryGrid<B: Backend> {
    pub q: Tensor<B, 2>,
    pub codes: Tensor<B, 2>,
    /// α per set `[sets, 1]`, as the weight uses it (rounded to the scale type).
    pub alpha: Tensor<B, 2>,
}

/// Which ternary rule: absmean (BitNet b1.58 / AngelSlim: Δ = α/2, α = mean|w|, ties to ±1) or
/// TWN (Δ = 0.7·mean|w|, strict `|w| > Δ`, α = mean |w| of the survivors, 0 if none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TernaryRule {
    Absmean,
    Twn,
}

/// The absmean grid of `w` ([`host_ternary`] with the absmean rule).
pub fn host_absmean<B: Backend>(
    w: &Tensor<B, 2>,
    sets: ScaleSets,
    scale: ScaleDtype,
    keep: Option<&Tensor<B, 2>>,
) -> TernaryGrid<B> {
    host_ternary(w, sets, scale, TernaryRule::Absmean, keep)
}

/// The ternary grid of `w` (`[out, in]`, no gradient) by sets: per set m = mean|w| (summed in
/// f64, rounded to f32), the rule's threshold and α, codes ±1 beyond the threshold (f32
/// comparisons), 0 in the deadzone; the weight is `c·scale(α)`. With `keep` (an N:M mask before
/// the quantizer), the mean and TWN's survivors count the kept entries only, so a pruned zero
/// does not shrink the scale; every entry is still coded.
pub fn host_ternary<B: Backend>(
    w: &Tensor<B, 2>,
    sets: ScaleSets,
    scale: ScaleDtype,
    rule: TernaryRule,
    keep: Option<&Tensor<B, 2>>,
) -> TernaryGrid<B> {
    let device = w.device();
    let shape = w.dims();
    let [n_sets, size] = sets.view(shape);
    let (v, _) = nibble_ops::host::to_host(w.clone().detach());
    let keep = match keep {
        Some(k) => nibble_ops::host::to_host(k.clone()).0,
        None => vec![1.0; v.len()],
    };
    let mut q = vec![0f32; v.len()];
    let mut c = vec![0f32; v.len()];
    let mut alpha = vec![0f32; n_sets];
    q.par_chunks_mut(size)
        .zip(c.par_chunks_mut(size))
        .zip(alpha.par_iter_mut())
        .zip(v.par_chunks(size).zip(keep.par_chunks(size)))
        .for_each(|(((q, c), a), (w, k))| {
            let kept = || w.iter().zip(k).filter(|(_, k)| **k != 0.0).map(|(x, _)| x);
            let count = kept().count().max(1);
            let mean = (kept().map(|x| f64::from(x.abs())).sum::<f64>() / count as f64) as f32;
            let code = |x: f32, delta: f32| match rule {
                TernaryRule::Absmean if x >= delta => 1.0,
                TernaryRule::Absmean if x <= -delta => -1.0,
                TernaryRule::Twn if x.abs() > delta => x.signum(),
                _ => 0.0,
            };
            let (delta, alpha) = match rule {
                TernaryRule::Absmean => (mean * 0.5, mean),
                TernaryRule::Twn => {
                    let delta = mean * 0.7;
                    let survivors = kept().filter(|x| x.abs() > delta);
                    let (n, sum) =
                        survivors.fold((0usize, 0f64), |(n, s), x| (n + 1, s + f64::from(x.abs())));
                    (delta, (sum / n.max(1) as f64) as f32)
                }
            };
            let used = scale.round_value(alpha);
            for ((q, c), &x) in q.iter_mut().zip(c.iter_mut()).zip(w) {
                *c = code(x, delta);
                *q = *c * used;
            }
            *a = used;
        });
    let up = |v: Vec<f32>, dims| nibble_ops::host::from_host::<B>(v, dims, &device);
    TernaryGrid {
        q: up(q, shape),
        codes: up(c, shape),
        alpha: up(alpha, [n_sets, 1]),
    }
}

/// `q` in the forward, the identity gradient to `w` (straight-through): `q + (w − sg(w))`, whose
/// value is `q` exactly (`w − w` is +0 for finite w).
pub fn straight_through<B: Backend>(q: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    q + (w.clone() - w.detach())
}
