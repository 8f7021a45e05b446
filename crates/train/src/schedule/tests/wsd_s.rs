//! WSD-S: budget ends, decay as a fraction of the budget or of the cycle, re-warmup, and the
//! checkpoint steps.

use super::super::{Cycle, Phase, ScheduleError};
use super::{assert_close, build, build_err, parse};

const BUDGETS: &str = r#"
kind = "wsd-s"
warmup_steps = 100
budgets = [2500, 5000, 10000]
decay_fraction = 0.2
decay_shape = "linear"
min_ratio = 0.1
"#;

#[test]
fn decay_as_fraction_of_budget() {
    // D_k = 0.2 · B_k = 500, 1000, 2000: decays 2000..2500, 4000..5000, 8000..10000.
    let s = build(BUDGETS, 10_000);
    assert_eq!(s.checkpoint_steps(), [2500, 5000, 10_000]);
    assert!(s.is_checkpoint_step(2500) && s.is_checkpoint_step(10_000));
    assert!(!s.is_checkpoint_step(2499) && !s.is_checkpoint_step(2501));
    let expected = [
        (0, 0.0),
        (99, 0.99),
        (100, 1.0),
        (1999, 1.0),
        (2000, 1.0),               // first decay step, p = 0
        (2250, 0.55),              // p = ½: 0.1 + 0.9 · ½
        (2499, 0.1 + 0.9 / 500.0), // last update before budget 1, p = 499/500
        (2500, 1.0),               // budget 1 reached: no re-warmup, back at the peak
        (3999, 1.0),
        (4000, 1.0),
        (4500, 0.55),
        (4999, 0.1 + 0.9 / 1000.0),
        (5000, 1.0),
        (7999, 1.0),
        (8000, 1.0),
        (9000, 0.55),
        (9999, 0.1 + 0.9 / 2000.0),
    ];
    for (step, f) in expected {
        assert_close(s.factor(step), f);
    }
    assert_eq!(
        s.lr(10_000, 0.4),
        0.1 * 0.4,
        "final budget: exactly min_ratio · peak"
    );
    let phases = [
        (99, Phase::Warmup),
        (100, Phase::Stable),
        (1999, Phase::Stable),
        (2000, Phase::Decay),
        (2499, Phase::Decay),
        (2500, Phase::Stable),
        (4000, Phase::Decay),
        (10_000, Phase::Done),
    ];
    for (step, p) in phases {
        assert_eq!(s.phase(step), p, "step {step}");
    }
}

#[test]
fn decay_as_fraction_of_cycle() {
    // Cycles 2500, 2500, 5000 steps: D_k = 500, 500, 1000 → decays 2000.., 4500.., 9000...
    let s = build(&format!("{BUDGETS}decay_fraction_of = \"cycle\"\n"), 10_000);
    let c = |start, warmup_steps, decay_start, decay_steps, end| Cycle {
        start,
        warmup_steps,
        decay_start,
        decay_steps,
        end,
    };
    assert_eq!(
        s.cycles(),
        [
            c(0, 100, 2000, 500, 2500),
            c(2500, 0, 4500, 500, 5000),
            c(5000, 0, 9000, 1000, 10_000)
        ]
    );
    assert_eq!(s.factor(4499), 1.0);
    assert_eq!(s.factor(4500), 1.0);
    assert_close(s.factor(4750), 0.55);
    assert_close(s.factor(4999), 0.1 + 0.9 / 500.0);
    assert_close(s.factor(9500), 0.55);
    assert_eq!(s.factor(10_000), 0.1);
}

#[test]
fn rewarmup_ramps_from_the_decayed_lr_to_the_peak() {
    let s = build(&format!("{BUDGETS}rewarmup_steps = 50\n"), 10_000);
    // Cycle 2 starts at 2500 at the previous decay's end, 0.1, and reaches the peak at 2550.
    assert_eq!(s.factor(2500), 0.1);
    assert_close(s.factor(2525), 0.1 + 0.9 * 0.5);
    assert_close(s.factor(2549), 0.1 + 0.9 * 49.0 / 50.0);
    assert_eq!(s.factor(2550), 1.0);
    assert_eq!(s.phase(2500), Phase::Warmup);
    assert_eq!(s.phase(2549), Phase::Warmup);
    assert_eq!(s.phase(2550), Phase::Stable);
    assert_eq!(s.factor(5000), 0.1);
    assert_eq!(s.factor(5050), 1.0);
    // The first cycle keeps its own warmup from 0.
    assert_eq!(s.factor(0), 0.0);
    assert_eq!(s.factor(50), 0.5);
}

#[test]
fn rewarmup_starts_from_the_half_life_end_value() {
    // Cycles of 100 steps, D = 0.5 · 100 = 50, exp half-life 25: each decay ends at 0.5² = 0.25.
    let body = "kind = \"wsd-s\"\nbudgets = [100, 200]\ndecay_fraction = 0.5\n\
                decay_fraction_of = \"cycle\"\ndecay_shape = \"exp\"\nexp_half_life = 25\n\
                rewarmup_steps = 10";
    let s = build(body, 200);
    assert_eq!(s.factor(75), 0.5);
    assert_eq!(s.factor(100), 0.25);
    assert_close(s.factor(105), 0.25 + 0.75 * 0.5);
    assert_eq!(s.factor(110), 1.0);
    assert_eq!(s.factor(200), 0.25);
}

#[test]
fn budgets_must_fit_their_cycles() {
    let cases = [
        // D_2 = 0.2 · 1100 = 220 > cycle 1000..1100.
        ("budgets = [1000, 1100]", "decay_fraction"),
        // Cycle 1: warmup 900 + D_1 200 > 1000.
        ("budgets = [1000, 2000]\nwarmup_steps = 900", "warmup_steps"),
        // Cycle 2: rewarmup 700 + D_2 400 > 1000.
        (
            "budgets = [1000, 2000]\nrewarmup_steps = 700",
            "rewarmup_steps",
        ),
        ("budgets = []", "budgets"),
        ("budgets = [0, 10]", "budgets"),
        ("budgets = [500, 500, 900]", "budgets"),
        ("budgets = [900, 500]", "budgets"),
    ];
    for (extra, key) in cases {
        let body = format!("kind = \"wsd-s\"\n{extra}");
        assert_eq!(parse(&body).validate().expect_err(&body).key, key, "{body}");
    }
    // Exactly filling a cycle is fine: warmup 800 + D 200 = 1000.
    parse("kind = \"wsd-s\"\nbudgets = [1000]\nwarmup_steps = 800")
        .validate()
        .unwrap();
}

#[test]
fn last_budget_must_equal_total_steps() {
    for total in [9_999, 10_001, 20_000] {
        match build_err(BUDGETS, total) {
            ScheduleError::DoesNotFit {
                key, total_steps, ..
            } => {
                assert_eq!((key.as_str(), total_steps), ("budgets", total));
            }
            e => panic!("unexpected {e:?}"),
        }
    }
}
