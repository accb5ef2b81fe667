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
//! The Gram matrix is built once ([`EaseGram`]) and can be reused for several
//! `(λ, d)` pairs (model selection fits one factorization per pair, not one
//! Gram). The solve is in `f32` with faer: an in-place Cholesky factorization
//! and the SPD inverse `L⁻ᵀL⁻¹`, of which only the lower triangle is formed
//! (faer runs both on rayon). `f32` halves the memory traffic of the `n³`
//! work compared with `f64`; `G + Λ` with a λ in the usual range (tens to
//! thousands) is well conditioned enough for single precision: the unit test
//! checks the weights against an `f64` reference to 1e-4, and on ml-100k the
//! `f32` model gives the `f64` model's top-10 metrics to 4 decimals.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::triangular_inverse;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::{Csr, Visits};
use crate::ModelError;
use crate::dense::DenseBuf;

/// Fitted EASE weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ease {
    /// Items of the model (dense catalogue indices), in model order.
    #[serde(with = "crate::packed")]
    pub items: Vec<u32>,
    /// Position of each catalogue item in `items` (`u32::MAX` = not modelled).
    #[serde(with = "crate::packed")]
    pub pos: Vec<u32>,
    /// Row-major `|items|²` weights: row = history item, column = scored item.
    #[serde(with = "crate::packed")]
    pub b: Vec<f32>,
}

/// The dense Gram matrix `XᵀX` over the modelled items, shared by every
/// `(λ, dropout)` fitted on the same data.
#[derive(Debug, Clone, PartialEq)]
pub struct EaseGram {
    /// Items of the model (dense catalogue indices), ascending.
    pub items: Vec<u32>,
    /// Position of each catalogue item in `items` (`u32::MAX` = not modelled).
    pub pos: Vec<u32>,
    /// Symmetric `|items|²` Gram matrix (row-major).
    pub g: DenseBuf,
}

/// The items a dense item-item model keeps: those somebody interacted with,
/// at most `max_items` of the most popular (ties by index), in index order;
/// and each item's position among them (`u32::MAX` for the left-out ones).
pub(crate) fn dense_items(by_item: &Csr, max_items: usize) -> (Vec<u32>, Vec<u32>) {
    let n_all = by_item.n_rows;
    let mut items: Vec<u32> = (0..n_all as u32)
        .filter(|&i| by_item.row_len(i as usize) > 0)
        .collect();
    if items.len() > max_items {
        items.sort_by_key(|&i| (std::cmp::Reverse(by_item.row_len(i as usize)), i));
        items.truncate(max_items);
        items.sort_unstable();
    }
    let mut pos = vec![u32::MAX; n_all];
    for (p, &i) in items.iter().enumerate() {
        pos[i as usize] = p as u32;
    }
    (items, pos)
}

impl EaseGram {
    /// Builds the Gram matrix of `by_user` over at most `max_items` of the most
    /// popular items (items nobody interacted with are left out).
    pub fn new(by_user: &Csr, by_item: &Csr, max_items: usize) -> Self {
        let (items, pos) = dense_items(by_item, max_items);
        let g = gram_over(&items, &pos, by_user, by_item);
        EaseGram { items, pos, g }
    }

