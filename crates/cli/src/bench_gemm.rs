//! `nibble bench gemm`: the three f32 GEMMs of a linear layer (forward `X·Wᵀ`, dgrad `dY·W`,
//! wgrad `dYᵀ·X`) on the CPU backend at given shapes, as the model runs them (burn's matmul
//! on transposed views). `benches/train_vs_torch.py --gemm` runs it interleaved with PyTorch's
//! sgemm at the same shapes.

use std::time::Instant;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Distribution;

/// Parses `T,K,N;T,K,N;...`.
pub fn parse_shapes(s: &str) -> Result<Vec<[usize; 3]>, (u8, String)> {
    s.split(';')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let v: Vec<usize> = p
                .split(',')
                .map(|x| x.trim().parse::<usize>())
                .collect::<Result<_, _>>()
                .map_err(|e| (2, format!("--shapes `{p}`: {e}")))?;
            match v[..] {
                [t, k, n] if t > 0 && k > 0 && n > 0 => Ok([t, k, n]),
                _ => Err((2, format!("--shapes `{p}`: expected T,K,N (positive)"))),
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prints one JSON line per shape: the median seconds of the three GEMMs over `reps`
/// repetitions (after one warm-up) and their GFLOP/s.
pub fn run(shapes: &[[usize; 3]], reps: usize) {
    let dev = Default::default();
    for &[t, k, n] in shapes {
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<Flex, 2>::random([t, k], normal, &dev);
        let w = Tensor::<Flex, 2>::random([n, k], normal, &dev) * 0.02;
        let dy = Tensor::<Flex, 2>::random([t, n], normal, &dev);
        let mut secs = Vec::new();
        for rep in 0..=reps {
            let t0 = Instant::now();
            let y = x.clone().matmul(w.clone().transpose());
            let dx = dy.clone().matmul(w.clone());
            let dw = dy.clone().transpose().matmul(x.clone());
            // Reading one element forces the results (Flex computes eagerly; this keeps the
            // products from being dropped unevaluated by any later lazy backend).
            let _ = (
                y.slice([0..1, 0..1]).into_scalar(),
                dx.slice([0..1, 0..1]).into_scalar(),
            );
            let _ = dw.slice([0..1, 0..1]).into_scalar();
            if rep > 0 {
                secs.push(t0.elapsed().as_secs_f64());
            }
        }
        let s = median(secs);
        let flops = 3.0 * 2.0 * (t * k * n) as f64;
        println!(
            "{{\"shape\": [{t}, {k}, {n}], \"seconds\": {s:.6}, \"gflops\": {:.1}}}",
            flops / s / 1e9
        );
    }
}
