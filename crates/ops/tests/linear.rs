//! The quantized linear op against independent references: the plain linear layer, finite
//! differences, seed averages (unbiasedness of the randomized-Hadamard backward), the QuEST trust
//! mask computed by hand, and the regression that signs after H make the RHT deterministic.

use std::sync::Arc;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_formats::element::round_bf16;
use nibble_formats::spec::{ExpRounding, QuantSpec, Rounding, Transform};
use nibble_ops::{
    BackwardQuant, LayerCall, LinearScheme, Passes, Rht, RhtGemms, SchemeTable, SignSide,
    SignSource, Source, customize, lp_linear, preset,
};

type AD = Autodiff<Flex>;

/// Deterministic pseudo-random values (a fixed LCG), scaled.
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Sum of uniforms: roughly Gaussian.
            let mut acc = 0.0f32;
            for k in 0..4 {
                acc += ((s >> (16 * k)) & 0xffff) as f32 / 65536.0 - 0.5;
            }
            acc * scale
        })
        .collect()
}

fn t2<B: Backend>(v: Vec<f32>, dims: [usize; 2]) -> Tensor<B, 2> {
    Tensor::from_data(TensorData::new(v, dims), &Default::default())
}

fn host<B: Backend>(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().into_vec::<f32>().unwrap()
}

/// (Y, dX, dW) of `sum(Y ⊙ C)` through the op.
fn run(
    scheme: &LinearScheme,
    x: &[f32],
    w: &[f32],
    c: &[f32],
    dims: (usize, usize, usize),
    key: u64,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (t, k, n) = dims;
    let xa = t2::<AD>(x.to_vec(), [t, k]).require_grad();
    let wa = t2::<AD>(w.to_vec(), [n, k]).require_grad();
    // Delayed scaling needs its per-layer state (fresh: scale 1).
    let call = LayerCall {
        delayed: scheme
            .delayed
            .map(|d| Arc::new(std::sync::Mutex::new(nibble_ops::DelayedState::new(&d)))),
        ..LayerCall::key(key)
    };
    let y = lp_linear(xa.clone(), wa.clone(), &Arc::new(scheme.clone()), &call);
    let loss = (y.clone() * t2::<AD>(c.to_vec(), [t, n])).sum();
    let g = loss.backward();
    (
        host(y.inner()),
        host(xa.grad(&g).unwrap()),
        host(wa.grad(&g).unwrap()),
    )
}

/// The same through burn's own matmul.
fn plain(x: &[f32], w: &[f32], c: &[f32], dims: (usize, usize, usize)) -> [Vec<f32>; 3] {
    let (t, k, n) = dims;
    let xa = t2::<AD>(x.to_vec(), [t, k]).require_grad();
    let wa = t2::<AD>(w.to_vec(), [n, k]).require_grad();
    let y = xa.clone().matmul(wa.clone().transpose());
    let loss = (y.clone() * t2::<AD>(c.to_vec(), [t, n])).sum();
    let g = loss.backward();
    [
        host(y.inner()),
        host(xa.grad(&g).unwrap()),
        host(wa.grad(&g).unwrap()),
    ]
}

const DIMS: (usize, usize, usize) = (64, 64, 32);

fn inputs() -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (t, k, n) = DIMS;
    (
        values(t * k, 1, 2.0),
        values(n * k, 2, 0.5),
        values(t * n, 3, 1.0),
    )
}

