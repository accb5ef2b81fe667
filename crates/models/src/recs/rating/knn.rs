//! Item-based kNN with baselines (Koren 2010 §2.2; Surprise's `KNNBaseline`
//! with `sim_options={'name': 'pearson_baseline', 'user_based': False}`):
//!
//! `r̂_ui = b_ui + Σ_{j∈N_k(i;u)} s_ij (r_uj − b_uj) / Σ s_ij`,
//!
//! where `b_ui = μ + b_u + b_i` is the ALS baseline, `s_ij` the
//! pearson-baseline similarity over the users who rated both items, shrunk by
//! `(n_ij − 1)/(n_ij − 1 + shrink)`, and `N_k(i;u)` the `k` items rated by `u`
//! most similar to `i` (only positive similarities contribute, as in Surprise;
//! with none, the baseline is returned).
//!
//! The similarities are computed once per pair (packed lower triangle), rows
//! in parallel (rayon, one dense `[Σxy, Σx², Σy², n]` accumulator per thread,
//! branch-free inner loop). Catalogues up to [`DENSE_MAX_ITEMS`] keep them in
//! that triangle (prediction = one lookup per item the user rated);
//! larger ones keep only the positive similarities in sorted sparse rows,
//! optionally capped to the `max_neighbors` largest per item, so memory
//! follows the co-rating pattern rather than `n_items²`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, BaselineParams};
use super::{RatingData, RowMajor};
use crate::ModelError;

/// Catalogues up to this size keep the similarities in a dense packed
/// triangle (≤ 72 MB), larger ones in sparse sorted rows.
pub const DENSE_MAX_ITEMS: usize = 6000;

/// Similarity storage.
#[derive(Debug, Clone, PartialEq)]
enum Sims {
    /// Packed lower triangle: `s(i, j)`, `j < i`, at `i(i−1)/2 + j`.
    Packed(Vec<f32>),
    /// Sorted rows (binary-searched).
    Sparse(RowMajor),
}

/// Hyper-parameters of [`KnnBaseline`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KnnParams {
    /// Neighbours used per prediction.
    pub k: usize,
    /// Minimum neighbours (with positive similarity) for the kNN term; else baseline only.
    pub min_k: usize,
    /// Similarity shrinkage (pseudo-count of common raters).
    pub shrink: f32,
    /// Largest number of neighbours kept per item (0 = all positive ones;
    /// non-zero forces the sparse storage).
    pub max_neighbors: usize,
    /// The baseline's parameters.
    pub baseline: BaselineParams,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 40,
            min_k: 1,
            shrink: 100.0,
            max_neighbors: 0,
            baseline: BaselineParams::default(),
        }
    }
}

/// Fitted item-kNN with baselines.
#[derive(Debug, Clone, PartialEq)]
pub struct KnnBaseline {
    /// The baseline.
    pub base: Baseline,
    /// Parameters.
    pub params: KnnParams,
    /// Positive similarities.
    sim: Sims,
    /// Training ratings by user, items sorted, values are residuals `r − b_uj`.
    resid: RowMajor,
}

