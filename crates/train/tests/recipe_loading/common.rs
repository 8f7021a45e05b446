//! A small multi-section recipe type (the loader is generic; the real sections live elsewhere),
//! an in-memory file system, and helpers that derive expected positions from the test input.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

use nibble_train::recipe::{KeyError, Loaded, Location, RecipeError, load_recipe_with};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    #[serde(default)]
    pub run: Run,
    #[serde(default)]
    pub model: Model,
    #[serde(default)]
    pub data: Data,
    #[serde(default)]
    pub optim: Optim,
    #[serde(default)]
    pub precision: Precision,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Run {
    pub name: String,
    pub seed: u64,
    pub tags: Vec<String>,
}

impl Default for Run {
    fn default() -> Self {
        Run {
            name: "run".into(),
            seed: 0,
            tags: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    #[default]
    Tiny,
    Small,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    pub preset: Preset,
    pub attention: Attention,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Attention {
    pub heads: u32,
    pub theta: f64,
}

impl Default for Attention {
    fn default() -> Self {
        Attention {
            heads: 4,
            theta: 1e4,
        }
    }
}

/// `path` has no usable default: validation rejects the empty default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Data {
    pub path: String,
    pub seq_len: u32,
}

impl Default for Data {
    fn default() -> Self {
        Data {
            path: String::new(),
            seq_len: 128,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Optim {
    pub lr: f64,
    pub beta1: f64,
    pub warmup: u32,
}

impl Default for Optim {
    fn default() -> Self {
        Optim {
            lr: 1e-3,
            beta1: 0.9,
            warmup: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Precision {
    pub rules: Vec<Rule>,
}

/// `glob` is required (no default) to exercise serde's "missing field".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub glob: String,
    #[serde(default = "f32_scheme")]
    pub scheme: String,
}

fn f32_scheme() -> String {
    "f32".into()
}

/// Section checks report keys relative to their section, as the real sections do.
pub fn validate(r: &Recipe) -> Result<(), KeyError> {
    if r.optim.lr <= 0.0 {
        let e = KeyError::new("lr", format!("must be > 0 (got {})", r.optim.lr));
        return Err(e.within("optim"));
    }
    if r.data.path.is_empty() {
        return Err(KeyError::new("path", "must name a data file").within("data"));
    }
    for (i, rule) in r.precision.rules.iter().enumerate() {
        if !["f32", "bf16"].contains(&rule.scheme.as_str()) {
            let e = KeyError::new(format!("[{i}].scheme"), "must be f32 or bf16");
            return Err(e.within("rules").within("precision"));
        }
    }
    Ok(())
}

/// The recipe text made of `lines`, one per line.
pub fn text(lines: &[&str]) -> String {
    lines.join("\n") + "\n"
}

/// 1-based number of the one line of `lines` equal to `line`.
pub fn line_of(lines: &[&str], line: &str) -> usize {
    let hits: Vec<usize> = (0..lines.len()).filter(|&i| lines[i] == line).collect();
    assert_eq!(hits.len(), 1, "test input must hold `{line}` exactly once");
    hits[0] + 1
}

/// 1-based column of `needle` in `line` (ASCII test input).
pub fn col_of(line: &str, needle: &str) -> usize {
    line.find(needle).expect("needle in line") + 1
}

/// The file position of `needle` on the one line `line` of `lines` in file `path`.
pub fn at(path: &str, lines: &[&str], line: &str, needle: &str) -> Location {
    Location::File {
        path: PathBuf::from(path),
        line: line_of(lines, line),
        column: col_of(line, needle),
    }
}

/// An in-memory file system keyed by lexically normalized path.
#[derive(Default)]
pub struct Files(HashMap<PathBuf, String>);

impl Files {
    pub fn with(mut self, path: &str, lines: &[&str]) -> Self {
        self.0.insert(normalize(Path::new(path)), text(lines));
        self
    }

    pub fn read(&self, path: &Path) -> io::Result<String> {
        let found = self.0.get(&normalize(path)).cloned();
        found.ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such file"))
    }

    pub fn load(&self, root: &str, sets: &[&str]) -> Result<Loaded<Recipe>, RecipeError> {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let read = |p: &Path| self.read(p);
        load_recipe_with(Path::new(root), &read, &sets, validate)
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// A minimal valid recipe body (data.path is required by validation).
pub const DATA: [&str; 2] = ["[data]", "path = \"corpus.txt\""];
