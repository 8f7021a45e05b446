//! Q4_1 (ggml type 3): `block_q4_1 { f16 d; f16 m; u8 qs[16]; }`, value = `d * nibble + m`,
//! nibble order as in Q4_0. Reference quantizer: `d = (max - min) / 15`, `m = min`,
//! nibble = `min(15, trunc((x - min)/d + 0.5))`.

use super::scalar::{f16_at, f16_bytes, inverse_or_zero, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType};

pub(crate) struct Q4_1;

impl BlockCodec for Q4_1 {
    const TYPE: GgmlType = GgmlType::Q4_1;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 0);
        let m = f16_at(block, 2);
        let (lo, hi) = out.split_at_mut(16);
        for (j, &b) in block[4..20].iter().enumerate() {
            lo[j] = d * (b & 0x0f) as f32 + m;
            hi[j] = d * (b >> 4) as f32 + m;
        }
    }
}

impl BlockQuantizer for Q4_1 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        // ggml's C scan. When the extreme is a zero present with both signs, numpy's SIMD
        // min/max (gguf-py) may pick the other zero, so d or m can differ from gguf-py in the
        // sign of a zero (numerically the same block).
        let mut min = f32::MAX;
        let mut max = -f32::MAX;
        for &v in src {
            min = if v < min { v } else { min };
            max = if v > max { v } else { max };
        }
        let d = (max - min) / 15.0;
        let id = inverse_or_zero(d);
        out[..2].copy_from_slice(&f16_bytes(d));
        out[2..4].copy_from_slice(&f16_bytes(min));
        let code = |x: f32| trunc_to_byte(((x - min) * id + 0.5).trunc()).min(15);
        for j in 0..16 {
            out[4 + j] = code(src[j]) | (code(src[16 + j]) << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    #[test]
    fn hand_block() {
        // d = 0.5 (0x3800), m = -1 (0xbc00); qs[j] = nibble j low, 15 - j high.
        let mut block = vec![0x00, 0x38, 0x00, 0xbc];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_1, &block).unwrap();
        for j in 0..16 {
            assert_eq!(v[j], 0.5 * j as f32 - 1.0);
            assert_eq!(v[16 + j], 0.5 * (15 - j) as f32 - 1.0);
        }
    }

    #[test]
    fn quantize_hand_block() {
        // Values -1, -0.5, ..., 6.5 (min -1, max 6.5): d = 0.5 and nibble j for value j.
        let src: Vec<f32> = (0..32).map(|j| (j % 16) as f32 * 0.5 - 1.0).collect();
        let q = quantize(GgmlType::Q4_1, &src).unwrap();
        assert_eq!(&q[..4], &[0x00, 0x38, 0x00, 0xbc]);
        for j in 0..16u8 {
            assert_eq!(q[4 + j as usize], j | (j << 4));
        }
    }
}
