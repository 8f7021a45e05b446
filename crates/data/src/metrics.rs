//! Bits per byte: a tokenizer-independent loss, and the unigram baseline a model must beat.

use crate::error::DataError;

/// Bits per byte of text from a mean cross-entropy in nats per token:
/// `bpb = mean_loss * n_tokens / (n_bytes * ln 2)`.
/// Returns NaN when `n_bytes` is 0.
pub fn bits_per_byte(mean_loss_nats: f64, n_tokens: u64, n_bytes: u64) -> f64 {
    if n_bytes == 0 {
        return f64::NAN;
    }
    mean_loss_nats * n_tokens as f64 / (n_bytes as f64 * std::f64::consts::LN_2)
}

/// Bits per byte on `val` of a unigram model fitted on `train` with add-one smoothing:
/// `p(t) = (count_train(t) + 1) / (len(train) + vocab_size)`.
pub fn unigram_bpb(
    train: &[u32],
    val: &[u32],
    vocab_size: usize,
    val_bytes: u64,
) -> Result<f64, DataError> {
    if vocab_size == 0 || val.is_empty() || val_bytes == 0 {
        return Err(DataError::Corpus(
            "unigram baseline needs a vocabulary and a non-empty validation split".into(),
        ));
    }
    let mut counts = vec![0u64; vocab_size];
    for &t in train {
        let slot = counts
            .get_mut(t as usize)
            .ok_or_else(|| out_of_vocab(t, vocab_size))?;
        *slot += 1;
    }
    let denom = (train.len() as f64 + vocab_size as f64).ln();
    let mut nats = 0.0f64;
    for &t in val {
        let c = *counts
            .get(t as usize)
            .ok_or_else(|| out_of_vocab(t, vocab_size))?;
        nats += denom - (c as f64 + 1.0).ln();
    }
    Ok(bits_per_byte(
        nats / val.len() as f64,
        val.len() as u64,
        val_bytes,
    ))
}

fn out_of_vocab(t: u32, vocab_size: usize) -> DataError {
    DataError::Corpus(format!(
        "token id {t} is outside the vocabulary of {vocab_size}"
    ))
}
