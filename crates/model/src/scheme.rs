//! `LinearScheme`: how one linear layer's GEMMs treat their operands.
//!
//! This is the seam the FP8/FP4, QAT and sparsity work plugs into. The main-job issue ships the
//! two high-precision schemes; the quantized presets arrive with nibble-ops.

use crate::error::KeyError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinearScheme {
    /// f32 operands, f32 accumulation.
    F32,
    /// Operands rounded to bf16 (RNE) before the GEMM, f32 accumulation, straight-through
    /// gradients (the rounding is treated as identity in backward).
    Bf16,
}

impl LinearScheme {
    /// Names accepted in recipes.
    pub const NAMES: [&'static str; 2] = ["f32", "bf16"];

    pub fn parse(name: &str) -> Result<Self, String> {
        match name {
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            other => Err(format!(
                "unknown scheme `{other}`; available: {:?}",
                Self::NAMES
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        }
    }

    pub(crate) fn parse_key(name: &str, key: &str) -> Result<Self, KeyError> {
        Self::parse(name).map_err(|m| KeyError::new(key, m))
    }
}