fn rms(a: &[f32]) -> f64 {
    (a.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

fn diff(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

#[test]
fn identity_quantizers_equal_the_plain_linear_bit_for_bit() {
    let (x, w, c) = inputs();
    // bf16-representable data: the bf16 quantizers are the identity on it, yet every operand
    // goes through the quantizing path (host round trip, masks, saved state, transposes).
    let bf = |v: Vec<f32>| v.into_iter().map(round_bf16).collect::<Vec<_>>();
    let (x, w, c) = (bf(x), bf(w), bf(c));
    let want = plain(&x, &w, &c, DIMS);
    for scheme in [preset("f32").unwrap(), preset("bf16").unwrap()] {
        let (y, dx, dw) = run(&scheme, &x, &w, &c, DIMS, 7);
        assert_eq!(y, want[0], "{}: Y", scheme.name);
        assert_eq!(dx, want[1], "{}: dX", scheme.name);
        assert_eq!(dw, want[2], "{}: dW", scheme.name);
    }
}

/// Hadamards only (forward H32, backward RHT32 with fresh signs): a linear map whose GEMMs are
/// invariant, so the op equals the plain layer up to float rounding, and finite differences
/// of the loss match its gradient.
#[test]
fn rotations_alone_change_nothing_and_match_finite_differences() {
    let (x, w, c) = inputs();
    let mut s = LinearScheme::identity("rotations");
    s.fwd_hadamard = Some(32);
    s.backward = Some(BackwardQuant {
        dgrad_dy: None,
        dgrad_w: None,
        wgrad_dy: None,
        wgrad_x: None,
        source: Source::Requantize,
        rht: Some(Rht {
            g: 32,
            signs: SignSource::Fresh,
            side: SignSide::BeforeH,
            gemms: RhtGemms::Both,
        }),
    });
    let want = plain(&x, &w, &c, DIMS);
    let (y, dx, dw) = run(&s, &x, &w, &c, DIMS, 11);
    for (got, want, what) in [
        (&y, &want[0], "Y"),
        (&dx, &want[1], "dX"),
        (&dw, &want[2], "dW"),
    ] {
        let rel = rms(&diff(got, want)) / rms(want);
        assert!(rel < 1e-6, "{what}: relative error {rel}");
    }
    // Central differences of L = sum(Y ⊙ C) in f64 on the host, from the op's forward.
    let (t, k, n) = DIMS;
    let loss = |x: &[f32], w: &[f32]| -> f64 {
        let y = run(&s, x, w, &c, DIMS, 11).0;
        y.iter().zip(&c).map(|(a, b)| *a as f64 * *b as f64).sum()
    };
    let h = 1e-2f32;
    for &(i, is_x) in &[
        (5usize, true),
        (t * k - 3, true),
        (17, false),
        (n * k - 1, false),
    ] {
        let (mut a, mut b) = (x.clone(), w.clone());
        let v = if is_x { &mut a } else { &mut b };
        v[i] += h;
        let up = loss(&a, &b);
        let v = if is_x { &mut a } else { &mut b };
        v[i] -= 2.0 * h;
        let down = loss(&a, &b);
        let fd = (up - down) / (2.0 * h as f64);
        let g = if is_x { dx[i] } else { dw[i] } as f64;
        assert!(
            (fd - g).abs() < 2e-3 * g.abs().max(1.0),
            "index {i}: fd {fd} vs {g}"
        );
    }
}

/// Backward-only Quartet (exact forward), averaged over S keys. With SR the estimator is
/// unbiased: the error of the mean shrinks like 1/√S. With RTN (the v4 default) the RHT
/// decorrelates the rounding errors, so the mean still converges to within a small bias, far
/// below one quantization step (the single-call error). With the signs after H (the reference
/// code's bug) the RHT is deterministic and the error does not average out at all.
#[test]
fn rht_backward_is_unbiased_over_seeds_and_signs_after_h_are_not() {
    let (x, w, c) = inputs();
    let exact = plain(&x, &w, &c, DIMS);
    let backward_only = |side, rounding| {
        let k = SchemeTable {
            passes: Some(Passes::BackwardOnly),
            sign_side: Some(side),
            backward_rounding: Some(rounding),
            ..Default::default()
        };
        customize("q", preset("quartet-mxfp4").unwrap(), &k).unwrap()
    };
    let samples = 256;
    let stats = |s: &LinearScheme| {
        let (mut sx, mut sw) = (vec![0f64; exact[1].len()], vec![0f64; exact[2].len()]);
        let mut single = (0.0, 0.0);
        for key in 0..samples {
            let (y, dx, dw) = run(s, &x, &w, &c, DIMS, 1000 + key);
            assert_eq!(y, exact[0], "backward-only: the forward is exact");
            if key == 0 {
                single = (
                    rms(&diff(&dx, &exact[1])) / rms(&exact[1]),
                    rms(&diff(&dw, &exact[2])) / rms(&exact[2]),
                );
            }
            sx.iter_mut().zip(&dx).for_each(|(a, b)| *a += *b as f64);
            sw.iter_mut().zip(&dw).for_each(|(a, b)| *a += *b as f64);
        }
        let mean_err = |sum: &[f64], ex: &[f32]| {
            let d: Vec<f32> = sum
                .iter()
                .zip(ex)
                .map(|(s, e)| (s / samples as f64) as f32 - e)
                .collect();
            rms(&d) / rms(ex)
        };
        (single, (mean_err(&sx, &exact[1]), mean_err(&sw, &exact[2])))
    };
    let shrink = (samples as f64).sqrt();
    let (single, mean) = stats(&backward_only(SignSide::BeforeH, Rounding::Stochastic));
    assert!(
        single.0 > 0.02 && single.1 > 0.02,
        "FP4 error is visible per call: {single:?}"
    );
    assert!(
        mean.0 < 1.5 * single.0 / shrink,
        "SR dX: mean error {mean:?} vs single {single:?}"
    );
    assert!(
        mean.1 < 1.5 * single.1 / shrink,
        "SR dW: mean error {mean:?} vs single {single:?}"
    );

    let (single, mean) = stats(&backward_only(SignSide::BeforeH, Rounding::Rne));
    assert!(
        mean.0 < 0.2 * single.0,
        "RTN dX: mean error {mean:?} vs single {single:?}"
    );
    assert!(
        mean.1 < 0.2 * single.1,
        "RTN dW: mean error {mean:?} vs single {single:?}"
    );

    let (single_bug, mean_bug) = stats(&backward_only(SignSide::AfterH, Rounding::Rne));
    eprintln!(
        "RTN before H: single {single:?}, mean {mean:?}; after H: {single_bug:?}, {mean_bug:?}"
    );
    assert!(
        mean_bug.0 > 0.5 * single_bug.0 && mean_bug.1 > 0.5 * single_bug.1,
        "signs after H cancel in the GEMM: the error must not average out ({mean_bug:?} vs \
         {single_bug:?})"
    );
}

/// QuEST forward without Hadamard so the mask is visible in dX: dX is exactly dY·W (f32
/// backward) where |x/scale| < 6 and exactly 0 where the block scale clips, with the scale
/// computed here from its definition.
#[test]
fn trust_mask_zeroes_exactly_the_clipped_inputs() {
    let (t, k, _) = DIMS;
    let (mut x, w, c) = inputs();
    // Outliers so that some blocks clip.
    for i in (0..x.len()).step_by(97) {
        x[i] *= 9.0;
    }
    let mut s = LinearScheme::identity("quest-mask");
    let mut q = QuantSpec::quartet_forward(ExpRounding::Nearest);
    q.transform = Transform::None;
    s.fwd_x = Some(q);
    s.clip_mask = true;
    let (_, dx, _) = run(&s, &x, &w, &c, DIMS, 3);
    let full = plain(&x, &w, &c, DIMS)[1].clone();
    let mut clipped = 0;
    for r in 0..t {
        for b in 0..k / 32 {
            let v = &x[r * k + b * 32..r * k + b * 32 + 32];
            let mean = v.iter().map(|&a| a as f64).sum::<f64>() / 32.0;
            let var = v.iter().map(|&a| (a as f64).powi(2)).sum::<f64>() / 32.0 - mean * mean;
            let sigma = var.max(0.0).sqrt();
            let scale = 2f64.powf(
                (nibble_formats::spec::QUEST_C as f64 * sigma + 1e-8)
                    .log2()
                    .round(),
            );
            for (j, &vj) in v.iter().enumerate() {
                let i = r * k + b * 32 + j;
                if (vj as f64 / scale).abs() >= 6.0 {
                    clipped += 1;
                    assert_eq!(dx[i], 0.0, "clipped element {i} must get no gradient");
                } else {
                    assert_eq!(dx[i], full[i], "kept element {i}");
                }
            }
        }
    }
    assert!(clipped > 10, "the test needs clipped elements ({clipped})");
}

#[test]
fn same_key_same_bits_other_key_other_bits() {
    let (x, w, c) = inputs();
    let mut s = preset("quartet-mxfp4").unwrap();
    s = customize(
        "sr",
        s,
        &SchemeTable {
            backward_rounding: Some(Rounding::Stochastic),
            ..Default::default()
        },
    )
    .unwrap();
    let a = run(&s, &x, &w, &c, DIMS, 5);
    let b = run(&s, &x, &w, &c, DIMS, 5);
    let d = run(&s, &x, &w, &c, DIMS, 6);
    assert_eq!(a, b);
    assert_eq!(a.0, d.0, "the forward has no randomness");
    assert_ne!(a.1, d.1);
}

#[test]
fn every_preset_runs_and_stays_close_to_f32() {
    let (x, w, c) = inputs();
    let exact = plain(&x, &w, &c, DIMS);
    // Relative RMS error bounds per family: FP8 ~ 2^-4, FP4 ~ 2^-2 (loose; catches gross bugs
    // such as a missing 16/9 or a transposed operand).
    for (name, bound) in [
        ("f32", 0.0),
        ("bf16", 0.01),
        ("fp8-current", 0.08),
        ("fp8-delayed", 0.08),
        ("mxfp8", 0.08),
        ("fp8-block", 0.08),
        ("quartet-mxfp4", 0.35),
        ("nvfp4-te", 0.35),
        ("naive-mxfp4", 0.6),
    ] {
        let s = preset(name).unwrap();
        let (y, dx, dw) = run(&s, &x, &w, &c, DIMS, 9);
        for (got, want, what) in [
            (&y, &exact[0], "Y"),
            (&dx, &exact[1], "dX"),
            (&dw, &exact[2], "dW"),
        ] {
            let rel = rms(&diff(got, want)) / rms(want);
            assert!(
                rel <= bound + 1e-7,
                "{name} {what}: relative error {rel} > {bound}"
            );
        }
    }
}

/// FP8 delayed scaling through the op: the first step quantizes with scale 1 and stages the
/// amaxes; after the step's update the next call uses 448 / amax(history). Checked against an
/// E4M3 cast of the hand-scaled operands.
#[test]
fn delayed_scaling_uses_the_previous_steps_amax() {
    use std::sync::Mutex;

    use nibble_formats::element::Element;
    use nibble_formats::quantize::quantize_dequantize;
    use nibble_formats::spec::{Block, ScaleRule};
    use nibble_ops::DelayedState;

    let (x, w, c) = inputs();
    let (t, k, n) = DIMS;
    let s = preset("fp8-delayed").unwrap();
    let d = s.delayed.unwrap();
    let state = Arc::new(Mutex::new(DelayedState::new(&d)));
    let call = LayerCall {
        key: 1,
        record: true,
        delayed: Some(state.clone()),
    };
    let cast = |v: &[f32], scale: f32| -> Vec<f32> {
        let spec = QuantSpec {
            element: Element::E4M3,
            block: Block::Tensor,
            scale: ScaleRule::None,
            rounding: Rounding::Rne,
            transform: Transform::None,
        };
        let scaled: Vec<f32> = v.iter().map(|a| a * scale).collect();
        quantize_dequantize(&spec, &scaled, &[v.len()], 0)
            .unwrap()
            .values
            .into_iter()
            .map(|q| q * (1.0 / scale))
            .collect()
    };
    let forward = |call: &LayerCall| {
        let y = lp_linear(
            t2::<Flex>(x.clone(), [t, k]),
            t2::<Flex>(w.clone(), [n, k]),
            &Arc::new(s.clone()),
            call,
        );
        host(y)
    };
    let amax = |v: &[f32]| v.iter().fold(0f32, |m, a| m.max(a.abs()));
    let want = |sx: f32, sw: f32| {
        host(t2::<Flex>(cast(&x, sx), [t, k]).matmul(t2::<Flex>(cast(&w, sw), [n, k]).transpose()))
    };
    assert_eq!(forward(&call), want(1.0, 1.0), "step 1: initial scale 1");
    assert_eq!(state.lock().unwrap().x.history[0], amax(&x));
    assert_eq!(state.lock().unwrap().w.history[0], amax(&w));
    // Evaluation does not record.
    let eval = LayerCall {
        record: false,
        ..call.clone()
    };
    state.lock().unwrap().x.history[0] = 0.0;
    forward(&eval);
    assert_eq!(state.lock().unwrap().x.history[0], 0.0);
    state.lock().unwrap().x.history[0] = amax(&x);
    {
        let mut st = state.lock().unwrap();
        st.x.update(&d, 448.0);
        st.w.update(&d, 448.0);
    }
    let (sx, sw) = (448.0 / amax(&x), 448.0 / amax(&w));
    assert_eq!(
        forward(&call),
        want(sx, sw),
        "step 2: scales from step 1's amaxes"
    );
    let _ = c;
}

/// The forward Hadamard fused into the quantizer (re-quantizing backward) and applied as its own
/// pass (high-precision backward source) give the same forward bits.
#[test]
fn fused_and_separate_forward_hadamard_agree() {
    let (x, w, c) = inputs();
    let q = preset("quartet-mxfp4").unwrap();
    let hp = customize(
        "hp",
        q.clone(),
        &SchemeTable {
            source: Some(Source::HighPrecision),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        run(&q, &x, &w, &c, DIMS, 4).0,
        run(&hp, &x, &w, &c, DIMS, 4).0
    );
}
