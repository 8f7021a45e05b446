//! Block statistics with a fixed summation order.
//!
//! Sums use eight interleaved f32 lanes (`lane[i % 8] += v[i]`, in index order), then the lanes are
//! combined as `(l0+l4, l1+l5, l2+l6, l3+l7)`, then `(a0+a2, a1+a3)`, then `b0+b1`. The order is part
//! of the spec: it vectorizes on CPU and a GPU thread (or an 8-lane subgroup) can reproduce it.
//! Rows of a tile and rows of a tensor are merged in row order, in f32 (tiles) or f64 (tensors).

/// What a scale rule needs besides amax (only that is computed in the hot loop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// sum and sum of squares (QuEST).
    pub moments: bool,
    /// sum of |v| (absmean).
    pub abs_sum: bool,
    /// min and max (affine INT).
    pub min_max: bool,
}

impl Needs {
    pub const ALL: Needs = Needs {
        moments: true,
        abs_sum: true,
        min_max: true,
    };
    pub const AMAX: Needs = Needs {
        moments: false,
        abs_sum: false,
        min_max: false,
    };
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// max |v| over finite values.
    pub amax: f32,
    pub sum: f32,
    pub sumsq: f32,
    pub sum_abs: f32,
    pub min: f32,
    pub max: f32,
    pub n: usize,
    /// Any NaN or ±Inf in the block.
    pub nonfinite: bool,
}

/// `f` summed over eight interleaved lanes (lane j takes elements j, j+8, … in order), combined
/// as documented above. Written over whole 8-chunks so that it compiles to vector adds.
#[inline(always)]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut l = [0f32; 8];
    let chunks = v.chunks_exact(8);
    let rem = chunks.remainder();
    for c in chunks {
        for j in 0..8 {
            l[j] += f(c[j]);
        }
    }
    for (j, &x) in rem.iter().enumerate() {
        l[j] += f(x);
    }
    lanes_combine(l)
}

#[inline(always)]
fn lanes_combine(l: [f32; 8]) -> f32 {
    let a = [l[0] + l[4], l[1] + l[5], l[2] + l[6], l[3] + l[7]];
    let b = [a[0] + a[2], a[1] + a[3]];
    b[0] + b[1]
}

impl Stats {
    pub const EMPTY: Stats = Stats {
        amax: 0.0,
        sum: 0.0,
        sumsq: 0.0,
        sum_abs: 0.0,
        min: f32::INFINITY,
        max: f32::NEG_INFINITY,
        n: 0,
        nonfinite: false,
    };

    /// Statistics of a slice; only what `needs` asks for (besides amax) is computed.
    #[inline(always)]
    pub fn of(v: &[f32], needs: Needs) -> Stats {
        // Max is order-independent (NaN never wins a `>`), so lane-wise maxima give the same bits
        // as a sequential scan and break the compare chain.
        let mut m = [0f32; 16];
        let mut bad = 0u32;
        let chunks = v.chunks_exact(16);
        let rem = chunks.remainder();
        for c in chunks {
            for j in 0..16 {
                let a = c[j].abs();
                m[j] = if a > m[j] { a } else { m[j] };
                bad |= ((c[j].to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
            }
        }
        for (j, &x) in rem.iter().enumerate() {
            let a = x.abs();
            m[j] = if a > m[j] { a } else { m[j] };
            bad |= ((x.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
        }
        let mx = |a: f32, b: f32| if a > b { a } else { b };
        for w in [8, 4, 2, 1] {
            for j in 0..w {
                m[j] = mx(m[j], m[j + w]);
            }
        }
        let amax = m[0];
        let mut s = Stats {
            amax,
            n: v.len(),
            nonfinite: bad != 0,
            ..Stats::EMPTY
        };
        if needs.moments {
            s.sum = lane_sum(v, |x| x);
            s.sumsq = lane_sum(v, |x| x * x);
        }
        if needs.abs_sum {
            s.sum_abs = lane_sum(v, f32::abs);
        }
        if needs.min_max {
            let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
            for &x in v {
                mn = if x < mn { x } else { mn };
                mx = if x > mx { x } else { mx };
            }
            s.min = mn;
            s.max = mx;
        }
        s
    }

    /// Merge the statistics of the next rows of a tile (f32, in row order).
    pub fn merge(self, o: Stats) -> Stats {
        Stats {
            amax: if o.amax > self.amax {
                o.amax
            } else {
                self.amax
            },
            sum: self.sum + o.sum,
            sumsq: self.sumsq + o.sumsq,
            sum_abs: self.sum_abs + o.sum_abs,
            min: if o.min < self.min { o.min } else { self.min },
            max: if o.max > self.max { o.max } else { self.max },
            n: self.n + o.n,
            nonfinite: self.nonfinite || o.nonfinite,
        }
    }

    /// Merge per-row statistics of a whole tensor: sums in f64 in row order, then rounded to f32.
    pub fn merge_rows(rows: &[Stats]) -> Stats {
        let (mut s1, mut s2, mut sa) = (0f64, 0f64, 0f64);
        let mut acc = Stats::EMPTY;
        for r in rows {
            s1 += r.sum as f64;
            s2 += r.sumsq as f64;
            sa += r.sum_abs as f64;
            acc = acc.merge(*r);
        }
        Stats {
            sum: s1 as f32,
            sumsq: s2 as f32,
            sum_abs: sa as f32,
            ..acc
        }
    }

    pub fn mean(&self) -> f32 {
        self.sum / self.n as f32
    }

    /// `sqrt(max(mean(v²) − mean(v)², 0))`, QuEST's σ with the negative-variance guard.
    pub fn std(&self) -> f32 {
        let n = self.n as f32;
        let m = self.sum / n;
        let var = self.sumsq / n - m * m;
        if var > 0.0 { var.sqrt() } else { 0.0 }
    }
}
