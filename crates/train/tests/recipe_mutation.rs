//! Recipe mutation harness: thousands of seeded random mutations of the shipped recipes go
//! through the checks `nibble train --check` runs (load, validate, then `trainer::check`: data,
//! model, rules, run directory). For every mutation: no panic; a refusal is the exit-2 class and
//! its message carries where the problem is, `file:line:column` in the recipe or the `--set`
//! argument (a problem of the recipe as a whole, such as a missing table, is shown at the header
//! of the deepest table that exists, or the start of the file); nothing is written under the run
//! directory's parent, for refusals and acceptances alike.
//!
//! Scope, to stay within ~2 minutes on 2 cores:
//! - The harness's environment is set with `--set` overrides, which win over the mutated text:
//!   `run.out_dir` and `data.cache_dir` in a temp dir, `run.device = "cpu"`, `data.source =
//!   "sample"` (no network). Mutations of those four keys are masked.
//! - Recipes with `[init]` or `[distill]` (the 135M SmolLM2 from a pip package, a teacher run)
//!   are checked at the recipe level only (load and validate), as is any mutation that brings
//!   such a section in. The others get the full check, with a 256 MiB memory limit so that a
//!   mutated dimension is refused by the estimate rather than allocated.
//! - Only the root file is mutated; its includes are read from `recipes/` unchanged.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use burn::backend::Flex;
use nibble_train::recipe::{RecipeError, ResolvedRecipe};
use nibble_train::sections::Recipe;
use nibble_train::trainer::{TrainError, TrainOptions, check};

const MUTATIONS: usize = 5_000;

/// splitmix64: deterministic, no crate needed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// Values a number is replaced by: zero, negatives, extremes, non-finite, overflowing integers,
/// absurd sequence lengths and dimensions, tiny odd dimensions.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "1",
    "2",
    "3",
    "7",
    "0.5",
    "1e30",
    "-1e30",
    "1e-30",
    "nan",
    "inf",
    "-inf",
    "100000000",
    "65536",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551615",
    "1000000",
    "33",
    "250",
    "true",
    "[]",
    "{}",
    "\"x\"",
];

/// Every `key = value` line's key, string value, and `[table]` header of the shipped recipes.
struct Pools {
    keys: Vec<String>,
    strings: Vec<String>,
    headers: Vec<String>,
}

fn pools(texts: &[String]) -> Pools {
    let mut p = Pools {
        keys: vec![],
        strings: vec!["\"\"".into(), format!("\"{}\"", "x".repeat(300))],
        headers: vec![],
    };
    for line in texts.iter().flat_map(|t| t.lines()) {
        let line = line.trim();
        if line.starts_with('[') {
            p.headers.push(line.to_owned());
        } else if let Some((k, v)) = line.split_once('=') {
            p.keys.push(k.trim().to_owned());
            let v = v.split('#').next().unwrap_or_default().trim();
            if v.starts_with('"') {
                p.strings.push(v.to_owned());
            }
        }
    }
    for v in [&mut p.keys, &mut p.strings, &mut p.headers] {
        v.sort();
        v.dedup();
    }
    p
}

/// One random edit of `text`.
fn mutate(text: &str, rng: &mut Rng, pools: &Pools) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if lines.is_empty() {
        return text.to_owned();
    }
    let i = rng.below(lines.len());
    let kv = |l: &str| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned()));
    match rng.below(10) {
        0 => {
            // Flip one bit of one ASCII byte (staying ASCII, so the text stays UTF-8).
            let mut bytes = text.as_bytes().to_vec();
            let at = rng.below(bytes.len());
            if bytes[at].is_ascii() {
                bytes[at] ^= 1 << rng.below(7);
            }
            return String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned());
        }
        1 => {
            lines.remove(i);
        }
        2 => {
            let l = lines[i].clone();
            lines.insert(i, l);
        }
        3 | 4 => {
            if let Some((k, _)) = kv(&lines[i]) {
                lines[i] = format!("{k}= {}", rng.pick(NUMBERS));
            }
        }
        5 => {
            if let Some((k, _)) = kv(&lines[i]) {
                lines[i] = format!("{k}= {}", rng.pick(&pools.strings));
            }
        }
        6 => {
            if let Some((_, v)) = kv(&lines[i]) {
                lines[i] = format!("{} ={v}", rng.pick(&pools.keys));
            }
        }
        7 => {
            // Drop a whole table: its header and the lines up to the next one.
            if let Some(h) = lines.iter().position(|l| l.starts_with('[')) {
                let start = (h..lines.len())
                    .filter(|&j| lines[j].starts_with('['))
                    .nth(rng.below(4))
                    .unwrap_or(h);
                let end = (start + 1..lines.len())
                    .find(|&j| lines[j].starts_with('['))
                    .unwrap_or(lines.len());
                lines.drain(start..end);
            }
        }
        8 => {
            if lines[i].trim_start().starts_with('[') {
                lines[i] = rng.pick(&pools.headers).clone();
            } else {
                lines.insert(i, rng.pick(&pools.headers).clone());
            }
        }
        _ => {
            let j = rng.below(lines.len());
            lines.swap(i, j);
        }
    }
    lines.join("\n") + "\n"
}

