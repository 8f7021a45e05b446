//! Q4_K (ggml type 12): `block_q4_K { f16 d; f16 dmin; u8 scales[12]; u8 qs[128]; }`, 256 values
//! in 8 sub-blocks of 32, each with a 6-bit scale `sc` and 6-bit min `m` packed into `scales`
//! (`get_scale_min_k4`). Value = `(d*sc) * q - (dmin*m)`. In each 64-value chunk `c`, the low
//! nibbles of `qs[32c..32c+32]` are values `64c..64c+32`, the high nibbles the next 32.
//! Dequantization only: ggml's Q4_K quantizer is an iterative search with no gguf-py twin.

use super::scalar::f16_at;
use super::{BlockCodec, GgmlType};

pub(crate) struct Q4K;

/// Scale and min of sub-block `j` (ggml `get_scale_min_k4`).
#[inline]
fn scale_min(s: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

impl BlockCodec for Q4K {
    const TYPE: GgmlType = GgmlType::Q4_K;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 0);
        let dmin = f16_at(block, 2);
        let scales = &block[4..16];
        let qs = &block[16..144];
        for (j, sub) in out.chunks_exact_mut(32).enumerate() {
            let (sc, m) = scale_min(scales, j);
            let d1 = d * sc as f32;
            let m1 = dmin * m as f32;
            let bytes = &qs[32 * (j / 2)..32 * (j / 2) + 32];
            let shift = 4 * (j % 2);
            for (o, &b) in sub.iter_mut().zip(bytes) {
                *o = d1 * ((b >> shift) & 0x0f) as f32 - m1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize};

    #[test]
    fn hand_block() {
        // Sub-block scales and mins, packed by hand with the layout of ggml-common.h: bytes 0-3
        // hold sc[0..4] plus the top 2 bits of sc[4..8]; bytes 4-7 likewise for the mins; bytes
        // 8-11 hold the low nibbles of sc[4..8] (low) and m[4..8] (high).
        let sc = [1u8, 2, 3, 4, 17, 33, 49, 63];
        let mn = [0u8, 1, 2, 3, 20, 36, 52, 5];
        let mut s = [0u8; 12];
        for j in 0..4 {
            s[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            s[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
            s[j + 8] = (sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4);
        }
        let mut block = vec![0x00, 0x3c, 0x00, 0x38]; // d = 1, dmin = 0.5
        block.extend(s);
        // q of value i: (i * 5 + 3) % 16.
        let q = |i: usize| ((i * 5 + 3) % 16) as u8;
        for c in 0..4 {
            for l in 0..32 {
                block.push(q(64 * c + l) | (q(64 * c + 32 + l) << 4));
            }
        }
        let v = dequantize(GgmlType::Q4_K, &block).unwrap();
        for (i, &got) in v.iter().enumerate() {
            let j = i / 32;
            let expect = sc[j] as f32 * q(i) as f32 - 0.5 * mn[j] as f32;
            assert_eq!(got, expect, "value {i}");
        }
    }
}
