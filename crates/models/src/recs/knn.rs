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
//! - [`ItemKnn::fit_sequential`] ("seq-knn"): the same item–item scorer, with
//!   similarities from *time adjacency*: two items are similar when users
//!   interacted with them within `window` positions of each other in their
//!   chronological order (sessions, catalogue pages, "people who rated X next
//!   rated Y"). Needs the order of each user's interactions (see
//!   [`super::data::chronological_order`]); scoring needs only the history.
//! - [`ItemKnn::fit_with_sessions`] ("session-knn"): the same scorer, with
//!   co-occurrence counted in histories and again, weighted, within visits
//!   (baskets, submitted pages): the sparse counterpart of session-aware EASE,
//!   for catalogues past EASE's dense cap.
//!
//! Similarities are `dot / (‖a‖‖b‖ + shrink)`; `shrink` damps similarities
//! resting on few co-occurrences.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use super::topn::top_k_indices;
use crate::ModelError;

/// Fitted item-kNN: the kept neighbours of each item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemKnn {
    /// Rows = items, columns = neighbour items, values = similarity.
    pub neighbors: Csr,
}

impl ItemKnn {
    /// Fits from the user × item matrix (`by_user`) and its transpose (`by_item`).
    pub fn fit(by_user: &Csr, by_item: &Csr, k: usize, shrink: f32) -> Self {
        Self::fit_blocks(&[(by_user, by_item, 1.0)], k, shrink)
    }

