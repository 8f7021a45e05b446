//! `include`: merge order, error locations inside included files, cycles, missing files.

use std::path::PathBuf;

use nibble_train::recipe::{Location, RecipeError, load_recipe};

use crate::common::{DATA, Files, at, line_of, validate};

const X: &str = "recipes/x.toml";
const BASE: &str = "recipes/base.toml";

const BASE_LINES: [&str; 9] = [
    "[run]",
    "name = \"base\"",
    "seed = 7",
    "tags = [\"a\", \"b\", \"c\"]",
    "[optim]",
    "lr = 0.1",
    "beta1 = 0.8",
    "[data]",
    "path = \"base.txt\"",
];

#[test]
fn including_file_overrides_key_by_key_and_replaces_arrays() {
    let x = [
        "include = \"base.toml\"",
        "[run]",
        "tags = [\"z\"]",
        "[optim]",
        "lr = 0.2",
    ];
    let files = Files::default().with(BASE, &BASE_LINES).with(X, &x);
    let loaded = files.load(X, &[]).unwrap();
    let r = loaded.value;
    assert_eq!((r.run.name.as_str(), r.run.seed), ("base", 7));
    assert_eq!(r.run.tags, ["z"]);
    assert_eq!((r.optim.lr, r.optim.beta1), (0.2, 0.8));
    assert_eq!(r.data.path, "base.txt");
    assert_eq!(loaded.files, [PathBuf::from(X), PathBuf::from(BASE)]);
}

#[test]
fn include_lists_apply_in_order_and_nest() {
    // Precedence, lowest first: c (included by a), a, b, x.
    let c = [
        "[run]",
        "name = \"c\"",
        "seed = 1",
        "[optim]",
        "warmup = 5",
        "beta1 = 0.1",
    ];
    let a = [
        "include = \"sub/c.toml\"",
        "[run]",
        "name = \"a\"",
        "seed = 2",
        "[optim]",
        "beta1 = 0.2",
    ];
    let b = ["[run]", "seed = 3"];
    let x = [
        "include = [\"a.toml\", \"b.toml\"]",
        DATA[0],
        DATA[1],
        "[optim]",
        "lr = 0.5",
    ];
    let files = Files::default()
        .with("recipes/sub/c.toml", &c)
        .with("recipes/a.toml", &a)
        .with("recipes/b.toml", &b)
        .with(X, &x);
    let r = files.load(X, &[]).unwrap().value;
    assert_eq!((r.run.name.as_str(), r.run.seed), ("a", 3));
    assert_eq!((r.optim.lr, r.optim.beta1, r.optim.warmup), (0.5, 0.2, 5));
}

#[test]
fn paths_are_relative_to_the_including_file() {
    let inner = ["include = \"../base.toml\"", "[optim]", "warmup = 9"];
    let x = ["include = \"sub/inner.toml\""];
    let files = Files::default()
        .with(BASE, &BASE_LINES)
        .with("recipes/sub/inner.toml", &inner)
        .with(X, &x);
    let r = files.load(X, &[]).unwrap().value;
    assert_eq!((r.run.name.as_str(), r.optim.warmup), ("base", 9));
}

#[test]
fn errors_in_included_values_name_the_included_file() {
    let mut base = BASE_LINES;
    base[5] = "lr = -1.0";
    let x = ["include = \"base.toml\"", "[optim]", "beta1 = 0.5"];
    let files = Files::default().with(BASE, &base).with(X, &x);
    let err = files.load(X, &[]).unwrap_err();
    assert_eq!(err.location(), Some(at(BASE, &base, "lr = -1.0", "lr")));
    // Overridden by the including file: now the error is there.
    let x2 = ["include = \"base.toml\"", "[optim]", "lr = -2.0"];
    let files = Files::default().with(BASE, &base).with(X, &x2);
    let err = files.load(X, &[]).unwrap_err();
    assert_eq!(err.location(), Some(at(X, &x2, "lr = -2.0", "lr")));
}

#[test]
fn unknown_key_and_syntax_error_in_an_included_file() {
    let mut base = BASE_LINES;
    base[6] = "  betta1 = 0.8";
    let x = ["include = \"base.toml\""];
    let err = Files::default()
        .with(BASE, &base)
        .with(X, &x)
        .load(X, &[])
        .unwrap_err();
    assert!(matches!(&err, RecipeError::UnknownKey { name, .. } if name == "betta1"));
    assert_eq!(
        err.location(),
        Some(at(BASE, &base, "  betta1 = 0.8", "betta1"))
    );

    base[6] = "beta1 = = 0.8";
    let err = Files::default()
        .with(BASE, &base)
        .with(X, &x)
        .load(X, &[])
        .unwrap_err();
    let Some(Location::File { path, line, .. }) = err.location() else {
        panic!("expected a file location, got {err:?}");
    };
    assert!(matches!(err, RecipeError::Syntax { .. }));
    assert_eq!(
        (path, line),
        (PathBuf::from(BASE), line_of(&base, "beta1 = = 0.8"))
    );
}

