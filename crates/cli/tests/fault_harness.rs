//! The fault harness (run by `.ci/run` with the rest of the suite): the `nibble` binary is
//! SIGKILLed at ≥ 10 random moments of a small run (startup, steps, evaluations, checkpoint
//! writes) and resumed each time; the result must equal an uninterrupted run's bit for bit.
//! Then every corruption class (a bit flip in tensor data or a header, an edited state.json,
//! a truncation, a deleted file) is applied to the newest checkpoint of a stopped run: `--resume`
//! must name the damaged file, move it aside, fall back and still end bit-identical.
//! The figures go to stderr and to `target/tmp/fault-harness.txt`.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{nibble, scratch};

const RECIPE: &str = r#"[run]
name = "f"
steps = 24
batch_size = 4
seed = 11

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"

[eval]
every = 4
batches = 2

[log]
every = 1

[checkpoint]
every = 2
keep_last = 2
"#;

/// Deterministic delays (xorshift), so a failure names a reproducible schedule.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn final_bytes(run: &Path) -> (Vec<u8>, Vec<u8>) {
    let d = run.join("checkpoints/step-00000024");
    (
        fs::read(d.join("model.safetensors")).unwrap(),
        fs::read(d.join("optimizer.safetensors")).unwrap(),
    )
}

fn has_checkpoint(run: &Path) -> bool {
    fs::read_dir(run.join("checkpoints")).is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let n = e.file_name().into_string().unwrap_or_default();
            n.starts_with("step-") && !n.ends_with(".tmp")
        })
    })
}

/// `nibble train` (with `--resume` once a checkpoint exists), as a child process.
fn start(dir: &Path, run: &Path) -> std::process::Child {
    let mut args = vec!["train", "--recipe", "r.toml"];
    if has_checkpoint(run) {
        args.push("--resume");
    }
    Command::new(env!("CARGO_BIN_EXE_nibble"))
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn nibble")
}

/// Steps logged in metrics.jsonl with a training loss: each once, in order.
fn logged_steps(run: &Path) -> Vec<u64> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("train/loss").is_some())
        .map(|v| v["step"].as_u64().unwrap())
        .collect()
}

/// The reference: one uninterrupted run in `dir`; its wall time and final checkpoint.
fn reference(tag: &str) -> (PathBuf, Duration, (Vec<u8>, Vec<u8>)) {
    let d = scratch(tag);
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let t0 = Instant::now();
    let (code, _, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "{err}");
    let wall = t0.elapsed();
    let bytes = final_bytes(&d.join("runs/f"));
    (d, wall, bytes)
}

#[test]
fn sigkill_at_random_moments_then_resume_is_bit_identical() {
    let (ref_dir, wall, want) = reference("faults-ref");
    let d = scratch("faults-kill");
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let run = d.join("runs/f");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut kills, mut attempts) = (0, 0);
    // Where each kill landed: the last step logged, and whether a checkpoint was being staged.
    let (mut at_steps, mut mid_save) = (Vec::new(), 0);
    while kills < 12 {
        attempts += 1;
        assert!(attempts < 60, "the run keeps finishing before the kill");
        let mut child = start(&d, &run);
        // Anywhere from startup to the end of a whole run's time.
        std::thread::sleep(wall.mul_f64(0.05 + 0.95 * rng.next()));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL on Unix
            child.wait().unwrap();
            kills += 1;
            at_steps.push(
                fs::read_to_string(run.join("metrics.jsonl")).map_or(0, |t| {
                    t.lines()
                        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .filter_map(|v| v["step"].as_u64())
                        .max()
                        .unwrap_or(0)
                }),
            );
            let staging = |e: fs::DirEntry| e.file_name().to_string_lossy().ends_with(".tmp");
            if fs::read_dir(run.join("checkpoints"))
                .is_ok_and(|rd| rd.filter_map(Result::ok).any(staging))
            {
                mid_save += 1;
            }
        } else if run.join("summary.json").exists() {
            // Finished before the kill: start the killed run over to keep killing it.
            fs::remove_dir_all(&run).unwrap();
        } else {
            panic!("nibble exited early: {:?}", child.wait().unwrap());
        }
    }
    let child = start(&d, &run).wait_with_output().unwrap();
    assert!(child.status.success(), "final resume failed");
    assert!(
        final_bytes(&run) == want,
        "weights or optimizer state differ"
    );
    assert_eq!(logged_steps(&run), (1..=24).collect::<Vec<_>>());
    common::record_figure(&format!(
        "sigkill: {kills} kills survived in {attempts} attempts ({mid_save} during a checkpoint \
         write; last step logged at each kill {at_steps:?}), final checkpoint bit-identical"
    ));
    let _ = fs::remove_dir_all(&d);
    let _ = fs::remove_dir_all(&ref_dir);
}

