//! Quantize-dequantize throughput of a 4096×4096 f32 matrix (`NIBBLE_BENCH_SHAPE=rows,cols`) against memcpy of the same buffer,
//! measured in one run. Each repetition times memcpy and every quantizer back to back, and the
//! ratio is the median of the per-repetition ratios, so drift in machine load cancels.
//!
//! Run: `cargo bench -p nibble-formats --bench quantize` (`NIBBLE_ISA=baseline|avx2` to compare).

use std::time::Instant;

use nibble_formats::isa::{self, Isa};
use nibble_formats::{
    ClipMask, Element, ExpRounding, QuantSpec, Rounding, ScaleRule, quantize_dequantize_into,
};
use rand::{Rng, SeedableRng, rngs::StdRng};
use rand_distr::StandardNormal;

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
    // NIBBLE_BENCH_SHAPE=rows,cols (default 4096,4096; 2048,512 is a cache-resident layer).
    let shape: Vec<usize> = std::env::var("NIBBLE_BENCH_SHAPE")
        .unwrap_or_else(|_| "4096,4096".into())
        .split(',')
        .map(|v| v.parse().expect("NIBBLE_BENCH_SHAPE=rows,cols"))
        .collect();
    let (rows, cols) = (shape[0], shape[1]);
    let mut rng = StdRng::seed_from_u64(7);
    let data: Vec<f32> = (0..rows * cols)
        .map(|_| rng.sample::<f32, _>(StandardNormal))
        .collect();
    let mut out = vec![0f32; rows * cols];
    let mut clip = ClipMask::new(rows, cols);
    let bytes = (rows * cols * 4) as f64;
    let specs = [
        (
            "quartet-fwd (H32 + QuEST MXFP4)",
            QuantSpec::quartet_forward(ExpRounding::Nearest),
        ),
        (
            "quartet-bwd (RHT32 + 3/4 rule, RTN)",
            QuantSpec::quartet_backward(Rounding::Rne),
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
            quantize_dequantize_into(spec, &data, &[rows, cols], rep as u64, &mut out, &mut clip)
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
        "matrix {rows}x{cols} f32 ({:.0} MB), {} threads, ISA {:?}, median of {REPS} interleaved repetitions",
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
