//! TensorBoard events after a resume: the steps the resumed run redoes appear once per scalar
//! tag, not twice; a record cut short by a kill is dropped while the complete ones keep their
//! bytes. The event files are read here with an independent TFRecord/proto reader (and with
//! Python's EventAccumulator when available).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{metric, recipe_with, run, tmp_dir};
use nibble_train::metrics::truncate_events;

/// The event files of a `tb` directory, in name (= creation time) order.
fn event_files(tb: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(tb)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains("tfevents")
        })
        .collect();
    files.sort();
    files
}

/// The payloads of a TFRecord file; the framing must cover the file exactly.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push(&bytes[at + 12..at + 12 + n]);
        at += 12 + n + 4;
    }
    assert_eq!(at, bytes.len(), "records overrun the file");
    out
}

/// Protobuf fields of a message: (field number, varint value or bytes).
fn fields(mut p: &[u8]) -> Vec<(u64, u64, &[u8])> {
    fn var(p: &mut &[u8]) -> u64 {
        let mut v = 0;
        let mut shift = 0;
        loop {
            let b = p[0];
            *p = &p[1..];
            v |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !p.is_empty() {
        let key = var(&mut p);
        let size = match key & 7 {
            0 => {
                out.push((key >> 3, var(&mut p), &[][..]));
                continue;
            }
            1 => 8,
            2 => var(&mut p) as usize,
            5 => 4,
            w => panic!("wire type {w}"),
        };
        out.push((key >> 3, 0, &p[..size]));
        p = &p[size..];
    }
    out
}

/// tag → (step, value) of every scalar in the directory's event files.
fn scalars(tb: &Path) -> BTreeMap<String, Vec<(u64, f32)>> {
    let mut out: BTreeMap<String, Vec<(u64, f32)>> = BTreeMap::new();
    for f in event_files(tb) {
        let bytes = fs::read(&f).unwrap();
        for event in records(&bytes) {
            let ev = fields(event);
            let step = ev.iter().find(|f| f.0 == 2).map_or(0, |f| f.1);
            // Event.summary (5) → Summary.value (1) → Value.tag (1), Value.simple_value (2).
            for (_, _, summary) in ev.iter().filter(|f| f.0 == 5) {
                for (_, _, value) in fields(summary).into_iter().filter(|f| f.0 == 1) {
                    let v = fields(value);
                    let tag = v.iter().find(|f| f.0 == 1).unwrap().2;
                    let x = v.iter().find(|f| f.0 == 2).unwrap().2;
                    out.entry(String::from_utf8(tag.to_vec()).unwrap())
                        .or_default()
                        .push((step, f32::from_le_bytes(x.try_into().unwrap())));
                }
            }
        }
    }
    out
}

fn python_tensorboard() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import tensorboard"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1") {
        panic!("NIBBLE_PY_REFS=1 but python3 cannot import tensorboard");
    }
    if !ok {
        println!("skipped: python tensorboard is not installed");
    }
    ok
}