impl KnnBaseline {
    /// Fits the baseline and the similarity rows.
    pub fn fit(data: &RatingData, p: &KnnParams) -> Result<Self, ModelError> {
        if p.k == 0 {
            return Err(ModelError::InvalidParameter {
                name: "k".into(),
                reason: "must be >= 1".into(),
            });
        }
        if !(p.shrink.is_finite() && p.shrink >= 0.0) {
            return Err(ModelError::InvalidParameter {
                name: "shrink".into(),
                reason: "must be a finite number >= 0".into(),
            });
        }
        let base = Baseline::fit(data, &p.baseline);
        let mut by_user = data.by_user();
        for u in 0..by_user.n_rows() {
            let (s, e) = (by_user.indptr[u], by_user.indptr[u + 1]);
            for t in s..e {
                by_user.val[t] -= base.predict(u as u32, by_user.idx[t]);
            }
        }
        let mut by_item = data.by_item();
        for i in 0..by_item.n_rows() {
            let (s, e) = (by_item.indptr[i], by_item.indptr[i + 1]);
            for t in s..e {
                by_item.val[t] -= base.predict(by_item.idx[t], i as u32);
            }
        }
        let n_items = data.n_items;
        let shrink = p.shrink;
        // Lower triangle, packed: row i holds s(i, j) for j < i at tri[i(i-1)/2 + j].
        let mut tri = vec![0f32; n_items * n_items.saturating_sub(1) / 2];
        let mut segs: Vec<(usize, &mut [f32])> = Vec::with_capacity(n_items);
        let mut rest: &mut [f32] = &mut tri;
        for i in 0..n_items {
            let (a, b) = rest.split_at_mut(i);
            segs.push((i, a));
            rest = b;
        }
        segs.into_par_iter().for_each_init(
            || vec![[0f32; 4]; n_items],
            |acc, (i, seg)| {
                let (s, e) = (by_item.indptr[i], by_item.indptr[i + 1]);
                if s == e {
                    return;
                }
                for t in s..e {
                    let u = by_item.idx[t] as usize;
                    let xi = by_item.val[t];
                    let xi2 = xi * xi;
                    let (us, ue) = (by_user.indptr[u], by_user.indptr[u + 1]);
                    let items = &by_user.idx[us..ue];
                    let vals = &by_user.val[us..ue];
                    // Items of a user are sorted: stop at i.
                    let stop = items.partition_point(|&j| (j as usize) < i);
                    for (&j, &xj) in items[..stop].iter().zip(&vals[..stop]) {
                        let a = &mut acc[j as usize];
                        a[0] += xi * xj;
                        a[1] += xi2;
                        a[2] += xj * xj;
                        a[3] += 1.0;
                    }
                }
                for (out, a) in seg.iter_mut().zip(acc[..i].iter_mut()) {
                    let n = a[3];
                    if n > 1.0 && a[1] > 0.0 && a[2] > 0.0 {
                        let v = a[0] / (a[1] * a[2]).sqrt() * (n - 1.0) / (n - 1.0 + shrink);
                        if v > 0.0 {
                            *out = v;
                        }
                    }
                    *a = [0.0; 4];
                }
            },
        );
        let sim = if n_items <= DENSE_MAX_ITEMS && p.max_neighbors == 0 {
            Sims::Packed(tri)
        } else {
            // Full sparse rows of the positive similarities, capped and sorted.
            let mut full: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n_items];
            for i in 1..n_items {
                let off = i * (i - 1) / 2;
                for (j, &v) in tri[off..off + i].iter().enumerate() {
                    if v > 0.0 {
                        full[i].push((j as u32, v));
                        full[j].push((i as u32, v));
                    }
                }
            }
            drop(tri);
            let cap = if p.max_neighbors == 0 {
                usize::MAX
            } else {
                p.max_neighbors
            };
            full.par_iter_mut().for_each(|r| {
                if r.len() > cap {
                    r.select_nth_unstable_by(cap, |a, b| b.1.total_cmp(&a.1));
                    r.truncate(cap);
                }
                r.sort_unstable_by_key(|x| x.0);
            });
            let mut m = RowMajor {
                indptr: Vec::with_capacity(n_items + 1),
                idx: Vec::new(),
                val: Vec::new(),
            };
            m.indptr.push(0);
            for r in full {
                for (j, v) in r {
                    m.idx.push(j);
                    m.val.push(v);
                }
                m.indptr.push(m.idx.len());
            }
            Sims::Sparse(m)
        };
        Ok(KnnBaseline {
            base,
            params: *p,
            sim,
            resid: by_user,
        })
    }

    /// Predicted rating (not clipped).
    pub fn predict(&self, u: u32, i: u32) -> f32 {
        let b = self.base.predict(u, i);
        if (u as usize) >= self.resid.n_rows() || (i as usize) >= self.base.bi.len() {
            return b;
        }
        let (ui, ur) = self.resid.row(u as usize);
        // Neighbours of i that u rated, with positive similarity: (sim, residual).
        let mut cand: Vec<(f32, f32)> = Vec::with_capacity(ui.len());
        match &self.sim {
            Sims::Packed(tri) => {
                let i = i as usize;
                let off_i = i * i.saturating_sub(1) / 2;
                for (&j, &r) in ui.iter().zip(ur) {
                    let j = j as usize;
                    let s = match j.cmp(&i) {
                        std::cmp::Ordering::Less => tri[off_i + j],
                        std::cmp::Ordering::Greater => tri[j * (j - 1) / 2 + i],
                        std::cmp::Ordering::Equal => 0.0,
                    };
                    if s > 0.0 {
                        cand.push((s, r));
                    }
                }
            }
            Sims::Sparse(m) => {
                let (si, sv) = m.row(i as usize);
                for (&j, &r) in ui.iter().zip(ur) {
                    if let Ok(p) = si.binary_search(&j) {
                        cand.push((sv[p], r));
                    }
                }
            }
        }
        let k = self.params.k;
        if cand.len() > k {
            cand.select_nth_unstable_by(k, |x, y| y.0.total_cmp(&x.0));
            cand.truncate(k);
        }
        if cand.len() < self.params.min_k.max(1) {
            return b;
        }
        let (mut num, mut den) = (0f32, 0f32);
        for (s, r) in cand {
            num += s * r;
            den += s;
        }
        if den > 0.0 { b + num / den } else { b }
    }

    /// Number of stored (positive) similarities.
    pub fn n_similarities(&self) -> usize {
        match &self.sim {
            Sims::Packed(t) => t.iter().filter(|&&s| s > 0.0).count(),
            Sims::Sparse(m) => m.idx.len(),
        }
    }
}
