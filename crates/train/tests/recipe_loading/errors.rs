//! Each kind of recipe error points at the right file, line, column and key.

use std::path::{Path, PathBuf};

use nibble_train::recipe::{Location, RecipeError, load_recipe};

use crate::common::{DATA, Files, at, line_of};

const X: &str = "recipes/x.toml";

fn load_err(lines: &[&str]) -> RecipeError {
    Files::default().with(X, lines).load(X, &[]).unwrap_err()
}

#[test]
fn unknown_key_names_line_column_key_and_expected_keys() {
    let lines = [DATA[0], DATA[1], "", "[optim]", "lr = 0.01", "  lrr = 2"];
    let err = load_err(&lines);
    let want_at = at(X, &lines, "  lrr = 2", "lrr");
    match &err {
        RecipeError::UnknownKey {
            at,
            table,
            name,
            expected,
        } => {
            assert_eq!(at, &want_at);
            assert_eq!((table.as_str(), name.as_str()), ("optim", "lrr"));
            assert_eq!(expected, &["lr", "beta1", "warmup"]);
        }
        other => panic!("expected UnknownKey, got {other:?}"),
    }
    let (line, col) = (line_of(&lines, "  lrr = 2"), 3);
    let shown = format!(
        "{X}:{line}:{col}: unknown key `lrr` in [optim]; expected one of: lr, beta1, warmup"
    );
    assert_eq!(err.to_string(), shown);
    assert_eq!(err.key().as_deref(), Some("optim.lrr"));
}

