//! Byte-level BPE on tiny hand-made vocabularies: expected ids are worked out by hand from the
//! merge ranks (independent of the implementation).

use nibble_data::{
    BpeSpec, BpeTokenizer, DataError, PreTokenizer, TokenType, Tokenizer, byte_to_unicode,
};

/// Ids 0..256 are the single bytes (in byte order, GPT-2's alphabet); `extra` follow from 256.
fn tokens(extra: &[&str]) -> Vec<String> {
    let mut t: Vec<String> = byte_to_unicode().iter().map(|c| c.to_string()).collect();
    t.extend(extra.iter().map(|s| s.to_string()));
    t
}

fn build(extra: &[&str], merges: &[&str], pre: PreTokenizer) -> BpeTokenizer {
    let spec = BpeSpec::new(
        "tiny",
        tokens(extra),
        merges.iter().map(|s| s.to_string()).collect(),
        pre,
    );
    BpeTokenizer::new(spec).unwrap()
}

fn b(c: char) -> u32 {
    c as u32 // ASCII letters map to themselves and their byte id.
}

#[test]
fn lowest_rank_merges_first_not_leftmost() {
    // Ranks: "b c" (0) before "a b" (1). Leftmost-greedy would give [ab, c]; by rank it is
    // [a, bc] and "a bc" is no merge.
    let t = build(&["bc", "ab"], &["b c", "a b"], PreTokenizer::Gpt2);
    assert_eq!(t.encode("abc"), vec![b('a'), 256]);
    // Same vocabulary, ranks swapped: now "a b" wins.
    let t = build(&["bc", "ab"], &["a b", "b c"], PreTokenizer::Gpt2);
    assert_eq!(t.encode("abc"), vec![257, b('c')]);
}

#[test]
fn a_later_rank_can_use_an_earlier_merge_result() {
    // "c d" (0), "a b" (1), "ab cd" (2): abcd -> ab cd -> abcd.
    let t = build(
        &["cd", "ab", "abcd", "bc"],
        &["c d", "a b", "ab cd", "b c"],
        PreTokenizer::Gpt2,
    );
    assert_eq!(t.encode("abcd"), vec![258]);
    // "b c" has the lowest rank here, so it blocks both "a b" and "c d".
    let t = build(
        &["cd", "ab", "abcd", "bc"],
        &["b c", "c d", "a b", "ab cd"],
        PreTokenizer::Gpt2,
    );
    assert_eq!(t.encode("abcd"), vec![b('a'), 259, b('d')]);
}

#[test]
fn repeated_pairs_merge_left_to_right() {
    let t = build(&["aa", "aaaa"], &["a a", "aa aa"], PreTokenizer::Gpt2);
    assert_eq!(t.encode("aaa"), vec![256, b('a')]);
    assert_eq!(t.encode("aaaa"), vec![257]);
    assert_eq!(t.encode("aaaaa"), vec![257, b('a')]);
    assert_eq!(t.encode("aaaaaa"), vec![257, 256]);
}

#[test]
fn merges_stay_inside_pre_tokens() {
    // "Ġ" is the space byte. " a" is one piece, "a b" two ("a", " b").
    let t = build(
        &["Ġa", "aĠ", "Ġb"],
        &["Ġ a", "a Ġ", "Ġ b"],
        PreTokenizer::Gpt2,
    );
    assert_eq!(t.encode(" a"), vec![256]);
    assert_eq!(t.encode("a b"), vec![b('a'), 258]);
    assert_eq!(t.token_bytes(256), Some(&b" a"[..]));
}

#[test]
fn gpt2_regex_splits() {
    let t = build(&[], &[], PreTokenizer::Gpt2);
    let cases: [(&str, &[&str]); 8] = [
        ("Hello world", &["Hello", " world"]),
        ("a   b", &["a", "  ", " b"]),
        ("x  ", &["x", "  "]),
        ("\n\nword", &["\n", "\n", "word"]),
        ("don't", &["don", "'t"]),
        ("I'M", &["I", "'", "M"]),
        ("it's 2024!!", &["it", "'s", " 2024", "!!"]),
        ("  ?!x", &[" ", " ?!", "x"]),
    ];
    for (text, want) in cases {
        assert_eq!(t.pre_tokenize(text), want, "{text:?}");
    }
}

