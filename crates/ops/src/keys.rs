//! Per-call keys: one 64-bit key per (run seed, step, micro-batch, layer) comes in from the
//! model; each operand's stochastic rounding and the backward's random signs get their own
//! sub-key, so no two random streams are correlated and every draw is reproducible.

use nibble_formats::philox;

/// Philox stream reserved for key derivation (0 and 1 are SR and Hadamard signs).
const STREAM_KEYS: u32 = 2;

/// The random streams one linear call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Role {
    FwdX = 0,
    FwdW = 1,
    Signs = 2,
    DgradDy = 3,
    DgradW = 4,
    WgradDy = 5,
    WgradX = 6,
}

/// The sub-key of `role` under `key`.
pub fn subkey(key: u64, role: Role) -> u64 {
    let b = philox::block(key, STREAM_KEYS, role as u64);
    (u64::from(b[1]) << 32) | u64::from(b[0])
}

/// Combines a parent key with an index (layer number, step, micro-batch).
pub fn child(key: u64, index: u64) -> u64 {
    let b = philox::block(key, STREAM_KEYS, 1 << 40 | index);
    (u64::from(b[1]) << 32) | u64::from(b[0])
}
