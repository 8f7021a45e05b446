//! Block statistics with a fixed summation order.
//!
//! Sums use eight interleaved f32 lanes (`lane[i % 8] += v[i]`, in index order), then the lanes are
//! combined as `(l0+l4, l1+l5, l2+l6, l3+l7)`, then `(a0+a2, a1+a3)`, then `b0+b1`. The order is part
//! of the spec: it vectorizes on CPU and a GPU thread (or an 8-lane subgroup) can reproduce it.
//! Rows of a tile and rows of a tensor are merged in row order, in f32 (tiles) or f64 (tensors).

/// What a scale rule needs besides amax.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    pub moments: bool,
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

    /// Statistics of a slice; the sums are only computed when `needs.moments`.
    #[inline]
    pub fn of(v: &[f32], needs: Needs) -> Stats {
        let mut amax = 0f32;
        let mut bad = 0u32;
        for &x in v {
            let a = x.abs();
            // NaN compares false and never becomes the amax; it is flagged through `bad`.
            amax = if a > amax { a } else { amax };
            bad |= ((x.to_bits() & 0x7f80_0000) == 0x7f80_0000) as u32;
        }
        let mut s = Stats {
            amax,
            n: v.len(),
            nonfinite: bad != 0,
            ..Stats::EMPTY
        };
        if needs.moments {
            let (mut l1, mut l2, mut la) = ([0f32; 8], [0f32; 8], [0f32; 8]);
            let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
            for (i, &x) in v.iter().enumerate() {
                l1[i & 7] += x;
                l2[i & 7] += x * x;
                la[i & 7] += x.abs();
                mn = if x < mn { x } else { mn };
                mx = if x > mx { x } else { mx };
            }
            s.sum = lanes_combine(l1);
            s.sumsq = lanes_combine(l2);
            s.sum_abs = lanes_combine(la);
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
