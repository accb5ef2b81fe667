//! Regression metrics: R², RMSE, MAE, computed one single way for every
//! regression model and `eval` command.

/// Coefficient of determination 1 − SS_res/SS_tot (`None` when empty or
/// lengths differ; `NaN` when the truth is constant).
pub fn r2(y: &[f64], pred: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != pred.len() {
        return None;
    }
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|v| (v - mean).powi(2)).sum();
    let ss_res: f64 = y.iter().zip(pred).map(|(a, b)| (a - b).powi(2)).sum();
    Some(if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        f64::NAN
    })
}

/// Root mean squared error.
pub fn rmse(y: &[f64], pred: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != pred.len() {
        return None;
    }
    Some(
        (y.iter()
            .zip(pred)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / y.len() as f64)
            .sqrt(),
    )
}

/// Mean absolute error.
pub fn mae(y: &[f64], pred: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != pred.len() {
        return None;
    }
    Some(y.iter().zip(pred).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.0, 2.0, 3.0, 5.0];
        assert_eq!(rmse(&y, &p), Some(0.5));
        assert_eq!(mae(&y, &p), Some(0.25));
        assert!((r2(&y, &p).unwrap() - (1.0 - 1.0 / 5.0)).abs() < 1e-12);
        assert_eq!(r2(&y, &p[..3]), None);
    }
}
