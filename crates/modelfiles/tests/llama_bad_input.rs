//! Llama import/export refuses bad inputs with errors naming the file and the tensor or key, and
//! a failed export writes nothing.

mod common;
mod llama_common;

use common::{Rng, TempDir};
use llama_common::tiny_model;
use nibble_modelfiles::llama::gguf_bytes;
use nibble_modelfiles::{
    GgmlType, GgufFile, GgufWeightType, GgufWriter, HfDtype, export_gguf, export_hf_dir,
    import_gguf, import_hf_dir,
};
use std::ffi::OsStr;
use std::path::Path;

fn err_text<T: std::fmt::Debug>(r: Result<T, nibble_modelfiles::ModelFileError>) -> String {
    r.expect_err("expected an error").to_string()
}

#[test]
fn bad_gguf_inputs_name_file_and_tensor() {
    let dir = TempDir::new("llama-bad-gguf");
    let model = tiny_model(2, true);
    let good = gguf_bytes(&model, GgufWeightType::Q8_0).unwrap();
    let put = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };

    let p = put("trunc.gguf", &good[..good.len() - 100]);
    let e = err_text(import_gguf(&p));
    assert!(
        e.contains("trunc.gguf") && e.contains("lies outside the file"),
        "{e}"
    );

    let mut bad = good.clone();
    bad[..4].copy_from_slice(b"GGUX");
    let e = err_text(import_gguf(&put("magic.gguf", &bad)));
    assert!(
        e.contains("magic.gguf") && e.contains("not a GGUF file"),
        "{e}"
    );

    // Unknown tensor type id: patch the type field of token_embd's info (Q8_0 = 8 -> 99).
    let f = GgufFile::parse(&good).unwrap();
    let info_at = f.data_offset() as usize; // type ids sit before; find via the name.
    let name = b"token_embd.weight";
    let pos = good[..info_at]
        .windows(name.len())
        .position(|w| w == name)
        .unwrap()
        + name.len();
    let type_pos = pos + 4 + 2 * 8; // n_dims, two dims
    assert_eq!(
        u32::from_le_bytes(good[type_pos..type_pos + 4].try_into().unwrap()),
        8
    );
    let mut bad = good.clone();
    bad[type_pos..type_pos + 4].copy_from_slice(&99u32.to_le_bytes());
    let e = err_text(import_gguf(&put("type.gguf", &bad)));
    assert!(
        e.contains("type.gguf")
            && e.contains("token_embd.weight")
            && e.contains("unknown ggml tensor type id 99"),
        "{e}"
    );

    // A wrong shape for the config: a k projection with one head too many.
    let mut m = model.clone();
    m.config.num_kv_heads = 4; // q has 4 heads; k/v stay [128, 256]
    let bytes = rewrite_metadata(
        &gguf_bytes(&model, GgufWeightType::F32).unwrap(),
        "llama.attention.head_count_kv",
        4,
    );
    let e = err_text(import_gguf(&put("shape.gguf", &bytes)));
    assert!(
        e.contains("shape.gguf")
            && e.contains("blk.0.attn_k.weight")
            && e.contains("[128, 256]")
            && e.contains("expected [256, 256]"),
        "{e}"
    );

    // Not llama.
    let bytes = rewrite_metadata_str(&good, "general.architecture", "gpt2");
    let e = err_text(import_gguf(&put("arch.gguf", &bytes)));
    assert!(
        e.contains("arch.gguf") && e.contains("general.architecture") && e.contains("'gpt2'"),
        "{e}"
    );

    // Missing key and missing tensor.
    let bytes = drop_metadata(&good, "llama.block_count");
    let e = err_text(import_gguf(&put("nokey.gguf", &bytes)));
    assert!(
        e.contains("nokey.gguf")
            && e.contains("llama.block_count")
            && e.contains("no metadata key"),
        "{e}"
    );
    let bytes = drop_tensor(&good, "blk.1.ffn_up.weight");
    let e = err_text(import_gguf(&put("notensor.gguf", &bytes)));
    assert!(
        e.contains("notensor.gguf")
            && e.contains("blk.1.ffn_up.weight")
            && e.contains("missing tensor"),
        "{e}"
    );
    let bytes = add_tensor(&good, "rope_freqs.weight");
    let e = err_text(import_gguf(&put("extra.gguf", &bytes)));
    assert!(
        e.contains("extra.gguf")
            && e.contains("rope_freqs.weight")
            && e.contains("unexpected tensor"),
        "{e}"
    );
    drop(m);
}

