use nibble_data::{
    BytesTokenizer, DataConfig, Gpt2Tokenizer, SourceKind, Tokenizer, TokenizerKind, load_corpus,
};

fn sample_texts() -> Vec<String> {
    let cfg = DataConfig {
        source: SourceKind::Sample,
        ..DataConfig::default()
    };
    load_corpus(&cfg)
        .unwrap()
        .documents
        .into_iter()
        .map(|d| d.text)
        .collect()
}

#[test]
fn bytes_tokenizer_is_utf8_bytes_and_round_trips() {
    let t = BytesTokenizer;
    assert_eq!(t.name(), "bytes");
    assert_eq!(t.vocab_size(), 256);
    assert_eq!(t.encode("Ab\n"), vec![65, 98, 10]);
    // "é" is C3 A9 and "€" is E2 82 AC in UTF-8.
    assert_eq!(t.encode("é€"), vec![0xC3, 0xA9, 0xE2, 0x82, 0xAC]);
    for text in ["", "plain", "naïve — “quotes” 日本語 🦀", "a\u{0}b"] {
        assert_eq!(t.decode(&t.encode(text)), text);
    }
    for text in sample_texts() {
        assert_eq!(t.decode(&t.encode(&text)), text);
    }
}

#[test]
fn bytes_decode_marks_invalid_input() {
    let t = BytesTokenizer;
    assert_eq!(t.decode(&[104, 105, 0xFF]), "hi\u{FFFD}");
    assert_eq!(t.decode(&[104, 300]), "h\u{FFFD}");
}

#[test]
fn gpt2_matches_known_ids() {
    let t = Gpt2Tokenizer::new().unwrap();
    assert_eq!(t.name(), "gpt2");
    assert_eq!(t.vocab_size(), 50257);
    assert_eq!(t.encode("Hello world"), vec![15496, 995]);
    assert_eq!(t.encode(" the"), vec![262]);
    // GPT-2's byte-level alphabet (bytes_to_unicode in the GPT-2 release): the printable ASCII
    // bytes '!'..='~' come first, so byte b has id b - 33; bytes 0..=32 come after the 188
    // printable bytes, so '\n' (10) is 198 and ' ' (32) is 220.
    for b in b'!'..=b'~' {
        let s = (b as char).to_string();
        assert_eq!(t.encode(&s), vec![u32::from(b) - 33], "{s:?}");
    }
    assert_eq!(t.encode("\n"), vec![198]);
    assert_eq!(t.encode(" "), vec![220]);
    // Special tokens are never parsed from text; id 50256 is <|endoftext|>.
    assert!(!t.encode("<|endoftext|>").contains(&50256));
    assert_eq!(t.decode(&[50256]), "<|endoftext|>");
}

#[test]
fn gpt2_round_trips_and_compresses_english() {
    let t = TokenizerKind::Gpt2.build().unwrap();
    for text in sample_texts() {
        let ids = t.encode(&text);
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
        assert_eq!(t.decode(&ids), text);
        // BPE on English prose: well under one token per two bytes.
        assert!(
            ids.len() * 2 < text.len(),
            "{} tokens for {} bytes",
            ids.len(),
            text.len()
        );
    }
    assert_eq!(t.decode(&[15496, 60000]), "Hello\u{FFFD}");
}

#[test]
fn kinds_report_their_tokenizers() {
    for kind in [TokenizerKind::Bytes, TokenizerKind::Gpt2] {
        let t = kind.build().unwrap();
        assert_eq!(t.name(), kind.name());
        assert_eq!(Some(t.vocab_size()), kind.vocab_size());
    }
}
