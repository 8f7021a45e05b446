//! Training step time of precision schemes on one model, interleaved in one run (round-robin
//! over the schemes, so drift hits all alike), reported as medians of per-round ratios to the
//! first scheme. Used by `cargo bench -p nibble-train --bench step_schemes` (CPU) and
//! `nibble bench step` (any device the binary was built for). A scheme name with a `+kd` suffix
//! trains with a teacher in the step (an f32 model of the same preset: T²·KL of the logits plus
//! the hidden-state, attention-score and attention-output MSEs), `+kd-logits` the logit loss
//! alone, `+kd-fused` all but the score loss (which needs the unfused attention), `+ti-m` all
//! under TI-M.

use std::time::Instant;

use burn::backend::Autodiff;
use nibble_data::Batch;
use nibble_model::{Llama, ModelConfig, Params, PrecisionPolicy};
use nibble_ops::{LpBackend, preset};

use crate::objective::{CrossEntropy, Distill, Objective, Teacher};
use crate::optim::{AdamW, OptimConfig};
use crate::sections::{DistillConfig, InterventionMode};
use crate::trainer::{StepSetup, train_step};

struct Run<B: LpBackend> {
    model: Llama,
    params: Params<B>,
    opt: AdamW<B>,
    times: Vec<f64>,
    /// `+kd` / `+ti-m`: the distillation objective with its teacher.
    distill: Option<Distill<B>>,
}

/// The distillation a scheme name's suffix asks for (`+kd`, `+ti-m`), if any.
fn distill_of(suffix: Option<&str>, rounds: usize) -> Result<Option<DistillConfig>, String> {
    let kd = DistillConfig {
        logits: 1.0,
        hidden: 1.0,
        attn_scores: 1.0,
        attn_out: 1.0,
        ..Default::default()
    };
    Ok(match suffix {
        None => None,
        Some("kd") => Some(kd),
        Some("kd-logits") => Some(DistillConfig {
            hidden: 0.0,
            attn_scores: 0.0,
            attn_out: 0.0,
            ..kd
        }),
        Some("kd-fused") => Some(DistillConfig {
            attn_scores: 0.0,
            ..kd
        }),
        Some("ti-m") => Some(DistillConfig {
            intervention: InterventionMode::Map,
            intervention_steps: rounds as u64 + 2,
            ..kd
        }),
        Some(other) => {
            return Err(format!(
                "unknown step variant `+{other}` (kd, kd-logits, kd-fused, ti-m)"
            ));
        }
    })
}

/// One scheme's result.
#[derive(Clone, Debug)]
pub struct SchemeTime {
    pub name: String,
    pub median_ms: f64,
    /// Median over rounds of (this step / the first scheme's step in the same round).
    pub ratio: f64,
}

/// The variable `name` as a number, else `default` (the benches' knobs).
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The model geometry line of a report.
pub fn describe(model: &str, batch: usize) -> Result<String, String> {
    let arch = ModelConfig {
        preset: Some(model.into()),
        ..Default::default()
    }
    .resolve(Some(256))
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "model {model} (d {}, {} layers, seq {}, byte vocabulary), batch {batch}",
        arch.d_model, arch.n_layers, arch.seq_len
    ))
}

/// Time `rounds` steps of each scheme (after one warm-up round) on `model` (a model preset,
/// byte vocabulary) with `batch` sequences per step. `schemes[0]` is the reference.
pub fn step_times<B: LpBackend>(
    model: &str,
    schemes: &[&str],
    rounds: usize,
    batch: usize,
    device: &B::Device,
) -> Result<Vec<SchemeTime>, String> {
    let arch = ModelConfig {
        preset: Some(model.into()),
        ..Default::default()
    }
    .resolve(Some(256))
    .map_err(|e| e.to_string())?;
    let seq = arch.seq_len;
    let tokens: Vec<u32> = (0..batch * seq).map(|i| (i * 7919 % 256) as u32).collect();
    let micro = [Batch {
        inputs: tokens.clone(),
        targets: tokens.iter().map(|t| (t + 1) % 256).collect(),
        rows: batch,
        seq_len: seq,
    }];
    let mut runs: Vec<Run<B>> = Vec::new();
    for full in schemes {
        let (name, suffix) = match full.split_once('+') {
            Some((n, s)) => (n, Some(s)),
            None => (*full, None),
        };
        let model = Llama::new(arch.clone(), PrecisionPolicy::uniform(preset(name)?));
        let params = model.init_params::<B>(0, device);
        let opt =
            AdamW::for_model(OptimConfig::default(), &model, &params).map_err(|e| e.to_string())?;
        let distill = distill_of(suffix, rounds)?.map(|cfg| {
            let f32_model = Llama::new(arch.clone(), PrecisionPolicy::uniform(preset("f32")?));
            let teacher = Teacher {
                params: f32_model.init_params::<B>(1, device),
                rope: f32_model.rope(device),
                model: f32_model,
            };
            Ok::<_, String>(Distill::new(teacher, cfg, 0, device))
        });
        runs.push(Run {
            model,
            params,
            opt,
            times: Vec::new(),
            distill: distill.transpose()?,
        });
    }
    let Some(first) = runs.first() else {
        return Err("no scheme to time".into());
    };
    let rope = first.model.rope::<Autodiff<B>>(device);
    for round in 0..=rounds {
        for r in runs.iter_mut() {
            B::sync(device).map_err(|e| format!("device sync: {e:?}"))?;
            let t = Instant::now();
            let objective: &dyn Objective<Autodiff<B>> = match &r.distill {
                Some(d) => d,
                None => &CrossEntropy,
            };
            let setup = StepSetup {
                model: &r.model,
                rope: &rope,
                objective,
                grad_clip: 1.0,
                device,
                probe_grads: false,
                peer: None,
            };
            let step = round as u64;
            train_step(&setup, &mut r.params, &mut r.opt, &micro, 1e-3, step, step);
            B::sync(device).map_err(|e| format!("device sync: {e:?}"))?;
            // Round 0 warms up (allocations, kernel compilation, caches) and is not counted.
            if round > 0 {
                r.times.push(t.elapsed().as_secs_f64());
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let base = runs[0].times.clone();
    Ok(runs
        .iter()
        .zip(schemes)
        .map(|(r, name)| SchemeTime {
            name: name.to_string(),
            median_ms: median(r.times.clone()) * 1e3,
            ratio: median(r.times.iter().zip(&base).map(|(a, b)| a / b).collect()),
        })
        .collect())
}

/// The results as a Markdown table.
pub fn table(times: &[SchemeTime]) -> String {
    let base = times.first().map_or("", |t| t.name.as_str());
    let mut s = format!(
        "| scheme | step ms (median) | ratio to {base} (median of per-round ratios) |\n|---|---|---|\n"
    );
    for t in times {
        s += &format!("| {} | {:.1} | {:.2} |\n", t.name, t.median_ms, t.ratio);
    }
    s
}
