//! Override tables in sweep files may be written nested (`set = { run = { steps = 100 } }`) or
//! with quoted dotted keys (`set = { "run.steps" = 100 }`); both flatten to `run.steps`.

/// `(dotted key, value)` for every non-table value under `t`, in key order.
pub fn flatten(t: &toml::Table) -> Vec<(String, toml::Value)> {
    let mut out = Vec::new();
    walk("", t, &mut out);
    out
}

fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => walk(&key, inner, out),
            other => out.push((key, other.clone())),
        }
    }
}

/// A `--set` argument for the recipe loader: the value as TOML text.
pub fn override_arg(key: &str, value: &toml::Value) -> String {
    format!("{key}={}", render(value))
}

/// Compact TOML text of a value (`"bf16"`, `0.1`, `[1, 2]`).
pub fn render(value: &toml::Value) -> String {
    match value {
        toml::Value::Array(a) => {
            let items: Vec<String> = a.iter().map(render).collect();
            format!("[{}]", items.join(", "))
        }
        toml::Value::Table(t) => {
            let items: Vec<String> = flatten(t)
                .iter()
                .map(|(k, v)| format!("{k} = {}", render(v)))
                .collect();
            format!("{{ {} }}", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// A short label for an axis value in arm names and directory names (`bf16`, `0.1`, `[1,2]`).
pub fn label(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => render(other).replace(' ', ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_dotted_keys_flatten_alike() {
        let a: toml::Table = toml::from_str("run = { steps = 10 }\n\"optim.lr\" = 0.1").unwrap();
        let got = flatten(&a);
        assert_eq!(got[0].0, "optim.lr");
        assert_eq!(got[1].0, "run.steps");
        assert_eq!(
            override_arg("x.y", &toml::Value::String("bf16".into())),
            "x.y=\"bf16\""
        );
        let arr: toml::Value = toml::Value::Array(vec![1.into(), 2.5.into()]);
        assert_eq!(render(&arr), "[1, 2.5]");
        assert_eq!(label(&arr), "[1,2.5]");
    }
}
