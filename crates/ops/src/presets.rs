//! Named schemes and the knobs a recipe table may turn on top of one.

use nibble_config::KeyError;
use nibble_formats::element::Element;
use nibble_formats::spec::{Block, ExpRounding, QuantSpec, Rounding, ScaleRule, Transform};
use serde::{Deserialize, Serialize};

use crate::delayed::{AmaxAlgo, DelayedScaling};
use crate::scheme::{BackwardQuant, LinearScheme, Rht, RhtGemms, SignSide, SignSource, Source};

/// Every preset name.
pub const PRESETS: [&str; 11] = [
    "f32",
    "bf16",
    "fp8-current",
    "fp8-delayed",
    "mxfp8",
    "fp8-block",
    "quartet-mxfp4",
    "nvfp4-te",
    "naive-mxfp4",
    "bitnet-w158a8",
    "a8-tensor",
];

/// The presets a benchmark compares: `f32` (the reference) first, then those named in the
/// comma-separated `only` (all when None).
pub fn bench_selection(only: Option<&str>) -> Vec<&'static str> {
    PRESETS
        .into_iter()
        .filter(|n| *n == "f32" || only.is_none_or(|o| o.split(',').any(|x| x.trim() == *n)))
        .collect()
}

fn no_transform(mut s: QuantSpec) -> QuantSpec {
    s.transform = Transform::None;
    s
}

fn same_four(spec: QuantSpec, source: Source, rht: Option<Rht>) -> BackwardQuant {
    BackwardQuant {
        dgrad_dy: Some(spec),
        dgrad_w: Some(spec),
        wgrad_dy: Some(spec),
        wgrad_x: Some(spec),
        source,
        rht,
    }
}

fn fp8_block(block: Block) -> QuantSpec {
    QuantSpec {
        element: Element::E4M3,
        block,
        scale: ScaleRule::Absmax { pow2: true },
        rounding: Rounding::Rne,
        transform: Transform::None,
    }
}

