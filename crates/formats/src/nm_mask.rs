//! N:M magnitude masks (SR-STE, Progressive Gradient Flow): in every group of M consecutive
//! elements along the last axis (the input dimension of an `[out, in]` weight), keep the N of
//! largest magnitude and prune the other M − N.
//!
//! Order is total and deterministic (the reference code's `argsort` is not): elements are sorted
//! ascending by the bits of |w| — NaN above +Inf above every finite value, −0 equal to +0 — then
//! by index, and the first M − N are pruned. Of equal magnitudes the lower index goes first,
//! as a stable ascending sort would.

use rayon::prelude::*;

use crate::error::{FormatError, Result};

/// Check an N:M pattern against rows of `cols` elements.
pub fn check(n: usize, m: usize, cols: usize) -> Result<()> {
    if m == 0 || n > m {
        return Err(FormatError::InvalidSpec(format!(
            "N:M sparsity needs 0 <= N <= M and M >= 1 (got {n}:{m})"
        )));
    }
    if !cols.is_multiple_of(m) {
        return Err(FormatError::InvalidSpec(format!(
            "N:M sparsity {n}:{m}: the input dimension {cols} is not a multiple of M"
        )));
    }
    Ok(())
}

/// Sort key of an element: the bits of its magnitude (a total order matching |w| on finite
/// values, NaN largest).
#[inline]
pub fn magnitude_key(w: f32) -> u32 {
    w.to_bits() & 0x7fff_ffff
}

/// The keep mask (1.0 kept, 0.0 pruned) of row-major `w` with `cols` columns.
pub fn nm_mask(w: &[f32], cols: usize, n: usize, m: usize) -> Result<Vec<f32>> {
    check(n, m, cols)?;
    if !w.len().is_multiple_of(cols.max(1)) {
        return Err(FormatError::ShapeMismatch {
            shape: vec![w.len() / cols.max(1), cols],
            expected: w.len() / cols.max(1) * cols,
            actual: w.len(),
        });
    }
    let mut mask = vec![1f32; w.len()];
    mask.par_chunks_mut(m)
        .zip(w.par_chunks(m))
        .for_each(|(mk, g)| {
            let mut order: Vec<usize> = (0..m).collect();
            // Stable: equal keys stay in index order.
            order.sort_by_key(|&j| magnitude_key(g[j]));
            for &j in &order[..m - n] {
                mk[j] = 0.0;
            }
        });
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_n_largest_of_each_group() {
        let w = [0.5, -3.0, 0.1, 2.0, /**/ 1.0, 1.0, -1.0, 0.0];
        assert_eq!(
            nm_mask(&w, 8, 2, 4).unwrap(),
            // Group 2: three equal magnitudes, the two of higher index are kept.
            vec![0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
        );
        assert_eq!(nm_mask(&w, 4, 4, 4).unwrap(), vec![1.0; 8]);
        assert_eq!(nm_mask(&w, 4, 0, 4).unwrap(), vec![0.0; 8]);
        let special = [f32::NAN, f32::INFINITY, -0.0, 0.0];
        assert_eq!(
            nm_mask(&special, 4, 1, 4).unwrap(),
            vec![1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            nm_mask(&special, 4, 3, 4).unwrap(),
            vec![1.0, 1.0, 0.0, 1.0]
        );
    }

    #[test]
    fn every_group_keeps_exactly_n_and_no_pruned_weight_outweighs_a_kept_one() {
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let w: Vec<f32> = (0..64 * 48)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                // Few distinct magnitudes: many ties.
                ((s % 9) as f32 - 4.0) * 0.25
            })
            .collect();
        for (n, m) in [(1, 4), (2, 4), (2, 8), (1, 8), (7, 8), (4, 16)] {
            let mask = nm_mask(&w, 48, n, m).unwrap();
            for (g, mk) in w.chunks(m).zip(mask.chunks(m)) {
                assert_eq!(mk.iter().filter(|&&k| k == 1.0).count(), n);
                let kept_min = g
                    .iter()
                    .zip(mk)
                    .filter(|(_, k)| **k == 1.0)
                    .map(|(v, _)| v.abs())
                    .fold(f32::INFINITY, f32::min);
                let pruned_max = g
                    .iter()
                    .zip(mk)
                    .filter(|(_, k)| **k == 0.0)
                    .map(|(v, _)| v.abs())
                    .fold(0f32, f32::max);
                assert!(n == 0 || n == m || pruned_max <= kept_min);
            }
        }
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(nm_mask(&[0.0; 12], 6, 2, 4).is_err());
        assert!(nm_mask(&[0.0; 8], 8, 5, 4).is_err());
        assert!(nm_mask(&[0.0; 8], 8, 0, 0).is_err());
    }
}
