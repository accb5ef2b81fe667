//! Rating prediction ("how many stars would this customer give this item?"):
//! the explicit-feedback side of the recommenders, evaluated by RMSE/MAE the
//! way Surprise does (`infogap eval recs --ratings FILE`).
//!
//! Input is [`RatingData`] (parallel `user`, `item`, `rating` arrays with
//! dense `u32` ids). A configuration [`RatingAlgo`] is fitted with a seed into
//! a [`RatingModel`], whose predictions are clipped to the training rating
//! range. Algorithms:
//! - `global-mean` — the floor every model must beat;
//! - `baseline` — `μ + b_u + b_i`, ALS-fitted ([`baseline`]);
//! - `svd` — biased matrix factorization by SGD ([`mf`]);
//! - `svdpp` — SVD++ with implicit feedback ([`mf`]);
//! - `knn-baseline` — item-kNN on baseline residuals with pearson-baseline
//!   shrunk similarity ([`knn`]);
//! - `blend` — a ridge-regression blend of several models whose weights are
//!   fitted on a validation split carved from the training data only. The
//!   features are each model's prediction `p_k`, and `p_k·s_u`, `p_k·s_i`
//!   with the supports `s = 1/√(1+n)` of the user and the item (feature-
//!   weighted linear stacking, Sill et al. 2009), so the blend can trust the
//!   neighbourhood model more for well-known items and the factor model more
//!   for others.
//!
//! Model selection ([`choose`]) fits candidate configurations on an inner
//! split of the training data, scores them on the held-out part, and (for
//! `auto`) also scores blends of the best member of each family by
//! cross-fitting the blend weights, so the choice never looks at test data.
//! [`parse_grid`]/[`expand_grid`] turn `'lr=0.005,0.01;reg=0.02,0.05'` into
//! candidate configurations, and [`kfold`] gives the shuffled k-fold split.
//!
//! Models fitted on the same data (a blend's components, the candidates of
//! a search) share one `Prep`: the ratings grouped by user and by item
//! (built by two counting-sort transposes, no comparison sort) and the ALS
//! baseline, so each is computed once.
//!
//! Everything is deterministic for a seed.

pub mod baseline;
pub mod knn;
pub mod mf;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::metrics::rating::rmse;
use baseline::{Baseline, BaselineParams};
use knn::{KnnBaseline, KnnParams};
use mf::{FactorModel, MfParams};

/// Explicit ratings with dense ids: rating `t` is `ratings[t]` given by
/// `users[t] < n_users` to `items[t] < n_items`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RatingData {
    /// Number of users (ids `0..n_users`).
    pub n_users: usize,
    /// Number of items (ids `0..n_items`).
    pub n_items: usize,
    /// User of each rating.
    pub users: Vec<u32>,
    /// Item of each rating.
    pub items: Vec<u32>,
    /// The ratings.
    pub ratings: Vec<f32>,
}

/// Compressed rows (by user or by item), column indices sorted within a row.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct RowMajor {
    pub(crate) indptr: Vec<usize>,
    pub(crate) idx: Vec<u32>,
    pub(crate) val: Vec<f32>,
}

impl RowMajor {
    pub(crate) fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }
    pub(crate) fn len(&self, r: usize) -> usize {
        self.indptr[r + 1] - self.indptr[r]
    }
    pub(crate) fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (s, e) = (self.indptr[r], self.indptr[r + 1]);
        (&self.idx[s..e], &self.val[s..e])
    }
    /// Rows from unordered triplets by a counting sort (columns within a
    /// row keep the input order, i.e. are not sorted).
    fn scatter(n_rows: usize, rows: &[u32], cols: &[u32], vals: &[f32]) -> RowMajor {
        let mut indptr = vec![0usize; n_rows + 1];
        for &r in rows {
            indptr[r as usize + 1] += 1;
        }
        for r in 0..n_rows {
            indptr[r + 1] += indptr[r];
        }
        let mut next = indptr.clone();
        let mut idx = vec![0u32; rows.len()];
        let mut val = vec![0f32; rows.len()];
        for ((&r, &c), &v) in rows.iter().zip(cols).zip(vals) {
            let p = &mut next[r as usize];
            idx[*p] = c;
            val[*p] = v;
            *p += 1;
        }
        RowMajor { indptr, idx, val }
    }

    /// The transpose with `n_cols` rows; its rows come out sorted (the
    /// rows of `self` are visited in order), so no sort is ever needed.
    fn transpose(&self, n_cols: usize) -> RowMajor {
        self.transpose_with_source(n_cols).0
    }

    /// [`RowMajor::transpose`] and, for each of its entries, the position
    /// of the same entry in `self`.
    fn transpose_with_source(&self, n_cols: usize) -> (RowMajor, Vec<u32>) {
        let mut indptr = vec![0usize; n_cols + 1];
        for &c in &self.idx {
            indptr[c as usize + 1] += 1;
        }
        for c in 0..n_cols {
            indptr[c + 1] += indptr[c];
        }
        let mut next = indptr.clone();
        let mut idx = vec![0u32; self.idx.len()];
        let mut val = vec![0f32; self.idx.len()];
        let mut src = vec![0u32; self.idx.len()];
        for r in 0..self.n_rows() {
            let (s, e) = (self.indptr[r], self.indptr[r + 1]);
            for (t, (&c, &v)) in self.idx[s..e].iter().zip(&self.val[s..e]).enumerate() {
                let p = &mut next[c as usize];
                idx[*p] = r as u32;
                val[*p] = v;
                src[*p] = (s + t) as u32;
                *p += 1;
            }
        }
        (RowMajor { indptr, idx, val }, src)
    }
}

