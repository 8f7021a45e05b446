//! Llama import/export on a tiny random model: GGUF and HF round trips, what gguf-py and the
//! `safetensors` package see in the files (bad inputs: `llama_bad_input.rs`).

mod common;
mod llama_common;

use common::{TempDir, python_gguf_available, run_py};
use llama_common::{assert_bits_equal, tiny_model};
use nibble_modelfiles::llama::gguf_bytes;
use nibble_modelfiles::{
    GgmlType, GgufFile, GgufWeightType, HfDtype, LlamaModel, export_gguf, export_hf_dir,
    import_gguf, import_hf_dir, quants,
};
use std::process::Command;

const ALL_TYPES: [GgufWeightType; 7] = [
    GgufWeightType::F32,
    GgufWeightType::F16,
    GgufWeightType::Q8_0,
    GgufWeightType::Q4_0,
    GgufWeightType::Mxfp4,
    GgufWeightType::Tq1_0,
    GgufWeightType::Tq2_0,
];

/// The type a matrix is stored in: the file's, except the embedding and lm_head of a ternary
/// file, which are Q8_0.
fn matrix_type(ty: GgmlType, name: &str) -> GgmlType {
    let ternary = matches!(ty, GgmlType::TQ1_0 | GgmlType::TQ2_0);
    if ternary && !name.ends_with("_proj.weight") {
        GgmlType::Q8_0
    } else {
        ty
    }
}

/// What an export of `model` in `ty` re-imports as: each matrix through its type's reference
/// quantizer and dequantizer (norms stay f32).
fn quantized_reference(model: &LlamaModel, ty: GgmlType) -> nibble_modelfiles::HostTensors {
    model
        .tensors
        .iter()
        .map(|(name, (shape, v))| {
            let v = if shape.len() == 2 {
                let t = matrix_type(ty, name);
                quants::dequantize(t, &quants::quantize(t, v).unwrap()).unwrap()
            } else {
                v.clone()
            };
            (name.clone(), (shape.clone(), v))
        })
        .collect()
}

#[test]
fn gguf_round_trip_every_type() {
    let dir = TempDir::new("llama-gguf-rt");
    for tied in [true, false] {
        let model = tiny_model(7, tied);
        for ty in ALL_TYPES {
            let path = dir.path().join(format!("m-{tied}-{ty:?}.gguf"));
            export_gguf(&model, ty, &path).unwrap();
            let back = import_gguf(&path).unwrap();
            assert_eq!(back.config, model.config, "{ty:?}");
            assert_eq!(back.tokenizer, model.tokenizer, "{ty:?}");
            assert_bits_equal(&back.tensors, &quantized_reference(&model, ty.ggml_type()));
            // The stored q rows are the HF rows permuted, not the HF rows themselves.
            let f = GgufFile::open(&path).unwrap();
            assert_eq!(
                f.tensor("blk.0.attn_q.weight").unwrap().ggml_type,
                ty.ggml_type()
            );
            assert_eq!(
                f.tensor("blk.0.attn_norm.weight").unwrap().ggml_type,
                GgmlType::F32
            );
            assert_eq!(f.tensor("output.weight").is_none(), tied);
            if ty == GgufWeightType::F32 {
                let (_, raw_q) = f.tensor_f32("blk.0.attn_q.weight").unwrap();
                let hf_q = &model.tensors["model.layers.0.self_attn.q_proj.weight"].1;
                // GGUF row 1 of head 0 is HF row hd/2 = 32.
                assert_eq!(&raw_q[256..512], &hf_q[32 * 256..33 * 256]);
                assert_ne!(&raw_q[256..512], &hf_q[256..512]);
            }
        }
    }
}

#[test]
fn gguf_export_is_deterministic_and_atomic() {
    let model = tiny_model(3, true);
    let a = gguf_bytes(&model, GgufWeightType::Q8_0).unwrap();
    let b = gguf_bytes(&model, GgufWeightType::Q8_0).unwrap();
    assert_eq!(a, b);
    let dir = TempDir::new("llama-gguf-det");
    let path = dir.path().join("m.gguf");
    export_gguf(&model, GgufWeightType::Q8_0, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), a);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temporaries left"
    );
}

