//! GPT-2's vocabulary and merges derived from tiktoken's ranks: the merges begin as OpenAI's
//! published `merges.txt` does, and a byte-level BPE built from them (Nibble's own BPE, the code
//! path of GGUF and `tokenizer.json` tokenizers) encodes exactly as tiktoken does.

use nibble_data::{BpeTokenizer, Gpt2Tokenizer, Tokenizer};

#[test]
fn derived_merges_reproduce_tiktoken() {
    let t = Gpt2Tokenizer::new().unwrap();
    let v = t.vocabulary().unwrap();
    assert_eq!(v.tokens.len(), 50257);
    assert_eq!(v.merges.len(), 50000);
    assert_eq!(v.endoftext, 50256);
    // The first lines of GPT-2's merges.txt (after its version header).
    assert_eq!(&v.merges[..6], ["Ġ t", "Ġ a", "h e", "i n", "r e", "o n"]);
    assert_eq!(v.tokens[198], "Ċ");
    assert_eq!(v.tokens[50256], "<|endoftext|>");
    let bpe = BpeTokenizer::new(v.spec()).unwrap();
    let mut texts: Vec<String> = [
        "Hello world",
        "  leading spaces and trailing   ",
        "don't we'll they've I'm you'd it's",
        "numbers 1234567 3.14159 and 2026-12-05",
        "unicode: naïve café — 日本語 😀 Ünïcödé\n\ttabs\r\n",
        "ROMEO: What light through yonder window breaks?",
        "",
        "\n\n\n",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let corpus = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/sample/macbeth.txt"
    ))
    .unwrap();
    texts.extend(corpus.lines().map(str::to_string));
    texts.push(corpus);
    let mut n = 0;
    for text in &texts {
        let want = t.encode(text);
        assert_eq!(bpe.encode_ordinary(text), want, "{text:?}");
        n += want.len();
    }
    println!("{} texts, {n} tokens: identical to tiktoken", texts.len());
}
