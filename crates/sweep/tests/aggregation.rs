//! Reports from synthetic run directories: seed mean and sample std, paired gaps to the
//! reference, unfinished runs left out, the budget table with WSD-S budget checkpoints, and the
//! files a report writes (README section, CSVs, PNGs).

mod common;

use std::fs;
use std::path::Path;

use common::scratch;
use nibble_sweep::meta::RunMeta;
use nibble_train::trainer::{RunSummaryFile, SUMMARY_FILE};

struct Fake<'a> {
    arm_name: &'a str,
    axes: Vec<(&'a str, &'a str)>,
    seed: u64,
    order: usize,
    /// (step, val/loss)
    series: Vec<(u64, f64)>,
    finished: bool,
    recipe: &'a str,
    budget_axis: Option<&'a str>,
}

fn arm_label(f: &Fake) -> String {
    std::iter::once(f.arm_name.to_owned())
        .chain(
            f.axes
                .iter()
                .map(|(k, v)| format!("{}={v}", k.rsplit('.').next().unwrap())),
        )
        .collect::<Vec<_>>()
        .join(",")
}

fn make(root: &Path, f: Fake) {
    let arm = arm_label(&f);
    let dir = root
        .join("runs")
        .join(&arm)
        .join(format!("seed-{}", f.seed));
    fs::create_dir_all(&dir).unwrap();
    let meta = RunMeta {
        sweep: "synthetic".into(),
        arm: arm.clone(),
        arm_name: f.arm_name.into(),
        axes: f
            .axes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        seed: f.seed,
        recipe_hash: "h".into(),
        reference: Some("ref".into()),
        metrics: vec!["val/loss".into(), "val/bpb".into()],
        budget_axis: f.budget_axis.map(str::to_owned),
        order: f.order,
    };
    meta.write(&dir).unwrap();
    let mut lines = String::new();
    for (s, v) in &f.series {
        lines += &format!("{{\"step\":{s},\"train/tokens_per_sec\":1000.0}}\n");
        lines += &format!(
            "{{\"step\":{s},\"val/loss\":{v},\"val/bpb\":{}}}\n",
            v * 2.0
        );
    }
    fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    fs::write(dir.join("recipe.toml"), f.recipe).unwrap();
    if f.finished {
        let s = RunSummaryFile {
            recipe_hash: "h".into(),
            steps: f.series.last().unwrap().0,
            tokens: 0,
            val_loss: f.series.last().unwrap().1,
            val_bpb: 0.0,
            best_val_loss: None,
            unigram_bpb: 0.0,
            params: 0,
            wall_secs: 10.0 + f.seed as f64,
        };
        fs::write(dir.join(SUMMARY_FILE), serde_json::to_string(&s).unwrap()).unwrap();
    }
}

const R20: &str = "[run]\nsteps = 20\n";

