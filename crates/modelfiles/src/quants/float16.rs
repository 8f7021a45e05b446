//! F16 (ggml type 1): little-endian IEEE binary16. Encoding rounds to nearest even and overflows
//! to ±inf, like numpy's `astype(float16)` (which is what gguf-py's `quantize` does for F16).

use super::scalar::{f16_at, f16_bytes};
use super::{BlockCodec, BlockQuantizer, GgmlType};

pub(crate) struct F16;

impl BlockCodec for F16 {
    const TYPE: GgmlType = GgmlType::F16;

    #[inline]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f16_at(block, 0);
    }
}

impl BlockQuantizer for F16 {
    #[inline]
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        out.copy_from_slice(&f16_bytes(src[0]));
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    #[test]
    fn hand_values() {
        // 0x3555 is the f16 nearest 1/3; 0x0001 the smallest subnormal; 0x8000 is -0.
        let bytes = [0x55, 0x35, 0x01, 0x00, 0x00, 0x80, 0x00, 0xfc];
        let v = dequantize(GgmlType::F16, &bytes).unwrap();
        assert_eq!(v[0], 0.333_251_95);
        assert_eq!(v[1], 2f32.powi(-24));
        assert_eq!(v[2].to_bits(), 0x8000_0000);
        assert_eq!(v[3], f32::NEG_INFINITY);
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: even mantissa (1.0) wins.
        let q = quantize(GgmlType::F16, &[1.0 + 2f32.powi(-11), 1e6]).unwrap();
        assert_eq!(q, [0x00, 0x3c, 0x00, 0x7c]);
    }
}