/// What every model fitted on the same training data needs, computed once
/// and shared (a blend's components, the candidates of [`choose`]): the
/// ratings by user and by item (sorted rows), the mean, and the ALS
/// baseline with default parameters.
#[derive(Debug)]
pub(crate) struct Prep<'a> {
    pub(crate) data: &'a RatingData,
    pub(crate) mean: f32,
    pub(crate) by_user: RowMajor,
    pub(crate) by_item: RowMajor,
    /// For each entry of `by_item`, its position in `by_user`.
    pub(crate) item_pos: Vec<u32>,
    base: std::sync::OnceLock<Baseline>,
}

impl<'a> Prep<'a> {
    pub(crate) fn new(data: &'a RatingData) -> Self {
        // Unsorted item rows → sorted user rows → sorted item rows.
        let raw = RowMajor::scatter(data.n_items, &data.items, &data.users, &data.ratings);
        let by_user = raw.transpose(data.n_users);
        let (by_item, item_pos) = by_user.transpose_with_source(data.n_items);
        Prep {
            data,
            mean: data.mean(),
            by_user,
            by_item,
            item_pos,
            base: std::sync::OnceLock::new(),
        }
    }

    /// The ALS baseline with `p` (computed once for the default parameters).
    pub(crate) fn baseline(&self, p: &BaselineParams) -> std::borrow::Cow<'_, Baseline> {
        if *p == BaselineParams::default() {
            std::borrow::Cow::Borrowed(
                self.base
                    .get_or_init(|| Baseline::fit_rows(self.mean, &self.by_user, &self.by_item, p)),
            )
        } else {
            std::borrow::Cow::Owned(Baseline::fit_rows(
                self.mean,
                &self.by_user,
                &self.by_item,
                p,
            ))
        }
    }
}

impl RatingData {
    /// Checks the arrays (same length, ids in range, finite ratings).
    pub fn new(
        n_users: usize,
        n_items: usize,
        users: Vec<u32>,
        items: Vec<u32>,
        ratings: Vec<f32>,
    ) -> Result<Self, ModelError> {
        if users.len() != items.len() || users.len() != ratings.len() {
            return Err(ModelError::InvalidInput(format!(
                "users, items and ratings differ in length ({}, {}, {})",
                users.len(),
                items.len(),
                ratings.len()
            )));
        }
        if n_users > u32::MAX as usize
            || n_items > u32::MAX as usize
            || ratings.len() > u32::MAX as usize
        {
            return Err(ModelError::InvalidInput(
                "more than 2^32 users, items or ratings".into(),
            ));
        }
        if let Some(t) = users.iter().position(|&u| u as usize >= n_users) {
            return Err(ModelError::InvalidInput(format!(
                "rating {t}: user id {} >= n_users {n_users}",
                users[t]
            )));
        }
        if let Some(t) = items.iter().position(|&i| i as usize >= n_items) {
            return Err(ModelError::InvalidInput(format!(
                "rating {t}: item id {} >= n_items {n_items}",
                items[t]
            )));
        }
        if let Some(t) = ratings.iter().position(|r| !r.is_finite()) {
            return Err(ModelError::InvalidInput(format!(
                "rating {t} is not finite"
            )));
        }
        Ok(RatingData {
            n_users,
            n_items,
            users,
            items,
            ratings,
        })
    }

    /// Number of ratings.
    pub fn len(&self) -> usize {
        self.ratings.len()
    }

    /// No ratings.
    pub fn is_empty(&self) -> bool {
        self.ratings.is_empty()
    }

    /// Mean rating (0 when empty).
    pub fn mean(&self) -> f32 {
        if self.ratings.is_empty() {
            return 0.0;
        }
        (self.ratings.iter().map(|&r| r as f64).sum::<f64>() / self.len() as f64) as f32
    }

    /// The ratings at positions `idx`, with the same id spaces.
    pub fn subset(&self, idx: &[u32]) -> RatingData {
        RatingData {
            n_users: self.n_users,
            n_items: self.n_items,
            users: idx.iter().map(|&t| self.users[t as usize]).collect(),
            items: idx.iter().map(|&t| self.items[t as usize]).collect(),
            ratings: idx.iter().map(|&t| self.ratings[t as usize]).collect(),
        }
    }

    /// Ratings per user.
    pub fn user_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.n_users];
        for &u in &self.users {
            c[u as usize] += 1;
        }
        c
    }

    /// Ratings per item.
    pub fn item_counts(&self) -> Vec<u32> {
        let mut c = vec![0u32; self.n_items];
        for &i in &self.items {
            c[i as usize] += 1;
        }
        c
    }

    fn range(&self) -> (f32, f32) {
        let lo = self.ratings.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = self
            .ratings
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        (lo, hi)
    }
}

/// The algorithm names accepted by [`RatingAlgo::default_for`] (plus `auto`, see [`auto_candidates`]).
pub const RATING_ALGORITHMS: &[&str] = &[
    "global-mean",
    "baseline",
    "svd",
    "svdpp",
    "knn-baseline",
    "blend",
];

/// A rating-prediction algorithm with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algo", rename_all = "kebab-case")]
pub enum RatingAlgo {
    /// Predicts the training mean.
    GlobalMean,
    /// `μ + b_u + b_i` by ALS.
    Baseline(BaselineParams),
    /// Biased MF by SGD.
    Svd(MfParams),
    /// SVD++ by SGD.
    Svdpp(MfParams),
    /// Item-kNN with baselines.
    KnnBaseline(KnnParams),
    /// Ridge blend of several models.
    Blend(BlendParams),
}

/// Parameters of a blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlendParams {
    /// The blended models.
    pub components: Vec<RatingAlgo>,
    /// Weights of the blend features `[1, s_u, s_i, p_k…, p_k·s_u…, p_k·s_i…]`
    /// (`s = 1/√(1+n)`, see the module docs) when already chosen (by [`choose`]); `None` =
    /// fit them on an inner validation split of the training data.
    pub weights: Option<Vec<f64>>,
    /// Share of the training data held out to fit the weights (when `weights` is `None`).
    pub val_frac: f64,
}

