//! Writer → reader round trips, hand-built files, and the errors for invalid input.

mod common;

use common::{Rng, TempDir, sample_metadata, sample_writer};
use nibble_modelfiles::gguf::{Array, GgufFile, GgufWriter, Value};
use nibble_modelfiles::{GgmlType, GgufErrorKind, quants};

/// Little-endian byte builder for hand-made files (independent of the writer).
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u32(mut self, v: u32) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend(v.to_le_bytes());
        self
    }
    fn str(self, s: &str) -> Self {
        let mut b = self.u64(s.len() as u64);
        b.0.extend(s.as_bytes());
        b
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend(b);
        self
    }
    fn pad(mut self, align: usize) -> Self {
        self.0.resize(self.0.len().next_multiple_of(align), 0);
        self
    }
    fn header(n_tensors: u64, n_kv: u64) -> Self {
        Bytes::default()
            .raw(b"GGUF")
            .u32(3)
            .u64(n_tensors)
            .u64(n_kv)
    }
}

/// One F32 tensor "w", dims [2, 3], values 0..6, plus two metadata entries.
fn hand_file() -> Vec<u8> {
    let mut b = Bytes::header(1, 2)
        .str("general.architecture")
        .u32(8)
        .str("llama")
        .str("a.n")
        .u32(4)
        .u32(7)
        .str("w")
        .u32(2)
        .u64(2)
        .u64(3)
        .u32(0)
        .u64(0)
        .pad(32);
    for i in 0..6 {
        b = b.raw(&(i as f32).to_le_bytes());
    }
    b.pad(32).0
}

#[test]
fn hand_built_file_parses_and_the_writer_reproduces_it() {
    let bytes = hand_file();
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u32("a.n").unwrap(), 7);
    // Header 24 + metadata 45 + 19 + tensor info 41 = 129 bytes, padded to 160.
    assert_eq!(f.data_offset(), 160);
    let t = &f.tensors()[0];
    assert_eq!(
        (t.name.as_str(), t.ggml_type, t.dims.as_slice()),
        ("w", GgmlType::F32, &[2u64, 3][..])
    );
    let (shape, v) = f.tensor_f32("w").unwrap();
    assert_eq!(shape, vec![3, 2]);
    assert_eq!(v, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);

    let mut w = GgufWriter::new();
    w.add_metadata("general.architecture", Value::String("llama".into()))
        .unwrap();
    w.add_metadata("a.n", Value::U32(7)).unwrap();
    w.add_tensor_f32("w", GgmlType::F32, &[3, 2], &v).unwrap();
    assert_eq!(w.to_bytes(), bytes);
}

#[test]
fn metadata_of_every_type_round_trips() {
    let (w, _) = sample_writer(1, false);
    let f = GgufFile::parse(&w.to_bytes()).unwrap();
    let expect = sample_metadata(false);
    assert_eq!(f.metadata_entries(), expect.as_slice());
    // Float equality ignores the sign of zero: check bits too.
    let Some(Value::Array(Array::F32(v))) = f.metadata("test.arr_f32") else {
        panic!()
    };
    assert_eq!(v[1].to_bits(), 0x8000_0000);
    let Some(Value::Array(Array::F64(v))) = f.metadata("test.arr_f64") else {
        panic!()
    };
    assert_eq!(v[1].to_bits(), 0x8000_0000_0000_0000);
    // Typed getters, strict and lenient.
    assert_eq!(f.get_u32("test.u32").unwrap(), 4_000_000_000);
    assert_eq!(f.get_i64("test.i64").unwrap(), i64::MIN + 1);
    assert_eq!(f.get_f64("test.f64").unwrap(), -1.0e300);
    assert!(f.get_bool("test.bool_true").unwrap());
    assert_eq!(f.get_str_array("test.arr_string").unwrap()[2], "Ġt ✓");
    assert_eq!(f.get_i32_array("test.arr_i32").unwrap(), &[-1, 3, i32::MIN]);
    assert_eq!(f.get_uint("test.u16").unwrap(), 60000);
    let e = f.get_u32("test.u16").unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::WrongType { .. }), "{e}");
    assert!(
        e.to_string().contains("test.u16") && e.to_string().contains("UINT16"),
        "{e}"
    );
    let e = f.get_u32("missing.key").unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::MissingKey { .. }), "{e}");
    assert!(f.get_uint("test.i8").is_err()); // negative
}

