//! The decoder against independent references: parameter counts, attention and RoPE computed
//! on the host from their definitions, causality, the bf16 scheme, and the precision policy.

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_model::layers::{Rope, causal_attention};
use nibble_model::params::{ParamKind, kind_of, layout};
use nibble_model::{
    ForwardCtx, Llama, LpLinear, ModelConfig, Params, PrecisionConfig, cross_entropy,
};

type B = Flex;

fn dev() -> <B as burn::tensor::backend::BackendTypes>::Device {
    Default::default()
}

fn vals<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec().unwrap()
}

fn preset(name: &str, vocab: Option<usize>) -> nibble_model::Arch {
    ModelConfig {
        preset: Some(name.into()),
        ..Default::default()
    }
    .resolve(vocab)
    .unwrap()
}

#[test]
fn preset_sizes() {
    // SmolLM2-135M: 134,515,008 parameters in its GGUF (tied embeddings), an independent count.
    let s = preset("smollm2-135m", None);
    let n: usize = layout(&s).iter().map(|(_, sh)| sh[0] * sh[1]).sum();
    assert_eq!(n, 134_515_008);
    assert_eq!(s.total_params(), n);
    let tiny = preset("tiny", Some(256)).non_embedding_params();
    let small = preset("small", Some(256)).non_embedding_params();
    assert!((800_000..1_200_000).contains(&tiny), "tiny {tiny}");
    assert!((8_000_000..12_000_000).contains(&small), "small {small}");
}

#[test]
fn config_errors_name_the_key() {
    let bad = |c: ModelConfig| c.validate().unwrap_err().key;
    assert_eq!(
        bad(ModelConfig {
            preset: Some("huge".into()),
            ..Default::default()
        }),
        "preset"
    );
    assert_eq!(
        bad(ModelConfig {
            n_heads: Some(3),
            ..Default::default()
        }),
        "n_heads"
    );
    assert_eq!(
        bad(ModelConfig {
            n_kv_heads: Some(3),
            ..Default::default()
        }),
        "n_kv_heads"
    );
    assert_eq!(
        bad(ModelConfig {
            seq_len: Some(0),
            ..Default::default()
        }),
        "seq_len"
    );
}

