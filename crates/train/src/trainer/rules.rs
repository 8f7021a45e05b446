//! Module rules that select no layer of the model built: a `[[precision.rules]]` entry, a
//! `[qat]` or `[sparsity]` `modules` glob, or a `[[sparsity.rules]]` entry. Such a rule is
//! almost always a typo (`mlp.up` for `mlp.up_proj`) that would silently train another
//! experiment, so it is an error unless the run allows it (`--allow-unused-rules`).

use nibble_model::Llama;
use nibble_model::techniques::{QatMethod, SparsityMethod};

use crate::recipe::KeyError;
use crate::sections::Recipe;

const NAMES: &str = "layers are named like model.layers.0.mlp.up_proj, lm_head";

/// Every rule of `recipe` that selects no linear layer of `model` (a first-match rule: no layer
/// it is the first match of), as the key to change and why.
pub fn unused_rules(recipe: &Recipe, model: &Llama) -> Vec<KeyError> {
    let names: Vec<&str> = model.linears().iter().map(|l| l.name.as_str()).collect();
    let n_layers = model.n_blocks();
    let matches = |g: &str| names.iter().any(|n| nibble_config::glob_match(g, n));
    let mut unused = Vec::new();
    if let Ok(policy) = recipe.precision.policy() {
        let first = |n: &str| {
            policy
                .rules
                .iter()
                .position(|(s, _)| s.matches(n, n_layers))
        };
        for i in 0..policy.rules.len() {
            if !names.iter().any(|n| first(n) == Some(i)) {
                unused.push(KeyError::new(
                    format!("precision.rules[{i}]"),
                    format!(
                        "selects no layer of this model ({n_layers} blocks), or only layers an \
                         earlier rule takes; {NAMES}"
                    ),
                ));
            }
        }
    }
    let globs = |section: &str, globs: &[String], unused: &mut Vec<KeyError>| {
        for (j, g) in globs.iter().enumerate() {
            if !matches(g) {
                unused.push(KeyError::new(
                    format!("{section}.modules[{j}]"),
                    format!("{g:?} selects no layer of this model; {NAMES}"),
                ));
            }
        }
    };
    if recipe.qat.method != QatMethod::None {
        globs("qat", &recipe.qat.modules, &mut unused);
    }
    let sp = &recipe.sparsity;
    if sp.method != SparsityMethod::None {
        globs("sparsity", &sp.modules, &mut unused);
        for (i, r) in sp.rules.iter().enumerate() {
            if !names.iter().any(|n| sp.rule_for(n) == Some(i)) {
                unused.push(KeyError::new(
                    format!("sparsity.rules[{i}].modules"),
                    format!(
                        "{:?} selects no layer of this model (or only layers an earlier rule \
                         takes); {NAMES}",
                        r.modules
                    ),
                ));
            }
        }
    }
    unused
}
