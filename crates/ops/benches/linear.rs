//! One linear layer's forward + backward under each preset, as a ratio to the f32 layer,
//! interleaved in one run (median of per-round ratios). Shapes: tokens × in → out.
//!
//!   cargo bench -p nibble-ops --bench linear
//!   (NIBBLE_BENCH_SHAPE=2048,128,512 NIBBLE_BENCH_ROUNDS=9 NIBBLE_BENCH_SCHEMES=quartet-mxfp4)

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::TensorData;
use nibble_ops::{DelayedState, LayerCall, lp_linear, preset};

type AD = Autodiff<Flex>;

fn main() {
    nibble_ops::host_memory::keep_freed_memory();
    let shape: Vec<usize> = std::env::var("NIBBLE_BENCH_SHAPE")
        .unwrap_or_else(|_| "2048,128,512".into())
        .split(',')
        .map(|v| v.parse().expect("NIBBLE_BENCH_SHAPE=t,k,n"))
        .collect();
    let (t, k, n) = (shape[0], shape[1], shape[2]);
    let dev = Default::default();
    let x: Vec<f32> = (0..t * k)
        .map(|i| ((i * 7919 % 1000) as f32 - 500.0) / 300.0)
        .collect();
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 104729 % 1000) as f32 - 500.0) / 3000.0)
        .collect();
    // NIBBLE_BENCH_SCHEMES=quartet-mxfp4,bf16 narrows the run (profiling); f32 is always in.
    let only = std::env::var("NIBBLE_BENCH_SCHEMES").ok();
    let names = nibble_ops::presets::bench_selection(only.as_deref());
    let rounds: usize =
        std::env::var("NIBBLE_BENCH_ROUNDS").map_or(9, |v| v.parse().expect("NIBBLE_BENCH_ROUNDS"));
    let mut times = vec![Vec::new(); names.len()];
    for round in 0..=rounds {
        for (i, name) in names.iter().enumerate() {
            let s = Arc::new(preset(name).unwrap());
            let call = LayerCall {
                delayed: s
                    .delayed
                    .map(|d| Arc::new(Mutex::new(DelayedState::new(&d)))),
                ..LayerCall::key(round as u64)
            };
            let xa =
                Tensor::<AD, 2>::from_data(TensorData::new(x.clone(), [t, k]), &dev).require_grad();
            let wa =
                Tensor::<AD, 2>::from_data(TensorData::new(w.clone(), [n, k]), &dev).require_grad();
            let t0 = Instant::now();
            let y = if s.is_identity() {
                xa.clone().matmul(wa.clone().transpose())
            } else {
                lp_linear(xa.clone(), wa.clone(), &s, &call)
            };
            let g = y.sum().backward();
            let dx: Vec<f32> = xa.grad(&g).unwrap().into_data().into_vec().unwrap();
            let dw: Vec<f32> = wa.grad(&g).unwrap().into_data().into_vec().unwrap();
            assert!(dx[0].is_finite() && dw[0].is_finite());
            if round > 0 {
                times[i].push(t0.elapsed().as_secs_f64());
            }
        }
    }
    println!("linear {t}x{k} -> {n}, forward + backward, CPU (Flex), {rounds} rounds");
    println!("| scheme | ms (median) | ratio to f32 |");
    println!("|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let mut r: Vec<f64> = times[i].iter().zip(&times[0]).map(|(a, b)| a / b).collect();
        r.sort_by(f64::total_cmp);
        let mut m = times[i].clone();
        m.sort_by(f64::total_cmp);
        println!(
            "| {name} | {:.1} | {:.2} |",
            m[m.len() / 2] * 1e3,
            r[r.len() / 2]
        );
    }
}
