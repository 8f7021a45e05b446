//! Every recipe shipped in `recipes/` loads and validates (defaults, sections, keys).

use std::path::Path;

use nibble_train::recipe::load_recipe;
use nibble_train::sections::Recipe;

#[test]
fn shipped_recipes_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "toml") {
            let loaded =
                load_recipe::<Recipe>(&p, &[], Recipe::validate).unwrap_or_else(|e| panic!("{e}"));
            assert!(loaded.value.run.steps > 0);
            n += 1;
        }
    }
    assert!(n >= 2, "expected quickstart and baseline-small, found {n}");
}
