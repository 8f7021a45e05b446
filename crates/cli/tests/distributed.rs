//! Data parallelism on the CPU (peers as threads on Flex, burn-collective): two peers with one
//! micro-batch each end bit-identical to one device accumulating the same two micro-batches
//! (Quartet MXFP4 with stochastic rounding in one block, an SR-STE 2:4 mask in another); with
//! FP8 delayed scaling the peers hold the same parameters and amax histories after every update
//! (hash-checked, and a nudged weight on one peer is caught); a peer that panics or hangs stops the run with exit 1 naming it (within the
//! timeout) and a resume ends bit-identical to an uninterrupted run; another number of peers
//! is refused on resume; multi-node is refused with the reason. Each run is its own process
//! (burn-collective keeps one server per process).

mod common;

use std::fs;
use std::path::Path;
use std::time::Instant;

use common::{nibble, scratch};

const BASE: &str = r#"[run]
name = "one"
steps = 6
batch_size = 4
grad_accum = 2
seed = 5

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"

[eval]
every = 3
batches = 2

[log]
every = 1

[checkpoint]
every = 3

[precision]
default = "bf16"

[[precision.rules]]
last_blocks = 1
scheme = "quartet-mxfp4"

[sparsity]
method = "sr-ste"
pattern = "2:4"
modules = ["model.layers.0.mlp.*"]
"#;

/// A data-parallel variant of `base.toml`: two peers, one micro-batch each.
fn dp(name: &str, extra: &str) -> String {
    format!(
        "include = [\"base.toml\"]\n[run]\nname = \"{name}\"\ngrad_accum = 1\n\n\
         [distributed]\ndevices = 2\ncheck_every = 1\n{extra}"
    )
}

fn bytes(run: &Path, step: u64) -> (Vec<u8>, Vec<u8>) {
    let d = run.join(format!("checkpoints/step-{step:08}"));
    (
        fs::read(d.join("model.safetensors")).unwrap(),
        fs::read(d.join("optimizer.safetensors")).unwrap(),
    )
}

fn metric(run: &Path, key: &str) -> Vec<(u64, f64)> {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| Some((v["step"].as_u64()?, v[key].as_f64()?)))
        .collect()
}

