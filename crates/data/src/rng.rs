//! SplitMix64 (Steele, Lea, Flood 2014): a tiny seeded PRNG whose output depends only on the seed,
//! so the split and the batch order are the same on every platform and every build.

/// SplitMix64 generator state.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0) by Lemire's multiply-shift; the bias (< n / 2^64) is irrelevant
    /// here and the mapping is exact integer arithmetic, hence portable.
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Fisher-Yates shuffle in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// Derives an independent seed from `(seed, stream)`, e.g. one per epoch.
pub fn derive_seed(seed: u64, stream: u64) -> u64 {
    let salt = SplitMix64::new(stream ^ 0x6E69_6262_6C65_2D64).next_u64(); // "nibble-d"
    SplitMix64::new(seed ^ salt).next_u64()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference outputs of SplitMix64 for seed 1234567 (Vigna's C reference implementation, also
    /// listed on Rosetta Code "Pseudo-random numbers/Splitmix64").
    #[test]
    fn matches_reference_sequence() {
        let mut r = SplitMix64::new(1_234_567);
        let want = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        for w in want {
            assert_eq!(r.next_u64(), w);
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut v: Vec<u32> = (0..1000).collect();
        SplitMix64::new(7).shuffle(&mut v);
        assert_ne!(v, (0..1000).collect::<Vec<_>>());
        v.sort_unstable();
        assert_eq!(v, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(3);
        for n in 1..200u64 {
            assert!(r.below(n) < n);
        }
    }
}
