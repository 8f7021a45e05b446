//! Robustness: random truncations and byte mutations of valid files must parse to `Ok` or `Err`
//! (and dequantize to `Ok` or `Err`), never panic and never allocate from an unchecked count.
//!
//! On Unix the work runs in a child process under `ulimit -v` (4 GiB of address space), so an
//! allocation sized by a corrupted count aborts the child and fails the test instead of
//! silently succeeding on an overcommitting kernel.

mod common;

use common::{Rng, sample_writer};
use nibble_modelfiles::GgmlType;
use nibble_modelfiles::gguf::{GgufFile, GgufWriter, Value};
use std::process::Command;

const ITERATIONS: usize = 12_000;

fn base_files() -> Vec<Vec<u8>> {
    let mut files = vec![sample_writer(11, false).0.to_bytes()];
    let mut w = GgufWriter::new();
    w.add_metadata("general.alignment", Value::U32(64)).unwrap();
    w.add_metadata(
        "tokenizer.ggml.tokens",
        Value::Array(nibble_modelfiles::Array::String(
            (0..50).map(|i| format!("tok{i}")).collect(),
        )),
    )
    .unwrap();
    let mut rng = Rng::new(12);
    for (i, ty) in [GgmlType::TQ1_0, GgmlType::MXFP4, GgmlType::Q4_0]
        .into_iter()
        .enumerate()
    {
        let v: Vec<f32> = (0..512).map(|_| rng.normal(1.0)).collect();
        w.add_tensor_f32(format!("t{i}"), ty, &[2, 256], &v)
            .unwrap();
    }
    files.push(w.to_bytes());
    files
}

/// Offset where the tensor data starts (mutations are aimed mostly before it).
fn header_len(bytes: &[u8]) -> usize {
    GgufFile::parse(bytes).unwrap().data_offset() as usize
}

fn mutate(rng: &mut Rng, base: &[u8], header: usize) -> Vec<u8> {
    let mut b = base.to_vec();
    let pos = |rng: &mut Rng, len: usize| {
        if rng.below(4) == 0 {
            rng.below(len as u64) as usize
        } else {
            rng.below(header.min(len) as u64) as usize
        }
    };
    match rng.below(5) {
        0 => b.truncate(rng.below(b.len() as u64) as usize),
        1 => {
            for _ in 0..1 + rng.below(8) {
                let p = pos(rng, b.len());
                b[p] ^= 1 + rng.below(255) as u8;
            }
        }
        2 => {
            // A huge or odd 64-bit count/length/offset/dim.
            let v =
                [u64::MAX, 1 << 60, 1 << 32, 1 << 31, 0, 1, rng.next_u64()][rng.below(7) as usize];
            let p = pos(rng, b.len()).min(b.len().saturating_sub(8));
            let n = 8.min(b.len() - p);
            b[p..p + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        3 => {
            // A small 32-bit value: type ids, n_dims, value types.
            let v = rng.below(50) as u32;
            let p = pos(rng, b.len()).min(b.len().saturating_sub(4));
            let n = 4.min(b.len() - p);
            b[p..p + n].copy_from_slice(&v.to_le_bytes()[..n]);
        }
        _ => {
            let p = pos(rng, b.len());
            b[p] ^= 1 << rng.below(8);
            let keep = b.len() - rng.below(64).min(b.len() as u64) as usize;
            b.truncate(keep);
        }
    }
    b
}

/// Parses and fully dequantizes; returns whether the parse succeeded.
fn exercise(bytes: &[u8]) -> bool {
    match GgufFile::parse(bytes) {
        Ok(f) => {
            for (k, v) in f.metadata_entries() {
                let _ = (k.len(), v.type_description(), f.get_str(k), f.get_uint(k));
            }
            for t in f.tensors() {
                if let Ok((shape, values)) = f.tensor_f32(&t.name) {
                    assert_eq!(shape.iter().product::<usize>(), values.len());
                    assert_eq!(values.len() as u64, t.n_elements());
                }
            }
            true
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            false
        }
    }
}

#[test]
#[ignore = "run by `random_mutations_never_panic_or_overallocate` in a memory-limited child"]
fn mutation_worker() {
    let bases = base_files();
    let headers: Vec<usize> = bases.iter().map(|b| header_len(b)).collect();
    let mut rng = Rng::new(0x5eed);
    let (mut ok, mut err) = (0usize, 0usize);
    for i in 0..ITERATIONS {
        let k = i % bases.len();
        let bytes = mutate(&mut rng, &bases[k], headers[k]);
        if exercise(&bytes) {
            ok += 1;
        } else {
            err += 1;
        }
    }
    common::record_figure(&format!(
        "GGUF reader mutations: {ITERATIONS} files, {ok} parsed, {err} rejected, 0 panics"
    ));
    // Both outcomes must occur, or the mutations are not reaching the parser.
    assert!(
        ok > ITERATIONS / 20 && err > ITERATIONS / 4,
        "ok {ok}, err {err}"
    );
    for b in &bases {
        assert!(exercise(b));
    }
}

#[test]
fn random_mutations_never_panic_or_overallocate() {
    let exe = std::env::current_exe().unwrap();
    let child = if cfg!(unix) {
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
            .arg(&exe)
            .args([
                "mutation_worker",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .ok()
    } else {
        None
    };
    match child {
        Some(out) => {
            let stdout = String::from_utf8_lossy(&out.stdout);
            print!("{stdout}");
            eprint!("{}", String::from_utf8_lossy(&out.stderr));
            assert!(
                out.status.success(),
                "mutation worker failed: {}",
                out.status
            );
            assert!(stdout.contains("1 passed"), "worker did not run");
        }
        None => {
            println!("no `sh`: running the mutations without an address-space limit");
            mutation_worker();
        }
    }
}
