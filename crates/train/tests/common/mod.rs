//! Shared by the trainer's integration tests: a small recipe on the bundled sample corpus, a
//! quiet run, and a checkpoint's bytes.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainError, TrainOptions, TrainSummary, train};

/// A train state at `step` for tests that save checkpoints directly.
pub fn train_state(step: u64) -> nibble_train::checkpoint::TrainState {
    nibble_train::checkpoint::TrainState {
        step,
        tokens: 0,
        data_cursor: serde_json::Value::Null,
        recipe_hash: "test".into(),
        best_val_loss: None,
        wall_secs: 0.0,
        world: 1,
    }
}

/// A fresh temporary directory for one test.
pub fn tmp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nibble-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

pub fn recipe_text(out: &Path, name: &str, steps: u64) -> String {
    recipe_with(out, name, steps, "")
}

/// A 2-block tiny model on the sample corpus, checkpoints every 3 steps; `extra` is appended.
pub fn recipe_with(out: &Path, name: &str, steps: u64, extra: &str) -> String {
    format!(
        r#"
[run]
name = "{name}"
out_dir = "{}"
seed = 3
steps = {steps}
batch_size = 4
grad_accum = 2

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"
cache_dir = "{}"

[schedule]
kind = "wsd"
warmup_steps = 2
decay_fraction = 0.25

[eval]
every = 3
batches = 2

[log]
every = 1
progress = false

[checkpoint]
every = 3
keep_last = 2
{extra}
"#,
        out.display(),
        out.join("cache").display()
    )
}

pub fn run(text: &str, resume: bool, stop_after: Option<u64>) -> Result<TrainSummary, TrainError> {
    let recipe: Recipe = toml::from_str(text).unwrap();
    train::<Flex>(
        &recipe,
        text,
        &TrainOptions {
            resume,
            quiet: true,
            stop_after,
            run_dir: None,
            ..Default::default()
        },
        &Default::default(),
    )
}

pub fn ckpt_bytes(run_dir: &Path, step: u64) -> (Vec<u8>, Vec<u8>) {
    let d = run_dir.join("checkpoints").join(format!("step-{step:08}"));
    (
        fs::read(d.join("model.safetensors")).unwrap(),
        fs::read(d.join("optimizer.safetensors")).unwrap(),
    )
}

/// The tensors of a checkpoint's `model.safetensors` (parameters and buffers).
pub fn ckpt_tensors(run_dir: &Path, step: u64) -> nibble_train::checkpoint::HostTensors {
    let (model, _) = ckpt_bytes(run_dir, step);
    nibble_train::checkpoint::read_safetensors(&model).unwrap()
}

/// A metric's (step, value) pairs from a run's metrics.jsonl.
pub fn metric(run_dir: &Path, key: &str) -> Vec<(u64, f64)> {
    fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|v| Some((v["step"].as_u64()?, v[key].as_f64()?)))
        .collect()
}

/// Each recipe text of `cases` (text, key, ":line:") written to `dir/bad<i>.toml` is refused by
/// validation at that key, with its file and line in the message.
pub fn assert_refused_at(dir: &Path, cases: &[(&str, &str, &str)]) {
    fs::create_dir_all(dir).unwrap();
    for (i, (text, key, line)) in cases.iter().enumerate() {
        let p = dir.join(format!("bad{i}.toml"));
        fs::write(&p, text).unwrap();
        let err =
            nibble_train::recipe::load_recipe::<Recipe>(&p, &[], Recipe::validate).unwrap_err();
        let shown = err.to_string();
        assert_eq!(err.key().as_deref(), Some(*key), "{shown}");
        assert!(shown.contains(&format!("bad{i}.toml{line}")), "{shown}");
    }
    let _ = fs::remove_dir_all(dir);
}

fn sha_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Rewrites a checkpoint's state.json after `edit`, with the tensor files' entries and the self
/// checksum (the SHA-256 of the text before its last member) recomputed here: an independent
/// writer making a consistent forgery, not a torn write, to test what lies behind the checksums.
pub fn reseal(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("state.json");
    let mut meta: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
    meta.as_object_mut().unwrap().remove("checksum");
    edit(&mut meta);
    if !meta["files"].is_object() {
        meta["files"] = serde_json::json!({});
    }
    for f in ["model.safetensors", "optimizer.safetensors"] {
        let b = fs::read(dir.join(f)).unwrap();
        meta["files"][f] = serde_json::json!({ "bytes": b.len(), "sha256": sha_hex(&b) });
    }
    let body = serde_json::to_string_pretty(&meta).unwrap();
    let head = body.strip_suffix("\n}").unwrap();
    let sum = sha_hex(body.as_bytes());
    fs::write(&p, format!("{head},\n  \"checksum\": \"{sum}\"\n}}")).unwrap();
}

/// Records a harness figure (a line `name: figures`) in `target/tmp/fault-harness.txt`, which
/// `.ci/run` prints after the suite; a line of the same name from an earlier run is replaced.
pub fn record_figure(line: &str) {
    eprintln!("{line}");
    let p = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-harness.txt");
    let name = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let kept: String = std::fs::read_to_string(&p)
        .unwrap_or_default()
        .lines()
        .filter(|l| name(l) != name(line))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::fs::write(&p, format!("{kept}{line}\n"));
}
