//! Recommenders: "what should we offer this customer next?".
//!
//! This module owns the top-N side (the rating-prediction models live in
//! [`rating`]). Data comes in as [`data::Interactions`] (compact CSR/CSC with
//! `u32` ids and an [`data::IdMap`]); a configuration [`AlgoParams`] is fitted
//! into a [`Recommender`], which scores every item for a training user or for
//! any history (fold-in: a customer unseen at training time is scored from
//! their current interactions without retraining), answers top-N with filters
//! ([`topn`]), falls back to popularity — and says so — for an empty history,
//! and explains each recommendation by the customer's own items that
//! contributed most.
//!
//! Algorithms: popularity, user-kNN and item-kNN (cosine), implicit ALS
//! ([`ials`]), EASE ([`ease`]) and a rank-normalized blend of EASE and iALS.
//! [`select`] holds the evaluation protocol (holdout splits, ranking metrics
//! per user, grid search on an inner validation split carved from the
//! training data only). Everything is deterministic for a seed.

pub mod data;
pub mod ease;
pub mod ials;
pub mod knn;
pub mod popularity;
pub mod rating;
pub mod select;
pub mod synth;
pub mod topn;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use data::{Csr, Interactions};
use ease::Ease;
use ials::{Ials, IalsParams};
use knn::{ItemKnn, UserKnn};
use popularity::Popularity;
use topn::{Scored, TopNFilter, top_n};

/// The algorithm names accepted by [`AlgoParams::default_for`].
pub const ALGORITHMS: &[&str] = &[
    "popularity",
    "item-knn",
    "user-knn",
    "ials",
    "ease",
    "blend",
];

/// An algorithm with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algo", rename_all = "kebab-case")]
pub enum AlgoParams {
    /// Most popular items.
    Popularity,
    /// Item-based kNN, cosine.
    ItemKnn {
        /// Neighbours kept per item.
        k: usize,
        /// Cosine shrinkage.
        shrink: f32,
    },
    /// User-based kNN, cosine.
    UserKnn {
        /// Neighbour customers.
        k: usize,
        /// Cosine shrinkage.
        shrink: f32,
    },
    /// Implicit ALS.
    Ials(IalsParams),
    /// EASE.
    Ease {
        /// L2 regularization λ.
        lambda: f64,
        /// Dropout emphasis `d` in [0,1): adds `d/(1−d)·G_jj` to item j's λ.
        dropout: f64,
        /// Largest number of (most popular) items in the dense model.
        max_items: usize,
    },
    /// `weight · rank-normalized EASE + (1 − weight) · rank-normalized iALS`.
    Blend {
        /// EASE λ.
        lambda: f64,
        /// EASE dropout emphasis.
        dropout: f64,
        /// Weight of EASE in [0, 1].
        weight: f32,
        /// iALS parameters.
        ials: IalsParams,
        /// Largest number of items in the dense EASE part.
        max_items: usize,
    },
}

/// Default cap on EASE's dense item count (a 20 000² f64 inverse is 3.2 GB).
pub const EASE_MAX_ITEMS: usize = 20_000;

