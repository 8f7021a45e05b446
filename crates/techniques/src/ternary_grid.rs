//! What the ternary quantizers share: the sets of weights that share one scale (the whole
//! tensor, a row, or groups of `g` consecutive inputs of a row), as rows of a reshaped view.

use burn::prelude::*;

/// The weights that share one ternary scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleSets {
    /// One scale for the whole tensor (BitNet b1.58, TWN).
    Tensor,
    /// One per output row.
    Channel,
    /// One per `g` consecutive inputs of a row (AngelSlim / Tequila: 128).
    Group(usize),
}

impl ScaleSets {
    /// Checks that the sets tile a weight of `[out, in]`.
    pub fn check(self, [_, inp]: [usize; 2]) -> Result<(), String> {
        match self {
            ScaleSets::Group(g) if g == 0 || inp % g != 0 => Err(format!(
                "group size {g} does not divide the input dimension {inp}"
            )),
            _ => Ok(()),
        }
    }

    /// `[sets, size]`: the weight reshaped so that each row is one set.
    pub fn view(self, [out, inp]: [usize; 2]) -> [usize; 2] {
        match self {
            ScaleSets::Tensor => [1, out * inp],
            ScaleSets::Channel => [out, inp],
            ScaleSets::Group(g) => [out * inp / g, g],
        }
    }
}

/// The mean |w| of each set, `[sets, 1]`, of `w` viewed as `[sets, size]`.
pub fn absmean<B: Backend>(w: &Tensor<B, 2>) -> Tensor<B, 2> {
    w.clone().abs().mean_dim(1)
}

/// Ternary codes (−1, 0, +1) of `w` with threshold `delta` per set (`[sets, 1]`): ±1 where
/// `±w ≥ Δ` (ties go to ±1, as AngelSlim's `absmean` does), 0 in the deadzone.
pub fn codes<B: Backend>(w: &Tensor<B, 2>, delta: Tensor<B, 2>) -> Tensor<B, 2> {
    let shape = w.dims();
    let delta = delta.expand(shape);
    let pos = w.clone().greater_equal(delta.clone()).float();
    let neg = w.clone().lower_equal(delta.neg()).float();
    pos - neg
}

/// `q` in the forward, the identity gradient to `w` (straight-through): `q + (w − sg(w))`, whose
/// value is `q` exactly (`w − w` is +0 for finite w).
pub fn straight_through<B: Backend>(q: Tensor<B, 2>, w: Tensor<B, 2>) -> Tensor<B, 2> {
    q + (w.clone() - w.detach())
}
