//! Element codecs against an independent third-party reference: Google's `ml_dtypes` (0.6.0).
//!
//! The fixtures under `tests/ref/` are written by `tests/ref/gen_ml_dtypes_tables.py`; they are
//! compiled in, so these tests need no Python. `NIBBLE_PY_REFS=1` additionally re-runs the
//! generator in `--check` mode to prove the committed fixtures match the installed ml_dtypes.

use nibble_formats::Grid;
use nibble_formats::int_grid::IntGrid;
use nibble_formats::minifloat::{E2M1, E4M3, E5M2, Minifloat, UE4M3};
use nibble_formats::ue8m0;
use std::process::Command;

const DECODE: &str = include_str!("ref/decode_tables.txt");
const ENCODE: &str = include_str!("ref/encode_cases.txt");

/// Records per format in `decode_tables.txt` (all codes; ue4m3 is codes 0x00..=0x7f).
const DECODE_COUNTS: [(&str, usize); 9] = [
    ("e2m1", 16),
    ("e4m3", 256),
    ("e5m2", 256),
    ("ue8m0", 256),
    ("ue4m3", 128),
    ("int4", 16),
    ("uint4", 16),
    ("int2", 4),
    ("uint2", 4),
];

/// Records per format in `encode_cases.txt` (exact: the generator is deterministic).
const ENCODE_COUNTS: [(&str, usize); 3] = [("e2m1", 3114), ("e4m3", 4210), ("e5m2", 4090)];

/// The non-comment records of a fixture, split into whitespace-separated fields.
fn records(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "line {}: malformed record {l:?}", i + 1);
            (i + 1, f)
        })
}

fn hex_u8(s: &str) -> u8 {
    u8::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad code {s:?}: {e}"))
}

fn hex_u32(s: &str) -> u32 {
    u32::from_str_radix(s, 16).unwrap_or_else(|e| panic!("bad f32 bits {s:?}: {e}"))
}

fn count_by_format<'a>(text: &'a str, expected: &[(&'a str, usize)]) {
    for &(name, n) in expected {
        let got = records(text).filter(|(_, f)| f[0] == name).count();
        assert_eq!(got, n, "{name}: expected {n} fixture records, found {got}");
    }
    let total: usize = expected.iter().map(|&(_, n)| n).sum();
    assert_eq!(
        records(text).count(),
        total,
        "fixture has records of unknown formats"
    );
}

fn minifloat(name: &str) -> Option<Minifloat> {
    match name {
        "e2m1" => Some(E2M1),
        "e4m3" => Some(E4M3),
        "e5m2" => Some(E5M2),
        "ue4m3" => Some(UE4M3),
        _ => None,
    }
}

/// Our decoder for a fixture format name.
fn our_decode(name: &str, code: u8) -> f32 {
    if let Some(m) = minifloat(name) {
        return m.decode(code);
    }
    let grid = match name {
        "ue8m0" => return ue8m0::decode(code),
        "int4" => IntGrid::signed(4),
        "uint4" => IntGrid::unsigned(4),
        "int2" => IntGrid::signed(2),
        "uint2" => IntGrid::unsigned(2),
        _ => panic!("unknown format {name:?} in decode fixture"),
    };
    Grid::decode(&grid, code)
}

/// Prints up to 20 mismatches and fails with the total count.
fn report(what: &str, checked: usize, bad: &[String]) {
    for m in bad.iter().take(20) {
        eprintln!("{m}");
    }
    assert!(
        bad.is_empty(),
        "{what}: {} of {checked} records differ from ml_dtypes",
        bad.len()
    );
    println!("{what}: {checked} records match ml_dtypes");
}

#[test]
fn fixtures_have_expected_record_counts() {
    count_by_format(DECODE, &DECODE_COUNTS);
    count_by_format(ENCODE, &ENCODE_COUNTS);
}

#[test]
fn decode_matches_ml_dtypes_bit_for_bit() {
    let (mut checked, mut bad) = (0, Vec::new());
    for (line, f) in records(DECODE) {
        let (name, code) = (f[0], hex_u8(f[1]));
        let ours = our_decode(name, code);
        let ok = if f[2] == "nan" {
            ours.is_nan()
        } else {
            ours.to_bits() == hex_u32(f[2])
        };
        if !ok {
            bad.push(format!(
                "line {line}: {name} decode({code:#04x}) = {ours:e} ({:#010x}), ml_dtypes {}",
                ours.to_bits(),
                f[2]
            ));
        }
        checked += 1;
    }
    assert!(checked > 0, "empty decode fixture");
    report("decode", checked, &bad);
}

#[test]
fn encode_matches_ml_dtypes_rne() {
    let (mut checked, mut bad) = (0, Vec::new());
    for (line, f) in records(ENCODE) {
        let name = f[0];
        let m =
            minifloat(name).unwrap_or_else(|| panic!("unknown format {name:?} in encode fixture"));
        let x = f32::from_bits(hex_u32(f[1]));
        let want = hex_u8(f[2]);
        assert!(
            x.abs() <= m.max(),
            "line {line}: fixture input {x:e} is outside {name}'s range"
        );
        let got = m.encode(x);
        if got != want {
            bad.push(format!(
                "line {line}: {name} encode({x:e} = {:#010x}) = {got:#04x} ({}), ml_dtypes {want:#04x} ({})",
                x.to_bits(),
                m.decode(got),
                m.decode(want)
            ));
        }
        checked += 1;
    }
    assert!(checked > 0, "empty encode fixture");
    report("encode", checked, &bad);
}

#[test]
fn encode_fixture_covers_signed_zero_flush() {
    // ml_dtypes keeps the sign of inputs that round to zero; make sure the fixture exercises it
    // (the comparison itself is in `encode_matches_ml_dtypes_rne`).
    for (name, neg_zero) in [("e2m1", 0x08u8), ("e4m3", 0x80), ("e5m2", 0x80)] {
        let n = records(ENCODE)
            .filter(|(_, f)| f[0] == name && f[1] != "80000000" && hex_u8(f[2]) == neg_zero)
            .count();
        assert!(
            n > 0,
            "{name}: no negative input flushing to -0 in the fixture"
        );
    }
}

#[test]
fn ml_dtypes_fixtures_are_current() {
    if std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1") {
        println!("skipped: set NIBBLE_PY_REFS=1 to re-check the fixtures against ml_dtypes");
        return;
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/ref/gen_ml_dtypes_tables.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {script}: {e}"));
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "{script} --check failed ({}): fixtures are stale",
        out.status
    );
}
