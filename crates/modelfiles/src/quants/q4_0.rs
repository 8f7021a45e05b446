//! Q4_0 (ggml type 2): `block_q4_0 { f16 d; u8 qs[16]; }`, value = `d * (nibble - 8)`.
//! Element `j < 16` is the low nibble of `qs[j]`, element `j + 16` the high nibble (not pairs).
//! Reference quantizer (gguf-py): `d = m / -8` where `m` is the first value of largest
//! magnitude (sign kept), nibble = `min(15, trunc(x/d + 8.5))`.

use super::scalar::{f16_at, f16_bytes, inverse_or_zero, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType, ScaledQuantizer};

pub(crate) struct Q4_0;

impl BlockCodec for Q4_0 {
    const TYPE: GgmlType = GgmlType::Q4_0;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 0);
        let (lo, hi) = out.split_at_mut(16);
        for (j, &b) in block[2..18].iter().enumerate() {
            lo[j] = d * ((b & 0x0f) as i32 - 8) as f32;
            hi[j] = d * ((b >> 4) as i32 - 8) as f32;
        }
    }
}

impl BlockQuantizer for Q4_0 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        // The first element of largest magnitude (numpy `argmax`). ggml's C loop starts from
        // `max = 0.0f` instead; the two differ only for all-zero blocks, in the sign of d = ±0.
        let mut imax = 0;
        for (j, v) in src.iter().enumerate() {
            if v.abs() > src[imax].abs() {
                imax = j;
            }
        }
        Self::quantize_block_scaled(src, src[imax] / -8.0, out);
    }
}

impl ScaledQuantizer for Q4_0 {
    fn quantize_block_scaled(src: &[f32], d: f32, out: &mut [u8]) {
        let id = inverse_or_zero(d);
        out[..2].copy_from_slice(&f16_bytes(d));
        let code = |x: f32| trunc_to_byte((x * id + 8.5).trunc()).min(15);
        for j in 0..16 {
            out[2 + j] = code(src[j]) | (code(src[16 + j]) << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    #[test]
    fn hand_block() {
        // d = 0.5 (f16 0x3800); qs[j] holds nibble j low and 15 - j high.
        let mut block = vec![0x00, 0x38];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_0, &block).unwrap();
        let expect: Vec<f32> = (0..16)
            .map(|j| 0.5 * (j as f32 - 8.0))
            .chain((0..16).map(|j| 0.5 * (7.0 - j as f32)))
            .collect();
        assert_eq!(v, expect);
        assert_eq!(v[0], -4.0);
        assert_eq!(v[16], 3.5);
    }

    #[test]
    fn quantize_hand_block() {
        // x_j = j - 16: the first largest magnitude is -16, so d = 2 and x/d + 8.5 = j/2 + 0.5.
        let src: Vec<f32> = (0..32).map(|j| j as f32 - 16.0).collect();
        let q = quantize(GgmlType::Q4_0, &src).unwrap();
        assert_eq!(&q[..2], &[0x00, 0x40]); // f16 2.0
        let nib = |j: usize| j.div_ceil(2).min(15) as u8;
        for j in 0..16 {
            assert_eq!(q[2 + j], nib(j) | (nib(j + 16) << 4), "byte {j}");
        }
        // Ties in magnitude: the first one fixes the sign of d (here +3 → d = -0.375).
        let mut src = [0.0f32; 32];
        src[3] = 3.0;
        src[9] = -3.0;
        let q = quantize(GgmlType::Q4_0, &src).unwrap();
        assert_eq!(half::f16::from_le_bytes([q[0], q[1]]).to_f32(), -0.375);
        assert_eq!(q[2 + 3] & 0x0f, 0); // 3 / -0.375 + 8.5 = 0.5 → 0
        assert_eq!(q[2 + 9] & 0x0f, 15); // -3 / -0.375 + 8.5 = 16.5 → 16 → clamped to 15
    }
}
