//! Recipe floats are parsed as f64 but many are used in f32 (the optimizer update, norms, loss
//! weights): a value that overflows there, or that is non-zero and flushes to 0, would pass an
//! f64 check and then poison or silently disable training. Checked at validation instead.

use crate::KeyError;

/// `v` as the f32 it will be used as; an error at `key` when it overflows or flushes to zero.
pub fn f32_value(key: &str, v: f64) -> Result<f32, KeyError> {
    let f = v as f32;
    if v.is_finite() && (!f.is_finite() || (v != 0.0 && f == 0.0)) {
        return Err(KeyError::new(
            key,
            format!(
                "{v} is not representable in f32, which uses it (|x| must be 0 or in \
                 1.2e-38 ..= 3.4e38)"
            ),
        ));
    }
    Ok(f)
}

/// [`f32_value`] for every `(key, value)` pair.
pub fn f32_values<'a>(pairs: impl IntoIterator<Item = (&'a str, f64)>) -> Result<(), KeyError> {
    pairs
        .into_iter()
        .try_for_each(|(k, v)| f32_value(k, v).map(drop))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_and_flush_to_zero_are_refused_and_the_rest_pass() {
        for bad in [1e39, -1e39, 1e-50, -1e-46, f64::MAX] {
            let e = f32_value("lr", bad).unwrap_err();
            assert_eq!(e.key.as_str(), "lr", "{bad}");
        }
        for good in [0.0, 1e-30, 3e38, -2.5, 1.0, f32::MIN_POSITIVE as f64] {
            assert_eq!(f32_value("lr", good).unwrap(), good as f32);
        }
        // NaN and Inf are the callers' range checks to report (with their own wording).
        assert!(f32_value("lr", f64::NAN).is_ok());
    }
}
