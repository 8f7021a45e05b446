//! Recipes that only the trainer's checks can refuse (against the data, the model built, the
//! file system) exit 2 with the file:line:column and key, before the run directory exists;
//! `train --check` runs the same checks and writes nothing; `--allow-unused-rules` turns rules
//! that select no layer into warnings.

use std::fs;
use std::path::Path;

mod common;
use common::{nibble, scratch};

/// A small valid recipe; `model` lines go from line 16, `extra` lines from line 20. The token
/// cache is outside the run's working directory, which must stay untouched.
fn recipe(extra: &[&str], model: &[&str]) -> String {
    let cache = std::env::temp_dir().join(format!("nibble-refusals-{}", std::process::id()));
    let cache = format!("cache_dir = {:?}", cache.to_string_lossy());
    let mut l = vec![
        "[run]",               // 1
        "name = \"t\"",        // 2
        "steps = 2",           // 3
        "batch_size = 2",      // 4
        "",                    // 5
        "[data]",              // 6
        "source = \"sample\"", // 7
        &cache,                // 8
        "[eval]",              // 9
        "every = 2",           // 10
        "batches = 1",         // 11
        "",                    // 12
        "[model]",             // 13
        "preset = \"tiny\"",   // 14
        "n_layers = 1",        // 15
    ];
    l.extend(model); // 16..
    l.resize(19, "");
    l.extend(extra); // 20..
    l.join("\n") + "\n"
}

/// Only the recipe is in `d`: no run directory, recipe.toml, metrics or events.
fn assert_untouched(d: &Path) {
    let entries: Vec<_> = fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["r.toml"], "a refused run must write nothing");
}

/// `nibble train` (plain, then `--check`) on `text` exits 2 naming `r.toml:<line>:` and `key`.
fn assert_refused(text: &str, line: usize, key: &str) {
    for check in [false, true] {
        let name: String = key.chars().filter(char::is_ascii_alphanumeric).collect();
        let d = scratch(&format!("refuse-{name}-{line}-{check}"));
        fs::write(d.join("r.toml"), text).unwrap();
        let mut args = vec!["train", "--recipe", "r.toml"];
        if check {
            args.push("--check");
        }
        let (code, out, err) = nibble(&args, &d);
        assert_eq!(code, 2, "{key}: stdout {out}\nstderr {err}");
        assert!(
            err.contains(&format!("r.toml:{line}:")),
            "line {line}: {err}"
        );
        assert!(err.contains(key), "key {key}: {err}");
        assert_untouched(&d);
        fs::remove_dir_all(&d).unwrap();
    }
}

#[test]
fn scheme_that_cannot_block_a_dimension() {
    let model = ["d_model = 72", "n_heads = 2", "n_kv_heads = 2"];
    let text = recipe(&["[precision]", "default = \"quartet-mxfp4\""], &model);
    assert_refused(&text, 21, "precision.default");
}

#[test]
fn absurd_or_too_long_sequence() {
    assert_refused(&recipe(&[], &["seq_len = 100000000"]), 16, "model.seq_len");
    // Longer than the sample's validation split (10,601 tokens); the memory estimate may refuse
    // it first on a small machine, naming the same key.
    assert_refused(&recipe(&[], &["seq_len = 10700"]), 16, "model.seq_len");
}

#[test]
fn data_glob_matching_nothing() {
    let mut text = recipe(&[], &[]);
    text = text.replace(
        "source = \"sample\"",
        "source = \"text_files\"\npaths = [\"no-such-*.txt\"]",
    );
    assert_refused(&text, 8, "data.paths[0]");
}

#[test]
fn run_name_longer_than_a_file_name() {
    let long = format!("name = \"{}\"", "n".repeat(300));
    assert_refused(
        &recipe(&[], &[]).replace("name = \"t\"", &long),
        2,
        "run.name",
    );
}

#[test]
fn vocabulary_smaller_than_the_tokenizer() {
    assert_refused(&recipe(&[], &["vocab_size = 100"]), 16, "model.vocab_size");
}

#[test]
fn rules_that_select_no_layer() {
    let precision = [
        "[precision]",
        "default = \"f32\"",
        "[[precision.rules]]",
        "match = \"model.layers.*.mlp.up\"",
        "scheme = \"bf16\"",
    ];
    assert_refused(&recipe(&precision, &[]), 22, "precision.rules[0]");
    let qat = ["[qat]", "method = \"lsq\"", "modules = [\"blocks.*\"]"];
    assert_refused(&recipe(&qat, &[]), 22, "qat.modules[0]");
    let sparsity = [
        "[sparsity]",
        "method = \"ste\"",
        "pattern = \"2:4\"",
        "[[sparsity.rules]]",
        "modules = [\"model.layers.9.*\"]",
    ];
    assert_refused(&recipe(&sparsity, &[]), 24, "sparsity.rules[0].modules");
    // Allowed: a warning, and the check passes writing nothing.
    let d = scratch("allow");
    fs::write(d.join("r.toml"), recipe(&precision, &[])).unwrap();
    let args = [
        "train",
        "--recipe",
        "r.toml",
        "--check",
        "--allow-unused-rules",
    ];
    let (code, out, err) = nibble(&args, &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert!(err.contains("warning: precision.rules[0]"), "{err}");
    assert!(out.contains("nothing written"), "{out}");
    assert_untouched(&d);
    fs::remove_dir_all(&d).unwrap();
}

#[test]
fn check_passes_a_good_recipe_and_writes_nothing() {
    let d = scratch("check");
    fs::write(d.join("r.toml"), recipe(&[], &[])).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml", "--check"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    assert_untouched(&d);
    fs::remove_dir_all(&d).unwrap();
}
