//! nibble-formats: Nibble's numerical oracle. Pure Rust, no burn.
//!
//! Element formats (E2M1, E4M3, E5M2, UE8M0, UE4M3, bf16/f16, INT-b, ternary), block scale rules
//! (OCP FLOOR, CEIL, RCEIL, the 3/4 rule, QuEST, NVFP4 two-level, absmax, absmean, min-max),
//! RNE and counter-based stochastic rounding, block Hadamard transforms and bit packing, all
//! behind one value type, [`QuantSpec`]. GPU kernels are tested bit-identical against this crate.

pub mod bits;
pub mod block_scale;
pub mod clip_mask;
pub mod element;
pub mod error;
pub mod grid;
mod group_kernel;
pub mod hadamard;
pub mod int_grid;
pub mod isa;
pub mod minifloat;
pub mod nm_mask;
pub mod pack;
pub mod packed;
pub mod philox;
pub mod quantize;
pub mod scaled_cast;
#[cfg(target_arch = "x86_64")]
mod simd_avx2;
#[cfg(target_arch = "x86_64")]
mod simd_avx512;
// The SIMD kernel's parameters are built on every target; only x86-64 runs the kernel.
#[cfg_attr(
    not(target_arch = "x86_64"),
    allow(dead_code, unused_imports, unused_macros)
)]
mod simd_row;
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
mod simd_scale;
pub mod spec;
pub mod stats;
mod task;
pub mod transpose;
pub mod ue8m0;

pub use block_scale::BlockScale;
pub use clip_mask::ClipMask;
pub use element::Element;
pub use error::{FormatError, Result};
pub use grid::Grid;
pub use packed::Packed;
pub use quantize::{
    QuantOutput, quantize_dequantize, quantize_dequantize_in_place, quantize_dequantize_into,
    quantize_packed,
};
pub use spec::{
    Block, ExpRounding, QuantSpec, Rounding, ScaleRounding, ScaleRule, Signs, Transform,
};
