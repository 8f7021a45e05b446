//! Every recipe shipped in `recipes/` loads and validates, and trains two steps (a smoke run on
//! a one-block, short-sequence version of its model, on the bundled sample text) to a finite
//! loss with its precision schemes in place.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainOptions, train};

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn shipped_recipes_are_valid() {
    let all = shipped();
    for p in &all {
        let loaded =
            load_recipe::<Recipe>(p, &[], Recipe::validate).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.value.run.steps > 0);
    }
    assert!(
        all.len() >= 9,
        "expected the quickstart, baseline and scheme recipes"
    );
}

#[test]
fn every_recipe_trains_two_steps() {
    let out = std::env::temp_dir().join(format!("nibble-recipe-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    for p in shipped() {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        // A recipe that starts from a pretrained model keeps its architecture (one step of
        // the 135M model on short windows, no checkpoint of its 1.6 GB state).
        let text = std::fs::read_to_string(&p).unwrap();
        // A recipe that starts from the quickstart's run (Teacher Intervention) takes the
        // quickstart smoke run above (sorted before it) as its start and teacher.
        let from_quickstart = text.contains("\"runs/quickstart\"");
        let pretrained = text.contains("[init]") && !from_quickstart;
        let smollm2 = Path::new(env!("CARGO_TARGET_TMPDIR")).join("smollm2-cache");
        if pretrained
            && std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1")
            && let Err(e) = nibble_data::smollm2_gguf(&smollm2)
        {
            println!("skipped {name}: the pretrained model cannot be fetched ({e})");
            continue;
        }
        let shape: &[&str] = if pretrained {
            &["run.steps=2", "run.batch_size=1", "checkpoint.every=0"]
        } else if from_quickstart {
            &[
                "run.steps=2",
                "run.batch_size=2",
                "distill.intervention_steps=1",
            ]
        } else {
            &["run.steps=2", "run.batch_size=2", "model.n_layers=1"]
        };
        let sets: Vec<String> = [
            "model.seq_len=32",
            "data.source=\"sample\"",
            "eval.batches=1",
            "log.tensorboard=false",
            "schedule.warmup_steps=1",
        ]
        .iter()
        .chain(shape)
        .map(|s| s.to_string())
        .chain([
            format!("run.out_dir={:?}", out.to_string_lossy()),
            format!("run.name={name:?}"),
            // The pretrained model is fetched once per build tree (as in the import tests).
            format!(
                "data.cache_dir={:?}",
                if pretrained {
                    smollm2.clone()
                } else {
                    out.join("cache")
                }
                .to_string_lossy()
            ),
        ])
        .chain(
            from_quickstart
                .then(|| {
                    let q = out.join("quickstart");
                    [
                        format!("init.run={:?}", q.to_string_lossy()),
                        format!("distill.teacher.run={:?}", q.to_string_lossy()),
                    ]
                })
                .into_iter()
                .flatten(),
        )
        .collect();
        let loaded =
            load_recipe::<Recipe>(&p, &sets, Recipe::validate).unwrap_or_else(|e| panic!("{e}"));
        // The pretrained run stops after its first step, before any checkpoint.
        // One block leaves block-selecting precision rules (first/last blocks) without layers.
        let opts = TrainOptions {
            quiet: true,
            stop_after: pretrained.then_some(1),
            allow_unused_rules: true,
            ..Default::default()
        };
        let s = train::<Flex>(
            &loaded.value,
            &loaded.merged_toml,
            &opts,
            &Default::default(),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(s.steps, if pretrained { 1 } else { 2 }, "{name}");
        assert!(
            s.final_eval.loss.is_finite(),
            "{name}: {}",
            s.final_eval.loss
        );
    }
}

/// A scheme knob deserializes straight into nibble-ops' table: a bad value is located at its
/// file, line and key.
#[test]
fn bad_scheme_knob_names_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("nibble-knob-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("knob.toml");
    let text = "[precision]\ndefault = \"q\"\n\n[precision.schemes.q]\npreset = \"quartet-mxfp4\"\nforward_rounding = \"nearest-ish\"\n";
    std::fs::write(&p, text).unwrap();
    let err = load_recipe::<Recipe>(&p, &[], Recipe::validate).unwrap_err();
    let shown = err.to_string();
    assert_eq!(
        err.key().as_deref(),
        Some("precision.schemes.q.forward_rounding"),
        "{shown}"
    );
    assert!(shown.contains("knob.toml:6:"), "{shown}");
    assert!(shown.contains("`rne`") && shown.contains("`sr`"), "{shown}");
    let _ = std::fs::remove_dir_all(&dir);
}