impl RatingAlgo {
    /// Default configuration for a name in [`RATING_ALGORITHMS`].
    pub fn default_for(name: &str) -> Result<Self, ModelError> {
        Ok(match name.to_ascii_lowercase().replace('_', "-").as_str() {
            "global-mean" | "mean" => RatingAlgo::GlobalMean,
            "baseline" | "baselineonly" | "bias" => RatingAlgo::Baseline(BaselineParams::default()),
            "svd" | "mf" | "biased-mf" => RatingAlgo::Svd(MfParams::svd()),
            "svdpp" | "svd++" => RatingAlgo::Svdpp(MfParams::svdpp()),
            "knn-baseline" | "knnbaseline" | "knn" => RatingAlgo::KnnBaseline(KnnParams::default()),
            "blend" => RatingAlgo::Blend(BlendParams {
                components: vec![
                    RatingAlgo::KnnBaseline(KnnParams::default()),
                    RatingAlgo::Svdpp(MfParams::svdpp()),
                ],
                weights: None,
                val_frac: 0.1,
            }),
            other => {
                return Err(ModelError::InvalidParameter {
                    name: "algo".into(),
                    reason: format!(
                        "unknown rating algorithm {other:?}; expected one of {}, auto",
                        RATING_ALGORITHMS.join(", ")
                    ),
                });
            }
        })
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        match self {
            RatingAlgo::GlobalMean => "global-mean",
            RatingAlgo::Baseline(_) => "baseline",
            RatingAlgo::Svd(_) => "svd",
            RatingAlgo::Svdpp(_) => "svdpp",
            RatingAlgo::KnnBaseline(_) => "knn-baseline",
            RatingAlgo::Blend(_) => "blend",
        }
    }

    /// A short label with the parameters that usually get tuned.
    pub fn label(&self) -> String {
        match self {
            RatingAlgo::GlobalMean => "global-mean".into(),
            RatingAlgo::Baseline(p) => format!("baseline(reg_i={},reg_u={})", p.reg_i, p.reg_u),
            RatingAlgo::Svd(p) | RatingAlgo::Svdpp(p) => format!(
                "{}(factors={},epochs={},lr={},reg={})",
                self.name(),
                p.factors,
                p.epochs,
                p.lr,
                p.reg
            ),
            RatingAlgo::KnnBaseline(p) => format!("knn-baseline(k={},shrink={})", p.k, p.shrink),
            RatingAlgo::Blend(b) => {
                format!(
                    "blend({})",
                    b.components
                        .iter()
                        .map(|c| c.label())
                        .collect::<Vec<_>>()
                        .join(" + ")
                )
            }
        }
    }

