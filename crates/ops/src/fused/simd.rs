//! The inner loops of the fused kernels, written so the compiler vectorizes them: eight
//! independent accumulators for reductions (f32 addition is not reassociated otherwise), plain
//! element-wise loops for updates. Fixed summation order: the same bits on every run and thread
//! count.

/// Σ a·b.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ac, ar) = a.split_at(a.len() / 8 * 8);
    let (bc, br) = b.split_at(ac.len());
    for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    s
}

/// y += a·x.
#[inline]
pub fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    debug_assert_eq!(y.len(), x.len());
    for (y, x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

/// max of a non-empty slice.
#[inline]
pub fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let (c, r) = a.split_at(a.len() / 8 * 8);
    for x in c.chunks_exact(8) {
        for l in 0..8 {
            acc[l] = acc[l].max(x[l]);
        }
    }
    let mut m = acc.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    for v in r {
        m = m.max(*v);
    }
    m
}

/// Σ a.
#[inline]
pub fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (c, r) = a.split_at(a.len() / 8 * 8);
    for x in c.chunks_exact(8) {
        for l in 0..8 {
            acc[l] += x[l];
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for v in r {
        s += v;
    }
    s
}

/// `e^x` for f32, within 2 ulp of the correctly rounded value on [−87, 88] (0 below −87, where
/// e^x < 1.7e−38; +inf above 88; the softmax kernels only take x ≤ 0), branch-free so that a loop over a slice
/// vectorizes (libm's `expf` is a call per element): `x = n·ln2 + r`, |r| ≤ ln2/2, a degree-7
/// Taylor polynomial in r (truncation 5e-9 relative), scaled by 2^n through the exponent bits.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^10 (LN2_HI has 11 significant bits).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0; // 1.5·2^23: adding and subtracting rounds to an integer (RNE)
    let xc = x.clamp(-87.0, 88.0);
    let n = (xc * LOG2E + MAGIC) - MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    let y = p * scale;
    if x < -87.0 {
        0.0
    } else if x > 88.0 {
        f32::INFINITY
    } else {
        y
    }
}

/// `v ← e^(v − m)` in place; returns Σ of the results.
#[inline]
pub fn exp_shifted(v: &mut [f32], m: f32) -> f32 {
    for x in v.iter_mut() {
        *x = exp(*x - m);
    }
    sum(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulp() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            let want = (x as f64).exp();
            let got = exp(x) as f64;
            let ulp = (want as f32).abs() as f64 * f32::EPSILON as f64;
            worst = worst.max((got - want).abs() / ulp);
            x += 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-100.0), 0.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert!(exp(100.0).is_infinite());
    }

    #[test]
    fn reductions_match_f64() {
        let v: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 113) as f32 / 17.0 - 3.0)
            .collect();
        let w: Vec<f32> = (0..37)
            .map(|i| ((i * 104_729) % 89) as f32 / 13.0 - 2.0)
            .collect();
        let d: f64 = v.iter().zip(&w).map(|(a, b)| *a as f64 * *b as f64).sum();
        assert!((dot(&v, &w) as f64 - d).abs() < 1e-4);
        let s: f64 = v.iter().map(|a| *a as f64).sum();
        assert!((sum(&v) as f64 - s).abs() < 1e-4);
        assert_eq!(max(&v), v.iter().fold(f32::MIN, |m, x| m.max(*x)));
    }
}
