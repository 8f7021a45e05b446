//! ggml tensor element types: block layouts, dequantization and reference quantizers.
//!
//! Each block format lives in its own file behind [`BlockCodec`] (and [`BlockQuantizer`] where a
//! reference quantizer exists). Dequantization reproduces ggml's `dequantize_row_*` (and gguf-py's
//! `gguf.quants.dequantize`) bit for bit, including the order of the f32 operations. Quantizers
//! reproduce gguf-py's `gguf.quants.quantize`, which mirrors ggml's `quantize_row_*_ref`.

mod bfloat16;
mod float16;
mod float32;
mod ggml_type;
mod mxfp4;
mod q4_0;
mod q4_1;
mod q4_k;
mod q6_k;
mod q8_0;
mod scalar;
mod tq1_0;
mod tq2_0;

pub use ggml_type::GgmlType;

use crate::error::{GgufErrorKind, Result};

/// One ggml block format: `TYPE.type_size()` bytes encode `TYPE.block_size()` values.
pub(crate) trait BlockCodec {
    const TYPE: GgmlType;
    /// Decodes one block; `block` and `out` have exactly the block's byte and element counts.
    fn dequantize_block(block: &[u8], out: &mut [f32]);
}

/// A block format with a reference quantizer.
pub(crate) trait BlockQuantizer: BlockCodec {
    /// Encodes one block; `src` and `out` have exactly the block's element and byte counts.
    fn quantize_block(src: &[f32], out: &mut [u8]);
}

/// A block format whose reference quantizer derives a scale `d` per block and then encodes the
/// codes against it: this encodes against a given `d` instead (a trained grid's step, which
/// the reference rule would not recover from the block's values).
pub(crate) trait ScaledQuantizer: BlockCodec {
    fn quantize_block_scaled(src: &[f32], d: f32, out: &mut [u8]);
}

fn quantize_scaled_with<C: ScaledQuantizer>(src: &[f32], scales: &[f32], out: &mut [u8]) {
    let blocks = src.chunks_exact(C::TYPE.block_size());
    let dsts = out.chunks_exact_mut(C::TYPE.type_size());
    for ((block, dst), &d) in blocks.zip(dsts).zip(scales) {
        C::quantize_block_scaled(block, d, dst);
    }
}

/// The types [`quantize_with_scales`] encodes: a scale and integer codes per block.
pub const SCALED_TYPES: [GgmlType; 4] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
];

/// Encodes `src` (whole blocks of `ty`) with block `b`'s scale `scales[b]` (stored as f16) and
/// the codes the reference computes against it. Lossless for values `code·scales[b]` with an
/// f16 scale and codes in the type's range (the caller checks by decoding).
pub fn quantize_with_scales(ty: GgmlType, src: &[f32], scales: &[f32]) -> Result<Vec<u8>> {
    let blocks = element_count_blocks(ty, src.len())?;
    if scales.len() != blocks {
        return Err(GgufErrorKind::LengthMismatch {
            what: "block scales",
            expected: blocks as u64,
            got: scales.len() as u64,
        }
        .into());
    }
    let mut out = vec![0u8; blocks * ty.type_size()];
    match ty {
        GgmlType::Q8_0 => quantize_scaled_with::<q8_0::Q8_0>(src, scales, &mut out),
        GgmlType::Q4_0 => quantize_scaled_with::<q4_0::Q4_0>(src, scales, &mut out),
        GgmlType::TQ1_0 => quantize_scaled_with::<tq1_0::Tq1_0>(src, scales, &mut out),
        GgmlType::TQ2_0 => quantize_scaled_with::<tq2_0::Tq2_0>(src, scales, &mut out),
        _ => {
            return Err(GgufErrorKind::UnsupportedType {
                ty,
                op: "quantized with given scales",
            }
            .into());
        }
    }
    Ok(out)
}

/// Blocks in `n` values of `ty` (whole blocks only).
fn element_count_blocks(ty: GgmlType, n: usize) -> Result<usize> {
    if !n.is_multiple_of(ty.block_size()) {
        return Err(GgufErrorKind::NotBlockMultiple {
            what: "element count",
            ty,
            count: n as u64,
            block: ty.block_size() as u64,
        }
        .into());
    }
    Ok(n / ty.block_size())
}

fn dequantize_with<C: BlockCodec>(bytes: &[u8], out: &mut [f32]) {
    let blocks = bytes.chunks_exact(C::TYPE.type_size());
    for (block, dst) in blocks.zip(out.chunks_exact_mut(C::TYPE.block_size())) {
        C::dequantize_block(block, dst);
    }
}

fn quantize_with<C: BlockQuantizer>(src: &[f32], out: &mut [u8]) {
    let blocks = src.chunks_exact(C::TYPE.block_size());
    for (block, dst) in blocks.zip(out.chunks_exact_mut(C::TYPE.type_size())) {
        C::quantize_block(block, dst);
    }
}

