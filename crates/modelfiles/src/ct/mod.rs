//! compressed-tensors (the checkpoint format vLLM and transformers read quantized models from):
//! the on-disk tensors of one quantized `Linear` per scheme, and the decoding that
//! compressed-tensors' decompressor applies to them.
//!
//! Layouts follow compressed-tensors 0.20 (`pack-quantized`, `float-quantized`,
//! `nvfp4-pack-quantized`, `mxfp4-pack-quantized`); see `docs/model-files.md`. Every scale a scheme
//! writes is representable in its stored dtype, so decoding the stored tensors gives exactly the
//! values [`decode`] returns (no rounding when the decompressor works in f32).

mod fp4;
mod fp8;
mod int_packed;

use safetensors::Dtype;
use serde_json::{Value as Json, json};

/// A compressed-tensors weight scheme (weights only are quantized ahead of time; FP8 declares
/// dynamic per-token activations, which the engine quantizes at run time).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtScheme {
    /// W4A16 `pack-quantized`: INT4 codes per group of `group` inputs with a bf16 scale each;
    /// asymmetric adds a signed 4-bit zero point per group.
    W4a16 { group: usize, symmetric: bool },
    /// W2A16 `pack-quantized`: INT2 codes (16 per word) per group of `group` inputs with a bf16
    /// scale each; asymmetric adds a signed 2-bit zero point per group.
    W2a16 { group: usize, symmetric: bool },
    /// W8A8 FP8 `float-quantized`: E4M3 weights, one bf16 scale per output channel, dynamic
    /// per-token FP8 activations.
    Fp8,
    /// NVFP4A16 `nvfp4-pack-quantized`: E2M1 codes, an E4M3 scale per 16 inputs and an f32
    /// global scale (a divisor), one global scale shared by q/k/v and by gate/up (vLLM fuses them).
    Nvfp4,
    /// MXFP4 `mxfp4-pack-quantized`: E2M1 codes and an E8M0 scale per 32 inputs, with ggml's
    /// MXFP4 rule (so a GGUF MXFP4 grid exports to it code for code).
    Mxfp4,
}

/// One stored tensor: safetensors dtype, shape, little-endian bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct CtTensor {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    pub bytes: Vec<u8>,
}

