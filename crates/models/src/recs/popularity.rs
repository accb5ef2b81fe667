//! Popularity: the item's total interaction weight (number of users for
//! binary data). The baseline every recommender must beat, and the cold-start
//! fallback for customers without history.

use serde::{Deserialize, Serialize};

use super::data::Csr;

/// Item popularity scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Popularity {
    /// Score per item: the number of users who interacted with it, plus a
    /// tiny tie-breaker proportional to the summed weight.
    #[serde(with = "crate::packed")]
    pub scores: Vec<f32>,
}

impl Popularity {
    /// Fits on a user × item matrix.
    pub fn fit(by_user: &Csr) -> Self {
        let mut counts = vec![0f64; by_user.n_cols];
        let mut weights = vec![0f64; by_user.n_cols];
        for (&c, &v) in by_user.indices.iter().zip(&by_user.values) {
            counts[c as usize] += 1.0;
            weights[c as usize] += f64::from(v);
        }
        let max_w = weights.iter().copied().fold(0.0, f64::max).max(1e-12);
        let scores = counts
            .iter()
            .zip(&weights)
            .map(|(&c, &w)| (c + 0.5 * w / max_w) as f32)
            .collect();
        Popularity { scores }
    }

    /// Writes the scores into `out`.
    pub fn score(&self, out: &mut [f32]) {
        out.copy_from_slice(&self.scores);
    }
}
