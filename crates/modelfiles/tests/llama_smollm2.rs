//! The real SmolLM2-135M-Instruct Q4_1 GGUF through the llama import/export layer: config facts,
//! the q/k un-permutation checked against numpy attention logits computed straight from the
//! GGUF rows, F32 and Q8_0 export round trips, a numpy forward on our F32 export, and timings.
//! The GGUF comes from `nibble_data::smollm2_gguf` (cached under CARGO_TARGET_TMPDIR); without it
//! the tests print `skipped:` unless NIBBLE_PY_REFS=1.

mod common;
mod llama_common;

use common::{TempDir, python_gguf_available, run_py};
use llama_common::assert_bits_equal;
use nibble_modelfiles::{
    GgmlType, GgufWeightType, HfDtype, LlamaModel, export_gguf, export_hf_dir, import_gguf,
    import_hf_dir, quants,
};
use std::path::PathBuf;
use std::time::Instant;

fn smollm2() -> Option<PathBuf> {
    match nibble_data::smollm2_gguf(std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))) {
        Ok(p) => Some(p),
        Err(e) => {
            assert!(
                std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1"),
                "NIBBLE_PY_REFS=1 but the SmolLM2 GGUF cannot be fetched: {e}"
            );
            println!("skipped: SmolLM2 GGUF unavailable: {e}");
            None
        }
    }
}

fn import_timed(path: &std::path::Path) -> LlamaModel {
    let t0 = Instant::now();
    let m = import_gguf(path).unwrap();
    println!(
        "timing: import_gguf(SmolLM2 Q4_1) {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    m
}

#[test]
fn smollm2_import_config_and_tokenizer() {
    let Some(path) = smollm2() else { return };
    let m = import_timed(&path);
    let c = &m.config;
    assert_eq!(c.num_layers, 30);
    assert_eq!(c.hidden_size, 576);
    assert_eq!((c.num_heads, c.num_kv_heads), (9, 3));
    assert_eq!(c.intermediate_size, 1536);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.rope_theta, 1.0e5);
    assert!(c.tie_embeddings);
    assert_eq!(m.tensors.len(), 2 + 30 * 9);
    assert!(!m.tensors.contains_key("lm_head.weight"));
    assert_eq!(
        m.tensors["model.layers.29.self_attn.k_proj.weight"].0,
        vec![192, 576]
    );
    let t = m.tokenizer.as_ref().unwrap();
    assert_eq!(t.model, "gpt2");
    assert_eq!(t.pre.as_deref(), Some("smollm"));
    assert_eq!(t.tokens.len(), 49152);
    assert_eq!(t.tokens[1], "<|im_start|>");
    assert!(!t.merges.is_empty());
    assert!(t.chat_template.is_some());
}

/// Layer-0 attention logits q·k (before 1/sqrt(hd)) with HF's rotate_half RoPE on our
/// un-permuted rows, f64: [head][query][key].
fn rotate_half_scores(m: &LlamaModel, ids: &[usize]) -> Vec<Vec<Vec<f64>>> {
    let c = &m.config;
    let (d, hd) = (c.hidden_size, c.head_dim());
    let emb = &m.tensors["model.embed_tokens.weight"].1;
    let norm = &m.tensors["model.layers.0.input_layernorm.weight"].1;
    let wq = &m.tensors["model.layers.0.self_attn.q_proj.weight"].1;
    let wk = &m.tensors["model.layers.0.self_attn.k_proj.weight"].1;
    let x: Vec<Vec<f64>> = ids
        .iter()
        .map(|&t| {
            let row: Vec<f64> = emb[t * d..(t + 1) * d].iter().map(|&v| v as f64).collect();
            let ms = row.iter().map(|v| v * v).sum::<f64>() / d as f64;
            let r = 1.0 / (ms + c.rms_norm_eps).sqrt();
            row.iter()
                .zip(norm)
                .map(|(v, &w)| v * r * w as f64)
                .collect()
        })
        .collect();
    let project = |w: &[f32], n_head: usize, pos: usize, xi: &[f64]| -> Vec<Vec<f64>> {
        (0..n_head)
            .map(|h| {
                let v: Vec<f64> = (0..hd)
                    .map(|j| {
                        let row = &w[(h * hd + j) * d..(h * hd + j + 1) * d];
                        row.iter().zip(xi).map(|(&a, b)| a as f64 * b).sum()
                    })
                    .collect();
                // rotate_half: dim j pairs with j + hd/2.
                let half = hd / 2;
                let mut out = vec![0.0; hd];
                for i in 0..half {
                    let ang = pos as f64 * c.rope_theta.powf(-((2 * i) as f64) / hd as f64);
                    let (s, co) = ang.sin_cos();
                    out[i] = v[i] * co - v[i + half] * s;
                    out[i + half] = v[i + half] * co + v[i] * s;
                }
                out
            })
            .collect()
    };
    let q: Vec<_> = x
        .iter()
        .enumerate()
        .map(|(p, xi)| project(wq, c.num_heads, p, xi))
        .collect();
    let k: Vec<_> = x
        .iter()
        .enumerate()
        .map(|(p, xi)| project(wk, c.num_kv_heads, p, xi))
        .collect();
    let group = c.num_heads / c.num_kv_heads;
    (0..c.num_heads)
        .map(|h| {
            (0..ids.len())
                .map(|a| {
                    (0..ids.len())
                        .map(|b| {
                            q[a][h]
                                .iter()
                                .zip(&k[b][h / group])
                                .map(|(x, y)| x * y)
                                .sum()
                        })
                        .collect()
                })
                .collect()
        })
        .collect()
}

