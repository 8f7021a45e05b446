//! `[precision.schemes.<name>]`: a named scheme made from a preset and a few knobs, usable in
//! `precision.default` and in rules like any preset (ablations: forward-only Quartet, SR instead
//! of RTN, signs on the wrong side, ...).

use nibble_formats::element::Element;
use nibble_formats::spec::{ExpRounding, Rounding};
use nibble_ops::{AmaxAlgo, Knobs, LinearScheme, Passes, SignSide, Source, customize, preset};
use serde::{Deserialize, Serialize};

use crate::error::KeyError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemeTable {
    /// The preset it starts from (`quartet-mxfp4`, `fp8-current`, ...).
    pub preset: String,
    /// `both` (default) | `forward` | `backward`: which passes are quantized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passes: Option<String>,
    /// `rne` | `sr`: rounding of the forward operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_rounding: Option<String>,
    /// `rne` | `sr`: rounding of the backward operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backward_rounding: Option<String>,
    /// `nearest` | `floor`: QuEST scale exponent rounding (floor bit-matches Quartet's kernels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp_rounding: Option<String>,
    /// QuEST scale multiplier before rounding (Quartet's `mult`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quest_mult: Option<f32>,
    /// `requantize` | `high-precision`: what the backward GEMMs quantize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `before` | `after`: side of H the backward's random signs go on (`after` is the
    /// reference code's bug, for ablations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signs: Option<String>,
    /// `e5m2` | `e4m3`: element of the FP8 gradient operands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grad_format: Option<String>,
    /// Zero gradients where the forward quantizer clipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clip_mask: Option<bool>,
    /// Delayed scaling (`fp8-delayed`): amax history length (TE default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amax_history_len: Option<usize>,
    /// Delayed scaling: `max` (default) | `most_recent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amax_compute_algo: Option<String>,
    /// Delayed scaling: the scale is divided by 2^margin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub margin: Option<i32>,
}

fn pick<T: Copy>(
    v: &Option<String>,
    key: &str,
    options: &[(&str, T)],
) -> Result<Option<T>, KeyError> {
    let Some(s) = v else { return Ok(None) };
    options
        .iter()
        .find(|(n, _)| n == s)
        .map(|(_, t)| Some(*t))
        .ok_or_else(|| {
            let names: Vec<&str> = options.iter().map(|o| o.0).collect();
            KeyError::new(key, format!("`{s}` is not one of {}", names.join(", ")))
        })
}

impl SchemeTable {
    /// The scheme `name` this table defines.
    pub fn build(&self, name: &str) -> Result<LinearScheme, KeyError> {
        let base = preset(&self.preset).map_err(|m| KeyError::new("preset", m))?;
        let rounding = [("rne", Rounding::Rne), ("sr", Rounding::Stochastic)];
        let knobs = Knobs {
            passes: pick(
                &self.passes,
                "passes",
                &[
                    ("both", Passes::Both),
                    ("forward", Passes::ForwardOnly),
                    ("backward", Passes::BackwardOnly),
                ],
            )?,
            forward_rounding: pick(&self.forward_rounding, "forward_rounding", &rounding)?,
            backward_rounding: pick(&self.backward_rounding, "backward_rounding", &rounding)?,
            exp_rounding: pick(
                &self.exp_rounding,
                "exp_rounding",
                &[
                    ("nearest", ExpRounding::Nearest),
                    ("floor", ExpRounding::Floor),
                ],
            )?,
            quest_mult: self.quest_mult,
            source: pick(
                &self.source,
                "source",
                &[
                    ("requantize", Source::Requantize),
                    ("high-precision", Source::HighPrecision),
                ],
            )?,
            sign_side: pick(
                &self.signs,
                "signs",
                &[("before", SignSide::BeforeH), ("after", SignSide::AfterH)],
            )?,
            grad_element: pick(
                &self.grad_format,
                "grad_format",
                &[("e5m2", Element::E5M2), ("e4m3", Element::E4M3)],
            )?,
            clip_mask: self.clip_mask,
            amax_history_len: self.amax_history_len,
            amax_algo: pick(
                &self.amax_compute_algo,
                "amax_compute_algo",
                &[
                    ("max", AmaxAlgo::Max),
                    ("most_recent", AmaxAlgo::MostRecent),
                ],
            )?,
            margin: self.margin,
        };
        customize(name, base, &knobs).map_err(|m| KeyError::new("", m))
    }
}
