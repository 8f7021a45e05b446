//! The runtime the kernel tests run on: CUDA in a build with the `cuda` feature (build the test
//! binaries here with `cargo test -p nibble-kernels --no-default-features --features cuda
//! --no-run` and run them on the GPU machine), else wgpu (Mesa's lavapipe in CI).

use cubecl::prelude::*;

#[cfg(feature = "cuda")]
pub type Rt = cubecl::cuda::CudaRuntime;
#[cfg(all(feature = "wgpu", not(feature = "cuda")))]
pub type Rt = cubecl::wgpu::WgpuRuntime;

/// A client of the default device of [`Rt`].
pub fn client() -> ComputeClient<Rt> {
    Rt::client(&Default::default())
}