    /// Sets one hyper-parameter by name. Factor models: `factors`, `epochs`,
    /// `lr`, `reg`, `lr_bias`, `reg_bias`, `reg_y`, `decay`, `init_std`;
    /// kNN: `k`, `min_k`, `shrink`, `max_neighbors`, `reg_i`, `reg_u`;
    /// baseline: `reg_i`, `reg_u`, `epochs`; blend: `val_frac`.
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), ModelError> {
        let name = self.name();
        let bad = |reason: String| ModelError::InvalidParameter {
            name: key.to_owned(),
            reason,
        };
        if !value.is_finite() {
            return Err(bad("must be finite".into()));
        }
        let count = |v: f64| -> Result<usize, ModelError> {
            if v >= 0.0 && v.fract() == 0.0 && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(bad("must be a whole number >= 0".into()))
            }
        };
        let nonneg = |v: f64| -> Result<f32, ModelError> {
            if v >= 0.0 {
                Ok(v as f32)
            } else {
                Err(bad("must be >= 0".into()))
            }
        };
        let known = match self {
            RatingAlgo::GlobalMean => false,
            RatingAlgo::Baseline(p) => match key {
                "reg_i" => {
                    p.reg_i = nonneg(value)?;
                    true
                }
                "reg_u" => {
                    p.reg_u = nonneg(value)?;
                    true
                }
                "epochs" => {
                    p.epochs = count(value)?;
                    true
                }
                _ => false,
            },
            RatingAlgo::Svd(p) | RatingAlgo::Svdpp(p) => match key {
                "factors" | "k" => {
                    p.factors = count(value)?;
                    true
                }
                "epochs" | "n_epochs" => {
                    p.epochs = count(value)?;
                    true
                }
                "lr" | "lr_all" => {
                    p.lr = nonneg(value)?;
                    true
                }
                "reg" | "reg_all" => {
                    p.reg = nonneg(value)?;
                    true
                }
                "lr_bias" => {
                    p.lr_bias = nonneg(value)?;
                    true
                }
                "reg_bias" => {
                    p.reg_bias = nonneg(value)?;
                    true
                }
                "reg_y" => {
                    p.reg_y = nonneg(value)?;
                    true
                }
                "decay" => {
                    p.decay = nonneg(value)?;
                    true
                }
                "init_std" => {
                    p.init_std = nonneg(value)?;
                    true
                }
                _ => false,
            },
            RatingAlgo::KnnBaseline(p) => match key {
                "k" => {
                    p.k = count(value)?;
                    true
                }
                "min_k" => {
                    p.min_k = count(value)?;
                    true
                }
                "shrink" | "shrinkage" => {
                    p.shrink = nonneg(value)?;
                    true
                }
                "max_neighbors" => {
                    p.max_neighbors = count(value)?;
                    true
                }
                "reg_i" => {
                    p.baseline.reg_i = nonneg(value)?;
                    true
                }
                "reg_u" => {
                    p.baseline.reg_u = nonneg(value)?;
                    true
                }
                _ => false,
            },
            RatingAlgo::Blend(b) => match key {
                "val_frac" => {
                    if !(value > 0.0 && value < 1.0) {
                        return Err(bad("must be in (0, 1)".into()));
                    }
                    b.val_frac = value;
                    true
                }
                _ => false,
            },
        };
        if known {
            Ok(())
        } else {
            Err(bad(format!("not a parameter of {name}")))
        }
    }

    /// A deterministic estimate of the fitting work on `data` (operation
    /// count), used to prefer the cheaper of two equally accurate models.
    pub fn cost(&self, data: &RatingData) -> f64 {
        let n = data.len() as f64;
        match self {
            RatingAlgo::GlobalMean => n,
            RatingAlgo::Baseline(p) => n * (2 * p.epochs.max(1)) as f64,
            RatingAlgo::Svd(p) => n * (p.epochs * (p.factors + 4)) as f64,
            RatingAlgo::Svdpp(p) => n * (p.epochs * (2 * p.factors + 4)) as f64,
            RatingAlgo::KnnBaseline(_) => {
                // Co-rating pairs (each counted once) plus the baseline.
                let pairs: f64 = data
                    .user_counts()
                    .iter()
                    .map(|&c| (c as f64) * (c as f64) / 2.0)
                    .sum();
                2.0 * pairs + 20.0 * n
            }
            RatingAlgo::Blend(b) => b.components.iter().map(|c| c.cost(data)).sum(),
        }
    }

    /// Fits on `data` (deterministic for `seed`).
    pub fn fit(&self, data: &RatingData, seed: u64) -> Result<RatingModel, ModelError> {
        if data.is_empty() {
            return Err(ModelError::InvalidInput("no training ratings".into()));
        }
        if let RatingAlgo::GlobalMean = self {
            let (lo, hi) = data.range();
            return Ok(RatingModel {
                algo: self.clone(),
                lo,
                hi,
                inner: Inner::Mean(data.mean()),
            });
        }
        self.fit_prep(&Prep::new(data), seed)
    }

    /// [`RatingAlgo::fit`] on shared preprocessing (non-empty data).
    fn fit_prep(&self, prep: &Prep<'_>, seed: u64) -> Result<RatingModel, ModelError> {
        let data = prep.data;
        let (lo, hi) = data.range();
        let inner = match self {
            RatingAlgo::GlobalMean => Inner::Mean(prep.mean),
            RatingAlgo::Baseline(p) => Inner::Baseline(prep.baseline(p).into_owned()),
            RatingAlgo::Svd(p) => Inner::Factors(mf::fit_svd_prep(prep, p, seed)?),
            RatingAlgo::Svdpp(p) => Inner::Factors(mf::fit_svdpp_prep(prep, p, seed)?),
            RatingAlgo::KnnBaseline(p) => Inner::Knn(Box::new(KnnBaseline::fit_prep(prep, p)?)),
            RatingAlgo::Blend(b) => {
                if b.components.is_empty() || b.components.len() > 8 {
                    return Err(ModelError::InvalidParameter {
                        name: "components".into(),
                        reason: "a blend needs 1 to 8 models".into(),
                    });
                }
                let weights = match &b.weights {
                    Some(w) if w.len() == blend_features(b.components.len()) => w.clone(),
                    Some(_) => {
                        return Err(ModelError::InvalidParameter {
                            name: "weights".into(),
                            reason: format!(
                                "a blend of {} models needs {} weights",
                                b.components.len(),
                                blend_features(b.components.len())
                            ),
                        });
                    }
                    None => {
                        let (tr, va) = inner_split(data.len(), b.val_frac, seed ^ 0x5eed_b1e0);
                        let (trd, vad) = (data.subset(&tr), data.subset(&va));
                        if trd.is_empty() {
                            return Err(ModelError::InvalidInput(
                                "too few ratings to fit blend weights".into(),
                            ));
                        }
                        let preds = fit_predict_all(&b.components, &Prep::new(&trd), &vad, seed)?;
                        let rows = BlendRows::new(preds, &trd, &vad);
                        rows.ridge(&vad.ratings, None, BLEND_RIDGE)
                    }
                };
                let models: Result<Vec<RatingModel>, ModelError> = b
                    .components
                    .par_iter()
                    .map(|c| c.fit_prep(prep, seed))
                    .collect();
                let counts = |m: &RowMajor| (0..m.n_rows()).map(|r| m.len(r) as u32).collect();
                Inner::Blend(
                    models?,
                    weights,
                    counts(&prep.by_user),
                    counts(&prep.by_item),
                )
            }
        };
        Ok(RatingModel {
            algo: self.clone(),
            lo,
            hi,
            inner,
        })
    }
}

#[derive(Debug, Clone)]
enum Inner {
    Mean(f32),
    Baseline(Baseline),
    Factors(FactorModel),
    Knn(Box<KnnBaseline>),
    Blend(Vec<RatingModel>, Vec<f64>, Vec<u32>, Vec<u32>),
}

/// A fitted rating model.
#[derive(Debug, Clone)]
pub struct RatingModel {
    /// The configuration it was fitted with.
    pub algo: RatingAlgo,
    lo: f32,
    hi: f32,
    inner: Inner,
}

