//! `nibble export`: a checkpoint's model as files serving engines load: GGUF (llama.cpp), a
//! Hugging Face directory (transformers, vLLM) or a compressed-tensors one (vLLM, transformers). The weights written are those the model computes
//! with: each projection through its techniques (an N:M mask applied, an LSQ weight on its
//! grid), so what was trained is what is served. A projection trained on a serving grid
//! (`[qat] method = "ggml"` or `"ct"`) exported to that same grid is the exception: its master
//! weight is written, which the format's quantizer (the grid's own function) encodes to exactly
//! the trained codes and scales; writing the fake-quantized weight would re-quantize it lossily. The tokenizer is the `[init]` model's, the
//! `bytes` tokenizer written as a byte-level vocabulary without merges, or GPT-2's vocabulary
//! and merges.

use std::path::Path;

use burn::backend::Flex;
use nibble_data::{Gpt2Tokenizer, TokenizerKind, byte_to_unicode};
use nibble_model::techniques::{CtScheme, Granularity, NmDim, QatMethod, ServingGrid};
use nibble_modelfiles::llama::{
    GgufWeightType, GridTensor, HfDtype, HostTensors, LlamaConfig, LlamaModel, TokenizerParts,
    export_ct_dir, export_gguf, export_hf_dir,
};
use nibble_train::trainer::Parts;

use crate::run_path::{load_checkpoint, run_parts, run_recipe};

/// The formats `--format` accepts.
pub const FORMATS: [&str; 16] = [
    "gguf-f32",
    "gguf-f16",
    "gguf-q8_0",
    "gguf-q4_0",
    "gguf-mxfp4",
    "gguf-tq1_0",
    "gguf-tq2_0",
    "hf",
    "hf-f32",
    "ct-w4a16",
    "ct-w4a16-asym",
    "ct-w2a16",
    "ct-w2a16-asym",
    "ct-fp8",
    "ct-nvfp4",
    "ct-mxfp4",
];

enum Target {
    Gguf(GgufWeightType),
    Hf(HfDtype),
    Ct(CtScheme),
}

impl Target {
    /// The serving grid a projection trained on exactly it exports losslessly to.
    fn grid(&self) -> Option<ServingGrid> {
        match self {
            Target::Gguf(t) => Some(ServingGrid::Ggml(t.ggml_type())),
            Target::Hf(_) => None,
            Target::Ct(s) => Some(ServingGrid::Ct(*s)),
        }
    }
}

/// The target of `--format`; `w4_group` is the group of the W4A16 formats (see [`ct_group`]).
fn target(format: &str, w4_group: usize) -> Option<Target> {
    let w4 = |symmetric| {
        Target::Ct(CtScheme::W4a16 {
            group: w4_group,
            symmetric,
        })
    };
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
        "ct-w4a16" => w4(true),
        "ct-w4a16-asym" => w4(false),
        "ct-w2a16" => Target::Ct(CtScheme::W2a16 {
            group: w4_group,
            symmetric: true,
        }),
        "ct-w2a16-asym" => Target::Ct(CtScheme::W2a16 {
            group: w4_group,
            symmetric: false,
        }),
        "ct-fp8" => Target::Ct(CtScheme::Fp8),
        "ct-nvfp4" => Target::Ct(CtScheme::Nvfp4),
        "ct-mxfp4" => Target::Ct(CtScheme::Mxfp4),
        _ => return None,
    })
}

