//! A projection's trained integer or ternary grid, for exports that store it as it is: the
//! scale (and, asymmetric, the zero point) of each set of `group` consecutive inputs of a row.
//! The weight's values are `(code − zero)·scale` with codes in `lo..=hi`; a format holds the
//! grid when its blocks fall inside the sets, its scale type represents every scale, and its
//! code range covers the codes. Whatever the checks, the writers decode what they encoded and
//! compare it with the weight bit for bit, so a file either holds exactly the trained weights or
//! is refused.

use crate::quants::GgmlType;

#[derive(Debug, Clone, PartialEq)]
pub struct GridTensor {
    /// Inputs per scale (the row length for one scale per row or per tensor).
    pub group: usize,
    /// `[rows, cols/group]`, row-major.
    pub scales: Vec<f32>,
    /// Asymmetric grids: the zero points (integers), same layout.
    pub zeros: Option<Vec<f32>>,
    /// The codes' range: `round(w/scale) + zero` lies in `lo..=hi`.
    pub lo: i32,
    pub hi: i32,
}

impl GridTensor {
    /// The grid of a `[rows, ·]` weight with its rows permuted as `permute(matrix, width)`
    /// permutes a row-major `[rows, width]` matrix (GGUF's RoPE order of q/k rows).
    pub fn permute_rows(
        &self,
        rows: usize,
        permute: impl Fn(&[f32], usize) -> Vec<f32>,
    ) -> GridTensor {
        let width = self.scales.len() / rows.max(1);
        GridTensor {
            scales: permute(&self.scales, width),
            zeros: self.zeros.as_ref().map(|z| permute(z, width)),
            ..self.clone()
        }
    }

    /// GGUF type `ty`'s scale of each block of a `[rows, cols]` weight on this grid, or why the
    /// type cannot hold it.
    pub fn gguf_block_scales(
        &self,
        ty: GgmlType,
        rows: usize,
        cols: usize,
    ) -> Result<Vec<f32>, String> {
        let block = ty.block_size();
        let (lo, hi) = match ty {
            GgmlType::Q8_0 => (-128, 127),
            GgmlType::Q4_0 => (-8, 7),
            GgmlType::TQ1_0 | GgmlType::TQ2_0 => (-1, 1),
            _ => {
                return Err(format!(
                    "{} does not store a scale and integer codes per block",
                    ty.name()
                ));
            }
        };
        if self.zeros.is_some() {
            return Err(format!(
                "its grid is asymmetric (zero points), which {} cannot hold (ct-w4a16-asym can, \
                 at 4 bits)",
                ty.name()
            ));
        }
        if self.lo < lo || self.hi > hi {
            return Err(format!(
                "its codes span {}..={}, {}'s {lo}..={hi}",
                self.lo,
                self.hi,
                ty.name()
            ));
        }
        if !self.group.is_multiple_of(block) {
            return Err(format!(
                "its scales cover {} inputs, not whole {}-input blocks of {}",
                self.group,
                block,
                ty.name()
            ));
        }
        let sets = cols / self.group;
        if self.scales.len() != rows * sets {
            return Err(format!(
                "{} scales for {rows} rows of {sets} sets",
                self.scales.len()
            ));
        }
        self.check_scales(half_f16, "f16")?;
        let per = self.group / block;
        Ok(self
            .scales
            .iter()
            .flat_map(|&s| std::iter::repeat_n(s, per))
            .collect())
    }

    /// Every scale is a value of the format's scale type (`round` rounds to it).
    pub fn check_scales(&self, round: fn(f32) -> f32, dtype: &str) -> Result<(), String> {
        match self
            .scales
            .iter()
            .position(|&s| round(s).to_bits() != s.to_bits())
        {
            Some(i) => Err(format!(
                "scale {} (set {i}) is not a {dtype} value: train with [qat] scale_dtype = \
                 \"{dtype}\"",
                self.scales[i]
            )),
            None => Ok(()),
        }
    }
}

fn half_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// The first index where `decoded` differs from `values` (bitwise), as an error.
pub(crate) fn compare_bits(values: &[f32], decoded: &[f32]) -> Result<(), String> {
    match values
        .iter()
        .zip(decoded)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        Some(i) => Err(format!(
            "the weight is not on its grid at index {i}: {} decodes as {}",
            values[i], decoded[i]
        )),
        None => Ok(()),
    }
}
