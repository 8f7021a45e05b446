//! `--set section.key=value` overrides, applied after includes. The value is read as a TOML value
//! (`3e-4` is a float, `["a","b"]` an array); a bare word that is not valid TOML (`small`) is taken
//! as a string. Quote a value to force a string: `--set run.name='"1e5"'`.

use toml_edit::{Key, Value};

use super::error::RecipeError;
use super::keypath::KeyPath;
use super::tree::{Node, SourceId, Table};

/// The key path and value of one `--set` argument.
pub(crate) fn parse_override(arg: &str) -> Result<(Vec<String>, Value), RecipeError> {
    let bad = |message: String| RecipeError::BadOverride {
        arg: arg.to_owned(),
        message,
    };
    let Some((lhs, rhs)) = arg.split_once('=') else {
        return Err(bad("expected `section.key=value`".to_owned()));
    };
    let (lhs, rhs) = (lhs.trim(), rhs.trim());
    if lhs.is_empty() {
        return Err(bad(
            "expected `section.key=value`, the key is missing".to_owned()
        ));
    }
    let keys = Key::parse(lhs)
        .map_err(|e| bad(format!("invalid key `{lhs}`: {}", e.message().trim())))?
        .iter()
        .map(|k| k.get().to_owned())
        .collect();
    if rhs.is_empty() {
        return Err(bad(format!("no value after `{lhs}=`")));
    }
    let value = match rhs.parse::<Value>() {
        Ok(v) => v,
        // Something that starts like a TOML string, array or table is a typo, not a bare word.
        Err(e) if rhs.starts_with(['"', '\'', '[', '{']) => {
            return Err(bad(format!(
                "invalid TOML value `{rhs}`: {}",
                e.message().trim()
            )));
        }
        Err(_) => Value::from(rhs),
    };
    Ok((keys, value))
}

/// Sets `keys` to `value` in `tree`, creating missing tables; an inline-table value merges into
/// an existing table like an included file would.
pub(crate) fn apply_override(
    tree: &mut Table,
    keys: &[String],
    value: &Value,
    origin: SourceId,
    arg: &str,
) -> Result<(), RecipeError> {
    let Some((last, parents)) = keys.split_last() else {
        return Err(RecipeError::BadOverride {
            arg: arg.to_owned(),
            message: "empty key".to_owned(),
        });
    };
    let mut table = tree;
    let mut path = KeyPath::default();
    for name in parents {
        path.push_key(name);
        table = match table.child_table(name, origin) {
            Some(t) => t,
            None => {
                return Err(RecipeError::BadOverride {
                    arg: arg.to_owned(),
                    message: format!("`{path}` is a value, not a table"),
                });
            }
        };
    }
    let mut over = Table::default();
    over.entries
        .push((last.clone(), Node::from_value(value, origin)));
    table.merge(over);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(arg: &str) -> (Vec<String>, String) {
        let (keys, value) = parse_override(arg).unwrap();
        (keys, value.to_string().trim().to_owned())
    }

    #[test]
    fn values_are_toml_with_a_string_fallback() {
        assert_eq!(parsed("optim.lr=3e-4").1, "3e-4");
        assert!(parse_override("optim.lr=3e-4").unwrap().1.is_float());
        assert_eq!(
            parse_override("model.preset=small").unwrap().1.as_str(),
            Some("small")
        );
        assert_eq!(
            parse_override("run.name = my run").unwrap().1.as_str(),
            Some("my run")
        );
        assert!(
            parse_override("run.tags=[\"a\",\"b\"]")
                .unwrap()
                .1
                .is_array()
        );
        assert_eq!(
            parse_override("a.\"b.c\".d=1").unwrap().0,
            vec!["a", "b.c", "d"]
        );
    }

    #[test]
    fn malformed_arguments_are_errors() {
        for arg in [
            "optim.lr",
            "=1",
            "optim.lr=",
            "optim..lr=1",
            "run.tags=[\"a\"",
            "x='open",
        ] {
            let err = parse_override(arg).unwrap_err();
            assert!(
                matches!(&err, RecipeError::BadOverride { arg: a, .. } if a == arg),
                "{arg}"
            );
            assert!(
                err.to_string().starts_with(&format!("--set {arg}: ")),
                "{err}"
            );
        }
    }
}
