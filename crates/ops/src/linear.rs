//! The quantized linear layer's math, on a plain (non-autodiff) backend.
//!
//! forward:  Xh = X·H, Wh = W·H (fixed H along K, if any); Xq, Wq = Q(Xh), Q(Wh); Y = Xq·Wqᵀ.
//! dgrad:    dXh = Q(dY·R)·Q(Wsᵀ·R)ᵀ          (R = diag(s)·H along N, if the scheme has an RHT)
//! wgrad:    dWh = Q(dYᵀ·R)·Q(Xsᵀ·R)ᵀ         (R along T)
//!           Xs, Ws = Xq, Wq (re-quantize) or Xh, Wh (high precision)
//! then:     dX = (dXh ⊙ Mx)·Hᵀ, dW = (dWh ⊙ Mw)·Hᵀ (clip masks if the scheme uses them).
//!
//! R·Rᵀ = I, so every GEMM is invariant to the rotations up to quantization. The 3/4 rule's 16/9
//! correction is applied once per GEMM: each operand's dequantization folds back its own 4/3.

use std::sync::Arc;

use burn::prelude::*;
use nibble_formats::hadamard::{TE_SIGNS_16, random_signs};
use nibble_formats::spec::{QuantSpec, Signs, Transform};

use crate::backend::{LayerCall, LpBackend, unwrap, wrap};
use crate::delayed::{AmaxHistory, DelayedState};
use crate::keys::{Role, subkey};
use crate::scheme::{LinearScheme, RhtGemms, SignSide, SignSource, Source};

/// What the backward needs from the forward.
#[derive(Clone, Debug)]
pub struct Saved<B: Backend> {
    /// X and W as the backward GEMMs take them (forward-quantized or high precision, in the
    /// forward Hadamard domain).
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    /// Keep masks of the forward quantizers (1 = not clipped), if the scheme applies them.
    keep_x: Option<Tensor<B, 2>>,
    keep_w: Option<Tensor<B, 2>>,
    scheme: Arc<LinearScheme>,
    call: LayerCall,
}

/// Which delayed-scaling history an operand uses.
#[derive(Clone, Copy)]
enum Hist {
    X,
    W,
    Dy,
}

fn history(st: &mut DelayedState, h: Hist) -> &mut AmaxHistory {
    match h {
        Hist::X => &mut st.x,
        Hist::W => &mut st.w,
        Hist::Dy => &mut st.dy,
    }
}

/// Quantize with the role's delayed scale (staging its amax when `stage`).
fn delayed<B: LpBackend>(
    t: Tensor<B, 2>,
    spec: &QuantSpec,
    state: &std::sync::Mutex<DelayedState>,
    h: Hist,
    stage: bool,
) -> Tensor<B, 2> {
    let mut st = state.lock().expect("delayed-scaling state");
    let hist = history(&mut st, h);
    let (q, amax) = B::lp_cast_scaled(unwrap(t), spec.element, hist.scale);
    if stage {
        hist.stage(amax);
    }
    wrap(q)
}

/// One operand: the delayed path when the scheme has delayed scaling, else its spec.
fn operand<B: LpBackend>(
    t: Tensor<B, 2>,
    spec: Option<&QuantSpec>,
    seed: u64,
    call: &LayerCall,
    h: Hist,
    stage: bool,
) -> Tensor<B, 2> {
    match (spec, &call.delayed) {
        (Some(s), Some(state)) => delayed(t, s, state, h, stage && call.record),
        _ => maybe_quant(t, spec, seed),
    }
}

fn quant<B: LpBackend>(
    t: Tensor<B, 2>,
    spec: &QuantSpec,
    seed: u64,
    want_mask: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    if spec.is_plain_cast() && !want_mask {
        // bf16 and unscaled casts: one element-wise pass without the quantizer's statistics
        // pre-pass, on every backend (same bits: `cast_with_scale` at scale 1).
        return (
            wrap(B::lp_cast_scaled(unwrap(t), spec.element, 1.0).0),
            None,
        );
    }
    let (v, k) = B::lp_quantize(unwrap(t), spec, seed, want_mask);
    (wrap(v), k.map(wrap))
}