fn png_size(p: &Path) -> (u32, u32) {
    let b = fs::read(p).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        p.display()
    );
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn mean_std_and_paired_gap() {
    let d = scratch("agg");
    let refs = [2.0, 2.2, 2.4];
    let xs = [2.1, 2.25, 2.6];
    for seed in 0..3u64 {
        for (name, order, v) in [("ref", 0, refs[seed as usize]), ("x", 1, xs[seed as usize])] {
            make(
                &d,
                Fake {
                    arm_name: name,
                    axes: vec![],
                    seed,
                    order,
                    // The best value (min) is the 10-step one for `x`, the last for `ref`.
                    series: vec![(10, if name == "x" { 1.5 } else { 3.0 }), (20, v)],
                    finished: true,
                    recipe: R20,
                    budget_axis: None,
                },
            );
        }
    }
    // An unfinished seed of `x` must not enter any statistic.
    make(
        &d,
        Fake {
            arm_name: "x",
            axes: vec![],
            seed: 3,
            order: 1,
            series: vec![(10, 0.1)],
            finished: false,
            recipe: R20,
            budget_axis: None,
        },
    );
    let rep = nibble_sweep::report(&d).unwrap();
    let (r, x) = (&rep.arms[0], &rep.arms[1]);
    assert_eq!((r.arm.as_str(), x.arm.as_str()), ("ref", "x"));
    let fin = r.metrics[0].1.unwrap();
    assert!((fin.mean - 2.2).abs() < 1e-12);
    assert!(
        (fin.std - 0.2).abs() < 1e-12,
        "sample std of 2.0, 2.2, 2.4 is 0.2"
    );
    assert_eq!(x.seeds, [0, 1, 2]);
    assert_eq!(x.unfinished, 1);
    assert!(
        (x.metrics[0].2.unwrap().mean - 1.5).abs() < 1e-12,
        "best = min over steps"
    );
    assert!((x.metrics[1].1.unwrap().mean - 2.0 * (2.1 + 2.25 + 2.6) / 3.0).abs() < 1e-12);
    // Paired differences 0.1, 0.05, 0.2: mean 0.116667, sample std 0.076376.
    let g = x.gap.unwrap();
    assert!((g.mean - 0.35 / 3.0).abs() < 1e-12);
    assert!((g.std - 0.076376).abs() < 1e-6);
    assert!((x.wall_secs.unwrap().mean - 11.0).abs() < 1e-12);
    assert!((x.tokens_per_sec.unwrap().mean - 1000.0).abs() < 1e-9);

    let readme = fs::read_to_string(d.join("README.md")).unwrap();
    assert!(
        readme.contains("| `x` | 3 (+1 unfinished) | 2.3167 ± 0.2566 |"),
        "{readme}"
    );
    assert!(readme.contains("+0.1167 ± 0.0764"), "{readme}");
    assert!(readme.contains("![val/loss vs step](plots/val_loss.png)"));
    let csv = fs::read_to_string(d.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(csv.lines().nth(2).unwrap().starts_with("x,x,,3,2.3166"));
    let runs = fs::read_to_string(d.join("runs.csv")).unwrap();
    assert_eq!(runs.lines().count(), 8, "header + 7 run directories");
    assert_eq!(png_size(&d.join("plots/val_loss.png")), (1100, 700));
    assert_eq!(png_size(&d.join("plots/final_gap.png")).0, 1100);

    // Regenerating from the same directories gives the same README.
    nibble_sweep::report(&d).unwrap();
    assert_eq!(fs::read_to_string(d.join("README.md")).unwrap(), readme);
}

#[test]
fn budget_table_takes_wsds_budget_checkpoints() {
    let d = scratch("budgets");
    let wsds = "[run]\nsteps = 20\n[schedule]\nkind = \"wsd-s\"\nbudgets = [10, 20]\n";
    for seed in 0..2u64 {
        for (steps, v) in [("10", 3.0), ("20", 2.0)] {
            make(
                &d,
                Fake {
                    arm_name: "ref",
                    axes: vec![("run.steps", steps)],
                    seed,
                    order: 0,
                    series: vec![(5, 9.0), (steps.parse().unwrap(), v + seed as f64)],
                    finished: true,
                    recipe: if steps == "10" {
                        "[run]\nsteps = 10\n"
                    } else {
                        R20
                    },
                    budget_axis: Some("run.steps"),
                },
            );
        }
        make(
            &d,
            Fake {
                arm_name: "wsds",
                axes: vec![],
                seed,
                order: 2,
                // 15 is not a budget and must not appear.
                series: vec![(10, 2.5), (15, 0.5), (20, 1.5 + seed as f64)],
                finished: true,
                recipe: wsds,
                budget_axis: Some("run.steps"),
            },
        );
    }
    let rep = nibble_sweep::report(&d).unwrap();
    let t = rep.budgets.unwrap();
    assert_eq!(t.budgets, [10, 20]);
    assert_eq!(t.rows.len(), 2);
    let (label, _, cells) = &t.rows[1];
    assert_eq!(label, "wsds");
    assert_eq!(cells[0].unwrap().mean, 2.5);
    assert_eq!(cells[1].unwrap().mean, 2.0); // 1.5 and 2.5
    let (label, _, cells) = &t.rows[0];
    assert_eq!(label, "ref");
    assert_eq!(cells[0].unwrap().mean, 3.5);
    assert_eq!(cells[1].unwrap().mean, 2.5);
    let readme = fs::read_to_string(d.join("README.md")).unwrap();
    assert!(
        readme.contains("| `wsds` | **2.5000 ± 0.0000** | **2.0000 ± 0.7071** |"),
        "{readme}"
    );
}