#[test]
fn resumed_run_logs_each_step_once_per_tag() {
    let tmp = tmp_dir("tb-resume");
    let text = recipe_with(&tmp, "tb", 12, "");
    // Checkpoints at 3 and 6; step 7 is logged, then lost with the interruption.
    run(&text, false, Some(7)).unwrap();
    // The writer names its file by second and pid: a resume within the same second of this
    // process would reuse (and truncate) the first file, which a new CLI process never does.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let r = run(&text, true, None).unwrap();
    let tb = r.run_dir.join("tb");
    assert_eq!(event_files(&tb).len(), 2, "one file per writer session");
    let got = scalars(&tb);
    for tag in ["train/loss", "train/lr", "val/loss"] {
        assert!(got.contains_key(tag), "{tag} missing: {:?}", got.keys());
    }
    for (tag, points) in &got {
        let steps: Vec<u64> = points.iter().map(|p| p.0).collect();
        let mut once = steps.clone();
        once.dedup();
        assert_eq!(steps, once, "{tag}: a step logged twice");
    }
    let steps = |tag: &str| got[tag].iter().map(|p| p.0).collect::<Vec<_>>();
    assert_eq!(steps("train/loss"), (1..=12).collect::<Vec<_>>());
    assert_eq!(steps("val/loss"), [3, 6, 9, 12]);
    // The same values as metrics.jsonl, to f32 precision.
    let jsonl = metric(&r.run_dir, "train/loss");
    for ((s, v), (s2, v2)) in got["train/loss"].iter().zip(&jsonl) {
        assert_eq!(s, s2);
        let v = f64::from(*v);
        assert!((v - v2).abs() <= 1e-6 * v2.abs(), "step {s}: {v} vs {v2}");
    }

    // Python's reader, with orphan purging off so that duplicates would show.
    if python_tensorboard() {
        let script = r#"
import sys, json
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
ea = EventAccumulator(sys.argv[1], purge_orphaned_data=False); ea.Reload()
print(json.dumps({t: [e.step for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
"#;
        let py = Command::new("python3")
            .args(["-c", script])
            .arg(&tb)
            .output()
            .unwrap();
        assert!(
            py.status.success(),
            "{}",
            String::from_utf8_lossy(&py.stderr)
        );
        let tb_steps: BTreeMap<String, Vec<u64>> = serde_json::from_slice(&py.stdout).unwrap();
        assert_eq!(
            tb_steps.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>()
        );
        for (tag, s) in &tb_steps {
            assert_eq!(
                *s,
                got[tag].iter().map(|p| p.0).collect::<Vec<_>>(),
                "{tag}"
            );
        }
    }
    let _ = fs::remove_dir_all(&tmp);
}

#[test]
fn a_torn_trailing_record_is_dropped_and_kept_records_keep_their_bytes() {
    let tmp = tmp_dir("tb-torn");
    let text = recipe_with(&tmp, "torn", 4, "");
    let r = run(&text, false, None).unwrap();
    let tb = r.run_dir.join("tb");
    let file = event_files(&tb).pop().unwrap();
    let whole = fs::read(&file).unwrap();
    // The byte length of the records up to the last one of step 2.
    let mut at = 0;
    let mut end_of_step_2 = 0;
    while at < whole.len() {
        let n = u64::from_le_bytes(whole[at..at + 8].try_into().unwrap()) as usize;
        let step = fields(&whole[at + 12..at + 12 + n])
            .iter()
            .find(|f| f.0 == 2)
            .map_or(0, |f| f.1);
        at += 16 + n;
        if step <= 2 {
            end_of_step_2 = at;
        }
    }
    // A write cut short: the first 20 bytes of a copy of the last record.
    let mut torn = whole.clone();
    let last_start = whole.len() - (16 + fields_len_of_last(&whole));
    torn.extend_from_slice(&whole[last_start..last_start + 20]);
    fs::write(&file, &torn).unwrap();
    truncate_events(&tb, 2).unwrap();
    assert_eq!(fs::read(&file).unwrap(), whole[..end_of_step_2]);
    // Keeping every step drops only the torn tail.
    fs::write(&file, &torn).unwrap();
    truncate_events(&tb, 100).unwrap();
    assert_eq!(fs::read(&file).unwrap(), whole);
    // A corrupted payload CRC ends the file there too.
    let mut bad = whole.clone();
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    fs::write(&file, &bad).unwrap();
    truncate_events(&tb, 100).unwrap();
    assert_eq!(fs::read(&file).unwrap(), whole[..last_start]);
    // No tb directory: nothing to do.
    truncate_events(&tmp.join("absent"), 1).unwrap();
    let _ = fs::remove_dir_all(&tmp);
}

/// The payload length of the last record of a well-formed file.
fn fields_len_of_last(bytes: &[u8]) -> usize {
    records(bytes).last().unwrap().len()
}
