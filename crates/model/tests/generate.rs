//! KV-cached generation against independent references: the cached forward against the full
//! forward on the whole sequence (one token at a time, in chunks, under f32 and fp8), greedy
//! generation against argmax of the uncached forward on the growing sequence, and sampling
//! against softmax frequencies computed here.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::generate::{KvCache, argmax, sample, sample_with};
use nibble_model::{
    ForwardCtx, GenerateOptions, Llama, ModelConfig, Params, PrecisionConfig, generate,
};

type B = Flex;

fn dev() -> <B as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

const VOCAB: usize = 64;
const SEQ: usize = 20;

/// A 2-block GQA model (4 query heads over 2 kv heads) with a wide init, so logits differ.
fn tiny(scheme: &str) -> (Llama, Params<B>) {
    let arch = ModelConfig {
        d_model: Some(64),
        n_layers: Some(2),
        n_heads: Some(4),
        n_kv_heads: Some(2),
        d_ff: Some(128),
        seq_len: Some(SEQ),
        init_std: Some(0.25),
        ..Default::default()
    }
    .resolve(Some(VOCAB))
    .unwrap();
    let cfg = PrecisionConfig {
        default: scheme.into(),
        ..Default::default()
    };
    let m = Llama::new(arch, cfg.policy().unwrap());
    let p = m.init_params::<B>(11, &dev());
    (m, p)
}

fn ids(rows: &[Vec<u32>]) -> Tensor<B, 2, Int> {
    let n = rows[0].len();
    let v: Vec<i32> = rows.iter().flatten().map(|&x| x as i32).collect();
    Tensor::from_data(TensorData::new(v, [rows.len(), n]), &dev())
}

fn vals(t: Tensor<B, 3>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn ctx() -> ForwardCtx<B> {
    ForwardCtx::new(5, 0, false)
}

fn sequences() -> Vec<Vec<u32>> {
    vec![
        (0..SEQ as u32)
            .map(|i| (i * 37 + 3) % VOCAB as u32)
            .collect(),
        (0..SEQ as u32)
            .map(|i| (i * i + 11) % VOCAB as u32)
            .collect(),
    ]
}

/// Logits `[b, SEQ, V]` from cached forwards over chunks of `chunk` positions, as `[b][t][v]`.
fn cached_logits(m: &Llama, p: &Params<B>, seqs: &[Vec<u32>], chunk: usize) -> Vec<Vec<f32>> {
    let rope = m.rope::<B>(&dev());
    let mut cache = KvCache::new();
    let mut rows = vec![Vec::new(); seqs.len()];
    let mut c = ctx();
    let mut s = 0;
    while s < SEQ {
        let e = (s + chunk).min(SEQ);
        let part: Vec<Vec<u32>> = seqs.iter().map(|q| q[s..e].to_vec()).collect();
        let out = m
            .forward_cached(p, &rope, ids(&part), &mut cache, &mut c)
            .unwrap();
        assert_eq!(cache.len(), e);
        let v = vals(out);
        let per = (e - s) * VOCAB;
        for (r, row) in rows.iter_mut().enumerate() {
            row.extend_from_slice(&v[r * per..(r + 1) * per]);
        }
        s = e;
    }
    rows
}

fn full_logits(m: &Llama, p: &Params<B>, seqs: &[Vec<u32>]) -> Vec<Vec<f32>> {
    let rope = m.rope::<B>(&dev());
    let v = vals(m.forward(p, &rope, ids(seqs), &mut ctx()));
    v.chunks(SEQ * VOCAB).map(|c| c.to_vec()).collect()
}

/// max |a − b| / max |b| over all entries.
fn rel_err(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let (mut num, mut den) = (0f64, 0f64);
    for (ra, rb) in a.iter().zip(b) {
        assert_eq!(ra.len(), rb.len());
        for (&x, &y) in ra.iter().zip(rb) {
            assert!(x.is_finite(), "non-finite cached logit");
            num = num.max((f64::from(x) - f64::from(y)).abs());
            den = den.max(f64::from(y).abs());
        }
    }
    num / den
}

#[test]
fn cached_forward_matches_full_forward_f32() {
    let (m, p) = tiny("f32");
    let seqs = sequences();
    let full = full_logits(&m, &p, &seqs);
    for chunk in [1, 3, SEQ] {
        let err = rel_err(&cached_logits(&m, &p, &seqs, chunk), &full);
        println!("f32 cached (chunks of {chunk}) vs full: max rel err {err:.3e}");
        assert!(err < 1e-5, "chunk {chunk}: rel err {err}");
    }
    // Logits differ across positions: the comparison is not vacuous.
    assert!(full[0][..VOCAB] != full[0][VOCAB..2 * VOCAB]);
}

#[test]
fn positions_beyond_the_context_are_an_error() {
    let (m, p) = tiny("f32");
    let rope = m.rope::<B>(&dev());
    let mut cache = KvCache::new();
    let seq = &sequences()[0];
    m.forward_cached(
        &p,
        &rope,
        ids(&[seq[..SEQ - 1].to_vec()]),
        &mut cache,
        &mut ctx(),
    )
    .unwrap();
    let err = m
        .forward_cached(&p, &rope, ids(&[vec![1, 2]]), &mut cache, &mut ctx())
        .unwrap_err();
    assert!(err.contains("context"), "{err}");
    assert_eq!(
        cache.len(),
        SEQ - 1,
        "a refused call leaves the cache as it was"
    );
    m.forward_cached(&p, &rope, ids(&[vec![1]]), &mut cache, &mut ctx())
        .unwrap();
    assert_eq!(cache.len(), SEQ);
    // generate refuses a prompt longer than the context and stops when the context is full.
    let long: Vec<u32> = vec![1; SEQ + 1];
    assert!(generate(&m, &p, &long, &GenerateOptions::default(), &dev()).is_err());
    let full: Vec<u32> = vec![1; SEQ];
    let out = generate(&m, &p, &full, &GenerateOptions::default(), &dev()).unwrap();
    assert_eq!(out.len(), 1);
}

/// Argmax with ties to the lowest id, written independently of the crate's.
fn ref_argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for i in 1..row.len() {
        if row[i] > row[best] {
            best = i;
        }
    }
    best as u32
}

