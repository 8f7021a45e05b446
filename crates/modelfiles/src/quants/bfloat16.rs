//! BF16 (ggml type 30): the top half of an f32. Encoding follows ggml's
//! `ggml_compute_fp32_to_bf16`: NaN is forced quiet (not rounded into inf), everything else
//! rounds to nearest even on the dropped 16 bits.

use super::{BlockCodec, BlockQuantizer, GgmlType};

pub(crate) struct Bf16;

/// ggml's f32 → bf16 bit conversion.
#[inline]
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    if bits & 0x7fff_ffff > 0x7f80_0000 {
        return ((bits >> 16) | 64) as u16;
    }
    ((bits as u64 + 0x7fff + ((bits as u64 >> 16) & 1)) >> 16) as u16
}

impl BlockCodec for Bf16 {
    const TYPE: GgmlType = GgmlType::BF16;

    #[inline]
    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        out[0] = f32::from_bits((u16::from_le_bytes([block[0], block[1]]) as u32) << 16);
    }
}

impl BlockQuantizer for Bf16 {
    #[inline]
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        out.copy_from_slice(&bf16_bits(src[0]).to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::bf16_bits;
    use crate::quants::{GgmlType, dequantize};

    #[test]
    fn hand_values() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 is exactly between bf16 1.0 (even) and 1 + 2^-7: ties to even.
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8000)), 0x3f80);
        // 0x3f818000 is the tie between 0x3f81 (odd) and 0x3f82: rounds up to even.
        assert_eq!(bf16_bits(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(bf16_bits(f32::from_bits(0x3f80_8001)), 0x3f81);
        // The largest finite f32 rounds up to +inf; a signalling NaN becomes a quiet NaN.
        assert_eq!(bf16_bits(f32::MAX), 0x7f80);
        assert_eq!(bf16_bits(f32::from_bits(0x7f80_0001)), 0x7fc0);
        assert_eq!(bf16_bits(-0.0), 0x8000);
        let v = dequantize(GgmlType::BF16, &[0x80, 0x3f, 0x49, 0xc0]).unwrap();
        assert_eq!(v, [1.0, f32::from_bits(0xc049_0000)]);
    }
}
