//! Every decay shape of the catalogue (spec §6.2) at its midpoint and quarter point, and the `exp`
//! pitfall (min_ratio 0).

use super::super::DecayShape;
use super::{assert_close, build, build_err, parse};

/// WSD over 100 steps, no warmup, a 40-step decay starting at step 60: p = (s − 60)/40.
fn shape_schedule(shape: &str, min_ratio: f64) -> super::super::Schedule {
    build(
        &format!(
            "kind = \"wsd\"\ndecay_steps = 40\ndecay_shape = \"{shape}\"\nmin_ratio = {min_ratio:?}"
        ),
        100,
    )
}

#[test]
fn each_shape_at_its_midpoint_with_min_ratio_0_1() {
    // p = 1/2 at step 80; r = 0.1. Values from f(p) in the spec table.
    let cases = [
        ("linear", 0.55),                     // 0.1 + 0.9 · 0.5
        ("cosine", 0.55),                     // 0.1 + 0.9 · ½(1 + cos π/2)
        ("1-sqrt", 0.363_603_896_932_107_15), // 0.1 + 0.9 · (1 − √½)
        ("square", 0.775),                    // 0.1 + 0.9 · (1 − ¼)
        ("exp", 0.316_227_766_016_837_94),    // 0.1^½
        ("inverse-proportional", 2.0 / 11.0), // 1 / (½ + ½/0.1)
    ];
    for (shape, expected) in cases {
        let s = shape_schedule(shape, 0.1);
        assert_close(s.factor(80), expected);
        assert_eq!(s.factor(60), 1.0, "{shape}: p = 0");
        assert_eq!(s.factor(100), 0.1, "{shape}: p = 1");
    }
}

#[test]
fn each_shape_at_its_quarter_point_with_min_ratio_0_1() {
    // p = 1/4 at step 70.
    let r: f64 = 0.1;
    let cases = [
        ("linear", r + (1.0 - r) * 0.75),
        ("cosine", r + (1.0 - r) * 0.5 * (1.0 + 0.5f64.sqrt())), // cos π/4 = √½
        ("1-sqrt", r + (1.0 - r) * 0.5),                         // 1 − √¼
        ("square", r + (1.0 - r) * (1.0 - 1.0 / 16.0)),
        ("exp", 0.1f64.sqrt().sqrt()),                // 0.1^¼
        ("inverse-proportional", 1.0 / (0.75 + 2.5)), // 1 / (¾ + ¼/0.1)
    ];
    for (shape, expected) in cases {
        assert_close(shape_schedule(shape, r).factor(70), expected);
    }
}

#[test]
fn shapes_to_zero_at_their_midpoint() {
    let cases = [
        ("linear", 0.5),
        ("cosine", 0.5),
        ("1-sqrt", 1.0 - 0.5f64.sqrt()),
        ("square", 0.75),
    ];
    for (shape, expected) in cases {
        let s = shape_schedule(shape, 0.0);
        assert_close(s.factor(80), expected);
        assert_eq!(s.factor(100), 0.0, "{shape}");
    }
}

#[test]
fn exp_with_min_ratio_zero_is_rejected_not_nan() {
    // Spec §6.1 / §7.3: r^p with r = 0 drops to 0 after the first decay step; require r > 0.
    for body in [
        "kind = \"wsd\"\ndecay_shape = \"exp\"\nmin_ratio = 0.0",
        "kind = \"wsd\"\ndecay_shape = \"exp\"",
        "kind = \"wsd-s\"\nbudgets = [100]\ndecay_shape = \"exp\"",
        "kind = \"wsd\"\ndecay_shape = \"inverse-proportional\"",
    ] {
        let err = parse(body).validate().expect_err(body);
        assert_eq!(err.key, "min_ratio", "{body}");
        assert!(err.message.contains("min_ratio > 0"), "{}", err.message);
        assert!(matches!(
            build_err(body, 100),
            super::super::ScheduleError::Config(e) if e.key == "min_ratio"
        ));
    }
}

#[test]
fn exp_half_life_follows_minicpm_and_allows_min_ratio_zero() {
    // MiniCPM: 0.5^(τ/H). decay_steps 100 from step 100 of 200, H = 50.
    let body = "kind = \"wsd\"\ndecay_steps = 100\ndecay_shape = \"exp\"\nexp_half_life = 50";
    let s = build(body, 200);
    assert_eq!(s.factor(100), 1.0);
    assert_close(s.factor(125), 0.5f64.sqrt());
    assert_eq!(s.factor(150), 0.5);
    assert_close(s.factor(199), 0.5f64.powf(99.0 / 50.0));
    assert_eq!(s.factor(200), 0.25, "two half-lives");
    for t in 0..=200 {
        let f = s.factor(t);
        assert!(f.is_finite() && f > 0.0, "step {t}: {f}");
    }
    // min_ratio is a floor for the half-life form.
    let s = build(&format!("{body}\nmin_ratio = 0.3"), 200);
    assert_eq!(s.factor(150), 0.5);
    assert_eq!(s.factor(200), 0.3);
    assert_eq!(s.factor(190), 0.3, "0.5^1.8 ≈ 0.287 is floored");
}

#[test]
fn shape_names_round_trip_through_toml() {
    let names = [
        "linear",
        "cosine",
        "1-sqrt",
        "square",
        "exp",
        "inverse-proportional",
    ];
    let shapes = [
        DecayShape::Linear,
        DecayShape::Cosine,
        DecayShape::OneMinusSqrt,
        DecayShape::Square,
        DecayShape::Exp,
        DecayShape::InverseProportional,
    ];
    for (name, shape) in names.into_iter().zip(shapes) {
        let cfg = parse(&format!(
            "kind = \"wsd\"\ndecay_shape = \"{name}\"\nmin_ratio = 0.1"
        ));
        assert_eq!(cfg.decay_shape, Some(shape));
        assert_eq!(shape.name(), name);
    }
    assert_eq!(DecayShape::default(), DecayShape::OneMinusSqrt);
}