fn maybe_quant<B: LpBackend>(t: Tensor<B, 2>, spec: Option<&QuantSpec>, seed: u64) -> Tensor<B, 2> {
    match spec {
        Some(s) => quant(t, s, seed, false).0,
        None => t,
    }
}

/// `bf16(a)·bf16(b)` in the backend's fused bf16 GEMM.
fn bf16_gemm<B: LpBackend>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    wrap(B::bf16_matmul(unwrap(a), unwrap(b)))
}

/// `spec` with a transform fused in (one pass over the operand instead of two).
fn with_transform(spec: &QuantSpec, transform: Transform) -> QuantSpec {
    QuantSpec { transform, ..*spec }
}

fn hadamard<B: LpBackend>(
    t: Tensor<B, 2>,
    g: usize,
    signs: Option<&[f32]>,
    inverse: bool,
    signs_after: bool,
) -> Tensor<B, 2> {
    wrap(B::lp_hadamard(unwrap(t), g, signs, inverse, signs_after))
}

/// The forward. With `save`, also what the backward needs.
pub fn forward<B: LpBackend>(
    x: Tensor<B, 2>,
    w: Tensor<B, 2>,
    scheme: &Arc<LinearScheme>,
    call: &LayerCall,
    save: bool,
) -> (Tensor<B, 2>, Option<Saved<B>>) {
    let s = scheme.as_ref();
    let key = call.key;
    let call = if s.delayed.is_some() {
        assert!(
            call.delayed.is_some(),
            "scheme `{}` has delayed scaling but the layer has no amax state",
            s.name
        );
        call.clone()
    } else {
        LayerCall {
            delayed: None,
            ..call.clone()
        }
    };
    let fused_bf16 = s.is_bf16_autocast() && B::fused_bf16_gemm();
    if s.is_identity() || fused_bf16 {
        // Plain f32, or bf16 in one pass per GEMM (the operands rounded inside the GEMM's
        // packing); either way the backward takes x and w as they are.
        let y = if fused_bf16 {
            bf16_gemm(x.clone(), w.clone().transpose())
        } else {
            x.clone().matmul(w.clone().transpose())
        };
        let saved = save.then(|| Saved {
            x,
            w,
            keep_x: None,
            keep_w: None,
            scheme: scheme.clone(),
            call,
        });
        return (y, saved);
    }
    let [t, k] = x.dims();
    let n = w.dims()[0];
    if let Err(e) = s.check_shape(t, k, n) {
        panic!("{e}");
    }
    let requant = s.backward.is_none_or(|b| b.source == Source::Requantize);
    let want_mask = save && s.clip_mask;
    // Returns (the GEMM operand, its keep mask, the rotated high-precision operand if the
    // backward needs it). Without that need, the forward Hadamard is fused into the quantizer.
    let fwd = |t: Tensor<B, 2>, spec: Option<&QuantSpec>, role, h| {
        let rotate = |t: Tensor<B, 2>| match s.fwd_hadamard {
            Some(g) => hadamard(t, g, None, false, false),
            None => t,
        };
        match (spec, &call.delayed, s.fwd_hadamard) {
            (Some(_), Some(_), _) => {
                let hp = (!requant).then(|| t.clone());
                (operand(t, spec, 0, &call, h, true), None, hp)
            }
            (Some(spec), None, Some(g)) if requant => {
                let fused = with_transform(spec, Transform::Hadamard { g });
                let (v, k) = quant(t, &fused, subkey(key, role), want_mask);
                (v, k, None)
            }
            (Some(spec), None, _) => {
                let th = rotate(t);
                let (v, k) = quant(th.clone(), spec, subkey(key, role), want_mask);
                (v, k, (!requant).then_some(th))
            }
            (None, _, _) => {
                let th = rotate(t);
                (th.clone(), None, Some(th))
            }
        }
    };
    let (xq, kx, xh) = fwd(x, s.fwd_x.as_ref(), Role::FwdX, Hist::X);
    let (wq, kw, wh) = fwd(w, s.fwd_w.as_ref(), Role::FwdW, Hist::W);
    let y = xq.clone().matmul(wq.clone().transpose());
    let saved = save.then(|| {
        let (xs, ws) = if requant {
            (xq, wq)
        } else {
            (xh.expect("rotated x"), wh.expect("rotated w"))
        };
        Saved {
            x: xs,
            w: ws,
            keep_x: kx,
            keep_w: kw,
            scheme: scheme.clone(),
            call,
        }
    });
    (y, saved)
}