/// The named scheme, as its paper or library defines it.
pub fn preset(name: &str) -> Result<LinearScheme, String> {
    let mut s = LinearScheme::identity(name);
    match name {
        "f32" => {}
        // bf16 autocast: every GEMM operand rounded to bf16 (RNE), f32 accumulation.
        "bf16" => {
            let b = QuantSpec::bf16();
            s.fwd_x = Some(b);
            s.fwd_w = Some(b);
            s.backward = Some(same_four(b, Source::HighPrecision, None));
        }
        // Transformer Engine Float8CurrentScaling, HYBRID: E4M3 forward, E5M2 gradients.
        "fp8-current" => {
            let e4 = QuantSpec::fp8_tensor(Element::E4M3);
            let e5 = QuantSpec::fp8_tensor(Element::E5M2);
            s.fwd_x = Some(e4);
            s.fwd_w = Some(e4);
            s.backward = Some(BackwardQuant {
                dgrad_dy: Some(e5),
                dgrad_w: Some(e4),
                wgrad_dy: Some(e5),
                wgrad_x: Some(e4),
                source: Source::HighPrecision,
                rht: None,
            });
        }
        // TE DelayedScaling, HYBRID: as fp8-current, with scales from a 1024-step amax history
        // (max), margin 0.
        "fp8-delayed" => {
            let mut s2 = preset("fp8-current")?;
            s2.name = name.to_owned();
            s2.delayed = Some(DelayedScaling {
                history_len: 1024,
                algo: AmaxAlgo::Max,
                margin: 0,
            });
            s = s2;
        }
        // TE MXFP8BlockScaling: 1×32 E4M3 with RCEIL (round-up) E8M0 scales, every operand
        // quantized along its GEMM's inner dimension from high precision.
        "mxfp8" => {
            let m = QuantSpec::mx(Element::E4M3, ScaleRule::RCeil);
            s.fwd_x = Some(m);
            s.fwd_w = Some(m);
            s.backward = Some(same_four(m, Source::HighPrecision, None));
        }
        // DeepSeek-style Float8BlockScaling: 1×128 activations and gradients, 128×128 weights,
        // power-of-two FP32 scales, E4M3.
        "fp8-block" => {
            let act = fp8_block(Block::Group(128));
            let wt = fp8_block(Block::Tile(128));
            s.fwd_x = Some(act);
            s.fwd_w = Some(wt);
            s.backward = Some(BackwardQuant {
                dgrad_dy: Some(act),
                dgrad_w: Some(wt),
                wgrad_dy: Some(act),
                wgrad_x: Some(act),
                source: Source::HighPrecision,
                rht: None,
            });
        }
        // Quartet: H32 + QuEST MXFP4 forward (nearest exponent rounding: the paper's MSE) with
        // the trust mask; backward RHT32 with fresh signs before H, 3/4-rule MXFP4 RTN, all four
        // operands, re-quantizing the forward-quantized X and W.
        "quartet-mxfp4" => {
            let f = no_transform(QuantSpec::quartet_forward(ExpRounding::Nearest));
            let b = no_transform(QuantSpec::quartet_backward(Rounding::Rne));
            s.fwd_hadamard = Some(32);
            s.fwd_x = Some(f);
            s.fwd_w = Some(f);
            s.clip_mask = true;
            s.backward = Some(same_four(
                b,
                Source::Requantize,
                Some(Rht {
                    g: 32,
                    signs: SignSource::Fresh,
                    side: SignSide::BeforeH,
                    gemms: RhtGemms::Both,
                }),
            ));
        }
        // TE NVFP4BlockScaling: 16×16 RTN weights, 1×16 RTN activations, 1×16 SR gradients, the
        // fixed-sign RHT16 on the wgrad operands only, from high precision.
        "nvfp4-te" => {
            let act = QuantSpec::nvfp4(Block::Group(16), Rounding::Rne, Transform::None);
            let wt = QuantSpec::nvfp4(Block::Tile(16), Rounding::Rne, Transform::None);
            let grad = QuantSpec::nvfp4(Block::Group(16), Rounding::Stochastic, Transform::None);
            s.fwd_x = Some(act);
            s.fwd_w = Some(wt);
            s.backward = Some(BackwardQuant {
                dgrad_dy: Some(grad),
                dgrad_w: Some(wt),
                wgrad_dy: Some(grad),
                wgrad_x: Some(act),
                source: Source::HighPrecision,
                rht: Some(Rht {
                    g: 16,
                    signs: SignSource::TeFixed16,
                    side: SignSide::BeforeH,
                    gemms: RhtGemms::WgradOnly,
                }),
            });
        }
        // The baseline Quartet improves on: OCP MX (FLOOR scale, clips), RTN, no Hadamard.
        "naive-mxfp4" => {
            let m = QuantSpec::mx(Element::E2M1, ScaleRule::OcpFloor);
            s.fwd_x = Some(m);
            s.fwd_w = Some(m);
            s.backward = Some(same_four(m, Source::HighPrecision, None));
        }
        // BitNet b1.58 (W1.58A8): ternary weights, one absmean scale per tensor (1/max(mean|w|,
        // 1e-5), round-clip to {−1, 0, 1}), 8-bit activations with an absmax scale per token
        // (127/amax); plain straight-through backward (the GEMMs of the quantized operands).
        "bitnet-w158a8" => {
            s.fwd_w = Some(QuantSpec {
                element: Element::Ternary,
                block: Block::Tensor,
                scale: ScaleRule::Absmean,
                rounding: Rounding::Rne,
                transform: Transform::None,
            });
            s.fwd_x = Some(QuantSpec {
                element: Element::Int {
                    bits: 8,
                    signed: true,
                },
                block: Block::Row,
                scale: ScaleRule::Absmax { pow2: false },
                rounding: Rounding::Rne,
                transform: Transform::None,
            });
        }
        // TernaryBERT's activations (Teacher Intervention's reference setting): 8-bit signed
        // integers with one absmax scale per tensor, straight-through; weights stay f32 (a
        // [qat] technique quantizes them).
        "a8-tensor" => {
            s.fwd_x = Some(QuantSpec {
                element: Element::Int {
                    bits: 8,
                    signed: true,
                },
                block: Block::Tensor,
                scale: ScaleRule::Absmax { pow2: false },
                rounding: Rounding::Rne,
                transform: Transform::None,
            });
        }
        other => {
            return Err(format!(
                "unknown scheme `{other}`; presets: {}",
                PRESETS.join(", ")
            ));
        }
    }
    s.validate()?;
    Ok(s)
}

/// Which passes a scheme quantizes (for ablations; recipe: `both` | `forward` | `backward`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Passes {
    #[serde(rename = "both")]
    Both,
    #[serde(rename = "forward")]
    ForwardOnly,
    #[serde(rename = "backward")]
    BackwardOnly,
}

/// FP8 element of the gradient operands (recipe: `e5m2` | `e4m3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GradFormat {
    E5m2,
    E4m3,
}

impl GradFormat {
    pub fn element(self) -> Element {
        match self {
            GradFormat::E5m2 => Element::E5M2,
            GradFormat::E4m3 => Element::E4M3,
        }
    }
}

