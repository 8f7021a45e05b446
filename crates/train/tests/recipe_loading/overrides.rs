//! `--set` overrides: value parsing, nesting, precedence, errors naming the argument, and the
//! merged TOML text.

use std::path::Path;

use nibble_train::recipe::{Location, RecipeError, load_recipe_str};

use crate::common::{DATA, Files, Preset, Recipe, at, text, validate};

const X: &str = "recipes/x.toml";

fn set_location(arg: &str) -> Option<Location> {
    Some(Location::Override {
        arg: arg.to_owned(),
    })
}

#[test]
fn set_parses_floats_strings_arrays_and_nested_keys() {
    let x = [DATA[0], DATA[1], "[optim]", "lr = 0.1"];
    let sets = [
        "optim.lr=3e-4",
        "model.preset=small",
        "run.tags=[\"a\",\"b\"]",
        "model.attention.heads=8",
        "run.name = my run",
    ];
    let r = Files::default().with(X, &x).load(X, &sets).unwrap().value;
    assert_eq!(r.optim.lr, 3e-4);
    assert_eq!(r.model.preset, Preset::Small);
    assert_eq!(r.run.tags, ["a", "b"]);
    assert_eq!(r.model.attention.heads, 8);
    assert_eq!(r.model.attention.theta, 1e4, "siblings keep their defaults");
    assert_eq!(r.run.name, "my run");
}

#[test]
fn set_applies_after_includes_and_the_last_one_wins() {
    let base = ["[optim]", "lr = 0.1", "beta1 = 0.5", DATA[0], DATA[1]];
    let x = ["include = \"base.toml\"", "[optim]", "lr = 0.2"];
    let files = Files::default()
        .with("recipes/base.toml", &base)
        .with(X, &x);
    let sets = ["optim.lr=0.3", "optim.beta1=0.6", "optim.lr=0.4"];
    let r = files.load(X, &sets).unwrap().value;
    assert_eq!((r.optim.lr, r.optim.beta1), (0.4, 0.6));
    // An inline table merges like a file would: beta1 stays.
    let r = files.load(X, &["optim={ warmup = 7 }"]).unwrap().value;
    assert_eq!((r.optim.lr, r.optim.beta1, r.optim.warmup), (0.2, 0.5, 7));
}

#[test]
fn set_unknown_key_names_the_argument() {
    let x = [DATA[0], DATA[1]];
    let err = Files::default()
        .with(X, &x)
        .load(X, &["optim.lrr=1"])
        .unwrap_err();
    assert!(matches!(&err, RecipeError::UnknownKey { name, .. } if name == "lrr"));
    assert_eq!(err.location(), set_location("optim.lrr=1"));
    assert_eq!(
        err.to_string(),
        "--set optim.lrr=1: unknown key `lrr` in [optim]; expected one of: lr, beta1, warmup"
    );
}

#[test]
fn set_wrong_type_and_invalid_value_name_the_argument() {
    let x = [DATA[0], DATA[1], "[optim]", "lr = 0.1"];
    let files = Files::default().with(X, &x);
    let err = files.load(X, &["optim.lr=fast"]).unwrap_err();
    assert!(
        matches!(&err, RecipeError::WrongType { key, .. } if key == "optim.lr"),
        "{err:?}"
    );
    assert_eq!(err.location(), set_location("optim.lr=fast"));

    let err = files
        .load(X, &["run.seed=1", "optim.lr=-1e-3"])
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "--set optim.lr=-1e-3: optim.lr: must be > 0 (got -0.001)"
    );
}

#[test]
fn set_on_a_key_from_a_file_keeps_file_locations_for_its_siblings() {
    let x = ["[data]", "seq_len = 64"];
    let err = Files::default()
        .with(X, &x)
        .load(X, &["data.seq_len=32"])
        .unwrap_err();
    // data.path is absent: the error goes to the [data] header, not to the --set.
    assert_eq!(err.location(), Some(at(X, &x, "[data]", "[")));
    let err = Files::default()
        .with(X, &["[optim]"])
        .load(X, &["data.seq_len=32"])
        .unwrap_err();
    assert_eq!(err.location(), set_location("data.seq_len=32"));
}