#[test]
fn smollm2_qk_unpermutation_matches_adjacent_pair_rope() {
    let Some(path) = smollm2() else { return };
    if !python_gguf_available("smollm2 q/k un-permutation") {
        return;
    }
    let m = import_gguf(&path).unwrap();
    let ids = [504usize, 3458, 282, 4649, 314, 9, 1029];
    let arg = ids
        .iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let out = run_py(
        "qk_scores_adjacent_rope.py",
        &[path.as_os_str(), std::ffi::OsStr::new(&arg)],
    );
    let reference: Vec<Vec<Vec<f64>>> = serde_json::from_str(&out).unwrap();
    let ours = rotate_half_scores(&m, &ids);
    let scale = reference
        .iter()
        .flatten()
        .flatten()
        .fold(0f64, |a, v| a.max(v.abs()));
    let mut worst = 0f64;
    for (h, (r, o)) in reference.iter().zip(&ours).enumerate() {
        for (a, (rr, oo)) in r.iter().zip(o).enumerate() {
            for (b, (x, y)) in rr.iter().zip(oo).enumerate() {
                if b > a {
                    continue; // causal: only these are used, but all are comparable anyway
                }
                let rel = (x - y).abs() / scale;
                worst = worst.max(rel);
                assert!(
                    rel < 1e-4,
                    "head {h} q {a} k {b}: numpy {x}, ours {y} (scale {scale})"
                );
            }
        }
    }
    println!("q/k scores: max |diff| / max |score| = {worst:.2e} (scale {scale:.3})");
    // The check must be able to fail: without the un-permutation the scores differ.
    let mut raw = m.clone();
    for l in 0..1 {
        for (name, heads) in [("q_proj", 9), ("k_proj", 3)] {
            let key = format!("model.layers.{l}.self_attn.{name}.weight");
            let (shape, v) = raw.tensors.get_mut(&key).unwrap();
            *v = nibble_modelfiles::llama::rope_permute::hf_to_gguf_rows(v, heads, shape[1]);
        }
    }
    let wrong = rotate_half_scores(&raw, &ids);
    let bad = reference
        .iter()
        .flatten()
        .flatten()
        .zip(wrong.iter().flatten().flatten())
        .fold(0f64, |a, (x, y)| a.max((x - y).abs() / scale));
    assert!(bad > 1e-2, "permuted rows should not match: {bad}");
}

#[test]
fn smollm2_export_round_trips_and_numpy_forward() {
    let Some(path) = smollm2() else { return };
    let m = import_timed(&path);
    let dir = TempDir::new("llama-smollm2");

    // F32: bit-identical re-import.
    let f32_path = dir.path().join("smollm2-f32.gguf");
    export_gguf(&m, GgufWeightType::F32, &f32_path).unwrap();
    let back = import_gguf(&f32_path).unwrap();
    assert_eq!(back.config, m.config);
    assert_eq!(back.tokenizer, m.tokenizer);
    assert_bits_equal(&back.tensors, &m.tensors);
    drop(back);

    // Q8_0: equal to Q8_0 quantize + dequantize of the imported tensors.
    let q8_path = dir.path().join("smollm2-q8.gguf");
    let t0 = Instant::now();
    export_gguf(&m, GgufWeightType::Q8_0, &q8_path).unwrap();
    println!(
        "timing: export_gguf(SmolLM2, Q8_0) {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    let back = import_gguf(&q8_path).unwrap();
    for (name, (shape, v)) in &m.tensors {
        let want = if shape.len() == 2 {
            quants::dequantize(
                GgmlType::Q8_0,
                &quants::quantize(GgmlType::Q8_0, v).unwrap(),
            )
            .unwrap()
        } else {
            v.clone()
        };
        let got = &back.tensors[name].1;
        assert!(
            want.iter()
                .zip(got)
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{name}"
        );
    }
    drop(back);

    // HF bf16: timing and a re-import equal to the RNE-rounded values.
    let hf = dir.path().join("smollm2-hf");
    let t0 = Instant::now();
    export_hf_dir(&m, HfDtype::Bf16, &hf).unwrap();
    println!(
        "timing: export_hf_dir(SmolLM2, bf16) {:.3} s",
        t0.elapsed().as_secs_f64()
    );
    let back = import_hf_dir(&hf).unwrap();
    for (name, (_, v)) in &m.tensors {
        let got = &back.tensors[name].1;
        assert!(
            v.iter()
                .zip(got)
                .all(|(a, b)| half::bf16::from_f32(*a).to_f32().to_bits() == b.to_bits()),
            "{name}"
        );
    }
    assert_eq!(
        back.tokenizer.as_ref().unwrap().tokens,
        m.tokenizer.as_ref().unwrap().tokens
    );
    drop(back);

    // The numpy forward reads our F32 export as llama.cpp would and continues the prompt.
    if !python_gguf_available("smollm2 numpy forward on the F32 export") {
        return;
    }
    let t0 = Instant::now();
    let out = run_py(
        "llama_numpy_generate.py",
        &[
            f32_path.as_os_str(),
            std::ffi::OsStr::new("The capital of France is"),
            std::ffi::OsStr::new("4"),
        ],
    );
    println!(
        "numpy greedy continuation: {:?} ({:.1} s)",
        out.trim_end_matches('\n'),
        t0.elapsed().as_secs_f64()
    );
    assert!(out.starts_with(" Paris."), "continuation {out:?}");
}
