//! Training batches whose order depends only on (seed, epoch), with a resumable cursor.
//!
//! Geometry: windows of `seq_len + 1` tokens at stride `seq_len` (neighbours share one token, so
//! every adjacent token pair is a training pair once per epoch), starting at an offset in
//! `0..seq_len` drawn per epoch, so window boundaries move between epochs. The window count is the
//! same in every epoch. Windows are visited in a per-epoch Fisher-Yates order; a batch may span the
//! end of one epoch and the start of the next.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::DataError;
use crate::rng::{SplitMix64, derive_seed};

/// A batch as flat row-major buffers of shape `[rows, seq_len]`; `targets` are `inputs` shifted
/// left by one token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
    pub rows: usize,
    pub seq_len: usize,
}

impl Batch {
    fn with_capacity(rows: usize, seq_len: usize) -> Self {
        Batch {
            inputs: Vec::with_capacity(rows * seq_len),
            targets: Vec::with_capacity(rows * seq_len),
            rows: 0,
            seq_len,
        }
    }

    /// Appends the window `tokens[start ..= start + seq_len]` as one row.
    pub(crate) fn push_window(&mut self, tokens: &[u32], start: usize) {
        let w = &tokens[start..start + self.seq_len + 1];
        self.inputs.extend_from_slice(&w[..self.seq_len]);
        self.targets.extend_from_slice(&w[1..]);
        self.rows += 1;
    }
}

/// Where a [`Batcher`] stands: saved in checkpoints, restored with [`Batcher::resume`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BatchCursor {
    /// Epochs completed before the current one.
    pub epoch: u64,
    /// Windows of the current epoch already handed out.
    pub position: u64,
}

/// Endless stream of shuffled training batches over one token stream.
#[derive(Debug, Clone)]
pub struct Batcher {
    tokens: Arc<[u32]>,
    batch_size: usize,
    seq_len: usize,
    seed: u64,
    n_windows: usize,
    max_offset: usize,
    epoch: u64,
    position: usize,
    offset: usize,
    order: Vec<usize>,
}

impl Batcher {
    /// A batcher at epoch 0, position 0. Needs `batch_size, seq_len >= 1` and more than `seq_len`
    /// tokens.
    pub fn new(
        tokens: Arc<[u32]>,
        batch_size: usize,
        seq_len: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        check_sizes(tokens.len(), batch_size, seq_len)?;
        let full = (tokens.len() - 1) / seq_len;
        // Keep one window of slack when possible, so the per-epoch offset can range over the whole
        // of 0..seq_len.
        let n_windows = if full >= 2 { full - 1 } else { full };
        let slack = tokens.len() - 1 - n_windows * seq_len;
        let mut b = Batcher {
            tokens,
            batch_size,
            seq_len,
            seed,
            n_windows,
            max_offset: slack.min(seq_len - 1),
            epoch: 0,
            position: 0,
            offset: 0,
            order: Vec::new(),
        };
        b.start_epoch(0);
        Ok(b)
    }

    /// Windows per epoch (each yields one row).
    pub fn windows_per_epoch(&self) -> usize {
        self.n_windows
    }

    /// The position of the next batch.
    pub fn cursor(&self) -> BatchCursor {
        BatchCursor {
            epoch: self.epoch,
            position: self.position as u64,
        }
    }

    /// Continues from `cursor` (taken from a batcher built with the same tokens, seq_len and seed):
    /// the following rows equal those the original batcher would have produced. The cursor counts
    /// windows, not batches, so the batch size may differ.
    pub fn resume(&mut self, cursor: BatchCursor) -> Result<(), DataError> {
        if cursor.position > self.n_windows as u64 {
            return Err(DataError::Batch(format!(
                "cursor position {} is past the {} windows of an epoch; was the checkpoint made \
                 with other data or another seq_len?",
                cursor.position, self.n_windows
            )));
        }
        self.start_epoch(cursor.epoch);
        self.position = cursor.position as usize;
        Ok(())
    }

    /// The next `batch_size` windows.
    pub fn next_batch(&mut self) -> Batch {
        let mut batch = Batch::with_capacity(self.batch_size, self.seq_len);
        for _ in 0..self.batch_size {
            if self.position == self.n_windows {
                self.start_epoch(self.epoch + 1);
            }
            let start = self.offset + self.order[self.position] * self.seq_len;
            batch.push_window(&self.tokens, start);
            self.position += 1;
        }
        batch
    }

    fn start_epoch(&mut self, epoch: u64) {
        let mut rng = SplitMix64::new(derive_seed(self.seed, epoch));
        self.offset = rng.below(self.max_offset as u64 + 1) as usize;
        self.order.clear();
        self.order.extend(0..self.n_windows);
        rng.shuffle(&mut self.order);
        self.epoch = epoch;
        self.position = 0;
    }
}

/// Validation batches: the fixed windows at `k * seq_len`, in order, no shuffling; the last batch
/// may have fewer rows. Every target token of the covered prefix is scored exactly once.
#[derive(Debug, Clone)]
pub struct ValBatches {
    tokens: Arc<[u32]>,
    batch_size: usize,
    seq_len: usize,
    next: usize,
    end: usize,
}

impl ValBatches {
    /// At most `max_batches` batches (all windows when `None`).
    pub fn new(
        tokens: Arc<[u32]>,
        batch_size: usize,
        seq_len: usize,
        max_batches: Option<usize>,
    ) -> Result<Self, DataError> {
        check_sizes(tokens.len(), batch_size, seq_len)?;
        let windows = (tokens.len() - 1) / seq_len;
        let end = max_batches.map_or(windows, |m| windows.min(m.saturating_mul(batch_size)));
        Ok(ValBatches {
            tokens,
            batch_size,
            seq_len,
            next: 0,
            end,
        })
    }

    /// Windows this iterator yields in total (rows over all batches).
    pub fn n_windows(&self) -> usize {
        self.end
    }
}

impl Iterator for ValBatches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next >= self.end {
            return None;
        }
        let rows = self.batch_size.min(self.end - self.next);
        let mut batch = Batch::with_capacity(rows, self.seq_len);
        for k in self.next..self.next + rows {
            batch.push_window(&self.tokens, k * self.seq_len);
        }
        self.next += rows;
        Some(batch)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.end - self.next).div_ceil(self.batch_size);
        (n, Some(n))
    }
}

impl ExactSizeIterator for ValBatches {}

fn check_sizes(n_tokens: usize, batch_size: usize, seq_len: usize) -> Result<(), DataError> {
    if batch_size == 0 || seq_len == 0 {
        return Err(DataError::Batch(format!(
            "batch size and seq_len must be at least 1, got {batch_size} and {seq_len}"
        )));
    }
    if n_tokens <= seq_len {
        return Err(DataError::Batch(format!(
            "{n_tokens} tokens cannot fill one window of seq_len + 1 = {} tokens; use a shorter \
             seq_len or more text",
            seq_len + 1
        )));
    }
    Ok(())
}