impl RatingModel {
    /// Predicted rating of `user` for `item`, clipped to the training rating
    /// range. Ids the training data never saw get the baseline part only.
    pub fn predict(&self, user: u32, item: u32) -> f32 {
        let v = match &self.inner {
            Inner::Mean(m) => *m,
            Inner::Baseline(b) => b.predict(user, item),
            Inner::Factors(f) => f.predict(user, item),
            Inner::Knn(k) => k.predict(user, item),
            Inner::Blend(ms, w, cu, ci) => {
                let mut ps = [0f32; 8];
                for (p, m) in ps.iter_mut().zip(ms) {
                    *p = m.predict(user, item);
                }
                let su = support(cu.get(user as usize).copied().unwrap_or(0));
                let si = support(ci.get(item as usize).copied().unwrap_or(0));
                blend_value(w, &ps[..ms.len()], su, si) as f32
            }
        };
        self.clip(v)
    }

    /// Predictions for many pairs, in parallel (kNN models and blends
    /// predict in batches, see [`KnnBaseline::predict_many`]).
    pub fn predict_many(&self, users: &[u32], items: &[u32]) -> Vec<f32> {
        let raw: Vec<f32> = match &self.inner {
            Inner::Knn(k) => k.predict_many(users, items),
            Inner::Blend(ms, w, cu, ci) => {
                let parts: Vec<Vec<f32>> =
                    ms.iter().map(|m| m.predict_many(users, items)).collect();
                (0..users.len().min(items.len()))
                    .into_par_iter()
                    .with_min_len(1024)
                    .map(|t| {
                        let mut ps = [0f32; 8];
                        for (p, part) in ps.iter_mut().zip(&parts) {
                            *p = part[t];
                        }
                        let su = support(cu.get(users[t] as usize).copied().unwrap_or(0));
                        let si = support(ci.get(items[t] as usize).copied().unwrap_or(0));
                        blend_value(w, &ps[..ms.len()], su, si) as f32
                    })
                    .collect()
            }
            _ => {
                return users
                    .par_iter()
                    .zip(items.par_iter())
                    .with_min_len(256)
                    .map(|(&u, &i)| self.predict(u, i))
                    .collect();
            }
        };
        raw.into_iter().map(|v| self.clip(v)).collect()
    }

    fn clip(&self, v: f32) -> f32 {
        if v.is_finite() {
            v.clamp(self.lo, self.hi)
        } else {
            (self.lo + self.hi) / 2.0
        }
    }

    /// Blend weights (over `[1, s_u, s_i, p_k…, p_k·s_u…, p_k·s_i…]`) when this is a blend.
    pub fn blend_weights(&self) -> Option<&[f64]> {
        match &self.inner {
            Inner::Blend(_, w, _, _) => Some(w),
            _ => None,
        }
    }
}

/// Shuffled `k`-fold split of `n` ratings: the test positions of each fold
/// (every rating is in exactly one fold; fold sizes differ by at most one).
pub fn kfold(n: usize, folds: usize, seed: u64) -> Result<Vec<Vec<u32>>, ModelError> {
    if folds < 2 || folds > n {
        return Err(ModelError::InvalidParameter {
            name: "folds".into(),
            reason: format!("must be in 2..={n} (the number of ratings)"),
        });
    }
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut out = Vec::with_capacity(folds);
    let (q, r) = (n / folds, n % folds);
    let mut start = 0;
    for f in 0..folds {
        let len = q + usize::from(f < r);
        let mut part = idx[start..start + len].to_vec();
        part.sort_unstable();
        out.push(part);
        start += len;
    }
    Ok(out)
}

/// The positions not in `test` (sorted `test` expected, as [`kfold`] gives).
pub fn complement(n: usize, test: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(n - test.len());
    let mut t = 0;
    for i in 0..n as u32 {
        if t < test.len() && test[t] == i {
            t += 1;
        } else {
            out.push(i);
        }
    }
    out
}

/// Random `(train, validation)` positions, validation ≈ `val_frac · n` (at least 1 when n ≥ 2).
pub fn inner_split(n: usize, val_frac: f64, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let mut idx: Vec<u32> = (0..n as u32).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let nv =
        ((n as f64 * val_frac).round() as usize).clamp(usize::from(n >= 2), n.saturating_sub(1));
    let mut va = idx[..nv].to_vec();
    let mut tr = idx[nv..].to_vec();
    va.sort_unstable();
    tr.sort_unstable();
    (tr, va)
}

fn fit_predict_all(
    algos: &[RatingAlgo],
    train: &Prep<'_>,
    val: &RatingData,
    seed: u64,
) -> Result<Vec<Vec<f32>>, ModelError> {
    algos
        .par_iter()
        .map(|a| {
            Ok(a.fit_prep(train, seed)?
                .predict_many(&val.users, &val.items))
        })
        .collect()
}

/// Ridge strength of the blend (relative to the number of validation rows).
const BLEND_RIDGE: f64 = 1e-3;

/// How much a user or item is known: `1/√(1+n)` of its training ratings.
fn support(n: u32) -> f32 {
    1.0 / (1.0 + n as f32).sqrt()
}

/// Blend features of `m` models: `[1, s_u, s_i, p_k…, p_k·s_u…, p_k·s_i…]`
/// (feature-weighted linear stacking, Sill et al. 2009: how much to trust
/// each model may depend on how much the user and the item are known).
fn blend_features(m: usize) -> usize {
    3 + 3 * m
}

fn blend_x(ps: &[f32], su: f32, si: f32, x: &mut [f64]) {
    let m = ps.len();
    x[0] = 1.0;
    x[1] = su as f64;
    x[2] = si as f64;
    for (k, &p) in ps.iter().enumerate() {
        x[3 + k] = p as f64;
        x[3 + m + k] = (p * su) as f64;
        x[3 + 2 * m + k] = (p * si) as f64;
    }
}

fn blend_value(w: &[f64], ps: &[f32], su: f32, si: f32) -> f64 {
    let mut x = [0f64; 3 + 3 * 8];
    let nf = blend_features(ps.len());
    blend_x(ps, su, si, &mut x[..nf]);
    w.iter().zip(&x[..nf]).map(|(a, b)| a * b).sum()
}

