//! The `nibble` binary end to end: bad recipes exit 2 with file:line:column and key and write
//! nothing; a tiny run writes checkpoints, metrics.jsonl and tensorboard events that the Python
//! `tensorboard` package reads back; `eval` reproduces the final validation loss.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{nibble, scratch};

/// A small valid recipe, one line per entry so tests can name line numbers.
fn lines() -> Vec<&'static str> {
    vec![
        "[run]",               // 1
        "name = \"t\"",        // 2
        "steps = 4",           // 3
        "batch_size = 2",      // 4
        "",                    // 5
        "[model]",             // 6
        "preset = \"tiny\"",   // 7
        "seq_len = 16",        // 8
        "n_layers = 1",        // 9
        "",                    // 10
        "[data]",              // 11
        "source = \"sample\"", // 12
        "",                    // 13
        "[optim]",             // 14
        "lr = 0.003",          // 15
        "",                    // 16
        "[eval]",              // 17
        "every = 2",           // 18
        "batches = 2",         // 19
        "",                    // 20
        "[log]",               // 21
        "every = 1",           // 22
        "",                    // 23
        "[checkpoint]",        // 24
        "every = 2",           // 25
    ]
}

fn write_recipe(dir: &Path, lines: &[&str]) -> PathBuf {
    let p = dir.join("r.toml");
    fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn assert_bad(lines: Vec<&str>, want_line: usize, want_key: &str) {
    let d = scratch("bad");
    write_recipe(&d, &lines);
    let (code, _, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 2, "stderr: {err}");
    assert!(
        err.contains(&format!("r.toml:{want_line}:")),
        "expected line {want_line} in: {err}"
    );
    assert!(
        err.contains(want_key),
        "expected key `{want_key}` in: {err}"
    );
    let entries: Vec<_> = fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["r.toml"], "a bad recipe must write nothing");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn unknown_key_wrong_type_and_invalid_value_exit_2_with_their_line() {
    let mut l = lines();
    l[14] = "lrr = 0.003"; // line 15
    assert_bad(l, 15, "lrr");
    let mut l = lines();
    l[3] = "batch_size = \"two\""; // line 4
    assert_bad(l, 4, "batch_size");
    let mut l = lines();
    l[14] = "lr = -1.0"; // line 15
    assert_bad(l, 15, "optim.lr");
    let mut l = lines();
    l[8] = "n_layers = 0"; // line 9
    assert_bad(l, 9, "model.n_layers");
}

#[test]
fn set_override_errors_name_the_argument() {
    let d = scratch("set");
    write_recipe(&d, &lines());
    let (code, _, err) = nibble(&["train", "--recipe", "r.toml", "--set", "optim.lr=-5"], &d);
    assert_eq!(code, 2);
    assert!(err.contains("--set optim.lr=-5"), "{err}");
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn tiny_run_writes_everything_and_tensorboard_reads_it_back() {
    let d = scratch("run");
    write_recipe(&d, &lines());
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("final validation"), "{out}");
    let run = d.join("runs/t");
    for f in [
        "recipe.toml",
        "metrics.jsonl",
        "checkpoints/step-00000004/model.safetensors",
    ] {
        assert!(run.join(f).exists(), "missing {f}");
    }
    // The logged values, as written to metrics.jsonl.
    let rows: Vec<serde_json::Value> = fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let loss: Vec<(u64, f64)> = rows
        .iter()
        .filter(|r| r.get("train/loss").is_some())
        .map(|r| {
            (
                r["step"].as_u64().unwrap(),
                r["train/loss"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(loss.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3, 4]);
    // `eval` recomputes the last checkpoint's validation loss.
    let (code, eval_out, err) = nibble(&["eval", "--checkpoint", "runs/t"], &d);
    assert_eq!(code, 0, "{err}");
    let val = rows
        .iter()
        .rev()
        .find_map(|r| r.get("val/loss").and_then(|v| v.as_f64()))
        .unwrap();
    assert!(
        eval_out.contains(&format!("val loss {val:.4}")),
        "{eval_out} vs {val}"
    );
    // `--batches 0` evaluates nothing: refused as a bad argument.
    let (code, _, err) = nibble(&["eval", "--checkpoint", "runs/t", "--batches", "0"], &d);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--batches"), "{err}");
    // A NaN written into the final norm's gains of the newest checkpoint. The checksum catches
    // it: `eval` of that checkpoint fails naming the file; `eval` of the run moves it aside and
    // falls back to step 2 with a warning.
    let ck = run.join("checkpoints/step-00000004");
    let st = ck.join("model.safetensors");
    let pristine = fs::read(&st).unwrap();
    let mut bytes = pristine.clone();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let at = 8
        + n
        + header["model.norm.weight"]["data_offsets"][0]
            .as_u64()
            .unwrap() as usize;
    bytes[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    fs::write(&st, &bytes).unwrap();
    let (code, out, err) = nibble(&["eval", "--checkpoint", ck.to_str().unwrap()], &d);
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(
        err.contains("model.safetensors") && err.contains("damaged"),
        "{err}"
    );
    let (code, out, err) = nibble(&["eval", "--checkpoint", "runs/t"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(out.contains("(step 2)"), "{out}");
    assert!(err.contains("step 4 is damaged"), "{err}");
    assert!(run.join("damaged/step-00000004").is_dir());
    // The same NaN with checksums that match it (a forged checkpoint): the non-finite loss
    // fails `eval` with exit 1.
    let forged = run.join("checkpoints/step-00000004");
    fs::rename(run.join("damaged/step-00000004"), &forged).unwrap();
    common::reseal(&forged);
    let (code, out, err) = nibble(&["eval", "--checkpoint", "runs/t"], &d);
    assert_eq!(code, 1, "stdout {out}\nstderr {err}");
    assert!(err.contains("non-finite"), "{err}");
    // A recipe edited after the run: its checkpoints are refused by `eval` as by `--resume`.
    fs::write(&st, &pristine).unwrap();
    common::reseal(&forged);
    let recipe = run.join("recipe.toml");
    let text = fs::read_to_string(&recipe).unwrap();
    assert!(text.contains("lr = 0.003"), "{text}");
    fs::write(&recipe, text.replace("lr = 0.003", "lr = 0.004")).unwrap();
    let (code, _, err) = nibble(&["eval", "--checkpoint", "runs/t"], &d);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("different recipe"), "{err}");
    fs::write(&recipe, text).unwrap();
    // Python's tensorboard EventAccumulator reads the same scalars back.
    if std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1") {
        println!(
            "skipped tensorboard read-back: set NIBBLE_PY_REFS=1 (needs `pip install tensorboard`)"
        );
        return;
    }
    let script = r#"
import sys, json
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1]); ea.Reload()
print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
"#;
    let py = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(run.join("tb"))
        .output()
        .expect("python3");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let tb: serde_json::Value = serde_json::from_slice(&py.stdout).unwrap();
    for tag in [
        "train/loss",
        "train/lr",
        "train/grad_norm",
        "train/tokens_per_sec",
        "val/loss",
        "val/bpb",
    ] {
        assert!(tb.get(tag).is_some(), "tag {tag} missing: {tb}");
    }
    let tb_loss: Vec<(u64, f64)> = tb["train/loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()))
        .collect();
    assert_eq!(tb_loss.len(), loss.len());
    for ((s1, v1), (s2, v2)) in tb_loss.iter().zip(&loss) {
        assert_eq!(s1, s2);
        assert!(
            (v1 - v2).abs() <= 1e-6 * v2.abs(),
            "step {s1}: tensorboard {v1} vs jsonl {v2}"
        );
    }
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_panic_in_a_command_exits_1_with_one_message() {
    let d = scratch("panic");
    // NIBBLE_DEBUG_PANIC=1 panics at the start of any command (no command is known to panic).
    let out = Command::new(env!("CARGO_BIN_EXE_nibble"))
        .args(["report", "."])
        .current_dir(&d)
        .env("NIBBLE_DEBUG_PANIC", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: internal error: NIBBLE_DEBUG_PANIC=1 (at ")
            && err.contains("main.rs:"),
        "{err}"
    );
    assert!(!err.contains("panicked at"), "no default panic text: {err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    fs::remove_dir_all(&d).unwrap();
}