    /// The within-visit co-occurrence over the same items, each pair of one
    /// customer's interactions in one visit weighted by `exp(−Δt/decay)`, `Δt`
    /// their distance in time (`decay` = 0: weight 1, which is `SᵀS` of the
    /// sessions × items matrix of the same visits). Each interaction also
    /// pairs with itself (weight 1), so the diagonal counts the item's
    /// interactions as in `SᵀS`. `visits` must come from `by_user`, and
    /// `by_item` is its transpose.
    pub fn in_visits(&self, by_user: &Csr, by_item: &Csr, visits: &Visits, decay: f64) -> DenseBuf {
        let n = self.items.len();
        let mut g = DenseBuf::zeroed(n * n);
        // Pairs further apart than this weigh under e^-16 (1e-7): not scanned.
        let reach = if decay > 0.0 {
            (decay * 16.0).min(i64::MAX as f64) as i64
        } else {
            i64::MAX
        };
        let weight = |dt: i64| -> f32 {
            if decay > 0.0 {
                (-(dt as f64) / decay).exp() as f32
            } else {
                1.0
            }
        };
        let pos = &self.pos;
        g.par_chunks_mut(n.max(1)).enumerate().for_each(|(a, row)| {
            let i = self.items[a];
            if i as usize >= by_item.n_rows {
                return;
            }
            for (u, xa) in by_item.row(i as usize) {
                let u = u as usize;
                let Ok(p) = by_user.row_indices(u).binary_search(&i) else {
                    continue;
                };
                let (start, end) = (by_user.indptr[u], by_user.indptr[u + 1]);
                let k = start + visits.rank[start + p] as usize;
                let (t0, v0) = (visits.time[k], visits.visit[k]);
                let mut add = |j: usize, dt: i64| {
                    let pj = pos[visits.item[j] as usize];
                    if pj != u32::MAX {
                        row[pj as usize] += xa * visits.value[j] * weight(dt);
                    }
                };
                add(k, 0);
                for j in k + 1..end {
                    let dt = visits.time[j].saturating_sub(t0);
                    if visits.visit[j] != v0 || dt > reach {
                        break;
                    }
                    add(j, dt);
                }
                for j in (start..k).rev() {
                    let dt = t0.saturating_sub(visits.time[j]);
                    if visits.visit[j] != v0 || dt > reach {
                        break;
                    }
                    add(j, dt);
                }
            }
        });
        g
    }
}

