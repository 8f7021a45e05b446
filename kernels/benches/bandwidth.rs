//! Every kernel's bandwidth against a device copy of the same buffer, on wgpu (a GPU through
//! Vulkan/Metal, or Mesa's lavapipe on the CPU). On CUDA: `nibble bench kernels --device cuda`.
//!
//!   cargo bench -p nibble-kernels              (NIBBLE_BENCH_MIB, NIBBLE_BENCH_ITERS)

#[cfg(feature = "wgpu")]
fn main() {
    use cubecl::Runtime;
    use cubecl::wgpu::{WgpuDevice, WgpuRuntime};
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (mib, iters) = (env("NIBBLE_BENCH_MIB", 64), env("NIBBLE_BENCH_ITERS", 10));
    let client = WgpuRuntime::client(&WgpuDevice::default());
    println!("{mib} MiB of f32 (rows of 4,096), {iters} calls per kernel, wgpu");
    print!(
        "{}",
        nibble_kernels::bench::table(&nibble_kernels::bench::run(&client, mib, iters))
    );
}

#[cfg(not(feature = "wgpu"))]
fn main() {
    eprintln!("build with the wgpu feature (default) or use `nibble bench kernels --device cuda`");
}
