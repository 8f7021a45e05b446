//! FP8 delayed scaling (Transformer Engine `DelayedScaling`): each tensor role of a layer keeps a
//! history of its amaxes; the scale used at step t comes from the history of earlier steps.
//!
//! Per step: every quantization reads the current `scale` and stages the tensor's amax in slot 0
//! (max over micro-batches). At the end of the step, `update` computes the amax from the history
//! (`max` over all slots or the `most_recent`, slot 0), sets `scale = (fp8_max / amax) / 2^margin`
//! (kept when amax is 0 or not finite), then rolls the buffer by one towards slot 0 and zeroes
//! slot 0, as TE's `_roll_and_zero_out_amax_history` does (torch.roll(h, -1); h[0] = 0). The
//! initial scale is 1.

use nibble_formats::element::Element;

/// `amax_compute_algo`: `max` | `most_recent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmaxAlgo {
    Max,
    MostRecent,
}

/// The recipe of delayed scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DelayedScaling {
    pub history_len: usize,
    pub algo: AmaxAlgo,
    pub margin: i32,
}

/// One tensor role's history and current scale.
#[derive(Clone, Debug, PartialEq)]
pub struct AmaxHistory {
    pub history: Vec<f32>,
    pub scale: f32,
}

impl AmaxHistory {
    pub fn new(len: usize) -> Self {
        AmaxHistory {
            history: vec![0.0; len.max(1)],
            scale: 1.0,
        }
    }

    /// Records the amax of a tensor quantized in this step.
    pub fn stage(&mut self, amax: f32) {
        if amax > self.history[0] {
            self.history[0] = amax;
        }
    }

    /// End of step: new scale from the history, then roll and zero slot 0.
    pub fn update(&mut self, cfg: &DelayedScaling, fp8_max: f32) {
        let amax = match cfg.algo {
            AmaxAlgo::Max => self.history.iter().copied().fold(0.0, f32::max),
            AmaxAlgo::MostRecent => self.history[0],
        };
        if amax > 0.0 && amax.is_finite() {
            self.scale = fp8_max / amax / 2f32.powi(cfg.margin);
        }
        self.history.rotate_left(1);
        self.history[0] = 0.0;
    }
}

/// The three roles of one linear layer.
#[derive(Clone, Debug, PartialEq)]
pub struct DelayedState {
    pub x: AmaxHistory,
    pub w: AmaxHistory,
    pub dy: AmaxHistory,
}

impl DelayedState {
    pub fn new(cfg: &DelayedScaling) -> Self {
        DelayedState {
            x: AmaxHistory::new(cfg.history_len),
            w: AmaxHistory::new(cfg.history_len),
            dy: AmaxHistory::new(cfg.history_len),
        }
    }

    /// Values as a flat list (checkpoints): per role the scale, then the history.
    pub fn to_vec(&self) -> Vec<f32> {
        [&self.x, &self.w, &self.dy]
            .iter()
            .flat_map(|h| std::iter::once(h.scale).chain(h.history.iter().copied()))
            .collect()
    }

    /// Inverse of [`DelayedState::to_vec`]; false if the length does not fit.
    pub fn load(&mut self, v: &[f32]) -> bool {
        let n = self.x.history.len() + 1;
        if v.len() != 3 * n {
            return false;
        }
        for (h, chunk) in [&mut self.x, &mut self.w, &mut self.dy]
            .into_iter()
            .zip(v.chunks_exact(n))
        {
            h.scale = chunk[0];
            h.history.copy_from_slice(&chunk[1..]);
        }
        true
    }
}

/// Largest finite value of an FP8 element.
pub fn fp8_max(e: Element) -> f32 {
    e.max_value()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_rolls_like_transformer_engine() {
        let cfg = DelayedScaling {
            history_len: 4,
            algo: AmaxAlgo::Max,
            margin: 0,
        };
        let mut h = AmaxHistory::new(4);
        assert_eq!(h.scale, 1.0, "TE starts at scale 1");
        // torch.roll(h, -1) then h[0] = 0, by hand: [a, b, c, d] -> [b, c, d, a] -> [0, c, d, a].
        h.history = vec![5.0, 1.0, 2.0, 3.0];
        h.update(&cfg, 448.0);
        assert_eq!(h.history, vec![0.0, 2.0, 3.0, 5.0]);
        assert_eq!(h.scale, 448.0 / 5.0);
        h.stage(7.0);
        h.stage(6.0);
        assert_eq!(h.history[0], 7.0, "slot 0 keeps the max over micro-batches");
        h.update(&cfg, 448.0);
        assert_eq!(h.history, vec![0.0, 3.0, 5.0, 7.0]);
        assert_eq!(h.scale, 64.0);
        // most_recent uses slot 0 only; margin divides by 2^margin; amax 0 keeps the scale.
        let recent = DelayedScaling {
            algo: AmaxAlgo::MostRecent,
            margin: 1,
            ..cfg
        };
        h.stage(2.0);
        h.update(&recent, 448.0);
        assert_eq!(h.scale, 112.0);
        h.update(&recent, 448.0);
        assert_eq!(h.scale, 112.0);
    }
}
