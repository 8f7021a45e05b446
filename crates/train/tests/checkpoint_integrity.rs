//! Checkpoint integrity: every corruption class (a bit flip in tensor data or in a header, an
//! edited state.json, a truncation, a deleted file) is detected with the file named; a tensor
//! with the right checksums but the wrong shape or dtype is refused by name; a resume falls back
//! to the newest intact checkpoint (the damaged one moved aside) and still ends bit-identical to
//! an uninterrupted run; a save that fails late leaves no staging files.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use common::{ckpt_bytes, recipe_text, reseal, run, tmp_dir, train_state as state};
use nibble_train::checkpoint::{CheckpointError, latest, load, save, verify};
use nibble_train::sections::Recipe;
use nibble_train::trainer::Parts;

fn step_dir(run: &Path, step: u64) -> PathBuf {
    run.join("checkpoints").join(format!("step-{step:08}"))
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn flip_bit(path: &Path, at: impl Fn(usize) -> usize) {
    let mut b = fs::read(path).unwrap();
    let i = at(b.len());
    b[i] ^= 0x10;
    fs::write(path, b).unwrap();
}

/// The corruption classes, each applied to a copy of a good checkpoint directory; the file the
/// error must name.
type Corruption = (&'static str, fn(&Path), &'static str);

fn corruptions() -> Vec<Corruption> {
    vec![
        (
            "bit flip in tensor data",
            |d| flip_bit(&d.join("model.safetensors"), |n| n - 7),
            "model.safetensors",
        ),
        (
            "bit flip in a header",
            |d| flip_bit(&d.join("optimizer.safetensors"), |_| 12),
            "optimizer.safetensors",
        ),
        (
            "state.json step edited",
            |d| {
                let p = d.join("state.json");
                let t = fs::read_to_string(&p).unwrap();
                assert!(t.contains("\"step\": 6"));
                fs::write(&p, t.replacen("\"step\": 6", "\"step\": 5", 1)).unwrap();
            },
            "state.json",
        ),
        (
            "state.json step edited and re-sealed",
            |d| {
                reseal(d, |meta| meta["state"]["step"] = 5.into());
            },
            "state.json",
        ),
        (
            "truncated tensor file",
            |d| {
                let p = d.join("model.safetensors");
                let b = fs::read(&p).unwrap();
                fs::write(&p, &b[..b.len() / 2]).unwrap();
            },
            "model.safetensors",
        ),
        (
            "deleted tensor file",
            |d| fs::remove_file(d.join("optimizer.safetensors")).unwrap(),
            "optimizer.safetensors",
        ),
        (
            "deleted state.json",
            |d| fs::remove_file(d.join("state.json")).unwrap(),
            "state.json",
        ),
    ]
}

fn damaged_file(e: &CheckpointError) -> String {
    match e {
        CheckpointError::Damaged { path, .. } => {
            path.file_name().unwrap().to_string_lossy().into_owned()
        }
        other => panic!("expected a Damaged error, got {other}"),
    }
}

#[test]
fn every_corruption_class_is_detected_with_the_file_named() {
    let tmp = tmp_dir("integrity-detect");
    let s = run(&recipe_text(&tmp, "good", 6), false, None).unwrap();
    let good = step_dir(&s.run_dir, 6);
    verify(&good).expect("a fresh checkpoint verifies");
    let recipe: Recipe = toml::from_str(&recipe_text(&tmp, "good", 6)).unwrap();
    for (i, (what, corrupt, file)) in corruptions().into_iter().enumerate() {
        let d = tmp.join(format!("case{i}")).join("step-00000006");
        copy_dir(&good, &d);
        corrupt(&d);
        let e = verify(&d).expect_err(what);
        assert_eq!(damaged_file(&e), file, "{what}: {e}");
        // Loading verifies too: nothing reaches the model.
        let mut parts = Parts::<Flex>::build(&recipe, true, &Default::default()).unwrap();
        let e = load(&d, &mut parts.params, &mut parts.opt, &Default::default()).unwrap_err();
        assert_eq!(damaged_file(&e), file, "{what} (load): {e}");
    }
    let _ = fs::remove_dir_all(&tmp);
}

/// Rewrites one tensor of `model.safetensors` with other raw bytes, dtype or shape.
fn forge_tensor(dir: &Path, name: &str, dtype: safetensors::Dtype, shape: Vec<usize>) {
    let p = dir.join("model.safetensors");
    let bytes = fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = Vec::new();
    for (n, v) in st.iter() {
        let v = if n == name {
            let len = shape.iter().product::<usize>() * dtype.bitsize() / 8;
            safetensors::tensor::TensorView::new(dtype, shape.clone(), &v.data()[..len]).unwrap()
        } else {
            v
        };
        views.push((n.to_string(), v));
    }
    let out = safetensors::serialize(views, None).unwrap();
    fs::write(&p, out).unwrap();
    reseal(dir, |_| {});
}

#[test]
fn a_wrong_shape_or_dtype_with_valid_checksums_is_refused_by_name() {
    let tmp = tmp_dir("integrity-shape");
    let text = recipe_text(&tmp, "shape", 3);
    let s = run(&text, false, None).unwrap();
    let good = step_dir(&s.run_dir, 3);
    let recipe: Recipe = toml::from_str(&text).unwrap();
    let name = "model.layers.0.mlp.up_proj.weight";
    let parts = Parts::<Flex>::build(&recipe, true, &Default::default()).unwrap();
    let [r, c] = parts.params.tensors[name].dims();
    // Same element count, transposed (only the count used to be checked); then half-width floats.
    for (tag, dtype, shape, want) in [
        ("t", safetensors::Dtype::F32, vec![c, r], "shape"),
        ("h", safetensors::Dtype::BF16, vec![r, c], "BF16"),
    ] {
        let d = tmp.join(tag).join("step-00000003");
        copy_dir(&good, &d);
        forge_tensor(&d, name, dtype, shape);
        verify(&d).expect("checksums were recomputed");
        let mut parts = Parts::<Flex>::build(&recipe, true, &Default::default()).unwrap();
        let e = load(&d, &mut parts.params, &mut parts.opt, &Default::default()).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains(name) && msg.contains(want), "{msg}");
        assert!(msg.contains("model.safetensors"), "{msg}");
    }
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn resume_falls_back_to_the_newest_intact_checkpoint_and_stays_bit_identical() {
    let tmp = tmp_dir("integrity-fallback");
    let straight = run(&recipe_text(&tmp, "straight", 9), false, None).unwrap();
    let want = ckpt_bytes(&straight.run_dir, 9);
    // Three classes that leave the newest directory in place but unusable.
    for (i, (what, corrupt, _)) in corruptions().into_iter().enumerate().step_by(2) {
        let text = recipe_text(&tmp, &format!("cut{i}"), 9);
        let cut = run(&text, false, Some(7)).unwrap();
        corrupt(&step_dir(&cut.run_dir, 6));
        let r = run(&text, true, None).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(r.steps, 9);
        assert!(
            ckpt_bytes(&r.run_dir, 9) == want,
            "{what}: not bit-identical"
        );
        let aside = r.run_dir.join("damaged").join("step-00000006");
        assert!(
            aside.is_dir(),
            "{what}: the damaged checkpoint is kept aside"
        );
        verify(&step_dir(&r.run_dir, 6)).expect("step 6 was redone");
    }
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn a_save_that_fails_after_staging_leaves_nothing_behind() {
    let tmp = tmp_dir("integrity-staging");
    let recipe: Recipe = toml::from_str(&recipe_text(&tmp, "stage", 4)).unwrap();
    let parts = Parts::<Flex>::build(&recipe, false, &Default::default()).unwrap();
    let run = tmp.join("run");
    let first = save(&run, &parts.params, &parts.opt, &state(1)).unwrap();
    // A file where the step-2 directory must go: the final rename step fails after the tensors
    // and state.json were staged.
    fs::write(step_dir(&run, 2), b"in the way").unwrap();
    save(&run, &parts.params, &parts.opt, &state(2)).expect_err("the save cannot complete");
    let mut left: Vec<_> = fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["step-00000001", "step-00000002"], "no staging left");
    assert_eq!(latest(&run), Some(first.clone()));
    verify(&first).unwrap();
    let _ = fs::remove_dir_all(&tmp);
}
