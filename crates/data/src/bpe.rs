//! GPT-2-style byte-level BPE built from plain inputs (a token list, "a b" merge lines, token
//! types, special ids and a pre-tokenizer), e.g. SmolLM2's vocabulary as stored in its GGUF file,
//! or from a Hugging Face `tokenizer.json`.
//!
//! Encoding: optional special-token split (`<|im_start|>` → one id), then the pre-tokenizer
//! splits text into pieces, each piece's UTF-8 bytes are mapped to GPT-2's printable byte
//! alphabet and merged pairwise by merge rank (lowest rank first; among equal ranks the leftmost
//! pair first, which is what both GPT-2's reference code and HF `tokenizers` do). Results per piece
//! are cached, so a text with a few tens of thousands of distinct words encodes at several MB/s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::RwLock;

use fancy_regex::Regex;

use crate::error::DataError;
use crate::tokenizer::Tokenizer;

/// GPT-2's pre-tokenizer regex (also HF `ByteLevel { use_regex: true }` and llama.cpp's `gpt2`).
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

/// Pieces cached per tokenizer before the cache stops growing (bounds memory on huge corpora).
const CACHE_CAP: usize = 1 << 20;

const NONE: usize = usize::MAX;

/// How text is split into pieces before BPE merges (merges never cross a piece boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's regex over the whole text:
    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    Gpt2,
    /// Every `\p{N}` character is a piece of its own; the text between them is split with
    /// GPT-2's regex (each stretch on its own, so `(?!\S)` sees the stretch's end). This is
    /// SmolLM/SmolLM2's pre-tokenizer: HF `Sequence[Digits(individual_digits=true),
    /// ByteLevel(add_prefix_space=false, use_regex=true)]`, llama.cpp `tokenizer.ggml.pre =
    /// "smollm"` (regexes `\p{N}` then the GPT-2 one, shared with starcoder/refact/codeshell).
    DigitsThenGpt2,
}

impl PreTokenizer {
    /// The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value, for the names whose llama.cpp
    /// regex set is one of the variants above; `None` for anything else.
    pub fn from_gguf_pre(name: &str) -> Option<Self> {
        match name {
            "gpt-2" => Some(PreTokenizer::Gpt2),
            "smollm" | "starcoder" | "refact" | "codeshell" => Some(PreTokenizer::DigitsThenGpt2),
            _ => None,
        }
    }
}

/// Token types as in GGUF's `tokenizer.ggml.token_type` (llama.cpp's `llama_token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Undefined,
    Normal,
    Unknown,
    /// Control tokens (`<|im_start|>`, `<|endoftext|>`): matched as a whole when specials are
    /// parsed, never produced by BPE merges.
    Control,
    /// Added tokens that are not control tokens; treated like control tokens when splitting.
    UserDefined,
    Unused,
    Byte,
}

impl TokenType {
    /// From the GGUF integer (0 undefined, 1 normal, 2 unknown, 3 control, 4 user-defined,
    /// 5 unused, 6 byte); other values are `Undefined`.
    pub fn from_gguf(value: i32) -> Self {
        match value {
            1 => TokenType::Normal,
            2 => TokenType::Unknown,
            3 => TokenType::Control,
            4 => TokenType::UserDefined,
            5 => TokenType::Unused,
            6 => TokenType::Byte,
            _ => TokenType::Undefined,
        }
    }

    /// Whether text equal to this token is split out as one id when specials are parsed.
    pub fn is_special(self) -> bool {
        matches!(self, TokenType::Control | TokenType::UserDefined)
    }
}

