//! `[block_ap]` and `[e2e_qp]`: EfficientQAT's two phases as stages of one run, on the
//! `[qat] method = "efficientqat"` grid. Block-AP trains each decoder block in turn to
//! reproduce the full-precision block's output (MSE), then freezes it on its grid; the model is
//! then converted (each quantized weight replaced by its integer codes); E2E-QP trains only the
//! steps end to end on the LM loss for `run.steps` steps (with `[optim]` and `[schedule]`).
//! Either stage alone is allowed: E2E-QP alone starts from min–max codes (RTN), and a run with
//! `run.steps = 0` only converts (and runs Block-AP if enabled): the RTN / Block-AP-only arms.

use serde::{Deserialize, Serialize};

use crate::recipe::KeyError;

/// `[block_ap]`, defaults from the reference (`OpenGVLab/EfficientQAT` `main_block_ap.py`) except
/// the calibration size, which the reference sets to 4096 sequences of 2048 tokens (CPU scale:
/// 256 sequences of `model.seq_len`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockApConfig {
    /// Run Block-AP before the main steps. Default false.
    pub enabled: bool,
    /// Calibration sequences of `model.seq_len` tokens from the training split. Default 256.
    pub samples: usize,
    /// Validation sequences (held-out split) for each block's reconstruction MSE. Default 16.
    pub val_samples: usize,
    /// Sequences per Block-AP iteration. Default 2.
    pub batch: usize,
    /// Passes over the calibration set per block. Default 2.
    pub epochs: usize,
    /// Peak lr of the steps and zero points. Default 1e-4.
    pub lr_quant: f64,
    /// Peak lr of the weights (and norm gains): default 2e-5 at 2 bits, 1e-5 at 3+ bits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr_weight: Option<f64>,
    /// Train the projections' weights (the paper's "all parameters"); false trains only the
    /// steps and zero points (the ablation). Default true.
    pub train_weights: bool,
    /// Train the block's RMSNorm gains with `lr_weight`, as the released code does. Default true.
    pub train_norms: bool,
    /// Cosine per block from each peak lr to peak / this. Default 20.
    pub min_lr_factor: f64,
}

impl Default for BlockApConfig {
    fn default() -> Self {
        BlockApConfig {
            enabled: false,
            samples: 256,
            val_samples: 16,
            batch: 2,
            epochs: 2,
            lr_quant: 1e-4,
            lr_weight: None,
            train_weights: true,
            train_norms: true,
            min_lr_factor: 20.0,
        }
    }
}

impl BlockApConfig {
    pub fn validate(&self) -> Result<(), KeyError> {
        for (k, v) in [
            ("samples", self.samples),
            ("val_samples", self.val_samples),
            ("batch", self.batch),
            ("epochs", self.epochs),
        ] {
            if v == 0 {
                return Err(KeyError::new(k, "must be > 0"));
            }
        }
        if self.batch > self.samples {
            return Err(KeyError::new(
                "batch",
                format!(
                    "{} sequences per iteration exceed the {} calibration samples",
                    self.batch, self.samples
                ),
            ));
        }
        let lrs = [
            ("lr_quant", Some(self.lr_quant)),
            ("lr_weight", self.lr_weight),
        ];
        for (k, v) in lrs {
            if let Some(v) = v {
                nibble_config::f32_value(k, v)?;
            }
            if let Some(v) = v
                && !(v.is_finite() && v > 0.0)
            {
                return Err(KeyError::new(
                    k,
                    format!("must be finite and > 0 (got {v})"),
                ));
            }
        }
        if !(self.min_lr_factor.is_finite() && self.min_lr_factor >= 1.0) {
            return Err(KeyError::new(
                "min_lr_factor",
                format!("must be finite and ≥ 1 (got {})", self.min_lr_factor),
            ));
        }
        Ok(())
    }

    /// The weights' peak lr at `bits`.
    pub fn lr_weight(&self, bits: u32) -> f64 {
        self.lr_weight
            .unwrap_or(if bits <= 2 { 2e-5 } else { 1e-5 })
    }

    /// Optimizer iterations per block.
    pub fn iters_per_block(&self) -> u64 {
        (self.epochs * self.samples.div_ceil(self.batch)) as u64
    }
}

/// `[e2e_qp]`: after the conversion to codes, the main steps train only the quantized layers'
/// steps (everything else frozen, no weight decay), with `[optim]` and `[schedule]`; the
/// reference uses lr 2e-5 (2-bit) / 1e-5, cosine, 3% warmup, clip 0.3.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct E2eQpConfig {
    /// Default false.
    pub enabled: bool,
}