/// The tensors of one quantized Linear, by local name (`weight_packed`, `weight_scale`, ...).
pub type CtLinear = Vec<(&'static str, CtTensor)>;

impl CtScheme {
    /// The number of inputs one scale covers (1 = a whole row, for FP8's per-channel scale).
    pub fn group(self) -> usize {
        match self {
            Self::W4a16 { group, .. } | Self::W2a16 { group, .. } => group,
            Self::Fp8 => 1,
            Self::Nvfp4 => 16,
            Self::Mxfp4 => 32,
        }
    }

    /// compressed-tensors' `format` name.
    /// Bits of the integer schemes (0 for the float ones).
    pub fn int_bits(self) -> u32 {
        match self {
            Self::W4a16 { .. } => 4,
            Self::W2a16 { .. } => 2,
            _ => 0,
        }
    }

    pub fn format(self) -> &'static str {
        match self {
            Self::W4a16 { .. } | Self::W2a16 { .. } => "pack-quantized",
            Self::Fp8 => "float-quantized",
            Self::Nvfp4 => "nvfp4-pack-quantized",
            Self::Mxfp4 => "mxfp4-pack-quantized",
        }
    }

    /// Checks that a `[rows, cols]` weight can take this scheme; the message says why not.
    pub fn check_shape(self, cols: usize) -> Result<(), String> {
        if let Self::W4a16 { group, .. } | Self::W2a16 { group, .. } = self
            && (group == 0 || group % 8 != 0)
        {
            return Err(format!(
                "integer groups must be a positive multiple of 8 (got {group})"
            ));
        }
        if matches!(self, Self::W2a16 { .. }) && !cols.is_multiple_of(16) {
            return Err(format!(
                "W2A16 packs 16 codes per word: the input dimension must be a multiple of 16 (it \
                 is {cols})"
            ));
        }
        let g = self.group();
        if !cols.is_multiple_of(g) {
            return Err(format!(
                "{} needs the input dimension to be a multiple of {g} (it is {cols})",
                self.format()
            ));
        }
        Ok(())
    }

    /// The `config_groups.group_0` entry (the minimal field set compressed-tensors ≥ 0.11
    /// validates strictly; `scale_dtype` where the scheme needs it, as compressed-tensors 0.20
    /// writes it).
    pub fn config_group(self) -> Json {
        let weights = match self {
            Self::W4a16 { group, symmetric } | Self::W2a16 { group, symmetric } => json!({
                "num_bits": self.int_bits(), "type": "int", "symmetric": symmetric,
                "group_size": group, "strategy": "group", "dynamic": false
            }),
            Self::Fp8 => json!({
                "num_bits": 8, "type": "float", "symmetric": true, "group_size": null,
                "strategy": "channel", "dynamic": false
            }),
            Self::Nvfp4 => json!({
                "num_bits": 4, "type": "float", "symmetric": true, "group_size": 16,
                "strategy": "tensor_group", "dynamic": false, "scale_dtype": "torch.float8_e4m3fn"
            }),
            Self::Mxfp4 => json!({
                "num_bits": 4, "type": "float", "symmetric": true, "group_size": 32,
                "strategy": "group", "dynamic": false, "scale_dtype": "torch.uint8"
            }),
        };
        let input = match self {
            Self::Fp8 => json!({
                "num_bits": 8, "type": "float", "symmetric": true, "group_size": null,
                "strategy": "token", "dynamic": true
            }),
            _ => Json::Null,
        };
        json!({
            "targets": ["Linear"],
            "weights": weights,
            "input_activations": input,
            "output_activations": null,
            "format": self.format()
        })
    }

    /// The `quantization_config` of `config.json`: every Linear but `lm_head`.
    pub fn quantization_config(self) -> Json {
        json!({
            "quant_method": "compressed-tensors",
            "format": self.format(),
            "quantization_status": "compressed",
            "config_groups": {"group_0": self.config_group()},
            "ignore": ["lm_head"],
            "kv_cache_scheme": null,
            "global_compression_ratio": null,
            "sparsity_config": {},
            "transform_config": {}
        })
    }
}

/// Encodes a `[rows, cols]` weight trained on an integer grid (`scales` and, asymmetric, the
/// zero points of each `[row, group]` set; codes `round(w/s) + z` in `lo..=hi`) as W4A16 with
/// exactly those scales and points, decoded back and compared bit for bit; or why `scheme`
/// cannot hold it.
#[allow(clippy::too_many_arguments)]
pub fn encode_grid(
    scheme: CtScheme,
    rows: usize,
    cols: usize,
    w: &[f32],
    group: usize,
    scales: &[f32],
    zeros: Option<&[f32]>,
    (lo, hi): (i32, i32),
) -> Result<CtLinear, String> {
    let (CtScheme::W4a16 {
        group: fgroup,
        symmetric,
    }
    | CtScheme::W2a16 {
        group: fgroup,
        symmetric,
    }) = scheme
    else {
        return Err(format!(
            "it was trained on an integer grid, which {} (its own scale rule) would re-quantize",
            scheme.format()
        ));
    };
    if fgroup != group {
        return Err(format!(
            "its grid has {group} inputs per scale, the format {fgroup}"
        ));
    }
    // Unsigned codes 0..=2^b − 1 with a zero point are the signed ones shifted by 2^(b−1),
    // the point included.
    let bits = scheme.int_bits();
    let half = 1 << (bits - 1);
    let (shift, zps) = match (zeros, symmetric) {
        (None, true) => (0, None),
        (Some(z), false) => (
            half,
            Some(z.iter().map(|&z| z as i32 - half).collect::<Vec<_>>()),
        ),
        (None, false) => return Err("its grid is symmetric: export to the symmetric format".into()),
        (Some(_), true) => {
            return Err("its grid is asymmetric (zero points): export to the -asym format".into());
        }
    };
    if lo - shift < -half || hi - shift > half - 1 {
        return Err(format!(
            "its codes span {lo}..={hi}, {bits} bits hold {}..={}",
            -half + shift,
            half - 1 + shift
        ));
    }
    if let Some(i) = scales
        .iter()
        .position(|&s| bf16_scale(s).to_bits() != s.to_bits())
    {
        return Err(format!(
            "scale {} (set {i}) is not a bf16 value: train with [qat] scale_dtype = \"bf16\"",
            scales[i]
        ));
    }
    let linear = int_packed::encode_grid(bits, rows, cols, group, w, scales, zps.as_deref());
    let decoded = decode(scheme, rows, cols, &linear);
    match w
        .iter()
        .zip(&decoded)
        .position(|(a, b)| a.to_bits() != b.to_bits())
    {
        Some(i) => Err(format!(
            "the weight is not on its grid at index {i}: {} decodes as {}",
            w[i], decoded[i]
        )),
        None => Ok(linear),
    }
}

