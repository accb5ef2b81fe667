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
//! in parallel (rayon, one dense `[Σxy, Σx², Σy², n]` accumulator per
//! thread). For row `i`, each user who rated `i` contributes the items they
//! rated before `i`: the shared `Prep` says where `i` sits in that user's
//! sorted row (no search), and each user rating is stored as `[x, 1, x², 1]`
//! so one pair update is a single 4-lane multiply-add; the accumulators are
//! turned into similarities 4 at a time without branches. The shared
//! preprocessing (ratings by user and by item, the ALS baseline) is computed
//! once when a blend or a model search fits several models on the same data.
//! Catalogues up to [`DENSE_MAX_ITEMS`] keep them in
//! that triangle (prediction = one lookup per item the user rated);
//! larger ones keep only the positive similarities in sorted sparse rows,
//! optionally capped to the `max_neighbors` largest per item, so memory
//! follows the co-rating pattern rather than `n_items²`.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::baseline::{Baseline, BaselineParams};
use super::{Prep, RatingData, RowMajor};
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
        Self::fit_prep(&Prep::new(data), p)
    }

    /// [`KnnBaseline::fit`] on shared preprocessing.
    pub(crate) fn fit_prep(prep: &Prep<'_>, p: &KnnParams) -> Result<Self, ModelError> {
        let data = prep.data;
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
        let base = prep.baseline(&p.baseline).into_owned();
        let mut by_user = prep.by_user.clone();
        for u in 0..by_user.n_rows() {
            let (s, e) = (by_user.indptr[u], by_user.indptr[u + 1]);
            let bu = base.mu + base.bu[u];
            for (v, &j) in by_user.val[s..e].iter_mut().zip(&by_user.idx[s..e]) {
                *v -= bu + base.bi[j as usize];
            }
        }
        // Each user rating as `[x, 1, x², 1]` (x = residual): one item's
        // rating `x_i` adds `[x_i, x_i², 1, 1] ⊙ w_j = [x_i x_j, x_i², x_j², 1]`
        // to the pair accumulator, a single 4-lane multiply-add.
        let w: Vec<[f32; 4]> = by_user.val.iter().map(|&x| [x, 1.0, x * x, 1.0]).collect();
        let (by_item, item_pos) = (&prep.by_item, &prep.item_pos);
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
        let bu_all = &by_user;
        segs.into_par_iter().for_each_init(
            || vec![[0f32; 4]; n_items],
            |acc, (i, seg)| {
                let (s, e) = (by_item.indptr[i], by_item.indptr[i + 1]);
                if s == e {
                    return;
                }
                for (&u, &pos) in by_item.idx[s..e].iter().zip(&item_pos[s..e]) {
                    // The user's items are sorted: the ones before i come
                    // right before i's own entry at `pos`.
                    let (us, pos) = (bu_all.indptr[u as usize], pos as usize);
                    let xi = w[pos][0];
                    let m = [xi, xi * xi, 1.0, 1.0];
                    for (&j, wj) in bu_all.idx[us..pos].iter().zip(&w[us..pos]) {
                        let a = &mut acc[j as usize];
                        let (av, wv) = (*a, *wj);
                        let mut o = av;
                        for l in 0..4 {
                            o[l] = av[l] + m[l] * wv[l];
                        }
                        *a = o;
                    }
                }
                finalize(&mut acc[..i], seg, shrink);
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
        self.predict_with(u, i, &mut Vec::new())
    }

    /// Predictions for many pairs (not clipped), in parallel. The pairs are
    /// visited grouped by item, so consecutive predictions read the same
    /// similarity row (cache hits instead of one miss per rated item).
    pub fn predict_many(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        let n = users.len().min(items.len());
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&t| (items[t as usize], users[t as usize]));
        let vals: Vec<f32> = order
            .par_chunks(512)
            .map_init(Vec::new, |buf, chunk| {
                chunk
                    .iter()
                    .map(|&t| self.predict_with(users[t as usize], items[t as usize], buf))
                    .collect::<Vec<f32>>()
            })
            .flatten_iter()
            .collect();
        let mut out = vec![0f32; n];
        for (&t, v) in order.iter().zip(vals) {
            out[t as usize] = v;
        }
        out
    }

    /// [`KnnBaseline::predict`] with a reusable candidate buffer.
    fn predict_with(&self, u: u32, i: u32, cand: &mut Vec<(f32, f32)>) -> f32 {
        let b = self.base.predict(u, i);
        if (u as usize) >= self.resid.n_rows() || (i as usize) >= self.base.bi.len() {
            return b;
        }
        let (ui, ur) = self.resid.row(u as usize);
        // Neighbours of i that u rated, with positive similarity: (sim, residual).
        cand.clear();
        match &self.sim {
            Sims::Packed(tri) => {
                let i = i as usize;
                let off_i = i * i.saturating_sub(1) / 2;
                // Items are sorted: those below i are in row i, the others in column i.
                let split = ui.partition_point(|&j| (j as usize) < i);
                let row = &tri[off_i..off_i + i];
                for (&j, &r) in ui[..split].iter().zip(&ur[..split]) {
                    let s = row[j as usize];
                    if s > 0.0 {
                        cand.push((s, r));
                    }
                }
                for (&j, &r) in ui[split..].iter().zip(&ur[split..]) {
                    let j = j as usize;
                    if j == i {
                        continue;
                    }
                    let s = tri[j * (j - 1) / 2 + i];
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
        for &(s, r) in cand.iter() {
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

/// Turns pair accumulators `[Σxy, Σx², Σy², n]` into shrunk
/// pearson-baseline similarities (0 when not positive or undefined) and
/// resets them; branch-free, 4 pairs at a time.
fn finalize(acc: &mut [[f32; 4]], out: &mut [f32], shrink: f32) {
    let one = |a: [f32; 4]| -> f32 {
        let n1 = a[3] - 1.0;
        let d = a[1] * a[2];
        let v = a[0] * n1 / ((n1 + shrink) * d.sqrt());
        if n1 > 0.0 && d > 0.0 && v > 0.0 {
            v
        } else {
            0.0
        }
    };
    let mut ca = acc.chunks_exact_mut(4);
    let mut co = out.chunks_exact_mut(4);
    for (a4, o4) in (&mut ca).zip(&mut co) {
        let v = [a4[0], a4[1], a4[2], a4[3]];
        for l in 0..4 {
            o4[l] = one(v[l]);
        }
        a4.fill([0.0; 4]);
    }
    for (a, o) in ca.into_remainder().iter_mut().zip(co.into_remainder()) {
        *o = one(*a);
        *a = [0.0; 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> RatingData {
        let (mut us, mut is, mut rs) = (Vec::new(), Vec::new(), Vec::new());
        for u in 0..40u32 {
            for i in 0..25u32 {
                if (u * 5 + i * 11 + u * i) % 3 != 0 {
                    us.push(u);
                    is.push(i);
                    rs.push(1.0 + ((u * 3 + i * i) % 5) as f32);
                }
            }
        }
        RatingData::new(40, 26, us, is, rs).expect("valid")
    }

    #[test]
    fn similarities_match_the_formula_and_batches_match_single_predictions() {
        let d = toy();
        let p = KnnParams {
            shrink: 5.0,
            ..KnnParams::default()
        };
        let m = KnnBaseline::fit(&d, &p).expect("fit");
        let base = Baseline::fit(&d, &p.baseline);
        let mut x = vec![vec![None::<f32>; d.n_items]; d.n_users];
        for ((&u, &i), &r) in d.users.iter().zip(&d.items).zip(&d.ratings) {
            x[u as usize][i as usize] = Some(r - base.predict(u, i));
        }
        let Sims::Packed(tri) = &m.sim else {
            panic!("small catalogues are packed")
        };
        let mut positive = 0;
        for i in 1..d.n_items {
            for j in 0..i {
                let (mut sxy, mut sxx, mut syy, mut n) = (0f64, 0f64, 0f64, 0f64);
                for row in &x {
                    if let (Some(a), Some(b)) = (row[i], row[j]) {
                        let (a, b) = (a as f64, b as f64);
                        sxy += a * b;
                        sxx += a * a;
                        syy += b * b;
                        n += 1.0;
                    }
                }
                let mut want = 0.0;
                if n > 1.0 && sxx > 0.0 && syy > 0.0 {
                    want = sxy / (sxx * syy).sqrt() * (n - 1.0) / (n - 1.0 + 5.0);
                }
                let got = tri[i * (i - 1) / 2 + j] as f64;
                assert!(
                    (got - want.max(0.0)).abs() < 1e-4,
                    "({i},{j}): {got} vs {want}"
                );
                positive += usize::from(got > 0.0);
            }
        }
        assert!(positive > 10, "the toy data has positive similarities");
        let users: Vec<u32> = (0..300).map(|t| (t * 7) % 41).collect();
        let items: Vec<u32> = (0..300).map(|t| (t * 13) % 26).collect();
        let single: Vec<f32> = users
            .iter()
            .zip(&items)
            .map(|(&u, &i)| m.predict(u, i))
            .collect();
        assert_eq!(m.predict_many(&users, &items), single);
    }
}