/// Rebuilds a GGUF with every metadata entry and tensor copied, through `edit`.
fn rebuild(
    bytes: &[u8],
    edit_meta: &dyn Fn(&str, &nibble_modelfiles::Value) -> Option<nibble_modelfiles::Value>,
    keep_tensor: &dyn Fn(&str) -> bool,
    extra: Option<&str>,
) -> Vec<u8> {
    let f = GgufFile::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in f.metadata_entries() {
        if let Some(v) = edit_meta(k, v) {
            w.add_metadata(k.clone(), v).unwrap();
        }
    }
    for t in f.tensors() {
        if keep_tensor(&t.name) {
            w.add_tensor(
                &t.name,
                t.ggml_type,
                &t.dims,
                f.tensor_data(&t.name).unwrap().to_vec(),
            )
            .unwrap();
        }
    }
    if let Some(name) = extra {
        w.add_tensor_f32(name, GgmlType::F32, &[32], &[1.0; 32])
            .unwrap();
    }
    w.to_bytes()
}

fn rewrite_metadata(bytes: &[u8], key: &str, v: u32) -> Vec<u8> {
    rebuild(
        bytes,
        &|k, old| {
            Some(if k == key {
                nibble_modelfiles::Value::U32(v)
            } else {
                old.clone()
            })
        },
        &|_| true,
        None,
    )
}

fn rewrite_metadata_str(bytes: &[u8], key: &str, v: &str) -> Vec<u8> {
    rebuild(
        bytes,
        &|k, old| {
            Some(if k == key {
                nibble_modelfiles::Value::String(v.into())
            } else {
                old.clone()
            })
        },
        &|_| true,
        None,
    )
}

fn drop_metadata(bytes: &[u8], key: &str) -> Vec<u8> {
    rebuild(
        bytes,
        &|k, old| (k != key).then(|| old.clone()),
        &|_| true,
        None,
    )
}

fn drop_tensor(bytes: &[u8], name: &str) -> Vec<u8> {
    rebuild(bytes, &|_, old| Some(old.clone()), &|n| n != name, None)
}

fn add_tensor(bytes: &[u8], name: &str) -> Vec<u8> {
    rebuild(bytes, &|_, old| Some(old.clone()), &|_| true, Some(name))
}

#[test]
fn bad_hf_inputs_name_file_and_key() {
    let dir = TempDir::new("llama-bad-hf");
    let model = tiny_model(4, true);
    let out = dir.path().join("m");
    export_hf_dir(&model, HfDtype::Bf16, &out).unwrap();
    let cfg_path = out.join("config.json");
    let cfg = std::fs::read_to_string(&cfg_path).unwrap();

    std::fs::write(
        &cfg_path,
        cfg.replace("LlamaForCausalLM", "MistralForCausalLM"),
    )
    .unwrap();
    let e = err_text(import_hf_dir(&out));
    assert!(
        e.contains("config.json")
            && e.contains("architectures")
            && e.contains("MistralForCausalLM"),
        "{e}"
    );
    std::fs::write(&cfg_path, cfg.replace("\"llama\"", "\"qwen2\"")).unwrap();
    let e = err_text(import_hf_dir(&out));
    assert!(
        e.contains("config.json") && e.contains("model_type") && e.contains("qwen2"),
        "{e}"
    );
    std::fs::write(&cfg_path, &cfg).unwrap();

    // Corrupted safetensors header: JSON that does not parse.
    let st_path = out.join("model.safetensors");
    let st = std::fs::read(&st_path).unwrap();
    let mut bad = st.clone();
    bad[8] = b'X';
    std::fs::write(&st_path, &bad).unwrap();
    let e = err_text(import_hf_dir(&out));
    assert!(
        e.contains("model.safetensors") && e.contains("invalid safetensors"),
        "{e}"
    );
    // A header length past the end of the file.
    let mut bad = st.clone();
    bad[..8].copy_from_slice(&(st.len() as u64).to_le_bytes());
    std::fs::write(&st_path, &bad).unwrap();
    let e = err_text(import_hf_dir(&out));
    assert!(
        e.contains("model.safetensors") && e.contains("invalid safetensors"),
        "{e}"
    );
    std::fs::write(&st_path, &st).unwrap();

    // A tensor with the wrong shape for the config.
    let mut m = model.clone();
    m.tensors
        .get_mut("model.layers.1.mlp.up_proj.weight")
        .unwrap()
        .0 = vec![256, 512];
    let st2 = nibble_modelfiles::llama::write_safetensors(&m.tensors, HfDtype::F32).unwrap();
    std::fs::write(&st_path, &st2).unwrap();
    let e = err_text(import_hf_dir(&out));
    assert!(
        e.contains("model.safetensors")
            && e.contains("model.layers.1.mlp.up_proj.weight")
            && e.contains("expected [512, 256]"),
        "{e}"
    );
    std::fs::write(&st_path, &st).unwrap();
    assert!(import_hf_dir(&out).is_ok());
}

