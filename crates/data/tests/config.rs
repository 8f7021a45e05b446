use std::path::PathBuf;

use nibble_data::{DataConfig, SourceKind, TokenizerKind};

fn parse(toml_text: &str) -> Result<DataConfig, toml::de::Error> {
    toml::from_str(toml_text)
}

#[test]
fn empty_section_gives_documented_defaults() {
    let cfg = parse("").unwrap();
    assert_eq!(cfg.source, SourceKind::Shakespeare);
    assert!(cfg.paths.is_empty());
    assert_eq!(cfg.tokenizer, TokenizerKind::Bytes);
    assert_eq!(cfg.val_fraction, 0.05);
    assert_eq!(cfg.split_seed, 1337);
    assert_eq!(cfg.cache_dir, PathBuf::from("data-cache"));
    assert_eq!(cfg, DataConfig::default());
    cfg.validate().unwrap();
}

#[test]
fn recipe_spellings_parse() {
    let cfg = parse(
        "source = \"text_files\"\npaths = [\"a/*.txt\"]\ntokenizer = \"gpt2\"\n\
         val_fraction = 0.1\nsplit_seed = 7\ncache_dir = \"/tmp/x\"\n",
    )
    .unwrap();
    assert_eq!(cfg.source, SourceKind::TextFiles);
    assert_eq!(cfg.tokenizer, TokenizerKind::Gpt2);
    assert_eq!(cfg.paths, vec!["a/*.txt".to_string()]);
    cfg.validate().unwrap();
    assert_eq!(
        parse("source = \"sample\"").unwrap().source,
        SourceKind::Sample
    );
}

#[test]
fn unknown_keys_and_values_are_rejected() {
    let err = parse("seq_len = 128").unwrap_err().to_string();
    assert!(err.contains("seq_len"), "{err}");
    let err = parse("tokenizer = \"sentencepiece\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("sentencepiece"), "{err}");
}

#[test]
fn validate_names_the_offending_key() {
    let bad = |cfg: DataConfig| cfg.validate().unwrap_err().key;
    let base = DataConfig::default();
    for f in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        let cfg = DataConfig {
            val_fraction: f,
            ..base.clone()
        };
        assert_eq!(bad(cfg), "val_fraction", "val_fraction = {f}");
    }
    let text_files_without_paths = DataConfig {
        source: SourceKind::TextFiles,
        ..base.clone()
    };
    assert_eq!(bad(text_files_without_paths), "paths");
    let paths_with_sample = DataConfig {
        source: SourceKind::Sample,
        paths: vec!["*.txt".into()],
        ..base.clone()
    };
    assert_eq!(bad(paths_with_sample), "paths");
    let empty_cache_dir = DataConfig {
        cache_dir: PathBuf::new(),
        ..base
    };
    assert_eq!(bad(empty_cache_dir), "cache_dir");
}
