//! Rating-prediction accuracy: RMSE and MAE, computed one way for every
//! rating model and for `infogap eval recs` (the definitions Surprise uses:
//! plain means over all test ratings, no per-user averaging).

/// Root mean squared error of `pred` against `truth` (same length; `NaN` when empty).
pub fn rmse(pred: &[f32], truth: &[f32]) -> f64 {
    debug_assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return f64::NAN;
    }
    let s: f64 = pred
        .iter()
        .zip(truth)
        .map(|(&p, &t)| (p as f64 - t as f64).powi(2))
        .sum();
    (s / pred.len() as f64).sqrt()
}

/// Mean absolute error of `pred` against `truth` (same length; `NaN` when empty).
pub fn mae(pred: &[f32], truth: &[f32]) -> f64 {
    debug_assert_eq!(pred.len(), truth.len());
    if pred.is_empty() {
        return f64::NAN;
    }
    let s: f64 = pred
        .iter()
        .zip(truth)
        .map(|(&p, &t)| (p as f64 - t as f64).abs())
        .sum();
    s / pred.len() as f64
}

/// Mean and population standard deviation (as numpy's `np.std`, which the
/// peers' `rmse_std` uses).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / n;
    (m, v.sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let p = [1.0, 2.0, 3.0, 4.0];
        let t = [1.0, 3.0, 3.0, 2.0];
        assert!((rmse(&p, &t) - (5.0f64 / 4.0).sqrt()).abs() < 1e-12);
        assert!((mae(&p, &t) - 0.75).abs() < 1e-12);
        assert!(rmse(&[], &[]).is_nan());
        let (m, s) = mean_std(&[1.0, 3.0]);
        assert_eq!((m, s), (2.0, 1.0));
    }
}