/// Validation rows of a blend: each model's predictions and the supports.
struct BlendRows {
    preds: Vec<Vec<f32>>,
    su: Vec<f32>,
    si: Vec<f32>,
}

impl BlendRows {
    /// Supports are counted in `fit_data`, the data the models were fitted on.
    fn new(preds: Vec<Vec<f32>>, fit_data: &RatingData, val: &RatingData) -> Self {
        let (cu, ci) = (fit_data.user_counts(), fit_data.item_counts());
        BlendRows {
            preds,
            su: val.users.iter().map(|&u| support(cu[u as usize])).collect(),
            si: val.items.iter().map(|&i| support(ci[i as usize])).collect(),
        }
    }

    fn ps(&self, t: usize, out: &mut [f32]) {
        for (o, p) in out.iter_mut().zip(&self.preds) {
            *o = p[t];
        }
    }

    fn value(&self, w: &[f64], t: usize) -> f64 {
        let mut ps = [0f32; 8];
        let m = self.preds.len();
        self.ps(t, &mut ps[..m]);
        blend_value(w, &ps[..m], self.su[t], self.si[t])
    }

    /// Ridge least squares of `y` on the blend features over the rows where
    /// `mask` is true (all when `None`); intercept not penalized, `lambda`
    /// relative to the number of rows.
    fn ridge(&self, y: &[f32], mask: Option<&[bool]>, lambda: f64) -> Vec<f64> {
        let m = self.preds.len();
        let nf = blend_features(m);
        let mut a = vec![0f64; nf * nf];
        let mut b = vec![0f64; nf];
        let mut x = vec![0f64; nf];
        let mut ps = [0f32; 8];
        let mut n = 0usize;
        for t in 0..y.len() {
            if mask.is_some_and(|mk| !mk[t]) {
                continue;
            }
            n += 1;
            self.ps(t, &mut ps[..m]);
            blend_x(&ps[..m], self.su[t], self.si[t], &mut x);
            for r in 0..nf {
                b[r] += x[r] * y[t] as f64;
                for c in 0..nf {
                    a[r * nf + c] += x[r] * x[c];
                }
            }
        }
        for d in 1..nf {
            a[d * nf + d] += lambda * n.max(1) as f64;
        }
        solve(&mut a, &mut b, nf).unwrap_or_else(|| {
            // Degenerate: the plain average of the models.
            let mut w = vec![0.0; nf];
            for k in 0..m {
                w[3 + k] = 1.0 / m as f64;
            }
            w
        })
    }
}

