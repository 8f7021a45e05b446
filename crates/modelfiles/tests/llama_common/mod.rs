//! A tiny random Llama (with a small gpt2 tokenizer) for the llama import/export tests.
#![allow(dead_code)]

use crate::common::Rng;
use nibble_modelfiles::{LlamaConfig, LlamaModel, TokenizerParts};
use std::collections::BTreeMap;

/// 2 layers, hidden 256, ffn 512, 4 heads / 2 KV heads (head_dim 64), vocab 64: every row
/// length is a multiple of 256, so every GGUF weight type applies.
pub fn tiny_config(tied: bool) -> LlamaConfig {
    LlamaConfig {
        vocab_size: 64,
        hidden_size: 256,
        num_layers: 2,
        num_heads: 4,
        num_kv_heads: 2,
        intermediate_size: 512,
        rope_theta: 10000.0,
        rms_norm_eps: 1e-5,
        tie_embeddings: tied,
        max_position_embeddings: 128,
        bos_token_id: Some(1),
        eos_token_id: Some(2),
    }
}

pub fn tiny_tokenizer(n: usize) -> TokenizerParts {
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    let letters = "abcdefghijklmnopqrstuvwxyzĠ0123456789";
    for c in letters.chars() {
        tokens.push(c.to_string());
    }
    // The results of the two merges below (ids 40, 41).
    tokens.push("ab".into());
    tokens.push("Ġa".into());
    let mut i = 0;
    while tokens.len() < n {
        tokens.push(format!("Ġw{i}"));
        i += 1;
    }
    tokens.truncate(n);
    let mut token_types = vec![1; n];
    token_types[..3].fill(3);
    TokenizerParts {
        model: "gpt2".into(),
        pre: Some("smollm".into()),
        tokens,
        merges: vec!["Ġ a".into(), "a b".into()],
        token_types,
        bos: Some(1),
        eos: Some(2),
        unk: None,
        pad: Some(0),
        add_bos: false,
        add_eos: false,
        chat_template: Some("{% for m in messages %}{{ m['content'] }}{% endfor %}".into()),
    }
}

pub fn tiny_model(seed: u64, tied: bool) -> LlamaModel {
    let config = tiny_config(tied);
    let mut rng = Rng::new(seed);
    let mut tensors = BTreeMap::new();
    for (name, shape) in config.expected_tensors() {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = if shape.len() == 1 {
            (0..n).map(|_| 1.0 + rng.normal(0.05)).collect()
        } else {
            (0..n).map(|_| rng.normal(0.05)).collect()
        };
        tensors.insert(name, (shape, values));
    }
    LlamaModel {
        tokenizer: Some(tiny_tokenizer(config.vocab_size)),
        config,
        tensors,
        tokenizer_json: None,
        grids: Default::default(),
        biases: Default::default(),
    }
}

/// Bit-level equality of two tensor sets, with the first difference in the message.
pub fn assert_bits_equal(a: &nibble_modelfiles::HostTensors, b: &nibble_modelfiles::HostTensors) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, (sa, va)) in a {
        let (sb, vb) = &b[name];
        assert_eq!(sa, sb, "{name}");
        if let Some(i) = va
            .iter()
            .zip(vb)
            .position(|(x, y)| x.to_bits() != y.to_bits())
        {
            panic!("{name}[{i}]: {} != {}", va[i], vb[i]);
        }
    }
}
