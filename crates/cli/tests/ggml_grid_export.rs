//! Lossless export of a GGUF grid: a run trained with `[qat] method = "ggml"` on Q4_0 exports to
//! `gguf-q4_0` with exactly the trained codes and scales, so the file dequantizes to the model's
//! fake-quantized projections bit for bit; exported to another type (Q8_0), the fake-quantized
//! weights are what that format quantizes. With llama-cpp-python installed, llama.cpp's logits
//! on the file are compared with Nibble's forward on the same weights.

use std::fs;

use nibble_modelfiles::llama::import_gguf;
use nibble_modelfiles::quants::{GgmlType, dequantize, quantize};
use nibble_train::checkpoint::read_safetensors;

mod common;
use common::llama::{compare, llama_cpp, llama_cpp_available, nibble_logits};
use common::{export, nibble, scratch};

const RECIPE: &str = r#"
[run]
name = "g"
steps = 2
batch_size = 2

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"

[qat]
method = "ggml"
ggml_type = "q4_0"

[eval]
batches = 1

[log]
tensorboard = false

[checkpoint]
every = 2
"#;

const PROJ: [&str; 7] = [
    "self_attn.q_proj",
    "self_attn.k_proj",
    "self_attn.v_proj",
    "self_attn.o_proj",
    "mlp.gate_proj",
    "mlp.up_proj",
    "mlp.down_proj",
];

fn round_trip(ty: GgmlType, v: &[f32]) -> Vec<f32> {
    dequantize(ty, &quantize(ty, v).unwrap()).unwrap()
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn q4_0_grid_exports_the_trained_codes() {
    let d = scratch("ggml-grid");
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let ck = d.join("runs/g/checkpoints/step-00000002");
    let saved = read_safetensors(&fs::read(ck.join("model.safetensors")).unwrap()).unwrap();
    let file = d.join("g.gguf");
    export(&d, "runs/g", "gguf-q4_0", &file);
    let m = import_gguf(&file).unwrap();
    // The same run to another type: the effective weights, re-quantized by that format.
    let other = d.join("g-q8_0.gguf");
    export(&d, "runs/g", "gguf-q8_0", &other);
    let m8 = import_gguf(&other).unwrap();
    let (q4, q8) = (GgmlType::Q4_0, GgmlType::Q8_0);
    let (mut n, mut requant_values, mut requant_bits) = (0, 0, 0);
    for layer in 0..2 {
        for p in PROJ {
            let name = format!("model.layers.{layer}.{p}.weight");
            let master = &saved[&name].1;
            // The model's effective weight: the grid's forward, computed here independently.
            let fake = round_trip(q4, master);
            assert!(fake != *master, "{name}: the grid must move the weights");
            assert_eq!(bits(&m.tensors[&name].1), bits(&fake), "{name}");
            // Q8_0 of the effective weight, not of the master weight.
            assert_eq!(
                bits(&m8.tensors[&name].1),
                bits(&round_trip(q8, &fake)),
                "{name}"
            );
            assert_ne!(m8.tensors[&name].1, round_trip(q8, master), "{name}");
            // The old path: the effective weight through Q4_0 again.
            let requant = round_trip(q4, &fake);
            requant_values += fake.iter().zip(&requant).filter(|(a, b)| a != b).count();
            requant_bits += fake
                .iter()
                .zip(&requant)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            n += fake.len();
        }
    }
    // Q4_0's reference quantizer maps its own grid onto itself (the block's max is −8·d, so d
    // is found again) except for signed zeros of blocks whose scale underflows f16: on trained
    // weights the old path happens to agree. The master-weight path is exact by construction
    // (crates/model/tests/export_weights.rs shows a block where the two differ).
    println!(
        "lossless: {n} projection values equal the fake-quantized weights bit for bit; \
         re-quantizing those would change {requant_values} values ({requant_bits} bit patterns)"
    );

    if llama_cpp_available() {
        let text = "ROMEO: What light through yonder window breaks?";
        let ids: Vec<u32> = text.bytes().map(u32::from).collect();
        let (theirs, _) = llama_cpp(&file, &ids, None, &d);
        let ours = nibble_logits(&file, &ids, &d.join("cache"));
        let (agree, rel) = compare(&ours, &theirs, 256);
        println!(
            "llama.cpp vs Nibble on gguf-q4_0: top-1 {agree}/{}, max rel. error {rel:.2e}",
            ids.len()
        );
        // llama.cpp quantizes activations to 8 bits (Q8_0) for its Q4_0 matmuls.
        assert!(rel < 3e-2, "max relative error {rel}");
        assert!(agree * 10 >= ids.len() * 9, "top-1 {agree}/{}", ids.len());
    }
    let _ = fs::remove_dir_all(&d);
}
