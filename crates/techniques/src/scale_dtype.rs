//! `scale_dtype`: the precision a grid's scales are kept in. Serving formats store scales in
//! f16 (GGUF's Q4_0, Q8_0, TQ1_0, TQ2_0) or bf16 (compressed-tensors); a grid trained with its
//! scales rounded to that type in the forward is written to the format exactly, while an f32
//! scale would be rounded at export (a different weight from the one trained). The rounding is
//! to nearest even, with the identity gradient (the master scale stays f32).

use burn::prelude::*;
use burn::tensor::TensorData;
use serde::{Deserialize, Serialize};

/// `f32` (default: no rounding) | `f16` | `bf16`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScaleDtype {
    #[default]
    F32,
    F16,
    Bf16,
}

impl ScaleDtype {
    /// `x` rounded to this type (to nearest even), as f32.
    pub fn round_value(self, x: f32) -> f32 {
        match self {
            ScaleDtype::F32 => x,
            ScaleDtype::F16 => half::f16::from_f32(x).to_f32(),
            ScaleDtype::Bf16 => half::bf16::from_f32(x).to_f32(),
        }
    }

    /// Whether `x` is a value of this type.
    pub fn holds(self, x: f32) -> bool {
        self.round_value(x).to_bits() == x.to_bits()
    }

    pub(crate) fn is_f32(&self) -> bool {
        *self == ScaleDtype::F32
    }

    /// The recipe spelling.
    pub fn name(self) -> &'static str {
        match self {
            ScaleDtype::F32 => "f32",
            ScaleDtype::F16 => "f16",
            ScaleDtype::Bf16 => "bf16",
        }
    }

    /// `s` with its values rounded to this type and the identity gradient: `r − sg(s − s)`,
    /// whose value is `r` bit for bit (`s − s` is +0 for finite s).
    pub fn round<B: Backend>(self, s: Tensor<B, 2>) -> Tensor<B, 2> {
        if self == ScaleDtype::F32 {
            return s;
        }
        let d = s.clone().detach();
        let v: Vec<f32> = d.to_data().convert::<f32>().into_vec().expect("f32 scales");
        let r: Vec<f32> = v.into_iter().map(|x| self.round_value(x)).collect();
        let r = Tensor::from_data(TensorData::new(r, d.dims()), &d.device());
        r - (d - s)
    }
}
