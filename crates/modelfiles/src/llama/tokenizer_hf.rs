//! HF `tokenizer.json` (+ `tokenizer_config.json`) -> [`TokenizerParts`], for byte-level BPE
//! tokenizers whose pre-tokenizer llama.cpp knows by name.

use super::tokenizer::{TokenizerParts, token_type};
use serde_json::Value as Json;
use std::collections::HashMap;

fn is_byte_level(j: &Json) -> bool {
    j.get("type") == Some(&Json::from("ByteLevel"))
        && j.get("add_prefix_space") != Some(&Json::Bool(true))
        && j.get("use_regex") != Some(&Json::Bool(false))
}

/// llama.cpp's `tokenizer.ggml.pre` name for a pre-tokenizer, if it is one this crate knows.
fn pre_name(pre: &Json) -> Option<&'static str> {
    if is_byte_level(pre) {
        // llama.cpp's name (`llama-vocab.cpp` maps `gpt-2` to its GPT-2 regex).
        return Some("gpt-2");
    }
    if pre.get("type") == Some(&Json::from("Sequence")) {
        let list = pre.get("pretokenizers")?.as_array()?;
        if let [digits, bl] = list.as_slice()
            && digits.get("type") == Some(&Json::from("Digits"))
            && digits.get("individual_digits") == Some(&Json::Bool(true))
            && is_byte_level(bl)
        {
            return Some("smollm");
        }
    }
    None
}

fn token_content(j: Option<&Json>) -> Option<&str> {
    match j? {
        Json::String(s) => Some(s),
        Json::Object(o) => o.get("content")?.as_str(),
        _ => None,
    }
}

/// The parts of a byte-level BPE `tokenizer.json`; `None` for anything else (another model
/// type, an unknown pre-tokenizer, non-contiguous ids, malformed JSON).
pub fn tokenizer_parts_from_hf(
    tokenizer_json: &str,
    tokenizer_config: Option<&str>,
) -> Option<TokenizerParts> {
    let j: Json = serde_json::from_str(tokenizer_json).ok()?;
    let model = j.get("model")?;
    if model.get("type")? != "BPE" {
        return None;
    }
    let pre = pre_name(j.get("pre_tokenizer")?)?;
    let mut by_id: HashMap<u64, (String, i32)> = HashMap::new();
    for (tok, id) in model.get("vocab")?.as_object()? {
        by_id.insert(id.as_u64()?, (tok.clone(), token_type::NORMAL));
    }
    for added in j
        .get("added_tokens")
        .and_then(Json::as_array)
        .map_or(&[][..], |v| v)
    {
        let id = added.get("id")?.as_u64()?;
        let content = added.get("content")?.as_str()?.to_string();
        let special = added
            .get("special")
            .and_then(Json::as_bool)
            .unwrap_or(false);
        let ty = if special {
            token_type::CONTROL
        } else {
            token_type::USER_DEFINED
        };
        by_id.insert(id, (content, ty));
    }
    let n = by_id.len() as u64;
    let mut tokens = Vec::with_capacity(n as usize);
    let mut token_types = Vec::with_capacity(n as usize);
    for id in 0..n {
        let (t, ty) = by_id.remove(&id)?;
        tokens.push(t);
        token_types.push(ty);
    }
    let mut merges = Vec::new();
    for m in model
        .get("merges")
        .and_then(Json::as_array)
        .map_or(&[][..], |v| v)
    {
        match m {
            Json::String(s) => merges.push(s.clone()),
            Json::Array(pair) if pair.len() == 2 => {
                merges.push(format!("{} {}", pair[0].as_str()?, pair[1].as_str()?))
            }
            _ => return None,
        }
    }
    let (bos, eos, unk, pad, add_bos, add_eos, chat_template) = {
        let index: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let cfg: Option<Json> = tokenizer_config.and_then(|t| serde_json::from_str(t).ok());
        let id_of = |key: &str| -> Option<u32> {
            let c = cfg.as_ref()?;
            index.get(token_content(c.get(key))?).copied()
        };
        let flag = |key: &str| {
            cfg.as_ref()
                .and_then(|c| c.get(key))
                .and_then(Json::as_bool)
                .unwrap_or(false)
        };
        (
            id_of("bos_token"),
            id_of("eos_token"),
            id_of("unk_token"),
            id_of("pad_token"),
            flag("add_bos_token"),
            flag("add_eos_token"),
            cfg.as_ref()
                .and_then(|c| c.get("chat_template"))
                .and_then(Json::as_str)
                .map(str::to_string),
        )
    };
    Some(TokenizerParts {
        model: "gpt2".into(),
        pre: Some(pre.into()),
        tokens,
        merges,
        token_types,
        bos,
        eos,
        unk,
        pad,
        add_bos,
        add_eos,
        chat_template,
    })
}