#[test]
fn absent_key_points_at_the_last_file_that_has_its_section() {
    let base = ["[data]", "seq_len = 64"];
    let x = ["include = \"base.toml\"", "[optim]", "lr = 0.1"];
    let err = Files::default()
        .with(BASE, &base)
        .with(X, &x)
        .load(X, &[])
        .unwrap_err();
    assert_eq!(err.key().as_deref(), Some("data.path"));
    assert_eq!(err.location(), Some(at(BASE, &base, "[data]", "[")));

    let x2 = ["include = \"base.toml\"", "", "[data]", "seq_len = 32"];
    let err = Files::default()
        .with(BASE, &base)
        .with(X, &x2)
        .load(X, &[])
        .unwrap_err();
    assert_eq!(err.location(), Some(at(X, &x2, "[data]", "[")));
}

#[test]
fn include_cycles_are_reported_with_the_chain() {
    let x = ["include = \"a.toml\"", DATA[0], DATA[1]];
    let a = ["# a", "include = \"x.toml\""];
    let err = Files::default()
        .with(X, &x)
        .with("recipes/a.toml", &a)
        .load(X, &[])
        .unwrap_err();
    match &err {
        RecipeError::IncludeCycle { at: got, chain } => {
            assert_eq!(got, &at("recipes/a.toml", &a, "include = \"x.toml\"", "\""));
            let want: Vec<PathBuf> = [X, "recipes/a.toml", X].iter().map(PathBuf::from).collect();
            assert_eq!(chain, &want);
        }
        other => panic!("expected IncludeCycle, got {other:?}"),
    }
    assert!(
        err.to_string()
            .ends_with(&format!("include cycle: {X} -> recipes/a.toml -> {X}"))
    );

    let own = ["include = [\"./x.toml\"]"];
    let err = Files::default().with(X, &own).load(X, &[]).unwrap_err();
    assert!(
        matches!(&err, RecipeError::IncludeCycle { chain, .. } if chain.len() == 2),
        "{err:?}"
    );
}

#[test]
fn a_file_included_twice_without_a_cycle_is_fine() {
    let c = ["[optim]", "warmup = 3"];
    let a = ["include = \"c.toml\"", "[run]", "seed = 1"];
    let b = ["include = \"c.toml\"", "[run]", "name = \"b\""];
    let x = ["include = [\"a.toml\", \"b.toml\"]", DATA[0], DATA[1]];
    let files = Files::default()
        .with("recipes/c.toml", &c)
        .with("recipes/a.toml", &a)
        .with("recipes/b.toml", &b)
        .with(X, &x);
    let r = files.load(X, &[]).unwrap().value;
    assert_eq!(
        (r.optim.warmup, r.run.seed, r.run.name.as_str()),
        (3, 1, "b")
    );
}

#[test]
fn missing_or_malformed_includes_point_at_the_include_entry() {
    let x = ["[run]", "seed = 1"];
    let mut lines = vec!["include = [\"base.toml\", \"nope.toml\"]"];
    lines.extend(x);
    let err = Files::default()
        .with(BASE, &BASE_LINES)
        .with(X, &lines)
        .load(X, &[])
        .unwrap_err();
    match &err {
        RecipeError::IncludeRead {
            at: got,
            path,
            source,
        } => {
            assert_eq!(got, &at(X, &lines, lines[0], "\"nope"));
            assert_eq!(path, &PathBuf::from("recipes/nope.toml"));
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected IncludeRead, got {other:?}"),
    }

    for bad in [
        "include = 3",
        "include = [\"base.toml\", 4]",
        "include = \"\"",
        "[include]",
    ] {
        let lines = ["# header", bad];
        let err = Files::default()
            .with(BASE, &BASE_LINES)
            .with(X, &lines)
            .load(X, &[])
            .unwrap_err();
        assert!(
            matches!(&err, RecipeError::BadInclude { .. }),
            "{bad}: {err:?}"
        );
        let Some(Location::File { line, .. }) = err.location() else {
            panic!("{err:?}")
        };
        assert_eq!(line, line_of(&lines, bad), "{bad}");
    }
}

#[test]
fn includes_are_read_from_disk_relative_to_the_recipe() {
    let dir = std::env::temp_dir().join(format!("nibble-recipe-include-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("base.toml"), crate::common::text(&BASE_LINES)).unwrap();
    let x = ["include = \"../base.toml\"", "[optim]", "lr = 0.3"];
    std::fs::write(dir.join("sub/x.toml"), crate::common::text(&x)).unwrap();
    let loaded = load_recipe(&dir.join("sub/x.toml"), &[], validate);
    std::fs::remove_dir_all(&dir).unwrap();
    let r = loaded.unwrap().value;
    assert_eq!(
        (r.optim.lr, r.optim.beta1, r.run.name.as_str()),
        (0.3, 0.8, "base")
    );
}
