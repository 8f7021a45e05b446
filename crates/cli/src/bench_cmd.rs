//! `nibble bench`: measurements on a device, in one run each.
//!
//! - `nibble bench step --device cuda --model small`: training step time of precision schemes
//!   as ratios to the first (default bf16, fp8-current, quartet-mxfp4: ratios to bf16).
//! - `nibble bench kernels --device cuda`: every nibble-kernels quantizer in GB/s against a
//!   device-to-device copy of the same buffer (GPU builds only).
//! - `nibble bench gemm --shapes 4096,256,768`: a linear layer's three f32 GEMMs on the CPU.

use clap::Subcommand;
use nibble_train::sections::Device;
use nibble_train::step_bench::{describe, step_times, table};

use crate::device::with_backend;

#[derive(Subcommand)]
pub enum What {
    /// Training step time of schemes on one model, as ratios to the first scheme.
    Step {
        /// cpu, wgpu or cuda (GPU backends need a binary built with their feature).
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Model preset: tiny, small or smollm2-135m (byte vocabulary).
        #[arg(long, default_value = "small")]
        model: String,
        /// Comma-separated presets; the first is the reference.
        #[arg(long, default_value = "bf16,fp8-current,quartet-mxfp4")]
        schemes: String,
        /// Timed rounds (after one warm-up round).
        #[arg(long, default_value_t = 5)]
        rounds: usize,
        /// Sequences per step.
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    /// Bandwidth of each quantizer kernel against a device copy (wgpu or cuda builds).
    Kernels {
        /// wgpu or cuda.
        #[arg(long, default_value = "cuda")]
        device: String,
        /// Buffer size in MiB of f32.
        #[arg(long, default_value_t = 256)]
        mib: usize,
        /// Timed calls per kernel (after two warm-up calls).
        #[arg(long, default_value_t = 20)]
        iters: usize,
    },
    /// A linear layer's three f32 GEMMs on the CPU at shapes `T,K,N` (tokens, in, out): one
    /// JSON line per shape with the median seconds and GFLOP/s.
    Gemm {
        /// `T,K,N;T,K,N;...`.
        #[arg(long)]
        shapes: String,
        /// Timed repetitions (after one warm-up).
        #[arg(long, default_value_t = 5)]
        reps: usize,
    },
}

fn parse_device(s: &str) -> Result<Device, (u8, String)> {
    match s {
        "cpu" => Ok(Device::Cpu),
        "wgpu" => Ok(Device::Wgpu),
        "cuda" => Ok(Device::Cuda),
        other => Err((2, format!("--device {other}: expected cpu, wgpu or cuda"))),
    }
}

pub fn run(what: What) -> Result<(), (u8, String)> {
    match what {
        What::Step {
            device,
            model,
            schemes,
            rounds,
            batch,
        } => {
            let dev_kind = parse_device(&device)?;
            let names: Vec<&str> = schemes.split(',').map(str::trim).collect();
            if rounds == 0 || batch == 0 {
                return Err((2, "--rounds and --batch must be at least 1".into()));
            }
            for n in &names {
                nibble_ops::preset(n).map_err(|e| (2, format!("--schemes: {e}")))?;
            }
            let head = describe(&model, batch).map_err(|e| (2, e))?;
            println!("{head}, {rounds} rounds, device {device}");
            with_backend!(dev_kind, |B, dev| {
                let times =
                    step_times::<B>(&model, &names, rounds, batch, &dev).map_err(|e| (2, e))?;
                print!("{}", table(&times));
                Ok(())
            })
        }
        What::Kernels { device, mib, iters } => kernels(parse_device(&device)?, mib, iters),
        What::Gemm { shapes, reps } => {
            crate::bench_gemm::run(&crate::bench_gemm::parse_shapes(&shapes)?, reps.max(1));
            Ok(())
        }
    }
}

fn kernels(device: Device, mib: usize, iters: usize) -> Result<(), (u8, String)> {
    if mib == 0 || iters == 0 {
        return Err((2, "--mib and --iters must be at least 1".into()));
    }
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda => {
            use nibble_kernels::cubecl::Runtime;
            use nibble_kernels::cubecl::cuda::{CudaDevice, CudaRuntime};
            let client = CudaRuntime::client(&CudaDevice::default());
            report(
                "cuda",
                mib,
                iters,
                nibble_kernels::bench::run(&client, mib, iters),
            );
            Ok(())
        }
        #[cfg(feature = "wgpu")]
        Device::Wgpu => {
            use nibble_kernels::cubecl::Runtime;
            use nibble_kernels::cubecl::wgpu::{WgpuDevice, WgpuRuntime};
            let client = WgpuRuntime::client(&WgpuDevice::default());
            report(
                "wgpu",
                mib,
                iters,
                nibble_kernels::bench::run(&client, mib, iters),
            );
            Ok(())
        }
        Device::Cpu => Err((2, "kernel benchmarks run on wgpu or cuda".into())),
        #[allow(unreachable_patterns)]
        other => Err((2, crate::device::missing(other))),
    }
}

#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn report(device: &str, mib: usize, iters: usize, rows: Vec<nibble_kernels::bench::Row>) {
    println!("{mib} MiB of f32 (rows of 4,096), {iters} calls per kernel, device {device}");
    print!("{}", nibble_kernels::bench::table(&rows));
}
