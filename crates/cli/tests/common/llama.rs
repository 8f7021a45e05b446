//! llama.cpp through llama-cpp-python, and Nibble's forward on a GGUF file's weights: what the
//! export tests compare.

use std::ffi::OsStr;
use std::fs;
use std::path::Path;
use std::process::Command;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::ForwardCtx;
use nibble_train::sections::Recipe;
use nibble_train::trainer::Parts;

/// Whether llama-cpp-python is importable (required with `NIBBLE_PY_REFS=1`; else a `skipped:`
/// line).
pub fn llama_cpp_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import llama_cpp"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1") {
        panic!("NIBBLE_PY_REFS=1 but llama_cpp (llama-cpp-python) is not importable");
    }
    if !ok {
        println!("skipped: llama-cpp-python is not installed");
    }
    ok
}

/// Runs `tests/py/<script>` with `args` (`what` names the run in a failure); returns stdout.
pub fn py(script: &str, args: &[&OsStr], what: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let run = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        run.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8_lossy(&run.stdout).into_owned()
}

/// Logits a script wrote as raw little-endian f32.
fn read_f32(path: &Path) -> Vec<f32> {
    fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn id_list(ids: &[u32]) -> String {
    ids.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// llama.cpp's logits `[n, vocab]` on `ids`, and its greedy continuation of `prompt`.
pub fn llama_cpp(gguf: &Path, ids: &[u32], prompt: Option<&str>, dir: &Path) -> (Vec<f32>, String) {
    let out = dir.join("logits.f32");
    let list = id_list(ids);
    let mut args = vec![gguf.as_os_str(), list.as_ref(), out.as_os_str()];
    args.extend(prompt.map(OsStr::new));
    let stdout = py(
        "llama_cpp_logits.py",
        &args,
        &format!("llama.cpp on {}", gguf.display()),
    );
    (read_f32(&out), stdout)
}

/// Nibble's logits on `ids` with the weights of `model`, a GGUF file or an HF directory
/// (imported: dequantized to f32).
pub fn nibble_logits(model: &Path, ids: &[u32], cache: &Path) -> Vec<f32> {
    let key = if model.is_dir() { "hf" } else { "gguf" };
    let text = format!(
        "[init]\n{key} = {:?}\n[model]\nseq_len = {}\n[data]\nsource = \"sample\"\ntokenizer = \"model\"\ncache_dir = {:?}\n",
        model.display().to_string(),
        ids.len(),
        cache.display().to_string()
    );
    let r: Recipe = toml::from_str(&text).unwrap();
    let parts = Parts::<Flex>::build(&r, false, &Default::default()).unwrap();
    let rope = parts.model.rope::<Flex>(&Default::default());
    let v: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
    let t =
        Tensor::<Flex, 2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &Default::default());
    parts
        .model
        .forward(&parts.params, &rope, t, &mut ForwardCtx::new(0, 0, false))
        .into_data()
        .into_vec()
        .unwrap()
}

/// Nibble's logits on `ids` from a run's newest checkpoint, with the run's own model (its
/// techniques: grids, output biases), computed in f32 on the CPU; `edit` may change the recipe
/// the model is built from (the checkpoint's tensors must still fit it).
pub fn checkpoint_logits(
    run_dir: &Path,
    ids: &[u32],
    cache: &Path,
    edit: impl Fn(&mut Recipe),
) -> Vec<f32> {
    let text = fs::read_to_string(run_dir.join("recipe.toml")).unwrap();
    let mut r: Recipe = toml::from_str(&text).unwrap();
    edit(&mut r);
    r.data.cache_dir = cache.to_path_buf();
    let dev = Default::default();
    let mut parts = Parts::<Flex>::build(&r, true, &dev).unwrap();
    let ck = nibble_train::checkpoint::latest(run_dir).expect("a checkpoint");
    nibble_train::checkpoint::load(&ck, &mut parts.params, &mut parts.opt, &dev).unwrap();
    let rope = parts.model.rope::<Flex>(&dev);
    let v: Vec<i32> = ids.iter().map(|&i| i as i32).collect();
    let t = Tensor::<Flex, 2, Int>::from_data(TensorData::new(v, [1, ids.len()]), &dev);
    let step = u64::MAX / 2;
    parts
        .model
        .forward(
            &parts.params,
            &rope,
            t,
            &mut ForwardCtx::new(0, step, false),
        )
        .into_data()
        .into_vec()
        .unwrap()
}

/// (positions whose argmax agrees, max |Δ| / max |reference|).
pub fn compare(ours: &[f32], theirs: &[f32], vocab: usize) -> (usize, f32) {
    assert_eq!(ours.len(), theirs.len());
    let argmax = |r: &[f32]| (0..r.len()).max_by(|&i, &j| r[i].total_cmp(&r[j])).unwrap();
    let agree = ours
        .chunks(vocab)
        .zip(theirs.chunks(vocab))
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let scale = ours.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(theirs)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    (agree, diff / scale)
}

/// Whether transformers (with torch and compressed-tensors) is importable (required with
/// `NIBBLE_PY_REFS=1`; else a `skipped:` line).
pub fn transformers_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import transformers, torch, compressed_tensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1") {
        panic!("NIBBLE_PY_REFS=1 but transformers/torch/compressed_tensors are not importable");
    }
    if !ok {
        println!("skipped: transformers (torch, compressed-tensors) is not installed");
    }
    ok
}