/// Encodes a row-major `[rows, cols]` weight. `fused_amax`: the largest |w| over the layers
/// an engine fuses with this one (q/k/v, gate/up; the weight's own otherwise), read by NVFP4's
/// global scale only. The weight must be finite and `cols` fit the scheme ([`CtScheme::check_shape`]).
pub fn encode(scheme: CtScheme, rows: usize, cols: usize, w: &[f32], fused_amax: f32) -> CtLinear {
    assert_eq!(w.len(), rows * cols, "weight length");
    match scheme {
        CtScheme::W4a16 { group, symmetric } | CtScheme::W2a16 { group, symmetric } => {
            int_packed::encode(scheme.int_bits(), rows, cols, group, symmetric, w)
        }
        CtScheme::Fp8 => fp8::encode(rows, cols, w),
        CtScheme::Nvfp4 => fp4::encode_nvfp4(rows, cols, w, fused_amax),
        CtScheme::Mxfp4 => fp4::encode_mxfp4(rows, cols, w),
    }
}

/// The weight compressed-tensors' decompressor computes from `linear`, in f32 with the stored
/// scales as they are: W4A16 `(q − zp)·s`, FP8 `e4m3·s`, NVFP4 `e2m1·(s / global)`, MXFP4
/// `e2m1·2^(e−127)`.
pub fn decode(scheme: CtScheme, rows: usize, cols: usize, linear: &CtLinear) -> Vec<f32> {
    match scheme {
        CtScheme::W4a16 { group, symmetric } | CtScheme::W2a16 { group, symmetric } => {
            int_packed::decode(scheme.int_bits(), rows, cols, group, symmetric, linear)
        }
        CtScheme::Fp8 => fp8::decode(rows, cols, linear),
        CtScheme::Nvfp4 => fp4::decode_nvfp4(rows, cols, linear),
        CtScheme::Mxfp4 => fp4::decode_mxfp4(rows, cols, linear),
    }
}

/// `decode(encode(w))`: the weight a model served from this scheme computes with.
pub fn round_trip(scheme: CtScheme, rows: usize, cols: usize, w: &[f32]) -> Vec<f32> {
    let amax = w.iter().fold(0f32, |m, v| m.max(v.abs()));
    decode(scheme, rows, cols, &encode(scheme, rows, cols, w, amax))
}

/// The tensor `name` of `l` (panics if the codec did not write it).
pub fn tensor<'a>(l: &'a CtLinear, name: &str) -> &'a CtTensor {
    &l.iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("{name} missing"))
        .1
}

pub(crate) fn bf16_bytes(v: &[f32]) -> Vec<u8> {
    v.iter()
        .flat_map(|x| half::bf16::from_f32(*x).to_bits().to_le_bytes())
        .collect()
}

pub(crate) fn bf16_values(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(2)
        .map(|c| half::bf16::from_bits(u16::from_le_bytes([c[0], c[1]])).to_f32())
        .collect()
}

/// A positive scale rounded to bf16 (the stored dtype), or 1 where it rounds to 0 (an all-zero
/// group: every code is 0 whatever the scale).
pub(crate) fn bf16_scale(s: f32) -> f32 {
    let b = half::bf16::from_f32(s).to_f32();
    if b.is_infinite() {
        half::bf16::MAX.to_f32()
    } else if b > 0.0 {
        b
    } else {
        1.0
    }
}

/// max |v| (0 for an empty slice).
pub fn amax(v: &[f32]) -> f32 {
    v.iter().fold(0f32, |m, x| m.max(x.abs()))
}

#[cfg(test)]
mod tests;