fn train(d: &Path, recipe: &str, extra: &[&str], env: Option<(&str, &str)>) -> (i32, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_nibble"));
    cmd.args(["train", "--recipe", recipe])
        .args(extra)
        .current_dir(d);
    cmd.env_remove("RUST_BACKTRACE");
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn two_peers_equal_one_device_accumulating_their_micro_batches() {
    let d = scratch("dp-equal");
    fs::write(d.join("base.toml"), BASE).unwrap();
    fs::write(d.join("dp.toml"), dp("two", "")).unwrap();
    let (code, out) = train(&d, "base.toml", &[], None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = train(&d, "dp.toml", &[], None);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 peers x batch 4 x grad_accum 1 = global batch 8"),
        "{out}"
    );
    let (one, two) = (d.join("runs/one"), d.join("runs/two"));
    assert!(
        bytes(&one, 6) == bytes(&two, 6),
        "weights, masks or moments differ"
    );
    assert!(bytes(&one, 3) == bytes(&two, 3));
    // The logged loss is all-reduced in f32: equal to rounding.
    for ((s1, a), (s2, b)) in metric(&one, "train/loss")
        .iter()
        .zip(metric(&two, "train/loss"))
    {
        assert_eq!(*s1, s2);
        assert!((a - b).abs() <= 1e-6 * a.abs(), "step {s1}: {a} vs {b}");
    }
    assert_eq!(metric(&one, "val/loss"), metric(&two, "val/loss"));
    let frac = metric(&two, "dist/allreduce_fraction");
    assert!(
        frac.len() == 1 && (0.0..1.0).contains(&frac[0].1),
        "{frac:?}"
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn delayed_scaling_state_stays_identical_across_peers() {
    let d = scratch("dp-delayed");
    let base = BASE.replace("default = \"bf16\"", "default = \"fp8-delayed\"");
    fs::write(d.join("base.toml"), &base).unwrap();
    fs::write(d.join("dp.toml"), dp("two", "")).unwrap();
    // check_every = 1: the parameters and buffers (amax histories, scales, masks) of both
    // peers are hashed and compared after every update; a difference stops the run.
    let (code, out) = train(&d, "dp.toml", &[], None);
    assert_eq!(code, 0, "{out}");
    let (code, out) = train(&d, "base.toml", &[], None);
    assert_eq!(code, 0, "{out}");
    // Not bitwise against one device: its accumulation scales each micro-batch's loss by 1/2,
    // and delayed scaling quantizes dy with last step's scale (not the tensor's own), so dy/2
    // rounds differently in FP8. Same run to a loose tolerance.
    let a = metric(&d.join("runs/one"), "val/loss");
    let b = metric(&d.join("runs/two"), "val/loss");
    for ((_, x), (_, y)) in a.iter().zip(&b) {
        assert!((x - y).abs() < 0.02 * x, "{a:?} vs {b:?}");
    }
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn a_failed_peer_stops_the_run_cleanly_and_a_resume_is_bitwise() {
    let d = scratch("dp-fault");
    fs::write(d.join("base.toml"), BASE).unwrap();
    fs::write(d.join("ref.toml"), dp("ref", "")).unwrap();
    fs::write(d.join("dp.toml"), dp("two", "timeout_secs = 3\n")).unwrap();
    let (code, out) = train(&d, "ref.toml", &[], None);
    assert_eq!(code, 0, "{out}");
    for fault in ["1:5:panic", "1:5:hang"] {
        let _ = fs::remove_dir_all(d.join("runs/two"));
        let t0 = Instant::now();
        let (code, out) = train(&d, "dp.toml", &[], Some(("NIBBLE_DEBUG_PEER_FAULT", fault)));
        let secs = t0.elapsed().as_secs_f64();
        assert_eq!(code, 1, "{fault}: {out}");
        assert!(secs < 30.0, "{fault}: took {secs:.1} s");
        let want = match fault.ends_with("hang") {
            true => "waited 3 s for the others at step 5",
            false => "data-parallel peer 1 failed",
        };
        assert!(out.contains(want), "{fault}: {out}");
        let (code, out) = train(&d, "dp.toml", &["--resume"], None);
        assert_eq!(code, 0, "{fault}: {out}");
        assert!(
            bytes(&d.join("runs/ref"), 6) == bytes(&d.join("runs/two"), 6),
            "{fault}"
        );
    }
    // Another number of peers is refused, naming both.
    fs::write(
        d.join("one.toml"),
        dp("two", "").replace("devices = 2", "devices = 1"),
    )
    .unwrap();
    let _ = fs::remove_file(d.join("runs/two/summary.json"));
    let (code, out) = train(&d, "one.toml", &["--resume"], None);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("written by 2 data-parallel peer(s); this run has 1"),
        "{out}"
    );
    let _ = fs::remove_dir_all(&d);
}

/// The parameter check can fail: one peer's weight nudged before update 3 stops the run there.
#[test]
fn diverged_peers_are_caught_by_the_parameter_check() {
    let d = scratch("dp-diverge");
    fs::write(d.join("base.toml"), BASE).unwrap();
    fs::write(d.join("dp.toml"), dp("two", "")).unwrap();
    let fault = Some(("NIBBLE_DEBUG_PEER_FAULT", "1:3:perturb"));
    let (code, out) = train(&d, "dp.toml", &[], fault);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("step 3: the data-parallel peers hold different parameters"),
        "{out}"
    );
    let _ = fs::remove_dir_all(&d);
}

/// A sweep trains its runs in one process: a data-parallel arm is refused before any work.
#[test]
fn a_sweep_refuses_data_parallel_arms() {
    let d = scratch("dp-sweep");
    fs::write(d.join("base.toml"), BASE).unwrap();
    let sweep = "[sweep]\nname = \"dp\"\nbase = \"base.toml\"\nseeds = [1]\n\n\
                 [[arms]]\nname = \"two\"\nset = { \"distributed.devices\" = 2 }\n";
    fs::write(d.join("sweep.toml"), sweep).unwrap();
    let (code, _, err) = nibble(&["sweep", "--file", "sweep.toml"], &d);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("arm `two`") && err.contains("nibble train"),
        "{err}"
    );
    assert!(!d.join("runs").exists());
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn multi_node_is_refused_with_the_reason() {
    let d = scratch("dp-nodes");
    fs::write(d.join("base.toml"), BASE).unwrap();
    let extra = "nodes = 2\nnode_address = \"ws://127.0.0.1:3001\"\n\
                 coordinator_address = \"ws://127.0.0.1:3000\"\n";
    fs::write(d.join("dp.toml"), dp("two", extra)).unwrap();
    let (code, _, err) = nibble(&["train", "--recipe", "dp.toml"], &d);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("distributed.nodes") && err.contains("burn-collective"),
        "{err}"
    );
    assert!(!d.join("runs").exists());
    let _ = fs::remove_dir_all(&d);
}
