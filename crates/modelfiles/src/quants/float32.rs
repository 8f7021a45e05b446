//! F32 (ggml type 0): plain little-endian IEEE binary32, one value per "block".

use super::{BlockCodec, BlockQuantizer, GgmlType};

pub(crate) struct F32;

impl BlockCodec for F32 {
    const TYPE: GgmlType = GgmlType::F32;

    #[inline]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f32::from_le_bytes([block[0], block[1], block[2], block[3]]);
    }
}

impl BlockQuantizer for F32 {
    #[inline]
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        out.copy_from_slice(&src[0].to_le_bytes());
    }
}
