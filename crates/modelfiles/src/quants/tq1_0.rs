//! TQ1_0 (ggml type 34): `block_tq1_0 { u8 qs[48]; u8 qh[4]; f16 d; }` (d last), 256 ternary
//! values `d * (t - 1)` packed base 3 as "fixed point" bytes: a byte holding trits
//! `t0..t4` (t0 most significant) is `ceil(v * 256 / 243)` with `v = Σ t_n 3^(4-n)`, and trit `n`
//! decodes as `((u8)(byte * 3^n) * 3) >> 8`.
//!
//! Element map: element `32n + m` is trit `n` of `qs[m]` (m < 32, elements 0..160);
//! element `160 + 16n + m` is trit `n` of `qs[32 + m]` (m < 16, elements 160..240);
//! element `240 + 4n + j` is trit `n` of `qh[j]` (4 trits, the 5th is 0).
//! Reference quantizer: `d = absmax`, `t = roundf(x / d) + 1`.

use super::scalar::{abs_max, f16_at, f16_bytes, inverse_or_zero, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType, ScaledQuantizer};

pub(crate) struct Tq1_0;

const POW3: [u8; 5] = [1, 3, 9, 27, 81];

/// Trit `n` (0 = most significant) of a packed byte.
#[inline]
fn trit(byte: u8, n: usize) -> u8 {
    ((byte.wrapping_mul(POW3[n]) as u16 * 3) >> 8) as u8
}

/// Packs trits `t[0..]` (first most significant; missing ones are 0) into one byte.
#[inline]
fn pack(trits: impl Iterator<Item = u8>) -> u8 {
    let v = trits
        .zip([81u16, 27, 9, 3, 1])
        .map(|(t, p)| t as u16 * p)
        .sum::<u16>();
    (v * 256).div_ceil(243) as u8
}

impl BlockCodec for Tq1_0 {
    const TYPE: GgmlType = GgmlType::TQ1_0;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = f16_at(block, 52);
        let mut put = |i: usize, t: u8| out[i] = d * (t as i32 - 1) as f32;
        for n in 0..5 {
            for (m, &b) in block[..32].iter().enumerate() {
                put(32 * n + m, trit(b, n));
            }
            for (m, &b) in block[32..48].iter().enumerate() {
                put(160 + 16 * n + m, trit(b, n));
            }
        }
        for n in 0..4 {
            for (j, &b) in block[48..52].iter().enumerate() {
                put(240 + 4 * n + j, trit(b, n));
            }
        }
    }
}

impl BlockQuantizer for Tq1_0 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        Self::quantize_block_scaled(src, abs_max(src), out);
    }
}

impl ScaledQuantizer for Tq1_0 {
    fn quantize_block_scaled(src: &[f32], d: f32, out: &mut [u8]) {
        let id = inverse_or_zero(d);
        let t = |i: usize| trunc_to_byte((src[i] * id).round()).wrapping_add(1);
        for (m, o) in out[..32].iter_mut().enumerate() {
            *o = pack((0..5).map(|n| t(32 * n + m)));
        }
        for (m, o) in out[32..48].iter_mut().enumerate() {
            *o = pack((0..5).map(|n| t(160 + 16 * n + m)));
        }
        for (j, o) in out[48..52].iter_mut().enumerate() {
            *o = pack((0..4).map(|n| t(240 + 4 * n + j)));
        }
        out[52..].copy_from_slice(&f16_bytes(d));
    }
}

#[cfg(test)]
mod tests {
    use crate::quants::{GgmlType, dequantize, quantize};

    fn trit(i: usize) -> u8 {
        ((i * 7 + i / 5) % 3) as u8
    }

    #[test]
    fn hand_bytes() {
        // Trits (2, 0, 1, 2, 1) → v = 162 + 0 + 9 + 6 + 1 = 178 → ceil(178 * 256 / 243) = 188.
        // Trits (1, 2, 0, 2) + implicit 0 → v = 81 + 54 + 0 + 6 = 141 → ceil(141 * 256 / 243) = 149.
        let mut block = vec![0u8; 54];
        block[0] = 188;
        block[48] = 149;
        block[52..].copy_from_slice(&[0x00, 0x40]); // d = 2
        let v = dequantize(GgmlType::TQ1_0, &block).unwrap();
        let at = |idx: [usize; 5]| idx.map(|i| v[i]);
        assert_eq!(at([0, 32, 64, 96, 128]), [2.0, -2.0, 0.0, 2.0, 0.0]);
        assert_eq!([v[240], v[244], v[248], v[252]], [0.0, 2.0, -2.0, 2.0]);
        // A zero byte decodes as all t = 0, i.e. -d.
        assert_eq!((v[1], v[160], v[241]), (-2.0, -2.0, -2.0));
    }

    #[test]
    fn ternary_block_round_trips() {
        let src: Vec<f32> = (0..256).map(|i| 0.5 * (trit(i) as f32 - 1.0)).collect();
        let q = quantize(GgmlType::TQ1_0, &src).unwrap();
        assert_eq!(q.len(), 54);
        assert_eq!(&q[52..], &[0x00, 0x38]);
        assert_eq!(dequantize(GgmlType::TQ1_0, &q).unwrap(), src);
        // Byte 32 holds elements 160, 176, 192, 208, 224, most significant first.
        let v: u32 = [160, 176, 192, 208, 224]
            .iter()
            .zip([81, 27, 9, 3, 1])
            .map(|(&i, p)| trit(i) as u32 * p)
            .sum();
        assert_eq!(q[32] as u32, (v * 256).div_ceil(243));
    }
}