/// Number of values that `n_bytes` bytes of `ty` encode; errors unless whole blocks.
pub fn element_count(ty: GgmlType, n_bytes: usize) -> Result<usize> {
    if !n_bytes.is_multiple_of(ty.type_size()) {
        return Err(GgufErrorKind::NotBlockMultiple {
            what: "byte count",
            ty,
            count: n_bytes as u64,
            block: ty.type_size() as u64,
        }
        .into());
    }
    Ok(n_bytes / ty.type_size() * ty.block_size())
}

/// Decodes whole blocks of `ty` into `out`, whose length must be the matching element count.
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<()> {
    let n = element_count(ty, bytes.len())?;
    if out.len() != n {
        return Err(GgufErrorKind::LengthMismatch {
            what: "dequantize output length",
            expected: n as u64,
            got: out.len() as u64,
        }
        .into());
    }
    match ty {
        GgmlType::F32 => dequantize_with::<float32::F32>(bytes, out),
        GgmlType::F16 => dequantize_with::<float16::F16>(bytes, out),
        GgmlType::BF16 => dequantize_with::<bfloat16::Bf16>(bytes, out),
        GgmlType::Q8_0 => dequantize_with::<q8_0::Q8_0>(bytes, out),
        GgmlType::Q4_0 => dequantize_with::<q4_0::Q4_0>(bytes, out),
        GgmlType::Q4_1 => dequantize_with::<q4_1::Q4_1>(bytes, out),
        GgmlType::MXFP4 => dequantize_with::<mxfp4::Mxfp4>(bytes, out),
        GgmlType::TQ1_0 => dequantize_with::<tq1_0::Tq1_0>(bytes, out),
        GgmlType::TQ2_0 => dequantize_with::<tq2_0::Tq2_0>(bytes, out),
        GgmlType::Q4_K => dequantize_with::<q4_k::Q4K>(bytes, out),
        GgmlType::Q6_K => dequantize_with::<q6_k::Q6K>(bytes, out),
        _ => {
            return Err(GgufErrorKind::UnsupportedType {
                ty,
                op: "dequantized",
            }
            .into());
        }
    }
    Ok(())
}

/// Decodes whole blocks of `ty` into a new vector.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Result<Vec<f32>> {
    if !ty.can_dequantize() {
        return Err(GgufErrorKind::UnsupportedType {
            ty,
            op: "dequantized",
        }
        .into());
    }
    let mut out = vec![0.0; element_count(ty, bytes.len())?];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

/// Encodes `src` (a multiple of the block size) with ggml's reference quantizer for `ty`.
pub fn quantize(ty: GgmlType, src: &[f32]) -> Result<Vec<u8>> {
    if !ty.can_quantize() {
        return Err(GgufErrorKind::UnsupportedType {
            ty,
            op: "quantized",
        }
        .into());
    }
    if !src.len().is_multiple_of(ty.block_size()) {
        return Err(GgufErrorKind::NotBlockMultiple {
            what: "element count",
            ty,
            count: src.len() as u64,
            block: ty.block_size() as u64,
        }
        .into());
    }
    let mut out = vec![0u8; src.len() / ty.block_size() * ty.type_size()];
    match ty {
        GgmlType::F32 => quantize_with::<float32::F32>(src, &mut out),
        GgmlType::F16 => quantize_with::<float16::F16>(src, &mut out),
        GgmlType::BF16 => quantize_with::<bfloat16::Bf16>(src, &mut out),
        GgmlType::Q8_0 => quantize_with::<q8_0::Q8_0>(src, &mut out),
        GgmlType::Q4_0 => quantize_with::<q4_0::Q4_0>(src, &mut out),
        GgmlType::Q4_1 => quantize_with::<q4_1::Q4_1>(src, &mut out),
        GgmlType::MXFP4 => quantize_with::<mxfp4::Mxfp4>(src, &mut out),
        GgmlType::TQ1_0 => quantize_with::<tq1_0::Tq1_0>(src, &mut out),
        GgmlType::TQ2_0 => quantize_with::<tq2_0::Tq2_0>(src, &mut out),
        _ => unreachable!("can_quantize() lists exactly the types matched above"),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_lists_match_dispatch() {
        for &ty in GgmlType::ALL {
            let bytes = vec![0u8; ty.type_size()];
            assert_eq!(dequantize(ty, &bytes).is_ok(), ty.can_dequantize(), "{ty}");
            let src = vec![0.0f32; ty.block_size()];
            assert_eq!(quantize(ty, &src).is_ok(), ty.can_quantize(), "{ty}");
        }
    }

    #[test]
    fn partial_blocks_are_errors() {
        assert!(dequantize(GgmlType::Q4_0, &[0u8; 17]).is_err());
        assert!(quantize(GgmlType::Q8_0, &[0.0; 33]).is_err());
        let mut out = [0.0f32; 31];
        assert!(dequantize_into(GgmlType::Q4_0, &[0u8; 18], &mut out).is_err());
    }
}
