//! Quantize-dequantize throughput of a 4096×4096 f32 matrix against memcpy of the same buffer,
//! measured in one run. Each repetition times memcpy and every quantizer back to back, and the
//! ratio is the median of the per-repetition ratios, so drift in machine load cancels.
//!
//! Run: `cargo bench -p nibble-formats --bench quantize` (`NIBBLE_ISA=baseline|avx2` to compare).

use std::time::Instant;

use nibble_formats::isa::{self, Isa};
use nibble_formats::{
    ClipMask, Element, ExpRounding, QuantSpec, ScaleRule, quantize_dequantize_into,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

const N: usize = 4096;
const REPS: usize = 21;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    match std::env::var("NIBBLE_ISA").as_deref() {
        Ok("baseline") => isa::force(Some(Isa::Baseline)),
        Ok("avx2") => isa::force(Some(Isa::Avx2)),
        _ => {}
    }
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<f32> = (0..N * N)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let mut out = vec![0f32; N * N];
    let mut clip = ClipMask::new(N, N);
    let bytes = (N * N * 4) as f64;
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
    let mut memcpy_s = Vec::new();
    let mut q_s = vec![Vec::new(); specs.len()];
    let mut ratios = vec![Vec::new(); specs.len()];
    for rep in 0..=REPS {
        let t0 = Instant::now();
        out.copy_from_slice(std::hint::black_box(&data));
        let m = t0.elapsed().as_secs_f64();
        for (i, (_, spec)) in specs.iter().enumerate() {
            let t0 = Instant::now();
            quantize_dequantize_into(spec, &data, &[N, N], rep as u64, &mut out, &mut clip)
                .unwrap();
            let q = t0.elapsed().as_secs_f64();
            if rep > 0 {
                // rep 0 warms up: pages in buffers and starts the thread pool.
                q_s[i].push(q);
                ratios[i].push(m / q);
            }
        }
        if rep > 0 {
            memcpy_s.push(m);
        }
    }
    let m = median(memcpy_s);
    println!(
        "matrix {N}x{N} f32 ({:.0} MB), {} threads, ISA {:?}, median of {REPS} interleaved repetitions",
        bytes / 1e6,
        rayon::current_num_threads(),
        isa::current()
    );
    println!(
        "{:<36} {:>9} {:>9} {:>10}",
        "operation", "ms", "GB/s", "vs memcpy"
    );
    println!(
        "{:<36} {:>9.2} {:>9.2} {:>10.2}",
        "memcpy (copy_from_slice, 1 thread)",
        m * 1e3,
        bytes / m / 1e9,
        1.0
    );
    for (i, (name, _)) in specs.iter().enumerate() {
        let q = median(q_s[i].clone());
        println!(
            "{:<36} {:>9.2} {:>9.2} {:>10.2}",
            name,
            q * 1e3,
            bytes / q / 1e9,
            median(ratios[i].clone())
        );
    }
}
