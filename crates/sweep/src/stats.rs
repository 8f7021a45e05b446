//! Mean, sample standard deviation and range of a few numbers (seeds).

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1 in the denominator); 0 for a single value.
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

impl Stats {
    /// `None` for no values.
    pub fn of(values: &[f64]) -> Option<Stats> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        Some(Stats {
            n,
            mean,
            std: var.sqrt(),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// `1.2345 ± 0.0012` with `digits` decimals (no ± for one value).
    pub fn fmt(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:.digits$} ± {:.digits$}", self.mean, self.std)
        } else {
            format!("{:.digits$}", self.mean)
        }
    }

    /// Like [`Stats::fmt`] with an explicit sign on the mean (gaps).
    pub fn fmt_signed(&self, digits: usize) -> String {
        if self.n > 1 {
            format!("{:+.digits$} ± {:.digits$}", self.mean, self.std)
        } else {
            format!("{:+.digits$}", self.mean)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Stats;

    #[test]
    fn sample_std_by_hand() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squared deviations 32, sample var 32/7.
        let s = Stats::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert_eq!(s.mean, 5.0);
        assert!((s.std - (32.0f64 / 7.0).sqrt()).abs() < 1e-12);
        assert_eq!((s.min, s.max, s.n), (2.0, 9.0, 8));
        assert_eq!(Stats::of(&[3.0]).unwrap().std, 0.0);
        assert!(Stats::of(&[]).is_none());
        assert_eq!(Stats::of(&[1.0, 2.0]).unwrap().fmt(2), "1.50 ± 0.71");
    }
}
