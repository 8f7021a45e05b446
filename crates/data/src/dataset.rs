//! The trainer's entry point: corpus -> (cached) tokens -> train/val token streams with byte counts.

use std::path::PathBuf;
use std::sync::Arc;

use crate::cache::load_or_tokenize;
use crate::config::{DataConfig, TokenizerKind};
use crate::corpus::load_corpus;
use crate::error::DataError;
use crate::metrics::{bits_per_byte, unigram_bpb};
use crate::split::split_documents;
use crate::tokenizer::Tokenizer;

/// One side of the split: its documents' tokens concatenated in corpus order.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenSplit {
    /// Names of the documents on this side, in corpus order.
    pub documents: Vec<String>,
    /// The token stream (shared cheaply with batchers).
    pub tokens: Arc<[u32]>,
    /// UTF-8 bytes of the text these tokens encode: the denominator of bits per byte.
    pub n_bytes: u64,
}

impl TokenSplit {
    /// Bits per byte from a mean loss (nats per token) measured on this split. When only part of
    /// the split was evaluated, this assumes the split's average bytes per token (exact for `bytes`).
    pub fn bits_per_byte(&self, mean_loss_nats: f64) -> f64 {
        bits_per_byte(mean_loss_nats, self.tokens.len() as u64, self.n_bytes)
    }
}

/// Tokenized, split data for training.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub train: TokenSplit,
    pub val: TokenSplit,
    pub tokenizer: TokenizerKind,
    pub vocab_size: usize,
    /// The token-cache file used.
    pub cache_file: PathBuf,
    /// Whether the tokens came from the cache (tokenization skipped).
    pub cache_hit: bool,
}

impl Dataset {
    /// Bits per byte on val of an add-one-smoothed unigram model of the train tokens: the floor a
    /// trained model must clearly beat.
    pub fn unigram_bpb(&self) -> Result<f64, DataError> {
        unigram_bpb(
            &self.train.tokens,
            &self.val.tokens,
            self.vocab_size,
            self.val.n_bytes,
        )
    }
}

/// Loads the corpus, tokenizes it (or reads the token cache) and splits it by documents.
pub fn load(cfg: &DataConfig) -> Result<Dataset, DataError> {
    load_with(cfg, cfg.tokenizer.build()?.as_ref())
}

/// [`load`] with a given tokenizer (an imported model's); its name keys the token cache.
pub fn load_with(cfg: &DataConfig, tokenizer: &dyn Tokenizer) -> Result<Dataset, DataError> {
    let corpus = load_corpus(cfg)?;
    let cached = load_or_tokenize(&cfg.cache_dir, &corpus, tokenizer)?;
    let docs = &corpus.documents;
    let byte_lens: Vec<u64> = docs.iter().map(|d| d.text.len() as u64).collect();
    let split = split_documents(&byte_lens, cfg.val_fraction, cfg.split_seed)?;

    let mut starts = Vec::with_capacity(cached.doc_lens.len());
    let mut at = 0usize;
    for &n in &cached.doc_lens {
        starts.push(at);
        at += n;
    }
    let side = |indices: &[usize]| TokenSplit {
        documents: indices.iter().map(|&i| docs[i].name.clone()).collect(),
        tokens: indices
            .iter()
            .flat_map(|&i| &cached.tokens[starts[i]..starts[i] + cached.doc_lens[i]])
            .copied()
            .collect(),
        n_bytes: indices.iter().map(|&i| byte_lens[i]).sum(),
    };
    Ok(Dataset {
        train: side(&split.train),
        val: side(&split.val),
        tokenizer: cfg.tokenizer,
        vocab_size: tokenizer.vocab_size(),
        cache_file: cached.path,
        cache_hit: cached.hit,
    })
}
