//! compressed-tensors exports checked by compressed-tensors itself (PyPI `compressed-tensors`
//! 0.20 with torch): its model-free decompressor reads each `ct-*` directory Nibble writes, and
//! the weights it dequantizes equal Nibble's decoding of the same tensors bit for bit (in f32
//! where the decompressor works in f32, else after rounding Nibble's values to its bf16).
//! Skipped (with a `skipped:` line) when python3 cannot import compressed_tensors, unless
//! NIBBLE_PY_REFS=1.

mod common;
mod llama_common;

use common::{TempDir, run_py};
use llama_common::tiny_model;
use nibble_modelfiles::ct::{self, CtScheme};
use nibble_modelfiles::llama::{ct_linears, export_ct_dir, read_safetensors};
use std::path::Path;
use std::process::Command;

fn ct_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import compressed_tensors, torch"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("NIBBLE_PY_REFS").as_deref() != Ok("1"),
            "NIBBLE_PY_REFS=1 but python3 cannot import compressed_tensors and torch"
        );
        println!("skipped: compressed-tensors (with torch) is not installed");
    }
    ok
}

/// How Nibble's f32 decoding is rounded to the decompressor's output dtype.
type Round = fn(f32) -> f32;

fn bf16(v: f32) -> f32 {
    half::bf16::from_f32(v).to_f32()
}

/// Decompresses `dir` with compressed-tensors and compares with Nibble's decoding, rounded with
/// `native` (scales as stored) and `f32` (float scales upcast). Returns the number of values
/// compared per mode and the worst relative RMS error of a projection against its source.
fn check(
    dir: &Path,
    scheme: CtScheme,
    native: fn(f32) -> f32,
    f32_mode: fn(f32) -> f32,
) -> (usize, f32) {
    let prefix = dir.with_extension("decompressed");
    let printed = run_py("ct_decompress.py", &[dir.as_os_str(), prefix.as_os_str()]);
    let model = tiny_model(7, true);
    let linears = ct_linears(&model, scheme).unwrap();
    assert!(
        printed.starts_with(scheme.format()),
        "compressed-tensors inferred {printed} for {}",
        scheme.format()
    );
    assert!(
        printed.trim_end().ends_with(&format!(" {}", linears.len())),
        "{printed}"
    );
    let (mut n, mut worst) = (0, 0f32);
    for (mode, round) in [("native", native), ("f32", f32_mode)] {
        let out = std::path::PathBuf::from(format!("{}.{mode}.safetensors", prefix.display()));
        let theirs = read_safetensors(&std::fs::read(&out).unwrap(), &out, &|_| true).unwrap();
        assert_eq!(theirs.len(), linears.len());
        n = 0;
        for (name, shape, values) in theirs {
            let module = name.strip_suffix(".weight").unwrap();
            let ours = ct::decode(scheme, shape[0], shape[1], &linears[module]);
            let (src_shape, src) = &model.tensors[&name];
            assert_eq!(src_shape, &shape, "{name}");
            for (i, (a, b)) in ours.iter().zip(&values).enumerate() {
                assert_eq!(
                    round(*a).to_bits(),
                    b.to_bits(),
                    "{name}[{i}] ({mode}): Nibble {a} vs compressed-tensors {b} (source {})",
                    src[i]
                );
            }
            // The values must also be the weights' (a format-consistent sign or scale error
            // would pass the comparison above).
            let err: f32 = src.iter().zip(&ours).map(|(s, o)| (s - o) * (s - o)).sum();
            let norm: f32 = src.iter().map(|s| s * s).sum();
            worst = worst.max((err / norm).sqrt());
            n += values.len();
        }
    }
    (n, worst)
}

