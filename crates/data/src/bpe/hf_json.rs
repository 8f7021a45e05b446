//! The subset of HF `tokenizer.json` that a byte-level BPE needs.

use serde_json::Value;

use super::{BpeSpec, PreTokenizer, TokenType};
use crate::error::DataError;

pub(super) fn parse(name: &'static str, json: &str) -> Result<BpeSpec, DataError> {
    let err = |message: String| DataError::Tokenizer {
        name,
        message: format!("tokenizer.json: {message}"),
    };
    let root: Value = serde_json::from_str(json).map_err(|e| err(e.to_string()))?;
    let model = root.get("model").ok_or_else(|| err("no `model`".into()))?;
    match model.get("type").and_then(Value::as_str) {
        Some("BPE") | None => {}
        Some(other) => return Err(err(format!("model type {other:?} is not BPE"))),
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
        if let Some(v) = model.get(key).filter(|v| !v.is_null())
            && v.as_str() != Some("")
        {
            return Err(err(format!("model.{key} = {v} is not supported")));
        }
    }
    if model.get("byte_fallback").and_then(Value::as_bool) == Some(true) {
        return Err(err("model.byte_fallback = true is not supported".into()));
    }
    if let Some(d) = model.get("dropout").and_then(Value::as_f64)
        && d > 0.0
    {
        return Err(err(format!("model.dropout = {d} is not supported")));
    }
    if let Some(n) = root.get("normalizer").filter(|v| !v.is_null()) {
        return Err(err(format!("normalizer {n} is not supported")));
    }
    let pre_tokenizer = parse_pre_tokenizer(root.get("pre_tokenizer"))
        .map_err(|m| err(format!("pre_tokenizer: {m}")))?;

    let vocab = model
        .get("vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| err("model.vocab is not an object".into()))?;
    let mut entries: Vec<(usize, String, TokenType)> = Vec::with_capacity(vocab.len());
    for (tok, id) in vocab {
        let id = id
            .as_u64()
            .ok_or_else(|| err(format!("vocab id of {tok:?} is not an integer")))?;
        entries.push((id as usize, tok.clone(), TokenType::Normal));
    }
    if let Some(added) = root.get("added_tokens").and_then(Value::as_array) {
        for t in added {
            let id = t.get("id").and_then(Value::as_u64);
            let content = t.get("content").and_then(Value::as_str);
            let (Some(id), Some(content)) = (id, content) else {
                return Err(err(format!("added token {t} lacks id or content")));
            };
            let special = t.get("special").and_then(Value::as_bool).unwrap_or(false);
            let ty = if special {
                TokenType::Control
            } else {
                TokenType::UserDefined
            };
            entries.push((id as usize, content.to_owned(), ty));
        }
    }
    let n = entries.iter().map(|e| e.0 + 1).max().unwrap_or(0);
    let mut tokens: Vec<Option<String>> = vec![None; n];
    let mut token_types = vec![TokenType::Normal; n];
    for (id, tok, ty) in entries {
        // Added tokens come last and override a vocab entry with the same id.
        if let Some(old) = &tokens[id]
            && *old != tok
            && ty == TokenType::Normal
        {
            return Err(err(format!("id {id} is both {old:?} and {tok:?}")));
        }
        tokens[id] = Some(tok);
        token_types[id] = ty;
    }
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(id, t)| t.ok_or_else(|| err(format!("no token has id {id}"))))
        .collect::<Result<_, _>>()?;

    let merges = match model.get("merges") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .enumerate()
            .map(|(i, m)| merge_line(m).map_err(|e| err(format!("merge {i}: {e}"))))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(err(format!("model.merges is {other}, not a list"))),
    };
    let unk = match model.get("unk_token").and_then(Value::as_str) {
        Some(u) => Some(
            tokens
                .iter()
                .position(|t| t == u)
                .ok_or_else(|| err(format!("unk_token {u:?} is not a token")))? as u32,
        ),
        None => None,
    };
    let mut spec = BpeSpec::new(name, tokens, merges, pre_tokenizer);
    spec.token_types = token_types;
    spec.unk = unk;
    spec.ignore_merges = model
        .get("ignore_merges")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Ok(spec)
}

/// `"a b"` as is; `["a", "b"]` joined with a space (byte-level tokens never contain one).
fn merge_line(m: &Value) -> Result<String, String> {
    match m {
        Value::String(s) => Ok(s.clone()),
        Value::Array(pair) => match pair.as_slice() {
            [Value::String(a), Value::String(b)] => {
                if a.contains(' ') || b.contains(' ') {
                    Err(format!("{m}: a token with a space cannot be merged here"))
                } else {
                    Ok(format!("{a} {b}"))
                }
            }
            _ => Err(format!("{m} is not a pair of strings")),
        },
        _ => Err(format!("{m} is neither \"a b\" nor [a, b]")),
    }
}

fn parse_pre_tokenizer(v: Option<&Value>) -> Result<PreTokenizer, String> {
    let v = v
        .filter(|v| !v.is_null())
        .ok_or("missing (a byte-level BPE needs ByteLevel)")?;
    match v.get("type").and_then(Value::as_str) {
        Some("ByteLevel") => byte_level(v).map(|()| PreTokenizer::Gpt2),
        Some("Sequence") => {
            let parts = v
                .get("pretokenizers")
                .and_then(Value::as_array)
                .ok_or("Sequence without `pretokenizers`")?;
            match parts.as_slice() {
                [one] => parse_pre_tokenizer(Some(one)),
                [digits, bl]
                    if digits.get("type").and_then(Value::as_str) == Some("Digits")
                        && digits.get("individual_digits").and_then(Value::as_bool)
                            == Some(true)
                        && bl.get("type").and_then(Value::as_str) == Some("ByteLevel") =>
                {
                    byte_level(bl).map(|()| PreTokenizer::DigitsThenGpt2)
                }
                _ => Err(format!("unsupported sequence {v}")),
            }
        }
        _ => Err(format!("unsupported {v}")),
    }
}

fn byte_level(v: &Value) -> Result<(), String> {
    if v.get("add_prefix_space").and_then(Value::as_bool) == Some(true) {
        return Err(format!(
            "ByteLevel with add_prefix_space = true is not supported: {v}"
        ));
    }
    if v.get("use_regex").and_then(Value::as_bool) == Some(false) {
        return Err(format!(
            "ByteLevel with use_regex = false is not supported: {v}"
        ));
    }
    Ok(())
}