/// `XᵀX` over `items` (row-major, `|items|²`) from `X` (`by_row`) and its
/// transpose (`by_col`); one output row per item, in parallel.
fn gram_over(items: &[u32], pos: &[u32], by_row: &Csr, by_col: &Csr) -> DenseBuf {
    let n = items.len();
    let mut g = DenseBuf::zeroed(n * n);
    if n > 0 {
        g.par_chunks_mut(n).enumerate().for_each(|(a, row)| {
            let i = items[a] as usize;
            if i >= by_col.n_rows {
                return;
            }
            for (r, xr) in by_col.row(i) {
                for (j, xj) in by_row.row(r as usize) {
                    let pj = pos[j as usize];
                    if pj != u32::MAX {
                        row[pj as usize] += xr * xj;
                    }
                }
            }
        });
    }
    g
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
        check_params(lambda, dropout)?;
        Self::from_gram(&EaseGram::new(by_user, by_item, max_items), lambda, dropout)
    }

    /// Solves EASE from a precomputed Gram matrix (which is left untouched, so
    /// it can serve several `lambda`/`dropout` values).
    pub fn from_gram(gram: &EaseGram, lambda: f64, dropout: f64) -> Result<Self, ModelError> {
        Self::from_grams(gram, None, lambda, dropout)
    }

    /// [`Ease::from_gram`] on `G + w·G₂` when `extra = Some((G₂, w))`, a
    /// second Gram matrix over the same items (session-aware EASE adds the
    /// co-occurrence within sessions this way). Neither matrix is changed.
    pub fn from_grams(
        gram: &EaseGram,
        extra: Option<(&[f32], f32)>,
        lambda: f64,
        dropout: f64,
    ) -> Result<Self, ModelError> {
        check_params(lambda, dropout)?;
        let n = gram.items.len();
        let (items, pos) = (gram.items.clone(), gram.pos.clone());
        if n == 0 {
            return Ok(Ease {
                items,
                pos,
                b: Vec::new(),
            });
        }
        let emph = dropout / (1.0 - dropout);
        let g = &gram.g;
        if let Some((g2, w)) = extra {
            if !(w.is_finite() && w >= 0.0) {
                return Err(ModelError::InvalidParameter {
                    name: "session_weight".into(),
                    reason: format!("must be finite and >= 0, got {w}"),
                });
            }
            if g2.len() != g.len() {
                return Err(ModelError::InvalidInput(format!(
                    "EASE: the second Gram matrix has {} entries, the first {}",
                    g2.len(),
                    g.len()
                )));
            }
        }
        // Column-major copy of the (symmetric) Gram with the regularized diagonal.
        let mut m_buf = DenseBuf::zeroed(n * n);
        m_buf.par_chunks_mut(n).enumerate().for_each(|(j, col)| {
            for (i, out) in col.iter_mut().enumerate() {
                let v = match extra {
                    Some((g2, w)) => g[j * n + i] + w * g2[j * n + i],
                    None => g[j * n + i],
                };
                *out = if i == j {
                    (f64::from(v) * (1.0 + emph) + lambda) as f32
                } else {
                    v
                };
            }
        });
        let mut m = faer::MatMut::from_column_major_slice_mut(&mut m_buf, n, n);
        let par = faer::get_global_parallelism();
        let mut mem = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f32>(
            n,
            par,
            Default::default(),
        ));
        llt::factor::cholesky_in_place(
            m.as_mut(),
            Default::default(),
            par,
            MemStack::new(&mut mem),
            Default::default(),
        )
        .map_err(|e| {
            ModelError::FitFailed(format!(
                "EASE: Gram + lambda*I is not positive definite ({e:?}); raise lambda"
            ))
        })?;
        drop(mem);
        // P = (G + Λ)⁻¹ = L⁻ᵀL⁻¹ in two n² buffers, not four: L⁻¹ goes into
        // `b` (which later holds the weights), then P's lower triangle into
        // `m` (L is no longer needed). Every fresh n² buffer costs n²/1024
        // first-touch page faults, a large share of the fit on a VM.
        let mut b = vec![0f32; n * n];
        triangular_inverse::invert_lower_triangular(
            faer::MatMut::from_column_major_slice_mut(&mut b, n, n),
            m.as_ref(),
            par,
        );
        {
            let l_inv = faer::MatRef::from_column_major_slice(&b, n, n);
            triangular::matmul(
                m.as_mut(),
                BlockStructure::TriangularLower,
                faer::Accum::Replace,
                l_inv.adjoint(),
                BlockStructure::TriangularUpper,
                l_inv,
                BlockStructure::TriangularLower,
                1.0f32,
                par,
            );
        }
        let p = m.as_ref();
        let diag: Vec<f32> = (0..n).map(|j| p[(j, j)]).collect();
        if diag.iter().any(|d| !(d.is_finite() && *d > 0.0)) {
            return Err(ModelError::FitFailed(
                "EASE: the inverse is not finite; raise lambda".into(),
            ));
        }
        b.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
            // Row i of P = column i of P: entries (j, i) for j ≥ i, (i, j) for j < i.
            let col = p.col(i);
            for (j, out) in row.iter_mut().enumerate() {
                *out = if i == j {
                    0.0
                } else {
                    let pij = if j > i { col[j] } else { p[(i, j)] };
                    -pij / diag[j]
                };
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

fn check_params(lambda: f64, dropout: f64) -> Result<(), ModelError> {
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
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recs::data::{Combine, InteractionsBuilder, Timeline};

    /// Two customers' timed histories and their matrices.
    fn timed(events: &[(&str, &str, f32, i64)]) -> (Csr, Csr, Timeline, impl Fn(&str) -> usize) {
        let mut b = InteractionsBuilder::new(Combine::Last);
        for &(u, i, v, t) in events {
            b.add(u, i, v, Some(t));
        }
        let (x, timeline) = b.build_with_order().expect("build");
        let items = x.items.clone();
        let by_item = x.by_user.transpose();
        (
            x.by_user,
            by_item,
            timeline.expect("times"),
            move |i: &str| items.get(i).expect("item") as usize,
        )
    }

    #[test]
    fn visit_gram_weighs_pairs_by_their_distance_in_time() {
        // u: a and b together, c 100 s later, d an hour later; v: a then c.
        let (x, xt, timeline, item) = timed(&[
            ("u", "a", 1.0, 0),
            ("u", "b", 1.0, 0),
            ("u", "c", 1.0, 100),
            ("u", "d", 1.0, 3_700),
            ("v", "a", 2.0, 50),
            ("v", "c", 1.0, 250),
        ]);
        let gram = EaseGram::new(&x, &xt, usize::MAX);
        let n = gram.items.len();
        let at = |g: &[f32], i: &str, j: &str| g[item(i) * n + item(j)];
        let e = (-1.0f32).exp();
        let g = gram.in_visits(&x, &xt, &timeline.visits(&x, 1_800).expect("visits"), 100.0);
        assert_eq!(at(&g, "a", "b"), 1.0, "same time");
        // u: 100 s apart (e^-1); v: 200 s apart, values 2 and 1 (2·e^-2).
        assert!((at(&g, "a", "c") - (e + 2.0 * e * e)).abs() < 1e-6);
        assert_eq!(at(&g, "c", "a"), at(&g, "a", "c"), "symmetric");
        assert_eq!(at(&g, "a", "d"), 0.0, "another visit (gap over 1 800 s)");
        assert_eq!(at(&g, "a", "a"), 1.0 + 4.0, "each interaction with itself");
        // Without the gap cutting d off, it pairs at e^-(3 700/τ), except
        // beyond 16 τ (e^-16), where pairs are not scanned.
        let visits = timeline.visits(&x, 10_000).expect("visits");
        let g = gram.in_visits(&x, &xt, &visits, 1_000.0);
        assert!((at(&g, "a", "d") - (-3.7f32).exp()).abs() < 1e-6);
        assert_eq!(at(&gram.in_visits(&x, &xt, &visits, 100.0), "a", "d"), 0.0);
        // Decay 0: every pair of a visit counts fully, which is SᵀS.
        for gap in [0, 60, 120, 1_800] {
            let visits = timeline.visits(&x, gap).expect("visits");
            let s = timeline.sessions(&x, gap).expect("sessions");
            assert_eq!(
                gram.in_visits(&x, &xt, &visits, 0.0),
                gram_over(&gram.items, &gram.pos, &s, &s.transpose()),
                "gap {gap}"
            );
        }
    }

    /// Naive f64 Gauss–Jordan inverse (reference).
    fn inverse_f64(a: &[f64], n: usize) -> Vec<f64> {
        let mut m = a.to_vec();
        let mut inv = vec![0f64; n * n];
        for i in 0..n {
            inv[i * n + i] = 1.0;
        }
        for c in 0..n {
            let d = m[c * n + c];
            for k in 0..n {
                m[c * n + k] /= d;
                inv[c * n + k] /= d;
            }
            for r in 0..n {
                if r != c {
                    let f = m[r * n + c];
                    for k in 0..n {
                        m[r * n + k] -= f * m[c * n + k];
                        inv[r * n + k] -= f * inv[c * n + k];
                    }
                }
            }
        }
        inv
    }

    #[test]
    fn f32_solve_matches_an_f64_reference_and_reuses_the_gram() {
        // 60 users × 40 items, deterministic pseudo-random binary data.
        let mut triples = Vec::new();
        let mut s = 12345u64;
        for u in 0..60u32 {
            for i in 0..40u32 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if (s >> 33).is_multiple_of(4) || (u + i).is_multiple_of(7) {
                    triples.push((u, i, 1.0));
                }
            }
        }
        let x = Csr::from_triples(60, 40, &triples, |_, b| b).expect("csr");
        let xt = x.transpose();
        let gram = EaseGram::new(&x, &xt, usize::MAX);
        let n = gram.items.len();
        assert_eq!(n, 40);
        for (lambda, dropout) in [(5.0, 0.0), (20.0, 0.5)] {
            let e = Ease::from_gram(&gram, lambda, dropout).expect("fit");
            let mut a: Vec<f64> = gram.g.iter().map(|&v| f64::from(v)).collect();
            for j in 0..n {
                a[j * n + j] = a[j * n + j] * (1.0 + dropout / (1.0 - dropout)) + lambda;
            }
            let p = inverse_f64(&a, n);
            for i in 0..n {
                for j in 0..n {
                    let want = if i == j {
                        0.0
                    } else {
                        -p[i * n + j] / p[j * n + j]
                    };
                    let got = f64::from(e.b[i * n + j]);
                    assert!((got - want).abs() < 1e-4, "B[{i},{j}] {got} vs {want}");
                }
            }
            // Fitting through `fit` gives the same weights.
            let direct = Ease::fit(&x, &xt, lambda, dropout, usize::MAX).expect("fit");
            assert_eq!(direct, e);
        }
        assert!(Ease::from_gram(&gram, -1.0, 0.0).is_err());
        assert!(Ease::from_gram(&gram, 1.0, 1.0).is_err());
    }
}
