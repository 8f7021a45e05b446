//! Tests of `bf16_matmul`: against an f64 reference of the bf16-rounded operands within the
//! f32 summation bound, bit-identity across thread counts and between the AVX512-BF16 and the
//! portable paths, special values, rounding, layouts and bounds checks.

use nibble_ops::fused::bf16_gemm::{Bf16Kernel, View, bf16_matmul, bf16_matmul_with, has_bf16_dot};

/// The kernels this CPU runs.
fn kernels() -> Vec<Bf16Kernel> {
    let all = [Bf16Kernel::Dot, Bf16Kernel::Fma, Bf16Kernel::Portable];
    all.into_iter().filter(|k| k.available()).collect()
}

/// The project's rounding oracle.
fn rb(x: f32) -> f32 {
    nibble_formats::element::round_bf16(x)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in [-1, 1) times a random power of two in 2^-4..2^4: normal range, varied
    /// exponents, mixed signs (so that cancellation occurs).
    fn val(&mut self) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
        u * 2f32.powi((self.next() % 9) as i32 - 4)
    }
}

/// A `rows × cols` matrix stored in one of four layouts: row-major, column-major, or with both
/// strides > 1 (a sub-matrix at an offset of a larger buffer).
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    ColMajor,
    Strided,
}
const LAYOUTS: [Layout; 3] = [Layout::RowMajor, Layout::ColMajor, Layout::Strided];

struct Mat {
    data: Vec<f32>,
    off: usize,
    rs: usize,
    cs: usize,
}

impl Mat {
    fn new(
        rows: usize,
        cols: usize,
        layout: Layout,
        mut f: impl FnMut(usize, usize) -> f32,
    ) -> Mat {
        let (off, rs, cs, len) = match layout {
            Layout::RowMajor => (0, cols, 1, rows * cols),
            Layout::ColMajor => (0, 1, rows, rows * cols),
            // Row stride 2·cols + 3, column stride 2, offset 5: a transposed-like view with gaps.
            Layout::Strided => (5, 2 * cols + 3, 2, 5 + rows * (2 * cols + 3)),
        };
        let mut data = vec![f32::NAN; len]; // The gaps are NaN: reading them would show.
        for i in 0..rows {
            for j in 0..cols {
                data[off + i * rs + j * cs] = f(i, j);
            }
        }
        Mat { data, off, rs, cs }
    }
    fn view(&self) -> View<'_> {
        View {
            data: &self.data,
            off: self.off,
            rs: self.rs,
            cs: self.cs,
        }
    }
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[self.off + i * self.rs + j * self.cs]
    }
}

fn run(
    kernel: Bf16Kernel,
    m: usize,
    n: usize,
    k: usize,
    a: &Mat,
    b: &Mat,
    threads: usize,
) -> Vec<f32> {
    let mut dst = vec![f32::NAN; m * n];
    bf16_matmul_with(kernel, m, n, k, a.view(), b.view(), &mut dst, threads);
    dst
}

/// Checks `c` against the f64 sum of the bf16-rounded products on every `step`-th row:
/// `|c − ref| ≤ γ_k·Σ|a||b|` with `γ_k = k·u/(1 − k·u)`, `u = 2^-24` (recursive f32 summation of
/// k exact products, each add rounded once).
fn check_bound(m: usize, n: usize, k: usize, a: &Mat, b: &Mat, c: &[f32], step: usize) {
    let u = 2f64.powi(-24);
    let gamma = k as f64 * u / (1.0 - k as f64 * u);
    let bt: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..k).map(|p| rb(b.at(p, j)) as f64).collect())
        .collect();
    for i in (0..m).step_by(step) {
        let ar: Vec<f64> = (0..k).map(|p| rb(a.at(i, p)) as f64).collect();
        for j in 0..n {
            let (mut s, mut abs) = (0.0f64, 0.0f64);
            for (x, y) in ar.iter().zip(&bt[j]) {
                s += x * y;
                abs += (x * y).abs();
            }
            let got = c[i * n + j] as f64;
            assert!(
                (got - s).abs() <= gamma * abs,
                "({m},{n},{k}) at ({i},{j}): got {got}, want {s} ± {}",
                gamma * abs
            );
        }
    }
}

/// Small and odd edges, Nibble-like shapes, several pre-packing groups (> 384 wide), and long k
/// (which runs k-blocks outermost in a task). (Larger shapes ran in development; these keep
/// the test to seconds.)
const SHAPES: [(usize, usize, usize); 9] = [
    (1, 1, 1),
    (17, 33, 65),
    (3, 100, 7),
    (9, 49, 2),
    (200, 130, 301),
    (512, 512, 128),
    (300, 400, 576),
    (100, 2000, 1537),
    (40, 300, 10001),
];

fn operands(m: usize, n: usize, k: usize, la: Layout, lb: Layout, seed: u64) -> (Mat, Mat) {
    let mut r = Rng(seed);
    let a = Mat::new(m, k, la, |_, _| r.val());
    let b = Mat::new(k, n, lb, |_, _| r.val());
    (a, b)
}

