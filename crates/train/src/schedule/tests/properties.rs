//! Property tests over seeded random configs: warmup rises, everything after it never rises (per
//! cycle for WSD-S), and the LR stays in [min_ratio · peak, peak].

use super::super::{DecayShape, Schedule, ScheduleConfig, ScheduleKind};

/// SplitMix64: a tiny deterministic generator, so failures reproduce from the case index.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..=n`.
    fn upto(&mut self, n: u64) -> u64 {
        self.next() % (n + 1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SHAPES: [DecayShape; 6] = [
    DecayShape::Linear,
    DecayShape::Cosine,
    DecayShape::OneMinusSqrt,
    DecayShape::Square,
    DecayShape::Exp,
    DecayShape::InverseProportional,
];

fn random_shape(rng: &mut Rng, cfg: &mut ScheduleConfig) -> f64 {
    let shape = SHAPES[rng.upto(5) as usize];
    cfg.decay_shape = Some(shape);
    let half_life = shape == DecayShape::Exp && rng.upto(1) == 1;
    if half_life {
        cfg.exp_half_life = Some(1 + rng.upto(60));
    }
    // Half the cases use min_ratio 0 where the shape allows it.
    let r = if rng.upto(1) == 0 && (half_life || !shape.needs_positive_min_ratio()) {
        0.0
    } else {
        0.001 + 0.5 * rng.unit()
    };
    cfg.min_ratio = Some(r);
    r
}

/// Checks one schedule over steps `0..=total + 2` and returns nothing; panics with the case.
fn check(s: &Schedule, r: f64, peak: f64, case: &str) {
    let total = s.total_steps();
    let lr: Vec<f64> = (0..=total + 2).map(|t| s.lr(t, peak)).collect();
    for c in s.cycles() {
        let warm_end = c.start + c.warmup_steps;
        for t in c.start..c.end {
            let x = lr[t as usize];
            assert!(x.is_finite() && x <= peak, "{case}: step {t}: {x}");
            if t < warm_end {
                // Non-decreasing only: a re-warmup after a cycle without decay is flat at peak.
                assert!(x >= 0.0, "{case}: warmup step {t}: {x}");
                if t > c.start {
                    assert!(x >= lr[t as usize - 1], "{case}: warmup falls at {t}");
                }
            } else {
                assert!(x >= r * peak, "{case}: step {t}: {x} < min");
                if t > warm_end {
                    assert!(x <= lr[t as usize - 1], "{case}: rises at step {t}");
                }
            }
        }
        // The value at the cycle's end (the next cycle's first step, or `total`) continues the
        // decay: no higher than the last update, exactly min_ratio · peak when it decayed in
        // the r^p / polynomial forms.
        let end = lr[c.end as usize];
        if c.decay_steps > 0 && c.end == total {
            assert!(end <= lr[c.end as usize - 1], "{case}: end rises");
        }
        if c.end == total && c.decay_steps == 0 {
            assert_eq!(end, peak, "{case}: no decay ends at the peak");
        }
    }
    assert_eq!(
        lr[total as usize + 2],
        lr[total as usize],
        "{case}: clamp past the end"
    );
}

#[test]
fn cosine_and_wsd_warm_up_then_never_rise() {
    let mut rng = Rng(0x5EED);
    for case in 0..3000 {
        let total = 1 + rng.upto(300);
        let mut cfg = ScheduleConfig {
            warmup_steps: rng.upto(total),
            warmup_init: if rng.upto(1) == 0 {
                0.0
            } else {
                0.1 * rng.unit()
            },
            ..ScheduleConfig::default()
        };
        let r;
        if case % 2 == 0 {
            cfg.kind = ScheduleKind::Cosine;
            cfg.warmup_steps = cfg.warmup_steps.min(total - 1);
            r = 0.5 * rng.unit();
            cfg.min_ratio = Some(r);
        } else {
            cfg.kind = ScheduleKind::Wsd;
            cfg.decay_steps = Some(rng.upto(total - cfg.warmup_steps));
            r = random_shape(&mut rng, &mut cfg);
        }
        let peak = 1e-5 + rng.unit();
        let s = Schedule::new(&cfg, total).unwrap_or_else(|e| panic!("case {case}: {e}: {cfg:?}"));
        let desc = format!("case {case} {cfg:?} total {total}");
        check(&s, r, peak, &desc);
        let end = s.lr(total, peak);
        let exact_end = cfg.kind == ScheduleKind::Cosine
            || (cfg.decay_steps != Some(0) && cfg.exp_half_life.is_none());
        if exact_end {
            assert_eq!(end, r * peak, "{desc}: end is exactly min_ratio · peak");
        }
    }
}

#[test]
fn wsd_s_cycles_warm_up_then_never_rise_and_end_at_budgets() {
    let mut rng = Rng(0xB0D6E7);
    let mut built = 0;
    for case in 0..3000 {
        let n = 1 + rng.upto(3);
        let mut budgets = Vec::new();
        let mut b = 0;
        for _ in 0..n {
            b += 1 + rng.upto(120);
            budgets.push(b);
        }
        let mut cfg = ScheduleConfig {
            kind: ScheduleKind::WsdS,
            warmup_steps: rng.upto(20),
            decay_fraction: Some(0.5 * rng.unit()),
            budgets: Some(budgets.clone()),
            rewarmup_steps: Some(rng.upto(10)),
            ..ScheduleConfig::default()
        };
        if rng.upto(1) == 1 {
            cfg.decay_fraction_of = Some(super::super::DecayFractionOf::Cycle);
        }
        let r = random_shape(&mut rng, &mut cfg);
        // Random budgets often cannot hold their warmups and decays; those must be rejected.
        let Ok(s) = Schedule::new(&cfg, b) else {
            continue;
        };
        built += 1;
        let peak = 1e-5 + rng.unit();
        let desc = format!("case {case} {cfg:?}");
        check(&s, r, peak, &desc);
        assert_eq!(s.checkpoint_steps(), budgets.as_slice(), "{desc}");
        for c in s.cycles() {
            // The last update of each cycle is its lowest after warmup.
            if c.decay_steps > 0 {
                let last = s.lr(c.end - 1, peak);
                let first_decay = s.lr(c.decay_start, peak);
                assert!(last <= first_decay && first_decay == peak, "{desc}");
            }
        }
    }
    assert!(built > 1000, "only {built} random WSD-S configs were valid");
}
