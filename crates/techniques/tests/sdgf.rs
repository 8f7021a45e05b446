//! N:M masks along either dimension and SDGF's frames against independent restatements: every
//! mask keeps exactly N per group of M (ties to the higher index), along rows or columns; the
//! frame sequences of spec §5.3's table; frames split the sparse phase counted from its own
//! start; the mask switches pattern at exactly a frame's first update, whatever the interval.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::{A, tensor, vals};
use nibble_techniques::{
    LayerSlotsMut, NmDim, NmSte, Sdgf, SdgfType, SparsePhases, SparsityConfig, Technique,
};

/// Deterministic weights from a small set of values (so magnitudes tie often), signs mixed.
fn weights(len: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 9) as f32 * 0.125;
            if x & 0x100 == 0 { v } else { -v }
        })
        .collect()
}

/// Entry (group g, position j) of row-major `[rows, cols]` values: groups of M along a row
/// (input) or down a column (output).
fn index(dim: NmDim, cols: usize, m: usize, g: usize, j: usize) -> usize {
    match dim {
        NmDim::Input => g * m + j,
        NmDim::Output => ((g / cols) * m + j) * cols + g % cols,
    }
}

#[test]
fn every_mask_is_exactly_n_of_m_along_its_dimension_ties_to_the_higher_index() {
    let (rows, cols) = (64, 64);
    for (seed, (n, m)) in [
        (1, 2),
        (2, 4),
        (1, 4),
        (3, 8),
        (1, 8),
        (1, 16),
        (1, 32),
        (5, 64),
    ]
    .into_iter()
    .enumerate()
    {
        for dim in [NmDim::Input, NmDim::Output] {
            let w = weights(rows * cols, seed as u64 + 7);
            let nm = NmSte {
                dim,
                ..NmSte::new(n, m)
            };
            let mask = vals(nm.mask_for(&tensor(&w, [rows, cols]), n, m));
            for g in 0..rows * cols / m {
                let at = |j| index(dim, cols, m, g, j);
                for j in 0..m {
                    // Kept iff fewer than N entries of the group rank above it: larger |w|, or
                    // equal |w| at a higher position.
                    let above = (0..m)
                        .filter(|&k| {
                            let (a, b) = (w[at(k)].abs(), w[at(j)].abs());
                            a > b || (a == b && k > j)
                        })
                        .count();
                    let want = if above < n { 1.0 } else { 0.0 };
                    assert_eq!(mask[at(j)], want, "{n}:{m} {dim:?} group {g} position {j}");
                }
            }
        }
    }
    // The output dimension needs M to divide the rows, the input one the columns.
    let out = NmSte {
        dim: NmDim::Output,
        ..NmSte::new(1, 8)
    };
    assert!(out.slots([12, 64]).is_err());
    assert!(out.slots([16, 12]).is_ok());
    assert!(NmSte::new(1, 8).slots([16, 12]).is_err());
    // N ≥ M is not a sparse pattern.
    assert!(NmSte::new(4, 4).slots([16, 16]).is_err());
}

#[test]
fn frame_sequences_follow_the_reference_table() {
    let f = |t: SdgfType, p| t.frames(p, &[]);
    assert_eq!(
        f(SdgfType::Stepwise, (1, 8)),
        [(7, 8), (4, 8), (2, 8), (1, 8)]
    );
    assert_eq!(
        f(SdgfType::Stepwise, (1, 16)),
        [(15, 16), (8, 16), (4, 16), (2, 16), (1, 16)]
    );
    assert_eq!(f(SdgfType::Stepwise, (2, 4)), [(3, 4), (2, 4)]);
    assert_eq!(
        f(SdgfType::Geometric, (1, 8)),
        [(8, 64), (4, 32), (2, 16), (1, 8)]
    );
    assert_eq!(
        f(SdgfType::Densify, (1, 8)),
        [(1, 64), (1, 32), (1, 16), (1, 8)]
    );
    assert_eq!(
        SdgfType::Custom.frames((1, 4), &[(3, 4), (1, 4)]),
        [(3, 4), (1, 4)]
    );
}

