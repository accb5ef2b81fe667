//! Binary-classification metrics: ROC AUC, PR AUC (average precision), log
//! loss, Brier score, accuracy and a calibration table.
//!
//! Why one module: `eval classify`, the churn trainer and the inner
//! cross-validation that picks a model all score predictions the same single
//! way, with the same tie handling as scikit-learn (`roc_auc_score` gives tied
//! scores half credit; `average_precision_score` treats tied scores as one
//! threshold), so our figures compare with the anchors.
//!
//! Labels are `bool` (true = positive class), scores are probabilities of the
//! positive class (any monotone score works for the two AUCs).

use serde::{Deserialize, Serialize};

/// Area under the ROC curve (Mann–Whitney U with average ranks for ties).
///
/// `None` when `y` holds only one class (the AUC is undefined) or the lengths differ.
pub fn roc_auc(y: &[bool], score: &[f64]) -> Option<f64> {
    if y.len() != score.len() {
        return None;
    }
    let n_pos = y.iter().filter(|&&v| v).count();
    let n_neg = y.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    // Sum of (average, 1-based) ranks of the positives.
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && score[idx[j]] == score[idx[i]] {
            j += 1;
        }
        let avg_rank = (i + 1 + j) as f64 / 2.0; // mean of ranks i+1..=j
        let pos_in_group = idx[i..j].iter().filter(|&&k| y[k]).count();
        rank_sum_pos += avg_rank * pos_in_group as f64;
        i = j;
    }
    let np = n_pos as f64;
    let u = rank_sum_pos - np * (np + 1.0) / 2.0;
    Some(u / (np * n_neg as f64))
}

/// Average precision (area under the precision–recall curve as scikit-learn's
/// `average_precision_score`): Σ (Rₙ − Rₙ₋₁)·Pₙ over distinct score thresholds
/// taken from high to low.
///
/// `None` when there is no positive or the lengths differ.
pub fn average_precision(y: &[bool], score: &[f64]) -> Option<f64> {
    if y.len() != score.len() {
        return None;
    }
    let n_pos = y.iter().filter(|&&v| v).count();
    if n_pos == 0 {
        return None;
    }
    let mut idx: Vec<usize> = (0..y.len()).collect();
    idx.sort_by(|&a, &b| score[b].total_cmp(&score[a]));
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut prev_recall = 0.0;
    let mut ap = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j < idx.len() && score[idx[j]] == score[idx[i]] {
            if y[idx[j]] {
                tp += 1;
            } else {
                fp += 1;
            }
            j += 1;
        }
        let recall = tp as f64 / n_pos as f64;
        let precision = tp as f64 / (tp + fp) as f64;
        ap += (recall - prev_recall) * precision;
        prev_recall = recall;
        i = j;
    }
    Some(ap)
}

/// Probabilities are clipped to [EPS, 1 − EPS] before taking logs.
pub const LOG_LOSS_EPS: f64 = 1e-15;

/// Mean negative log-likelihood (natural log). `None` on empty input or length mismatch.
pub fn log_loss(y: &[bool], p: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != p.len() {
        return None;
    }
    let s: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| {
            let q = q.clamp(LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS);
            if t { -q.ln() } else { -(1.0 - q).ln() }
        })
        .sum();
    Some(s / y.len() as f64)
}

/// Brier score: mean squared difference between probability and outcome.
pub fn brier(y: &[bool], p: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != p.len() {
        return None;
    }
    let s: f64 = y
        .iter()
        .zip(p)
        .map(|(&t, &q)| {
            let d = q - f64::from(u8::from(t));
            d * d
        })
        .sum();
    Some(s / y.len() as f64)
}

/// Share of correct decisions at threshold 0.5 (`p >= 0.5` → positive).
pub fn accuracy(y: &[bool], p: &[f64]) -> Option<f64> {
    if y.is_empty() || y.len() != p.len() {
        return None;
    }
    let ok = y.iter().zip(p).filter(|&(&t, &q)| (q >= 0.5) == t).count();
    Some(ok as f64 / y.len() as f64)
}

/// All the scalar metrics of one set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BinaryMetrics {
    /// ROC AUC (NaN when one class only).
    pub roc_auc: f64,
    /// Average precision (NaN when no positive).
    pub pr_auc: f64,
    /// Log loss.
    pub log_loss: f64,
    /// Brier score.
    pub brier: f64,
    /// Accuracy at 0.5.
    pub accuracy: f64,
}

impl BinaryMetrics {
    /// Computes every metric; undefined ones are NaN.
    pub fn compute(y: &[bool], p: &[f64]) -> Self {
        BinaryMetrics {
            roc_auc: roc_auc(y, p).unwrap_or(f64::NAN),
            pr_auc: average_precision(y, p).unwrap_or(f64::NAN),
            log_loss: log_loss(y, p).unwrap_or(f64::NAN),
            brier: brier(y, p).unwrap_or(f64::NAN),
            accuracy: accuracy(y, p).unwrap_or(f64::NAN),
        }
    }
}

