use nibble_data::{bits_per_byte, unigram_bpb};

const LN2: f64 = std::f64::consts::LN_2;

#[test]
fn bpb_formula_by_hand() {
    // 100 tokens at ln 2 nats each carry 100 bits; over 50 bytes that is 2 bits per byte.
    assert!((bits_per_byte(LN2, 100, 50) - 2.0).abs() < 1e-12);
    // Bytes tokenizer (tokens = bytes): bpb = loss / ln 2, i.e. 1 nat = log2(e) bits.
    assert!((bits_per_byte(1.0, 1000, 1000) - std::f64::consts::LOG2_E).abs() < 1e-12);
    // 3.0 nats/token, 4 000 tokens, 12 000 bytes: 3 * 4000 / (12000 ln 2) = 1 / ln 2.
    assert!((bits_per_byte(3.0, 4000, 12000) - 1.0 / LN2).abs() < 1e-12);
    // GPT-2-like: 2.5 nats/token, 1 000 tokens, 4 300 bytes: 2500 / (4300 * 0.6931471805599453).
    assert!((bits_per_byte(2.5, 1000, 4300) - 0.838_776_186_563_350_8).abs() < 1e-12);
    assert!(bits_per_byte(1.0, 10, 0).is_nan());
}

#[test]
fn unigram_baseline_by_hand() {
    // Train [0, 0, 1], vocab 3, add-one: p0 = 3/6, p1 = 2/6, p2 = 1/6.
    // Val [0, 2] over 2 bytes: -log2(1/2) - log2(1/6) = 1 + log2 6 bits, / 2 bytes.
    let want = (1.0 + 6f64.log2()) / 2.0;
    let got = unigram_bpb(&[0, 0, 1], &[0, 2], 3, 2).unwrap();
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    // A uniform model over 256 bytes costs exactly 8 bits per byte.
    let got = unigram_bpb(&[], &[7, 8, 9], 256, 3).unwrap();
    assert!((got - 8.0).abs() < 1e-12, "{got}");
}

#[test]
fn unigram_baseline_rejects_bad_input() {
    assert!(unigram_bpb(&[0, 5], &[0], 3, 1).is_err());
    assert!(unigram_bpb(&[0], &[4], 3, 1).is_err());
    assert!(unigram_bpb(&[0], &[], 3, 1).is_err());
}
