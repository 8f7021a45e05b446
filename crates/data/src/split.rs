//! Deterministic document-level train/val split: a document is wholly in one side, so validation
//! text never leaks into training through a shared document.

use crate::error::DataError;
use crate::rng::SplitMix64;

/// Document indices of each side, ascending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitIndices {
    pub train: Vec<usize>,
    pub val: Vec<usize>,
}

/// Splits documents of the given byte lengths.
///
/// The documents are shuffled with SplitMix64(`seed`); in that order a document goes to val when it
/// still fits under `val_fraction` of the total bytes. If none fits, the smallest document (first in
/// shuffled order among equals) becomes val. With `0 < val_fraction < 1` and at least 2 documents,
/// both sides are non-empty. Needs at least 2 documents.
pub fn split_documents(
    byte_lens: &[u64],
    val_fraction: f64,
    seed: u64,
) -> Result<SplitIndices, DataError> {
    if byte_lens.len() < 2 {
        return Err(DataError::Corpus(format!(
            "a document-level train/val split needs at least 2 documents, got {}; \
             split the text into several files",
            byte_lens.len()
        )));
    }
    if !(val_fraction.is_finite() && val_fraction > 0.0 && val_fraction < 1.0) {
        return Err(DataError::Corpus(format!(
            "val_fraction must be strictly between 0 and 1, got {val_fraction}"
        )));
    }
    let total: u64 = byte_lens.iter().sum();
    let target = val_fraction * total as f64;
    let mut order: Vec<usize> = (0..byte_lens.len()).collect();
    SplitMix64::new(seed).shuffle(&mut order);

    let mut is_val = vec![false; byte_lens.len()];
    let mut val_bytes = 0u64;
    for &i in &order {
        if (val_bytes + byte_lens[i]) as f64 <= target {
            is_val[i] = true;
            val_bytes += byte_lens[i];
        }
    }
    if !is_val.iter().any(|&v| v) {
        let smallest = order
            .iter()
            .copied()
            .min_by_key(|&i| byte_lens[i])
            .expect("at least 2 documents");
        is_val[smallest] = true;
    }
    // A side can only be empty here if every document fitted under the target, i.e. if they are
    // all empty (target < total otherwise); keep train non-empty regardless.
    if is_val.iter().all(|&v| v) {
        is_val[order[0]] = false;
    }
    let (val, train): (Vec<usize>, Vec<usize>) = (0..byte_lens.len()).partition(|&i| is_val[i]);
    Ok(SplitIndices { train, val })
}
