//! Runtime selection of the widest x86 vector ISA for the quantizer's hot loops.
//!
//! The same Rust code is compiled three times (baseline SSE2, AVX2, AVX-512) and picked at run
//! time. Only IEEE-exact operations are used (no FMA contraction, no reassociation), so every
//! path returns identical bits; `tests/isa_paths.rs` checks that. The AVX2 and AVX-512 paths add
//! an explicit-SIMD kernel for MX-style blocks (`simd_row.rs`), whose substitutes for
//! scalar steps are exact (`tests/simd_row.rs`).

use std::sync::atomic::{AtomicU8, Ordering};

/// Vector ISA used by the quantizer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    Baseline = 1,
    Avx2 = 2,
    Avx512 = 3,
}

static FORCED: AtomicU8 = AtomicU8::new(0);

/// Force an ISA (tests and benchmarks); `None` returns to automatic detection. Requests for an
/// ISA the CPU lacks fall back to the best available one.
pub fn force(isa: Option<Isa>) {
    FORCED.store(isa.map_or(0, |i| i as u8), Ordering::Relaxed);
}

/// The ISA the quantizer uses now.
pub fn current() -> Isa {
    let best = detect();
    match FORCED.load(Ordering::Relaxed) {
        1 => Isa::Baseline,
        2 if best as u8 >= 2 => Isa::Avx2,
        _ => best,
    }
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("avx512vl")
        {
            return Isa::Avx512;
        }
        if is_x86_feature_detected!("avx2") {
            return Isa::Avx2;
        }
    }
    Isa::Baseline
}