#[test]
fn digits_are_isolated_before_the_regex() {
    let merges = ["1 2", "Ġ 1"];
    let gpt2 = build(&["12", "Ġ1"], &merges, PreTokenizer::Gpt2);
    let smol = build(&["12", "Ġ1"], &merges, PreTokenizer::DigitsThenGpt2);
    assert_eq!(gpt2.encode("12"), vec![256]);
    assert_eq!(smol.encode("12"), vec![b('1'), b('2')]);
    // " 1": GPT-2 keeps " 1" together; isolated digits leave the space on its own.
    assert_eq!(gpt2.encode(" 1"), vec![257]);
    assert_eq!(smol.encode(" 1"), vec![b(' '), b('1')]);
    assert_eq!(smol.pre_tokenize("ab12 c٣"), ["ab", "1", "2", " c", "٣"]);
}

#[test]
fn specials_are_parsed_only_when_asked() {
    let mut spec = BpeSpec::new(
        "tiny",
        tokens(&["<s>", "</s>", "<s>x"]),
        vec![],
        PreTokenizer::Gpt2,
    );
    spec.token_types = vec![TokenType::Normal; 259];
    spec.token_types[256] = TokenType::Control;
    spec.token_types[257] = TokenType::Control;
    spec.token_types[258] = TokenType::UserDefined;
    spec.bos = Some(256);
    spec.eos = Some(257);
    spec.add_bos = true;
    let t = BpeTokenizer::new(spec).unwrap();
    let text = "<s>hi</s><s>x";
    // Leftmost-longest: "<s>x" beats its prefix "<s>".
    assert_eq!(
        t.encode_with(text, true, false),
        vec![256, b('h'), b('i'), 257, 258]
    );
    // Plain text: "<s>" is "<", "s", ">".
    let plain = t.encode(text);
    assert_eq!(&plain[..3], &[b('<'), b('s'), b('>')]);
    assert_eq!(plain.len(), text.len());
    // add_special prepends BOS because add_bos is set (no EOS: add_eos is not).
    assert_eq!(t.encode_with("hi", false, true), vec![256, b('h'), b('i')]);
    assert_eq!(t.encode("hi"), vec![b('h'), b('i')]);
    assert_eq!(
        t.decode(&t.encode_with(text, true, true)),
        format!("<s>{text}")
    );
}

#[test]
fn any_text_round_trips_through_bytes() {
    let t = build(&["Ġt", "he"], &["Ġ t", "h e"], PreTokenizer::DigitsThenGpt2);
    for text in [
        "",
        "the 3 theses",
        "naïve — “quotes” 日本語 🦀 👨\u{200d}👩\u{200d}👧",
        "\u{0}\u{7f}\u{ad}\r\n\t",
    ] {
        let ids = t.encode(text);
        assert!(ids.iter().all(|&i| (i as usize) < t.vocab_size()));
        assert_eq!(t.decode(&ids), text);
    }
    // "é" is two bytes, so two byte tokens here.
    assert_eq!(t.encode("é"), vec![0xC3, 0xA9]);
    // An unknown id and a lone continuation byte both decode to U+FFFD.
    assert_eq!(t.decode(&[b('a'), 99_999]), "a\u{FFFD}");
    assert_eq!(t.decode(&[0xA9]), "\u{FFFD}");
}

