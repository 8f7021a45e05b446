//! The `[schedule]` TOML surface: parsing, defaults, and `validate()` naming the offending key.

use super::super::{DecayFractionOf, DecayShape, ScheduleConfig, ScheduleError, ScheduleKind};
use super::{build_err, parse};

#[test]
fn the_recipe_example_parses() {
    let cfg = parse(
        r#"
        kind = "wsd"
        warmup_steps = 100
        decay_fraction = 0.2
        decay_shape = "1-sqrt"
        min_ratio = 0.0
        "#,
    );
    let expected = ScheduleConfig {
        kind: ScheduleKind::Wsd,
        warmup_steps: 100,
        decay_fraction: Some(0.2),
        decay_shape: Some(DecayShape::OneMinusSqrt),
        min_ratio: Some(0.0),
        ..ScheduleConfig::default()
    };
    assert_eq!(cfg, expected);
    cfg.validate().unwrap();
}

#[test]
fn defaults_are_the_documented_ones() {
    let cfg = parse("");
    assert_eq!(cfg.kind, ScheduleKind::Constant);
    assert_eq!((cfg.warmup_steps, cfg.warmup_init), (0, 0.0));
    let wsd = parse("kind = \"wsd\"");
    assert_eq!(wsd.decay_fraction(), 0.2);
    assert_eq!(wsd.decay_shape(), DecayShape::OneMinusSqrt);
    assert_eq!(wsd.min_ratio(), 0.0);
    let wsd_s = parse("kind = \"wsd-s\"\nbudgets = [10]");
    assert_eq!(wsd_s.decay_fraction_of(), DecayFractionOf::Budget);
    assert_eq!(wsd_s.rewarmup_steps(), 0);
}

#[test]
fn serialization_round_trips() {
    let cfg = parse(
        "kind = \"wsd-s\"\nwarmup_steps = 3\nbudgets = [100, 200]\ndecay_fraction_of = \"cycle\"\n\
         rewarmup_steps = 5\ndecay_shape = \"inverse-proportional\"\nmin_ratio = 0.05",
    );
    let text = toml::to_string(&cfg).unwrap();
    assert!(text.contains("kind = \"wsd-s\""), "{text}");
    assert!(
        !text.contains("decay_steps"),
        "unset keys stay unset: {text}"
    );
    assert_eq!(parse(&text), cfg);
    assert_eq!(
        parse(&toml::to_string(&ScheduleConfig::default()).unwrap()),
        ScheduleConfig::default()
    );
}

#[test]
fn unknown_keys_and_values_are_rejected_by_the_parser() {
    for (body, needle) in [
        ("kind = \"wsd\"\nwarmup = 100", "warmup"),
        ("kind = \"wsd_s\"", "wsd_s"),
        ("kind = \"wsd\"\ndecay_shape = \"sqrt\"", "sqrt"),
        ("warmup_steps = -1", "warmup_steps"),
        ("warmup_steps = 1.5", "warmup_steps"),
    ] {
        let err = toml::from_str::<ScheduleConfig>(body)
            .expect_err(body)
            .to_string();
        assert!(err.contains(needle), "{body}: {err}");
    }
}

#[test]
fn validate_names_the_offending_key() {
    let cases = [
        ("warmup_init = 1.5", "warmup_init"),
        ("warmup_init = -0.1", "warmup_init"),
        ("kind = \"cosine\"\nmin_ratio = -0.1", "min_ratio"),
        ("kind = \"cosine\"\nmin_ratio = 1.1", "min_ratio"),
        ("kind = \"cosine\"\nmin_ratio = nan", "min_ratio"),
        ("kind = \"wsd\"\ndecay_fraction = 1.0", "decay_fraction"),
        ("kind = \"wsd\"\ndecay_fraction = -0.2", "decay_fraction"),
        ("kind = \"wsd\"\ndecay_fraction = inf", "decay_fraction"),
        (
            "kind = \"wsd\"\ndecay_steps = 10\ndecay_fraction = 0.1",
            "decay_fraction",
        ),
        (
            "kind = \"wsd\"\ndecay_shape = \"linear\"\nexp_half_life = 10",
            "exp_half_life",
        ),
        (
            "kind = \"wsd\"\ndecay_shape = \"exp\"\nexp_half_life = 0",
            "exp_half_life",
        ),
        ("kind = \"wsd-s\"", "budgets"),
        // Keys that the chosen kind would silently ignore.
        ("min_ratio = 0.1", "min_ratio"),
        ("kind = \"cosine\"\ndecay_shape = \"linear\"", "decay_shape"),
        ("kind = \"cosine\"\ndecay_fraction = 0.1", "decay_fraction"),
        (
            "kind = \"wsd-s\"\nbudgets = [10]\ndecay_steps = 2",
            "decay_steps",
        ),
        ("kind = \"wsd\"\nbudgets = [10]", "budgets"),
        ("kind = \"wsd\"\nrewarmup_steps = 10", "rewarmup_steps"),
        (
            "kind = \"wsd\"\ndecay_fraction_of = \"cycle\"",
            "decay_fraction_of",
        ),
        ("kind = \"constant\"\nexp_half_life = 3", "exp_half_life"),
    ];
    for (body, key) in cases {
        let err = parse(body).validate().expect_err(body);
        assert_eq!(err.key, key, "{body}: {err}");
        assert!(!err.message.is_empty());
    }
}

#[test]
fn run_length_conflicts_are_errors_not_clamps() {
    let cases = [
        // W + D = 100 + 200 > 250.
        (
            "kind = \"wsd\"\nwarmup_steps = 100\ndecay_steps = 200",
            250,
            "warmup_steps",
        ),
        ("kind = \"wsd\"\ndecay_steps = 300", 250, "decay_steps"),
        // D = round(0.5 · 10) = 5, W = 6: 11 > 10.
        (
            "kind = \"wsd\"\nwarmup_steps = 6\ndecay_fraction = 0.5",
            10,
            "warmup_steps",
        ),
        ("kind = \"cosine\"\nwarmup_steps = 10", 10, "warmup_steps"),
        ("kind = \"constant\"\nwarmup_steps = 11", 10, "warmup_steps"),
    ];
    for (body, total, key) in cases {
        match build_err(body, total) {
            ScheduleError::DoesNotFit {
                key: k,
                total_steps,
                message,
            } => {
                assert_eq!((k.as_str(), total_steps), (key, total), "{body}: {message}");
            }
            e => panic!("{body}: unexpected {e:?}"),
        }
    }
    assert_eq!(build_err("kind = \"wsd\"", 0), ScheduleError::NoSteps);
    // The boundary cases fit: W + D = total, constant warmup = total.
    super::build("kind = \"wsd\"\nwarmup_steps = 50\ndecay_steps = 200", 250);
    super::build("kind = \"constant\"\nwarmup_steps = 10", 10);
    super::build("kind = \"cosine\"\nwarmup_steps = 9", 10);
}

#[test]
fn errors_display_the_key() {
    let err = parse("kind = \"cosine\"\nmin_ratio = 2.0")
        .validate()
        .unwrap_err();
    assert_eq!(err.to_string(), "min_ratio: must be in [0, 1], got 2");
    let err = build_err("kind = \"wsd\"\ndecay_steps = 300", 250);
    assert!(
        err.to_string()
            .starts_with("[schedule] decay_steps does not fit total_steps = 250")
    );
}
