//! Implicit ALS (Hu, Koren & Volinsky 2008).
//!
//! Every (user, item) cell has a preference `p = 1` if observed else 0 and a
//! confidence `c = 1 + alpha · r` (r = the interaction weight; 1 for unobserved
//! cells). Alternating least squares minimizes
//! `Σ c (p − xᵤ·yᵢ)² + reg (‖X‖² + ‖Y‖²)`; each row's solve uses the
//! `YᵀY + Yᵀ(Cᵤ − I)Y` trick so the cost is linear in the observed cells, and is
//! done by a few conjugate-gradient steps warm-started from the previous
//! iteration (Takács et al. 2011, as in the `implicit` library), rows in
//! parallel with rayon. Initialization comes from a ChaCha RNG with the given
//! seed, and every row's update depends only on the other side's factors, so
//! the result is the same for a seed whatever the thread count.
//!
//! Fold-in of an unseen user solves that user's factors exactly (Cholesky)
//! against the fixed item factors; explanations follow §5 of the paper:
//! `score_ui = Σ_j s^u_ij c_uj` with `s^u_ij = y_iᵀ W^u y_j`,
//! `W^u = (YᵀCᵤY + reg·I)⁻¹`.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use crate::ModelError;

/// iALS hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IalsParams {
    /// Number of latent factors.
    pub factors: usize,
    /// L2 regularization.
    pub reg: f32,
    /// Confidence scale: `c = 1 + alpha · r`.
    pub alpha: f32,
    /// ALS sweeps.
    pub iterations: usize,
    /// Conjugate-gradient steps per row solve.
    pub cg_steps: usize,
    /// Seed of the initialization.
    pub seed: u64,
    /// Take each interaction's confidence from its explicit rating
    /// (`r = rating / mean rating`, so `alpha` keeps its scale) instead of
    /// its weight. Hu et al.'s own choice for graded feedback: a movie rated 5
    /// is stronger evidence than one rated 1. Needs the ratings
    /// ([`crate::recs::FitContext::with_ratings`]).
    #[serde(default)]
    pub rating_confidence: bool,
}

impl Default for IalsParams {
    fn default() -> Self {
        IalsParams {
            factors: 64,
            reg: 1.0,
            alpha: 10.0,
            iterations: 15,
            cg_steps: 3,
            seed: 0,
            rating_confidence: false,
        }
    }
}

/// Fitted iALS factors (row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ials {
    /// Parameters used.
    pub params: IalsParams,
    /// `n_users × factors`.
    #[serde(with = "crate::packed")]
    pub user_factors: Vec<f32>,
    /// `n_items × factors`.
    #[serde(with = "crate::packed")]
    pub item_factors: Vec<f32>,
    /// `YᵀY + reg·I` of the item factors (`factors²`), kept for fold-in.
    #[serde(with = "crate::packed")]
    pub yty: Vec<f32>,
}