#[test]
fn bad_specs_are_clear_errors() {
    let err = |extra: &[&str], merges: &[&str]| {
        let spec = BpeSpec::new(
            "tiny",
            tokens(extra),
            merges.iter().map(|s| s.to_string()).collect(),
            PreTokenizer::Gpt2,
        );
        BpeTokenizer::new(spec).unwrap_err().to_string()
    };
    assert!(err(&[], &["a b"]).contains("\"ab\" is not in the vocabulary"));
    assert!(err(&["ab"], &["ab"]).contains("two tokens"));
    assert!(err(&["ab"], &["a  b"]).contains("two tokens"));
    let mut spec = BpeSpec::new("tiny", tokens(&[]), vec![], PreTokenizer::Gpt2);
    spec.add_bos = true;
    let e = BpeTokenizer::new(spec).unwrap_err();
    assert!(matches!(e, DataError::Tokenizer { .. }), "{e}");
    assert!(e.to_string().contains("no bos id"), "{e}");
}

fn tokenizer_json(merges: &str, pre: &str, extra: &str) -> String {
    let vocab: Vec<String> = tokens(&["ab", "bc"])
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}: {i}", serde_json::to_string(t).unwrap()))
        .collect();
    format!(
        r#"{{"version": "1.0", "normalizer": null, "pre_tokenizer": {pre},
            "added_tokens": [{{"id": 258, "content": "<|x|>", "special": true}},
                             {{"id": 259, "content": "zz", "special": false}}],
            "model": {{"type": "BPE", "unk_token": null, "ignore_merges": false,
                       "vocab": {{{}}}, "merges": {merges}}}{extra}}}"#,
        vocab.join(", ")
    )
}

#[test]
fn tokenizer_json_loader_reads_both_merge_forms() {
    let pre = r#"{"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": true},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]}"#;
    let pairs = BpeTokenizer::from_tokenizer_json(
        "tiny",
        &tokenizer_json(r#"[["b", "c"], ["a", "b"]]"#, pre, ""),
    )
    .unwrap();
    let lines =
        BpeTokenizer::from_tokenizer_json("tiny", &tokenizer_json(r#"["b c", "a b"]"#, pre, ""))
            .unwrap();
    for t in [&pairs, &lines] {
        assert_eq!(t.vocab_size(), 260);
        assert_eq!(t.pre_tokenizer(), PreTokenizer::DigitsThenGpt2);
        assert_eq!(t.encode("abc"), vec![b('a'), 257]);
        assert_eq!(t.token_type(258), Some(TokenType::Control));
        assert_eq!(t.token_type(259), Some(TokenType::UserDefined));
        assert_eq!(t.encode_with("<|x|>abzz", true, false), vec![258, 256, 259]);
    }
    let byte_level = r#"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#;
    let t =
        BpeTokenizer::from_tokenizer_json("tiny", &tokenizer_json("[]", byte_level, "")).unwrap();
    assert_eq!(t.pre_tokenizer(), PreTokenizer::Gpt2);
}

#[test]
fn tokenizer_json_loader_rejects_what_it_cannot_honour() {
    let ok_pre = r#"{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}"#;
    let load = |json: String| BpeTokenizer::from_tokenizer_json("tiny", &json).unwrap_err();
    let e = load(tokenizer_json(
        "[]",
        r#"{"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}"#,
        "",
    ));
    assert!(e.to_string().contains("add_prefix_space"), "{e}");
    let e = load(tokenizer_json("[]", r#"{"type": "Whitespace"}"#, ""));
    assert!(e.to_string().contains("pre_tokenizer"), "{e}");
    let e = load(
        tokenizer_json("[]", ok_pre, "")
            .replace(r#""normalizer": null"#, r#""normalizer": {"type": "NFC"}"#),
    );
    assert!(e.to_string().contains("normalizer"), "{e}");
    let e = load(tokenizer_json(r#"["a q"]"#, ok_pre, ""));
    assert!(e.to_string().contains("not in the vocabulary"), "{e}");
    let e = load(
        tokenizer_json("[]", ok_pre, "").replace(r#""type": "BPE""#, r#""type": "WordPiece""#),
    );
    assert!(e.to_string().contains("not BPE"), "{e}");
}