impl AlgoParams {
    /// Default parameters for an algorithm name (see [`ALGORITHMS`]).
    pub fn default_for(name: &str) -> Result<Self, ModelError> {
        Ok(match name {
            "popularity" | "pop" => AlgoParams::Popularity,
            "item-knn" | "itemknn" | "item_knn" => AlgoParams::ItemKnn {
                k: 100,
                shrink: 10.0,
            },
            "user-knn" | "userknn" | "user_knn" => AlgoParams::UserKnn {
                k: 50,
                shrink: 10.0,
            },
            "ials" | "als" => AlgoParams::Ials(IalsParams::default()),
            "ease" => AlgoParams::Ease {
                lambda: 500.0,
                dropout: 0.0,
                max_items: EASE_MAX_ITEMS,
            },
            "blend" => AlgoParams::Blend {
                lambda: 500.0,
                dropout: 0.0,
                weight: 0.7,
                ials: IalsParams::default(),
                max_items: EASE_MAX_ITEMS,
            },
            other => {
                return Err(ModelError::InvalidParameter {
                    name: "algo".into(),
                    reason: format!(
                        "unknown algorithm {other:?}; expected one of {}",
                        ALGORITHMS.join(", ")
                    ),
                });
            }
        })
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        match self {
            AlgoParams::Popularity => "popularity",
            AlgoParams::ItemKnn { .. } => "item-knn",
            AlgoParams::UserKnn { .. } => "user-knn",
            AlgoParams::Ials(_) => "ials",
            AlgoParams::Ease { .. } => "ease",
            AlgoParams::Blend { .. } => "blend",
        }
    }

    /// Sets one hyper-parameter by name (`k`, `shrink`, `factors`, `reg`,
    /// `alpha`, `iterations`, `cg_steps`, `seed`, `lambda`, `dropout`,
    /// `weight`, `max_items`).
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), ModelError> {
        let bad = |reason: &str| ModelError::InvalidParameter {
            name: key.to_owned(),
            reason: reason.to_owned(),
        };
        let as_count = |v: f64| -> Result<usize, ModelError> {
            if v >= 1.0 && v.fract() == 0.0 && v < 1e9 {
                Ok(v as usize)
            } else {
                Err(bad("must be a whole number >= 1"))
            }
        };
        if !value.is_finite() {
            return Err(bad("must be finite"));
        }
        let set_ials = |p: &mut IalsParams| -> Result<bool, ModelError> {
            match key {
                "factors" => p.factors = as_count(value)?,
                "reg" => p.reg = value as f32,
                "alpha" => p.alpha = value as f32,
                "iterations" => p.iterations = as_count(value)?,
                "cg_steps" => p.cg_steps = as_count(value)?,
                "seed" => p.seed = value.max(0.0) as u64,
                _ => return Ok(false),
            }
            Ok(true)
        };
        let known = match self {
            AlgoParams::Popularity => false,
            AlgoParams::ItemKnn { k, shrink } | AlgoParams::UserKnn { k, shrink } => match key {
                "k" => {
                    *k = as_count(value)?;
                    true
                }
                "shrink" => {
                    *shrink = value as f32;
                    true
                }
                _ => false,
            },
            AlgoParams::Ials(p) => set_ials(p)?,
            AlgoParams::Ease {
                lambda,
                dropout,
                max_items,
            } => match key {
                "lambda" => {
                    *lambda = value;
                    true
                }
                "dropout" => {
                    *dropout = value;
                    true
                }
                "max_items" => {
                    *max_items = as_count(value)?;
                    true
                }
                _ => false,
            },
            AlgoParams::Blend {
                lambda,
                dropout,
                weight,
                ials,
                max_items,
            } => match key {
                "lambda" => {
                    *lambda = value;
                    true
                }
                "dropout" => {
                    *dropout = value;
                    true
                }
                "weight" => {
                    *weight = value as f32;
                    true
                }
                "max_items" => {
                    *max_items = as_count(value)?;
                    true
                }
                _ => set_ials(ials)?,
            },
        };
        if known {
            Ok(())
        } else {
            Err(bad(&format!("not a parameter of {}", self.name())))
        }
    }

    /// Sets the seed of the randomized algorithms (no-op for the others).
    pub fn with_seed(mut self, seed: u64) -> Self {
        match &mut self {
            AlgoParams::Ials(p) => p.seed = seed,
            AlgoParams::Blend { ials, .. } => ials.seed = seed,
            _ => {}
        }
        self
    }
}

