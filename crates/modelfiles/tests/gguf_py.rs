//! Cross-checks against the real gguf-py (PyPI `gguf`, tested with 0.19.0): its `GGUFReader`
//! reads our files, and our quantizers/dequantizers agree with `gguf.quants` bit for bit.
//! Skipped (with a `skipped:` line) when python3 cannot import gguf, unless NIBBLE_PY_REFS=1.

mod common;

use common::{Rng, TempDir, python_gguf_available, random_blocks, run_py, sample_writer};
use nibble_modelfiles::gguf::{Array, GgufWriter, Value};
use nibble_modelfiles::{GgmlType, quants};
use std::ffi::OsStr;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// gguf-py's flattened view of an array: (types, leaf values rendered).
fn flatten(a: &Array, types: &mut Vec<&'static str>, vals: &mut Vec<String>, first: bool) {
    if first {
        types.push("ARRAY");
    }
    let leaf = |types: &mut Vec<&'static str>, name: &'static str| {
        if first && !a.is_empty() {
            types.push(name);
        }
    };
    match a {
        Array::U8(v) => {
            leaf(types, "UINT8");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::I8(v) => {
            leaf(types, "INT8");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::U16(v) => {
            leaf(types, "UINT16");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::I16(v) => {
            leaf(types, "INT16");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::U32(v) => {
            leaf(types, "UINT32");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::I32(v) => {
            leaf(types, "INT32");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::U64(v) => {
            leaf(types, "UINT64");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::I64(v) => {
            leaf(types, "INT64");
            vals.extend(v.iter().map(|x| x.to_string()))
        }
        Array::F32(v) => {
            leaf(types, "FLOAT32");
            vals.extend(v.iter().map(|x| hex(&x.to_le_bytes())))
        }
        Array::F64(v) => {
            leaf(types, "FLOAT64");
            vals.extend(v.iter().map(|x| hex(&x.to_le_bytes())))
        }
        Array::Bool(v) => {
            leaf(types, "BOOL");
            vals.extend(v.iter().map(|&x| (x as u8).to_string()))
        }
        Array::String(v) => {
            leaf(types, "STRING");
            vals.extend(v.iter().map(|s| hex(s.as_bytes())))
        }
        Array::Array(v) => {
            for (i, inner) in v.iter().enumerate() {
                // gguf-py records the element types of the first element only.
                flatten(inner, types, vals, first && i == 0);
            }
        }
    }
}

/// The line gguf_dump.py prints for one metadata entry, derived from the input value.
fn expected_kv_line(key: &str, v: &Value) -> String {
    let (types, vals): (Vec<&str>, Vec<String>) = match v {
        Value::U8(x) => (vec!["UINT8"], vec![x.to_string()]),
        Value::I8(x) => (vec!["INT8"], vec![x.to_string()]),
        Value::U16(x) => (vec!["UINT16"], vec![x.to_string()]),
        Value::I16(x) => (vec!["INT16"], vec![x.to_string()]),
        Value::U32(x) => (vec!["UINT32"], vec![x.to_string()]),
        Value::I32(x) => (vec!["INT32"], vec![x.to_string()]),
        Value::U64(x) => (vec!["UINT64"], vec![x.to_string()]),
        Value::I64(x) => (vec!["INT64"], vec![x.to_string()]),
        Value::F32(x) => (vec!["FLOAT32"], vec![hex(&x.to_le_bytes())]),
        Value::F64(x) => (vec!["FLOAT64"], vec![hex(&x.to_le_bytes())]),
        Value::Bool(x) => (vec!["BOOL"], vec![(*x as u8).to_string()]),
        Value::String(s) => (vec!["STRING"], vec![hex(s.as_bytes())]),
        Value::Array(a) => {
            let (mut t, mut vals) = (Vec::new(), Vec::new());
            flatten(a, &mut t, &mut vals, true);
            (t, vals)
        }
    };
    format!("kv\t{key}\t{}\t{}", types.join(","), vals.join(","))
}

#[test]
fn gguf_py_reader_sees_our_metadata_and_tensors() {
    if !python_gguf_available("gguf_py_reader_sees_our_metadata_and_tensors") {
        return;
    }
    let dir = TempDir::new("gguf-py-read");
    for alignment in [None, Some(64u32)] {
        let (mut w, tensors) = sample_writer(21, true);
        let mut metadata = common::sample_metadata(true);
        if let Some(a) = alignment {
            w.add_metadata("general.alignment", Value::U32(a)).unwrap();
            metadata.push(("general.alignment".into(), Value::U32(a)));
        }
        let align = alignment.unwrap_or(32) as u64;
        let path = dir.path().join(format!("sample-{align}.gguf"));
        w.write_file(&path).unwrap();
        let file_len = std::fs::metadata(&path).unwrap().len();

        let mut expect = vec!["version\t3".to_string(), format!("alignment\t{align}")];
        let data_size: u64 = tensors
            .iter()
            .map(|t| (t.data.len() as u64).next_multiple_of(align))
            .sum();
        expect.push(format!("data_offset\t{}", file_len - data_size));
        expect.extend(metadata.iter().map(|(k, v)| expected_kv_line(k, v)));
        let mut offset = 0u64;
        for t in &tensors {
            let dims: Vec<String> = t.dims.iter().map(|d| d.to_string()).collect();
            expect.push(format!(
                "tensor\t{}\t{}\t{}\t{}\t{}\t{}",
                t.name,
                t.ty.name(),
                dims.join(","),
                t.data.len(),
                offset,
                hex(&t.data)
            ));
            offset += (t.data.len() as u64).next_multiple_of(align);
        }
        let got = run_py("gguf_dump.py", &[path.as_os_str()]);
        let got: Vec<&str> = got.lines().collect();
        assert_eq!(got.len(), expect.len(), "line count");
        for (g, e) in got.iter().zip(&expect) {
            assert_eq!(g, e);
        }
        println!(
            "gguf-py read {} metadata keys and {} tensors (alignment {align})",
            metadata.len(),
            tensors.len()
        );
    }
}

fn prev_float(x: f32) -> f32 {
    f32::from_bits(x.to_bits() - 1)
}

/// Rows of 256 inputs, adversarial for the reference quantizers, then random ones.
fn quantizer_inputs(ty: GgmlType) -> Vec<f32> {
    let mut rng = Rng::new(31 + ty.id() as u64);
    let mut rows: Vec<Vec<f32>> = Vec::new();
    let row = |f: &mut dyn FnMut(usize) -> f32| (0..256).map(f).collect::<Vec<f32>>();
    rows.push(vec![0.0; 256]);
    rows.push(vec![-0.0; 256]);
    rows.push(row(&mut |i| if i % 3 == 0 { -0.0 } else { 0.0 }));
    rows.push(row(&mut |_| rng.normal(1.0)));
    // Large outliers among small values.
    rows.push(row(&mut |i| match i % 37 {
        0 => 1.0e4,
        5 => -3.0e4,
        _ => rng.normal(1e-3),
    }));
    // Subnormal and tiny block maxima (1/d overflows to inf).
    rows.push(row(&mut |i| (i as f32 - 128.0) * 1e-42));
    rows.push(row(&mut |i| {
        if i % 29 == 0 { f32::from_bits(1) } else { 0.0 }
    }));
    rows.push(row(&mut |i| {
        if i % 2 == 0 {
            -1.0e-39
        } else {
            rng.normal(1e-40)
        }
    }));
    // Near the f32 limit; scales overflow f16.
    rows.push(row(&mut |i| match i % 11 {
        0 => f32::MAX,
        1 => -3.0e38,
        _ => rng.normal(1e37),
    }));
    rows.push(row(&mut |i| {
        if i % 32 == 0 { 1.0e7 } else { rng.normal(1e5) }
    }));
    // Infinities.
    rows.push(row(&mut |i| match i % 64 {
        0 => f32::INFINITY,
        7 => f32::NEG_INFINITY,
        _ => rng.normal(1.0),
    }));
    // Q8_0 ties: absmax 127 makes d = 1, so k + 0.5 sits exactly half-way.
    rows.push(row(&mut |i| {
        if i % 32 == 0 {
            127.0
        } else {
            (i % 32) as f32 - 16.5
        }
    }));
    // Q4_0 ties: max -8 gives d = 1, so x + 8.5 hits integers; also equal magnitudes.
    rows.push(row(&mut |i| {
        if i % 32 == 0 {
            -8.0
        } else {
            ((i % 32) as f32 - 16.0) * 0.5
        }
    }));
    rows.push(row(&mut |i| if i % 2 == 0 { 3.0 } else { -3.0 }));
    // Ternary ties: absmax 2, values ±1 are half-way.
    rows.push(row(&mut |i| [2.0, 1.0, -1.0, 0.0, -2.0, 1.5, -0.5][i % 7]));
    // MXFP4: E2M1 midpoints at scale 1, and block maxima just below powers of two.
    rows.push(row(&mut |i| {
        let m = [0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.0, 7.0][i % 9];
        if i % 2 == 0 { m } else { -m }
    }));
    for k in [-126i32, -100, -30, -3, -1, 0, 1, 2, 3, 20, 64, 100, 127] {
        let p = prev_float(2f32.powi(k));
        rows.push(row(&mut |i| {
            if i % 32 == 5 { p } else { rng.normal(p / 8.0) }
        }));
        rows.push(row(&mut |i| {
            if i % 32 == 5 {
                -2f32.powi(k)
            } else {
                rng.normal(p / 8.0)
            }
        }));
    }
    // f16 / bf16 rounding ties, overflow and underflow.
    rows.push(row(&mut |i| {
        [
            1.0 + 2f32.powi(-11),
            1.0 + 3.0 * 2f32.powi(-11),
            65504.0,
            65519.99,
            65520.0,
            2f32.powi(-25),
            3.0 * 2f32.powi(-26),
            1e-8,
            -6.1e-5,
            f32::from_bits(0x3f80_8000),
            f32::from_bits(0x3f81_8000),
            f32::from_bits(0x3f80_8001),
            f32::from_bits(0x7f7f_ffff),
        ][i % 13]
    }));
    if matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::BF16) {
        rows.push(row(&mut |i| {
            if i % 5 == 0 {
                f32::NAN
            } else {
                rng.normal(1.0)
            }
        }));
    }
    for s in [1e-3, 0.02, 1.0, 300.0] {
        for _ in 0..8 {
            rows.push(row(&mut |_| rng.normal(s)));
        }
    }
    rows.concat()
}

fn write_f32(path: &std::path::Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

fn read_f32(path: &std::path::Path) -> Vec<f32> {
    std::fs::read(path)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Q4_1 blocks equal except for the sign of a zero d or m: numpy's SIMD min/max reductions
/// return either zero when a block's extreme is ±0 (platform-dependent); ggml's C scan and ours
/// keep the first one. Numerically the same block.
fn q4_1_same_but_zero_signs(a: &[u8], b: &[u8]) -> bool {
    let zero_field =
        |x: &[u8], y: &[u8]| x == y || (x[0] == 0 && y[0] == 0 && (x[1] | y[1]) == 0x80);
    a[4..] == b[4..] && zero_field(&a[0..2], &b[0..2]) && zero_field(&a[2..4], &b[2..4])
}

const QUANTIZED: [GgmlType; 9] = [
    GgmlType::F32,
    GgmlType::F16,
    GgmlType::BF16,
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::MXFP4,
    GgmlType::TQ1_0,
    GgmlType::TQ2_0,
];

#[test]
fn quantize_is_bit_identical_to_gguf_py() {
    if !python_gguf_available("quantize_is_bit_identical_to_gguf_py") {
        return;
    }
    let dir = TempDir::new("gguf-py-quant");
    let mut jobs = Vec::new();
    let mut ours = Vec::new();
    for ty in QUANTIZED {
        let x = quantizer_inputs(ty);
        write_f32(&dir.path().join(format!("{}.q.in", ty.name())), &x);
        ours.push((ty, x.len(), quants::quantize(ty, &x).unwrap()));
        jobs.push(format!("q:{}", ty.name()));
    }
    let mut args: Vec<&OsStr> = vec![dir.path().as_os_str()];
    args.extend(jobs.iter().map(OsStr::new));
    run_py("gguf_quants.py", &args);
    let mut failures = Vec::new();
    for (ty, n, mine) in ours {
        let theirs = std::fs::read(dir.path().join(format!("{}.q.out", ty.name()))).unwrap();
        assert_eq!(theirs.len(), mine.len(), "{ty} length");
        let ts = ty.type_size();
        let bad: Vec<usize> = (0..mine.len() / ts)
            .filter(|&b| {
                let (a, t) = (&mine[b * ts..(b + 1) * ts], &theirs[b * ts..(b + 1) * ts]);
                a != t && !(ty == GgmlType::Q4_1 && q4_1_same_but_zero_signs(a, t))
            })
            .collect();
        if let Some(&b) = bad.first() {
            failures.push(format!(
                "{ty}: {} of {} blocks differ; first block {b}:\n  ours   {}\n  gguf-py {}",
                bad.len(),
                mine.len() / ts,
                hex(&mine[b * ts..(b + 1) * ts]),
                hex(&theirs[b * ts..(b + 1) * ts])
            ));
        } else {
            let zero_sign_only = (0..mine.len() / ts)
                .filter(|&b| mine[b * ts..(b + 1) * ts] != theirs[b * ts..(b + 1) * ts])
                .count();
            println!(
                "{ty}: {n} values, {} blocks identical to gguf.quants.quantize \
                 ({zero_sign_only} of them up to the sign of a zero d/m)",
                mine.len() / ts
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn dequantize_is_bit_identical_to_gguf_py() {
    if !python_gguf_available("dequantize_is_bit_identical_to_gguf_py") {
        return;
    }
    let dir = TempDir::new("gguf-py-dequant");
    let mut rng = Rng::new(41);
    let mut cases = Vec::new();
    for &ty in GgmlType::ALL.iter().filter(|t| t.can_dequantize()) {
        // Random blocks (every code, every E8M0 exponent), plus our quantization of the
        // adversarial inputs where we have a quantizer.
        let mut bytes = random_blocks(&mut rng, ty, 4096 / ty.block_size() * 4);
        if ty.can_quantize() {
            bytes.extend(quants::quantize(ty, &quantizer_inputs(ty)).unwrap());
        }
        std::fs::write(dir.path().join(format!("{}.d.in", ty.name())), &bytes).unwrap();
        cases.push((ty, bytes));
    }
    let mut args: Vec<&OsStr> = vec![dir.path().as_os_str()];
    let jobs: Vec<String> = cases
        .iter()
        .map(|(t, _)| format!("d:{}", t.name()))
        .collect();
    args.extend(jobs.iter().map(OsStr::new));
    run_py("gguf_quants.py", &args);
    let mut failures = Vec::new();
    for (ty, bytes) in cases {
        let mine = quants::dequantize(ty, &bytes).unwrap();
        let theirs = read_f32(&dir.path().join(format!("{}.d.out", ty.name())));
        assert_eq!(mine.len(), theirs.len(), "{ty} length");
        let bad: Vec<usize> = (0..mine.len())
            .filter(|&i| mine[i].to_bits() != theirs[i].to_bits())
            .collect();
        if let Some(&i) = bad.first() {
            failures.push(format!(
                "{ty}: {} of {} values differ; first at {i}: ours {:e} ({:#010x}), gguf-py {:e} ({:#010x})",
                bad.len(),
                mine.len(),
                mine[i],
                mine[i].to_bits(),
                theirs[i],
                theirs[i].to_bits()
            ));
        } else {
            println!(
                "{ty}: {} values bit-identical to gguf.quants.dequantize",
                mine.len()
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn writer_output_matches_a_gguf_py_style_layout_for_a_tiny_llama() {
    // Structural rules of llama.cpp's loader on a llama-like file, checked through gguf-py.
    if !python_gguf_available("writer_output_matches_a_gguf_py_style_layout_for_a_tiny_llama") {
        return;
    }
    let dir = TempDir::new("gguf-py-llama");
    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", Value::String("llama".into()))
        .unwrap();
    w.add_metadata("llama.block_count", Value::U32(1)).unwrap();
    w.add_metadata("llama.rope.freq_base", Value::F32(1.0e5))
        .unwrap();
    let mut rng = Rng::new(51);
    let emb: Vec<f32> = (0..64 * 256).map(|_| rng.normal(0.02)).collect();
    w.add_tensor_f32("token_embd.weight", GgmlType::Q8_0, &[64, 256], &emb)
        .unwrap();
    let norm: Vec<f32> = (0..256).map(|_| 1.0 + rng.normal(0.01)).collect();
    w.add_tensor_f32("output_norm.weight", GgmlType::F32, &[256], &norm)
        .unwrap();
    let path = dir.path().join("tiny.gguf");
    w.write_file(&path).unwrap();
    let out = dir.path().join("emb.f32");
    let shape = run_py(
        "gguf_tensor_f32.py",
        &[
            path.as_os_str(),
            OsStr::new("token_embd.weight"),
            out.as_os_str(),
        ],
    );
    assert_eq!(shape.trim(), "64,256");
    let theirs = read_f32(&out);
    let f = nibble_modelfiles::GgufFile::open(&path).unwrap();
    let (shape, mine) = f.tensor_f32("token_embd.weight").unwrap();
    assert_eq!(shape, vec![64, 256]);
    assert!(
        mine.iter()
            .zip(&theirs)
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
}
