//! The tokenizer as GGUF stores it (`tokenizer.ggml.*`), and the HF files built from it
//! (`tokenizer.json`, `tokenizer_config.json`).

use super::error::ModelFileError;
use crate::gguf::{Array, GgufFile, GgufWriter, Value};
use serde_json::{Map, Value as Json, json};
use std::path::Path;

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
pub mod token_type {
    pub const NORMAL: i32 = 1;
    pub const UNKNOWN: i32 = 2;
    pub const CONTROL: i32 = 3;
    pub const USER_DEFINED: i32 = 4;
    pub const UNUSED: i32 = 5;
    pub const BYTE: i32 = 6;
}

/// A byte-level BPE tokenizer in GGUF's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenizerParts {
    /// `tokenizer.ggml.model`; only `"gpt2"` (byte-level BPE) is supported.
    pub model: String,
    /// `tokenizer.ggml.pre`: llama.cpp's pre-tokenizer name (e.g. `"smollm"`).
    pub pre: Option<String>,
    pub tokens: Vec<String>,
    /// `"a b"` merge rules, highest priority first.
    pub merges: Vec<String>,
    /// One [`token_type`] per token (empty: all normal).
    pub token_types: Vec<i32>,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub unk: Option<u32>,
    pub pad: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub chat_template: Option<String>,
}

const K_MODEL: &str = "tokenizer.ggml.model";
const K_PRE: &str = "tokenizer.ggml.pre";
const K_TOKENS: &str = "tokenizer.ggml.tokens";
const K_MERGES: &str = "tokenizer.ggml.merges";
const K_TYPES: &str = "tokenizer.ggml.token_type";
const K_BOS: &str = "tokenizer.ggml.bos_token_id";
const K_EOS: &str = "tokenizer.ggml.eos_token_id";
const K_UNK: &str = "tokenizer.ggml.unknown_token_id";
const K_PAD: &str = "tokenizer.ggml.padding_token_id";
const K_ADD_BOS: &str = "tokenizer.ggml.add_bos_token";
const K_ADD_EOS: &str = "tokenizer.ggml.add_eos_token";
const K_TEMPLATE: &str = "tokenizer.chat_template";

fn key_err(path: &Path, key: &str, e: crate::GgufError) -> ModelFileError {
    ModelFileError::new(format!("GGUF: {}", e.kind))
        .with_file(path)
        .with_key(key)
}