/// Gaussian elimination with partial pivoting; `None` when singular.
fn solve(a: &mut [f64], b: &mut [f64], m: usize) -> Option<Vec<f64>> {
    for c in 0..m {
        let p = (c..m).max_by(|&i, &j| a[i * m + c].abs().total_cmp(&a[j * m + c].abs()))?;
        if a[p * m + c].abs() < 1e-12 {
            return None;
        }
        if p != c {
            for k in 0..m {
                a.swap(c * m + k, p * m + k);
            }
            b.swap(c, p);
        }
        for r in c + 1..m {
            let f = a[r * m + c] / a[c * m + c];
            for k in c..m {
                a[r * m + k] -= f * a[c * m + k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0f64; m];
    for r in (0..m).rev() {
        let mut s = b[r];
        for k in r + 1..m {
            s -= a[r * m + k] * x[k];
        }
        x[r] = s / a[r * m + r];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// `--grid 'lr=0.005,0.01;reg=0.02,0.05'` → `[("lr", [0.005, 0.01]), ("reg", [0.02, 0.05])]`.
pub fn parse_grid(spec: &str) -> Result<Vec<(String, Vec<f64>)>, ModelError> {
    let bad = |reason: String| ModelError::InvalidParameter {
        name: "grid".into(),
        reason,
    };
    let mut out: Vec<(String, Vec<f64>)> = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, vs) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not key=v1,v2,…")))?;
        let k = k.trim().to_string();
        if k.is_empty() {
            return Err(bad(format!("{part:?} has no parameter name")));
        }
        if out.iter().any(|(o, _)| *o == k) {
            return Err(bad(format!("parameter {k} given twice")));
        }
        let mut vals = Vec::new();
        for v in vs.split(',').map(str::trim).filter(|v| !v.is_empty()) {
            let x: f64 = v
                .parse()
                .map_err(|_| bad(format!("{k}: {v:?} is not a number")))?;
            if !x.is_finite() {
                return Err(bad(format!("{k}: {v:?} is not finite")));
            }
            vals.push(x);
        }
        if vals.is_empty() {
            return Err(bad(format!("{k} has no values")));
        }
        out.push((k, vals));
    }
    if out.is_empty() {
        return Err(bad("empty grid".into()));
    }
    Ok(out)
}

/// Every combination of the grid's values applied to `base` (errors on an
/// unknown parameter or more than 1000 combinations).
pub fn expand_grid(
    base: &RatingAlgo,
    grid: &[(String, Vec<f64>)],
) -> Result<Vec<RatingAlgo>, ModelError> {
    let total: usize = grid.iter().map(|(_, v)| v.len()).product();
    if total > 1000 {
        return Err(ModelError::InvalidParameter {
            name: "grid".into(),
            reason: format!("{total} combinations; at most 1000"),
        });
    }
    let mut out = vec![base.clone()];
    for (k, vals) in grid {
        let mut next = Vec::with_capacity(out.len() * vals.len());
        for a in &out {
            for &v in vals {
                let mut c = a.clone();
                c.set(k, v)?;
                next.push(c);
            }
        }
        out = next;
    }
    Ok(out)
}

/// Whether every grid key is a parameter of `algo`.
pub fn grid_applies(algo: &RatingAlgo, grid: &[(String, Vec<f64>)]) -> bool {
    grid.iter().all(|(k, v)| algo.clone().set(k, v[0]).is_ok())
}

/// The candidates `--algo auto` compares: the baseline, kNN-baseline, SVD,
/// and SVD++ in three settings from "short and strongly regularized" (best
/// on noisy, sparse data such as MovieLens) to "longer and loosely
/// regularized" (best when the low-rank signal is strong). All use a large
/// first step that decays fast, which reached lower validation RMSE in
/// fewer epochs than slow constant-ish steps both on MovieLens and on
/// planted low-rank data.
pub fn auto_candidates() -> Vec<RatingAlgo> {
    vec![
        RatingAlgo::Baseline(BaselineParams::default()),
        RatingAlgo::KnnBaseline(KnnParams::default()),
        RatingAlgo::Svd(MfParams::svd()),
        RatingAlgo::Svdpp(MfParams::svdpp()),
        RatingAlgo::Svdpp(MfParams {
            epochs: 8,
            lr: 0.08,
            reg: 0.05,
            decay: 0.8,
            ..MfParams::svdpp()
        }),
        RatingAlgo::Svdpp(MfParams {
            epochs: 12,
            lr: 0.08,
            reg: 0.02,
            decay: 0.9,
            ..MfParams::svdpp()
        }),
    ]
}

/// The accuracy `--algo auto` gives up for speed: it takes the cheapest
/// candidate whose validation RMSE is within 0.25 % of the best (the
/// validation estimate itself is not more precise than that).
pub const AUTO_TOLERANCE: f64 = 0.0025;

/// One candidate's inner-validation score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    /// [`RatingAlgo::label`] of the candidate.
    pub label: String,
    /// RMSE on the inner validation split (+∞ when it could not be fitted).
    pub val_rmse: f64,
    /// [`RatingAlgo::cost`] on the training data.
    pub cost: f64,
    /// Why it could not be fitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What [`choose`] picked and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Choice {
    /// The winning configuration (blends come with their weights).
    pub algo: RatingAlgo,
    /// Its inner-validation RMSE.
    pub val_rmse: f64,
    /// The lowest inner-validation RMSE of all candidates.
    pub best_val_rmse: f64,
    /// Every candidate's score, in the order tried.
    pub trials: Vec<Trial>,
}

/// Picks a candidate by its RMSE on a validation split (`val_frac` of
/// `train`, drawn with `seed`) after fitting on the rest.
///
/// With `try_blend`, ridge blends of every combination of two or three of
/// the best kNN, the best SVD and the best SVD++ candidate are also scored,
/// their weights cross-fitted on two halves of the validation split so the
/// score is as honest as the single models'; a chosen blend comes with
/// weights fitted on the whole validation split.
///
/// `tolerance` trades accuracy for speed: among the candidates whose
/// validation RMSE is within `(1 + tolerance) ×` the best, the one with the
/// lowest [`RatingAlgo::cost`] wins (0 = strictly the lowest RMSE). The cost
/// is a deterministic operation count, so the choice is reproducible.
pub fn choose(
    train: &RatingData,
    candidates: &[RatingAlgo],
    try_blend: bool,
    val_frac: f64,
    tolerance: f64,
    seed: u64,
) -> Result<Choice, ModelError> {
    if candidates.is_empty() {
        return Err(ModelError::InvalidInput(
            "no candidate configurations".into(),
        ));
    }
    let (tr, va) = inner_split(train.len(), val_frac, seed ^ 0x00c0_ffee);
    let (trd, vad) = (train.subset(&tr), train.subset(&va));
    if trd.is_empty() {
        return Err(ModelError::InvalidInput(
            "too few ratings for a validation split".into(),
        ));
    }
    let prep = Prep::new(&trd);
    // A candidate that fails to fit (e.g. SGD diverging at a grid point) is
    // scored +∞ and reported, unless every candidate fails.
    let results: Vec<Result<Vec<f32>, ModelError>> = candidates
        .par_iter()
        .map(|a| {
            Ok(a.fit_prep(&prep, seed)?
                .predict_many(&vad.users, &vad.items))
        })
        .collect();
    if results.iter().all(Result::is_err) {
        if let Some(Err(e)) = results.into_iter().next() {
            return Err(e);
        }
        return Err(ModelError::FitFailed("no candidate could be fitted".into()));
    }
    let mut trials: Vec<Trial> = candidates
        .iter()
        .zip(&results)
        .map(|(c, p)| Trial {
            label: c.label(),
            val_rmse: p.as_ref().map_or(f64::INFINITY, |p| rmse(p, &vad.ratings)),
            cost: c.cost(train),
            error: p.as_ref().err().map(ToString::to_string),
        })
        .collect();
    let mut algos: Vec<RatingAlgo> = candidates.to_vec();
    let preds: Vec<Vec<f32>> = results.into_iter().map(Result::unwrap_or_default).collect();
    if try_blend {
        // The best kNN, the best SVD and the best SVD++ (global-mean and
        // baseline add nothing a blend can use); every combination of two
        // or three of them is scored.
        let best_of = |pred: &dyn Fn(&RatingAlgo) -> bool| -> Option<usize> {
            (0..candidates.len())
                .filter(|&k| pred(&candidates[k]) && trials[k].val_rmse.is_finite())
                .min_by(|&a, &b| trials[a].val_rmse.total_cmp(&trials[b].val_rmse))
        };
        let members: Vec<usize> = [
            best_of(&|c| matches!(c, RatingAlgo::KnnBaseline(_))),
            best_of(&|c| matches!(c, RatingAlgo::Svd(_))),
            best_of(&|c| matches!(c, RatingAlgo::Svdpp(_))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut sets: Vec<Vec<usize>> = Vec::new();
        for a in 0..members.len() {
            for b in a + 1..members.len() {
                sets.push(vec![members[a], members[b]]);
            }
        }
        if members.len() == 3 {
            sets.push(members.clone());
        }
        let n = vad.len();
        let half: Vec<bool> = {
            let (_, b) = inner_split(n, 0.5, seed ^ 0xb1e4d);
            let mut h = vec![false; n];
            for t in b {
                h[t as usize] = true;
            }
            h
        };
        let other: Vec<bool> = half.iter().map(|h| !h).collect();
        let (lo, hi) = train.range();
        for fam in sets {
            let rows = BlendRows::new(fam.iter().map(|&k| preds[k].clone()).collect(), &trd, &vad);
            let wa = rows.ridge(&vad.ratings, Some(&half), BLEND_RIDGE);
            let wb = rows.ridge(&vad.ratings, Some(&other), BLEND_RIDGE);
            let mut cross = vec![0f32; n];
            for (t, c) in cross.iter_mut().enumerate() {
                // Weights fitted on the other half.
                let w = if half[t] { &wb } else { &wa };
                *c = (rows.value(w, t) as f32).clamp(lo, hi);
            }
            let comps: Vec<RatingAlgo> = fam.iter().map(|&k| candidates[k].clone()).collect();
            let w = rows.ridge(&vad.ratings, None, BLEND_RIDGE);
            let algo = RatingAlgo::Blend(BlendParams {
                components: comps,
                weights: Some(w),
                val_frac,
            });
            let score = rmse(&cross, &vad.ratings);
            trials.push(Trial {
                label: algo.label(),
                val_rmse: score,
                cost: algo.cost(train),
                error: None,
            });
            algos.push(algo);
        }
    }
    let best_rmse = trials
        .iter()
        .map(|t| t.val_rmse)
        .fold(f64::INFINITY, f64::min);
    let limit = best_rmse * (1.0 + tolerance.max(0.0));
    let mut pick = None::<usize>;
    for (k, t) in trials.iter().enumerate() {
        if t.val_rmse > limit {
            continue;
        }
        pick = match pick {
            Some(p) if (trials[p].cost, trials[p].val_rmse) <= (t.cost, t.val_rmse) => Some(p),
            _ => Some(k),
        };
    }
    let pick = pick.ok_or_else(|| ModelError::FitFailed("no candidate could be scored".into()))?;
    Ok(Choice {
        algo: algos[pick].clone(),
        val_rmse: trials[pick].val_rmse,
        best_val_rmse: best_rmse,
        trials,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kfold_partitions() {
        let f = kfold(103, 5, 1).unwrap();
        let mut all: Vec<u32> = f.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        assert!(f.iter().all(|p| p.len() == 20 || p.len() == 21));
        assert_eq!(complement(103, &f[0]).len(), 103 - f[0].len());
        assert!(kfold(3, 5, 0).is_err());
    }

    #[test]
    fn grid_parse_and_expand() {
        let g = parse_grid("lr=0.005,0.01; reg=0.02,0.05;factors=50,100").unwrap();
        assert_eq!(g.len(), 3);
        let c = expand_grid(&RatingAlgo::default_for("svd").unwrap(), &g).unwrap();
        assert_eq!(c.len(), 8);
        assert!(parse_grid("lr").is_err());
        assert!(parse_grid("lr=x").is_err());
        assert!(expand_grid(&RatingAlgo::default_for("baseline").unwrap(), &g).is_err());
        assert!(grid_applies(&RatingAlgo::default_for("svdpp").unwrap(), &g));
    }

    #[test]
    fn prep_rows_are_sorted_transposes_with_positions() {
        let d = RatingData::new(
            4,
            5,
            vec![3, 0, 2, 0, 3, 1, 0],
            vec![1, 4, 1, 0, 0, 2, 2],
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 1.5, 2.5],
        )
        .unwrap();
        let p = Prep::new(&d);
        assert_eq!(p.by_user.row(0), (&[0, 2, 4][..], &[4.0, 2.5, 2.0][..]));
        assert_eq!(p.by_user.row(3), (&[0, 1][..], &[5.0, 1.0][..]));
        assert_eq!(p.by_item.row(1), (&[2, 3][..], &[3.0, 1.0][..]));
        assert_eq!(p.by_item.row(3), (&[][..], &[][..]));
        for i in 0..5 {
            let (s, e) = (p.by_item.indptr[i], p.by_item.indptr[i + 1]);
            for t in s..e {
                let pos = p.item_pos[t] as usize;
                assert_eq!(p.by_user.idx[pos] as usize, i);
                assert_eq!(p.by_user.val[pos], p.by_item.val[t]);
            }
        }
        // The ALS baseline on rows equals the one of the public API.
        let b = Baseline::fit(&d, &BaselineParams::default());
        assert_eq!(*p.baseline(&BaselineParams::default()), b);
    }

    #[test]
    fn ridge_recovers_linear_blend() {
        let a: Vec<f32> = (0..200).map(|t| (t % 7) as f32).collect();
        let b: Vec<f32> = (0..200).map(|t| (t % 11) as f32).collect();
        let y: Vec<f32> = a
            .iter()
            .zip(&b)
            .map(|(x, z)| 1.0 + 0.3 * x + 0.6 * z)
            .collect();
        let su: Vec<f32> = (0..200).map(|t| support(t % 5)).collect();
        let si: Vec<f32> = (0..200).map(|t| support(t % 13)).collect();
        let rows = BlendRows {
            preds: vec![a, b],
            su,
            si,
        };
        let w = rows.ridge(&y, None, 0.0);
        for t in [0, 17, 123] {
            assert!((rows.value(&w, t) - y[t] as f64).abs() < 1e-4, "{w:?}");
        }
    }
}