#[test]
fn malformed_set_arguments_are_rejected() {
    let files = Files::default().with(X, &[DATA[0], DATA[1], "[optim]", "lr = 0.1"]);
    for arg in [
        "optim.lr",
        "optim.lr=",
        "=3",
        "optim..lr=1",
        "run.tags=[\"a\"",
        "optim.lr.x=1",
    ] {
        let err = files.load(X, &[arg]).unwrap_err();
        assert!(
            matches!(&err, RecipeError::BadOverride { arg: a, .. } if a == arg),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(&format!("--set {arg}: ")),
            "{err}"
        );
    }
}

#[test]
fn merged_toml_round_trips_to_the_same_recipe() {
    let base = [
        "[run]",
        "name = \"base\"",
        "tags = [\"a\"]",
        "[[precision.rules]]",
        "glob = \"*.q_proj\" # attention",
        "scheme = \"bf16\"",
        "[[precision.rules]]",
        "glob = \"lm_head\"",
    ];
    let x = [
        "include = \"base.toml\"",
        DATA[0],
        DATA[1],
        "[optim]",
        "lr = 3e-4",
    ];
    let files = Files::default()
        .with("recipes/base.toml", &base)
        .with(X, &x);
    let loaded = files
        .load(X, &["model.attention.theta=1e5", "run.seed=5"])
        .unwrap();
    assert!(
        !loaded.merged_toml.contains("include"),
        "{}",
        loaded.merged_toml
    );

    // The merged text holds exactly the merged values (compared as TOML data).
    let expected = text(&[
        "run = { name = \"base\", tags = [\"a\"], seed = 5 }",
        "precision.rules = [{ glob = \"*.q_proj\", scheme = \"bf16\" }, { glob = \"lm_head\" }]",
        "data = { path = \"corpus.txt\" }",
        "optim = { lr = 0.0003 }",
        "model.attention.theta = 100000.0",
    ]);
    let got: toml::Table = toml::from_str(&loaded.merged_toml).unwrap();
    assert_eq!(got, toml::from_str::<toml::Table>(&expected).unwrap());

    // Loading the merged text alone gives the same value and the same text.
    let again: nibble_train::recipe::Loaded<Recipe> = load_recipe_str(
        Path::new("resolved.toml"),
        &loaded.merged_toml,
        &[],
        validate,
    )
    .unwrap();
    assert_eq!(again.value, loaded.value);
    assert_eq!(again.merged_toml, loaded.merged_toml);
}

#[test]
fn merged_toml_ignores_spelling_and_comments() {
    let a = [
        DATA[0],
        DATA[1],
        "[optim]",
        "lr = 3e-4  # small",
        "[run]",
        "tags = [ 'x', ]",
    ];
    let b = [
        "[run]",
        "tags = [\"x\"]",
        "[optim]",
        "lr = 0.0003",
        "",
        DATA[0],
        DATA[1],
    ];
    let ta = Files::default()
        .with(X, &a)
        .load(X, &[])
        .unwrap()
        .merged_toml;
    let tb = Files::default()
        .with(X, &b)
        .load(X, &[])
        .unwrap()
        .merged_toml;
    assert_ne!(text(&a), text(&b));
    assert!(!ta.contains('#'), "{ta}");
    // Key order follows first appearance, so compare as data, and the texts for a fixed order.
    assert_eq!(
        toml::from_str::<toml::Table>(&ta).unwrap(),
        toml::from_str::<toml::Table>(&tb).unwrap()
    );
    let c = [
        DATA[0],
        DATA[1],
        "[optim]",
        "lr = 0.000_3",
        "[run]",
        "tags = ['''x''']",
    ];
    let tc = Files::default()
        .with(X, &c)
        .load(X, &[])
        .unwrap()
        .merged_toml;
    assert_eq!(ta, tc);
}