    /// Cosine item–item similarities on `Σ_b w_b · X_bᵀX_b` over blocks
    /// `(X_b: rows × items, X_bᵀ, w_b)` (the columns of the blocks stacked,
    /// without building the stacked matrix), keeping each item's `k` most
    /// similar items.
    fn fit_blocks(blocks: &[(&Csr, &Csr, f32)], k: usize, shrink: f32) -> Self {
        let n = blocks.first().map_or(0, |b| b.1.n_rows);
        let norms: Vec<f32> = (0..n)
            .map(|i| {
                blocks
                    .iter()
                    .map(|&(_, by_item, w)| {
                        w * by_item.row_values(i).iter().map(|v| v * v).sum::<f32>()
                    })
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0f32; n], vec![false; n], Vec::<u32>::new()),
                |(acc, flag, touched), i| {
                    for &(by_user, by_item, w) in blocks {
                        for (u, xu) in by_item.row(i) {
                            let xu = w * xu;
                            for (j, xj) in by_user.row(u as usize) {
                                if !flag[j as usize] {
                                    flag[j as usize] = true;
                                    touched.push(j);
                                }
                                acc[j as usize] += xu * xj;
                            }
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
                    // Every row is kept until the CSR is built: without this
                    // each would hold its candidate capacity (1.5 GB peak on a
                    // 68k-item catalogue instead of ≈ 0.2 GB).
                    cand.shrink_to_fit();
                    cand
                },
            )
            .collect();
        Self::from_rows(rows)
    }

    /// Fits session-aware similarities: cosine on `XᵀX + weight · SᵀS`, with
    /// `sessions` = `S` (sessions × items, one row per visit or basket, as from
    /// [`super::data::Timeline::sessions`]), so two items bought in one basket
    /// count more than two items anywhere in one history. The same as item-kNN
    /// on `X` stacked over `√weight · S`, without building that matrix. The
    /// sparse counterpart of session-aware EASE, for catalogues too large for
    /// a dense item × item model.
    pub fn fit_with_sessions(
        by_user: &Csr,
        by_item: &Csr,
        sessions: &Csr,
        weight: f32,
        k: usize,
        shrink: f32,
    ) -> Result<Self, ModelError> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(ModelError::InvalidParameter {
                name: "session_weight".into(),
                reason: format!("must be a finite number >= 0, got {weight}"),
            });
        }
        if sessions.n_cols != by_user.n_cols {
            return Err(ModelError::InvalidInput(format!(
                "sessions cover {} items, the interactions {}",
                sessions.n_cols, by_user.n_cols
            )));
        }
        let by_item_sessions = sessions.transpose();
        Ok(Self::fit_blocks(
            &[
                (by_user, by_item, 1.0),
                (sessions, &by_item_sessions, weight),
            ],
            k,
            shrink,
        ))
    }

    /// Fits time-adjacency similarities: `T_ij` counts the users in whose
    /// chronological sequence (`order`: same shape as `by_user`, values = each
    /// interaction's rank in time, as from [`super::data::chronological_order`];
    /// only the items of `by_user` are used, so `order` may cover more) items
    /// `i` and `j` are at most `window` positions apart;
    /// `sim_ij = T_ij / (√(n_i n_j) + shrink)` with `n_i` the item's count, and
    /// each item keeps its `k` most similar items.
    pub fn fit_sequential(
        by_user: &Csr,
        order: &Csr,
        window: usize,
        k: usize,
        shrink: f32,
    ) -> Result<Self, ModelError> {
        if order.n_rows != by_user.n_rows || order.n_cols != by_user.n_cols {
            return Err(ModelError::InvalidInput(format!(
                "interaction order is {} x {}, the interactions {} x {}",
                order.n_rows, order.n_cols, by_user.n_rows, by_user.n_cols
            )));
        }
        if window == 0 {
            return Err(ModelError::InvalidParameter {
                name: "window".into(),
                reason: "must be >= 1".into(),
            });
        }
        let n = by_user.n_cols;
        let mut pairs: Vec<(u32, u32, f32)> = Vec::new();
        let mut counts = vec![0f32; n];
        let mut seq: Vec<(f32, u32)> = Vec::new();
        for u in 0..by_user.n_rows {
            let oi = order.row_indices(u);
            let ov = order.row_values(u);
            seq.clear();
            for &i in by_user.row_indices(u) {
                // Items without a known position go last (ties: by item).
                let t = oi.binary_search(&i).map_or(f32::INFINITY, |p| ov[p]);
                seq.push((t, i));
            }
            seq.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            for (a, &(_, i)) in seq.iter().enumerate() {
                counts[i as usize] += 1.0;
                for &(_, j) in seq.iter().skip(a + 1).take(window) {
                    pairs.push((i, j, 1.0));
                    pairs.push((j, i, 1.0));
                }
            }
        }
        let t = Csr::from_triples(n, n, &pairs, |a, b| a + b)?;
        drop(pairs);
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map(|i| {
                let mut cand: Vec<(u32, f32)> = t
                    .row(i)
                    .filter(|&(j, _)| j as usize != i)
                    .map(|(j, c)| {
                        (
                            j,
                            c / ((counts[i] * counts[j as usize]).sqrt() + shrink + 1e-12),
                        )
                    })
                    .collect();
                if cand.len() > k {
                    cand.select_nth_unstable_by(k, |a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                    cand.truncate(k);
                }
                cand.sort_by_key(|&(j, _)| j);
                cand.shrink_to_fit(); // see `fit`
                cand
            })
            .collect();
        Ok(Self::from_rows(rows))
    }

    fn from_rows(rows: Vec<Vec<(u32, f32)>>) -> Self {
        let n = rows.len();
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
    #[serde(with = "crate::packed")]
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

    /// Removes training user `u`'s stored interactions (a person's erasure):
    /// their row of `by_user`, their column of `by_item` and their norm. The
    /// row stays (other users keep their numbers) but is empty, so `u` is
    /// nobody's neighbour any more and their history shapes no one's
    /// recommendations. Returns false when `u` is not a training row.
    pub fn forget_user(&mut self, u: usize) -> bool {
        if u >= self.by_user.n_rows {
            return false;
        }
        self.by_user.clear_row(u);
        self.by_item.clear_col(u as u32);
        if let Some(n) = self.norms.get_mut(u) {
            *n = 0.0;
        }
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recs::data::chronological_order;

    /// Users walk a ring of `n` items in order, each from its own start, so
    /// items that follow each other in time are ring neighbours.
    fn ring(n_users: u32, n: u32, len: u32) -> (Csr, Csr) {
        let mut triples = Vec::new();
        let mut events = Vec::new();
        for u in 0..n_users {
            let start = (u * 7) % n;
            for s in 0..len {
                let i = (start + s) % n;
                triples.push((u, i, 1.0));
                events.push((u, i, i64::from(1000 * u + s)));
            }
        }
        let x = Csr::from_triples(n_users as usize, n as usize, &triples, |_, b| b).expect("csr");
        let order = chronological_order(n_users as usize, n as usize, &events).expect("order");
        (x, order)
    }

    #[test]
    fn session_similarity_is_item_knn_on_the_stacked_rows() {
        // Users with overlapping histories and their visits (rows of `s`).
        let (x, _) = ring(40, 25, 9);
        let mut visits = Vec::new();
        for u in 0..x.n_rows {
            for (k, chunk) in x.row_indices(u).chunks(3).enumerate() {
                let row = (u * 3 + k) as u32;
                visits.extend(chunk.iter().map(|&i| (row, i, 1.0)));
            }
        }
        let s = Csr::from_triples(x.n_rows * 3, x.n_cols, &visits, |_, b| b).expect("visits");
        let w = 4.0f32;
        let m = ItemKnn::fit_with_sessions(&x, &x.transpose(), &s, w, 6, 1.0).expect("fit");
        // The same model from the explicitly stacked matrix [X; √w·S].
        let mut stacked: Vec<(u32, u32, f32)> = Vec::new();
        for u in 0..x.n_rows {
            stacked.extend(x.row(u).map(|(i, v)| (u as u32, i, v)));
        }
        for r in 0..s.n_rows {
            stacked.extend(
                s.row(r)
                    .map(|(i, v)| ((x.n_rows + r) as u32, i, v * w.sqrt())),
            );
        }
        let big =
            Csr::from_triples(x.n_rows + s.n_rows, x.n_cols, &stacked, |_, b| b).expect("stacked");
        let reference = ItemKnn::fit(&big, &big.transpose(), 6, 1.0);
        assert_eq!(m.neighbors.indptr, reference.neighbors.indptr);
        assert_eq!(m.neighbors.indices, reference.neighbors.indices);
        for (a, b) in m.neighbors.values.iter().zip(&reference.neighbors.values) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        // Weight 0 is plain item-kNN; bad weights and shapes are refused.
        let plain = ItemKnn::fit(&x, &x.transpose(), 6, 1.0);
        let zero = ItemKnn::fit_with_sessions(&x, &x.transpose(), &s, 0.0, 6, 1.0).expect("fit");
        assert_eq!(zero, plain);
        assert!(ItemKnn::fit_with_sessions(&x, &x.transpose(), &s, -1.0, 6, 1.0).is_err());
        let narrow = Csr::from_triples(1, 3, &[], |_, b| b).expect("narrow");
        assert!(ItemKnn::fit_with_sessions(&x, &x.transpose(), &narrow, 1.0, 6, 1.0).is_err());
    }

    #[test]
    fn sequential_similarity_follows_time_adjacency() {
        let (x, order) = ring(60, 30, 8);
        let m = ItemKnn::fit_sequential(&x, &order, 1, 5, 0.0).expect("fit");
        // Item 10's neighbours are 9 and 11 (adjacent in every walk through it).
        let nb: Vec<u32> = m.neighbors.row_indices(10).to_vec();
        assert_eq!(nb, vec![9, 11], "{nb:?}");
        // A history {3, 4} scores 2 and 5 highest.
        let mut s = vec![0f32; 30];
        m.score(&[(3, 1.0), (4, 1.0)], &mut s);
        let top = top_k_indices(&s, 2, |i| i != 3 && i != 4);
        assert_eq!(
            {
                let mut t = top.clone();
                t.sort_unstable();
                t
            },
            vec![2, 5]
        );
        // Mismatched shapes and a zero window are errors.
        let (_, other) = ring(10, 30, 8);
        assert!(ItemKnn::fit_sequential(&x, &other, 1, 5, 0.0).is_err());
        assert!(ItemKnn::fit_sequential(&x, &order, 0, 5, 0.0).is_err());
    }
}