#[derive(Default)]
struct Figures {
    tried: usize,
    accepted: usize,
    rejected: usize,
    /// Mutations of recipes that get the full check once the recipe level passes.
    light: usize,
    panics: usize,
    failures: Vec<String>,
}

/// A refusal's message must show where: the location the error carries (file:line:column or
/// `--set ...`).
fn located(e: &RecipeError) -> Result<(), String> {
    match e.location() {
        Some(at) if e.to_string().contains(&at.to_string()) => Ok(()),
        _ => Err(format!("refusal without a location: {e}")),
    }
}

/// Runs one recipe text through the checks: `Ok(true)` accepted, `Ok(false)` refused with a
/// location, `Err` a harness failure.
fn check_text(name: &Path, text: &str, sets: &[String], full: bool) -> Result<bool, String> {
    let read = |p: &Path| std::fs::read_to_string(p);
    let resolved = match ResolvedRecipe::resolve(name, text.to_owned(), sets, &read) {
        Ok(r) => r,
        Err(e) => return located(&e).map(|_| false),
    };
    let loaded = match resolved.parse::<Recipe>(Recipe::validate) {
        Ok(l) => l,
        Err(e) => return located(&e).map(|_| false),
    };
    let r = &loaded.value;
    if !full || r.init.source().is_some() || r.distill.enabled() {
        return Ok(true);
    }
    let opts = TrainOptions {
        quiet: true,
        memory_limit: Some(256 << 20),
        ..Default::default()
    };
    match check::<Flex>(r, &loaded.merged_toml, &opts, &Default::default()) {
        Ok(_) => Ok(true),
        Err(e) => match e.located(&resolved) {
            TrainError::Recipe(e) => located(&e).map(|_| false),
            e => Err(format!("exit {} without a location: {e}", e.exit_code())),
        },
    }
}

#[test]
fn mutated_recipes_are_refused_cleanly_or_accepted_and_nothing_is_written() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recipes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let texts: Vec<String> = files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    let pools = pools(&texts);
    let tmp = std::env::temp_dir().join(format!("nibble-mutation-{}", std::process::id()));
    let out = tmp.join("runs");
    std::fs::create_dir_all(&out).unwrap();
    let sets: Vec<String> = vec![
        format!("run.out_dir={:?}", out.to_string_lossy()),
        format!("data.cache_dir={:?}", tmp.join("cache").to_string_lossy()),
        "run.device=\"cpu\"".into(),
        "data.source=\"sample\"".into(),
    ];
    let mut rng = Rng(0x6e69_6262_6c65);
    let mut f = Figures::default();
    let t0 = std::time::Instant::now();
    for n in 0..MUTATIONS {
        let k = rng.below(files.len());
        let heavy = texts[k].contains("[init]") || texts[k].contains("[distill]");
        let mut text = texts[k].clone();
        for _ in 0..1 + rng.below(3) {
            text = mutate(&text, &mut rng, &pools);
        }
        f.tried += 1;
        f.light += usize::from(!heavy);
        let result = catch_unwind(AssertUnwindSafe(|| {
            check_text(&files[k], &text, &sets, !heavy)
        }));
        match result {
            Ok(Ok(true)) => f.accepted += 1,
            Ok(Ok(false)) => f.rejected += 1,
            Ok(Err(m)) => f.failures.push(format!("#{n} {}: {m}", files[k].display())),
            Err(_) => {
                f.panics += 1;
                f.failures
                    .push(format!("#{n} {}: panic on\n{text}", files[k].display()));
            }
        }
        if std::fs::read_dir(&out).unwrap().next().is_some() {
            f.failures.push(format!(
                "#{n} {}: wrote under {}",
                files[k].display(),
                out.display()
            ));
            std::fs::remove_dir_all(&out).unwrap();
            std::fs::create_dir_all(&out).unwrap();
        }
    }
    common::record_figure(&format!(
        "recipe mutations: {} tried ({} of recipes checked in full), {} accepted, {} rejected, \
         {} panics, {} failures, {:.1}s",
        f.tried,
        f.light,
        f.accepted,
        f.rejected,
        f.panics,
        f.failures.len(),
        t0.elapsed().as_secs_f64()
    ));
    for m in f.failures.iter().take(20) {
        eprintln!("  {m}");
    }
    let _ = std::fs::remove_dir_all(&tmp);
    assert_eq!(f.panics, 0, "panics");
    assert!(f.failures.is_empty(), "{} failures", f.failures.len());
    assert!(
        f.accepted > 0 && f.rejected > 0,
        "the mutations exercise both outcomes"
    );
}