#[test]
fn tensors_of_every_type_round_trip() {
    let (w, tensors) = sample_writer(2, false);
    let bytes = w.to_bytes();
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.tensors().len(), tensors.len());
    assert_eq!(f.data_offset() % 32, 0);
    let mut offset = 0u64;
    for (t, s) in f.tensors().iter().zip(&tensors) {
        assert_eq!(t.name, s.name);
        assert_eq!(t.ggml_type, s.ty);
        assert_eq!(t.dims, s.dims);
        assert_eq!(t.n_bytes, s.data.len() as u64);
        assert_eq!(t.offset, offset, "{}", t.name);
        offset += (s.data.len() as u64).next_multiple_of(32);
        assert_eq!(f.tensor_data(&t.name).unwrap(), s.data.as_slice());
        let shape: Vec<usize> = s.dims.iter().rev().map(|&d| d as usize).collect();
        assert_eq!(t.shape(), shape);
        match f.tensor_f32(&t.name) {
            Ok((got_shape, values)) => {
                assert!(s.ty.can_dequantize());
                assert_eq!(got_shape, shape);
                assert_eq!(values.len() as u64, t.n_elements());
                let direct = quants::dequantize(s.ty, &s.data).unwrap();
                assert!(
                    values
                        .iter()
                        .zip(&direct)
                        .all(|(a, b)| a.to_bits() == b.to_bits())
                );
            }
            Err(e) => {
                assert!(!s.ty.can_dequantize(), "{e}");
                assert!(matches!(e.kind, GgufErrorKind::UnsupportedType { .. }));
                assert!(e.to_string().contains(&s.name), "{e}");
            }
        }
    }
    // Data section ends with the last tensor's padding.
    assert_eq!(bytes.len() as u64, f.data_offset() + offset);
}

#[test]
fn quantized_tensors_stay_close_to_their_source() {
    let mut rng = Rng::new(3);
    // (type, bound on |error| / block absmax)
    let cases = [
        (GgmlType::F32, 0.0),
        (GgmlType::F16, 1e-3),
        (GgmlType::BF16, 4e-3),
        (GgmlType::Q8_0, 4.1e-3),
        (GgmlType::Q4_0, 0.126),
        (GgmlType::Q4_1, 0.07),
        (GgmlType::MXFP4, 0.5),
        (GgmlType::TQ1_0, 0.5),
        (GgmlType::TQ2_0, 0.5),
    ];
    for (ty, bound) in cases {
        let values: Vec<f32> = (0..4 * 256).map(|_| rng.normal(0.02)).collect();
        let mut w = GgufWriter::new();
        w.add_tensor_f32("t", ty, &[4, 256], &values).unwrap();
        let f = GgufFile::parse(&w.to_bytes()).unwrap();
        let (shape, got) = f.tensor_f32("t").unwrap();
        assert_eq!(shape, vec![4, 256]);
        for (blk_src, blk_got) in values
            .chunks(ty.block_size().max(32))
            .zip(got.chunks(ty.block_size().max(32)))
        {
            let amax = blk_src.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (a, b) in blk_src.iter().zip(blk_got) {
                assert!(
                    (a - b).abs() <= bound * amax + 1e-12,
                    "{ty}: {a} vs {b} (absmax {amax})"
                );
            }
        }
    }
    // Ternary data is exact in TQ1_0/TQ2_0 when the scale is an f16.
    let tern: Vec<f32> = (0..512)
        .map(|i| [0.0, 0.125, -0.125][(i * 5 + i / 7) % 3])
        .collect();
    for ty in [GgmlType::TQ1_0, GgmlType::TQ2_0] {
        let q = quants::quantize(ty, &tern).unwrap();
        assert_eq!(quants::dequantize(ty, &q).unwrap(), tern, "{ty}");
    }
}

