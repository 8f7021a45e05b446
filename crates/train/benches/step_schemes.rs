//! Training step time of each precision scheme divided by the f32 step time of the same model,
//! measured interleaved in one run (median of per-round ratios), on the CPU backend. On a GPU:
//! `nibble bench step --device cuda` (same measurement, any backend the binary was built for).
//!
//!   cargo bench -p nibble-train --bench step_schemes
//!   NIBBLE_BENCH_PRESET=small NIBBLE_BENCH_ROUNDS=5 cargo bench -p nibble-train --bench step_schemes
//!   (NIBBLE_BENCH_SCHEMES=quartet-mxfp4,bf16 narrows the run; f32 is always in)

use burn::backend::Flex;
use nibble_train::step_bench::{describe, env_usize as env, step_times, table};

fn main() {
    nibble_ops::host_memory::keep_freed_memory();
    let model = std::env::var("NIBBLE_BENCH_PRESET").unwrap_or_else(|_| "tiny".into());
    let rounds = env("NIBBLE_BENCH_ROUNDS", 7);
    let batch = env("NIBBLE_BENCH_BATCH", 16);
    let only = std::env::var("NIBBLE_BENCH_SCHEMES").ok();
    let schemes = nibble_ops::presets::bench_selection(only.as_deref());
    println!(
        "{}, {rounds} rounds, CPU (Flex)",
        describe(&model, batch).expect("model preset")
    );
    let times = step_times::<Flex>(&model, &schemes, rounds, batch, &Default::default())
        .expect("step benchmark");
    print!("{}", table(&times));
}
