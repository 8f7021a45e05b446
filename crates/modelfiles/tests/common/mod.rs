//! Shared test fixtures: a deterministic PRNG, sample GGUF content covering every value type and
//! tensor type, temp dirs, and the gated Python (gguf-py) runner.
#![allow(dead_code)]

use nibble_modelfiles::gguf::{Array, GgufWriter, Value};
use nibble_modelfiles::{GgmlType, quants};
use std::path::{Path, PathBuf};
use std::process::Command;

/// splitmix64: tiny, deterministic, good enough for fixtures and mutations.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [-1, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    /// Roughly normal (sum of uniforms), scaled.
    pub fn normal(&mut self, scale: f32) -> f32 {
        (self.unit() + self.unit() + self.unit()) * scale
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }

    /// A random finite f16 bit pattern with magnitude below 8 (exponent field < 18).
    pub fn finite_f16_bits(&mut self) -> u16 {
        let b = self.next_u64() as u16;
        let exp = ((b >> 10) & 31) % 18;
        (b & 0x83ff) | (exp << 10)
    }
}

/// Byte offsets of the f16 scale fields in one block of each type (so random blocks can be
/// given finite scales; all other bytes of these layouts are valid for any value).
pub fn f16_fields(ty: GgmlType) -> &'static [usize] {
    match ty {
        GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::F16 => &[0],
        GgmlType::Q4_1 | GgmlType::Q4_K => &[0, 2],
        GgmlType::Q6_K => &[208],
        GgmlType::TQ1_0 => &[52],
        GgmlType::TQ2_0 => &[64],
        _ => &[],
    }
}

/// `n_blocks` random blocks of `ty` with finite f16 scales (and no NaN for F32/BF16).
pub fn random_blocks(rng: &mut Rng, ty: GgmlType, n_blocks: usize) -> Vec<u8> {
    let ts = ty.type_size();
    let mut out = rng.bytes(n_blocks * ts);
    for block in out.chunks_exact_mut(ts) {
        for &at in f16_fields(ty) {
            block[at..at + 2].copy_from_slice(&rng.finite_f16_bits().to_le_bytes());
        }
        match ty {
            GgmlType::F32 => block.copy_from_slice(&rng.normal(10.0).to_le_bytes()),
            GgmlType::BF16 => {
                let b = (rng.normal(10.0).to_bits() >> 16) as u16;
                block.copy_from_slice(&b.to_le_bytes());
            }
            _ => {}
        }
    }
    out
}

/// One tensor of the sample file.
pub struct SampleTensor {
    pub name: String,
    pub ty: GgmlType,
    pub dims: Vec<u64>,
    pub data: Vec<u8>,
}

