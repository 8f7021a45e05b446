//! The training step with a teacher in it (`[distill]`: the teacher's forward, the recorded
//! signals, the KD losses) divided by the student-only step of the same model, interleaved in
//! one run (median of per-round ratios), on the CPU backend: the logit loss alone, every loss
//! but the attention scores (the fused attention kernel stays in use), every loss (the score
//! loss needs the unfused attention in both models), and every loss under TI-M.
//!
//!   cargo bench -p nibble-train --bench distill_step           # `small`, 5 rounds
//!   NIBBLE_BENCH_PRESET=tiny NIBBLE_BENCH_ROUNDS=7 cargo bench -p nibble-train --bench distill_step

use burn::backend::Flex;
use nibble_train::step_bench::{describe, env_usize as env, step_times, table};

fn main() {
    nibble_ops::host_memory::keep_freed_memory();
    let model = std::env::var("NIBBLE_BENCH_PRESET").unwrap_or_else(|_| "small".into());
    let rounds = env("NIBBLE_BENCH_ROUNDS", 5);
    let batch = env("NIBBLE_BENCH_BATCH", 16);
    println!(
        "{}, {rounds} rounds, CPU (Flex)",
        describe(&model, batch).expect("model preset")
    );
    let variants = ["f32", "f32+kd-logits", "f32+kd-fused", "f32+kd", "f32+ti-m"];
    let times = step_times::<Flex>(&model, &variants, rounds, batch, &Default::default())
        .expect("step benchmark");
    print!("{}", table(&times));
}