#[test]
fn output_is_deterministic_and_respects_alignment() {
    let a = sample_writer(4, false).0.to_bytes();
    let b = sample_writer(4, false).0.to_bytes();
    assert_eq!(a, b);

    let mut w = GgufWriter::new();
    w.add_metadata("general.alignment", Value::U32(64)).unwrap();
    let mut rng = Rng::new(5);
    for i in 0..3 {
        let v: Vec<f32> = (0..32 * (i + 1)).map(|_| rng.normal(1.0)).collect();
        w.add_tensor_f32(format!("t{i}"), GgmlType::Q8_0, &[i + 1, 32], &v)
            .unwrap();
    }
    let bytes = w.to_bytes();
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.alignment(), 64);
    assert_eq!(f.data_offset() % 64, 0);
    assert_eq!(bytes.len() % 64, 0);
    let offsets: Vec<u64> = f.tensors().iter().map(|t| t.offset).collect();
    assert_eq!(offsets, vec![0, 64, 192]); // 34, 68, 102 bytes, padded to 64, 128, 128
}

#[test]
fn v2_files_are_read() {
    let mut bytes = hand_file();
    bytes[4] = 2;
    let f = GgufFile::parse(&bytes).unwrap();
    assert_eq!(f.version(), 2);
    assert_eq!(f.tensor_f32("w").unwrap().1[5], 5.0);
}