impl TokenizerParts {
    /// Reads `tokenizer.ggml.*` from a GGUF. `None` when there is no tokenizer
    /// (`tokenizer.ggml.model` absent or `"no_vocab"`); an error for tokenizer models other than
    /// `"gpt2"` and for malformed keys, naming the file and key.
    pub fn from_gguf(f: &GgufFile, path: &Path) -> Result<Option<Self>, ModelFileError> {
        let model = match f.metadata(K_MODEL) {
            None => return Ok(None),
            Some(_) => f.get_str(K_MODEL).map_err(|e| key_err(path, K_MODEL, e))?,
        };
        if model == "no_vocab" {
            return Ok(None);
        }
        if model != "gpt2" {
            return Err(ModelFileError::new(format!(
                "tokenizer model '{model}' is not supported (only \"gpt2\" byte-level BPE)"
            ))
            .with_file(path)
            .with_key(K_MODEL));
        }
        let opt_str = |k: &str| -> Result<Option<String>, ModelFileError> {
            match f.metadata(k) {
                None => Ok(None),
                Some(_) => Ok(Some(
                    f.get_str(k).map_err(|e| key_err(path, k, e))?.to_string(),
                )),
            }
        };
        let opt_id = |k: &str| -> Result<Option<u32>, ModelFileError> {
            match f.metadata(k) {
                None => Ok(None),
                Some(_) => {
                    let v = f.get_uint(k).map_err(|e| key_err(path, k, e))?;
                    u32::try_from(v).map(Some).map_err(|_| {
                        ModelFileError::new(format!("token id {v} does not fit u32"))
                            .with_file(path)
                            .with_key(k)
                    })
                }
            }
        };
        let opt_bool = |k: &str| -> Result<bool, ModelFileError> {
            match f.metadata(k) {
                None => Ok(false),
                Some(_) => f.get_bool(k).map_err(|e| key_err(path, k, e)),
            }
        };
        let tokens = f
            .get_str_array(K_TOKENS)
            .map_err(|e| key_err(path, K_TOKENS, e))?
            .to_vec();
        let merges = match f.metadata(K_MERGES) {
            None => Vec::new(),
            Some(_) => f
                .get_str_array(K_MERGES)
                .map_err(|e| key_err(path, K_MERGES, e))?
                .to_vec(),
        };
        let token_types = match f.metadata(K_TYPES) {
            None => Vec::new(),
            Some(_) => f
                .get_i32_array(K_TYPES)
                .map_err(|e| key_err(path, K_TYPES, e))?
                .to_vec(),
        };
        let parts = Self {
            model: model.to_string(),
            pre: opt_str(K_PRE)?,
            tokens,
            merges,
            token_types,
            bos: opt_id(K_BOS)?,
            eos: opt_id(K_EOS)?,
            unk: opt_id(K_UNK)?,
            pad: opt_id(K_PAD)?,
            add_bos: opt_bool(K_ADD_BOS)?,
            add_eos: opt_bool(K_ADD_EOS)?,
            chat_template: opt_str(K_TEMPLATE)?,
        };
        parts
            .validate()
            .map_err(|e| e.with_file(path).with_key("tokenizer.ggml"))?;
        Ok(Some(parts))
    }

    /// Consistency: a gpt2 model, one type per token (or none), special ids in range.
    pub fn validate(&self) -> Result<(), ModelFileError> {
        if self.model != "gpt2" {
            return Err(ModelFileError::new(format!(
                "tokenizer model '{}' is not supported (only \"gpt2\")",
                self.model
            )));
        }
        if !self.token_types.is_empty() && self.token_types.len() != self.tokens.len() {
            return Err(ModelFileError::new(format!(
                "{} token types for {} tokens",
                self.token_types.len(),
                self.tokens.len()
            )));
        }
        for (what, id) in [
            ("bos", self.bos),
            ("eos", self.eos),
            ("unk", self.unk),
            ("pad", self.pad),
        ] {
            if let Some(id) = id
                && id as usize >= self.tokens.len()
            {
                return Err(ModelFileError::new(format!(
                    "{what} token id {id} is out of range ({} tokens)",
                    self.tokens.len()
                )));
            }
        }
        Ok(())
    }

    /// Adds the `tokenizer.ggml.*` keys (and `tokenizer.chat_template`) to a writer.
    pub fn write_gguf(&self, w: &mut GgufWriter) -> Result<(), ModelFileError> {
        self.validate()?;
        let mut add = |k: &str, v: Value| -> Result<(), ModelFileError> {
            w.add_metadata(k, v)
                .map(|_| ())
                .map_err(|e| ModelFileError::from(e).with_key(k))
        };
        add(K_MODEL, Value::String(self.model.clone()))?;
        if let Some(pre) = &self.pre {
            add(K_PRE, Value::String(pre.clone()))?;
        }
        add(K_TOKENS, Value::Array(Array::String(self.tokens.clone())))?;
        if !self.token_types.is_empty() {
            add(K_TYPES, Value::Array(Array::I32(self.token_types.clone())))?;
        }
        add(K_MERGES, Value::Array(Array::String(self.merges.clone())))?;
        for (k, id) in [
            (K_BOS, self.bos),
            (K_EOS, self.eos),
            (K_UNK, self.unk),
            (K_PAD, self.pad),
        ] {
            if let Some(id) = id {
                add(k, Value::U32(id))?;
            }
        }
        add(K_ADD_BOS, Value::Bool(self.add_bos))?;
        add(K_ADD_EOS, Value::Bool(self.add_eos))?;
        if let Some(t) = &self.chat_template {
            add(K_TEMPLATE, Value::String(t.clone()))?;
        }
        Ok(())
    }

