//! Checkpoint mutation: random byte flips and truncations of a checkpoint's files, and random
//! values written into its state.json, each re-sealed with matching checksums (so the parsers
//! and shape checks behind the integrity check are exercised, not only the checksums), must make
//! `load` return `Ok` or `Err`, never panic. The same mutations left unsealed must all be
//! detected by `verify`.

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use burn::backend::Flex;
use common::{recipe_text, reseal, run, tmp_dir};
use nibble_train::checkpoint::{load, verify};
use nibble_train::sections::Recipe;
use nibble_train::trainer::Parts;

const MUTATIONS: usize = 600;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A byte-level mutation of a tensor file: 1-4 flipped or overwritten bytes (half of the time
/// in the header) or a truncation.
fn mutate_bytes(rng: &mut Rng, b: &mut Vec<u8>) {
    let header = 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    match rng.below(4) {
        0 => b.truncate(rng.below(b.len())),
        k => {
            for _ in 0..=rng.below(4) {
                let i = if k == 1 {
                    rng.below(header.min(b.len()))
                } else {
                    rng.below(b.len())
                };
                b[i] = if rng.below(2) == 0 {
                    b[i] ^ (1 << rng.below(8))
                } else {
                    rng.next() as u8
                };
            }
        }
    }
}

/// Replaces a random leaf of `v` with an extreme or ill-typed value.
fn mutate_json(rng: &mut Rng, v: &mut serde_json::Value) {
    let choices = [
        serde_json::Value::Null,
        (-1).into(),
        u64::MAX.into(),
        0.into(),
        1e308.into(),
        "x".into(),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    let pick = choices[rng.below(choices.len())].clone();
    // Below the top level: the object itself stays one (re-sealing rewrites its `files`).
    let m = v.as_object_mut().unwrap();
    let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
    replace_leaf(rng, m.get_mut(&k).unwrap(), pick);
}

/// Walks down from `v` to a random node (stopping early a quarter of the time) and replaces it.
fn replace_leaf(rng: &mut Rng, v: &mut serde_json::Value, with: serde_json::Value) {
    let stop = rng.below(4) == 0;
    match v {
        serde_json::Value::Object(m) if !m.is_empty() && !stop => {
            let k = m.keys().nth(rng.below(m.len())).unwrap().clone();
            replace_leaf(rng, m.get_mut(&k).unwrap(), with);
        }
        serde_json::Value::Array(a) if !a.is_empty() && !stop => {
            let i = rng.below(a.len());
            replace_leaf(rng, &mut a[i], with);
        }
        _ => *v = with,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn mutated_checkpoints_load_or_fail_but_never_panic() {
    let tmp = tmp_dir("ckpt-mutation");
    let text = recipe_text(&tmp, "m", 3);
    let s = run(&text, false, None).unwrap();
    let good = s.run_dir.join("checkpoints/step-00000003");
    let recipe: Recipe = toml::from_str(&text).unwrap();
    let mut parts = Parts::<Flex>::build(&recipe, true, &Default::default()).unwrap();
    let d = tmp.join("m").join("step-00000003");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let (mut refused, mut loaded, mut panics, mut undetected) = (0, 0, 0, 0);
    for i in 0..MUTATIONS {
        copy_dir(&good, &d);
        let which = rng.below(3);
        if which < 2 {
            let p = d.join(["model.safetensors", "optimizer.safetensors"][which]);
            let mut b = fs::read(&p).unwrap();
            mutate_bytes(&mut rng, &mut b);
            fs::write(&p, &b).unwrap();
            if fs::read(good.join(p.file_name().unwrap())).unwrap() != b && verify(&d).is_ok() {
                undetected += 1;
            }
            reseal(&d, |_| {});
        } else {
            reseal(&d, |m| mutate_json(&mut rng, m));
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            load(&d, &mut parts.params, &mut parts.opt, &Default::default())
        }));
        match r {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(_)) => refused += 1,
            Err(_) => {
                panics += 1;
                eprintln!("mutation {i} panicked");
            }
        }
    }
    let line = format!(
        "checkpoint mutation: {MUTATIONS} tried (re-sealed), {refused} refused, {loaded} loaded, \
         {panics} panics; unsealed byte mutations undetected by checksums: {undetected}"
    );
    common::record_figure(&line);
    assert_eq!(panics, 0);
    assert_eq!(undetected, 0);
    assert!(refused > MUTATIONS / 2, "{line}");
    let _ = fs::remove_dir_all(&tmp);
}
