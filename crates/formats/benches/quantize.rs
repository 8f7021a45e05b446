//! Quantize-dequantize throughput of a 4096×4096 f32 matrix against memcpy of the same buffer,
//! measured in one run. Reports GB/s of input processed and the ratio to memcpy.
//!
//! Run: `cargo bench -p nibble-formats --bench quantize`

use std::time::{Duration, Instant};

use nibble_formats::{
    ClipMask, Element, ExpRounding, QuantSpec, ScaleRule, quantize_dequantize_into,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

const N: usize = 4096;
const REPS: usize = 15;

fn median(mut t: Vec<Duration>) -> Duration {
    t.sort();
    t[t.len() / 2]
}

fn time<F: FnMut()>(mut f: F) -> Duration {
    f(); // warm-up: page in buffers, spin up the thread pool
    median(
        (0..REPS)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<f32> = (0..N * N)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let mut out = vec![0f32; N * N];
    let mut clip = ClipMask::new(N, N);
    let bytes = (N * N * 4) as f64;
    let gbs = |d: Duration| bytes / d.as_secs_f64() / 1e9;

    let memcpy = time(|| out.copy_from_slice(std::hint::black_box(&data)));
    let specs = [
        (
            "quartet-fwd (H32 + QuEST MXFP4)",
            QuantSpec::quartet_forward(ExpRounding::Nearest),
        ),
        (
            "mxfp8 (E4M3, 1x32, RCEIL)",
            QuantSpec::mx(Element::E4M3, ScaleRule::RCeil),
        ),
    ];
    println!(
        "threads: {}, matrix {N}x{N} f32 ({:.0} MB)",
        rayon::current_num_threads(),
        bytes / 1e6
    );
    println!(
        "{:<36} {:>9} {:>9} {:>8}",
        "operation", "ms", "GB/s", "vs memcpy"
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>8.2}",
        "memcpy (copy_from_slice)",
        memcpy.as_secs_f64() * 1e3,
        gbs(memcpy),
        1.0
    );
    for (name, spec) in specs {
        let d = time(|| {
            quantize_dequantize_into(&spec, &data, &[N, N], 1, &mut out, &mut clip).unwrap()
        });
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>8.2}",
            name,
            d.as_secs_f64() * 1e3,
            gbs(d),
            memcpy.as_secs_f64() / d.as_secs_f64()
        );
    }
}