/// `YᵀY + reg·I`. Blocks of 256 rows are summed in parallel, then added in
/// block order, so the result does not depend on the threads (a rayon
/// `reduce` combines in whatever tree the work stealing made, and f32
/// addition is not associative: the same fit gave different factors from one
/// run to the next on a 68k-item catalogue).
fn gram(y: &[f32], f: usize, reg: f32) -> Vec<f32> {
    let blocks: Vec<Vec<f32>> = y
        .par_chunks(f * 256)
        .map(|block| {
            let mut g = vec![0f32; f * f];
            for row in block.chunks(f) {
                for a in 0..f {
                    let ra = row[a];
                    if ra == 0.0 {
                        continue;
                    }
                    let ga = &mut g[a * f..(a + 1) * f];
                    for (gab, &rb) in ga.iter_mut().zip(row) {
                        *gab += ra * rb;
                    }
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f32; f * f];
    for b in blocks {
        for (x, y) in g.iter_mut().zip(b) {
            *x += y;
        }
    }
    for a in 0..f {
        g[a * f + a] += reg;
    }
    g
}

/// Dot product with eight independent accumulators, so the compiler can
/// vectorize it (a plain `sum()` must keep the sequential f32 order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

fn matvec(m: &[f32], x: &[f32], out: &mut [f32]) {
    let f = x.len();
    for (a, o) in out.iter_mut().enumerate() {
        *o = dot(&m[a * f..(a + 1) * f], x);
    }
}

/// One CG solve of row `x` against the fixed side `y` (see the module doc).
fn cg_row(x: &mut [f32], row: (&[u32], &[f32]), y: &[f32], yty: &[f32], alpha: f32, steps: usize) {
    let f = x.len();
    let mut r = vec![0f32; f];
    matvec(yty, x, &mut r);
    for v in r.iter_mut() {
        *v = -*v;
    }
    for (&i, &w) in row.0.iter().zip(row.1) {
        let c = 1.0 + alpha * w;
        let yi = &y[i as usize * f..(i as usize + 1) * f];
        let coef = c - (c - 1.0) * dot(yi, x);
        for (rv, &yv) in r.iter_mut().zip(yi) {
            *rv += coef * yv;
        }
    }
    let mut p = r.clone();
    let mut rsold = dot(&r, &r);
    let mut ap = vec![0f32; f];
    for _ in 0..steps {
        if rsold < 1e-20 {
            break;
        }
        matvec(yty, &p, &mut ap);
        for (&i, &w) in row.0.iter().zip(row.1) {
            let c = 1.0 + alpha * w;
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            let coef = (c - 1.0) * dot(yi, &p);
            for (av, &yv) in ap.iter_mut().zip(yi) {
                *av += coef * yv;
            }
        }
        let pap = dot(&p, &ap);
        if pap <= 0.0 || !pap.is_finite() {
            break;
        }
        let a = rsold / pap;
        for k in 0..f {
            x[k] += a * p[k];
            r[k] -= a * ap[k];
        }
        let rsnew = dot(&r, &r);
        let beta = rsnew / rsold;
        for k in 0..f {
            p[k] = r[k] + beta * p[k];
        }
        rsold = rsnew;
    }
}

/// Dense Cholesky solve of the symmetric positive-definite `a` (n×n, row-major) for `b`, in place.
fn cholesky_solve(a: &mut [f64], b: &mut [f64]) -> bool {
    let n = b.len();
    for j in 0..n {
        let mut d = a[j * n + j];
        for k in 0..j {
            d -= a[j * n + k] * a[j * n + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * n + j] = d;
        for i in j + 1..n {
            let mut s = a[i * n + j];
            for k in 0..j {
                s -= a[i * n + k] * a[j * n + k];
            }
            a[i * n + j] = s / d;
        }
    }
    for i in 0..n {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * n + k] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    for i in (0..n).rev() {
        let mut s = b[i];
        for k in i + 1..n {
            s -= a[k * n + i] * b[k];
        }
        b[i] = s / a[i * n + i];
    }
    true
}

impl Ials {
    /// Fits on `by_user` and its transpose `by_item`.
    pub fn fit(by_user: &Csr, by_item: &Csr, params: IalsParams) -> Result<Self, ModelError> {
        Self::check(params)?;
        let f = params.factors;
        let (mut users, mut items) = Self::init(by_user.n_rows, by_item.n_rows, params);
        for _ in 0..params.iterations {
            Self::sweep(&mut users, by_user, &items, f, params);
            Self::sweep(&mut items, by_item, &users, f, params);
        }
        Self::finish(users, items, params)
    }

    /// Fits once for `max(checkpoints)` sweeps and returns the model after
    /// each checkpoint's number of sweeps (ascending, deduplicated) with the
    /// seconds elapsed until then: the same models as separate fits with
    /// those `iterations`, for the price of the longest. Model selection uses
    /// it to choose the number of sweeps (early stopping).
    pub fn fit_path(
        by_user: &Csr,
        by_item: &Csr,
        params: IalsParams,
        checkpoints: &[usize],
    ) -> Result<Vec<(Self, f64)>, ModelError> {
        let t0 = std::time::Instant::now();
        let mut cps: Vec<usize> = checkpoints.iter().copied().filter(|&c| c > 0).collect();
        cps.sort_unstable();
        cps.dedup();
        let Some(&last) = cps.last() else {
            return Ok(Vec::new());
        };
        Self::check(params)?;
        let f = params.factors;
        let (mut users, mut items) = Self::init(by_user.n_rows, by_item.n_rows, params);
        let mut out = Vec::with_capacity(cps.len());
        for it in 1..=last {
            Self::sweep(&mut users, by_user, &items, f, params);
            Self::sweep(&mut items, by_item, &users, f, params);
            if cps.contains(&it) {
                let p = IalsParams {
                    iterations: it,
                    ..params
                };
                out.push((
                    Self::finish(users.clone(), items.clone(), p)?,
                    t0.elapsed().as_secs_f64(),
                ));
            }
        }
        Ok(out)
    }

    fn check(params: IalsParams) -> Result<(), ModelError> {
        if params.factors == 0 {
            return Err(ModelError::InvalidParameter {
                name: "factors".into(),
                reason: "must be >= 1".into(),
            });
        }
        if params.reg.is_nan() || params.reg <= 0.0 || params.alpha.is_nan() || params.alpha < 0.0 {
            return Err(ModelError::InvalidParameter {
                name: "reg/alpha".into(),
                reason: "reg must be > 0 and alpha >= 0".into(),
            });
        }
        Ok(())
    }

    fn init(n_users: usize, n_items: usize, params: IalsParams) -> (Vec<f32>, Vec<f32>) {
        let f = params.factors;
        let mut rng = ChaCha8Rng::seed_from_u64(params.seed);
        let scale = 0.1 / (f as f32).sqrt();
        let mut init = |n: usize| -> Vec<f32> {
            (0..n * f)
                .map(|_| (rng.random::<f32>() - 0.5) * scale)
                .collect()
        };
        let users = init(n_users);
        let items = init(n_items);
        (users, items)
    }

    fn finish(users: Vec<f32>, items: Vec<f32>, params: IalsParams) -> Result<Self, ModelError> {
        if users.iter().chain(&items).any(|v| !v.is_finite()) {
            return Err(ModelError::FitFailed(
                "iALS diverged (non-finite factors); raise reg".into(),
            ));
        }
        let yty = gram(&items, params.factors, params.reg);
        Ok(Ials {
            params,
            user_factors: users,
            item_factors: items,
            yty,
        })
    }

    fn sweep(x: &mut [f32], rows: &Csr, y: &[f32], f: usize, p: IalsParams) {
        let yty = gram(y, f, p.reg);
        x.par_chunks_mut(f).enumerate().for_each(|(u, xu)| {
            cg_row(
                xu,
                (rows.row_indices(u), rows.row_values(u)),
                y,
                &yty,
                p.alpha,
                p.cg_steps,
            );
        });
    }

    fn factors(&self) -> usize {
        self.params.factors
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.item_factors.len() / self.factors()
    }

    /// Zeroes training user `u`'s factor row (a person's erasure): the only
    /// per-user part of the model. The item factors and `yty` are fitted over
    /// all users and stay; no other user's factors or scores change. Returns
    /// false when `u` is not a training row.
    pub fn forget_user(&mut self, u: usize) -> bool {
        let f = self.factors();
        match self.user_factors.get_mut(u * f..(u + 1) * f) {
            Some(row) => {
                row.fill(0.0);
                true
            }
            None => false,
        }
    }

    /// The system `(YᵀCY + reg I, YᵀCp)` of one history, in f64.
    fn system(&self, history: &[(u32, f32)]) -> (Vec<f64>, Vec<f64>) {
        let f = self.factors();
        let y = &self.item_factors;
        let mut a: Vec<f64> = self.yty.iter().map(|&v| f64::from(v)).collect();
        let mut b = vec![0f64; f];
        for &(i, w) in history {
            if i as usize >= self.n_items() {
                continue;
            }
            let c = 1.0 + f64::from(self.params.alpha) * f64::from(w);
            let yi = &y[i as usize * f..(i as usize + 1) * f];
            for p in 0..f {
                let yp = f64::from(yi[p]);
                b[p] += c * yp;
                for q in 0..f {
                    a[p * f + q] += (c - 1.0) * yp * f64::from(yi[q]);
                }
            }
        }
        (a, b)
    }

    /// Solves the factors of a user from a history (fold-in), exactly.
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Vec<f32> {
        let (mut a, mut b) = self.system(history);
        if cholesky_solve(&mut a, &mut b) {
            b.iter().map(|&v| v as f32).collect()
        } else {
            vec![0.0; self.factors()]
        }
    }

    /// Scores every item with user factors `x`.
    pub fn score_factors(&self, x: &[f32], out: &mut [f32]) {
        let f = self.factors();
        for (o, yi) in out.iter_mut().zip(self.item_factors.chunks(f)) {
            *o = dot(x, yi);
        }
    }

    /// [`Ials::score`] for several customers at once: row `r` of `out`
    /// (`rows.len()` rows of [`Ials::n_items`]) gets the scores of `rows[r]`,
    /// exactly the values of [`Ials::score`].
    ///
    /// Why: scoring one customer reads every item factor once (17 MB for 68k
    /// items × 64 factors), so customer by customer the product is bound by
    /// memory; here each block of item factors is read once for all the rows
    /// while it sits in cache (same dot product per pair).
    pub fn score_batch(&self, rows: &[super::ScoreRow<'_>], out: &mut [f32]) {
        let f = self.factors();
        let n = self.n_items();
        let folded: Vec<Option<Vec<f32>>> = rows
            .iter()
            .map(|&(user, history)| match user {
                Some(u) if (u as usize + 1) * f <= self.user_factors.len() => None,
                _ => Some(self.fold_in(history)),
            })
            .collect();
        let xs: Vec<&[f32]> = rows
            .iter()
            .zip(&folded)
            .map(|(&(user, _), fx)| match (fx, user) {
                (Some(x), _) => x.as_slice(),
                (None, Some(u)) => &self.user_factors[u as usize * f..(u as usize + 1) * f],
                (None, None) => &[],
            })
            .collect();
        const ITEM_BLOCK: usize = 256;
        for b0 in (0..n).step_by(ITEM_BLOCK) {
            let b1 = (b0 + ITEM_BLOCK).min(n);
            let ys = &self.item_factors[b0 * f..b1 * f];
            for (r, x) in xs.iter().enumerate() {
                let row = &mut out[r * n + b0..r * n + b1];
                for (o, yi) in row.iter_mut().zip(ys.chunks(f)) {
                    *o = dot(x, yi);
                }
            }
        }
    }

    /// Scores for a training user (`Some(row)`) or a folded-in history.
    pub fn score(&self, user: Option<u32>, history: &[(u32, f32)], out: &mut [f32]) {
        let f = self.factors();
        match user {
            Some(u) if (u as usize + 1) * f <= self.user_factors.len() => {
                let x = &self.user_factors[u as usize * f..(u as usize + 1) * f];
                self.score_factors(x, out);
            }
            _ => {
                let x = self.fold_in(history);
                self.score_factors(&x, out);
            }
        }
    }

    /// Hu et al. §5: contribution `s^u_ij · c_uj` of each history item `j` to item `i`'s score.
    pub fn contributions(&self, history: &[(u32, f32)], item: u32) -> Vec<(u32, f32)> {
        let f = self.factors();
        if item as usize >= self.n_items() {
            return Vec::new();
        }
        let (mut a, _) = self.system(history);
        let mut w: Vec<f64> = self.item_factors[item as usize * f..(item as usize + 1) * f]
            .iter()
            .map(|&v| f64::from(v))
            .collect();
        if !cholesky_solve(&mut a, &mut w) {
            return Vec::new();
        }
        history
            .iter()
            .filter(|&&(j, _)| (j as usize) < self.n_items())
            .map(|&(j, r)| {
                let yj = &self.item_factors[j as usize * f..(j as usize + 1) * f];
                let s: f64 = w.iter().zip(yj).map(|(a, &b)| a * f64::from(b)).sum();
                let c = 1.0 + f64::from(self.params.alpha) * f64::from(r);
                (j, (s * c) as f32)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_path_checkpoints_equal_separate_fits() {
        let triples: Vec<(u32, u32, f32)> = (0..40u32)
            .flat_map(|u| (0..6u32).map(move |s| (u, (u * 3 + s * 5) % 25, 1.0)))
            .collect();
        let x = Csr::from_triples(40, 25, &triples, |_, b| b).expect("csr");
        let xt = x.transpose();
        let p = IalsParams {
            factors: 8,
            reg: 1.0,
            alpha: 2.0,
            iterations: 0,
            cg_steps: 3,
            seed: 5,
            rating_confidence: false,
        };
        let path = Ials::fit_path(&x, &xt, p, &[5, 2, 5]).expect("path");
        assert_eq!(path.len(), 2, "checkpoints are deduplicated");
        for (m, secs) in &path {
            let alone = Ials::fit(
                &x,
                &xt,
                IalsParams {
                    iterations: m.params.iterations,
                    ..p
                },
            )
            .expect("fit");
            assert_eq!(*m, alone);
            assert!(*secs >= 0.0);
        }
        assert_eq!(path[0].0.params.iterations, 2);
        assert!(Ials::fit_path(&x, &xt, p, &[]).expect("empty").is_empty());
    }

    /// The Gram matrix of many item blocks is summed in a fixed order: the
    /// same data gives the same bits however rayon splits the work (a 68k-item
    /// catalogue gave three different fits in three runs before).
    #[test]
    fn gram_of_many_blocks_is_deterministic() {
        let f = 8;
        let y: Vec<f32> = (0..40_000 * f)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        let first = gram(&y, f, 0.5);
        let mut want = vec![0f32; f * f];
        for block in y.chunks(f * 256) {
            let mut g = vec![0f32; f * f];
            for row in block.chunks(f) {
                for a in 0..f {
                    if row[a] == 0.0 {
                        continue;
                    }
                    for b in 0..f {
                        g[a * f + b] += row[a] * row[b];
                    }
                }
            }
            for (w, v) in want.iter_mut().zip(g) {
                *w += v;
            }
        }
        for a in 0..f {
            want[a * f + a] += 0.5;
        }
        for _ in 0..20 {
            assert_eq!(gram(&y, f, 0.5), first);
        }
        assert_eq!(first, want, "block sums added in block order");
    }
}
