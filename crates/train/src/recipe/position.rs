//! Byte spans <-> key paths in a parsed TOML document, and byte offsets -> line:column.

use std::ops::Range;

use toml_edit::{Array, ArrayOfTables, InlineTable, Item, Table, Value};

use super::keypath::{KeyPath, Seg};

/// 1-based line and column (in characters) of a byte offset; offsets past the end clamp to it.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Table(&'a Table),
    Inline(&'a InlineTable),
    Array(&'a Array),
    Tables(&'a ArrayOfTables),
    Scalar,
}

fn node_of(item: &Item) -> Node<'_> {
    match item {
        Item::Table(t) => Node::Table(t),
        Item::ArrayOfTables(a) => Node::Tables(a),
        Item::Value(v) => node_of_value(v),
        Item::None => Node::Scalar,
    }
}

fn node_of_value(value: &Value) -> Node<'_> {
    match value {
        Value::InlineTable(t) => Node::Inline(t),
        Value::Array(a) => Node::Array(a),
        _ => Node::Scalar,
    }
}

/// The span that best shows `path` in a document parsed with spans: the key itself, an array
/// element, or, when the path stops existing part-way (a default was used), the header or key of
/// the deepest table that does exist. `None` when not even the first step exists.
pub(crate) fn locate(root: &Table, path: &KeyPath) -> Option<Range<usize>> {
    let mut node = Node::Table(root);
    let mut best = None;
    for seg in &path.0 {
        let (span, next) = match (node, seg) {
            (Node::Table(t), Seg::Key(k)) => match t.get_key_value(k) {
                Some((key, item)) => (item_span(key.span(), item), node_of(item)),
                None => break,
            },
            (Node::Inline(t), Seg::Key(k)) => match t.get_key_value(k) {
                Some((key, item)) => (key.span(), node_of(item)),
                None => break,
            },
            (Node::Array(a), Seg::Index(i)) => match a.get(*i) {
                Some(v) => (v.span(), node_of_value(v)),
                None => break,
            },
            (Node::Tables(a), Seg::Index(i)) => match a.get(*i) {
                Some(t) => (t.span(), Node::Table(t)),
                None => break,
            },
            _ => break,
        };
        best = span.or(best);
        node = next;
    }
    best
}

/// A standard table is best shown by its `[header]`; anything else by its key.
fn item_span(key: Option<Range<usize>>, item: &Item) -> Option<Range<usize>> {
    match item {
        Item::Table(t) if !t.is_implicit() && !t.is_dotted() => t.span().or(key),
        _ => key,
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.contains(&offset) || (s.is_empty() && s.start == offset))
}

/// The path of the innermost key, value, array element or table header whose span holds
/// `offset` (the root when nothing does).
pub(crate) fn path_at(root: &Table, offset: usize) -> KeyPath {
    let mut path = KeyPath::default();
    in_table(root, offset, &mut path);
    path
}

fn in_table(table: &Table, offset: usize, path: &mut KeyPath) -> bool {
    for (name, item) in table.iter() {
        path.push_key(name);
        let key_span = table.key(name).and_then(|k| k.span());
        if in_item(item, key_span, offset, path) {
            return true;
        }
        path.0.pop();
    }
    false
}

fn in_item(item: &Item, key_span: Option<Range<usize>>, offset: usize, path: &mut KeyPath) -> bool {
    let inner = match item {
        Item::Table(t) => in_table(t, offset, path) || contains(t.span(), offset),
        Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, t)| {
            path.0.push(Seg::Index(i));
            let hit = in_table(t, offset, path) || contains(t.span(), offset);
            if !hit {
                path.0.pop();
            }
            hit
        }),
        Item::Value(v) => in_value(v, offset, path),
        Item::None => false,
    };
    inner || contains(key_span, offset)
}

fn in_value(value: &Value, offset: usize, path: &mut KeyPath) -> bool {
    if !contains(value.span(), offset) {
        return false;
    }
    match value {
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.0.push(Seg::Index(i));
                if in_value(v, offset, path) {
                    return true;
                }
                path.0.pop();
            }
        }
        Value::InlineTable(t) => {
            for (name, v) in t.iter() {
                path.push_key(name);
                let key_span = t.key(name).and_then(|k| k.span());
                if in_value(v, offset, path) || contains(key_span, offset) {
                    return true;
                }
                path.0.pop();
            }
        }
        _ => {}
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use toml_edit::Document;

    #[test]
    fn line_col_counts_lines_and_characters() {
        let text = "ab\nçd = 1\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 3), (2, 1));
        // `d` follows the two-byte `ç`: byte 5, character column 2.
        assert_eq!(line_col(text, 5), (2, 2));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    const DOC: &str = "a.b = 1\n[t]\nx = [1, {y = 2}]\n[[r]]\ng = 1\n[[r]]\ng = 2\n";

    fn find(needle: &str, nth: usize) -> usize {
        DOC.match_indices(needle).nth(nth).unwrap().0
    }

    #[test]
    fn locate_points_at_keys_elements_and_headers() {
        let doc = Document::parse(DOC).unwrap();
        let at = |p: &str| locate(doc.as_table(), &KeyPath::parse(p).unwrap()).map(|s| s.start);
        assert_eq!(at("a.b"), Some(find("b", 0)));
        assert_eq!(at("t.x[1].y"), Some(find("y", 0)));
        assert_eq!(at("r[1].g"), Some(find("g", 1)));
        assert_eq!(at("r[1]"), Some(find("[[r]]", 1)));
        // Absent keys fall back to the deepest table that exists.
        assert_eq!(at("t.missing"), Some(find("[t]", 0)));
        assert_eq!(at("r[5].g"), Some(find("r", 0)));
        assert_eq!(at("nothing.here"), None);
    }

    #[test]
    fn path_at_finds_the_innermost_key() {
        let doc = Document::parse(DOC).unwrap();
        let at = |offset: usize| path_at(doc.as_table(), offset).to_string();
        assert_eq!(at(find("b", 0)), "a.b");
        assert_eq!(at(find("2", 0)), "t.x[1].y");
        assert_eq!(at(find("[t]", 0)), "t");
        assert_eq!(at(find("[[r]]", 1)), "r[1]");
        assert_eq!(at(find("2", 1)), "r[1].g");
    }
}