/// The backward: (dX, dW), each computed only if wanted.
pub fn backward<B: LpBackend>(
    saved: Saved<B>,
    dy: Tensor<B, 2>,
    want_dx: bool,
    want_dw: bool,
) -> (Option<Tensor<B, 2>>, Option<Tensor<B, 2>>) {
    let s = saved.scheme.as_ref();
    if s.is_bf16_autocast() && B::fused_bf16_gemm() {
        // Saved x and w are f32; rounding them again is what the backward's bf16 specs do.
        return (
            want_dx.then(|| bf16_gemm(dy.clone(), saved.w.clone())),
            want_dw.then(|| bf16_gemm(dy.transpose(), saved.x.clone())),
        );
    }
    let call = &saved.call;
    let key = call.key;
    let bq = s.backward.as_ref();
    let rht = bq.and_then(|b| b.rht);
    // One sign vector per backward call, shared by all four operands (Quartet's re_randomize).
    let sign_key = subkey(key, Role::Signs);
    let signs: Option<Vec<f32>> = rht.map(|r| match r.signs {
        SignSource::Fresh => random_signs(sign_key, r.g),
        SignSource::TeFixed16 => TE_SIGNS_16.iter().map(|&v| v as f32).collect(),
    });
    let applies = |dgrad: bool| rht.filter(|r| !dgrad || r.gemms == RhtGemms::Both);
    // Rotate and quantize one operand along its GEMM's inner (last) axis. Both operands of a
    // GEMM get the same R; with signs before H the rotation is fused into the quantizer.
    let prep = |t: Tensor<B, 2>, spec: Option<&QuantSpec>, seed: u64, dgrad: bool, h, stage| match (
        applies(dgrad),
        spec,
        &call.delayed,
    ) {
        (Some(r), Some(q), None) if r.side == SignSide::BeforeH => {
            let signs = match r.signs {
                SignSource::Fresh => Signs::Key(sign_key),
                SignSource::TeFixed16 => Signs::TeFixed16,
            };
            let fused = with_transform(q, Transform::RandomizedHadamard { g: r.g, signs });
            quant(t, &fused, seed, false).0
        }
        (Some(r), _, _) => {
            let t = hadamard(t, r.g, signs.as_deref(), false, r.side == SignSide::AfterH);
            operand(t, spec, seed, call, h, stage)
        }
        (None, _, _) => operand(t, spec, seed, call, h, stage),
    };
    let dxh = want_dx.then(|| {
        let a = prep(
            dy.clone(),
            bq.and_then(|b| b.dgrad_dy.as_ref()),
            subkey(key, Role::DgradDy),
            true,
            Hist::Dy,
            true,
        );
        let b = prep(
            saved.w.clone().transpose(),
            bq.and_then(|b| b.dgrad_w.as_ref()),
            subkey(key, Role::DgradW),
            true,
            Hist::W,
            false,
        );
        a.matmul(b.transpose())
    });
    let dwh = want_dw.then(|| {
        // dY's amax is staged once (dgrad), or here when dgrad is not computed.
        let a = prep(
            dy.transpose(),
            bq.and_then(|b| b.wgrad_dy.as_ref()),
            subkey(key, Role::WgradDy),
            false,
            Hist::Dy,
            !want_dx,
        );
        let b = prep(
            saved.x.clone().transpose(),
            bq.and_then(|b| b.wgrad_x.as_ref()),
            subkey(key, Role::WgradX),
            false,
            Hist::X,
            false,
        );
        a.matmul(b.transpose())
    });
    let finish = |d: Tensor<B, 2>, keep: Option<Tensor<B, 2>>| {
        if keep.is_none() && s.fwd_hadamard.is_none() {
            return d;
        }
        wrap(B::lp_unrotate(unwrap(d), keep.map(unwrap), s.fwd_hadamard))
    };
    (
        dxh.map(|d| finish(d, saved.keep_x.clone())),
        dwh.map(|d| finish(d, saved.keep_w.clone())),
    )
}
