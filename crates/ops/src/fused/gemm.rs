//! A bounds-checked strided f32 GEMM (the `gemm` crate's kernel): single-threaded where the
//! fused kernels parallelize over batch elements themselves, on rayon's threads for the large
//! products of the fused cross-entropy. Either way the bits do not depend on the thread count
//! (the threads split the output, never the inner dimension).

/// A strided matrix in a slice: element (i, j) at `off + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub data: &'a [f32],
    pub off: usize,
    pub rs: usize,
    pub cs: usize,
}

fn last(off: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    off + (rows.max(1) - 1) * rs + (cols.max(1) - 1) * cs
}

/// `dst[m×n] (+)= scale · lhs[m×k] · rhs[k×n]` (`+=` with `accumulate`); `dst` is the slice
/// with element (i, j) at `off + i·rs + j·cs`.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (off, rs, cs): (usize, usize, usize),
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
) {
    product(
        m,
        n,
        k,
        dst,
        (off, rs, cs),
        accumulate,
        lhs,
        rhs,
        scale,
        false,
    );
}

/// [`matmul`] on all of rayon's threads.
#[allow(clippy::too_many_arguments)]
pub fn matmul_parallel(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (off, rs, cs): (usize, usize, usize),
    accumulate: bool,
    lhs: View,
    rhs: View,
) {
    product(m, n, k, dst, (off, rs, cs), accumulate, lhs, rhs, 1.0, true);
}

#[allow(clippy::too_many_arguments)]
#[allow(unsafe_code)]
fn product(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (off, rs, cs): (usize, usize, usize),
    accumulate: bool,
    lhs: View,
    rhs: View,
    scale: f32,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        last(off, m, n, rs, cs) < dst.len(),
        "dst view out of bounds"
    );
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                for j in 0..n {
                    dst[off + i * rs + j * cs] = 0.0;
                }
            }
        }
        return;
    }
    assert!(
        last(lhs.off, m, k, lhs.rs, lhs.cs) < lhs.data.len(),
        "lhs view out of bounds"
    );
    assert!(
        last(rhs.off, k, n, rhs.rs, rhs.cs) < rhs.data.len(),
        "rhs view out of bounds"
    );
    // SAFETY: every element each view addresses is inside its slice (checked above); dst is a
    // unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr().add(off),
            cs as isize,
            rs as isize,
            accumulate,
            lhs.data.as_ptr().add(lhs.off),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr().add(rhs.off),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0,
            scale,
            false,
            false,
            false,
            if parallel {
                gemm::Parallelism::Rayon(rayon::current_num_threads())
            } else {
                gemm::Parallelism::None
            },
        );
    }
}