/// Everything a [`BpeTokenizer`] is built from.
#[derive(Debug, Clone)]
pub struct BpeSpec {
    /// Name reported by [`Tokenizer::name`] (and so used in token-cache keys).
    pub name: &'static str,
    /// Id → token string, normal tokens in GPT-2's byte-level alphabet (`Ġ` for a space).
    pub tokens: Vec<String>,
    /// Merge lines `"a b"`; the rank of a merge is its index (lower merges first).
    pub merges: Vec<String>,
    /// Id → type; empty means every token is `Normal`.
    pub token_types: Vec<TokenType>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// Emitted for a byte whose single-byte token is missing from the vocabulary.
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    /// Whether [`BpeTokenizer::encode_with`] with `add_special = true` prepends `bos`.
    pub add_bos: bool,
    /// Whether [`BpeTokenizer::encode_with`] with `add_special = true` appends `eos`.
    pub add_eos: bool,
    pub pre_tokenizer: PreTokenizer,
    /// HF `ignore_merges`: a piece that is itself a token is emitted without merging.
    pub ignore_merges: bool,
}

impl BpeSpec {
    /// A spec with no special ids, no BOS/EOS added and every token `Normal`.
    pub fn new(
        name: &'static str,
        tokens: Vec<String>,
        merges: Vec<String>,
        pre_tokenizer: PreTokenizer,
    ) -> Self {
        BpeSpec {
            name,
            tokens,
            merges,
            token_types: Vec::new(),
            bos: None,
            eos: None,
            unk: None,
            pad: None,
            add_bos: false,
            add_eos: false,
            pre_tokenizer,
            ignore_merges: false,
        }
    }

    /// Reads a Hugging Face `tokenizer.json` with a byte-level BPE model: `model.vocab`,
    /// `model.merges` (`"a b"` strings or `["a", "b"]` pairs), `model.unk_token`,
    /// `model.ignore_merges`, `added_tokens` (special → `Control`, others → `UserDefined`) and a
    /// `pre_tokenizer` that is `ByteLevel` or `Sequence[Digits(individual_digits), ByteLevel]`.
    /// BOS/EOS are not part of `tokenizer.json` (they live in `tokenizer_config.json`): set
    /// `bos`, `eos`, `add_bos` on the result if needed. Unsupported settings (normalizers,
    /// `add_prefix_space`, byte fallback, subword prefixes, dropout) are errors, not ignored.
    pub fn from_tokenizer_json(name: &'static str, json: &str) -> Result<Self, DataError> {
        hf_json::parse(name, json)
    }
}

/// A byte-level BPE tokenizer. Cheap to share across threads (`Send + Sync`).
pub struct BpeTokenizer {
    name: &'static str,
    /// Id → the bytes it decodes to.
    token_bytes: Vec<Vec<u8>>,
    token_types: Vec<TokenType>,
    /// Byte-level token string → id.
    vocab: HashMap<String, u32>,
    /// Id of the single-byte token for each byte value.
    byte_ids: [Option<u32>; 256],
    /// (left, right) → (rank, merged id).
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Special tokens' text and id, longest first.
    specials: Vec<(String, u32)>,
    /// Whether some special token starts with this byte.
    special_first: [bool; 256],
    bos: Option<u32>,
    eos: Option<u32>,
    unk: Option<u32>,
    pad: Option<u32>,
    add_bos: bool,
    add_eos: bool,
    pre_tokenizer: PreTokenizer,
    ignore_merges: bool,
    regex: Regex,
    cache: RwLock<HashMap<String, Vec<u32>>>,
}

impl fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("name", &self.name)
            .field("vocab_size", &self.token_bytes.len())
            .field("merges", &self.merges.len())
            .field("specials", &self.specials.len())
            .field("pre_tokenizer", &self.pre_tokenizer)
            .field("add_bos", &self.add_bos)
            .finish_non_exhaustive()
    }
}

