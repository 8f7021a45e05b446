//! `run.steps = 0` with `[init]`: the imported model is evaluated (logged like any evaluation)
//! and saved, nothing trained; its loss is the source run's final loss bit for bit. Without
//! `[init]` (or EfficientQAT's stages) 0 steps is refused.

mod common;

use common::{ckpt_bytes, recipe_text, run, tmp_dir};
use nibble_train::sections::Recipe;

#[test]
fn zero_steps_evaluates_and_saves_an_init_model() {
    let tmp = tmp_dir("zero-steps");
    let src = run(&recipe_text(&tmp, "src", 3), false, None).unwrap();
    let init = format!("\n[init]\nrun = {:?}\n", src.run_dir.display().to_string());
    let text = (recipe_text(&tmp, "eval", 0) + &init)
        .replace(
            "source = \"sample\"",
            "source = \"sample\"\ntokenizer = \"model\"",
        )
        .replace("preset = \"tiny\"\n", "")
        .replace("n_layers = 2\n", "");
    let e = run(&text, false, None).unwrap();
    assert_eq!(e.steps, 0);
    assert_eq!(e.final_eval.loss.to_bits(), src.final_eval.loss.to_bits());
    let m = std::fs::read_to_string(e.run_dir.join("metrics.jsonl")).unwrap();
    let logged = m
        .lines()
        .any(|l| l.contains("\"step\":0") && l.contains("val/loss"));
    assert!(logged, "{m}");
    let (model, _) = ckpt_bytes(&e.run_dir, 0);
    assert!(!model.is_empty());
    let bad: Recipe = toml::from_str(&recipe_text(&tmp, "bad", 0)).unwrap();
    let err = bad.validate().unwrap_err();
    assert_eq!(err.key, "run.steps", "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}
