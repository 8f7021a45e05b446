//! Real quantized checkpoints exported as they are: projections trained on a learned grid (LSQ,
//! EfficientQAT's codes, the ternary grids) with scales in the format's type are written with
//! their trained codes and scales, so the file decodes to the trained weights bit for bit
//! (GGUF Q4_0 / Q8_0 / TQ1_0 / TQ2_0, compressed-tensors W4A16); a grid the format cannot hold
//! (an f32 scale, zero points in a symmetric type, a group that straddles blocks) is refused
//! with the reason and the tensor. With llama-cpp-python installed, llama.cpp runs the Q4_0 and
//! TQ2_0 files and its logits are compared with Nibble's forward.

use std::fs;
use std::path::Path;

use nibble_modelfiles::ct::{self, CtScheme};
use nibble_modelfiles::llama::{import_gguf, import_hf_dir, read_ct_linears};

mod common;
use common::llama::{checkpoint_logits, compare, llama_cpp, llama_cpp_available, nibble_logits};
use common::{export, nibble, scratch};

/// A 2-layer model with d_model 256 (TQ2_0's blocks), 2 steps; `qat` is the `[qat]` body.
fn recipe(qat: &str, extra: &str) -> String {
    format!(
        r#"
[run]
name = "g"
steps = 2
batch_size = 2

[model]
preset = "tiny"
seq_len = 32
n_layers = 2
d_model = 256
d_ff = 512

[data]
source = "sample"

[qat]
{qat}

[schedule]
warmup_steps = 0

[eval]
batches = 1

[log]
tensorboard = false

[checkpoint]
every = 2
{extra}
"#
    )
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Trains `recipe` in a fresh scratch directory and exports its effective weights (`hf-f32`).
fn trained(tag: &str, text: &str) -> std::path::PathBuf {
    let d = scratch(tag);
    fs::write(d.join("r.toml"), text).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    export(&d, "runs/g", "hf-f32", Path::new("hf"));
    d
}

fn is_proj(name: &str) -> bool {
    name.starts_with("model.layers.") && name.ends_with("_proj.weight")
}

/// Every projection of the GGUF file decodes to the trained (effective) weight bit for bit.
fn assert_gguf_lossless(d: &Path, format: &str) {
    let file = d.join(format!("{format}.gguf"));
    export(d, "runs/g", format, &file);
    let g = import_gguf(&file).unwrap();
    let hf = import_hf_dir(&d.join("hf")).unwrap();
    let mut n = 0;
    for (name, (_, v)) in hf.tensors.iter().filter(|(n, _)| is_proj(n)) {
        assert_eq!(bits(&g.tensors[name].1), bits(v), "{format}: {name}");
        n += 1;
    }
    assert_eq!(n, 14);
}

fn refused(d: &Path, format: &str, want: &[&str]) {
    let (code, _, err) = nibble(
        &[
            "export",
            "--checkpoint",
            "runs/g",
            "--format",
            format,
            "--out",
            "x.out",
        ],
        d,
    );
    assert_eq!(code, 2, "{format}: {err}");
    for w in want {
        assert!(err.contains(w), "{format}: `{w}` not in: {err}");
    }
    assert!(!d.join("x.out").exists());
}

fn llama_cpp_agrees(d: &Path, format: &str) {
    if !llama_cpp_available() {
        return;
    }
    let file = d.join(format!("{format}.gguf"));
    let text = "ROMEO: What light through yonder window breaks?";
    let ids: Vec<u32> = text.bytes().map(u32::from).collect();
    let (theirs, _) = llama_cpp(&file, &ids, None, d);
    let ours = nibble_logits(&file, &ids, &d.join("cache"));
    let (agree, rel) = compare(&ours, &theirs, 256);
    println!(
        "llama.cpp vs Nibble on {format}: top-1 {agree}/{}, max rel. error {rel:.2e}",
        ids.len()
    );
    // llama.cpp quantizes activations to 8 bits for its quantized matmuls.
    assert!(rel < 5e-2, "{format}: max relative error {rel}");
    assert!(
        agree * 10 >= ids.len() * 9,
        "{format}: top-1 {agree}/{}",
        ids.len()
    );
}

#[test]
fn lsq_grid_with_f16_steps_exports_to_q4_0_and_q8_0_losslessly() {
    let qat = "method = \"lsq\"\nbits = 4\ngranularity = \"group\"\ngroup_size = 32\nscale_dtype = \"f16\"";
    let d = trained("lgrid-lsq", &recipe(qat, ""));
    assert_gguf_lossless(&d, "gguf-q4_0");
    assert_gguf_lossless(&d, "gguf-q8_0");
    // A grid has no ternary form: refused, the tensor named.
    refused(&d, "gguf-tq2_0", &["model.layers.0.", "-8..=7", "TQ2_0"]);
    llama_cpp_agrees(&d, "gguf-q4_0");
    let _ = fs::remove_dir_all(&d);

    // The same grid with f32 steps: Q4_0 would round them to f16, a different weight.
    let qat = "method = \"lsq\"\nbits = 4\ngranularity = \"group\"\ngroup_size = 32";
    let d = trained("lgrid-lsq32", &recipe(qat, ""));
    refused(
        &d,
        "gguf-q4_0",
        &["model.layers.0.", "scale_dtype = \"f16\""],
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn ternary_grid_exports_to_tq1_0_and_tq2_0_losslessly() {
    let qat = "method = \"absmean\"\ngranularity = \"channel\"\nscale_dtype = \"f16\"";
    let d = trained("lgrid-tern", &recipe(qat, ""));
    assert_gguf_lossless(&d, "gguf-tq2_0");
    assert_gguf_lossless(&d, "gguf-tq1_0");
    assert_gguf_lossless(&d, "gguf-q4_0");
    // Groups of 64 inputs straddle TQ2_0's 256-input blocks.
    let _ = fs::remove_dir_all(&d);
    llama_cpp_agrees(&trained_tq2(), "gguf-tq2_0");
    let qat = "method = \"twn\"\ngranularity = \"group\"\ngroup_size = 64\nscale_dtype = \"f16\"";
    let d = trained("lgrid-tern64", &recipe(qat, ""));
    refused(&d, "gguf-tq2_0", &["64 inputs", "256-input blocks"]);
    assert_gguf_lossless(&d, "gguf-q4_0");
    let _ = fs::remove_dir_all(&d);
}

fn trained_tq2() -> std::path::PathBuf {
    let qat = "method = \"twn\"\ngranularity = \"tensor\"\nscale_dtype = \"f16\"";
    let d = trained("lgrid-tq2", &recipe(qat, ""));
    assert_gguf_lossless(&d, "gguf-tq2_0");
    d
}

#[test]
fn efficientqat_codes_export_to_ct_w4a16_asym_losslessly() {
    let qat = "method = \"efficientqat\"\nbits = 4\ngranularity = \"group\"\ngroup_size = 32\nscale_dtype = \"bf16\"";
    let d = trained("lgrid-eqat", &recipe(qat, "\n[e2e_qp]\nenabled = true\n"));
    let ctdir = d.join("ct");
    export(&d, "runs/g", "ct-w4a16-asym", &ctdir);
    let st = ctdir.join("model.safetensors");
    let linears = read_ct_linears(&fs::read(&st).unwrap(), &st).unwrap();
    let hf = import_hf_dir(&d.join("hf")).unwrap();
    let scheme = CtScheme::W4a16 {
        group: 32,
        symmetric: false,
    };
    assert_eq!(linears.len(), 14);
    for (module, linear) in &linears {
        let name = format!("{module}.weight");
        let (shape, v) = &hf.tensors[&name];
        let served = ct::decode(scheme, shape[0], shape[1], linear);
        assert_eq!(bits(&served), bits(v), "{name}");
    }
    refused(&d, "ct-w4a16", &["asymmetric", "-asym"]);
    refused(&d, "ct-w2a16-asym", &["codes span 0..=15", "2 bits"]);
    refused(&d, "gguf-q4_0", &["asymmetric", "Q4_0"]);
    let _ = fs::remove_dir_all(&d);

    // EfficientQAT's headline grid, w2g32: W2A16 `pack-quantized` with zero points.
    let qat = "method = \"efficientqat\"\nbits = 2\ngranularity = \"group\"\ngroup_size = 32\nscale_dtype = \"bf16\"";
    let d = trained("lgrid-eqat2", &recipe(qat, "\n[e2e_qp]\nenabled = true\n"));
    let ctdir = d.join("ct2");
    export(&d, "runs/g", "ct-w2a16-asym", &ctdir);
    let config: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(ctdir.join("config.json")).unwrap()).unwrap();
    let q = &config["quantization_config"]["config_groups"]["group_0"]["weights"];
    assert_eq!(
        (q["num_bits"].as_u64(), q["group_size"].as_u64()),
        (Some(2), Some(32)),
        "{q}"
    );
    let st = ctdir.join("model.safetensors");
    let linears = read_ct_linears(&fs::read(&st).unwrap(), &st).unwrap();
    let hf = import_hf_dir(&d.join("hf")).unwrap();
    let scheme = CtScheme::W2a16 {
        group: 32,
        symmetric: false,
    };
    for (module, linear) in &linears {
        let name = format!("{module}.weight");
        let (shape, v) = &hf.tensors[&name];
        assert_eq!(
            bits(&ct::decode(scheme, shape[0], shape[1], linear)),
            bits(v),
            "{name}"
        );
    }
    let _ = fs::remove_dir_all(&d);
}

/// Tequila's ternary grid with its deadzone bias: the GGUF holds the codes and scales (TQ2_0)
/// and the bias tensors, which llama.cpp adds: its logits match Nibble's forward of the
/// checkpoint (the bias included). HF refuses the biases.
#[test]
fn tequila_exports_to_tq2_0_with_its_bias() {
    let qat =
        "method = \"tequila\"\ngranularity = \"channel\"\nlambda = 0.05\nscale_dtype = \"f16\"";
    let d = trained_no_hf("lgrid-teq", &recipe(qat, ""));
    let file = d.join("t.gguf");
    export(&d, "runs/g", "gguf-tq2_0", &file);
    let g = nibble_modelfiles::gguf::GgufFile::open(&file).unwrap();
    for b in [
        "blk.0.attn_q.bias",
        "blk.1.ffn_down.bias",
        "blk.1.ffn_up.bias",
    ] {
        assert!(g.tensor(b).is_some(), "{b}");
    }
    refused(&d, "hf-f32", &["model.layers.0.", "bias", "GGUF"]);
    if llama_cpp_available() {
        let ids: Vec<u32> = "ROMEO: What light".bytes().map(u32::from).collect();
        let (theirs, _) = llama_cpp(&file, &ids, None, &d);
        let ours = checkpoint_logits(&d.join("runs/g"), &ids, &d.join("cache"), |_| {});
        let (agree, rel) = compare(&ours, &theirs, 256);
        println!(
            "llama.cpp vs Nibble (Tequila, biases): top-1 {agree}/{}, max rel. error {rel:.2e}",
            ids.len()
        );
        assert!(rel < 5e-2, "max relative error {rel}");
        // The same weights without the biases compute another function: the bias matters here.
        let plain = checkpoint_logits(&d.join("runs/g"), &ids, &d.join("cache"), |r| {
            r.qat.lambda = Some(0.0);
        });
        let (_, rel_plain) = compare(&plain, &theirs, 256);
        assert!(
            rel_plain > 4.0 * rel,
            "bias effect {rel_plain} vs agreement {rel}"
        );
    }
    let _ = fs::remove_dir_all(&d);
}

fn trained_no_hf(tag: &str, text: &str) -> std::path::PathBuf {
    let d = scratch(tag);
    fs::write(d.join("r.toml"), text).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    d
}
