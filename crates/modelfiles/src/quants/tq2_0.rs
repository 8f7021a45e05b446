//! TQ2_0 (ggml type 35): `block_tq2_0 { u8 qs[64]; f16 d; }` (d last), 256 ternary values
//! `d * (t - 1)` with 2-bit `t`. Element `128h + 32l + m` is `(qs[32h + m] >> 2l) & 3`.
//! Reference quantizer: `d = absmax`, `t = roundf(x / d) + 1`.

use super::scalar::{abs_max, f16_at, f16_bytes, inverse_or_zero, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType, ScaledQuantizer};

pub(crate) struct Tq2_0;

impl BlockCodec for Tq2_0 {
    const TYPE: GgmlType = GgmlType::TQ2_0;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 64);
        for (i, o) in out.iter_mut().enumerate() {
            let (h, l, m) = (i / 128, (i / 32) % 4, i % 32);
            let t = (block[32 * h + m] >> (2 * l)) & 3;
            *o = d * (t as i32 - 1) as f32;
        }
    }
}

impl BlockQuantizer for Tq2_0 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        Self::quantize_block_scaled(src, abs_max(src), out);
    }
}

impl ScaledQuantizer for Tq2_0 {
    fn quantize_block_scaled(src: &[f32], d: f32, out: &mut [u8]) {
        let id = inverse_or_zero(d);
        out[..64].fill(0);
        for (i, &x) in src.iter().enumerate() {
            let t = trunc_to_byte((x * id).round()).wrapping_add(1);
            let (h, l, m) = (i / 128, (i / 32) % 4, i % 32);
            out[32 * h + m] |= t << (2 * l);
        }
        out[64..].copy_from_slice(&f16_bytes(d));
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    /// A hand-picked ternary pattern.
    fn trit(i: usize) -> u8 {
        ((i * 7 + i / 5) % 3) as u8
    }

    #[test]
    fn hand_block() {
        // Byte 0 = 0b10_01_00_10: elements 0, 32, 64, 96 have t = 2, 0, 1, 2.
        let mut block = vec![0u8; 66];
        block[0] = 0b10_01_00_10;
        block[33] = 0b00_00_00_01; // element 128 + 1 has t = 1 (value 0)
        block[64..].copy_from_slice(&[0x00, 0x3c]); // d = 1
        let v = dequantize(GgmlType::TQ2_0, &block).unwrap();
        assert_eq!((v[0], v[32], v[64], v[96]), (1.0, -1.0, 0.0, 1.0));
        assert_eq!(v[129], 0.0);
        assert_eq!(v[1], -1.0); // t = 0
    }

    #[test]
    fn ternary_block_round_trips() {
        // Values d * (t - 1) with d = 0.5 quantize to exactly the t codes, d last.
        let src: Vec<f32> = (0..256).map(|i| 0.5 * (trit(i) as f32 - 1.0)).collect();
        let q = quantize(GgmlType::TQ2_0, &src).unwrap();
        assert_eq!(q.len(), 66);
        assert_eq!(&q[64..], &[0x00, 0x38]);
        for i in 0..256 {
            let (h, l, m) = (i / 128, (i / 32) % 4, i % 32);
            assert_eq!((q[32 * h + m] >> (2 * l)) & 3, trit(i), "element {i}");
        }
        assert_eq!(dequantize(GgmlType::TQ2_0, &q).unwrap(), src);
    }
}
