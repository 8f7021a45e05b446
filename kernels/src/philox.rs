//! Philox4x32-10 on the device: the same (seed, stream, index) → word map as
//! `nibble_formats::philox`, with 32×32→64 products from `mul_hi` and wrapping multiplies.

use cubecl::prelude::*;

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Word `index % 4` of Philox block `index / 4` of (seed, stream); `index < 2^32`.
#[cube]
pub fn philox_word(seed_lo: u32, seed_hi: u32, stream: u32, index: u32) -> u32 {
    let mut c0 = index >> 2;
    let mut c1 = 0u32;
    let mut c2 = stream;
    let mut c3 = 0u32;
    let mut k0 = seed_lo;
    let mut k1 = seed_hi;
    for round in 0..10u32 {
        if round > 0u32 {
            k0 += W0;
            k1 += W1;
        }
        let hi0 = u32::mul_hi(M0, c0);
        let lo0 = M0 * c0;
        let hi1 = u32::mul_hi(M1, c2);
        let lo1 = M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    let lane = index & 3u32;
    let mut w = c0;
    if lane == 1u32 {
        w = c1;
    } else if lane == 2u32 {
        w = c2;
    } else if lane == 3u32 {
        w = c3;
    }
    w
}

/// A uniform in [0, 1) with 24 random bits: `(word >> 8) · 2^-24`.
#[cube]
pub fn to_unit(word: u32) -> f32 {
    f32::cast_from(word >> 8) * (1.0f32 / 16_777_216.0f32)
}