pub fn run(checkpoint: &Path, format: &str, out: &Path) -> Result<(), (u8, String)> {
    if !FORMATS.contains(&format) {
        return Err((
            2,
            format!("--format: `{format}` is not one of {}", FORMATS.join(", ")),
        ));
    }
    let (recipe, ck) = run_recipe(checkpoint)?;
    // Exports are host work: the CPU backend, whatever device the run trained on.
    let dev = Default::default();
    let mut parts = run_parts::<Flex>(&recipe, &dev)?;
    let state = load_checkpoint(&ck, &mut parts, &dev)?;
    let target = target(format, ct_group(&recipe, &parts)).expect("a listed format");
    let grid = target.grid();
    let model = llama_model(&parts, state.step, grid).map_err(|m| (2, m))?;
    for line in sparsity_report(&parts, &model) {
        println!("{line}");
    }
    let t0 = std::time::Instant::now();
    let written = match target {
        Target::Gguf(t) => export_gguf(&model, t, out),
        Target::Hf(d) => export_hf_dir(&model, d, out),
        Target::Ct(scheme) => export_ct_dir(&model, scheme, out),
    };
    if let Some(exact) = recipe.qat.lossless_format().filter(|f| f != format) {
        eprintln!(
            "note: this run trained its projections on the {exact} grid; --format {format} \
             re-quantizes them (--format {exact} writes the trained codes and scales)"
        );
    }
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

/// One line per N:M layer: the share of zeros in the weight written (dense, zeros included:
/// vLLM's 2:4 formats are gone) and whether every group holds at most N non-zeros, the pattern
/// a sparse kernel would need (an MDGF run exported before β reaches 0 does not).
fn sparsity_report(parts: &Parts<Flex>, model: &LlamaModel) -> Vec<String> {
    let mut out = Vec::new();
    for l in parts.model.linears() {
        let Some(nm) = l.techniques.iter().find_map(|t| t.nm()) else {
            continue;
        };
        let Some((shape, v)) = model.tensors.get(&l.weight) else {
            continue;
        };
        let (rows, cols) = (shape[0], shape[1]);
        let zeros = v.iter().filter(|x| **x == 0.0).count();
        // Groups of M along the dimension: row-major runs for input, strided for output.
        let at = |g: usize, j: usize| match nm.dim {
            NmDim::Input => v[g * nm.m + j],
            NmDim::Output => {
                let (col, row0) = (g % cols, (g / cols) * nm.m);
                v[(row0 + j) * cols + col]
            }
        };
        let groups = rows * cols / nm.m;
        let holds = (0..groups).all(|g| (0..nm.m).filter(|&j| at(g, j) != 0.0).count() <= nm.n);
        out.push(format!(
            "sparsity: {} {}:{} ({}): {:.2}% zeros, {}",
            l.name,
            nm.n,
            nm.m,
            nm.dim.name(),
            100.0 * zeros as f64 / v.len().max(1) as f64,
            match holds {
                true => "N:M holds",
                false => "N:M does not hold (pruned weights not yet zero)",
            }
        ));
    }
    out
}

/// The W4A16 group of a compressed-tensors export: the run's `[qat] group_size` when it trained
/// on a compressed-tensors grid or a grid with groups (its scales are then written as they are), else the largest of vLLM's Marlin groups (128, 64, 32) that
/// divides every projection's input dimension (SmolLM2's 576 takes 64), else 128 (refused
/// then, naming the tensor).
fn ct_group(recipe: &nibble_train::sections::Recipe, parts: &Parts<Flex>) -> usize {
    let grouped =
        recipe.qat.granularity == Granularity::Group && recipe.qat.method != QatMethod::None;
    if recipe.qat.method == QatMethod::Ct || grouped {
        return recipe.qat.group_size;
    }
    let a = &parts.arch;
    let dims = [a.d_model, a.d_ff, a.n_heads * a.head_dim()];
    [128, 64, 32]
        .into_iter()
        .find(|g| dims.iter().all(|d| d % g == 0))
        .unwrap_or(128)
}

/// The checkpoint's model as host tensors with HF names, its config and tokenizer; `grid`: the
/// serving grid written (see `Llama::export_weights`).
fn llama_model(
    parts: &Parts<Flex>,
    step: u64,
    grid: Option<ServingGrid>,
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
    let host = |t| nibble_ops::host::to_host(t).0;
    let grids = parts
        .model
        .export_grids(&parts.params, step)
        .into_iter()
        .map(|(name, g)| {
            let grid = GridTensor {
                group: g.group,
                scales: host(g.scales),
                zeros: g.zeros.map(host),
                lo: g.lo,
                hi: g.hi,
            };
            (name, grid)
        })
        .collect();
    let biases = parts
        .model
        .export_biases(&parts.params, step)
        .into_iter()
        .map(|(name, b)| (name, host(b)))
        .collect();
    let tensors: HostTensors = weights
        .into_iter()
        .map(|(name, t)| {
            let (v, [r, c]) = nibble_ops::host::to_host(t);
            // Norm weights are `[1, d]` in Nibble, vectors in every model file.
            let shape = if r == 1 && name.ends_with("norm.weight") {
                vec![c]
            } else {
                vec![r, c]
            };
            (name, (shape, v))
        })
        .collect();
    let tokenizer = match origin {
        Some(o) => o.tokenizer.clone(),
        None if parts.data.tokenizer == TokenizerKind::Bytes => Some(bytes_vocab()),
        None if parts.data.tokenizer == TokenizerKind::Gpt2 => Some(gpt2_vocab()?),
        None => None,
    };
    Ok(LlamaModel {
        config,
        tensors,
        tokenizer,
        tokenizer_json: origin.and_then(|o| o.tokenizer_json.clone()),
        grids,
        biases,
    })
}

/// GPT-2's BPE (`gpt2` tokenizer) as its byte-level vocabulary and merges, `<|endoftext|>` as BOS
/// and EOS (as GPT-2's own files have it), no BOS added: llama.cpp and transformers tokenize as
/// training did.
fn gpt2_vocab() -> Result<TokenizerParts, String> {
    let v = Gpt2Tokenizer::new()
        .and_then(|t| t.vocabulary())
        .map_err(|e| e.to_string())?;
    let mut token_types = vec![1; v.tokens.len()];
    token_types[v.endoftext as usize] = 3;
    Ok(TokenizerParts {
        model: "gpt2".into(),
        pre: Some("gpt-2".into()),
        tokens: v.tokens,
        merges: v.merges,
        token_types,
        bos: Some(v.endoftext),
        eos: Some(v.endoftext),
        unk: None,
        pad: None,
        add_bos: false,
        add_eos: false,
        chat_template: None,
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
