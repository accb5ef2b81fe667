//! Baseline predictor `r̂ = μ + b_u + b_i`, the biases fitted by alternating
//! least squares exactly as in Koren (2010, §2.1) and Surprise's
//! `BaselineOnly` (`method='als'`): item biases first, then user biases, each
//! a shrunk mean of the residuals (`Σ(r − μ − b_other) / (reg + n)`).
//!
//! It is a model on its own and the starting point of the others (the kNN
//! model's baseline, the factor models' initial biases).

use serde::{Deserialize, Serialize};

use super::{RatingData, RowMajor};

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
        super::Prep::new(data).baseline(p).into_owned()
    }

    /// ALS on the ratings grouped by user and by item (each sweep gathers
    /// along rows instead of scattering, so it runs at memory speed).
    pub(crate) fn fit_rows(
        mu: f32,
        by_user: &RowMajor,
        by_item: &RowMajor,
        p: &BaselineParams,
    ) -> Baseline {
        let mut bu = vec![0f32; by_user.n_rows()];
        let mut bi = vec![0f32; by_item.n_rows()];
        for _ in 0..p.epochs {
            sweep(by_item, &bu, mu, p.reg_i, &mut bi);
            sweep(by_user, &bi, mu, p.reg_u, &mut bu);
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

/// One ALS half-sweep: `b[r] = Σ_row (v − μ − other[c]) / (reg + n_r)`.
fn sweep(rows: &RowMajor, other: &[f32], mu: f32, reg: f32, b: &mut [f32]) {
    for (r, out) in b.iter_mut().enumerate() {
        let (cols, vals) = rows.row(r);
        // Four independent partial sums: the additions do not wait on each other.
        let mut acc = [0f32; 4];
        let (cc, vc) = (cols.chunks_exact(4), vals.chunks_exact(4));
        let (cr, vr) = (cc.remainder(), vc.remainder());
        for (c4, v4) in cc.zip(vc) {
            for l in 0..4 {
                acc[l] += v4[l] - other[c4[l] as usize];
            }
        }
        let mut s = (acc[0] + acc[2]) + (acc[1] + acc[3]);
        for (&c, &v) in cr.iter().zip(vr) {
            s += v - other[c as usize];
        }
        s -= mu * cols.len() as f32;
        *out = if cols.is_empty() {
            0.0
        } else {
            s / (reg + cols.len() as f32)
        };
    }
}