#[test]
fn gguf_py_reads_every_export() {
    if !python_gguf_available("llama gguf export read by gguf-py") {
        return;
    }
    let dir = TempDir::new("llama-gguf-py");
    let model = tiny_model(11, false);
    for ty in ALL_TYPES {
        let path = dir.path().join(format!("{ty:?}.gguf"));
        export_gguf(&model, ty, &path).unwrap();
        let out = run_py("llama_gguf_summary.py", &[path.as_os_str()]);
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        let m = &j["metadata"];
        assert_eq!(m["general.architecture"], "llama");
        assert_eq!(m["llama.block_count"], 2);
        assert_eq!(m["llama.context_length"], 128);
        assert_eq!(m["llama.embedding_length"], 256);
        assert_eq!(m["llama.feed_forward_length"], 512);
        assert_eq!(m["llama.rope.dimension_count"], 64);
        assert_eq!(m["llama.attention.head_count"], 4);
        assert_eq!(m["llama.attention.head_count_kv"], 2);
        assert_eq!(m["llama.vocab_size"], 64);
        assert_eq!(m["llama.rope.freq_base"], 10000.0);
        assert!(
            (m["llama.attention.layer_norm_rms_epsilon"]
                .as_f64()
                .unwrap()
                - 1e-5)
                .abs()
                < 1e-9
        );
        assert_eq!(m["general.file_type"], ty.file_type());
        assert_eq!(m["general.quantization_version"], 2);
        assert_eq!(m["tokenizer.ggml.model"], "gpt2");
        assert_eq!(m["tokenizer.ggml.pre"], "smollm");
        assert_eq!(m["tokenizer.ggml.tokens"]["array_len"], 64);
        assert_eq!(m["tokenizer.ggml.token_type"]["array_len"], 64);
        assert_eq!(m["tokenizer.ggml.merges"]["array_len"], 2);
        assert_eq!(m["tokenizer.ggml.bos_token_id"], 1);
        assert_eq!(m["tokenizer.ggml.eos_token_id"], 2);
        assert_eq!(m["tokenizer.ggml.padding_token_id"], 0);
        assert_eq!(m["tokenizer.ggml.add_bos_token"], false);
        assert!(
            m["tokenizer.chat_template"]
                .as_str()
                .unwrap()
                .contains("messages")
        );
        let tensors = j["tensors"].as_array().unwrap();
        assert_eq!(tensors.len(), 1 + 2 * 9 + 2);
        let find = |n: &str| {
            tensors
                .iter()
                .find(|t| t["name"] == n)
                .unwrap_or_else(|| panic!("{n}"))
        };
        let gguf_py_name = match ty {
            GgufWeightType::Mxfp4 => "MXFP4",
            _ => ty.ggml_type().name(),
        };
        let embd = match matrix_type(ty.ggml_type(), "model.embed_tokens.weight") {
            GgmlType::Q8_0 => "Q8_0",
            _ => gguf_py_name,
        };
        assert_eq!(find("blk.1.attn_k.weight")["type"], gguf_py_name);
        assert_eq!(find("token_embd.weight")["type"], embd);
        assert_eq!(
            find("token_embd.weight")["shape"],
            serde_json::json!([64, 256])
        );
        assert_eq!(
            find("blk.1.attn_k.weight")["shape"],
            serde_json::json!([128, 256])
        );
        assert_eq!(
            find("blk.1.ffn_down.weight")["shape"],
            serde_json::json!([256, 512])
        );
        assert_eq!(find("blk.1.ffn_norm.weight")["type"], "F32");
        assert_eq!(find("output.weight")["type"], embd);
    }
}

fn python_safetensors_available() -> bool {
    let required = std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1");
    let ok = Command::new("python3")
        .args(["-c", "import safetensors, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !required,
            "NIBBLE_PY_REFS=1 but python3 cannot import safetensors (pip install safetensors==0.8.0)"
        );
        println!("skipped: python3 cannot import safetensors");
    }
    ok
}

