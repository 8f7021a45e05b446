//! Training on a compressed-tensors serving grid (`[qat] method = "ct"`): the forward weight is
//! the weight vLLM/transformers compute with after `nibble export --format ct-<scheme>`,
//! `decode(encode(w))` with nibble-modelfiles' compressed-tensors codec (W4A16 per group of
//! `group_size` inputs, symmetric or asymmetric, or FP8 per channel), row by row. The backward
//! is straight-through, as for [`crate::GgmlGrid`].
//!
//! The codec is the exporter's own function, so exporting the layer's *input* weight reproduces
//! the forward's codes and scales exactly: the served weights are the trained ones, bit for bit
//! in f32 (and the decompressor's bf16 weights are their bf16 rounding).

use burn::prelude::*;
use nibble_modelfiles::ct::{self, CtScheme};
use nibble_ops::LpBackend;

use crate::slots::LayerSlots;
use crate::technique::{SlotSpec, StepInfo, Technique, host_grid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtGrid {
    pub scheme: CtScheme,
}

impl Technique for CtGrid {
    fn name(&self) -> &'static str {
        "ct"
    }

    fn slots(&self, [_, inp]: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if matches!(self.scheme, CtScheme::Nvfp4 | CtScheme::Mxfp4) {
            return Err(format!(
                "a ct grid trains on W4A16 or FP8 (got {}); for MXFP4 use method = \"ggml\" \
                 with ggml_type = \"mxfp4\", which exports to ct-mxfp4 code for code",
                self.scheme.format()
            ));
        }
        self.scheme.check_shape(inp)?;
        Ok(Vec::new())
    }

    fn init<B: LpBackend>(&self, _weight: &Tensor<B, 2>) -> Vec<Tensor<B, 2>> {
        Vec::new()
    }

    fn apply<B: LpBackend>(
        &self,
        w: Tensor<B, 2>,
        _slots: &LayerSlots<B>,
        _at: StepInfo,
    ) -> Tensor<B, 2> {
        host_grid(w, |v, rows, cols| {
            ct::round_trip(self.scheme, rows, cols, v)
        })
    }
}
