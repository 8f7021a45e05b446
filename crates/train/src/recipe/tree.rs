//! The merged recipe: tables merge key by key across includes and `--set`, every other value
//! (arrays included) is replaced whole. Each node remembers which source gave it, so an error can
//! point into the file (or the `--set` argument) that the offending key actually came from.

use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Item, Value};

/// Index into the loader's list of sources (files and `--set` arguments).
pub(crate) type SourceId = usize;

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Table(Table),
    /// Any non-table value, stored without formatting (see [`canonical`]).
    Leaf {
        value: Value,
        origin: SourceId,
    },
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    /// Entries in first-seen order, which is the order the merged text prints them.
    pub entries: Vec<(String, Node)>,
    /// Every source that mentions this table, in merge order.
    pub origins: Vec<SourceId>,
}

impl Table {
    pub fn new(origin: SourceId) -> Self {
        Table {
            entries: Vec::new(),
            origins: vec![origin],
        }
    }

    /// Converts a parsed table; inline and dotted tables count as tables, arrays of tables as
    /// values. `skip` names top-level keys the loader consumed itself (`include`).
    pub fn from_edit(table: &toml_edit::Table, origin: SourceId, skip: &[&str]) -> Self {
        let mut out = Table::new(origin);
        for (name, item) in table.iter() {
            if skip.contains(&name) {
                continue;
            }
            let node = match item {
                Item::None => continue,
                Item::Table(t) => Node::Table(Table::from_edit(t, origin, &[])),
                Item::Value(v) => Node::from_value(v, origin),
                Item::ArrayOfTables(a) => Node::Leaf {
                    value: Value::Array(a.iter().map(|t| Value::InlineTable(inline(t))).collect()),
                    origin,
                },
            };
            out.entries.push((name.to_owned(), node));
        }
        out
    }

    pub fn get(&self, name: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, node)| node)
    }

    /// Applies `over` on top of `self`: tables merge recursively, anything else replaces.
    pub fn merge(&mut self, over: Table) {
        for id in over.origins {
            if !self.origins.contains(&id) {
                self.origins.push(id);
            }
        }
        for (name, node) in over.entries {
            match (self.entries.iter_mut().find(|(n, _)| *n == name), node) {
                (Some((_, Node::Table(base))), Node::Table(over)) => base.merge(over),
                (Some((_, slot)), node) => *slot = node,
                (None, node) => self.entries.push((name, node)),
            }
        }
    }

    /// The sub-table `name`, created (credited to `origin`) when absent; `None` if `name` holds a
    /// non-table value.
    pub fn child_table(&mut self, name: &str, origin: SourceId) -> Option<&mut Table> {
        let index = match self.entries.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.entries
                    .push((name.to_owned(), Node::Table(Table::default())));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[index].1 {
            Node::Table(t) => {
                if !t.origins.contains(&origin) {
                    t.origins.push(origin);
                }
                Some(t)
            }
            Node::Leaf { .. } => None,
        }
    }

    /// The merged recipe as a TOML document: `[section]` tables, `[[name]]` for arrays of tables.
    pub fn to_document(&self) -> DocumentMut {
        let mut doc = DocumentMut::new();
        *doc.as_table_mut() = self.to_edit();
        doc
    }

    fn to_edit(&self) -> toml_edit::Table {
        let mut out = toml_edit::Table::new();
        let only_tables = self.entries.iter().all(|(_, n)| match n {
            Node::Table(_) => true,
            Node::Leaf { value, .. } => array_of_tables(value).is_some(),
        });
        // A table holding only sub-tables needs no header of its own; an empty one keeps it so
        // that `[eval]` (present but empty) survives the round trip.
        out.set_implicit(!self.entries.is_empty() && only_tables);
        for (name, node) in &self.entries {
            let item = match node {
                Node::Table(t) => Item::Table(t.to_edit()),
                Node::Leaf { value, .. } => match array_of_tables(value) {
                    Some(tables) => Item::ArrayOfTables(tables),
                    None => Item::Value(value.clone()),
                },
            };
            out.insert(name, item);
        }
        out
    }
}

impl Node {
    pub fn from_value(value: &Value, origin: SourceId) -> Self {
        match value {
            Value::InlineTable(t) => {
                let mut out = Table::new(origin);
                for (name, v) in t.iter() {
                    out.entries
                        .push((name.to_owned(), Node::from_value(v, origin)));
                }
                Node::Table(out)
            }
            v => Node::Leaf {
                value: canonical(v),
                origin,
            },
        }
    }
}