#[test]
fn greedy_generation_equals_argmax_of_the_full_forward() {
    let (m, p) = tiny("f32");
    let rope = m.rope::<B>(&dev());
    let prompt: Vec<u32> = vec![5, 17, 42, 3, 8];
    let opts = GenerateOptions {
        max_new_tokens: 100, // more than fits: generation stops at the context's end
        ..Default::default()
    };
    let got = generate(&m, &p, &prompt, &opts, &dev()).unwrap();
    let mut seq = prompt.clone();
    let mut want = Vec::new();
    loop {
        let t = seq.len();
        let l = vals(m.forward(&p, &rope, ids(std::slice::from_ref(&seq)), &mut ctx()));
        let tok = ref_argmax(&l[(t - 1) * VOCAB..t * VOCAB]);
        want.push(tok);
        if t == SEQ {
            break;
        }
        seq.push(tok);
    }
    assert_eq!(want.len(), SEQ - prompt.len() + 1);
    assert_eq!(got, want);
    let distinct: std::collections::BTreeSet<_> = got.iter().collect();
    println!("greedy: {got:?} ({} distinct)", distinct.len());
    // A shorter budget is a prefix.
    let short = GenerateOptions {
        max_new_tokens: 4,
        ..Default::default()
    };
    assert_eq!(
        generate(&m, &p, &prompt, &short, &dev()).unwrap(),
        want[..4]
    );
}

#[test]
fn sampling_is_reproducible_and_top_k_1_is_greedy() {
    let (m, p) = tiny("f32");
    let prompt: Vec<u32> = vec![9, 1, 30];
    let opts = |seed, top_k| GenerateOptions {
        max_new_tokens: 12,
        temperature: 1.5,
        top_k,
        seed,
        stop: Vec::new(),
    };
    let run = |o: &GenerateOptions| generate(&m, &p, &prompt, o, &dev()).unwrap();
    let a = run(&opts(1, None));
    assert_eq!(a.len(), 12);
    assert_eq!(a, run(&opts(1, None)));
    assert_ne!(a, run(&opts(2, None)));
    let greedy = run(&GenerateOptions {
        max_new_tokens: 12,
        ..Default::default()
    });
    assert_eq!(run(&opts(1, Some(1))), greedy);
    assert_eq!(run(&opts(7, Some(1))), greedy);
    assert_ne!(a, greedy);
    // A stop id ends generation and is included.
    let stop_at = a[4];
    let first = a.iter().position(|&t| t == stop_at).unwrap();
    let stopped = run(&GenerateOptions {
        stop: vec![stop_at],
        ..opts(1, None)
    });
    assert_eq!(stopped, a[..=first]);
    // Bad options are errors.
    assert!(generate(&m, &p, &prompt, &opts(1, Some(0)), &dev()).is_err());
    let neg = GenerateOptions {
        temperature: -1.0,
        ..opts(1, None)
    };
    assert!(generate(&m, &p, &prompt, &neg, &dev()).is_err());
    assert!(generate(&m, &p, &[VOCAB as u32], &opts(1, None), &dev()).is_err());
    assert!(generate(&m, &p, &[], &opts(1, None), &dev()).is_err());
}

/// Pearson's chi-square of observed counts against probabilities.
fn chi_square(counts: &[u64], probs: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    counts
        .iter()
        .zip(probs)
        .map(|(&c, &p)| {
            let e = p * n as f64;
            (c as f64 - e).powi(2) / e
        })
        .sum()
}

