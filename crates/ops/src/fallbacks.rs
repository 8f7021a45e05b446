//! Host-path fallbacks of device backends, counted per primitive. A cube backend (wgpu, cuda)
//! that cannot run a primitive on the device copies the tensor to the host, runs
//! nibble-formats and copies back; that is correct but slow, so each fallback is counted and the
//! trainer reports the counts once per run (log line and metrics). The CPU backend's host path
//! is its normal path and is not counted.

use std::sync::atomic::{AtomicU64, Ordering};

/// The primitives that can fall back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    Quantize,
    Hadamard,
    Unrotate,
    CastScaled,
    NmMask,
}

impl Primitive {
    pub const ALL: [Primitive; 5] = [
        Primitive::Quantize,
        Primitive::Hadamard,
        Primitive::Unrotate,
        Primitive::CastScaled,
        Primitive::NmMask,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Primitive::Quantize => "quantize",
            Primitive::Hadamard => "hadamard",
            Primitive::Unrotate => "unrotate",
            Primitive::CastScaled => "cast_scaled",
            Primitive::NmMask => "nm_mask",
        }
    }
}

static COUNTS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

/// Records one host fallback of `p`.
pub fn record(p: Primitive) {
    COUNTS[p as usize].fetch_add(1, Ordering::Relaxed);
}

/// Fallbacks per primitive since the last [`reset`] (process-wide).
pub fn counts() -> Vec<(Primitive, u64)> {
    Primitive::ALL
        .iter()
        .map(|&p| (p, COUNTS[p as usize].load(Ordering::Relaxed)))
        .collect()
}

/// Zeroes every counter (start of a run).
pub fn reset() {
    COUNTS.iter().for_each(|c| c.store(0, Ordering::Relaxed));
}

/// One line for a log, or None when nothing fell back.
pub fn summary() -> Option<String> {
    let c: Vec<String> = counts()
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(p, n)| format!("{} {n}", p.name()))
        .collect();
    (!c.is_empty()).then(|| {
        format!(
            "device primitives that ran on the host (device → host → device copies): {}",
            c.join(", ")
        )
    })
}
