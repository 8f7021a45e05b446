//! `[distill]` with the teacher as a model file: a Nibble run exported to GGUF (f32) and to an
//! HF directory teaches a student that starts from that run. Its byte-level vocabulary reads
//! back under another tokenizer name with the same ids, so it is accepted; the weights are the
//! run's, so every KD term of the first update is exactly 0.

use std::fs;
use std::path::Path;

mod common;
use common::{export, nibble, scratch};

const TEACHER: &str = r#"
[run]
name = "teacher"
steps = 3
batch_size = 4

[model]
preset = "tiny"
seq_len = 32
n_layers = 2

[data]
source = "sample"

[eval]
batches = 1

[log]
tensorboard = false

[checkpoint]
every = 3
"#;

fn student(source: &str) -> String {
    format!(
        r#"
[run]
name = "student"
steps = 3
batch_size = 4

[init]
run = "runs/teacher"

[model]
seq_len = 32

[data]
source = "sample"
tokenizer = "model"

[distill]
{source}
logits = 1.0
hidden = 1.0
attn_out = 1.0
intervention = "map"
intervention_steps = 1

[eval]
batches = 1

[log]
every = 1
tensorboard = false

[checkpoint]
every = 3
"#
    )
}

/// The first logged value of `key`.
fn first(run: &Path, key: &str) -> f64 {
    fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find_map(|v| v.get(key).and_then(|x| x.as_f64()))
        .unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn a_gguf_or_hf_teacher_exported_from_a_run_teaches_its_student() {
    let d = scratch("distill-files");
    fs::write(d.join("teacher.toml"), TEACHER).unwrap();
    let (code, _, err) = nibble(&["train", "--recipe", "teacher.toml"], &d);
    assert_eq!(code, 0, "{err}");
    export(&d, "runs/teacher", "gguf-f32", Path::new("teacher.gguf"));
    export(&d, "runs/teacher", "hf-f32", Path::new("teacher-hf"));
    for (tag, source) in [
        ("gguf", "teacher.gguf = \"teacher.gguf\""),
        ("hf", "teacher.hf = \"teacher-hf\""),
    ] {
        let text = student(source).replace("name = \"student\"", &format!("name = \"{tag}\""));
        fs::write(d.join(format!("{tag}.toml")), text).unwrap();
        let (code, _, err) = nibble(&["train", "--recipe", &format!("{tag}.toml")], &d);
        assert_eq!(code, 0, "{tag}: {err}");
        let run = d.join("runs").join(tag);
        for key in ["distill/logits", "distill/hidden", "distill/attn_out"] {
            assert_eq!(
                first(&run, key),
                0.0,
                "{tag}: {key} of a student equal to its teacher"
            );
        }
        assert!(first(&run, "val/loss").is_finite(), "{tag}");
    }
    let _ = fs::remove_dir_all(&d);
}