/// One row of a calibration (reliability) table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower edge of the predicted-probability bin (inclusive).
    pub lo: f64,
    /// Upper edge (exclusive, except the last bin which includes 1.0).
    pub hi: f64,
    /// Number of predictions in the bin.
    pub count: usize,
    /// Mean predicted probability in the bin.
    pub mean_predicted: f64,
    /// Observed share of positives in the bin.
    pub observed_rate: f64,
}

/// Calibration table over `bins` equal-width probability bins; empty bins are left out.
pub fn calibration_table(y: &[bool], p: &[f64], bins: usize) -> Vec<CalibrationBin> {
    let bins = bins.max(1);
    let mut count = vec![0usize; bins];
    let mut sum_p = vec![0.0; bins];
    let mut sum_y = vec![0.0; bins];
    for (&t, &q) in y.iter().zip(p) {
        let q = q.clamp(0.0, 1.0);
        let b = ((q * bins as f64) as usize).min(bins - 1);
        count[b] += 1;
        sum_p[b] += q;
        sum_y[b] += f64::from(u8::from(t));
    }
    (0..bins)
        .filter(|&b| count[b] > 0)
        .map(|b| CalibrationBin {
            lo: b as f64 / bins as f64,
            hi: (b + 1) as f64 / bins as f64,
            count: count[b],
            mean_predicted: sum_p[b] / count[b] as f64,
            observed_rate: sum_y[b] / count[b] as f64,
        })
        .collect()
}

/// Expected calibration error: count-weighted mean |predicted − observed| over the table's bins.
pub fn expected_calibration_error(table: &[CalibrationBin]) -> f64 {
    let n: usize = table.iter().map(|b| b.count).sum();
    if n == 0 {
        return f64::NAN;
    }
    table
        .iter()
        .map(|b| b.count as f64 * (b.mean_predicted - b.observed_rate).abs())
        .sum::<f64>()
        / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_perfect_inverted_and_ties() {
        let y = [false, false, true, true];
        assert!(close(roc_auc(&y, &[0.1, 0.2, 0.8, 0.9]).unwrap(), 1.0));
        assert!(close(roc_auc(&y, &[0.9, 0.8, 0.2, 0.1]).unwrap(), 0.0));
        // All tied: every pair gets half credit.
        assert!(close(roc_auc(&y, &[0.5; 4]).unwrap(), 0.5));
        // sklearn: roc_auc_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.75
        assert!(close(roc_auc(&y, &[0.1, 0.4, 0.35, 0.8]).unwrap(), 0.75));
        // A tie across classes: pairs (neg .5, pos .5) count 1/2.
        // pos {0.5, 0.9}, neg {0.5, 0.1}: pairs: (.5,.5)=.5, (.5,.1)=1, (.9,.5)=1, (.9,.1)=1 → 3.5/4
        let y2 = [true, true, false, false];
        assert!(close(roc_auc(&y2, &[0.5, 0.9, 0.5, 0.1]).unwrap(), 0.875));
        assert!(roc_auc(&[true, true], &[0.1, 0.2]).is_none());
    }

    #[test]
    fn average_precision_hand_checked() {
        // sklearn example: average_precision_score([0,0,1,1],[0.1,0.4,0.35,0.8]) = 0.8333…
        let y = [false, false, true, true];
        let ap = average_precision(&y, &[0.1, 0.4, 0.35, 0.8]).unwrap();
        assert!(close(ap, 5.0 / 6.0), "{ap}");
        // Ties form one threshold: all tied → precision = base rate.
        assert!(close(average_precision(&y, &[0.3; 4]).unwrap(), 0.5));
        assert!(average_precision(&[false, false], &[0.1, 0.2]).is_none());
    }

    #[test]
    fn log_loss_brier_accuracy() {
        let y = [true, false];
        let p = [0.8, 0.4];
        let ll = log_loss(&y, &p).unwrap();
        assert!(close(ll, -(0.8f64.ln() + 0.6f64.ln()) / 2.0));
        assert!(close(brier(&y, &p).unwrap(), (0.04 + 0.16) / 2.0));
        assert!(close(accuracy(&y, &p).unwrap(), 1.0));
        assert!(close(accuracy(&[true], &[0.5]).unwrap(), 1.0));
        // Clipping keeps a confident mistake finite.
        assert!(log_loss(&[true], &[0.0]).unwrap().is_finite());
    }

    #[test]
    fn calibration_table_bins() {
        let y = [false, true, true, false, true];
        let p = [0.05, 0.15, 0.95, 0.92, 1.0];
        let t = calibration_table(&y, &p, 10);
        assert_eq!(t.len(), 3);
        assert_eq!(t[2].count, 3);
        assert!(close(t[2].observed_rate, 2.0 / 3.0));
        assert!(close(t[0].mean_predicted, 0.05));
        let ece = expected_calibration_error(&t);
        assert!(ece > 0.0 && ece < 1.0);
    }
}