impl BpeTokenizer {
    /// Builds the tokenizer; every merge's two parts and their concatenation must be tokens.
    pub fn new(spec: BpeSpec) -> Result<Self, DataError> {
        let name = spec.name;
        let err = |message: String| DataError::Tokenizer { name, message };
        let n = spec.tokens.len();
        if n == 0 || n > u32::MAX as usize {
            return Err(err(format!("vocabulary size {n} is out of range")));
        }
        if !spec.token_types.is_empty() && spec.token_types.len() != n {
            return Err(err(format!(
                "{} token types for {n} tokens",
                spec.token_types.len()
            )));
        }
        for (what, id) in [
            ("bos", spec.bos),
            ("eos", spec.eos),
            ("unk", spec.unk),
            ("pad", spec.pad),
        ] {
            if let Some(id) = id
                && id as usize >= n
            {
                return Err(err(format!("{what} id {id} is outside the {n} tokens")));
            }
        }
        if spec.add_bos && spec.bos.is_none() {
            return Err(err("add_bos is set but there is no bos id".into()));
        }
        if spec.add_eos && spec.eos.is_none() {
            return Err(err("add_eos is set but there is no eos id".into()));
        }
        let token_types = if spec.token_types.is_empty() {
            vec![TokenType::Normal; n]
        } else {
            spec.token_types
        };
        let decoder = unicode_to_byte();
        let mut vocab = HashMap::with_capacity(n);
        let mut token_bytes = Vec::with_capacity(n);
        let mut specials = Vec::new();
        for (id, (tok, ty)) in spec.tokens.iter().zip(&token_types).enumerate() {
            let id = id as u32;
            vocab.entry(tok.clone()).or_insert(id);
            if ty.is_special() {
                token_bytes.push(tok.as_bytes().to_vec());
                if !tok.is_empty() {
                    specials.push((tok.clone(), id));
                }
            } else {
                token_bytes.push(byte_level_decode(tok, &decoder));
            }
        }
        // Longest first, so a special that is a prefix of another never wins.
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let mut special_first = [false; 256];
        for (s, _) in &specials {
            special_first[s.as_bytes()[0] as usize] = true;
        }
        let encoder = byte_to_unicode();
        let mut byte_ids = [None; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            *slot = vocab.get(encoder[b].to_string().as_str()).copied();
        }
        let mut merges = HashMap::with_capacity(spec.merges.len());
        for (rank, line) in spec.merges.iter().enumerate() {
            let bad = |why: &str| err(format!("merge {rank} {line:?}: {why}"));
            let mut parts = line.split(' ');
            let (Some(a), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(bad("expected two tokens separated by one space"));
            };
            let id_of = |t: &str| {
                vocab
                    .get(t)
                    .copied()
                    .ok_or_else(|| bad(&format!("{t:?} is not in the vocabulary")))
            };
            let (ia, ib, im) = (id_of(a)?, id_of(b)?, id_of(&format!("{a}{b}"))?);
            // Like GPT-2's `dict(zip(merges, range(...)))`: a repeated merge keeps the last rank.
            merges.insert((ia, ib), (rank as u32, im));
        }
        let regex = Regex::new(GPT2_PATTERN).map_err(|e| err(e.to_string()))?;
        Ok(BpeTokenizer {
            name,
            token_bytes,
            token_types,
            vocab,
            byte_ids,
            merges,
            specials,
            special_first,
            bos: spec.bos,
            eos: spec.eos,
            unk: spec.unk,
            pad: spec.pad,
            add_bos: spec.add_bos,
            add_eos: spec.add_eos,
            pre_tokenizer: spec.pre_tokenizer,
            ignore_merges: spec.ignore_merges,
            regex,
            cache: RwLock::new(HashMap::new()),
        })
    }

    /// Builds the tokenizer from the text of a HF `tokenizer.json` (see
    /// [`BpeSpec::from_tokenizer_json`]).
    pub fn from_tokenizer_json(name: &'static str, json: &str) -> Result<Self, DataError> {
        Self::new(BpeSpec::from_tokenizer_json(name, json)?)
    }

    /// Reads and builds from a `tokenizer.json` file.
    pub fn from_tokenizer_json_file(name: &'static str, path: &Path) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::io("read", path, e))?;
        Self::from_tokenizer_json(name, &text)
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.eos
    }

    pub fn unk_id(&self) -> Option<u32> {
        self.unk
    }

    pub fn pad_id(&self) -> Option<u32> {
        self.pad
    }

    /// Whether the model expects BOS in front of a prompt (`encode_with(.., add_special: true)`).
    pub fn add_bos(&self) -> bool {
        self.add_bos
    }

