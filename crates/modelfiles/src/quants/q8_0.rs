//! Q8_0 (ggml type 8): `block_q8_0 { f16 d; int8 qs[32]; }`, value = `d * q`.
//! Reference quantizer: `d = absmax / 127`, `q = roundf(x / d)` (ties away from zero), with `x/d`
//! computed as `x * (1/d)` from the unrounded f32 `d`.

use super::scalar::{abs_max, f16_at, f16_bytes, inverse_or_zero, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType, ScaledQuantizer};

pub(crate) struct Q8_0;

impl BlockCodec for Q8_0 {
    const TYPE: GgmlType = GgmlType::Q8_0;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 0);
        for (o, &q) in out.iter_mut().zip(&block[2..34]) {
            *o = (q as i8) as f32 * d;
        }
    }
}

impl BlockQuantizer for Q8_0 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        Self::quantize_block_scaled(src, abs_max(src) / 127.0, out);
    }
}

impl ScaledQuantizer for Q8_0 {
    fn quantize_block_scaled(src: &[f32], d: f32, out: &mut [u8]) {
        let id = inverse_or_zero(d);
        out[..2].copy_from_slice(&f16_bytes(d));
        for (o, &x) in out[2..].iter_mut().zip(src) {
            *o = trunc_to_byte((x * id).round());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    #[test]
    fn hand_block() {
        // d = 0.25 (f16 0x3400), q = -128, -1, 0, 1, 127, then 27 × 5.
        let mut block = vec![0x00, 0x34, 0x80, 0xff, 0x00, 0x01, 0x7f];
        block.resize(34, 5);
        let v = dequantize(GgmlType::Q8_0, &block).unwrap();
        assert_eq!(&v[..5], &[-32.0, -0.25, 0.0, 0.25, 31.75]);
        assert!(v[5..].iter().all(|&x| x == 1.25));
    }

    #[test]
    fn quantize_exact_integers() {
        // absmax 127 gives d = 1, so every integer input is its own code.
        let src: Vec<f32> = (0..32)
            .map(|j| if j == 0 { -127.0 } else { (j * 7 - 100) as f32 })
            .collect();
        let q = quantize(GgmlType::Q8_0, &src).unwrap();
        assert_eq!(&q[..2], &[0x00, 0x3c]);
        for j in 0..32 {
            assert_eq!(q[2 + j] as i8 as f32, src[j]);
        }
        // All-zero block: d = 0 and all codes 0.
        assert_eq!(quantize(GgmlType::Q8_0, &[0.0; 32]).unwrap(), vec![0u8; 34]);
        // Half-way codes round away from zero: absmax 127 → d = 1; 2.5 → 3, -2.5 → -3.
        let mut src = [0.0f32; 32];
        src[0] = 127.0;
        src[1] = 2.5;
        src[2] = -2.5;
        let q = quantize(GgmlType::Q8_0, &src).unwrap();
        assert_eq!((q[3] as i8, q[4] as i8), (3, -3));
    }
}