#[test]
fn hf_round_trip_f32_and_bf16() {
    let dir = TempDir::new("llama-hf-rt");
    for tied in [true, false] {
        let model = tiny_model(5, tied);
        let out = dir.path().join(format!("f32-{tied}"));
        export_hf_dir(&model, HfDtype::F32, &out).unwrap();
        let back = import_hf_dir(&out).unwrap();
        assert_eq!(back.config, model.config);
        assert_bits_equal(&back.tensors, &model.tensors);
        // tokenizer.json was built from the parts and reads back as the same parts.
        assert_eq!(back.tokenizer, model.tokenizer);
        assert!(back.tokenizer_json.is_some());

        let out = dir.path().join(format!("bf16-{tied}"));
        export_hf_dir(&model, HfDtype::Bf16, &out).unwrap();
        let back = import_hf_dir(&out).unwrap();
        let rounded: nibble_modelfiles::HostTensors = model
            .tensors
            .iter()
            .map(|(n, (s, v))| {
                (
                    n.clone(),
                    (s.clone(), v.iter().map(|&x| rne_bf16(x)).collect()),
                )
            })
            .collect();
        assert_bits_equal(&back.tensors, &rounded);
        // Re-export keeps the imported tokenizer.json text verbatim.
        let again = dir.path().join(format!("again-{tied}"));
        export_hf_dir(&back, HfDtype::Bf16, &again).unwrap();
        assert_eq!(
            std::fs::read(out.join("tokenizer.json")).unwrap(),
            std::fs::read(again.join("tokenizer.json")).unwrap()
        );
        assert_eq!(
            std::fs::read(out.join("model.safetensors")).unwrap(),
            std::fs::read(again.join("model.safetensors")).unwrap()
        );
        // Overwriting an existing directory works and leaves no siblings behind.
        export_hf_dir(&model, HfDtype::F32, &again).unwrap();
        assert_bits_equal(&import_hf_dir(&again).unwrap().tensors, &model.tensors);
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".tmp-") && !n.contains(".old-")),
        "{names:?}"
    );
}

/// bf16 by round-to-nearest-even on the bits (independent of `half`).
fn rne_bf16(x: f32) -> f32 {
    let b = x.to_bits();
    let lsb = (b >> 16) & 1;
    f32::from_bits((b.wrapping_add(0x7fff + lsb)) & 0xffff_0000)
}

#[test]
fn safetensors_python_reads_hf_export() {
    if !python_safetensors_available() {
        return;
    }
    let dir = TempDir::new("llama-hf-py");
    let model = tiny_model(9, false);
    for (dtype, name) in [(HfDtype::F32, "F32"), (HfDtype::Bf16, "BF16")] {
        let out = dir.path().join(name);
        export_hf_dir(&model, dtype, &out).unwrap();
        let file = out.join("model.safetensors");
        let j: serde_json::Value =
            serde_json::from_str(&run_py("safetensors_summary.py", &[file.as_os_str()])).unwrap();
        assert_eq!(j["metadata"]["format"], "pt");
        let t = j["tensors"].as_object().unwrap();
        assert_eq!(t.len(), model.tensors.len());
        for (n, (shape, _)) in &model.tensors {
            assert_eq!(t[n]["dtype"], name, "{n}");
            assert_eq!(t[n]["shape"], serde_json::json!(shape), "{n}");
        }
        let cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["architectures"][0], "LlamaForCausalLM");
        assert_eq!(cfg["num_key_value_heads"], 2);
    }
}

#[test]
fn hf_tokenizer_json_loads_in_tokenizers() {
    let ok = Command::new("python3")
        .args(["-c", "import tokenizers"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1"),
            "NIBBLE_PY_REFS=1 but no tokenizers"
        );
        println!("skipped: python3 cannot import tokenizers");
        return;
    }
    let dir = TempDir::new("llama-hf-tok");
    let out = dir.path().join("m");
    export_hf_dir(&tiny_model(1, true), HfDtype::F32, &out).unwrap();
    let script = "import sys; from tokenizers import Tokenizer; t = Tokenizer.from_file(sys.argv[1]); \
                  print(t.encode('ab 12<|im_start|>').ids)";
    let o = Command::new("python3")
        .args(["-c", script])
        .arg(out.join("tokenizer.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // "ab" merges (rule "a b") to id 40, " " is Ġ (29), digits one by one (31, 32), then the
    // control token <|im_start|> (1) whole.
    let ids = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(ids, "[40, 29, 31, 32, 1]");
}

// ---------------------------------------------------------------- bad inputs
