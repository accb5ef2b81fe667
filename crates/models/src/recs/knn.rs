//! Neighbourhood recommenders with cosine similarity.
//!
//! - [`ItemKnn`]: item–item cosine similarities, each item keeps its `k` most
//!   similar items; a user's score for item `j` is `Σ_i x_ui · sim(i, j)` over
//!   the user's items `i`. Fold-in is free (only the history is needed) and the
//!   terms of the sum are the explanation.
//! - [`UserKnn`]: the classic CRM recommender: the `k` customers most similar
//!   (cosine over their interaction vectors) vote for items with their
//!   similarity as weight. Works for unseen customers from their history alone.
//!
//! Similarities are `dot / (‖a‖‖b‖ + shrink)`; `shrink` damps similarities
//! resting on few co-occurrences.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use super::topn::top_k_indices;

/// Fitted item-kNN: the kept neighbours of each item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemKnn {
    /// Rows = items, columns = neighbour items, values = similarity.
    pub neighbors: Csr,
}

impl ItemKnn {
    /// Fits from the user × item matrix (`by_user`) and its transpose (`by_item`).
    pub fn fit(by_user: &Csr, by_item: &Csr, k: usize, shrink: f32) -> Self {
        let n = by_item.n_rows;
        let norms: Vec<f32> = (0..n)
            .map(|i| {
                by_item
                    .row_values(i)
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n], vec![false; n], Vec::<u32>::new()),
                |(acc, flag, touched), i| {
                    for (u, xu) in by_item.row(i) {
                        for (j, xj) in by_user.row(u as usize) {
                            if !flag[j as usize] {
                                flag[j as usize] = true;
                                touched.push(j);
                            }
                            acc[j as usize] += xu * xj;
                        }
                    }
                    let mut cand: Vec<(u32, f32)> = Vec::with_capacity(touched.len());
                    for &j in touched.iter() {
                        let dot = acc[j as usize];
                        acc[j as usize] = 0.0;
                        flag[j as usize] = false;
                        if j as usize != i && dot != 0.0 {
                            let s = dot / (norms[i] * norms[j as usize] + shrink + 1e-12);
                            cand.push((j, s));
                        }
                    }
                    touched.clear();
                    if cand.len() > k {
                        cand.select_nth_unstable_by(k, |a, b| {
                            b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                        });
                        cand.truncate(k);
                    }
                    cand.sort_by_key(|&(j, _)| j);
                    cand
                },
            )
            .collect();
        let mut indptr = Vec::with_capacity(n + 1);
        indptr.push(0);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        for r in rows {
            for (j, s) in r {
                indices.push(j);
                values.push(s);
            }
            indptr.push(indices.len());
        }
        ItemKnn {
            neighbors: Csr {
                n_rows: n,
                n_cols: n,
                indptr,
                indices,
                values,
            },
        }
    }

    /// Scores every item for a history of `(item, weight)` pairs.
    pub fn score(&self, history: &[(u32, f32)], out: &mut [f32]) {
        out.fill(0.0);
        for &(i, w) in history {
            if (i as usize) < self.neighbors.n_rows {
                for (j, s) in self.neighbors.row(i as usize) {
                    out[j as usize] += w * s;
                }
            }
        }
    }

    /// Contribution of each history item to the score of `item`.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        history
            .iter()
            .filter_map(|&(i, w)| {
                let row = self.neighbors.row_indices(i as usize);
                row.binary_search(&item)
                    .ok()
                    .map(|p| (i, w * self.neighbors.row_values(i as usize)[p]))
            })
            .collect()
    }
}

/// Fitted user-kNN: the training users' interactions (it is a lazy learner).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserKnn {
    /// Training users × items.
    pub by_user: Csr,
    /// Items × training users.
    pub by_item: Csr,
    /// L2 norm of each training user's row.
    pub norms: Vec<f32>,
    /// Number of neighbours.
    pub k: usize,
    /// Shrinkage of the cosine.
    pub shrink: f32,
}

impl UserKnn {
    /// Fits (stores the data and the norms).
    pub fn fit(by_user: &Csr, by_item: &Csr, k: usize, shrink: f32) -> Self {
        let norms = (0..by_user.n_rows)
            .map(|u| {
                by_user
                    .row_values(u)
                    .iter()
                    .map(|v| v * v)
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        UserKnn {
            by_user: by_user.clone(),
            by_item: by_item.clone(),
            norms,
            k,
            shrink,
        }
    }

    /// The `k` most similar training users to a history (excluding `exclude`).
    pub fn neighbours(&self, history: &[(u32, f32)], exclude: Option<u32>) -> Vec<(u32, f32)> {
        let n = self.by_user.n_rows;
        let mut acc = vec![0f32; n];
        let hn = history.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
        for &(i, w) in history {
            if (i as usize) < self.by_item.n_rows {
                for (v, x) in self.by_item.row(i as usize) {
                    acc[v as usize] += w * x;
                }
            }
        }
        if let Some(u) = exclude.filter(|&u| (u as usize) < n) {
            acc[u as usize] = 0.0;
        }
        for (v, a) in acc.iter_mut().enumerate() {
            if *a != 0.0 {
                *a /= hn * self.norms[v] + self.shrink + 1e-12;
            }
        }
        top_k_indices(&acc, self.k, |v| acc[v] > 0.0)
            .into_iter()
            .map(|v| (v, acc[v as usize]))
            .collect()
    }

    /// Scores every item for a history; `user` (a training row) is left out of its own neighbours.
    pub fn score(&self, user: Option<u32>, history: &[(u32, f32)], out: &mut [f32]) {
        out.fill(0.0);
        for (v, s) in self.neighbours(history, user) {
            for (j, x) in self.by_user.row(v as usize) {
                out[j as usize] += s * x;
            }
        }
    }

    /// Contribution of each history item to the score of `item`: the score is
    /// `Σ_v sim_v x_vj` with `sim_v = Σ_i w_i x_vi / denom_v`, so item `i`
    /// contributes `Σ_v w_i x_vi x_vj / denom_v` over the neighbours `v`.
    pub fn contributions(
        &self,
        history: &[(u32, f32)],
        item: u32,
        user: Option<u32>,
    ) -> Vec<(u32, f32)> {
        let hn = history.iter().map(|&(_, w)| w * w).sum::<f32>().sqrt();
        let mut out: Vec<(u32, f32)> = history.iter().map(|&(i, _)| (i, 0.0)).collect();
        for (v, _) in self.neighbours(history, user) {
            let v = v as usize;
            let cols = self.by_user.row_indices(v);
            let vals = self.by_user.row_values(v);
            let Ok(pj) = cols.binary_search(&item) else {
                continue;
            };
            let denom = hn * self.norms[v] + self.shrink + 1e-12;
            for (k, &(i, w)) in history.iter().enumerate() {
                if let Ok(pi) = cols.binary_search(&i) {
                    out[k].1 += w * vals[pi] * vals[pj] / denom;
                }
            }
        }
        out
    }
}
