//! N:M sparsity through the trainer: SDGF's frames switch the pattern at exactly their first
//! update (counted from the sparse phase's start), resume is bit-identical across a frame and
//! the hard boundary, rules give modules their own pattern, a mask composes with Tequila, the
//! gradient probe is logged, and bad `[sparsity]` values are refused at their file, line and key.

mod common;

use common::{assert_refused_at, ckpt_bytes, ckpt_tensors, metric, recipe_with, run, tmp_dir};

/// Kept entries per group of `m` consecutive values (all groups equal, else a panic).
fn kept_per_group(mask: &[f32], m: usize) -> usize {
    let counts: Vec<usize> = mask
        .chunks(m)
        .map(|g| g.iter().filter(|&&v| v == 1.0).count())
        .collect();
    assert!(counts.windows(2).all(|c| c[0] == c[1]), "{counts:?}");
    counts[0]
}

/// 12 updates: dense 0..3, SDGF 3..9 in frames 3:4 (3..5), 2:4 (5..7), 1:4 (7..9), hard 9..12.
#[test]
fn sdgf_switches_at_frame_boundaries_and_resumes_bit_identically() {
    let tmp = tmp_dir("sdgf");
    let body = "\n[sparsity]\nmethod = \"sdgf\"\npattern = \"1:4\"\nmodules = [\"model.layers.*.mlp.*\"]\n\
                dense_fraction = 0.25\nfinetune_fraction = 0.25\nmask_interval = 100\n";
    let keep_all =
        |name| recipe_with(&tmp, name, 12, body).replace("keep_last = 2", "keep_last = 9");
    let s = run(&keep_all("straight"), false, None).unwrap();
    // After update s the mask is the one update s's forward uses: frame_at(s).
    let density = metric(&s.run_dir, "sparsity/model.layers.0.mlp.gate_proj/density");
    let frame = metric(&s.run_dir, "sparsity/sdgf_frame");
    assert_eq!(density.len(), 12);
    for ((step, d), (_, f)) in density.iter().zip(&frame) {
        let (want_d, want_f) = match step {
            0..=4 => (0.75, 0.0),
            5 | 6 => (0.5, 1.0),
            _ => (0.25, 2.0),
        };
        assert_eq!((*d, *f), (want_d, want_f), "after update {step}");
    }
    // Checkpoints: 3:4 masks at 3, 2:4 at 6, 1:4 at 9 and 12 (the hard phase's, frozen), and
    // exact zeros at the pruned weights after the hard updates.
    for (step, kept) in [(3, 3), (6, 2), (9, 1), (12, 1)] {
        let t = ckpt_tensors(&s.run_dir, step);
        let mask = &t["model.layers.1.mlp.down_proj.weight_mask"].1;
        assert_eq!(kept_per_group(mask, 4), kept, "checkpoint {step}");
        if step == 12 {
            let w = &t["model.layers.1.mlp.down_proj.weight"].1;
            assert!(w.iter().zip(mask).all(|(w, m)| *m == 1.0 || *w == 0.0));
            assert_eq!(
                mask,
                &ckpt_tensors(&s.run_dir, 9)["model.layers.1.mlp.down_proj.weight_mask"].1
            );
        }
    }
    // Cut after update 4: the resume starts at 3 and crosses the frames at 5 and 7 and the hard
    // boundary at 9.
    let cut = keep_all("resumed");
    run(&cut, false, Some(4)).unwrap();
    let r = run(&cut, true, None).unwrap();
    assert!(ckpt_bytes(&s.run_dir, 12) == ckpt_bytes(&r.run_dir, 12));
    assert_eq!(s.final_eval.loss.to_bits(), r.final_eval.loss.to_bits());
    // Cut after update 2 with a checkpoint every update: the resume starts inside the dense
    // phase (updates 0..3) and crosses into the sparse one.
    let dense =
        keep_all("resumed-dense").replace("[checkpoint]\nevery = 3", "[checkpoint]\nevery = 1");
    assert!(dense.contains("[checkpoint]\nevery = 1"));
    run(&dense, false, Some(2)).unwrap();
    let r = run(&dense, true, None).unwrap();
    assert!(
        ckpt_bytes(&s.run_dir, 12) == ckpt_bytes(&r.run_dir, 12),
        "resume from the dense phase"
    );
    assert_eq!(s.final_eval.loss.to_bits(), r.final_eval.loss.to_bits());
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Attention at 2:4 by a rule, the FFN at 1:8 along the output dimension, under Tequila; the
/// gradient probe (variance of the weight gradient on pruned and kept entries) is logged.
#[test]
fn rules_compose_with_tequila_and_log_the_gradient_probe() {
    let tmp = tmp_dir("nm-rules");
    let body = "\n[sparsity]\nmethod = \"sr-ste\"\npattern = \"1:8\"\ndimension = \"output\"\n\
                modules = [\"model.layers.*.mlp.*\"]\n\n[[sparsity.rules]]\n\
                modules = [\"model.layers.*.self_attn.*\"]\npattern = \"2:4\"\ndimension = \"input\"\n\n\
                [qat]\nmethod = \"tequila\"\nmodules = [\"model.layers.*\"]\n";
    let s = run(&recipe_with(&tmp, "rules", 4, body), false, None).unwrap();
    assert!(s.final_eval.loss.is_finite());
    let t = ckpt_tensors(&s.run_dir, 3);
    let (q, [_, cols]) = (
        &t["model.layers.0.self_attn.q_proj.weight_mask"].1,
        [0, 128],
    );
    assert_eq!(cols, 128);
    assert_eq!(kept_per_group(q, 4), 2, "attention 2:4 along inputs");
    // The FFN's 1:8 runs down columns: transpose, then groups of 8.
    let (up, shape) = (
        &t["model.layers.0.mlp.up_proj.weight_mask"].1,
        t["model.layers.0.mlp.up_proj.weight_mask"].0.clone(),
    );
    let (rows, cols) = (shape[0], shape[1]);
    let transposed: Vec<f32> = (0..cols)
        .flat_map(|c| (0..rows).map(move |r| (r, c)))
        .map(|(r, c)| up[r * cols + c])
        .collect();
    assert_eq!(kept_per_group(&transposed, 8), 1, "FFN 1:8 along outputs");
    for key in ["sparsity/grad_var_pruned", "sparsity/grad_var_kept"] {
        let v = metric(&s.run_dir, key);
        assert_eq!(v.len(), 4, "{key}");
        assert!(
            v.iter().all(|(_, x)| x.is_finite() && *x > 0.0),
            "{key}: {v:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

/// Each bad value is refused before any work, at its file, line and key.
#[test]
fn bad_sparsity_recipes_name_file_line_and_key() {
    let dir = tmp_dir("nm-bad");
    let cases: [(&str, &str, &str); 6] = [
        (
            "[sparsity]\nmethod = \"ste\"\npattern = \"4:4\"\n",
            "sparsity.pattern",
            ":3:",
        ),
        // M = 3 divides neither 128 (d_model) nor 512 (d_ff).
        (
            "[sparsity]\nmethod = \"ste\"\npattern = \"1:3\"\n",
            "sparsity.pattern",
            ":3:",
        ),
        // down_proj has 128 outputs.
        (
            "[sparsity]\nmethod = \"ste\"\n\n[[sparsity.rules]]\nmodules = [\"model.layers.*.mlp.down_proj\"]\npattern = \"1:256\"\ndimension = \"output\"\n",
            "sparsity.rules[0].pattern",
            ":6:",
        ),
        // A rule selecting no layer is the trainer's check (nibble-cli's train_refusals test).
        // Densify to 1:32 starts at 1:256, which 128 inputs cannot hold.
        (
            "[sparsity]\nmethod = \"sdgf\"\npattern = \"1:32\"\nsdgf_type = \"densify\"\n",
            "sparsity.pattern",
            ":3:",
        ),
        (
            "[sparsity]\nmethod = \"sdgf\"\nsdgf_type = \"custom\"\nsdgf_patterns = [\"3:4\", \"1:4\"]\n",
            "sparsity.sdgf_patterns[1]",
            ":4:",
        ),
        // Quartet's forward Hadamard on the weight would smear the pattern.
        (
            "[precision]\ndefault = \"quartet-mxfp4\"\n\n[sparsity]\nmethod = \"ste\"\n",
            "sparsity.modules",
            ":4:",
        ),
    ];
    assert_refused_at(&dir, &cases);
}
