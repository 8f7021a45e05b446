//! Grid expansion: arms × axes × seeds, skip_axes, labels and directories, overrides reaching
//! the recipe, and errors that name the file, line and key (or the arm).

mod common;

use common::{BASE, scratch, write};
use nibble_sweep::Plan;
use nibble_train::sections::Device;

const SWEEP: &str = r#"[sweep]
name = "t"
base = "base.toml"
seeds = [3, 5]
set = { "optim.lr" = 0.01 }

[axes]
"run.steps" = [10, 20]
"precision.default" = ["f32", "bf16"]

[[arms]]
name = "cos"
set = { schedule = { kind = "cosine" } }

[[arms]]
name = "wsds"
skip_axes = ["run.steps"]
set = { "run.steps" = 20, "schedule.kind" = "wsd-s", "schedule.budgets" = [10, 20] }

[report]
reference = "cos"
"#;

#[test]
fn grid_is_arms_times_axes_times_seeds() {
    let d = scratch("grid");
    write(&d, "base.toml", BASE);
    let plan = Plan::load(&write(&d, "sweep.toml", SWEEP)).unwrap();
    // Keys in order, values in file order. cos: 2 steps x 2 precisions x 2 seeds = 8; wsds skips run.steps: 2 x 2 = 4.
    assert_eq!(plan.runs.len(), 12);
    let arms: Vec<&str> = plan.runs.iter().map(|r| r.arm.as_str()).collect();
    assert_eq!(
        arms.iter().step_by(2).copied().collect::<Vec<_>>(),
        [
            "cos,default=f32,steps=10",
            "cos,default=f32,steps=20",
            "cos,default=bf16,steps=10",
            "cos,default=bf16,steps=20",
            "wsds,default=f32",
            "wsds,default=bf16",
        ]
    );
    let mut dirs: Vec<_> = plan.runs.iter().map(|r| r.run_dir.clone()).collect();
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), 12, "every run has its own directory");
    assert!(
        plan.runs[0]
            .run_dir
            .ends_with("runs/cos_default-f32_steps-10/seed-3")
    );
    for r in &plan.runs {
        let rc = &r.recipe;
        assert!(r.seed == 3 || r.seed == 5);
        assert_eq!(rc.run.seed, r.seed, "seed drives init and data order");
        assert_eq!(rc.optim.lr, 0.01, "sweep.set reaches every run");
        assert_eq!(rc.run.device, Device::Cpu);
        let steps = r.axis_values.iter().find(|a| a.0 == "run.steps");
        match r.arm_name.as_str() {
            "cos" => assert_eq!(rc.run.steps.to_string(), steps.unwrap().1),
            _ => {
                assert!(steps.is_none());
                assert_eq!(rc.run.steps, 20);
                assert_eq!(rc.schedule.budgets, Some(vec![10, 20]));
            }
        }
        let prec = &r
            .axis_values
            .iter()
            .find(|a| a.0 == "precision.default")
            .unwrap()
            .1;
        assert!(r.merged_toml.contains(&format!("default = \"{prec}\"")));
    }
    // Same arm and axes, different seed: same definition except the seed.
    assert_ne!(plan.runs[0].hash, plan.runs[1].hash);
    let mut hashes: Vec<_> = plan.runs.iter().map(|r| r.hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), 12);
}

#[test]
fn no_arms_means_one_base_arm() {
    let d = scratch("noarms");
    write(&d, "base.toml", BASE);
    let text = "[sweep]\nname = \"t\"\nbase = \"base.toml\"\n[axes]\n\"optim.lr\" = [0.1, 0.2]\n";
    let plan = Plan::load(&write(&d, "sweep.toml", text)).unwrap();
    let arms: Vec<&str> = plan.runs.iter().map(|r| r.arm.as_str()).collect();
    assert_eq!(arms, ["lr=0.1", "lr=0.2"]);
    let text = "[sweep]\nname = \"t\"\nbase = \"base.toml\"\nseeds = [1]\n";
    let plan = Plan::load(&write(&d, "sweep.toml", text)).unwrap();
    assert_eq!(plan.runs.len(), 1);
    assert_eq!(plan.runs[0].arm, "base");
}

fn load_err(text: &str) -> String {
    let d = scratch("err");
    write(&d, "base.toml", BASE);
    Plan::load(&write(&d, "sweep.toml", text))
        .expect_err("must fail")
        .to_string()
}

#[test]
fn errors_name_the_line_key_or_arm() {
    let e = load_err("[sweep]\nname = \"t\"\nbase = \"base.toml\"\nsedes = [1]\n");
    assert!(e.contains("sweep.toml:4:") && e.contains("sedes"), "{e}");
    let e = load_err("[sweep]\nname = \"t\"\nbase = \"base.toml\"\nset = { \"run.seed\" = 3 }\n");
    assert!(e.contains("sweep.toml:4:") && e.contains("run.seed"), "{e}");
    let e = load_err(
        "[sweep]\nname = \"t\"\nbase = \"base.toml\"\n[[arms]]\nname = \"a\"\n\
         set = { \"schedule.kind\" = \"cosinus\" }\n",
    );
    assert!(e.contains("arm `a`") && e.contains("schedule.kind"), "{e}");
    let e = load_err(
        "[sweep]\nname = \"t\"\nbase = \"base.toml\"\n[[arms]]\nname = \"a\"\n\
         [report]\nreference = \"b\"\n",
    );
    assert!(
        e.contains("sweep.toml:7:") && e.contains("report.reference"),
        "{e}"
    );
    let e = load_err(
        "[sweep]\nname = \"t\"\nbase = \"base.toml\"\n[[arms]]\nname = \"a\"\nskip_axes = [\"x\"]\n",
    );
    assert!(e.contains("skip_axes") && e.contains("not an axis"), "{e}");
    let e = load_err("[sweep]\nname = \"t\"\nbase = \"nope.toml\"\n");
    assert!(e.contains("nope.toml"), "{e}");
}