fn sdgf(frames: Vec<(usize, usize)>, phases: SparsePhases, interval: u64) -> Sdgf {
    let (n, m) = *frames.last().unwrap();
    Sdgf {
        mask: NmSte {
            interval,
            phases,
            ..NmSte::new(n, m)
        },
        frames,
    }
}

/// Frames split `dense_until..min(hard_from, end)` at `dense_until + ⌊k·S/F⌋`; the dense phase
/// belongs to frame 0 and the hard phase to the last.
#[test]
fn frames_split_the_sparse_phase_counted_from_its_start() {
    let stepwise = SdgfType::Stepwise.frames((1, 8), &[]);
    let with_hard = SparsePhases {
        dense_until: 10,
        hard_from: 90,
        end: 100,
    };
    let t = sdgf(stepwise.clone(), with_hard, 1);
    assert_eq!(t.frame_starts(), [10, 30, 50, 70]);
    for (step, frame) in [(0, 0), (9, 0), (10, 0), (29, 0), (30, 1), (49, 1), (50, 2)] {
        assert_eq!(t.frame_at(step), frame, "update {step}");
    }
    for (step, pattern) in [(69, (2, 8)), (70, (1, 8)), (89, (1, 8)), (95, (1, 8))] {
        assert_eq!(t.pattern_at(step), pattern, "update {step}");
    }
    // No hard phase: S = 100 − 10 = 90, starts 10 + ⌊k·90/4⌋.
    let open = SparsePhases {
        dense_until: 10,
        hard_from: u64::MAX,
        end: 100,
    };
    assert_eq!(sdgf(stepwise, open, 1).frame_starts(), [10, 32, 55, 77]);
    // From the recipe: 200 updates, 10% dense, 20% hard: frames over 20..160.
    let cfg: SparsityConfig = toml::from_str(
        "method = \"sdgf\"\npattern = \"1:16\"\ndense_fraction = 0.1\nfinetune_fraction = 0.2",
    )
    .unwrap();
    cfg.validate().unwrap();
    let mut t = cfg.technique_for("model.layers.0.mlp.up_proj").unwrap();
    t.nm_mut().unwrap().phases = cfg.phases(200);
    let nibble_techniques::AnyTechnique::Sdgf(s) = t else {
        panic!("an SDGF technique");
    };
    assert_eq!(s.frames.len(), 5);
    assert_eq!(s.frame_starts(), [20, 48, 76, 104, 132]);
}

/// The forward of update s uses the mask the hook after update s computed: a new frame's
/// pattern from its first update, even when the interval would not recompute the mask then.
#[test]
fn the_mask_switches_pattern_at_exactly_the_frame_boundary() {
    let phases = SparsePhases {
        dense_until: 2,
        hard_from: u64::MAX,
        end: 10,
    };
    // Frames over updates 2..10: 3:4 from 2, 2:4 from 6.
    let t = sdgf(vec![(3, 4), (2, 4)], phases, 1000);
    let w: Tensor<A, 2> = tensor(&weights(8 * 16, 3), [8, 16]);
    let kept = |m: &Tensor<A, 2>| {
        let v = vals(m.clone());
        let counts: Vec<usize> = v
            .chunks(4)
            .map(|g| g.iter().filter(|&&x| x == 1.0).count())
            .collect();
        assert!(counts.windows(2).all(|c| c[0] == c[1]), "{counts:?}");
        counts[0]
    };
    let mut buffers = BTreeMap::from([("l.weight_mask".to_string(), t.init(&w)[0].clone())]);
    assert_eq!(kept(&buffers["l.weight_mask"]), 3, "frame 0 from the start");
    for step in 1..=9 {
        let slots = LayerSlotsMut {
            module: "l",
            buffers: &mut buffers,
        };
        t.end_step(step, &w, slots);
        let want = if step < 6 { 3 } else { 2 };
        assert_eq!(kept(&buffers["l.weight_mask"]), want, "after update {step}");
    }
}