    fn token_type(&self, id: usize) -> i32 {
        self.token_types
            .get(id)
            .copied()
            .unwrap_or(token_type::NORMAL)
    }

    fn token_text(&self, id: Option<u32>) -> Json {
        id.and_then(|i| self.tokens.get(i as usize))
            .map_or(Json::Null, |t| Json::String(t.clone()))
    }

    /// An HF `tokenizer.json`: a byte-level BPE model with these tokens and merges, the
    /// pre-tokenizer llama.cpp's `pre` name stands for, a ByteLevel decoder, and the control
    /// (special) and user-defined tokens as added tokens. Supported `pre`: `smollm`
    /// (individual digits, then byte-level with the GPT-2 regex), `gpt2`/`default`/none
    /// (byte-level with the GPT-2 regex); others are an error naming the value.
    pub fn to_tokenizer_json(&self) -> Result<String, ModelFileError> {
        self.validate()?;
        let byte_level = json!({
            "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true
        });
        let pre_tokenizer = match self.pre.as_deref() {
            Some("smollm") => json!({
                "type": "Sequence",
                "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level],
            }),
            // llama.cpp names GPT-2's pre-tokenizer `gpt-2`; `gpt2` and `default` are aliases.
            None | Some("gpt-2") | Some("gpt2") | Some("default") => byte_level,
            Some(other) => {
                return Err(ModelFileError::new(format!(
                    "cannot build tokenizer.json for pre-tokenizer '{other}' \
                     (supported: smollm, gpt-2, default)"
                ))
                .with_key(K_PRE));
            }
        };
        let mut vocab = Map::new();
        for (i, t) in self.tokens.iter().enumerate() {
            vocab.insert(t.clone(), json!(i));
        }
        let added: Vec<Json> = (0..self.tokens.len())
            .filter_map(|i| {
                let ty = self.token_type(i);
                (ty == token_type::CONTROL || ty == token_type::USER_DEFINED).then(|| {
                    json!({
                        "id": i, "content": self.tokens[i], "single_word": false,
                        "lstrip": false, "rstrip": false, "normalized": false,
                        "special": ty == token_type::CONTROL,
                    })
                })
            })
            .collect();
        let tok = json!({
            "version": "1.0",
            "truncation": null,
            "padding": null,
            "added_tokens": added,
            "normalizer": null,
            "pre_tokenizer": pre_tokenizer,
            "post_processor": {
                "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true
            },
            "decoder": {
                "type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true
            },
            "model": {
                "type": "BPE", "dropout": null, "unk_token": self.token_text(self.unk),
                "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": self.merges,
            },
        });
        serde_json::to_string_pretty(&tok)
            .map_err(|e| ModelFileError::new(format!("cannot serialize tokenizer.json: {e}")))
    }

    /// An HF `tokenizer_config.json` for these parts.
    pub fn to_tokenizer_config_json(&self, model_max_length: usize) -> String {
        let mut m = Map::new();
        m.insert("add_bos_token".into(), json!(self.add_bos));
        m.insert("add_eos_token".into(), json!(self.add_eos));
        m.insert("bos_token".into(), self.token_text(self.bos));
        m.insert("eos_token".into(), self.token_text(self.eos));
        m.insert("unk_token".into(), self.token_text(self.unk));
        m.insert("pad_token".into(), self.token_text(self.pad));
        m.insert("clean_up_tokenization_spaces".into(), json!(false));
        m.insert("model_max_length".into(), json!(model_max_length));
        m.insert("tokenizer_class".into(), json!("PreTrainedTokenizerFast"));
        if let Some(t) = &self.chat_template {
            m.insert("chat_template".into(), json!(t));
        }
        serde_json::to_string_pretty(&Json::Object(m)).expect("JSON of plain values")
    }
}