/// A non-empty array whose elements are all tables prints as `[[name]]` blocks.
fn array_of_tables(value: &Value) -> Option<ArrayOfTables> {
    let array = value.as_array()?;
    if array.is_empty() || !array.iter().all(Value::is_inline_table) {
        return None;
    }
    let mut out = ArrayOfTables::new();
    for v in array {
        out.push(v.as_inline_table()?.clone().into_table());
    }
    Some(out)
}

/// The value rebuilt from its data alone: no comments, whitespace or literal spelling, so that
/// the same effective recipe always prints (and hashes) the same (`3e-4` and `0.0003` agree).
pub(crate) fn canonical(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::from(s.value().as_str()),
        Value::Integer(i) => Value::from(*i.value()),
        Value::Float(f) => float(*f.value()),
        Value::Boolean(b) => Value::from(*b.value()),
        Value::Datetime(d) => Value::from(*d.value()),
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect::<Array>()),
        Value::InlineTable(t) => {
            let mut out = InlineTable::new();
            for (name, v) in t.iter() {
                out.insert(name, canonical(v));
            }
            Value::InlineTable(out)
        }
    }
}

/// Very small or large floats print in exponent form (`1e-10`, not `0.0000000001`); Rust's
/// `{:e}` gives the shortest digits that read back to the same bits.
fn float(x: f64) -> Value {
    let magnitude = x.abs();
    let exponent_form = x.is_finite() && magnitude != 0.0 && !(1e-4..1e16).contains(&magnitude);
    match format!("{x:e}").parse::<Value>() {
        Ok(v) if exponent_form => v,
        _ => Value::from(x),
    }
}

fn inline(table: &toml_edit::Table) -> InlineTable {
    let mut out = InlineTable::new();
    for (name, item) in table.iter() {
        let value = match item {
            Item::None => continue,
            Item::Value(v) => canonical(v),
            Item::Table(t) => Value::InlineTable(inline(t)),
            Item::ArrayOfTables(a) => {
                Value::Array(a.iter().map(|t| Value::InlineTable(inline(t))).collect())
            }
        };
        out.insert(name, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reread(x: f64) -> f64 {
        let text = format!("x = {}", canonical(&Value::from(x)));
        let table: toml::Table = toml::from_str(&text).expect(&text);
        table["x"].as_float().expect(&text)
    }

    #[test]
    fn floats_print_short_and_read_back_bit_exact() {
        assert_eq!(canonical(&Value::from(1e-10)).to_string(), "1e-10");
        assert_eq!(canonical(&Value::from(3e300)).to_string(), "3e300");
        assert_eq!(canonical(&Value::from(0.25)).to_string(), "0.25");
        let mut special = vec![
            0.0,
            -0.0,
            1e-4,
            1e16,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::INFINITY,
        ];
        special.extend([-f64::INFINITY, 5e-324, 0.1, 1.0 / 3.0, -2.5e-7]);
        // A deterministic sweep over bit patterns (SplitMix64) covers every exponent range.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            let x = f64::from_bits(z ^ (z >> 31));
            if !x.is_nan() {
                special.push(x);
            }
        }
        for x in special {
            assert_eq!(reread(x).to_bits(), x.to_bits(), "{x:e}");
        }
    }

    #[test]
    fn merge_overrides_key_by_key_and_replaces_arrays() {
        let parse = |text: &str, id| {
            let doc = toml_edit::Document::parse(text.to_owned()).unwrap();
            Table::from_edit(doc.as_table(), id, &[])
        };
        let mut base = parse("[a]\nx = 1\ny = [1, 2]\n[b]\nz = 1\n", 0);
        base.merge(parse("[a]\ny = [3]\nw = 2\n[b]\nz = { q = 1 }\n", 1));
        let got: toml::Table = toml::from_str(&base.to_document().to_string()).unwrap();
        let want: toml::Table = toml::from_str("a = { x = 1, y = [3], w = 2 }\nb.z.q = 1").unwrap();
        assert_eq!(got, want);
        let Some(Node::Table(a)) = base.get("a") else {
            panic!("a is a table")
        };
        assert_eq!(a.origins, [0, 1]);
        assert!(matches!(a.get("x"), Some(Node::Leaf { origin: 0, .. })));
        assert!(matches!(a.get("y"), Some(Node::Leaf { origin: 1, .. })));
    }
}
