//! EASE (Steck 2019): a closed-form item–item model.
//!
//! `G = XᵀX`, `P = (G + Λ)⁻¹`, `B = −P / diag(P)` column-wise with `diag(B) = 0`;
//! a user's scores are `x_u B`. `Λ` is diagonal: `λ` for every item, plus
//! `d/(1−d) · G_jj` with dropout `d` (the emphasized-denoising variant of
//! Steck 2020, which regularizes popular items more); `d = 0` is plain EASE.
//!
//! The Gram matrix is dense (items²), so EASE is the right tool only while the
//! item count is moderate: `max_items` caps the dense part to the most popular
//! items (the rest score 0 and rank after them), and the front ends switch to
//! item-kNN or iALS for larger catalogues (see `benchmarks/recs-topn.md`).
//! The Cholesky factorization and inverse use faer (f64).

use faer::Side;
use faer::linalg::solvers::DenseSolveCore;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use crate::ModelError;

/// Fitted EASE weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ease {
    /// Items of the model (dense catalogue indices), in model order.
    pub items: Vec<u32>,
    /// Position of each catalogue item in `items` (`u32::MAX` = not modelled).
    pub pos: Vec<u32>,
    /// Row-major `|items|²` weights: row = history item, column = scored item.
    pub b: Vec<f32>,
}

impl Ease {
    /// Fits on `by_user`/`by_item` with L2 `lambda`, dropout emphasis `dropout`
    /// in `[0, 1)`, keeping at most `max_items` (most popular) items.
    pub fn fit(
        by_user: &Csr,
        by_item: &Csr,
        lambda: f64,
        dropout: f64,
        max_items: usize,
    ) -> Result<Self, ModelError> {
        if lambda.is_nan() || lambda < 0.0 {
            return Err(ModelError::InvalidParameter {
                name: "lambda".into(),
                reason: "must be >= 0".into(),
            });
        }
        if !(0.0..1.0).contains(&dropout) {
            return Err(ModelError::InvalidParameter {
                name: "dropout".into(),
                reason: "must be in [0, 1)".into(),
            });
        }
        let n_all = by_item.n_rows;
        let mut items: Vec<u32> = (0..n_all as u32)
            .filter(|&i| by_item.row_len(i as usize) > 0)
            .collect();
        if items.len() > max_items {
            items.sort_by_key(|&i| (std::cmp::Reverse(by_item.row_len(i as usize)), i));
            items.truncate(max_items);
            items.sort_unstable();
        }
        let n = items.len();
        let mut pos = vec![u32::MAX; n_all];
        for (p, &i) in items.iter().enumerate() {
            pos[i as usize] = p as u32;
        }
        if n == 0 {
            return Ok(Ease {
                items,
                pos,
                b: Vec::new(),
            });
        }
        // Gram matrix, one row per item in parallel.
        let mut g = vec![0f64; n * n];
        g.par_chunks_mut(n).enumerate().for_each(|(a, row)| {
            let i = items[a] as usize;
            for (u, xu) in by_item.row(i) {
                for (j, xj) in by_user.row(u as usize) {
                    let pj = pos[j as usize];
                    if pj != u32::MAX {
                        row[pj as usize] += f64::from(xu) * f64::from(xj);
                    }
                }
            }
        });
        Self::from_gram(items, pos, g, lambda, dropout)
    }

    /// Solves EASE from a precomputed dense Gram matrix (row-major `|items|²`) over `items`.
    pub fn from_gram(
        items: Vec<u32>,
        pos: Vec<u32>,
        g: Vec<f64>,
        lambda: f64,
        dropout: f64,
    ) -> Result<Self, ModelError> {
        let n = items.len();
        let emph = dropout / (1.0 - dropout);
        let mut m = faer::Mat::<f64>::from_fn(n, n, |i, j| g[i * n + j]);
        drop(g);
        for j in 0..n {
            let gjj = m[(j, j)];
            m[(j, j)] = gjj + lambda + emph * gjj;
        }
        let llt = m.llt(Side::Lower).map_err(|e| {
            ModelError::FitFailed(format!(
                "EASE: Gram + lambda*I is not positive definite ({e:?}); raise lambda"
            ))
        })?;
        drop(m);
        let p = llt.inverse();
        let mut b = vec![0f32; n * n];
        b.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
            for (j, out) in row.iter_mut().enumerate() {
                if i != j {
                    // P is symmetric: B_ij = -P_ij / P_jj.
                    *out = (-p[(i, j)] / p[(j, j)]) as f32;
                }
            }
        });
        Ok(Ease { items, pos, b })
    }

    /// Scores every catalogue item for a history (items outside the model score 0).
    pub fn score(&self, history: &[(u32, f32)], out: &mut [f32]) {
        out.fill(0.0);
        let n = self.items.len();
        if n == 0 {
            return;
        }
        let mut acc = vec![0f32; n];
        for &(i, w) in history {
            let Some(&p) = self.pos.get(i as usize) else {
                continue;
            };
            if p == u32::MAX {
                continue;
            }
            let row = &self.b[p as usize * n..(p as usize + 1) * n];
            for (a, &bij) in acc.iter_mut().zip(row) {
                *a += w * bij;
            }
        }
        for (&item, &s) in self.items.iter().zip(&acc) {
            out[item as usize] = s;
        }
    }

    /// Contribution of each history item to the score of `item`.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        let n = self.items.len();
        let Some(&pj) = self.pos.get(item as usize) else {
            return Vec::new();
        };
        if pj == u32::MAX {
            return Vec::new();
        }
        history
            .iter()
            .filter_map(|&(i, w)| {
                let p = *self.pos.get(i as usize)?;
                (p != u32::MAX).then(|| (i, w * self.b[p as usize * n + pj as usize]))
            })
            .collect()
    }
}
