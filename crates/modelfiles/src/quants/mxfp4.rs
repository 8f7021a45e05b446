//! MXFP4 (ggml type 39): `block_mxfp4 { u8 e; u8 qs[16]; }`, 32 E2M1 values sharing one E8M0
//! exponent. Element `j < 16` is the low nibble of `qs[j]`, element `j + 16` the high nibble.
//!
//! ggml's convention (`GGML_E8M0_TO_FP32_HALF`, `kvalues_mxfp4`): the E2M1 codes are stored as
//! *doubled* integers {0, 1, 2, 3, 4, 6, 8, 12} and multiplied by half the block scale,
//! `2^(e-128)`, built straight from bits. So value = `e2m1 * 2^(e-127)` for every `e`: 0 and 1
//! give the subnormals 2^-128 and 2^-127, and 255 is the ordinary 2^127, *not* the OCP NaN.
//!
//! Reference quantizer (gguf-py): `e = floor(log2(absmax)) - 2 + 127` (0 for an all-zero block),
//! then each value takes the first code minimising `|half_scale * k - x|`.

use super::scalar::{abs_max, trunc_to_byte};
use super::{BlockCodec, BlockQuantizer, GgmlType};

pub(crate) struct Mxfp4;

/// E2M1 code → doubled value (ggml `kvalues_mxfp4`): sign bit 3, then 0, 0.5, 1, 1.5, 2, 3, 4, 6.
const KVALUES: [i8; 16] = [0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12];

/// Half of the E8M0 scale `2^(e-127)`, exactly as ggml builds it from bits.
#[inline]
pub(crate) fn e8m0_half(e: u8) -> f32 {
    let bits = if e < 2 {
        0x0020_0000u32 << e
    } else {
        (e as u32 - 1) << 23
    };
    f32::from_bits(bits)
}

impl BlockCodec for Mxfp4 {
    const TYPE: GgmlType = GgmlType::MXFP4;

    fn dequantize_block(block: &[u8], out: &mut [f32]) {
        let d = e8m0_half(block[0]);
        let (lo, hi) = out.split_at_mut(16);
        for (j, &b) in block[1..17].iter().enumerate() {
            lo[j] = d * KVALUES[(b & 0x0f) as usize] as f32;
            hi[j] = d * KVALUES[(b >> 4) as usize] as f32;
        }
    }
}

/// The first code whose value is nearest `x` (numpy `argmin`: a NaN error wins at once).
fn best_code(x: f32, d: f32) -> u8 {
    let mut best = 0u8;
    let mut best_err = f32::INFINITY;
    for (k, &kv) in KVALUES.iter().enumerate() {
        let err = (d * kv as f32 - x).abs();
        if err.is_nan() {
            return k as u8;
        }
        if k == 0 || err < best_err {
            best = k as u8;
            best_err = err;
        }
    }
    best
}

impl BlockQuantizer for Mxfp4 {
    fn quantize_block(src: &[f32], out: &mut [u8]) {
        let amax = abs_max(src);
        let e = if amax > 0.0 {
            trunc_to_byte(amax.log2().floor() - 2.0 + 127.0)
        } else {
            0
        };
        let d = e8m0_half(e);
        out[0] = e;
        for j in 0..16 {
            out[1 + j] = best_code(src[j], d) | (best_code(src[16 + j], d) << 4);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::e8m0_half;
    use crate::quants::{GgmlType, dequantize, quantize};

    /// OCP MX v1.0 E2M1 values by code (sign bit 3).
    const E2M1: [f32; 16] = [
        0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
    ];

    #[test]
    fn e8m0_half_scale_convention() {
        assert_eq!(e8m0_half(127), 0.5);
        assert_eq!(e8m0_half(128), 1.0);
        assert_eq!(e8m0_half(0), 2f32.powi(-128)); // subnormal, from bits 0x00200000
        assert_eq!(e8m0_half(1), 2f32.powi(-127));
        assert_eq!(e8m0_half(2), 2f32.powi(-126)); // smallest normal
        assert_eq!(e8m0_half(255), 2f32.powi(127)); // not NaN
    }

    #[test]
    fn hand_block_e2m1_table() {
        // e = 127 (scale 1): element j is code j, element j + 16 is code 15 - j.
        let mut block = vec![127u8];
        block.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::MXFP4, &block).unwrap();
        for j in 0..16 {
            assert_eq!(v[j], E2M1[j], "code {j}");
            assert_eq!(v[16 + j], E2M1[15 - j]);
        }
        // ggml's integer kvalues have no -0: code 8 decodes to +0.
        assert_eq!(v[8].to_bits(), 0);
        // e = 0: code 2 (1.0) is 2^-127; e = 255: code 1 (0.5) is 0.5 * 2^128 = 2^127 (finite), and
        // code 2 (1.0 * 2^128) overflows to inf.
        let mut block = vec![0u8, 0x02];
        block.resize(17, 0);
        assert_eq!(
            dequantize(GgmlType::MXFP4, &block).unwrap()[0],
            2f32.powi(-127)
        );
        block[0] = 255;
        block[1] = 0x21;
        let v = dequantize(GgmlType::MXFP4, &block).unwrap();
        assert_eq!((v[0], v[16]), (2f32.powi(127), f32::INFINITY));
    }

    #[test]
    fn quantize_hand_block() {
        // absmax 6: floor(log2 6) = 2, so e = 127 (scale 1) and the E2M1 values are exact.
        let src: Vec<f32> = (0..32).map(|j| E2M1[j % 16]).collect();
        let q = quantize(GgmlType::MXFP4, &src).unwrap();
        assert_eq!(q[0], 127);
        for j in 0..16u8 {
            // -0.0 has zero error against code 0, which comes first.
            let c = if j == 8 { 0 } else { j };
            assert_eq!(q[1 + j as usize], c | (c << 4), "byte {j}");
        }
        // 1.25 is half-way between codes 2 (1.0) and 3 (1.5): the first one wins.
        let mut src = [0.0f32; 32];
        src[0] = 6.0;
        src[1] = 1.25;
        src[2] = -1.25;
        src[3] = 5.0; // between 4 (code 6) and 6 (code 7)
        let q = quantize(GgmlType::MXFP4, &src).unwrap();
        assert_eq!(&q[1..5], &[7, 2, 10, 6]);
        // absmax 1: floor(log2 1) - 2 + 127 = 125, scale 0.25, largest magnitude 1.5.
        let q = quantize(GgmlType::MXFP4, &[1.0f32; 32]).unwrap();
        assert_eq!((q[0], q[1]), (125, 0x66)); // 1.0 = 4 * 0.25 → code 6 (4)
        assert_eq!(
            quantize(GgmlType::MXFP4, &[0.0; 32]).unwrap(),
            vec![0u8; 17]
        );
    }
}
