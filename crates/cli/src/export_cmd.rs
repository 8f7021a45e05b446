//! `nibble export`: a checkpoint's model as files serving engines load: GGUF (llama.cpp) or a
//! Hugging Face directory (transformers, vLLM). The weights written are those the model computes
//! with: each projection through its techniques (an N:M mask applied, an LSQ weight on its
//! grid), so what was trained is what is served. A projection trained on a GGUF grid
//! (`[qat] method = "ggml"`) exported to that same type is the exception: its master weight is
//! written, which the format's quantizer (the grid's own function) encodes to exactly the trained
//! codes and scales; writing the fake-quantized weight would re-quantize it lossily. The tokenizer is the `[init]` model's, or the
//! `bytes` tokenizer written as a byte-level vocabulary without merges.

use std::path::Path;

use burn::backend::Flex;
use nibble_data::{TokenizerKind, byte_to_unicode};
use nibble_modelfiles::GgmlType;
use nibble_modelfiles::llama::{
    GgufWeightType, HfDtype, HostTensors, LlamaConfig, LlamaModel, TokenizerParts, export_gguf,
    export_hf_dir,
};
use nibble_train::trainer::Parts;

use crate::run_path::{load_checkpoint, run_parts, run_recipe};

/// The formats `--format` accepts.
pub const FORMATS: [&str; 9] = [
    "gguf-f32",
    "gguf-f16",
    "gguf-q8_0",
    "gguf-q4_0",
    "gguf-mxfp4",
    "gguf-tq1_0",
    "gguf-tq2_0",
    "hf",
    "hf-f32",
];

enum Target {
    Gguf(GgufWeightType),
    Hf(HfDtype),
}

fn target(format: &str) -> Option<Target> {
    Some(match format {
        "gguf-f32" => Target::Gguf(GgufWeightType::F32),
        "gguf-f16" => Target::Gguf(GgufWeightType::F16),
        "gguf-q8_0" => Target::Gguf(GgufWeightType::Q8_0),
        "gguf-q4_0" => Target::Gguf(GgufWeightType::Q4_0),
        "gguf-mxfp4" => Target::Gguf(GgufWeightType::Mxfp4),
        "gguf-tq1_0" => Target::Gguf(GgufWeightType::Tq1_0),
        "gguf-tq2_0" => Target::Gguf(GgufWeightType::Tq2_0),
        "hf" => Target::Hf(HfDtype::Bf16),
        "hf-f32" => Target::Hf(HfDtype::F32),
        _ => return None,
    })
}

pub fn run(checkpoint: &Path, format: &str, out: &Path) -> Result<(), (u8, String)> {
    let target = target(format).ok_or_else(|| {
        (
            2,
            format!("--format: `{format}` is not one of {}", FORMATS.join(", ")),
        )
    })?;
    let (recipe, ck) = run_recipe(checkpoint)?;
    // Exports are host work: the CPU backend, whatever device the run trained on.
    let dev = Default::default();
    let mut parts = run_parts::<Flex>(&recipe, &dev)?;
    let state = load_checkpoint(&ck, &mut parts, &dev)?;
    let grid = match target {
        Target::Gguf(t) => Some(t.ggml_type()),
        Target::Hf(_) => None,
    };
    let model = llama_model(&parts, state.step, grid).map_err(|m| (2, m))?;
    let t0 = std::time::Instant::now();
    let written = match target {
        Target::Gguf(t) => export_gguf(&model, t, out),
        Target::Hf(d) => export_hf_dir(&model, d, out),
    };
    written.map_err(|e| (2, format!("--format {format}: {e}")))?;
    println!(
        "{} (step {}) -> {} ({format}, {:.2} s)",
        ck.display(),
        state.step,
        out.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The checkpoint's model as host tensors with HF names, its config and tokenizer; `grid`: the
/// GGUF type written (see `Llama::export_weights`).
fn llama_model(
    parts: &Parts<Flex>,
    step: u64,
    grid: Option<GgmlType>,
) -> Result<LlamaModel, String> {
    let a = &parts.arch;
    let origin = parts.origin.as_ref();
    let config = LlamaConfig {
        vocab_size: a.vocab_size,
        hidden_size: a.d_model,
        num_layers: a.n_layers,
        num_heads: a.n_heads,
        num_kv_heads: a.n_kv_heads,
        intermediate_size: a.d_ff,
        rope_theta: a.rope_theta,
        rms_norm_eps: a.norm_eps,
        tie_embeddings: a.tie_embeddings,
        max_position_embeddings: origin.map_or(a.seq_len, |o| o.max_position_embeddings),
        bos_token_id: origin.and_then(|o| o.bos_token_id),
        eos_token_id: origin.and_then(|o| o.eos_token_id),
    };
    let weights = parts.model.export_weights(&parts.params, step, grid)?;
    let tensors: HostTensors = weights
        .into_iter()
        .map(|(name, t)| {
            let [r, c] = t.dims();
            // Norm weights are `[1, d]` in Nibble, vectors in every model file.
            let shape = if r == 1 && name.ends_with("norm.weight") {
                vec![c]
            } else {
                vec![r, c]
            };
            let v = t
                .into_data()
                .convert::<f32>()
                .into_vec::<f32>()
                .expect("f32");
            (name, (shape, v))
        })
        .collect();
    let tokenizer = match origin {
        Some(o) => o.tokenizer.clone(),
        None if parts.data.tokenizer == TokenizerKind::Bytes => Some(bytes_vocab()),
        None => None,
    };
    Ok(LlamaModel {
        config,
        tensors,
        tokenizer,
        tokenizer_json: origin.and_then(|o| o.tokenizer_json.clone()),
    })
}

/// The `bytes` tokenizer as a byte-level BPE vocabulary: token i is byte i in GPT-2's byte
/// alphabet and there are no merges, so every text encodes to its UTF-8 bytes exactly as Nibble
/// tokenized it.
fn bytes_vocab() -> TokenizerParts {
    TokenizerParts {
        model: "gpt2".into(),
        pre: Some("gpt-2".into()),
        tokens: byte_to_unicode().iter().map(|c| c.to_string()).collect(),
        merges: Vec::new(),
        token_types: vec![1; 256],
        bos: None,
        eos: None,
        unk: None,
        pad: None,
        add_bos: false,
        add_eos: false,
        chat_template: None,
    }
}
