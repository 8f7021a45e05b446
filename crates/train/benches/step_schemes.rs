//! Training step time of each precision scheme divided by the f32 step time of the same model,
//! measured interleaved in one run (median of per-round ratios), on the CPU backend.
//!
//!   cargo bench -p nibble-train --bench step_schemes
//!   NIBBLE_BENCH_PRESET=small NIBBLE_BENCH_ROUNDS=5 cargo bench -p nibble-train --bench step_schemes
//!   (NIBBLE_BENCH_SCHEMES=quartet-mxfp4,bf16 narrows the run; f32 is always in)

use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use nibble_data::Batch;
use nibble_model::{Llama, ModelConfig, Params, PrecisionPolicy};
use nibble_ops::preset;
use nibble_train::optim::{AdamW, OptimConfig};
use nibble_train::trainer::train_step;

type B = Flex;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    nibble_ops::host_memory::keep_freed_memory();
    let preset_name = std::env::var("NIBBLE_BENCH_PRESET").unwrap_or_else(|_| "tiny".into());
    let rounds = env("NIBBLE_BENCH_ROUNDS", 7);
    let batch = env("NIBBLE_BENCH_BATCH", 16);
    let arch = ModelConfig {
        preset: Some(preset_name.clone()),
        ..Default::default()
    }
    .resolve(Some(256))
    .expect("model preset");
    let seq = arch.seq_len;
    let device = Default::default();
    let tokens: Vec<u32> = (0..batch * seq).map(|i| (i * 7919 % 256) as u32).collect();
    let micro = [Batch {
        inputs: tokens.clone(),
        targets: tokens.iter().map(|t| (t + 1) % 256).collect(),
        rows: batch,
        seq_len: seq,
    }];
    struct Run {
        name: &'static str,
        model: Llama,
        params: Params<B>,
        opt: AdamW<B>,
        times: Vec<f64>,
    }
    let only = std::env::var("NIBBLE_BENCH_SCHEMES").ok();
    let mut runs: Vec<Run> = nibble_ops::presets::bench_selection(only.as_deref())
        .into_iter()
        .map(|name| {
            let model = Llama::new(
                arch.clone(),
                PrecisionPolicy::uniform(preset(name).expect("preset")),
            );
            let params = Params::<B>::init(&arch, 0, &device);
            let opt = AdamW::new(OptimConfig::default(), &params);
            Run {
                name,
                model,
                params,
                opt,
                times: Vec::new(),
            }
        })
        .collect();
    let rope = runs[0].model.rope::<Autodiff<B>>(&device);
    println!(
        "model {preset_name} (d {}, {} layers, seq {seq}), batch {batch}, {rounds} rounds, CPU (Flex)",
        arch.d_model, arch.n_layers
    );
    for round in 0..=rounds {
        for r in runs.iter_mut() {
            let t = Instant::now();
            train_step(
                &r.model,
                &rope,
                &mut r.params,
                &mut r.opt,
                &micro,
                1e-3,
                1.0,
                round as u64,
                &device,
            );
            // Round 0 warms up (allocations, caches) and is not counted.
            if round > 0 {
                r.times.push(t.elapsed().as_secs_f64());
            }
        }
    }
    let base = runs[0].times.clone();
    println!("| scheme | step ms (median) | ratio to f32 (median of per-round ratios) |");
    println!("|---|---|---|");
    for r in &runs {
        let mut ratios: Vec<f64> = r.times.iter().zip(&base).map(|(a, b)| a / b).collect();
        ratios.sort_by(f64::total_cmp);
        let mut t = r.times.clone();
        t.sort_by(f64::total_cmp);
        println!(
            "| {} | {:.0} | {:.2} |",
            r.name,
            t[t.len() / 2] * 1e3,
            ratios[ratios.len() / 2]
        );
    }
}