#[test]
fn unknown_section_points_at_its_header() {
    let lines = [DATA[0], DATA[1], "[optimizer]", "lr = 0.1"];
    let err = load_err(&lines);
    assert!(matches!(&err, RecipeError::UnknownKey { table, name, .. }
        if table.is_empty() && name == "optimizer"));
    assert_eq!(err.location(), Some(at(X, &lines, "[optimizer]", "[")));
    assert!(
        err.to_string()
            .contains("unknown key `optimizer` at the top level"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_key_and_types() {
    let lines = ["[optim]", "beta1 = 0.9", "lr = \"fast\"", DATA[0], DATA[1]];
    let err = load_err(&lines);
    match &err {
        RecipeError::WrongType {
            at: got,
            key,
            message,
        } => {
            assert_eq!(got, &at(X, &lines, "lr = \"fast\"", "lr"));
            assert_eq!(key, "optim.lr");
            assert_eq!(message, "expected f64, found string \"fast\"");
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
}

#[test]
fn wrong_type_inside_an_array_of_tables() {
    let lines = [
        DATA[0],
        DATA[1],
        "[[precision.rules]]",
        "glob = \"*.q_proj\"",
        "[[precision.rules]]",
        "glob = \"lm_head\"",
        "scheme = 3",
    ];
    let err = load_err(&lines);
    assert!(
        matches!(&err, RecipeError::WrongType { key, .. } if key == "precision.rules[1].scheme")
    );
    assert_eq!(err.location(), Some(at(X, &lines, "scheme = 3", "scheme")));
}

#[test]
fn unknown_enum_variant_is_an_invalid_value_at_the_key() {
    let lines = ["[model]", "preset = \"huge\"", DATA[0], DATA[1]];
    let err = load_err(&lines);
    assert!(
        matches!(&err, RecipeError::InvalidValue { key, message, .. }
        if key == "model.preset" && message.contains("unknown variant `huge`"))
    );
    assert_eq!(
        err.location(),
        Some(at(X, &lines, "preset = \"huge\"", "preset"))
    );
}

#[test]
fn validation_error_points_at_the_key_line() {
    let lines = [
        "# comment",
        "[optim]",
        "beta1 = 0.95",
        "lr = -0.1",
        "",
        DATA[0],
        DATA[1],
    ];
    let err = load_err(&lines);
    assert!(matches!(&err, RecipeError::InvalidValue { key, .. } if key == "optim.lr"));
    assert_eq!(err.location(), Some(at(X, &lines, "lr = -0.1", "lr")));
    let line = line_of(&lines, "lr = -0.1");
    assert_eq!(
        err.to_string(),
        format!("{X}:{line}:1: optim.lr: must be > 0 (got -0.1)")
    );
}

#[test]
fn validation_error_in_an_array_element() {
    let lines = [
        DATA[0],
        DATA[1],
        "[[precision.rules]]",
        "glob = \"a\"",
        "[[precision.rules]]",
        "glob = \"b\"",
        "  scheme = \"fp3\"",
    ];
    let err = load_err(&lines);
    assert!(matches!(&err, RecipeError::InvalidValue { key, .. }
        if key == "precision.rules[1].scheme"));
    assert_eq!(
        err.location(),
        Some(at(X, &lines, "  scheme = \"fp3\"", "scheme"))
    );
}

#[test]
fn invalid_default_of_an_absent_key_points_at_the_section_header() {
    let lines = ["[optim]", "lr = 0.1", "", "[data]", "seq_len = 64"];
    let err = load_err(&lines);
    assert!(matches!(&err, RecipeError::InvalidValue { key, .. } if key == "data.path"));
    assert_eq!(err.location(), Some(at(X, &lines, "[data]", "[")));
}

#[test]
fn invalid_default_of_an_absent_section_points_at_the_file_start() {
    let lines = ["[optim]", "lr = 0.1"];
    let err = load_err(&lines);
    let start = Location::File {
        path: PathBuf::from(X),
        line: 1,
        column: 1,
    };
    assert_eq!(err.location(), Some(start));
    assert_eq!(err.key().as_deref(), Some("data.path"));
}

#[test]
fn missing_required_field_points_at_its_table() {
    let lines = [DATA[0], DATA[1], "[[precision.rules]]", "scheme = \"bf16\""];
    let err = load_err(&lines);
    assert!(matches!(&err, RecipeError::InvalidValue { key, .. }
        if key == "precision.rules[0].glob"));
    assert_eq!(
        err.location(),
        Some(at(X, &lines, "[[precision.rules]]", "["))
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let missing_value = ["[optim]", "lr = 0.1", "beta1 =", DATA[0], DATA[1]];
    let err = load_err(&missing_value);
    let RecipeError::Syntax {
        at: Location::File { path, line, .. },
        ..
    } = &err
    else {
        panic!("expected Syntax, got {err:?}");
    };
    assert_eq!(
        (path.as_path(), *line),
        (Path::new(X), line_of(&missing_value, "beta1 ="))
    );

    let duplicate = ["[optim]", "lr = 0.1", "beta1 = 0.9", "lr = 0.2"];
    let err = load_err(&duplicate);
    assert!(matches!(&err, RecipeError::Syntax { .. }), "{err:?}");
    assert_eq!(err.location(), Some(at(X, &duplicate, "lr = 0.2", "lr")));
    let line = line_of(&duplicate, "lr = 0.2");
    assert!(
        err.to_string()
            .starts_with(&format!("{X}:{line}:1: TOML syntax error: ")),
        "{err}"
    );
}

#[test]
fn unparsable_validator_key_falls_back_to_the_file_start() {
    let files = Files::default().with(X, &DATA);
    let read = |p: &Path| files.read(p);
    let bad = |_: &crate::common::Recipe| Err(nibble_train::recipe::KeyError::new("a..b", "no"));
    let err = nibble_train::recipe::load_recipe_with(Path::new(X), &read, &[], bad).unwrap_err();
    assert_eq!(err.to_string(), format!("{X}:1:1: a..b: no"));
}

#[test]
fn missing_recipe_file_names_the_path() {
    let path =
        std::env::temp_dir().join(format!("nibble-no-such-recipe-{}.toml", std::process::id()));
    let err = load_recipe(&path, &[], crate::common::validate).unwrap_err();
    match &err {
        RecipeError::Read { path: p, source } => {
            assert_eq!(p, &path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Read, got {other:?}"),
    }
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot read recipe", path.display()))
    );
}

#[test]
fn valid_recipe_loads_with_defaults() {
    let lines = [DATA[0], DATA[1], "[optim]", "lr = 0.02"];
    let loaded = Files::default().with(X, &lines).load(X, &[]).unwrap();
    let r = loaded.value;
    assert_eq!((r.optim.lr, r.optim.beta1, r.optim.warmup), (0.02, 0.9, 0));
    assert_eq!((r.data.path.as_str(), r.data.seq_len), ("corpus.txt", 128));
    assert_eq!(r.run.name, "run");
    assert_eq!(loaded.files, vec![PathBuf::from(X)]);
}