#[test]
fn writer_rejects_invalid_input() {
    let mut w = GgufWriter::new();
    w.add_metadata("k", Value::U8(1)).unwrap();
    let e = w.add_metadata("k", Value::U8(2)).unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::DuplicateKey { .. }));
    for bad in [Value::U32(48), Value::U32(0), Value::U64(32)] {
        let e = w.add_metadata("general.alignment", bad).unwrap_err();
        assert!(matches!(e.kind, GgufErrorKind::BadAlignment { .. }), "{e}");
    }
    let mut deep = Array::U8(vec![1]);
    for _ in 0..8 {
        deep = Array::Array(vec![deep]);
    }
    let e = w.add_metadata("deep", Value::Array(deep)).unwrap_err();
    assert!(
        matches!(e.kind, GgufErrorKind::NestingTooDeep { .. }),
        "{e}"
    );

    let long = "x".repeat(64);
    let e = w
        .add_tensor(&long, GgmlType::F32, &[1], vec![0; 4])
        .unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::NameTooLong { len: 64 }));
    w.add_tensor("x".repeat(63), GgmlType::F32, &[1], vec![0; 4])
        .unwrap();
    w.add_tensor("a", GgmlType::F32, &[1], vec![0; 4]).unwrap();
    let e = w
        .add_tensor("a", GgmlType::F32, &[1], vec![0; 4])
        .unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::DuplicateTensor));
    let e = w
        .add_tensor("b", GgmlType::Q4_0, &[32, 2], vec![0; 35])
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            GgufErrorKind::LengthMismatch {
                expected: 36,
                got: 35,
                ..
            }
        ),
        "{e}"
    );
    let e = w
        .add_tensor_f32("c", GgmlType::Q4_0, &[2, 48], &[0.0; 96])
        .unwrap_err();
    assert!(
        matches!(
            e.kind,
            GgufErrorKind::NotBlockMultiple {
                count: 48,
                block: 32,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("tensor 'c'"), "{e}");
    let e = w
        .add_tensor_f32("d", GgmlType::F32, &[1, 1, 1, 1, 1], &[0.0])
        .unwrap_err();
    assert!(
        matches!(e.kind, GgufErrorKind::BadDimCount { n_dims: 5 }),
        "{e}"
    );
    let e = w
        .add_tensor_f32("e", GgmlType::F32, &[2, 2], &[0.0; 3])
        .unwrap_err();
    assert!(
        matches!(e.kind, GgufErrorKind::LengthMismatch { .. }),
        "{e}"
    );
    let e = w
        .add_tensor_f32("f", GgmlType::Q4_K, &[256], &[0.0; 256])
        .unwrap_err();
    assert!(
        matches!(e.kind, GgufErrorKind::UnsupportedType { .. }),
        "{e}"
    );
}

fn parse_err(bytes: &[u8]) -> GgufErrorKind {
    match GgufFile::parse(bytes) {
        Ok(_) => panic!("parsed a corrupt file"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e.kind
        }
    }
}

#[test]
fn reader_rejects_corrupt_files() {
    use GgufErrorKind as K;
    let good = hand_file();
    let mut b = good.clone();
    b[0] = b'X';
    assert!(matches!(parse_err(&b), K::BadMagic { .. }));
    let mut b = good.clone();
    b[4] = 1;
    assert!(matches!(
        parse_err(&b),
        K::UnsupportedVersion { version: 1, .. }
    ));
    let mut b = good.clone();
    b[4..8].copy_from_slice(&3u32.to_be_bytes());
    let e = parse_err(&b);
    assert!(e.to_string().contains("big-endian"), "{e}");
    assert!(matches!(parse_err(&good[..10]), K::Truncated { .. }));
    assert!(matches!(
        parse_err(&good[..good.len() - 40]),
        K::DataOutOfBounds { .. }
    ));

    // Counts that cannot fit are refused before anything is allocated.
    let b = Bytes::header(0, 1 << 60).0;
    assert!(matches!(parse_err(&b), K::AbsurdCount { .. }));
    let b = Bytes::header(u64::MAX, 0).0;
    assert!(matches!(parse_err(&b), K::AbsurdCount { .. }));
    let b = Bytes::header(0, 1).str("arr").u32(9).u32(6).u64(1 << 60).0;
    assert!(matches!(parse_err(&b), K::AbsurdCount { count, .. } if count == 1 << 60));
    let b = Bytes::header(0, 1).str("arr").u32(9).u32(8).u64(u64::MAX).0;
    assert!(matches!(parse_err(&b), K::AbsurdCount { .. }));
    let b = Bytes::header(0, 1)
        .str("s")
        .u32(8)
        .u64(u64::MAX)
        .raw(b"abc")
        .0;
    assert!(matches!(parse_err(&b), K::Truncated { .. }));
    // Nested arrays deeper than the limit (each level one element).
    let mut b = Bytes::header(0, 1).str("deep").u32(9);
    for _ in 0..20 {
        b = b.u32(9).u64(1);
    }
    let b = b.u32(0).u64(0).0;
    assert!(matches!(parse_err(&b), K::NestingTooDeep { .. }));

    let b = Bytes::header(0, 1).str("k").u32(13).u32(0).0;
    assert!(matches!(parse_err(&b), K::UnknownValueType { id: 13, .. }));
    let b = Bytes::header(0, 1)
        .str("k")
        .u32(8)
        .raw(&[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe])
        .0;
    assert!(matches!(parse_err(&b), K::InvalidUtf8 { .. }));
    let b = Bytes::header(0, 2)
        .str("k")
        .u32(0)
        .raw(&[1])
        .str("k")
        .u32(0)
        .raw(&[2])
        .0;
    assert!(matches!(parse_err(&b), K::DuplicateKey { .. }));
    let b = Bytes::header(0, 1)
        .str("general.alignment")
        .u32(10)
        .u64(32)
        .0;
    assert!(matches!(parse_err(&b), K::BadAlignment { .. }));
    let b = Bytes::header(0, 1)
        .str("general.alignment")
        .u32(4)
        .u32(24)
        .0;
    assert!(matches!(parse_err(&b), K::BadAlignment { .. }));

    // Tensor infos.
    let tensor = |name: &str, dims: &[u64], ty: u32, offset: u64| {
        let mut b = Bytes::default().str(name).u32(dims.len() as u32);
        for &d in dims {
            b = b.u64(d);
        }
        b.u32(ty).u64(offset).0
    };
    let with = |infos: &[Vec<u8>], data: usize| {
        let mut b = Bytes::header(infos.len() as u64, 0);
        for i in infos {
            b = b.raw(i);
        }
        b.pad(32).raw(&vec![0u8; data]).0
    };
    let f = GgufFile::parse(&with(&[tensor("t", &[32], 8, 0)], 64)).unwrap();
    assert_eq!(f.tensors()[0].n_bytes, 34);
    let e = GgufFile::parse(&with(&[tensor("t", &[32], 99, 0)], 64)).unwrap_err();
    assert!(matches!(e.kind, K::UnknownTensorType { id: 99 }));
    assert!(e.to_string().contains("tensor 't'"), "{e}");
    let e = parse_err(&with(&[tensor("t", &[1, 1, 1, 1, 1], 0, 0)], 64));
    assert!(matches!(e, K::BadDimCount { n_dims: 5 }));
    let e = parse_err(&with(&[tensor("t", &[48], 2, 0)], 64));
    assert!(matches!(e, K::NotBlockMultiple { count: 48, .. }));
    let e = parse_err(&with(&[tensor("t", &[1 << 40, 1 << 40], 0, 0)], 64));
    assert!(matches!(e, K::BadDims { .. }));
    let e = parse_err(&with(&[tensor("t", &[1 << 40], 0, 0)], 64));
    assert!(matches!(e, K::DataOutOfBounds { .. }));
    let e = parse_err(&with(&[tensor("t", &[4], 0, 32)], 64));
    assert!(matches!(
        e,
        K::BadOffset {
            offset: 32,
            expected: 0
        }
    ));
    let e = parse_err(&with(
        &[tensor("t", &[4], 0, 0), tensor("u", &[4], 0, 16)],
        64,
    ));
    assert!(matches!(
        e,
        K::BadOffset {
            offset: 16,
            expected: 32
        }
    ));
    let e = parse_err(&with(
        &[tensor("t", &[4], 0, 0), tensor("t", &[4], 0, 32)],
        64,
    ));
    assert!(matches!(e, K::DuplicateTensor));
    let e = parse_err(&with(&[tensor(&"n".repeat(64), &[4], 0, 0)], 64));
    assert!(matches!(e, K::NameTooLong { len: 64 }));
}

#[test]
fn files_round_trip_and_errors_name_the_path() {
    let dir = TempDir::new("roundtrip");
    let path = dir.path().join("model.gguf");
    let (w, tensors) = sample_writer(6, false);
    w.write_file(&path).unwrap();
    let f = GgufFile::open(&path).unwrap();
    assert_eq!(f.bytes(), w.to_bytes().as_slice());
    assert_eq!(f.path(), Some(path.as_path()));
    assert_eq!(f.tensors().len(), tensors.len());
    let e = f.tensor_f32("no.such.tensor").unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("model.gguf") && msg.contains("no.such.tensor"),
        "{msg}"
    );

    let bad = dir.path().join("truncated.gguf");
    std::fs::write(&bad, &w.to_bytes()[..100]).unwrap();
    let e = GgufFile::open(&bad).unwrap_err();
    assert!(e.to_string().contains("truncated.gguf"), "{e}");
    let e = GgufFile::open(dir.path().join("missing.gguf")).unwrap_err();
    assert!(matches!(e.kind, GgufErrorKind::Io(_)) && e.to_string().contains("missing.gguf"));
}
