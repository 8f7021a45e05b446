//! The weight grid of a serving format `nibble export` writes, and which trained grids it
//! represents exactly: a projection trained on such a grid is exported from the weight its grid
//! quantizes (the exporter's quantizer is the grid's own function), so the file holds the
//! trained codes and scales rather than a re-quantization of them.

use nibble_modelfiles::ct::CtScheme;
use nibble_modelfiles::quants::GgmlType;

use crate::any::AnyTechnique;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServingGrid {
    /// A GGUF block type (`gguf-<type>`).
    Ggml(GgmlType),
    /// A compressed-tensors scheme (`ct-<scheme>`).
    Ct(CtScheme),
}

impl AnyTechnique {
    /// Whether exporting to `target` encodes this technique's input to exactly its forward
    /// weight. A GGUF MXFP4 grid also matches compressed-tensors MXFP4, which uses ggml's
    /// quantizer.
    pub fn exports_exactly_to(&self, target: ServingGrid) -> bool {
        match (self, target) {
            (AnyTechnique::GgmlGrid(g), ServingGrid::Ggml(t)) => g.ty == t,
            (AnyTechnique::GgmlGrid(g), ServingGrid::Ct(CtScheme::Mxfp4)) => {
                g.ty == GgmlType::MXFP4
            }
            (AnyTechnique::CtGrid(g), ServingGrid::Ct(s)) => g.scheme == s,
            _ => false,
        }
    }
}