#[test]
fn failed_exports_write_nothing() {
    let dir = TempDir::new("llama-bad-export");
    let mut model = tiny_model(6, true);
    model
        .tensors
        .get_mut("model.layers.0.mlp.gate_proj.weight")
        .unwrap()
        .1[17] = f32::NAN;
    let g = dir.path().join("nan.gguf");
    let e = err_text(export_gguf(&model, GgufWeightType::F16, &g));
    assert!(
        e.contains("nan.gguf")
            && e.contains("model.layers.0.mlp.gate_proj.weight")
            && e.contains("non-finite"),
        "{e}"
    );
    assert!(!g.exists());
    let h = dir.path().join("nan-hf");
    let e = err_text(export_hf_dir(&model, HfDtype::Bf16, &h));
    assert!(
        e.contains("nan-hf")
            && e.contains("model.layers.0.mlp.gate_proj.weight")
            && e.contains("non-finite"),
        "{e}"
    );
    assert!(!h.exists());

    // Finite in f32 but not in bf16 / f16.
    let mut model = tiny_model(6, true);
    model.tensors.get_mut("model.norm.weight").unwrap().1[3] = f32::MAX;
    let e = err_text(export_hf_dir(&model, HfDtype::Bf16, &h));
    assert!(e.contains("model.norm.weight") && e.contains("bf16"), "{e}");
    assert!(!h.exists());
    let mut model = tiny_model(6, true);
    model
        .tensors
        .get_mut("model.layers.1.self_attn.v_proj.weight")
        .unwrap()
        .1[0] = 1e6;
    let e = err_text(export_gguf(&model, GgufWeightType::F16, &g));
    assert!(
        e.contains("model.layers.1.self_attn.v_proj.weight") && e.contains("too large for F16"),
        "{e}"
    );
    assert!(!g.exists());

    // Row length not a multiple of the block size: hidden 80 for the Q8_0 a ternary file
    // stores embeddings (and projections of rows that are not multiples of 256) in.
    let mut small = tiny_model(6, true);
    small.config.hidden_size = 80;
    small.config.num_heads = 5;
    small.config.num_kv_heads = 1;
    small.config.intermediate_size = 64;
    let mut rng = Rng::new(1);
    small.tensors = small
        .config
        .expected_tensors()
        .into_iter()
        .map(|(n, s)| {
            let len = s.iter().product();
            (n, (s, (0..len).map(|_| rng.normal(0.1)).collect()))
        })
        .collect();
    for ty in [GgufWeightType::Tq1_0, GgufWeightType::Tq2_0] {
        let e = err_text(export_gguf(&small, ty, &g));
        assert!(
            e.contains("model.embed_tokens.weight") && e.contains("Q8_0 block size 32"),
            "{e}"
        );
        assert!(!g.exists());
    }
    export_gguf(&small, GgufWeightType::F16, &g).unwrap();
    assert!(import_gguf(&g).is_ok());

    // Unexpected and missing tensors.
    let mut model = tiny_model(6, true);
    model.tensors.insert(
        "lm_head.weight".into(),
        (vec![64, 256], vec![0.0; 64 * 256]),
    );
    let e = err_text(export_gguf(
        &model,
        GgufWeightType::F32,
        &dir.path().join("x.gguf"),
    ));
    assert!(e.contains("lm_head.weight") && e.contains("tied"), "{e}");
    model.tensors.remove("lm_head.weight");
    model.tensors.remove("model.norm.weight");
    let e = err_text(export_hf_dir(&model, HfDtype::F32, &dir.path().join("x")));
    assert!(
        e.contains("model.norm.weight") && e.contains("missing"),
        "{e}"
    );
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.gguf").exists());
    let _ = Path::new("");
    let _ = OsStr::new("");
}
