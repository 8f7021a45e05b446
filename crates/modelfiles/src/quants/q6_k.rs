//! Q6_K (ggml type 14): `block_q6_K { u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d; }`, 256
//! 6-bit values `q - 32`, value = `(d*scale[i/16]) * (q - 32)`. For 128-value half `h`:
//! value `128h + 64s + j` (j < 64) takes its low 4 bits from `ql[64h + j] >> 4s`, and value
//! `128h + 32k + m` (m < 32) its top 2 bits from `qh[32h + m] >> 2k`. Dequantization only.

use super::scalar::f16_at;
use super::{BlockCodec, GgmlType};

pub(crate) struct Q6K;

impl BlockCodec for Q6K {
    const TYPE: GgmlType = GgmlType::Q6_K;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let (ql, rest) = block.split_at(128);
        let (qh, rest) = rest.split_at(64);
        let (scales, d) = rest.split_at(16);
        let d = f16_at(d, 0);
        for (i, o) in out.iter_mut().enumerate() {
            let h = i / 128;
            let r = i % 128;
            let low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0f;
            let high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
            let q = (low | (high << 4)) as i32 - 32;
            *o = (d * scales[i / 16] as i8 as f32) * q as f32;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize};

    #[test]
    fn hand_block() {
        // Pack 6-bit codes with the loop of ggml's dequantize_row_q6_K (four values per l).
        let code = |i: usize| ((i * 37 + 11) % 64) as u8;
        let mut ql = [0u8; 128];
        let mut qh = [0u8; 64];
        for n in 0..2 {
            for l in 0..32 {
                let [c1, c2, c3, c4] = [0, 32, 64, 96].map(|o| code(128 * n + l + o));
                ql[64 * n + l] = (c1 & 15) | ((c3 & 15) << 4);
                ql[64 * n + l + 32] = (c2 & 15) | ((c4 & 15) << 4);
                qh[32 * n + l] = (c1 >> 4) | ((c2 >> 4) << 2) | ((c3 >> 4) << 4) | ((c4 >> 4) << 6);
            }
        }
        let scales: [i8; 16] = [
            1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 127, -128,
        ];
        let mut block = ql.to_vec();
        block.extend(qh);
        block.extend(scales.map(|s| s as u8));
        block.extend([0x00, 0x38]); // d = 0.5
        let v = dequantize(GgmlType::Q6_K, &block).unwrap();
        for i in 0..256 {
            let expect = 0.5 * scales[i / 16] as f32 * (code(i) as f32 - 32.0);
            assert_eq!(v[i], expect, "value {i}");
        }
    }
}