    pub fn add_eos(&self) -> bool {
        self.add_eos
    }

    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.pre_tokenizer
    }

    /// The id of a token string (byte-level alphabet for normal tokens, literal for specials).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.vocab.get(token).copied()
    }

    /// The type of a token id.
    pub fn token_type(&self, id: u32) -> Option<TokenType> {
        self.token_types.get(id as usize).copied()
    }

    /// The bytes `id` decodes to.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.token_bytes.get(id as usize).map(Vec::as_slice)
    }

    /// Ids of `text`. With `parse_specials`, the text of a special token (control or
    /// user-defined, e.g. `<|im_start|>`) becomes its id (leftmost, longest match); otherwise it
    /// is ordinary text. With `add_special`, BOS/EOS are added where `add_bos`/`add_eos` say so.
    pub fn encode_with(&self, text: &str, parse_specials: bool, add_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.extend(self.bos);
        }
        if parse_specials && !self.specials.is_empty() {
            let mut start = 0;
            let mut i = 0;
            let bytes = text.as_bytes();
            while i < bytes.len() {
                match self.special_at(&text[i..]) {
                    Some((len, id)) => {
                        self.encode_ordinary_into(&text[start..i], &mut out);
                        out.push(id);
                        i += len;
                        start = i;
                    }
                    None => {
                        i += 1;
                        while i < bytes.len() && !text.is_char_boundary(i) {
                            i += 1;
                        }
                    }
                }
            }
            self.encode_ordinary_into(&text[start..], &mut out);
        } else {
            self.encode_ordinary_into(text, &mut out);
        }
        if add_special && self.add_eos {
            out.extend(self.eos);
        }
        out
    }

    /// Ids of `text` as plain text: no special tokens parsed, no BOS/EOS.
    pub fn encode_ordinary(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 1);
        self.encode_ordinary_into(text, &mut out);
        out
    }

    /// The bytes of `ids` concatenated (unknown ids contribute U+FFFD's bytes).
    pub fn decode_bytes(&self, ids: &[u32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.token_bytes.get(id as usize) {
                Some(b) => out.extend_from_slice(b),
                None => out.extend_from_slice("\u{FFFD}".as_bytes()),
            }
        }
        out
    }

    /// The pieces the pre-tokenizer splits `text` into (for tests and debugging).
    pub fn pre_tokenize<'t>(&self, text: &'t str) -> Vec<&'t str> {
        let mut pieces = Vec::new();
        self.for_each_piece(text, |p| pieces.push(p));
        pieces
    }

    fn special_at(&self, rest: &str) -> Option<(usize, u32)> {
        if !self.special_first[rest.as_bytes()[0] as usize] {
            return None;
        }
        self.specials
            .iter()
            .find(|(s, _)| rest.starts_with(s.as_str()))
            .map(|(s, id)| (s.len(), *id))
    }

    fn encode_ordinary_into(&self, text: &str, out: &mut Vec<u32>) {
        self.for_each_piece(text, |piece| self.encode_piece(piece, out));
    }

    fn for_each_piece<'t>(&self, text: &'t str, mut f: impl FnMut(&'t str)) {
        match self.pre_tokenizer {
            PreTokenizer::Gpt2 => self.regex_split(text, &mut f),
            PreTokenizer::DigitsThenGpt2 => {
                let mut start = 0;
                for (i, c) in text.char_indices() {
                    if c.is_numeric() {
                        self.regex_split(&text[start..i], &mut f);
                        let end = i + c.len_utf8();
                        f(&text[i..end]);
                        start = end;
                    }
                }
                self.regex_split(&text[start..], &mut f);
            }
        }
    }

    /// Splits with GPT-2's regex; text the regex does not match (it matches everything, but a
    /// regex-engine error would leave a rest) becomes a piece of its own.
    fn regex_split<'t>(&self, text: &'t str, f: &mut impl FnMut(&'t str)) {
        let mut last = 0;
        for m in self.regex.find_iter(text) {
            let Ok(m) = m else { break };
            if m.start() > last {
                f(&text[last..m.start()]);
            }
            if m.end() > m.start() {
                f(m.as_str());
            }
            last = m.end();
        }
        if last < text.len() {
            f(&text[last..]);
        }
    }

    fn encode_piece(&self, piece: &str, out: &mut Vec<u32>) {
        if piece.is_empty() {
            return;
        }
        if let Ok(cache) = self.cache.read()
            && let Some(ids) = cache.get(piece)
        {
            out.extend_from_slice(ids);
            return;
        }
        let ids = self.bpe(piece);
        out.extend_from_slice(&ids);
        if let Ok(mut cache) = self.cache.write()
            && cache.len() < CACHE_CAP
        {
            cache.insert(piece.to_owned(), ids);
        }
    }

    /// BPE over one piece: byte tokens, then repeatedly the lowest-ranked adjacent pair
    /// (leftmost on ties) is merged until no adjacent pair has a merge.
    fn bpe(&self, piece: &str) -> Vec<u32> {
        if self.ignore_merges {
            let encoder = byte_to_unicode();
            let s: String = piece.bytes().map(|b| encoder[b as usize]).collect();
            if let Some(&id) = self.vocab.get(&s) {
                return vec![id];
            }
        }
        let mut ids: Vec<u32> = Vec::with_capacity(piece.len());
        for b in piece.bytes() {
            match (self.byte_ids[b as usize], self.unk) {
                (Some(id), _) | (None, Some(id)) => ids.push(id),
                (None, None) => {}
            }
        }
        let n = ids.len();
        if n < 2 {
            return ids;
        }
        let mut next: Vec<usize> = (1..=n).map(|i| if i == n { NONE } else { i }).collect();
        let mut prev: Vec<usize> = (0..n).map(|i| if i == 0 { NONE } else { i - 1 }).collect();
        let mut alive = vec![true; n];
        // Min-heap on (rank, position); entries go stale when a side is merged away and are
        // checked against the current symbols when popped.
        let mut heap = BinaryHeap::with_capacity(n);
        for i in 0..n - 1 {
            if let Some(&(rank, _)) = self.merges.get(&(ids[i], ids[i + 1])) {
                heap.push(Reverse((rank, i, ids[i], ids[i + 1])));
            }
        }
        while let Some(Reverse((_, pos, left, right))) = heap.pop() {
            let nx = next[pos];
            if !alive[pos] || ids[pos] != left || nx == NONE || ids[nx] != right {
                continue;
            }
            let Some(&(_, merged)) = self.merges.get(&(left, right)) else {
                continue;
            };
            ids[pos] = merged;
            alive[nx] = false;
            let after = next[nx];
            next[pos] = after;
            if after != NONE {
                prev[after] = pos;
                if let Some(&(rank, _)) = self.merges.get(&(merged, ids[after])) {
                    heap.push(Reverse((rank, pos, merged, ids[after])));
                }
            }
            let before = prev[pos];
            if before != NONE
                && let Some(&(rank, _)) = self.merges.get(&(ids[before], merged))
            {
                heap.push(Reverse((rank, before, ids[before], merged)));
            }
        }
        let mut out = Vec::new();
        let mut i = 0;
        while i != NONE {
            out.push(ids[i]);
            i = next[i];
        }
        out
    }
}

impl Tokenizer for BpeTokenizer {
    fn name(&self) -> &'static str {
        self.name
    }

    fn vocab_size(&self) -> usize {
        self.token_bytes.len()
    }

    /// Plain text, like the other tokenizers: specials are not parsed and no BOS/EOS is added
    /// (use [`BpeTokenizer::encode_with`] for prompts).
    fn encode(&self, text: &str) -> Vec<u32> {
        self.encode_ordinary(text)
    }

    fn decode(&self, ids: &[u32]) -> String {
        String::from_utf8_lossy(&self.decode_bytes(ids)).into_owned()
    }
}

mod byte_level;
mod hf_json;

pub use byte_level::byte_to_unicode;
use byte_level::{byte_level_decode, unicode_to_byte};