#[test]
fn compressed_tensors_decompresses_every_scheme_to_our_values() {
    if !ct_available() {
        return;
    }
    let tmp = TempDir::new("ct");
    let model = tiny_model(7, true);
    let schemes = [
        (
            CtScheme::W4a16 {
                group: 128,
                symmetric: true,
            },
            "w4a16",
        ),
        (
            CtScheme::W4a16 {
                group: 64,
                symmetric: false,
            },
            "w4a16-asym",
        ),
        (
            CtScheme::W2a16 {
                group: 128,
                symmetric: true,
            },
            "w2a16",
        ),
        (
            CtScheme::W2a16 {
                group: 32,
                symmetric: false,
            },
            "w2a16-asym",
        ),
        (CtScheme::Fp8, "fp8"),
        (CtScheme::Nvfp4, "nvfp4"),
        (CtScheme::Mxfp4, "mxfp4"),
    ];
    for (scheme, tag) in schemes {
        let dir = tmp.path().join(tag);
        export_ct_dir(&model, scheme, &dir).unwrap();
        let (native, f32_mode): (Round, Round) = match scheme {
            // Integer codes and FP8 decompress in the scale's dtype (bf16 as stored, f32 when
            // upcast): exact in f32, because q·s and e4m3·s fit f32 exactly.
            CtScheme::W4a16 { .. } | CtScheme::W2a16 { .. } | CtScheme::Fp8 => (bf16, |v| v),
            // FP4 codes unpack to bf16 whatever the scales.
            CtScheme::Nvfp4 | CtScheme::Mxfp4 => (bf16, bf16),
        };
        let (n, rel) = check(&dir, scheme, native, f32_mode);
        // Relative RMS quantization error of these Gaussian weights: INT4 ≈ 0.09, FP8 ≈ 0.03,
        // FP4 ≈ 0.1–0.12.
        let bound = match scheme {
            CtScheme::Fp8 => 0.04,
            // INT2: 4 levels per group.
            CtScheme::W2a16 { .. } => 0.7,
            _ => 0.2,
        };
        assert!(rel < bound, "{tag}: relative RMS error {rel}");
        println!(
            "{tag}: {n} values equal compressed-tensors' decompression (as stored and with f32 \
             scales); relative RMS error vs the source weights {rel:.3}"
        );
    }
}

#[test]
fn a_dimension_the_scheme_cannot_take_names_the_tensor_and_writes_nothing() {
    let tmp = TempDir::new("ct-bad");
    let model = tiny_model(8, false);
    let dir = tmp.path().join("out");
    // Hidden size 256 is not a multiple of 512.
    let scheme = CtScheme::W4a16 {
        group: 512,
        symmetric: true,
    };
    let e = export_ct_dir(&model, scheme, &dir).unwrap_err().to_string();
    assert!(e.contains("model.layers.0.mlp.gate_proj.weight"), "{e}");
    assert!(e.contains("multiple of 512"), "{e}");
    assert!(!dir.exists());
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn nvfp4_fused_projections_share_one_global_scale() {
    // vLLM fuses q/k/v and gate/up and reads one global scale for each fused weight.
    let model = tiny_model(9, true);
    let linears = ct_linears(&model, CtScheme::Nvfp4).unwrap();
    let gs = |m: &str| ct::tensor(&linears[m], "weight_global_scale").bytes.clone();
    let p = "model.layers.1.";
    let q = gs(&format!("{p}self_attn.q_proj"));
    assert_eq!(q, gs(&format!("{p}self_attn.k_proj")));
    assert_eq!(q, gs(&format!("{p}self_attn.v_proj")));
    let up = gs(&format!("{p}mlp.up_proj"));
    assert_eq!(up, gs(&format!("{p}mlp.gate_proj")));
    // 448·6 / the largest |w| over the fused weights.
    let amax = ["q_proj", "k_proj", "v_proj"]
        .iter()
        .map(|n| ct::amax(&model.tensors[&format!("{p}self_attn.{n}.weight")].1))
        .fold(0f32, f32::max);
    assert_eq!(q, ((448.0f32 * 6.0) / amax).to_le_bytes());
    let own = ct::amax(&model.tensors[&format!("{p}self_attn.o_proj.weight")].1);
    assert_eq!(
        gs(&format!("{p}self_attn.o_proj")),
        ((448.0f32 * 6.0) / own).to_le_bytes()
    );
}