#[test]
fn sampling_frequencies_follow_softmax() {
    let logits = [2.0f32, 1.0, 0.5, -1.0];
    let t = 0.7;
    // softmax(logits / T) in f64, by hand.
    let e: Vec<f64> = logits.iter().map(|&l| (f64::from(l) / t).exp()).collect();
    let z: f64 = e.iter().sum();
    let probs: Vec<f64> = e.iter().map(|x| x / z).collect();
    let n = 40_000u64;
    // Over seeds (step 0) and over steps (seed 0): two independent uses of the counter.
    let mut by_seed = [0u64; 4];
    let mut by_step = [0u64; 4];
    for i in 0..n {
        by_seed[sample(&logits, t, None, i, 0) as usize] += 1;
        by_step[sample(&logits, t, None, 0, i) as usize] += 1;
    }
    // 3 degrees of freedom: P(chi² > 16.27) = 0.001.
    for (what, c) in [("seeds", by_seed), ("steps", by_step)] {
        let x2 = chi_square(&c, &probs);
        println!("{what}: counts {c:?}, expected {probs:?}, chi² {x2:.2}");
        assert!(x2 < 16.27, "{what}: chi² {x2}");
    }
    // A wrong distribution (T = 1) is rejected by the same statistic.
    let e1: Vec<f64> = logits.iter().map(|&l| f64::from(l).exp()).collect();
    let z1: f64 = e1.iter().sum();
    let wrong: Vec<f64> = e1.iter().map(|x| x / z1).collect();
    assert!(chi_square(&by_seed, &wrong) > 16.27);

    // top-k = 2: renormalized over ids 0 and 1 (1 dof: P(chi² > 10.83) = 0.001).
    let mut c2 = [0u64; 2];
    for i in 0..n {
        let s = sample(&logits, t, Some(2), i, 3) as usize;
        assert!(s < 2, "top-2 drew id {s}");
        c2[s] += 1;
    }
    let p2 = [
        probs[0] / (probs[0] + probs[1]),
        probs[1] / (probs[0] + probs[1]),
    ];
    assert!(chi_square(&c2, &p2) < 10.83, "top-2 {c2:?} vs {p2:?}");

    // Inverse CDF at the edges, ties and greedy.
    assert_eq!(sample_with(&logits, t, None, 0.0), 0);
    assert_eq!(sample_with(&logits, t, None, 0.999_999), 3);
    assert_eq!(argmax(&[1.0, 3.0, 3.0, 2.0]), 1);
    assert_eq!(sample_with(&[1.0, 3.0, 3.0, 2.0], 0.0, None, 0.9), 1);
    assert_eq!(sample_with(&[1.0, 3.0, 3.0, 2.0], 1.0, Some(1), 0.9), 1);
}

/// Quantized schemes go through the same `LpLinear::forward` in the cached path. A call that
/// holds the whole sequence quantizes exactly what the full forward quantizes; fed incrementally,
/// row-local scales (mxfp8's 1×32 blocks, fp8-block's 1×128 activation tiles) see the same rows,
/// while fp8-current's per-tensor activation scale is a function of the rows in the call, so
/// there the logits only stay finite and of the scheme's own error size.
#[test]
fn quantized_schemes_run_through_the_cached_forward() {
    let seqs = sequences();
    let (f, pf) = tiny("f32");
    let f32_full = full_logits(&f, &pf, &seqs);

    let (m, p) = tiny("fp8-current");
    assert!(m.linears().iter().any(|l| !l.scheme.is_identity()));
    let full = full_logits(&m, &p, &seqs);
    let quant = rel_err(&full, &f32_full);
    println!("fp8-current full vs f32 full: max rel err {quant:.3e}");
    assert!(quant > 1e-3, "the scheme must change the logits");
    let one = rel_err(&cached_logits(&m, &p, &seqs, SEQ), &full);
    println!("fp8-current cached (one call) vs full: max rel err {one:.3e}");
    assert!(one < 1e-3, "{one}");
    for chunk in [1, 3] {
        let cached = cached_logits(&m, &p, &seqs, chunk);
        let err = rel_err(&cached, &full);
        let to_f32 = rel_err(&cached, &f32_full);
        println!(
            "fp8-current cached (chunks of {chunk}) vs full: max rel err {err:.3e} (vs f32 {to_f32:.3e})"
        );
        assert!(to_f32 < 2.0 * quant, "chunk {chunk}: {to_f32} vs {quant}");
    }
    let out = generate(&m, &p, &[1, 2, 3], &GenerateOptions::default(), &dev()).unwrap();
    assert_eq!(out.len(), SEQ - 3 + 1);

    for scheme in ["mxfp8", "fp8-block"] {
        let (m, p) = tiny(scheme);
        let full = full_logits(&m, &p, &seqs);
        assert!(
            rel_err(&full, &f32_full) > 1e-3,
            "{scheme} must change the logits"
        );
        for chunk in [1, 3] {
            let err = rel_err(&cached_logits(&m, &p, &seqs, chunk), &full);
            println!("{scheme} cached (chunks of {chunk}) vs full: max rel err {err:.3e}");
            assert!(err < 1e-3, "{scheme} chunk {chunk}: {err}");
        }
    }
}