/// The fitted state of one algorithm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fitted {
    /// Popularity only (in [`Recommender::popularity`]).
    Popularity,
    /// Item-kNN.
    ItemKnn(ItemKnn),
    /// User-kNN.
    UserKnn(UserKnn),
    /// iALS.
    Ials(Ials),
    /// EASE.
    Ease(Ease),
    /// EASE + iALS blend.
    Blend {
        /// EASE part.
        ease: Ease,
        /// iALS part.
        ials: Ials,
        /// EASE weight.
        weight: f32,
    },
}

/// A fitted recommender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommender {
    /// The configuration it was fitted with.
    pub params: AlgoParams,
    /// Catalogue size.
    pub n_items: usize,
    /// Number of training users (rows the model knows).
    pub n_users: usize,
    /// Popularity, for cold start.
    pub popularity: Popularity,
    /// The model.
    pub model: Fitted,
}

/// The answer of [`Recommender::recommend`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// Recommended items, best first.
    pub items: Vec<Scored>,
    /// True when the history was empty and popularity was used instead of the model.
    pub fallback: bool,
}

/// Writes `1 − rank/n` into `out` for the scores in `s` (rank 0 = best), so
/// models on different scales can be blended.
fn rank_normalize(s: &[f32], out: &mut [f32]) {
    let mut idx: Vec<u32> = (0..s.len() as u32).collect();
    idx.sort_unstable_by(|&a, &b| s[b as usize].total_cmp(&s[a as usize]).then(a.cmp(&b)));
    let n = s.len().max(1) as f32;
    for (r, &i) in idx.iter().enumerate() {
        out[i as usize] = 1.0 - r as f32 / n;
    }
}

impl Recommender {
    /// Fits on interactions.
    pub fn fit(params: &AlgoParams, data: &Interactions) -> Result<Self, ModelError> {
        Self::fit_matrices(params, &data.by_user, &data.by_item)
    }

    /// Fits on a user × item matrix and its transpose.
    pub fn fit_matrices(
        params: &AlgoParams,
        by_user: &Csr,
        by_item: &Csr,
    ) -> Result<Self, ModelError> {
        if by_user.n_cols == 0 {
            return Err(ModelError::InvalidInput("no items to recommend".into()));
        }
        let popularity = Popularity::fit(by_user);
        let model = match params {
            AlgoParams::Popularity => Fitted::Popularity,
            AlgoParams::ItemKnn { k, shrink } => {
                Fitted::ItemKnn(ItemKnn::fit(by_user, by_item, *k, *shrink))
            }
            AlgoParams::UserKnn { k, shrink } => {
                Fitted::UserKnn(UserKnn::fit(by_user, by_item, *k, *shrink))
            }
            AlgoParams::Ials(p) => Fitted::Ials(Ials::fit(by_user, by_item, *p)?),
            AlgoParams::Ease {
                lambda,
                dropout,
                max_items,
            } => Fitted::Ease(Ease::fit(by_user, by_item, *lambda, *dropout, *max_items)?),
            AlgoParams::Blend {
                lambda,
                dropout,
                weight,
                ials,
                max_items,
            } => {
                if !(0.0..=1.0).contains(weight) {
                    return Err(ModelError::InvalidParameter {
                        name: "weight".into(),
                        reason: "must be in [0, 1]".into(),
                    });
                }
                let (ease, ials) = rayon::join(
                    || Ease::fit(by_user, by_item, *lambda, *dropout, *max_items),
                    || Ials::fit(by_user, by_item, *ials),
                );
                Fitted::Blend {
                    ease: ease?,
                    ials: ials?,
                    weight: *weight,
                }
            }
        };
        Ok(Recommender {
            params: params.clone(),
            n_items: by_user.n_cols,
            n_users: by_user.n_rows,
            popularity,
            model,
        })
    }