fn layout_pairs(m: usize, n: usize, k: usize) -> Vec<(Layout, Layout)> {
    if m * n > 1_000_000 || k > 10_000 {
        // The big shapes: the layouts of Nibble's forward (X·Wᵀ) and backward (dY·W, dYᵀ·X).
        vec![
            (Layout::RowMajor, Layout::ColMajor),
            (Layout::RowMajor, Layout::RowMajor),
            (Layout::ColMajor, Layout::RowMajor),
        ]
    } else {
        LAYOUTS
            .iter()
            .flat_map(|&x| LAYOUTS.iter().map(move |&y| (x, y)))
            .collect()
    }
}

#[test]
fn within_f32_bound_of_f64_reference() {
    for (m, n, k) in SHAPES {
        for (la, lb) in layout_pairs(m, n, k) {
            let (a, b) = operands(m, n, k, la, lb, 7 + k as u64);
            for kernel in kernels() {
                let c = run(kernel, m, n, k, &a, &b, 2);
                let step = if m * n * k > 100_000_000 { 61 } else { 1 };
                check_bound(m, n, k, &a, &b, &c, step);
            }
        }
    }
}

#[test]
fn bit_identical_across_threads_and_kernels() {
    eprintln!(
        "kernels: {:?}, detected {:?}",
        kernels(),
        Bf16Kernel::detect()
    );
    for (m, n, k) in SHAPES {
        for (la, lb) in layout_pairs(m, n, k) {
            let (a, b) = operands(m, n, k, la, lb, 11 + m as u64);
            let mut by_kernel = vec![];
            for kernel in kernels() {
                let c1 = run(kernel, m, n, k, &a, &b, 1);
                for t in [2, 3, 5] {
                    let ct = run(kernel, m, n, k, &a, &b, t);
                    assert!(
                        bits_eq(&c1, &ct),
                        "({m},{n},{k}) {la:?}/{lb:?} {kernel:?}: {t} threads differ"
                    );
                }
                by_kernel.push((kernel, c1));
            }
            // Normal-range data: no flushing, so each kernel gives its scalar model's bits.
            for (kernel, c) in by_kernel {
                let model = if kernel == Bf16Kernel::Dot {
                    pairwise_model(m, n, k, &a, &b)
                } else {
                    run(Bf16Kernel::Portable, m, n, k, &a, &b, 1)
                };
                assert!(
                    bits_eq(&c, &model),
                    "({m},{n},{k}) {la:?}/{lb:?}: {kernel:?} differs from its model"
                );
            }
        }
    }
}

/// `vdpbf16ps`'s order in scalar f32: `acc = (acc + a[2p+1]·b[2p+1]) + a[2p]·b[2p]`.
fn pairwise_model(m: usize, n: usize, k: usize, a: &Mat, b: &Mat) -> Vec<f32> {
    let k2 = k.next_multiple_of(2); // The pad is 0·0.
    let get = |x: &Mat, i: usize, j: usize, valid: bool| if valid { rb(x.at(i, j)) } else { 0.0 };
    let br: Vec<Vec<f32>> = (0..k2)
        .map(|p| (0..n).map(|j| get(b, p, j, p < k)).collect())
        .collect();
    let mut c = vec![0.0f32; m * n];
    for (i, acc) in c.chunks_exact_mut(n).enumerate() {
        for p in (0..k2).step_by(2) {
            let (ae, ao) = (get(a, i, p, true), get(a, i, p + 1, p + 1 < k));
            for ((x, e), o) in acc.iter_mut().zip(&br[p]).zip(&br[p + 1]) {
                *x = (*x + ao * o) + ae * e;
            }
        }
    }
    c
}

fn bits_eq(x: &[f32], y: &[f32]) -> bool {
    x.len() == y.len() && x.iter().zip(y).all(|(a, b)| a.to_bits() == b.to_bits())
}

/// `A·I` and `I·B` give the rounded operands exactly, through every packing path.
#[test]
fn identity_shows_rounding() {
    let mut r = Rng(3);
    // Random bits of normal finite f32 whose bf16 rounding stays finite and normal, plus ties.
    let mut vals: Vec<f32> = (0..4000)
        .map(|_| f32::from_bits(r.next() as u32))
        .filter(|x| x.is_normal() && x.abs() < 3e38 && x.abs() > 1e-37)
        .collect();
    vals.extend([
        1.0 + 2f32.powi(-8),
        1.0 + 3.0 * 2f32.powi(-8),
        -(1.0 + 2f32.powi(-8) + 2f32.powi(-20)),
    ]);
    vals.extend([
        f32::from_bits(0x3f80_8000),
        f32::from_bits(0x3f81_8000),
        f32::from_bits(0x7f7e_8000),
        f32::from_bits(0x7f7f_7fff),
    ]);
    let (m, k) = (vals.len().div_ceil(37), 37);
    let get = |i: usize, p: usize| vals.get(i * k + p).copied().unwrap_or(0.5);
    let eye = |i: usize, j: usize| if i == j { 1.0 } else { 0.0 };
    for mm in kernels() {
        for layout in LAYOUTS {
            let a = Mat::new(m, k, layout, get);
            let c = run(mm, m, k, k, &a, &Mat::new(k, k, Layout::RowMajor, eye), 2);
            let bt = Mat::new(k, m, layout, |p, i| get(i, p));
            let ct = run(mm, k, m, k, &Mat::new(k, k, Layout::ColMajor, eye), &bt, 2);
            for i in 0..m {
                for p in 0..k {
                    assert_eq!(
                        c[i * k + p].to_bits(),
                        rb(get(i, p)).to_bits(),
                        "A·I {layout:?}"
                    );
                    assert_eq!(
                        ct[p * m + i].to_bits(),
                        rb(get(i, p)).to_bits(),
                        "I·B {layout:?}"
                    );
                }
            }
        }
    }
}

