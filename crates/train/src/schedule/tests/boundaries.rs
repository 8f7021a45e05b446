//! LR at every phase boundary of constant, cosine and WSD, plus the spec's off-by-one and
//! zero-length pitfalls (torchtitan #1010, #1261).

use super::super::Phase;
use super::{assert_close, build};

const WSD: &str = r#"
kind = "wsd"
warmup_steps = 100
decay_fraction = 0.2
decay_shape = "1-sqrt"
min_ratio = 0.0
"#;

#[test]
fn wsd_boundaries_1_sqrt_to_zero() {
    // total 1000, W = 100, D = 0.2 · 1000 = 200, decay starts at 1000 − 200 = 800.
    let s = build(WSD, 1000);
    let peak = 3e-3;
    assert_eq!(s.lr(0, peak), 0.0, "first warmup step: s/W = 0");
    assert_eq!(s.factor(1), 0.01);
    assert_eq!(s.factor(99), 0.99, "last warmup step: 99/100");
    assert_eq!(s.lr(100, peak), peak, "first stable step");
    assert_eq!(s.lr(799, peak), peak, "last stable step");
    assert_eq!(s.lr(800, peak), peak, "first decay step: p = 0");
    assert_close(s.factor(801), 1.0 - 0.005f64.sqrt());
    assert_close(s.factor(900), 0.292_893_218_813_452_4); // p = 1/2: 1 − √½
    assert_close(s.factor(999), 0.002_503_132_836_999_877); // last update: p = 199/200
    assert_eq!(
        s.lr(1000, peak),
        0.0,
        "decay endpoint p = 1: exactly min_ratio · peak"
    );
    assert_eq!(s.lr(5000, peak), 0.0, "steps past the end are clamped");

    assert_eq!(s.phase(0), Phase::Warmup);
    assert_eq!(s.phase(99), Phase::Warmup);
    assert_eq!(s.phase(100), Phase::Stable);
    assert_eq!(s.phase(799), Phase::Stable);
    assert_eq!(s.phase(800), Phase::Decay);
    assert_eq!(s.phase(999), Phase::Decay);
    assert_eq!(s.phase(1000), Phase::Done);
    assert!(s.checkpoint_steps().is_empty());
}

#[test]
fn wsd_endpoint_is_exactly_min_ratio_times_peak() {
    for shape in [
        "linear",
        "cosine",
        "1-sqrt",
        "square",
        "exp",
        "inverse-proportional",
    ] {
        let body = format!(
            "kind = \"wsd\"\nwarmup_steps = 10\ndecay_steps = 30\ndecay_shape = \"{shape}\"\nmin_ratio = 0.1"
        );
        let s = build(&body, 100);
        let peak = 0.7;
        assert_eq!(s.lr(100, peak), 0.1 * peak, "{shape}");
        assert_eq!(
            s.factor(70),
            1.0,
            "{shape}: first decay step (p = 0) is the peak"
        );
        assert_eq!(s.factor(69), 1.0, "{shape}: last stable step");
        assert!(
            s.factor(99) > 0.1 && s.factor(99) < 1.0,
            "{shape}: last update"
        );
    }
}

#[test]
fn off_by_one_table_matches_the_spec_pseudocode() {
    // torchtitan #1261's example: warmup 4, stable 2, decay 4, 10 steps, linear to 0. The spec's
    // s/W warmup and p = (s − (S − D))/D decay give this table for updates 0..9, and 0 at s = 10.
    let body = "kind = \"wsd\"\nwarmup_steps = 4\ndecay_steps = 4\ndecay_shape = \"linear\"";
    let s = build(body, 10);
    let expected = [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0];
    let got: Vec<f64> = (0..=10).map(|t| s.factor(t)).collect();
    assert_eq!(got, expected);
    let phases: Vec<&str> = (0..=10).map(|t| s.phase(t).name()).collect();
    let w = "warmup";
    let (st, d) = ("stable", "decay");
    assert_eq!(phases, [w, w, w, w, st, st, d, d, d, d, "done"]);
}

