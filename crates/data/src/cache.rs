//! Token cache: the tokens of every document of a corpus, stored once per
//! (source identity, content hash, tokenizer), so a second load skips tokenization.
//!
//! File `<cache_dir>/tokens/<key>.bin`, little endian:
//! magic `NIBTOKC1` | key (32 B) | id width in bytes (u32: 1, 2 or 4) | n_docs (u64) |
//! n_tokens per document (u64 each) | ids | sha256 of all the preceding bytes (32 B).
//! A file that fails any check is ignored and rewritten.

use std::fs;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::corpus::Corpus;
use crate::error::DataError;
use crate::fsutil::write_atomic;
use crate::shakespeare::hex;
use crate::tokenizer::Tokenizer;

const MAGIC: &[u8; 8] = b"NIBTOKC1";

/// The tokens of all documents, concatenated in corpus order.
pub(crate) struct CorpusTokens {
    pub tokens: Vec<u32>,
    pub doc_lens: Vec<usize>,
    pub path: PathBuf,
    pub hit: bool,
}

/// Loads the corpus tokens from the cache, or tokenizes and writes the cache.
pub(crate) fn load_or_tokenize(
    cache_dir: &Path,
    corpus: &Corpus,
    tokenizer: &dyn Tokenizer,
) -> Result<CorpusTokens, DataError> {
    let key = cache_key(corpus, tokenizer.name());
    let path = cache_dir
        .join("tokens")
        .join(format!("{}.bin", hex(&key[..16])));
    if let Some((tokens, doc_lens)) = read_cache(&path, &key, corpus.documents.len()) {
        return Ok(CorpusTokens {
            tokens,
            doc_lens,
            path,
            hit: true,
        });
    }
    let per_doc: Vec<Vec<u32>> = corpus
        .documents
        .par_iter()
        .map(|d| tokenizer.encode(&d.text))
        .collect();
    let doc_lens: Vec<usize> = per_doc.iter().map(Vec::len).collect();
    let tokens: Vec<u32> = per_doc.concat();
    let width = id_width(tokenizer.vocab_size());
    write_atomic(&path, &encode_cache(&key, width, &doc_lens, &tokens))?;
    Ok(CorpusTokens {
        tokens,
        doc_lens,
        path,
        hit: false,
    })
}

/// sha256 over the source identity, every document (name and text, length-prefixed) and the
/// tokenizer name.
fn cache_key(corpus: &Corpus, tokenizer: &str) -> [u8; 32] {
    let mut content = Sha256::new();
    for d in &corpus.documents {
        content.update((d.name.len() as u64).to_le_bytes());
        content.update(d.name.as_bytes());
        content.update((d.text.len() as u64).to_le_bytes());
        content.update(d.text.as_bytes());
    }
    let mut key = Sha256::new();
    key.update(b"nibble-data token cache v1\0");
    key.update(corpus.identity.as_bytes());
    key.update([0]);
    key.update(content.finalize());
    key.update([0]);
    key.update(tokenizer.as_bytes());
    key.finalize().into()
}

fn id_width(vocab_size: usize) -> usize {
    match vocab_size {
        0..=256 => 1,
        257..=65536 => 2,
        _ => 4,
    }
}

fn encode_cache(key: &[u8; 32], width: usize, doc_lens: &[usize], tokens: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 32 + 12 + 8 * doc_lens.len() + width * tokens.len() + 32);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key);
    out.extend_from_slice(&(width as u32).to_le_bytes());
    out.extend_from_slice(&(doc_lens.len() as u64).to_le_bytes());
    for &n in doc_lens {
        out.extend_from_slice(&(n as u64).to_le_bytes());
    }
    for &t in tokens {
        out.extend_from_slice(&t.to_le_bytes()[..width]);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

/// The cached tokens if the file exists and passes every check.
fn read_cache(path: &Path, key: &[u8; 32], n_docs: usize) -> Option<(Vec<u32>, Vec<usize>)> {
    let bytes = fs::read(path).ok()?;
    let body_len = bytes.len().checked_sub(32)?;
    let (body, digest) = bytes.split_at(body_len);
    if Sha256::digest(body).as_slice() != digest {
        return None;
    }
    let mut r = Reader { buf: body };
    if r.take(8)? != MAGIC || r.take(32)? != key {
        return None;
    }
    let width = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
    if !matches!(width, 1 | 2 | 4) || r.u64()? != n_docs as u64 {
        return None;
    }
    let doc_lens: Vec<usize> = (0..n_docs)
        .map(|_| r.u64().and_then(|n| usize::try_from(n).ok()))
        .collect::<Option<_>>()?;
    let total = doc_lens.iter().try_fold(0usize, |a, &n| a.checked_add(n))?;
    let ids = r.take(total.checked_mul(width)?)?;
    if !r.buf.is_empty() {
        return None;
    }
    let tokens = ids
        .chunks_exact(width)
        .map(|c| {
            let mut le = [0u8; 4];
            le[..width].copy_from_slice(c);
            u32::from_le_bytes(le)
        })
        .collect();
    Some((tokens, doc_lens))
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
}