/// `[precision.schemes.<name>]`: a preset and the knobs a recipe may turn on top of it. The
/// recipe table deserializes straight into this struct (a new knob is one field here and its
/// effect in [`customize`]); unset knobs keep the preset's choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeTable {
    /// The preset it starts from (`quartet-mxfp4`, `fp8-current`, ...).
    #[serde(default)]
    pub preset: String,
    /// Which passes are quantized (default `both`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<Passes>,
    /// Rounding of the forward operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_rounding: Option<Rounding>,
    /// Rounding of the four backward operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backward_rounding: Option<Rounding>,
    /// QuEST scale exponent rounding (forward; `floor` bit-matches Quartet's kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_rounding: Option<ExpRounding>,
    /// QuEST scale multiplier before rounding (forward; Quartet's `mult`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quest_mult: Option<f32>,
    /// What the backward GEMMs quantize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Side of H the backward's random signs go on (`after` is the reference code's bug).
    #[serde(rename = "signs", default, skip_serializing_if = "Option::is_none")]
    pub sign_side: Option<SignSide>,
    /// FP8 element of the gradient operands (`e5m2` HYBRID, or `e4m3`).
    #[serde(
        rename = "grad_format",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub grad_element: Option<GradFormat>,
    /// Zero gradients where the forward quantizer clipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_mask: Option<bool>,
    /// Delayed scaling (`fp8-delayed`): amax history length (TE default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amax_history_len: Option<usize>,
    /// Delayed scaling: `max` (default) | `most_recent`.
    #[serde(
        rename = "amax_compute_algo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub amax_algo: Option<AmaxAlgo>,
    /// Delayed scaling: the scale is divided by 2^margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<i32>,
}

impl SchemeTable {
    /// The scheme `name` this table defines: its preset with the knobs applied. Errors name the
    /// key within the table (`preset`) or the table itself (empty key).
    pub fn build(&self, name: &str) -> Result<LinearScheme, KeyError> {
        let base = preset(&self.preset).map_err(|m| KeyError::new("preset", m))?;
        customize(name, base, self).map_err(|m| KeyError::new("", m))
    }
}

/// `base` with `knobs` applied; `name` names the result.
pub fn customize(name: &str, mut s: LinearScheme, k: &SchemeTable) -> Result<LinearScheme, String> {
    s.name = name.to_owned();
    let set_fwd = |s: &mut LinearScheme, f: &dyn Fn(&mut QuantSpec)| {
        s.fwd_x.iter_mut().chain(s.fwd_w.iter_mut()).for_each(f);
    };
    if let Some(r) = k.forward_rounding {
        set_fwd(&mut s, &|q| q.rounding = r);
    }
    if let Some(e) = k.exp_rounding {
        set_fwd(&mut s, &|q| {
            if let ScaleRule::Quest { exp_rounding, .. } = &mut q.scale {
                *exp_rounding = e;
            }
        });
    }
    if let Some(m) = k.quest_mult {
        set_fwd(&mut s, &|q| {
            if let ScaleRule::Quest { mult, .. } = &mut q.scale {
                *mult = m;
            }
        });
    }
    if let Some(b) = s.backward.as_mut() {
        let ops = [
            &mut b.dgrad_dy,
            &mut b.dgrad_w,
            &mut b.wgrad_dy,
            &mut b.wgrad_x,
        ];
        for (i, q) in ops.into_iter().enumerate() {
            if let Some(q) = q.as_mut() {
                if let Some(r) = k.backward_rounding {
                    q.rounding = r;
                }
                // dY is operand 0 (dgrad) and 2 (wgrad).
                if let (Some(e), true) = (k.grad_element, i % 2 == 0) {
                    q.element = e.element();
                }
            }
        }
        if let Some(src) = k.source {
            b.source = src;
        }
        if let (Some(side), Some(r)) = (k.sign_side, b.rht.as_mut()) {
            r.side = side;
        }
    }
    if let Some(c) = k.clip_mask {
        s.clip_mask = c;
    }
    if k.amax_history_len.is_some() || k.amax_algo.is_some() || k.margin.is_some() {
        let Some(d) = s.delayed.as_mut() else {
            return Err(format!(
                "scheme `{name}`: amax_history_len / amax_algo / margin need delayed scaling \
                 (preset fp8-delayed)"
            ));
        };
        if let Some(n) = k.amax_history_len {
            if n == 0 {
                return Err(format!(
                    "scheme `{name}`: amax_history_len must be at least 1"
                ));
            }
            d.history_len = n;
        }
        if let Some(a) = k.amax_algo {
            d.algo = a;
        }
        if let Some(m) = k.margin {
            d.margin = m;
        }
    }
    match k.passes {
        None | Some(Passes::Both) => {}
        // The backward keeps its GEMMs in f32 on the forward-quantized operands (straight-through
        // with the trust mask, as the paper's forward-only ablation).
        Some(Passes::ForwardOnly) => {
            s.backward = Some(BackwardQuant {
                dgrad_dy: None,
                dgrad_w: None,
                wgrad_dy: None,
                wgrad_x: None,
                source: Source::Requantize,
                rht: None,
            });
        }
        Some(Passes::BackwardOnly) => {
            s.fwd_hadamard = None;
            s.fwd_x = None;
            s.fwd_w = None;
            s.clip_mask = false;
            if let Some(b) = s.backward.as_mut() {
                b.source = Source::HighPrecision;
            }
        }
    }
    s.validate()?;
    Ok(s)
}