fn flip(path: &Path, at: impl Fn(usize) -> usize) {
    let mut b = fs::read(path).unwrap();
    let i = at(b.len());
    b[i] ^= 0x01;
    fs::write(path, b).unwrap();
}

#[test]
fn every_corruption_class_is_detected_and_recovered_from() {
    let (ref_dir, _, want) = reference("faults-cref");
    type Class = (&'static str, &'static str, fn(&Path));
    let classes: [Class; 7] = [
        ("bit flip in tensor data", "model.safetensors", |c| {
            flip(&c.join("model.safetensors"), |n| n / 2)
        }),
        ("bit flip in a header", "model.safetensors", |c| {
            flip(&c.join("model.safetensors"), |_| 20)
        }),
        (
            "bit flip in optimizer state",
            "optimizer.safetensors",
            |c| flip(&c.join("optimizer.safetensors"), |n| n - 1),
        ),
        ("edited state.json step", "state.json", |c| {
            let p = c.join("state.json");
            let t = fs::read_to_string(&p).unwrap();
            fs::write(&p, t.replacen("\"step\": 12", "\"step\": 14", 1)).unwrap();
        }),
        ("truncated file", "optimizer.safetensors", |c| {
            let p = c.join("optimizer.safetensors");
            let b = fs::read(&p).unwrap();
            fs::write(&p, &b[..b.len() - 100]).unwrap();
        }),
        ("deleted file", "model.safetensors", |c| {
            fs::remove_file(c.join("model.safetensors")).unwrap()
        }),
        ("deleted state.json", "state.json", |c| {
            fs::remove_file(c.join("state.json")).unwrap()
        }),
    ];
    let mut detected = 0;
    for (i, (what, file, corrupt)) in classes.iter().enumerate() {
        let d = scratch(&format!("faults-c{i}"));
        fs::write(d.join("r.toml"), RECIPE).unwrap();
        let (code, _, err) = nibble(&["train", "--recipe", "r.toml", "--stop-after", "13"], &d);
        assert_eq!(code, 0, "{err}");
        let run = d.join("runs/f");
        corrupt(&run.join("checkpoints/step-00000012"));
        let (code, _, err) = nibble(&["train", "--recipe", "r.toml", "--resume"], &d);
        assert_eq!(code, 0, "{what}: {err}");
        assert!(
            err.contains("step 12 is damaged") && err.contains(file),
            "{what}: the warning names the step and {file}: {err}"
        );
        assert!(
            err.contains("steps 11..=12 will be replayed"),
            "{what}: {err}"
        );
        assert!(run.join("damaged/step-00000012").is_dir(), "{what}");
        assert!(final_bytes(&run) == want, "{what}: not bit-identical");
        assert_eq!(logged_steps(&run), (1..=24).collect::<Vec<_>>(), "{what}");
        detected += 1;
        let _ = fs::remove_dir_all(&d);
    }
    common::record_figure(&format!(
        "corruption: {detected} of {} classes detected and recovered from bit-identically",
        classes.len()
    ));
    let _ = fs::remove_dir_all(&ref_dir);
}