    /// Scores every item. `user` is the training row when the customer was in
    /// the training data (used by iALS and user-kNN), `None` to fold in from
    /// `history` alone. Items in `history` are not removed here.
    pub fn scores(&self, user: Option<u32>, history: &[(u32, f32)], out: &mut [f32]) {
        let user = user.filter(|&u| (u as usize) < self.n_users);
        match &self.model {
            Fitted::Popularity => self.popularity.score(out),
            Fitted::ItemKnn(m) => m.score(history, out),
            Fitted::UserKnn(m) => m.score(user, history, out),
            Fitted::Ials(m) => m.score(user, history, out),
            Fitted::Ease(m) => m.score(history, out),
            Fitted::Blend { ease, ials, weight } => {
                let mut a = vec![0f32; out.len()];
                let mut b = vec![0f32; out.len()];
                ease.score(history, &mut a);
                ials.score(user, history, &mut b);
                rank_normalize(&a, out);
                rank_normalize(&b, &mut a);
                for (o, x) in out.iter_mut().zip(&a) {
                    *o = weight * *o + (1.0 - weight) * x;
                }
            }
        }
    }

    /// Top-`n` for one customer. An empty history gets popularity with `fallback = true`.
    pub fn recommend(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        n: usize,
        filter: &TopNFilter<'_>,
    ) -> Recommendation {
        let mut s = vec![0f32; self.n_items];
        let fallback = history.is_empty() && !matches!(self.model, Fitted::Popularity);
        if history.is_empty() {
            self.popularity.score(&mut s);
        } else {
            self.scores(user, history, &mut s);
        }
        let seen: Vec<u32> = history.iter().map(|&(i, _)| i).collect();
        Recommendation {
            items: top_n(&s, &seen, n, filter),
            fallback,
        }
    }

    /// Top-`n` item lists for every row of `by_user` (the training users, in
    /// order), in parallel; seen items are excluded unless `include_seen`.
    pub fn recommend_all(&self, by_user: &Csr, n: usize, include_seen: bool) -> Vec<Vec<u32>> {
        let filter = TopNFilter {
            include_seen,
            ..Default::default()
        };
        (0..by_user.n_rows)
            .into_par_iter()
            .map_init(
                || vec![0f32; self.n_items],
                |s, u| {
                    let hist: Vec<(u32, f32)> = by_user.row(u).collect();
                    if hist.is_empty() {
                        self.popularity.score(s);
                    } else {
                        self.scores(Some(u as u32), &hist, s);
                    }
                    top_n(s, by_user.row_indices(u), n, &filter)
                        .into_iter()
                        .map(|x| x.item)
                        .collect()
                },
            )
            .collect()
    }

    /// The customer's own items that contributed most to `item`'s score,
    /// largest contribution first (at most `top`; only positive contributions).
    pub fn explain(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        item: u32,
        top: usize,
    ) -> Vec<(u32, f32)> {
        let _ = user;
        let mut c = match &self.model {
            Fitted::Popularity => Vec::new(),
            Fitted::ItemKnn(m) => m.contributions(history, item),
            Fitted::UserKnn(m) => m.contributions(history, item, user),
            Fitted::Ials(m) => m.contributions(history, item),
            Fitted::Ease(m) => m.contributions(history, item),
            Fitted::Blend { ease, ials, weight } => {
                // Each part's contributions as shares of that part's score.
                let share = |v: Vec<(u32, f32)>| {
                    let tot: f32 = v.iter().map(|x| x.1.max(0.0)).sum::<f32>().max(1e-12);
                    v.into_iter().map(move |(i, x)| (i, x / tot))
                };
                let mut acc: std::collections::BTreeMap<u32, f32> = Default::default();
                for (i, x) in share(ease.contributions(history, item)) {
                    *acc.entry(i).or_default() += weight * x;
                }
                for (i, x) in share(ials.contributions(history, item)) {
                    *acc.entry(i).or_default() += (1.0 - weight) * x;
                }
                acc.into_iter().collect()
            }
        };
        c.retain(|x| x.1 > 0.0 && x.1.is_finite());
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        c.truncate(top);
        c
    }
}