#[test]
fn decay_steps_zero_means_no_decay_and_no_division_by_zero() {
    for body in [
        "kind = \"wsd\"\nwarmup_steps = 2\ndecay_steps = 0\nmin_ratio = 0.1",
        "kind = \"wsd\"\nwarmup_steps = 2\ndecay_fraction = 0.0\nmin_ratio = 0.1",
    ] {
        let s = build(body, 10);
        assert_eq!(s.factor(1), 0.5);
        for t in 2..=12 {
            assert_eq!(s.factor(t), 1.0, "step {t}: {body}");
            assert_ne!(s.phase(t), Phase::Decay);
        }
    }
    // Whole run decaying and no warmup: W + D = total is allowed.
    let s = build(
        "kind = \"wsd\"\ndecay_steps = 4\ndecay_shape = \"linear\"",
        4,
    );
    let got: Vec<f64> = (0..=4).map(|t| s.factor(t)).collect();
    assert_eq!(got, [1.0, 0.75, 0.5, 0.25, 0.0]);
}

#[test]
fn warmup_steps_zero_starts_at_peak() {
    let s = build("kind = \"wsd\"\ndecay_steps = 10", 100);
    assert_eq!(s.factor(0), 1.0);
    assert_eq!(s.phase(0), Phase::Stable);
    let s = build("kind = \"cosine\"", 100);
    assert_eq!(s.factor(0), 1.0);
    assert_eq!(s.phase(0), Phase::Decay);
    let s = build("kind = \"constant\"", 5);
    assert_eq!((0..=6).map(|t| s.factor(t)).collect::<Vec<_>>(), [1.0; 7]);
}

#[test]
fn warmup_init_offsets_the_linear_ramp() {
    let s = build(
        "kind = \"wsd\"\nwarmup_steps = 10\nwarmup_init = 0.01\ndecay_steps = 0",
        50,
    );
    assert_eq!(s.factor(0), 0.01);
    assert_close(s.factor(5), 0.01 + 0.99 * 0.5);
    assert_close(s.factor(9), 0.01 + 0.99 * 0.9);
    assert_eq!(s.factor(10), 1.0);
}

#[test]
fn decay_fraction_rounds_to_the_nearest_step() {
    // 0.29 · 100 = 28.999999999999996 in f64: flooring would give 28.
    let s = build("kind = \"wsd\"\ndecay_fraction = 0.29", 100);
    assert_eq!(s.phase(70), Phase::Stable);
    assert_eq!(s.phase(71), Phase::Decay);
    // 0.25 · 10 = 2.5: ties round away from zero, D = 3.
    let s = build("kind = \"wsd\"\ndecay_fraction = 0.25", 10);
    assert_eq!(s.phase(6), Phase::Stable);
    assert_eq!(s.phase(7), Phase::Decay);
}

#[test]
fn cosine_boundaries() {
    // total 110, W = 10: the cosine spans the 100 steps 10..110, p = (s − 10)/100.
    let s = build("kind = \"cosine\"\nwarmup_steps = 10\nmin_ratio = 0.1", 110);
    let peak = 2e-3;
    assert_eq!(s.factor(0), 0.0);
    assert_eq!(s.factor(9), 0.9, "last warmup step");
    assert_eq!(s.lr(10, peak), peak, "first post-warmup step: p = 0");
    assert_close(s.factor(35), 0.868_198_051_533_946_4); // p = ¼: 0.1 + 0.45(1 + cos π/4)
    assert_close(s.factor(60), 0.55); // p = ½
    assert_close(s.factor(109), 0.100_222_047_835_420_78); // last update, p = 0.99
    assert_eq!(
        s.lr(110, peak),
        0.1 * peak,
        "endpoint: exactly min_ratio · peak"
    );
    assert_eq!(s.phase(9), Phase::Warmup);
    assert_eq!(s.phase(10), Phase::Decay);
    assert_eq!(s.phase(110), Phase::Done);
}

#[test]
fn constant_with_warmup() {
    let s = build("kind = \"constant\"\nwarmup_steps = 5", 20);
    let got: Vec<f64> = (0..=7).map(|t| s.factor(t)).collect();
    assert_eq!(got, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0]);
    assert_eq!(s.factor(19), 1.0);
    assert_eq!(s.factor(20), 1.0);
    assert_eq!(s.phase(4), Phase::Warmup);
    assert_eq!(s.phase(5), Phase::Stable);
    assert_eq!(s.phase(19), Phase::Stable);
    assert_eq!(s.phase(20), Phase::Done);
    // An absent [schedule] section is a constant LR.
    let s = build("", 3);
    assert_eq!(s.lr(0, 0.5), 0.5);
}
