//! GPT-2's BPE (`r50k_base`) as a byte-level BPE vocabulary with merges, the form GGUF
//! (`tokenizer.ggml.*`) and Hugging Face `tokenizer.json` store: what `nibble export` writes for
//! a run on the `gpt2` tokenizer, so llama.cpp and transformers tokenize as training did.
//!
//! tiktoken ships ranks of byte strings, not merges. Token r (≥ 256) is the merge of the two
//! parts that byte-pair encoding of its bytes reaches using only tokens of lower rank; the
//! merges, in rank order, are those pairs (the derivation HF's tiktoken converter uses).

use std::collections::HashMap;

use crate::bpe::{BpeSpec, PreTokenizer, byte_to_unicode};
use crate::error::DataError;
use crate::tokenizer::Gpt2Tokenizer;

/// Tokens (id order, byte-level alphabet, `<|endoftext|>` last), merges (`"a b"`, priority
/// order) and the id of `<|endoftext|>`.
pub struct Gpt2Vocab {
    pub tokens: Vec<String>,
    pub merges: Vec<String>,
    pub endoftext: u32,
}

fn unicode(bytes: &[u8]) -> String {
    let table = byte_to_unicode();
    bytes.iter().map(|&b| table[b as usize]).collect()
}

/// The two parts byte-pair encoding of `bytes` reaches with tokens ranked below `limit`.
fn last_merge(
    bytes: &[u8],
    ranks: &HashMap<Vec<u8>, u32>,
    limit: u32,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut parts: Vec<Vec<u8>> = bytes.iter().map(|&b| vec![b]).collect();
    loop {
        let best = (0..parts.len().saturating_sub(1))
            .filter_map(|i| {
                let joined = [parts[i].as_slice(), parts[i + 1].as_slice()].concat();
                ranks.get(&joined).filter(|&&r| r < limit).map(|&r| (r, i))
            })
            .min();
        let Some((_, i)) = best else { break };
        let right = parts.remove(i + 1);
        parts[i].extend(right);
    }
    match <[Vec<u8>; 2]>::try_from(parts) {
        Ok([a, b]) => Some((a, b)),
        Err(_) => None,
    }
}

impl Gpt2Tokenizer {
    /// The vocabulary and merges of GPT-2's BPE (50,000 merges, 50,257 tokens).
    pub fn vocabulary(&self) -> Result<Gpt2Vocab, DataError> {
        let err = |m: String| DataError::Tokenizer {
            name: "gpt2",
            message: m,
        };
        let n = Self::VOCAB as u32;
        let endoftext = n - 1;
        let mut bytes = Vec::with_capacity(n as usize);
        let mut ranks = HashMap::with_capacity(n as usize);
        for r in 0..endoftext {
            let b = self
                .token_bytes(r)
                .map_err(|e| err(format!("token {r}: {e}")))?;
            ranks.insert(b.clone(), r);
            bytes.push(b);
        }
        let mut merges = Vec::new();
        for (r, b) in bytes.iter().enumerate() {
            if b.len() < 2 {
                continue;
            }
            let (a, c) = last_merge(b, &ranks, r as u32)
                .ok_or_else(|| err(format!("token {r} is not a merge of two lower tokens")))?;
            merges.push(format!("{} {}", unicode(&a), unicode(&c)));
        }
        let mut tokens: Vec<String> = bytes.iter().map(|b| unicode(b)).collect();
        tokens.push("<|endoftext|>".into());
        Ok(Gpt2Vocab {
            tokens,
            merges,
            endoftext,
        })
    }
}

impl Gpt2Vocab {
    /// A [`BpeSpec`] of this vocabulary (GPT-2 pre-tokenizer, `<|endoftext|>` a control token).
    pub fn spec(&self) -> BpeSpec {
        let mut s = BpeSpec::new(
            "gpt2-merges",
            self.tokens.clone(),
            self.merges.clone(),
            PreTokenizer::Gpt2,
        );
        let mut types = vec![crate::bpe::TokenType::Normal; self.tokens.len()];
        types[self.endoftext as usize] = crate::bpe::TokenType::Control;
        s.token_types = types;
        s.eos = Some(self.endoftext);
        s.bos = Some(self.endoftext);
        s
    }
}