/// Metadata entries of every value type, including empty and nested arrays.
pub fn sample_metadata(python_compatible: bool) -> Vec<(String, Value)> {
    let mut m = vec![
        ("general.architecture", Value::String("llama".into())),
        ("test.u8", Value::U8(200)),
        ("test.i8", Value::I8(-100)),
        ("test.u16", Value::U16(60000)),
        ("test.i16", Value::I16(-30000)),
        ("test.u32", Value::U32(4_000_000_000)),
        ("test.i32", Value::I32(-2_000_000_000)),
        ("test.f32", Value::F32(1.0e-5)),
        ("test.bool_true", Value::Bool(true)),
        ("test.bool_false", Value::Bool(false)),
        ("test.string", Value::String("héllo, wörld ✓".into())),
        ("test.empty_string", Value::String(String::new())),
        ("test.u64", Value::U64(u64::MAX - 1)),
        ("test.i64", Value::I64(i64::MIN + 1)),
        ("test.f64", Value::F64(-1.0e300)),
        ("test.arr_u8", Value::Array(Array::U8(vec![0, 1, 255]))),
        ("test.arr_i8", Value::Array(Array::I8(vec![-128, 0, 127]))),
        ("test.arr_u16", Value::Array(Array::U16(vec![1, 65535]))),
        (
            "test.arr_i16",
            Value::Array(Array::I16(vec![-32768, 32767])),
        ),
        ("test.arr_u32", Value::Array(Array::U32(vec![7, u32::MAX]))),
        (
            "test.arr_i32",
            Value::Array(Array::I32(vec![-1, 3, i32::MIN])),
        ),
        (
            "test.arr_f32",
            Value::Array(Array::F32(vec![0.5, -0.0, 1e38, f32::INFINITY])),
        ),
        (
            "test.arr_bool",
            Value::Array(Array::Bool(vec![true, false, true])),
        ),
        (
            "test.arr_string",
            Value::Array(Array::String(vec![
                "a".into(),
                String::new(),
                "Ġt ✓".into(),
            ])),
        ),
        ("test.arr_u64", Value::Array(Array::U64(vec![u64::MAX, 0]))),
        (
            "test.arr_i64",
            Value::Array(Array::I64(vec![i64::MIN, i64::MAX])),
        ),
        (
            "test.arr_f64",
            Value::Array(Array::F64(vec![std::f64::consts::PI, -0.0])),
        ),
        ("test.arr_empty_u32", Value::Array(Array::U32(vec![]))),
        ("test.arr_empty_string", Value::Array(Array::String(vec![]))),
        (
            "test.arr_nested_string",
            Value::Array(Array::Array(vec![
                Array::String(vec!["x".into(), "yz".into()]),
                Array::String(vec!["w".into()]),
            ])),
        ),
        (
            "test.arr_nested_i32",
            Value::Array(Array::Array(vec![
                Array::I32(vec![1, 2]),
                Array::I32(vec![-3]),
            ])),
        ),
        (
            "test.arr_nested3",
            Value::Array(Array::Array(vec![Array::Array(vec![Array::U8(vec![
                9, 8,
            ])])])),
        ),
    ];
    if !python_compatible {
        // gguf-py flattens nested arrays using the first element's type; keep mixed element
        // types and empty nested arrays for the Rust-only round trip.
        m.push((
            "test.arr_nested_mixed",
            Value::Array(Array::Array(vec![
                Array::I32(vec![1]),
                Array::String(vec!["s".into()]),
                Array::Array(vec![]),
                Array::F64(vec![]),
            ])),
        ));
        m.push(("test.arr_empty_nested", Value::Array(Array::Array(vec![]))));
    }
    m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Tensors of every dequantizable type (quantized by us where we can, random valid blocks
/// otherwise), plus types we only carry as bytes. Dims are GGUF order.
pub fn sample_tensors(rng: &mut Rng) -> Vec<SampleTensor> {
    let mut out = Vec::new();
    let quantizable = [
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
    for (i, ty) in quantizable.into_iter().enumerate() {
        let dims = vec![256, 3];
        let values: Vec<f32> = (0..768).map(|_| rng.normal(0.1 * (i + 1) as f32)).collect();
        let data = quants::quantize(ty, &values).unwrap();
        out.push(SampleTensor {
            name: format!("blk.{i}.{}.weight", ty.name().to_lowercase()),
            ty,
            dims,
            data,
        });
    }
    for ty in [
        GgmlType::Q4_K,
        GgmlType::Q6_K,
        GgmlType::Q5_0,
        GgmlType::IQ2_XXS,
    ] {
        let dims = vec![512, 2];
        let n_blocks = 1024 / ty.block_size();
        out.push(SampleTensor {
            name: format!("raw.{}", ty.name().to_lowercase()),
            ty,
            dims,
            data: random_blocks(rng, ty, n_blocks),
        });
    }
    // 1-D and 3-D shapes, and a 4-D one.
    out.push(SampleTensor {
        name: "output_norm.weight".into(),
        ty: GgmlType::F32,
        dims: vec![5],
        data: random_blocks(rng, GgmlType::F32, 5),
    });
    out.push(SampleTensor {
        name: "cube".into(),
        ty: GgmlType::Q8_0,
        dims: vec![32, 2, 3],
        data: random_blocks(rng, GgmlType::Q8_0, 6),
    });
    out.push(SampleTensor {
        name: "hyper".into(),
        ty: GgmlType::F16,
        dims: vec![2, 1, 3, 2],
        data: random_blocks(rng, GgmlType::F16, 12),
    });
    out
}

/// A writer holding the sample metadata and tensors.
pub fn sample_writer(seed: u64, python_compatible: bool) -> (GgufWriter, Vec<SampleTensor>) {
    let mut w = GgufWriter::new();
    for (k, v) in sample_metadata(python_compatible) {
        w.add_metadata(k, v).unwrap();
    }
    let tensors = sample_tensors(&mut Rng::new(seed));
    for t in &tensors {
        w.add_tensor(&t.name, t.ty, &t.dims, t.data.clone())
            .unwrap();
    }
    (w, tensors)
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("nibble-modelfiles-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether gguf-py can run. With `NIBBLE_PY_REFS=1` it must (panics otherwise); without, a
/// missing python3/gguf prints a `skipped:` line and returns false.
pub fn python_gguf_available(test: &str) -> bool {
    let required = std::env::var("NIBBLE_PY_REFS").as_deref() == Ok("1");
    let ok = Command::new("python3")
        .args(["-c", "import gguf, numpy"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !required,
            "NIBBLE_PY_REFS=1 but `python3 -c \"import gguf, numpy\"` fails \
             (pip install gguf==0.19.0 numpy)"
        );
        println!("skipped: {test}: python3 cannot import gguf (pip install gguf numpy)");
    }
    ok
}

/// Runs `tests/py/<script>` with `args`; returns stdout, panics with stderr on failure.
pub fn run_py(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}",
        path.display(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("python output is UTF-8")
}

/// Records a harness figure (a line `name: figures`) in `target/tmp/fault-harness.txt`, which
/// `.ci/run` prints after the suite; a line of the same name from an earlier run is replaced.
pub fn record_figure(line: &str) {
    eprintln!("{line}");
    let p = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fault-harness.txt");
    let name = |l: &str| l.split(':').next().unwrap_or("").to_string();
    let kept: String = std::fs::read_to_string(&p)
        .unwrap_or_default()
        .lines()
        .filter(|l| name(l) != name(line))
        .map(|l| format!("{l}\n"))
        .collect();
    let _ = std::fs::write(&p, format!("{kept}{line}\n"));
}
