//! Key paths such as `optim.lr` or `precision.rules[2].scheme`: how validators name a key, and how
//! errors print it.

use std::fmt;

/// One step of a key path: a table key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A path from the document root to a key, table or array element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// Parses `a.b[2].c`; keys are bare (`A-Za-z0-9_-`) or double-quoted (`"model.layers"`).
    /// The empty string is the root. Returns `None` for anything else.
    pub fn parse(text: &str) -> Option<KeyPath> {
        let mut segs = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Some(KeyPath(segs));
        }
        let mut need_key = !rest.starts_with('[');
        loop {
            if need_key {
                let (key, after) = parse_key(rest)?;
                segs.push(Seg::Key(key));
                rest = after;
            }
            while let Some(after) = rest.strip_prefix('[') {
                let close = after.find(']')?;
                let index = after[..close].trim().parse().ok()?;
                segs.push(Seg::Index(index));
                rest = &after[close + 1..];
            }
            if rest.is_empty() {
                return Some(KeyPath(segs));
            }
            rest = rest.strip_prefix('.')?;
            need_key = true;
        }
    }

    pub fn push_key(&mut self, key: &str) {
        self.0.push(Seg::Key(key.to_owned()));
    }

    /// The path without its last step (the root stays the root).
    pub fn parent(&self) -> KeyPath {
        let n = self.0.len().saturating_sub(1);
        KeyPath(self.0[..n].to_vec())
    }

    /// The last step when it is a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(k)) => Some(k),
            _ => None,
        }
    }
}

fn parse_key(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Some((key, &quoted[i + 1..])),
                '\\' => key.push(chars.next()?.1),
                c => key.push(c),
            }
        }
        return None;
    }
    let end = text.find(|c: char| !is_bare(c)).unwrap_or(text.len());
    (end > 0).then(|| (text[..end].to_owned(), &text[end..]))
}

fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if !k.is_empty() && k.chars().all(is_bare) {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\""))?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Seg {
        Seg::Key(k.to_owned())
    }

    #[test]
    fn parses_keys_indices_and_quotes() {
        let p = KeyPath::parse("precision.rules[2].scheme").unwrap();
        assert_eq!(
            p.0,
            vec![key("precision"), key("rules"), Seg::Index(2), key("scheme")]
        );
        let q = KeyPath::parse(r#"a."b.c"[0][1]"#).unwrap();
        assert_eq!(
            q.0,
            vec![key("a"), key("b.c"), Seg::Index(0), Seg::Index(1)]
        );
        assert_eq!(
            KeyPath::parse("[3].x").unwrap().0,
            vec![Seg::Index(3), key("x")]
        );
        assert_eq!(KeyPath::parse("").unwrap().0, vec![]);
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in ["a..b", "a.", ".a", "a[x]", "a[1", "a b", "\"open", "a.[1]"] {
            assert_eq!(KeyPath::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn display_quotes_non_bare_keys() {
        let p = KeyPath(vec![key("a"), key("b.c"), Seg::Index(4), key("x\"y")]);
        assert_eq!(p.to_string(), r#"a."b.c"[4]."x\"y""#);
        assert_eq!(KeyPath::parse(&p.to_string()).unwrap(), p);
    }
}
