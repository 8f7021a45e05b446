//! Saving streams tensors one at a time: the files read back to the tensors saved, and a
//! non-finite tensor stops the save without leaving a checkpoint or its staging directory.

mod common;

use burn::backend::Flex;
use common::{recipe_text, tmp_dir, train_state as state};
use nibble_train::checkpoint::{CheckpointError, latest, read_safetensors, save};
use nibble_train::sections::Recipe;
use nibble_train::trainer::Parts;

#[test]
fn saved_tensors_read_back_and_a_nan_is_refused_without_leftovers() {
    let tmp = tmp_dir("ckpt-save");
    let recipe: Recipe = toml::from_str(&recipe_text(&tmp, "save", 4)).unwrap();
    let mut parts = Parts::<Flex>::build(&recipe, false, &Default::default()).unwrap();
    let run = tmp.join("run");
    let first = save(&run, &parts.params, &parts.opt, &state(1)).unwrap();
    let bytes = std::fs::read(first.join("model.safetensors")).unwrap();
    let back = read_safetensors(&bytes).unwrap();
    assert_eq!(
        back.len(),
        parts.params.tensors.len() + parts.params.buffers.len()
    );
    for (name, t) in &parts.params.tensors {
        let v: Vec<f32> = t.to_data().convert::<f32>().into_vec().unwrap();
        assert!(back[name].1 == v, "{name} differs after the round trip");
    }

    let name = "model.layers.1.mlp.up_proj.weight".to_string();
    let t = parts.params.tensors[&name].clone();
    let poisoned = t.clone().slice_fill([0..1, 0..1], f32::NAN);
    parts.params.tensors.insert(name.clone(), poisoned);
    match save(&run, &parts.params, &parts.opt, &state(2)) {
        Err(CheckpointError::NonFinite { step: 2, tensor }) => assert_eq!(tensor, name),
        other => panic!("expected NonFinite, got {other:?}"),
    }
    assert_eq!(
        latest(&run),
        Some(first),
        "the last good checkpoint stays newest"
    );
    let left: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "only the good checkpoint remains: {left:?}");
    let _ = std::fs::remove_dir_all(&tmp);
}
