//! Baseline predictor `r̂ = μ + b_u + b_i`, the biases fitted by alternating
//! least squares exactly as in Koren (2010, §2.1) and Surprise's
//! `BaselineOnly` (`method='als'`): item biases first, then user biases, each
//! a shrunk mean of the residuals (`Σ(r − μ − b_other) / (reg + n)`).
//!
//! It is a model on its own and the starting point of the others (the kNN
//! model's baseline, the factor models' initial biases).

use serde::{Deserialize, Serialize};

use super::RatingData;

/// Hyper-parameters of [`Baseline`] (Surprise's defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BaselineParams {
    /// Shrinkage of the item biases (pseudo-count).
    pub reg_i: f32,
    /// Shrinkage of the user biases (pseudo-count).
    pub reg_u: f32,
    /// ALS sweeps.
    pub epochs: usize,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            reg_i: 10.0,
            reg_u: 15.0,
            epochs: 10,
        }
    }
}

/// Fitted biases.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    /// Global mean μ.
    pub mu: f32,
    /// User biases (0 for users without ratings).
    pub bu: Vec<f32>,
    /// Item biases (0 for items without ratings).
    pub bi: Vec<f32>,
}

impl Baseline {
    /// Fits the biases by ALS.
    pub fn fit(data: &RatingData, p: &BaselineParams) -> Baseline {
        let mu = data.mean();
        let mut bu = vec![0f32; data.n_users];
        let mut bi = vec![0f32; data.n_items];
        let mut su = vec![0f32; data.n_users];
        let mut si = vec![0f32; data.n_items];
        let cu = data.user_counts();
        let ci = data.item_counts();
        for _ in 0..p.epochs {
            si.iter_mut().for_each(|x| *x = 0.0);
            for ((&u, &i), &r) in data.users.iter().zip(&data.items).zip(&data.ratings) {
                si[i as usize] += r - mu - bu[u as usize];
            }
            for ((b, &s), &c) in bi.iter_mut().zip(&si).zip(&ci) {
                *b = s / (p.reg_i + c as f32);
            }
            su.iter_mut().for_each(|x| *x = 0.0);
            for ((&u, &i), &r) in data.users.iter().zip(&data.items).zip(&data.ratings) {
                su[u as usize] += r - mu - bi[i as usize];
            }
            for ((b, &s), &c) in bu.iter_mut().zip(&su).zip(&cu) {
                *b = s / (p.reg_u + c as f32);
            }
        }
        Baseline { mu, bu, bi }
    }

    /// `μ + b_u + b_i` (a user or item outside the training ranges counts as unknown: bias 0).
    #[inline]
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        self.mu
            + self.bu.get(u as usize).copied().unwrap_or(0.0)
            + self.bi.get(i as usize).copied().unwrap_or(0.0)
    }
}
