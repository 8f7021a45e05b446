//! `nibble bench step` on the CPU: a table with one row per scheme, the reference at ratio
//! 1.00; bad arguments exit 2 with a message naming the flag.

mod common;
use common::{nibble, scratch};

#[test]
fn step_bench_reports_ratios_to_the_first_scheme() {
    let d = scratch("bench-step");
    let (code, out, err) = nibble(
        &[
            "bench",
            "step",
            "--device",
            "cpu",
            "--model",
            "tiny",
            "--schemes",
            "f32,bf16",
            "--rounds",
            "1",
            "--batch",
            "1",
        ],
        &d,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("model tiny (d 128"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("| f32") || l.starts_with("| bf16"))
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert!(
        rows[0].ends_with("| 1.00 |"),
        "the reference's ratio: {}",
        rows[0]
    );
    let ms: f64 = rows[1].split('|').nth(2).unwrap().trim().parse().unwrap();
    assert!(ms > 0.0);
}

#[test]
fn bad_bench_arguments_exit_2() {
    let d = scratch("bench-bad");
    for (args, needle) in [
        (vec!["bench", "step", "--schemes", "bf16,nope"], "--schemes"),
        (vec!["bench", "step", "--device", "tpu"], "--device tpu"),
        (vec!["bench", "step", "--rounds", "0"], "--rounds"),
        (vec!["bench", "kernels", "--device", "cpu"], "wgpu or cuda"),
    ] {
        let (code, _, err) = nibble(&args, &d);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}
