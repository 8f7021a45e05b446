//! nibble-kernels: cubecl kernels for the low-precision primitives of nibble-ops, bit-identical
//! with the CPU oracle (nibble-formats) for the same `QuantSpec` and seed.
//!
//! The format arithmetic is f32 math and integer bit operations only (no fp8/fp4 scalar types,
//! no f64, no fused multiply-add): that is what makes CPU, wgpu and CUDA results agree.

pub mod bench;
pub mod block_apply;
pub mod block_quantize;
pub mod block_stats;
pub mod cast_scaled;
pub mod device_math;
pub mod group_params;
pub mod group_quantize;
pub mod nm_mask;
pub mod philox;
pub mod quest_scale;
pub mod rotate;
pub mod scale_table;

pub use cubecl;

pub use block_quantize::quantize_blocks;
pub use group_params::GroupParams;
pub use group_quantize::{GroupOutput, quantize_group};