/// Causal GQA attention computed with plain loops in f64 from the definition.
#[test]
fn attention_matches_host_reference() {
    let (b, h, kv, t, hd) = (2, 6, 2, 7, 4);
    let make = |n: usize, k: u32| -> Vec<f32> {
        (0..n).map(|i| (i as f32 * 0.37 + k as f32).sin()).collect()
    };
    let (q, k, v) = (
        make(b * h * t * hd, 1),
        make(b * kv * t * hd, 2),
        make(b * kv * t * hd, 3),
    );
    let tq = Tensor::<B, 4>::from_data(TensorData::new(q.clone(), [b, h, t, hd]), &dev());
    let tk = Tensor::<B, 4>::from_data(TensorData::new(k.clone(), [b, kv, t, hd]), &dev());
    let tv = Tensor::<B, 4>::from_data(TensorData::new(v.clone(), [b, kv, t, hd]), &dev());
    let got = vals(causal_attention(tq, tk, tv));
    for bi in 0..b {
        for hi in 0..h {
            let kh = hi / (h / kv);
            for i in 0..t {
                let qv = |d: usize| q[((bi * h + hi) * t + i) * hd + d] as f64;
                let kvv =
                    |a: &Vec<f32>, j: usize, d: usize| a[((bi * kv + kh) * t + j) * hd + d] as f64;
                let s: Vec<f64> = (0..=i)
                    .map(|j| {
                        (0..hd).map(|d| qv(d) * kvv(&k, j, d)).sum::<f64>() / (hd as f64).sqrt()
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::MIN, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for d in 0..hd {
                    let want: f64 = (0..=i).map(|j| (s[j] - m).exp() / z * kvv(&v, j, d)).sum();
                    let g = got[((bi * h + hi) * t + i) * hd + d] as f64;
                    assert!(
                        (g - want).abs() < 1e-5,
                        "b{bi} h{hi} t{i} d{d}: {g} vs {want}"
                    );
                }
            }
        }
    }
}

/// HF rotate_half RoPE from its definition: pairs (j, j + hd/2) rotated by t·θ^(−2j/hd).
#[test]
fn rope_matches_definition() {
    let (t, hd, theta) = (5, 8, 10_000.0f64);
    let x: Vec<f32> = (0..t * hd).map(|i| (i as f32 * 0.1).cos()).collect();
    let rope = Rope::<B>::new(hd, 16, theta, &dev());
    let got = vals(rope.apply(Tensor::<B, 4>::from_data(
        TensorData::new(x.clone(), [1, t, 1, hd]), // [batch, seq, heads, hd]
        &dev(),
    )));
    for p in 0..t {
        for j in 0..hd / 2 {
            let a = p as f64 * theta.powf(-2.0 * j as f64 / hd as f64);
            let (x1, x2) = (x[p * hd + j] as f64, x[p * hd + j + hd / 2] as f64);
            let (y1, y2) = (x1 * a.cos() - x2 * a.sin(), x2 * a.cos() + x1 * a.sin());
            assert!((got[p * hd + j] as f64 - y1).abs() < 1e-5);
            assert!((got[p * hd + j + hd / 2] as f64 - y2).abs() < 1e-5);
        }
    }
}

fn tiny_model(policy: PrecisionConfig) -> (Llama, Params<B>) {
    let arch = ModelConfig {
        seq_len: Some(16),
        ..Default::default()
    }
    .resolve(Some(256))
    .unwrap();
    let m = Llama::new(arch.clone(), policy.policy().unwrap());
    (m, Params::init(&arch, 7, &dev()))
}

#[test]
fn forward_is_causal_and_starts_near_uniform() {
    let (m, p) = tiny_model(PrecisionConfig::default());
    let rope = m.rope::<B>(&dev());
    let toks: Vec<i32> = (0..2 * 16).map(|i| i * 37 % 256).collect();
    let mut toks2 = toks.clone();
    toks2[10] = 5; // change one token in sequence 0 at position 10
    let run = |t: Vec<i32>| {
        let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(t, [2, 16]), &dev());
        vals(m.forward(&p, &rope, ids, &mut ForwardCtx::new(0, 0, false)))
    };
    let (a, b) = (run(toks.clone()), run(toks2));
    let v = 256;
    assert!(
        a[..10 * v] == b[..10 * v],
        "positions before the change must not move"
    );
    assert!(a[10 * v..11 * v] != b[10 * v..11 * v]);
    // At init the loss is close to ln(vocab).
    let ids = Tensor::<B, 2, Int>::from_data(TensorData::new(toks.clone(), [2, 16]), &dev());
    let tg: Vec<i32> = toks.iter().map(|x| (x + 1) % 256).collect();
    let tg = Tensor::<B, 2, Int>::from_data(TensorData::new(tg, [2, 16]), &dev());
    let loss = vals(cross_entropy(
        m.forward(&p, &rope, ids, &mut ForwardCtx::new(0, 0, false)),
        tg,
    ))[0];
    assert!((loss - (256f32).ln()).abs() < 0.05, "initial loss {loss}");
}

#[test]
fn bf16_scheme_rounds_operands_and_passes_gradients_through() {
    use burn::backend::Autodiff;
    type A = Autodiff<Flex>;
    let x: Vec<f32> = (0..2 * 3 * 4)
        .map(|i| 1.0 + i as f32 * 0.001_234_5)
        .collect();
    let w: Vec<f32> = (0..5 * 4).map(|i| 0.3 - i as f32 * 0.010_101).collect();
    let tx =
        Tensor::<A, 3>::from_data(TensorData::new(x.clone(), [2, 3, 4]), &dev()).require_grad();
    let tw = Tensor::<A, 2>::from_data(TensorData::new(w.clone(), [5, 4]), &dev()).require_grad();
    let lin = LpLinear::new(
        "l".into(),
        std::sync::Arc::new(nibble_ops::preset("bf16").unwrap()),
        0,
    );
    let y = lin.gemm(tx.clone(), tw.clone(), 0, true, None);
    let got: Vec<f32> = y.clone().inner().into_data().into_vec().unwrap();
    let r = |v: f32| half::bf16::from_f32(v).to_f32();
    for row in 0..6 {
        for o in 0..5 {
            let want: f32 = (0..4).map(|i| r(x[row * 4 + i]) * r(w[o * 4 + i])).sum();
            assert!(
                (got[row * 5 + o] - want).abs() < 1e-6,
                "{} vs {want}",
                got[row * 5 + o]
            );
        }
    }
    // Straight-through: d(sum y)/dx = column sums of the *rounded* W (the GEMM's other operand).
    let g = y.sum().backward();
    let gx: Vec<f32> = tx.grad(&g).unwrap().into_data().into_vec().unwrap();
    for i in 0..4 {
        let want: f32 = (0..5).map(|o| r(w[o * 4 + i])).sum();
        assert!((gx[i] - want).abs() < 1e-6);
    }
}

#[test]
fn policy_assigns_schemes_per_module() {
    let cfg: PrecisionConfig = toml::from_str(
        r#"
        default = "bf16"
        [[rules]]
        match = "model.layers.*.mlp.down_proj"
        scheme = "f32"
        [[rules]]
        match = "model.layers.0.*"
        scheme = "f32"
        "#,
    )
    .unwrap();
    let (m, _) = tiny_model(cfg);
    for l in m.linears() {
        let want = if l.name == "lm_head"
            || l.name.starts_with("model.layers.0.")
            || l.name.ends_with("down_proj")
        {
            "f32"
        } else {
            "bf16"
        };
        assert_eq!(l.scheme.name, want, "{}", l.name);
    }
    let bad: PrecisionConfig = toml::from_str("default = \"fp3\"").unwrap();
    assert_eq!(bad.validate().unwrap_err().key, "default");
    let bad: PrecisionConfig =
        toml::from_str("[[rules]]\nmatch = \"x\"\nscheme = \"nope\"").unwrap();
    assert_eq!(bad.validate().unwrap_err().key, "rules[0].scheme");
    assert_eq!(
        kind_of("model.layers.3.input_layernorm.weight"),
        ParamKind::Norm
    );
    assert_eq!(kind_of("model.embed_tokens.weight"), ParamKind::Embedding);
    assert_eq!(kind_of("lm_head.weight"), ParamKind::Matrix);
}

#[test]
fn mixed_schemes_per_layer_by_glob_and_block_position() {
    let cfg: PrecisionConfig = toml::from_str(
        r#"
        default = "quartet-mxfp4"
        [[rules]]
        first_blocks = 1
        scheme = "bf16"
        [[rules]]
        last_blocks = 1
        scheme = "fp8-current"
        [[rules]]
        match = "*.mlp.down_proj"
        scheme = "q-fwd"
        [schemes.q-fwd]
        preset = "quartet-mxfp4"
        passes = "forward"
        "#,
    )
    .unwrap();
    let (m, p) = tiny_model(cfg);
    assert_eq!(m.arch.n_layers, 4);
    for l in m.linears() {
        let want = match l.name.as_str() {
            "lm_head" => "f32",
            n if n.starts_with("model.layers.0.") => "bf16",
            n if n.starts_with("model.layers.3.") => "fp8-current",
            n if n.ends_with("down_proj") => "q-fwd",
            _ => "quartet-mxfp4",
        };
        assert_eq!(l.scheme.name, want, "{}", l.name);
    }
    let fwd_only = m.linears()[6 + 7].scheme.clone();
    assert_eq!(m.linears()[6 + 7].name, "model.layers.1.mlp.down_proj");
    assert!(fwd_only.fwd_x.is_some() && fwd_only.backward.is_some_and(|b| b.rht.is_none()));
    m.check_shapes(2 * 16).unwrap();
    assert!(
        m.check_shapes(2 * 16 + 8)
            .unwrap_err()
            .contains("tokens per micro-batch")
    );

    // Forward and backward run end to end with every scheme mixed.
    use burn::backend::Autodiff;
    type A = Autodiff<Flex>;
    let leaves: Params<A> = Params {
        tensors: p
            .tensors
            .iter()
            .map(|(k, t)| (k.clone(), Tensor::from_inner(t.clone()).require_grad()))
            .collect(),
        buffers: Default::default(),
    };
    let toks: Vec<i32> = (0..2 * 16).map(|i| i * 37 % 256).collect();
    let ids = Tensor::<A, 2, Int>::from_data(TensorData::new(toks.clone(), [2, 16]), &dev());
    let tg: Vec<i32> = toks.iter().map(|x| (x + 1) % 256).collect();
    let tg = Tensor::<A, 2, Int>::from_data(TensorData::new(tg, [2, 16]), &dev());
    let rope = m.rope::<A>(&dev());
    let loss = cross_entropy(
        m.forward(&leaves, &rope, ids, &mut ForwardCtx::new(42, 0, true)),
        tg,
    );
    let g = loss.backward();
    for (name, t) in &leaves.tensors {
        let gv: Vec<f32> = t.grad(&g).unwrap().into_data().into_vec().unwrap();
        assert!(gv.iter().all(|v| v.is_finite()), "{name}");
        assert!(gv.iter().any(|v| *v != 0.0), "{name} got no gradient");
    }
}

#[test]
fn precision_errors_name_their_key() {
    let err = |text: &str| {
        toml::from_str::<PrecisionConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .key
    };
    assert_eq!(err("[schemes.q]\npreset = \"fp5\""), "schemes.q.preset");
    // Knobs deserialize straight into nibble-ops' table: a bad value fails at parsing, with the
    // accepted values (the recipe loader adds file, line and key).
    let bad = toml::from_str::<PrecisionConfig>(
        "[schemes.q]\npreset = \"quartet-mxfp4\"\npasses = \"sideways\"",
    )
    .unwrap_err()
    .to_string();
    assert!(
        bad.contains("unknown variant `sideways`") && bad.contains("`forward`"),
        "{bad}"
    );
    assert_eq!(err("[schemes.bf16]\npreset = \"bf16\""), "schemes.bf16");
    assert_eq!(
        err("[[rules]]\nmatch = \"x\"\nfirst_blocks = 1\nscheme = \"f32\""),
        "rules[0]"
    );
    assert_eq!(err("default = \"mine\""), "default");
}
