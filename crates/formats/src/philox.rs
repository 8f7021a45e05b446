//! Philox4x32-10 (Salmon et al., SC'11), the counter-based RNG behind stochastic rounding and
//! random Hadamard signs. A draw is a pure function of (seed, stream, index), so a GPU kernel
//! that processes element `index` in any order reproduces the CPU's bits.

const M0: u32 = 0xD251_1F53;
const M1: u32 = 0xCD9E_8D57;
const W0: u32 = 0x9E37_79B9;
const W1: u32 = 0xBB67_AE85;

/// Stream used for stochastic-rounding draws.
pub const STREAM_SR: u32 = 0;
/// Stream used for random Hadamard sign vectors.
pub const STREAM_SIGNS: u32 = 1;

/// One Philox4x32 block with 10 rounds.
#[inline(always)]
pub fn philox4x32_10(ctr: [u32; 4], key: [u32; 2]) -> [u32; 4] {
    let mut c = ctr;
    let mut k = key;
    for round in 0..10 {
        if round > 0 {
            k[0] = k[0].wrapping_add(W0);
            k[1] = k[1].wrapping_add(W1);
        }
        let p0 = M0 as u64 * c[0] as u64;
        let p1 = M1 as u64 * c[2] as u64;
        c = [
            (p1 >> 32) as u32 ^ c[1] ^ k[0],
            p1 as u32,
            (p0 >> 32) as u32 ^ c[3] ^ k[1],
            p0 as u32,
        ];
    }
    c
}

/// The four 32-bit words of block `index / 4` of a (seed, stream) sequence.
///
/// Counter = (block low, block high, stream, 0); key = (seed low, seed high).
#[inline(always)]
pub fn block(seed: u64, stream: u32, block_index: u64) -> [u32; 4] {
    philox4x32_10(
        [block_index as u32, (block_index >> 32) as u32, stream, 0],
        [seed as u32, (seed >> 32) as u32],
    )
}

/// The 32-bit word for element `index`: word `index % 4` of block `index / 4`.
#[inline]
pub fn word(seed: u64, stream: u32, index: u64) -> u32 {
    block(seed, stream, index >> 2)[(index & 3) as usize]
}

/// A uniform in [0, 1) with 24 random bits (exactly representable in f32): `(word >> 8) * 2^-24`.
#[inline(always)]
pub fn to_unit(word: u32) -> f32 {
    (word >> 8) as f32 * (1.0 / 16_777_216.0)
}

/// Uniform in [0, 1) for element `index` of stream `stream`.
#[inline]
pub fn uniform(seed: u64, stream: u32, index: u64) -> f32 {
    to_unit(word(seed, stream, index))
}

/// Sequential reader over consecutive indices that computes each Philox block once.
pub struct UniformCursor {
    seed: u64,
    stream: u32,
    cached_block: u64,
    words: [u32; 4],
}

impl UniformCursor {
    pub fn new(seed: u64, stream: u32) -> Self {
        Self {
            seed,
            stream,
            cached_block: u64::MAX,
            words: [0; 4],
        }
    }

    #[inline(always)]
    pub fn at(&mut self, index: u64) -> f32 {
        let b = index >> 2;
        if b != self.cached_block {
            self.cached_block = b;
            self.words = block(self.seed, self.stream, b);
        }
        to_unit(self.words[(index & 3) as usize])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known-answer vectors of Random123's `kat_vectors` (philox4x32 10).
    #[test]
    fn random123_known_answers() {
        assert_eq!(
            philox4x32_10([0; 4], [0; 2]),
            [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]
        );
        assert_eq!(
            philox4x32_10([u32::MAX; 4], [u32::MAX; 2]),
            [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]
        );
        assert_eq!(
            philox4x32_10(
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0]
            ),
            [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
        );
    }

    #[test]
    fn cursor_matches_random_access() {
        let mut c = UniformCursor::new(42, STREAM_SR);
        for i in (0..100u64).chain(1_000_000..1_000_010) {
            assert_eq!(c.at(i), uniform(42, STREAM_SR, i));
        }
    }
}