/// transformers' float32 logits `[n, vocab]` on `ids` for the checkpoint directory `model`, and
/// what it printed (model class, quantization method); `dequantize`: decompress a
/// compressed-tensors model at load instead of running it compressed.
pub fn transformers_logits(
    model: &Path,
    ids: &[u32],
    dir: &Path,
    dequantize: bool,
) -> (Vec<f32>, String) {
    let out = dir.join("tf-logits.f32");
    let list = id_list(ids);
    let mut args = vec![model.as_os_str(), list.as_ref(), out.as_os_str()];
    if dequantize {
        args.push(OsStr::new("dequantize"));
    }
    let stdout = py(
        "transformers_logits.py",
        &args,
        &format!("transformers on {}", model.display()),
    );
    (read_f32(&out), stdout)
}

/// A run of the reference model through Nibble: imported, one frozen step, in `d/runs/s`.
/// Returns the model cache, or `None` (with a `skipped:` line) when the SmolLM2 GGUF cannot be
/// fetched and `NIBBLE_PY_REFS` is not 1.
pub fn smollm2_frozen_run(d: &Path) -> Option<std::path::PathBuf> {
    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smollm2-cache");
    if let Err(e) = nibble_data::smollm2_gguf(&cache) {
        assert!(std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1"), "{e}");
        println!("skipped: the SmolLM2 GGUF cannot be fetched ({e})");
        return None;
    }
    let recipe = format!(
        "[run]\nname = \"s\"\nsteps = 1\nbatch_size = 1\n[init]\npretrained = \"smollm2-135m-instruct\"\n[model]\nseq_len = 16\n[data]\nsource = \"sample\"\ntokenizer = \"model\"\ncache_dir = {:?}\n[[optim.groups]]\nmatch = \"*\"\nfrozen = true\n[eval]\nbatches = 1\n[log]\ntensorboard = false\n",
        cache.display().to_string()
    );
    fs::write(d.join("r.toml"), recipe).unwrap();
    let (code, out, err) = super::nibble(&["train", "--recipe", "r.toml"], d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    Some(cache)
}

/// "To be, or not to be, that is the question:" in SmolLM2's tokens (the import goldens).
pub const SMOLLM2_IDS: [u32; 13] = [
    2068, 325, 28, 355, 441, 288, 325, 28, 338, 314, 260, 1962, 42,
];
