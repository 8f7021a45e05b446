//! `nibble generate` end to end: a tiny run trained on the bundled sample corpus continues a
//! prompt, reproducibly (greedy and seeded sampling), from the run or a checkpoint directory;
//! a missing checkpoint or a prompt longer than the context exits 2.

use std::fs;

mod common;
use common::{nibble, scratch};

const RECIPE: &str = r#"
[run]
name = "g"
steps = 4
batch_size = 2

[model]
preset = "tiny"
seq_len = 16
n_layers = 1

[data]
source = "sample"

[optim]
lr = 0.003

[eval]
every = 4
batches = 1

[log]
every = 1

[checkpoint]
every = 4
"#;

#[test]
fn generate_continues_a_prompt_reproducibly() {
    let d = scratch("generate");
    fs::write(d.join("r.toml"), RECIPE).unwrap();
    let (code, out, err) = nibble(&["train", "--recipe", "r.toml"], &d);
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");

    let greedy = [
        "generate",
        "--checkpoint",
        "runs/g",
        "--prompt",
        "To be",
        "--max-tokens",
        "8",
    ];
    let (code, a, err) = nibble(&greedy, &d);
    assert_eq!(code, 0, "stderr {err}");
    let text = a.strip_suffix('\n').unwrap_or(&a);
    assert!(text.starts_with("To be"), "{a:?}");
    assert!(
        text.chars().count() > "To be".len(),
        "no continuation: {a:?}"
    );
    let (code, b, _) = nibble(&greedy, &d);
    assert_eq!(code, 0);
    assert_eq!(a, b, "the same command twice must print the same text");

    // The checkpoint directory itself gives the same text (it is the run's newest).
    let mut by_dir = greedy;
    by_dir[2] = "runs/g/checkpoints/step-00000004";
    assert_eq!(nibble(&by_dir, &d).1, a);

    // Seeded sampling is reproducible too.
    let sampled = [
        "generate",
        "--checkpoint",
        "runs/g",
        "--prompt",
        "The",
        "--max-tokens",
        "10",
        "--temperature",
        "1.0",
        "--top-k",
        "20",
        "--seed",
        "3",
    ];
    let (code, s1, err) = nibble(&sampled, &d);
    assert_eq!(code, 0, "stderr {err}");
    assert!(s1.starts_with("The"), "{s1:?}");
    assert_eq!(nibble(&sampled, &d).1, s1);

    // Errors: a missing checkpoint, a prompt longer than the 16-token context.
    let (code, _, err) = nibble(
        &["generate", "--checkpoint", "runs/nope", "--prompt", "x"],
        &d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("runs/nope"), "{err}");
    let long = "x".repeat(17);
    let (code, _, err) = nibble(
        &["generate", "--checkpoint", "runs/g", "--prompt", &long],
        &d,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("context"), "{err}");
    fs::remove_dir_all(&d).unwrap();
}
