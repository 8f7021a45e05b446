//! Training on a GGUF serving grid: the forward weight is `dequantize(quantize(w))` with ggml's
//! reference quantizer for one block type (Q8_0, Q4_0, TQ2_0, MXFP4), computed by
//! nibble-modelfiles' quantizers (bit-identical to gguf-py / ggml `quantize_row_*_ref`), block by
//! block along each row. The backward is straight-through: the gradient of the loss w.r.t. `w` is
//! the gradient w.r.t. the fake-quantized weight, unchanged (no clipping: every ggml block scale
//! comes from the block's own max, so nothing is out of range).
//!
//! The quantizer is the same function `nibble export --format gguf-<type>` applies, so exporting
//! the layer's *input* weight (the master weight, or the weight the techniques before this one
//! leave) reproduces the forward's codes and scales exactly: llama.cpp then computes with exactly
//! the weight that was trained. Exporting the fake-quantized weight instead would not: ggml's
//! quantizers are not idempotent (Q4_0's `d = max/−8` from the signed max maps a block whose max
//! is `7·d` to another scale).
//!
//! The round trip runs on the host (read the weight, quantize and dequantize, upload): no
//! parameters, no buffers, nothing to checkpoint.

use burn::prelude::*;
use nibble_modelfiles::quants::{self, GgmlType};
use nibble_ops::LpBackend;

use crate::slots::LayerSlots;
use crate::technique::{SlotSpec, StepInfo, Technique, host_grid};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgmlGrid {
    pub ty: GgmlType,
}

impl GgmlGrid {
    /// The ggml types a grid can train on: block types with a reference quantizer.
    pub const TYPES: [GgmlType; 4] = [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::TQ2_0,
        GgmlType::MXFP4,
    ];

    /// `dequantize(quantize(w))` of a row-major `[rows, cols]` buffer (cols a multiple of the
    /// block size, so blocks never straddle rows and the whole buffer is quantized at once).
    pub fn round_trip(&self, w: &[f32]) -> Vec<f32> {
        let bytes = quants::quantize(self.ty, w).expect("block multiple checked by slots()");
        quants::dequantize(self.ty, &bytes).expect("same type")
    }
}

impl Technique for GgmlGrid {
    fn name(&self) -> &'static str {
        "ggml"
    }

    fn slots(&self, [_, inp]: [usize; 2]) -> Result<Vec<SlotSpec>, String> {
        if !Self::TYPES.contains(&self.ty) {
            return Err(format!(
                "a ggml grid needs one of {} (got {})",
                Self::TYPES.map(|t| t.name()).join(", "),
                self.ty
            ));
        }
        let block = self.ty.block_size();
        if inp % block != 0 {
            return Err(format!(
                "{} quantizes blocks of {block} inputs: the input dimension {inp} is not a \
                 multiple of the block size {block}",
                self.ty
            ));
        }
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
        host_grid(w, |v, _, _| self.round_trip(v))
    }
}
