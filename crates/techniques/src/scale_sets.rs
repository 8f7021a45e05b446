//! The sets of weights that share one scale or step (the whole tensor, a row, or groups of `g`
//! consecutive inputs of a row), as rows of a reshaped view, for the ternary, LSQ, affine and
//! SEQ quantizers.

/// The weights that share one scale or step.
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

    /// `[out, sets per row]`: how per-row and per-group scales are stored (`[1, 1]` per tensor).
    pub fn slot_shape(self, [out, inp]: [usize; 2]) -> [usize; 2] {
        match self {
            ScaleSets::Tensor => [1, 1],
            _ => [out, self.view([out, inp])[0] / out],
        }
    }

    /// One value per set (`[sets, 1]` or the stored shape) as `[out, in/group]` with `group`
    /// the inputs each covers (the row length per tensor or per row): the layout a serving
    /// format stores scales in.
    pub fn per_row<B: burn::prelude::Backend>(
        self,
        v: burn::prelude::Tensor<B, 2>,
        [out, inp]: [usize; 2],
    ) -> (burn::prelude::Tensor<B, 2>, usize) {
        match self {
            ScaleSets::Tensor => (v.reshape([1, 1]).expand([out, 1]), inp),
            ScaleSets::Channel => (v.reshape([out, 1]), inp),
            ScaleSets::Group(g) => (v.reshape([out, inp / g]), g),
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
