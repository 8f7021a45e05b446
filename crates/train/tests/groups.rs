//! Optimizer groups from the recipe: a frozen group stays bit for bit, a changed grouping is
//! refused on resume, and a group that matches nothing is a located recipe error.

mod common;

use burn::backend::Flex;
use common::{ckpt_tensors, recipe_with, run, tmp_dir};
use nibble_train::checkpoint::CheckpointError;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{Parts, TrainError};

const GROUPS: &str = r#"
[[optim.groups]]
name = "block0"
match = "model.layers.0.*"
frozen = true

[[optim.groups]]
match = "model.norm.weight"
lr_mult = 0.5
weight_decay = 0.0
"#;

#[test]
fn frozen_group_is_unchanged_bit_for_bit() {
    let tmp = tmp_dir("groups-frozen");
    let text = recipe_with(&tmp, "frozen", 4, GROUPS);
    let s = run(&text, false, None).unwrap();
    let recipe: Recipe = toml::from_str(&text).unwrap();
    let init = Parts::<Flex>::build(&recipe, false, &Default::default()).unwrap();
    let trained = ckpt_tensors(&s.run_dir, 4);
    let host = |name: &str| -> Vec<f32> {
        init.params.tensors[name]
            .to_data()
            .convert::<f32>()
            .into_vec()
            .unwrap()
    };
    let mut frozen = 0;
    for name in init.params.tensors.keys() {
        let same = trained[name].1 == host(name);
        if name.starts_with("model.layers.0.") {
            assert!(same, "{name} is frozen but changed");
            frozen += 1;
        } else {
            assert!(!same, "{name} should have trained");
        }
    }
    assert_eq!(frozen, 9, "7 projections and 2 norms in block 0");
    // No optimizer state for frozen parameters.
    let opt_bytes = common::ckpt_bytes(&s.run_dir, 4).1;
    let opt = nibble_train::checkpoint::read_safetensors(&opt_bytes).unwrap();
    assert!(!opt.keys().any(|k| k.starts_with("model.layers.0.")));
    assert!(opt.contains_key("model.layers.1.mlp.up_proj.weight.exp_avg"));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn changed_grouping_is_refused_on_resume() {
    let tmp = tmp_dir("groups-changed");
    let text = recipe_with(&tmp, "g", 6, GROUPS);
    run(&text, false, Some(4)).unwrap();
    let changed = text.replace("model.layers.0.*", "model.layers.1.*");
    match run(&changed, true, None) {
        Err(TrainError::Checkpoint(CheckpointError::GroupingChanged { message, .. })) => {
            assert!(message.contains("optimizer group"), "{message}");
            assert!(message.contains("`block0`"), "{message}");
        }
        other => panic!("expected GroupingChanged, got {other:?}"),
    }
    // The unchanged recipe still resumes.
    assert_eq!(run(&text, true, None).unwrap().steps, 6);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn group_errors_name_their_key() {
    let tmp = tmp_dir("groups-errors");
    let bad = |extra: &str| -> String {
        match run(&recipe_with(&tmp, "e", 4, extra), false, None) {
            Err(TrainError::Config(e)) => e.key,
            other => panic!("expected a config error, got {other:?}"),
        }
    };
    assert_eq!(
        bad("[[optim.groups]]\nmatch = \"model.layers.9.*\"\nfrozen = true\n"),
        "optim.groups[0].match"
    );
    assert_eq!(
        bad("[[optim.groups]]\nmatch = \"*norm*\"\nlr = 1e-3\nlr_mult = 2.0\n"),
        "optim.groups[0].lr"
    );
    assert_eq!(
        bad("[[optim.groups]]\nmatch = \"*\"\nname = \"default\"\n"),
        "optim.groups[0].name"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}
