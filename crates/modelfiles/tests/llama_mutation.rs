//! Random truncations and byte flips of a small llama GGUF and of an HF directory's
//! model.safetensors: import returns errors, never panics.

mod common;
mod llama_common;

use common::{Rng, TempDir};
use nibble_modelfiles::{
    GgufWeightType, HfDtype, LlamaModel, export_gguf, export_hf_dir, import_gguf, import_hf_dir,
};
use std::collections::BTreeMap;

/// 1 layer, hidden 64, 2 heads / 1 KV head, ffn 64, vocab 64, with the tiny tokenizer.
fn small_model() -> LlamaModel {
    let mut config = llama_common::tiny_config(true);
    config.hidden_size = 64;
    config.num_layers = 1;
    config.num_heads = 2;
    config.num_kv_heads = 1;
    config.intermediate_size = 64;
    let mut rng = Rng::new(99);
    let tensors: BTreeMap<_, _> = config
        .expected_tensors()
        .into_iter()
        .map(|(n, s)| {
            let len = s.iter().product();
            (n, (s, (0..len).map(|_| rng.normal(0.1)).collect()))
        })
        .collect();
    LlamaModel {
        tokenizer: Some(llama_common::tiny_tokenizer(64)),
        config,
        tensors,
        tokenizer_json: None,
        grids: Default::default(),
        biases: Default::default(),
    }
}

/// A truncation or 1-4 byte changes, half of the time inside the first `hot` bytes (headers).
fn mutate(rng: &mut Rng, good: &[u8], hot: usize) -> Vec<u8> {
    let mut b = good.to_vec();
    if rng.below(4) == 0 {
        b.truncate(rng.below(good.len() as u64) as usize);
        return b;
    }
    for _ in 0..1 + rng.below(4) {
        let limit = if rng.below(2) == 0 {
            hot.min(b.len())
        } else {
            b.len()
        };
        let at = rng.below(limit as u64) as usize;
        b[at] = match rng.below(3) {
            0 => b[at] ^ (1 << rng.below(8)),
            1 => rng.next_u64() as u8,
            _ => [0u8, 0xff, b'{', b'"', b'0'][rng.below(5) as usize],
        };
    }
    b
}

const N: usize = 10_000;

#[test]
fn gguf_mutations_never_panic() {
    let dir = TempDir::new("llama-mut-gguf");
    let path = dir.path().join("m.gguf");
    export_gguf(&small_model(), GgufWeightType::Q8_0, &path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let hot = nibble_modelfiles::GgufFile::parse(&good)
        .unwrap()
        .data_offset() as usize;
    let mut rng = Rng::new(1);
    let (mut ok, mut err) = (0, 0);
    let target = dir.path().join("mut.gguf");
    for _ in 0..N {
        std::fs::write(&target, mutate(&mut rng, &good, hot)).unwrap();
        match import_gguf(&target) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(e.to_string().contains("mut.gguf"), "{e}");
                err += 1
            }
        }
    }
    common::record_figure(&format!(
        "llama GGUF import mutations: {N} files, {ok} imported, {err} errors naming the file, 0 panics"
    ));
    assert!(err > N / 4);
}

#[test]
fn safetensors_mutations_never_panic() {
    let dir = TempDir::new("llama-mut-st");
    let out = dir.path().join("m");
    export_hf_dir(&small_model(), HfDtype::F32, &out).unwrap();
    let st = out.join("model.safetensors");
    let good = std::fs::read(&st).unwrap();
    let hot = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut rng = Rng::new(2);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..N {
        std::fs::write(&st, mutate(&mut rng, &good, hot)).unwrap();
        match import_hf_dir(&out) {
            Ok(_) => ok += 1,
            Err(e) => {
                assert!(
                    e.to_string().contains("model.safetensors")
                        || e.to_string().contains(&*out.to_string_lossy()),
                    "{e}"
                );
                err += 1
            }
        }
    }
    common::record_figure(&format!(
        "HF safetensors import mutations: {N} files, {ok} imported, {err} errors naming the file, \
         0 panics"
    ));
    assert!(err > N / 4);
}
