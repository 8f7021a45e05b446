//! Tensor names: HF Llama <-> GGUF (gguf-py `TENSOR_NAMES` for `MODEL_ARCH.LLAMA`).

/// Per-layer suffixes: (HF after `model.layers.N.`, GGUF after `blk.N.`).
const LAYER_NAMES: [(&str, &str); 9] = [
    ("input_layernorm.weight", "attn_norm.weight"),
    ("self_attn.q_proj.weight", "attn_q.weight"),
    ("self_attn.k_proj.weight", "attn_k.weight"),
    ("self_attn.v_proj.weight", "attn_v.weight"),
    ("self_attn.o_proj.weight", "attn_output.weight"),
    ("post_attention_layernorm.weight", "ffn_norm.weight"),
    ("mlp.gate_proj.weight", "ffn_gate.weight"),
    ("mlp.up_proj.weight", "ffn_up.weight"),
    ("mlp.down_proj.weight", "ffn_down.weight"),
];

/// Whole-model names: (HF, GGUF).
const GLOBAL_NAMES: [(&str, &str); 3] = [
    ("model.embed_tokens.weight", "token_embd.weight"),
    ("model.norm.weight", "output_norm.weight"),
    ("lm_head.weight", "output.weight"),
];

/// Splits `<prefix><decimal layer>.<rest>`; rejects leading zeros so names map one to one.
fn split_layer<'a>(name: &'a str, prefix: &str) -> Option<(usize, &'a str)> {
    let rest = name.strip_prefix(prefix)?;
    let (num, tail) = rest.split_once('.')?;
    if num.is_empty() || (num.len() > 1 && num.starts_with('0')) {
        return None;
    }
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((num.parse().ok()?, tail))
}

/// The GGUF name of an HF tensor name, if it is a Llama tensor.
pub fn hf_to_gguf(name: &str) -> Option<String> {
    if let Some(&(_, g)) = GLOBAL_NAMES.iter().find(|(h, _)| *h == name) {
        return Some(g.to_string());
    }
    let (layer, tail) = split_layer(name, "model.layers.")?;
    let &(_, g) = LAYER_NAMES.iter().find(|(h, _)| *h == tail)?;
    Some(format!("blk.{layer}.{g}"))
}

/// The HF name of a GGUF tensor name, if it is a Llama tensor.
pub fn gguf_to_hf(name: &str) -> Option<String> {
    if let Some(&(h, _)) = GLOBAL_NAMES.iter().find(|(_, g)| *g == name) {
        return Some(h.to_string());
    }
    let (layer, tail) = split_layer(name, "blk.")?;
    let &(h, _) = LAYER_NAMES.iter().find(|(_, g)| *g == tail)?;
    Some(format!("model.layers.{layer}.{h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_both_ways() {
        assert_eq!(
            hf_to_gguf("model.layers.12.mlp.down_proj.weight").unwrap(),
            "blk.12.ffn_down.weight"
        );
        assert_eq!(
            gguf_to_hf("blk.0.attn_output.weight").unwrap(),
            "model.layers.0.self_attn.o_proj.weight"
        );
        assert_eq!(gguf_to_hf("output.weight").unwrap(), "lm_head.weight");
        assert_eq!(
            hf_to_gguf("model.norm.weight").unwrap(),
            "output_norm.weight"
        );
        assert!(gguf_to_hf("blk.01.attn_q.weight").is_none());
        assert!(gguf_to_hf("blk.x.attn_q.weight").is_none());
        assert!(gguf_to_hf("rope_freqs.weight").is_none());
        assert!(hf_to_gguf("model.layers.0.self_attn.rotary_emb.inv_freq").is_none());
        for (h, _) in LAYER_NAMES {
            let hf = format!("model.layers.7.{h}");
            assert_eq!(gguf_to_hf(&hf_to_gguf(&hf).unwrap()).unwrap(), hf);
        }
    }
}
