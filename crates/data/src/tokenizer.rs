//! Tokenizers behind one small trait, so the trainer and the cache do not care which one runs.

use crate::config::TokenizerKind;
use crate::error::DataError;

/// Text <-> token ids. `Send + Sync` so documents can be tokenized in parallel.
pub trait Tokenizer: Send + Sync {
    /// The name used in recipes and in the token-cache key (`"bytes"`, `"gpt2"`).
    fn name(&self) -> &'static str;
    /// Number of distinct ids; every id from `encode` is below it.
    fn vocab_size(&self) -> usize;
    /// Token ids of `text`. Special tokens are never parsed from the text.
    fn encode(&self, text: &str) -> Vec<u32>;
    /// Text of `ids`; invalid UTF-8 and unknown ids become U+FFFD, so sampling never fails.
    fn decode(&self, ids: &[u32]) -> String;
}

impl TokenizerKind {
    /// The recipe name of this tokenizer.
    pub fn name(self) -> &'static str {
        match self {
            TokenizerKind::Bytes => "bytes",
            TokenizerKind::Gpt2 => "gpt2",
            TokenizerKind::Model => "model",
        }
    }

    /// The vocabulary size, without building the tokenizer (None: the `[init]` model's).
    pub fn vocab_size(self) -> Option<usize> {
        match self {
            TokenizerKind::Bytes => Some(BytesTokenizer::VOCAB),
            TokenizerKind::Gpt2 => Some(Gpt2Tokenizer::VOCAB),
            TokenizerKind::Model => None,
        }
    }

    /// Builds the tokenizer (GPT-2 parses its 50k embedded ranks, ~0.1 s). `model` comes with
    /// the `[init]` model and is not built here.
    pub fn build(self) -> Result<Box<dyn Tokenizer>, DataError> {
        Ok(match self {
            TokenizerKind::Bytes => Box::new(BytesTokenizer),
            TokenizerKind::Gpt2 => Box::new(Gpt2Tokenizer::new()?),
            TokenizerKind::Model => {
                return Err(DataError::Tokenizer {
                    name: "model",
                    message: "`tokenizer = \"model\"` needs an [init] model that brings one".into(),
                });
            }
        })
    }
}

/// One token per UTF-8 byte.
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesTokenizer;

impl BytesTokenizer {
    const VOCAB: usize = 256;
}

impl Tokenizer for BytesTokenizer {
    fn name(&self) -> &'static str {
        "bytes"
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        text.bytes().map(u32::from).collect()
    }

    fn decode(&self, ids: &[u32]) -> String {
        // Ids >= 256 have no byte; 0xFF is never valid UTF-8, so it decodes to U+FFFD.
        let bytes: Vec<u8> = ids
            .iter()
            .map(|&i| u8::try_from(i).unwrap_or(0xFF))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// GPT-2's byte-level BPE (`r50k_base` from tiktoken-rs; works offline).
pub struct Gpt2Tokenizer {
    bpe: tiktoken_rs::CoreBPE,
}

impl Gpt2Tokenizer {
    pub(crate) const VOCAB: usize = 50257;

    /// The bytes of token `id`.
    pub fn token_bytes(&self, id: u32) -> Result<Vec<u8>, String> {
        self.bpe.decode_bytes(&[id]).map_err(|e| e.to_string())
    }

    pub fn new() -> Result<Self, DataError> {
        let bpe = tiktoken_rs::r50k_base().map_err(|e| DataError::Tokenizer {
            name: "gpt2",
            message: e.to_string(),
        })?;
        Ok(Gpt2Tokenizer { bpe })
    }
}

impl Tokenizer for Gpt2Tokenizer {
    fn name(&self) -> &'static str {
        "gpt2"
    }

    fn vocab_size(&self) -> usize {
        Self::VOCAB
    }

    fn encode(&self, text: &str) -> Vec<u32> {
        self.bpe.encode_ordinary(text)
    }

    fn decode(&self, ids: &[u32]) -> String {
        let bytes = match self.bpe.decode_bytes(ids) {
            Ok(b) => b,
            // Some id is unknown: decode one by one and mark the unknown ones.
            Err(_) => ids
                .iter()
                .flat_map(|&id| {
                    self.bpe
                        .decode_bytes(&[id])
                        .unwrap_or_else(|_| "\u{FFFD}".as_bytes().to_vec())
                })
                .collect(),
        };
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