/// k = 1: `bf16(a)·1` for special values (NaN, ±Inf, values that round to Inf, ±0).
#[test]
fn special_values_k1() {
    let vals = [
        f32::NAN,
        -f32::NAN,
        f32::from_bits(0x7f80_0001),
        f32::INFINITY,
        f32::NEG_INFINITY,
        f32::MAX,
        -f32::MAX,
        3.4e38,
        0.0,
        -0.0,
        1.0,
        -2.5,
    ];
    for mm in kernels() {
        let a = Mat::new(vals.len(), 1, Layout::ColMajor, |i, _| vals[i]);
        let b = Mat::new(1, 1, Layout::RowMajor, |_, _| 1.0);
        let c = run(mm, vals.len(), 1, 1, &a, &b, 1);
        for (x, y) in vals.iter().zip(&c) {
            let want = rb(*x);
            assert!(
                want.is_nan() && y.is_nan() || want == *y,
                "{x} → {y}, want {want}"
            );
        }
    }
}

/// A NaN in lhs row i poisons row i of the output, one in rhs column j column j; an Inf in
/// the last (odd) k gives ±Inf, not the NaN that a non-zero pad would give.
#[test]
fn nan_and_inf_propagate() {
    let (m, n, k) = (19, 53, 65);
    for mm in kernels() {
        for (la, lb) in [
            (Layout::RowMajor, Layout::ColMajor),
            (Layout::ColMajor, Layout::RowMajor),
        ] {
            let mut r = Rng(5);
            let a = Mat::new(m, k, la, |i, p| {
                if i == 4 && p == 30 {
                    f32::NAN
                } else if p == k - 1 && i == 7 {
                    f32::INFINITY
                } else {
                    r.val()
                }
            });
            let b = Mat::new(k, n, lb, |p, j| {
                if j == 40 && p == 2 {
                    f32::NAN
                } else if p == k - 1 {
                    1.0 + j as f32
                } else {
                    r.val()
                }
            });
            let c = run(mm, m, n, k, &a, &b, 2);
            for i in 0..m {
                for j in 0..n {
                    let x = c[i * n + j];
                    if i == 4 || j == 40 {
                        assert!(x.is_nan(), "({i},{j}) = {x}");
                    } else if i == 7 {
                        assert_eq!(x, f32::INFINITY, "({i},{j})");
                    } else {
                        assert!(x.is_finite(), "({i},{j}) = {x}");
                    }
                }
            }
        }
    }
}

/// `vdpbf16ps` reads bf16 denormals as zero; the other kernels keep them.
#[test]
fn denormals_flush_on_avx512_path_only() {
    let tiny = 2f32.powi(-130);
    let a = Mat::new(1, 1, Layout::RowMajor, |_, _| tiny);
    let b = Mat::new(1, 1, Layout::RowMajor, |_, _| 1.0);
    for kernel in kernels() {
        let want = if kernel == Bf16Kernel::Dot {
            0.0
        } else {
            rb(tiny)
        };
        assert_eq!(run(kernel, 1, 1, 1, &a, &b, 1)[0], want, "{kernel:?}");
    }
    eprintln!("has_bf16_dot: {}", has_bf16_dot());
}

#[test]
fn empty_shapes() {
    let a = Mat::new(3, 4, Layout::RowMajor, |_, _| 1.0);
    let mut dst = vec![f32::NAN; 6];
    bf16_matmul(
        3,
        2,
        0,
        View {
            data: &[],
            off: 0,
            rs: 0,
            cs: 0,
        },
        View {
            data: &[],
            off: 0,
            rs: 0,
            cs: 0,
        },
        &mut dst,
        2,
    );
    assert!(dst.iter().all(|&x| x == 0.0));
    bf16_matmul(0, 2, 4, a.view(), a.view(), &mut [], 2);
    bf16_matmul(3, 0, 4, a.view(), a.view(), &mut [], 2);
}

#[test]
#[should_panic(expected = "rhs view out of bounds")]
fn out_of_bounds_view_panics() {
    let a = Mat::new(4, 5, Layout::RowMajor, |_, _| 1.0);
    let mut dst = vec![0.0; 4 * 4];
    // rhs 5×4 read from a 4×5 buffer: the last element is past the end.
    bf16_matmul(
        4,
        4,
        5,
        a.view(),
        View {
            data: &a.data,
            off: 1,
            rs: 4,
            cs: 1,
        },
        &mut dst,
        1,
    );
}
