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
//! Algorithms: popularity, user-kNN and item-kNN (cosine), sequence-kNN
//! (item similarity from time adjacency, when interactions have times),
//! implicit ALS ([`ials`]; its confidence from the interaction weights or,
//! for explicit feedback, from each rating), EASE ([`ease`]), session-aware
//! EASE (EASE whose Gram matrix also counts co-occurrence within each visit,
//! when interactions have times), session-aware item-kNN (the sparse
//! counterpart), GF-CF ([`gfcf`]), a rank-normalized blend of EASE and iALS,
//! and weighted ensembles of any of them (per-user standardized scores).
//! [`select`] holds the evaluation protocol (holdout splits, ranking
//! metrics per user, grid search and the `auto` search on an inner
//! validation split carved from the training data only). [`FitContext`]
//! carries the optional side data ([`SideInfo`]: the [`data::Timeline`] of
//! interactions and their explicit ratings) and caches what several
//! configurations share (EASE's Gram matrix, the within-session Gram matrix
//! per session gap, the rating-scaled matrices of rating-confidence iALS).
//! Everything is deterministic for a seed.

pub mod data;
pub mod ease;
pub mod gfcf;
pub mod ials;
pub mod knn;
pub mod popularity;
pub mod rating;
pub mod select;
pub mod synth;
pub mod topn;

use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::dense::DenseBuf;
use data::{Csr, Interactions, Timeline};
use ease::{Ease, EaseGram};
use gfcf::GfCf;
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
    "seq-knn",
    "ease",
    "session-ease",
    "session-knn",
    "gf-cf",
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
    /// Item-kNN on time-adjacency similarities (needs interaction times).
    SeqKnn {
        /// Items at most this many positions apart in a user's sequence co-occur.
        window: usize,
        /// Neighbours kept per item.
        k: usize,
        /// Shrinkage of the normalized co-occurrence.
        shrink: f32,
    },
    /// Session-aware item-kNN (needs interaction times): cosine similarities
    /// on `XᵀX + session_weight · SᵀS`, with the sessions of
    /// [`AlgoParams::SessionEase`]. Sparse, so it serves catalogues larger
    /// than EASE's dense cap.
    SessionKnn {
        /// Neighbours kept per item.
        k: usize,
        /// Cosine shrinkage.
        shrink: f32,
        /// Weight of the within-session co-occurrence `SᵀS`.
        session_weight: f64,
        /// Largest gap (seconds) between two interactions of one session;
        /// 0 = only equal times.
        session_gap: i64,
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
    /// Session-aware EASE (needs interaction times): EASE on
    /// `XᵀX + session_weight · SᵀS`, where `S` is sessions × items — each
    /// customer's interactions cut into visits wherever the time between two
    /// consecutive ones exceeds `session_gap` seconds. Co-occurrence within one
    /// visit (a basket, a page of ratings) is stronger evidence than anywhere
    /// in the same history. Scores and explanations are EASE's (`x_u B`).
    SessionEase {
        /// L2 regularization λ.
        lambda: f64,
        /// Dropout emphasis `d` in [0,1) (as in EASE).
        dropout: f64,
        /// Weight of the within-session co-occurrence `SᵀS`.
        session_weight: f64,
        /// Largest gap (seconds) between two interactions of one session;
        /// 0 = only equal times.
        session_gap: i64,
        /// Time scale `τ` (seconds) of a soft visit: two interactions of one
        /// session `Δt` apart co-occur with weight `exp(−Δt/τ)` instead of 1.
        /// 0 = no decay (every pair of a session counts 1, `SᵀS`). Models
        /// saved before this parameter existed read as 0.
        #[serde(default)]
        session_decay: f64,
        /// Largest number of (most popular) items in the dense model.
        max_items: usize,
    },
    /// GF-CF graph filter: normalized item–item linear filter plus `alpha` ·
    /// ideal low-pass filter from the top-`k` singular vectors ([`gfcf`]).
    GfCf {
        /// Singular vectors in the low-pass filter.
        k: usize,
        /// Weight of the low-pass filter (0 = linear filter only).
        alpha: f64,
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
    /// `Σ weight_p · z_p`, where `z_p` is part `p`'s scores standardized per
    /// customer (mean 0, standard deviation 1 over the items not in the history).
    Ensemble {
        /// The parts.
        parts: Vec<AlgoParams>,
        /// One non-negative weight per part.
        weights: Vec<f32>,
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
            "seq-knn" | "seqknn" | "seq_knn" => AlgoParams::SeqKnn {
                window: 3,
                k: 200,
                shrink: 1.0,
            },
            "ials" | "als" => AlgoParams::Ials(IalsParams::default()),
            "ease" => AlgoParams::Ease {
                lambda: 500.0,
                dropout: 0.0,
                max_items: EASE_MAX_ITEMS,
            },
            "session-ease" | "session_ease" | "sessionease" => AlgoParams::SessionEase {
                lambda: 500.0,
                dropout: 0.0,
                session_weight: 3.0,
                session_gap: 60,
                session_decay: 0.0,
                max_items: EASE_MAX_ITEMS,
            },
            "session-knn" | "session_knn" | "sessionknn" => AlgoParams::SessionKnn {
                k: 100,
                shrink: 10.0,
                session_weight: 3.0,
                session_gap: 0,
            },
            "gf-cf" | "gfcf" | "gf_cf" => AlgoParams::GfCf {
                k: 32,
                alpha: 0.3,
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

    /// Whether fitting reads explicit ratings (rating-confidence iALS,
    /// alone, in the blend or in an ensemble).
    pub fn uses_ratings(&self) -> bool {
        match self {
            AlgoParams::Ials(p) | AlgoParams::Blend { ials: p, .. } => p.rating_confidence,
            AlgoParams::Ensemble { parts, .. } => parts.iter().any(AlgoParams::uses_ratings),
            _ => false,
        }
    }

    /// The algorithm's name.
    pub fn name(&self) -> &'static str {
        match self {
            AlgoParams::Popularity => "popularity",
            AlgoParams::ItemKnn { .. } => "item-knn",
            AlgoParams::UserKnn { .. } => "user-knn",
            AlgoParams::SeqKnn { .. } => "seq-knn",
            AlgoParams::Ials(_) => "ials",
            AlgoParams::Ease { .. } => "ease",
            AlgoParams::SessionEase { .. } => "session-ease",
            AlgoParams::SessionKnn { .. } => "session-knn",
            AlgoParams::GfCf { .. } => "gf-cf",
            AlgoParams::Blend { .. } => "blend",
            AlgoParams::Ensemble { .. } => "ensemble",
        }
    }

    /// Sets one hyper-parameter by name (`k`, `shrink`, `window`, `factors`,
    /// `reg`, `alpha`, `iterations`, `cg_steps`, `seed`, `lambda`, `dropout`,
    /// `weight`, `max_items`; GF-CF: `k`, `alpha`, `max_items`; session-EASE:
    /// `lambda`, `dropout`, `session_weight`, `session_gap`, `session_decay`, `max_items`;
    /// session-kNN: `k`, `shrink`, `session_weight`, `session_gap`). An
    /// ensemble has none of its own.
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
                "rating_confidence" => {
                    if value != 0.0 && value != 1.0 {
                        return Err(bad("must be 0 (off) or 1 (on)"));
                    }
                    p.rating_confidence = value == 1.0;
                }
                _ => return Ok(false),
            }
            Ok(true)
        };
        // EASE's own parameters (plain, session-aware, and in the blend).
        let set_ease = |lambda: &mut f64,
                        dropout: &mut f64,
                        max_items: &mut usize|
         -> Result<bool, ModelError> {
            match key {
                "lambda" => *lambda = value,
                "dropout" => *dropout = value,
                "max_items" => *max_items = as_count(value)?,
                _ => return Ok(false),
            }
            Ok(true)
        };
        // The neighbourhood models' parameters.
        let set_knn = |k: &mut usize, shrink: &mut f32| -> Result<bool, ModelError> {
            match key {
                "k" => *k = as_count(value)?,
                "shrink" => *shrink = value as f32,
                _ => return Ok(false),
            }
            Ok(true)
        };
        // How the session models cut histories into visits.
        let set_session = |weight: &mut f64, gap: &mut i64| -> Result<bool, ModelError> {
            match key {
                "session_weight" => {
                    if value < 0.0 {
                        return Err(bad("must be >= 0"));
                    }
                    *weight = value;
                }
                "session_gap" => {
                    if value < 0.0 || value.fract() != 0.0 || value > 1e15 {
                        return Err(bad("must be a whole number of seconds >= 0"));
                    }
                    *gap = value as i64;
                }
                _ => return Ok(false),
            }
            Ok(true)
        };
        let known = match self {
            AlgoParams::Popularity | AlgoParams::Ensemble { .. } => false,
            AlgoParams::SeqKnn { window, k, shrink } => match key {
                "window" => {
                    *window = as_count(value)?;
                    true
                }
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
            AlgoParams::ItemKnn { k, shrink } | AlgoParams::UserKnn { k, shrink } => {
                set_knn(k, shrink)?
            }
            AlgoParams::Ials(p) => set_ials(p)?,
            AlgoParams::GfCf {
                k,
                alpha,
                max_items,
            } => match key {
                "k" => {
                    *k = as_count(value)?;
                    true
                }
                "alpha" => {
                    *alpha = value;
                    true
                }
                "max_items" => {
                    *max_items = as_count(value)?;
                    true
                }
                _ => false,
            },
            AlgoParams::Ease {
                lambda,
                dropout,
                max_items,
            } => set_ease(lambda, dropout, max_items)?,
            AlgoParams::SessionEase {
                lambda,
                dropout,
                session_weight,
                session_gap,
                session_decay,
                max_items,
            } => {
                if key == "session_decay" {
                    check_session_decay(value)?;
                    *session_decay = value;
                    true
                } else {
                    set_session(session_weight, session_gap)?
                        || set_ease(lambda, dropout, max_items)?
                }
            }
            AlgoParams::SessionKnn {
                k,
                shrink,
                session_weight,
                session_gap,
            } => set_session(session_weight, session_gap)? || set_knn(k, shrink)?,
            AlgoParams::Blend {
                lambda,
                dropout,
                weight,
                ials,
                max_items,
            } => match key {
                "weight" => {
                    *weight = value as f32;
                    true
                }
                _ => set_ease(lambda, dropout, max_items)? || set_ials(ials)?,
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
            AlgoParams::Ensemble { parts, .. } => {
                for p in parts.iter_mut() {
                    *p = p.clone().with_seed(seed);
                }
            }
            _ => {}
        }
        self
    }
}

/// What is known about the interactions besides their weights, each
/// covering at least the cells a model is fitted on (a search fits on a
/// subset of the cells and looks them up).
#[derive(Debug, Clone, Copy, Default)]
pub struct SideInfo<'a> {
    /// When each interaction happened (sequence and session models).
    pub order: Option<&'a Timeline>,
    /// The explicit rating of each interaction, users × items (iALS with
    /// [`IalsParams::rating_confidence`]).
    pub ratings: Option<&'a Csr>,
}

impl SideInfo<'_> {
    /// Whether the ratings can say more than the interactions: all positive
    /// and finite (a confidence must be) and not all equal (then rating
    /// confidence is plain iALS).
    pub fn ratings_inform_confidence(&self) -> bool {
        self.ratings.is_some_and(|r| {
            r.values.iter().all(|v| v.is_finite() && *v > 0.0)
                && r.values.windows(2).any(|w| w[0] != w[1])
        })
    }
}

/// What fitting needs besides the parameters: the user × item matrix, its
/// transpose, optionally the [`Timeline`] of the interactions (sequence and
/// session models need it) and their explicit ratings (rating-confidence
/// iALS), and a cache of EASE Gram matrices (and of session Gram matrices per
/// gap, and of the rating-confidence matrices) so several configurations
/// fitted on the same data build each once.
#[derive(Debug)]
pub struct FitContext<'a> {
    /// Users × items.
    pub by_user: &'a Csr,
    /// Items × users.
    pub by_item: &'a Csr,
    /// When each interaction happened (may cover more cells than `by_user`;
    /// only `by_user`'s are read), if known.
    pub order: Option<&'a Timeline>,
    /// The explicit rating of each interaction (may cover more cells than
    /// `by_user`; only `by_user`'s are read), if known.
    pub ratings: Option<&'a Csr>,
    grams: Mutex<Vec<(usize, Arc<EaseGram>)>>,
    session_grams: Mutex<Vec<(SessionGramKey, Arc<DenseBuf>)>>,
    /// Rating-confidence iALS's (users × items, items × users), built once.
    rated: Mutex<Option<Arc<(Csr, Csr)>>>,
}

/// Refuses a negative session gap (a hand-built [`AlgoParams`]; `set` refuses
/// one already).
fn check_session_gap(gap: i64) -> Result<(), ModelError> {
    if gap < 0 {
        return Err(ModelError::InvalidParameter {
            name: "session_gap".into(),
            reason: "must be >= 0 seconds".into(),
        });
    }
    Ok(())
}

/// Refuses a session decay that is not a finite number of seconds >= 0
/// (from `set` or a hand-built [`AlgoParams`]).
fn check_session_decay(decay: f64) -> Result<(), ModelError> {
    if !(decay.is_finite() && decay >= 0.0) {
        return Err(ModelError::InvalidParameter {
            name: "session_decay".into(),
            reason: format!("must be a finite number of seconds >= 0, got {decay}"),
        });
    }
    Ok(())
}

/// A cell whose rating cannot be a confidence: missing (`rating: None`) or
/// not a positive finite number.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BadRating {
    /// User row.
    pub user: usize,
    /// Item column.
    pub item: u32,
    /// The rating found, if any.
    pub rating: Option<f32>,
}

/// The rating in `ratings` of each of `by_user`'s cells (in `by_user`'s
/// order), or the first cell whose rating is missing or not positive.
pub fn cell_ratings(by_user: &Csr, ratings: &Csr) -> Result<Vec<f32>, BadRating> {
    let mut values = Vec::with_capacity(by_user.nnz());
    for u in 0..by_user.n_rows {
        let (cols, vals) = if u < ratings.n_rows {
            (ratings.row_indices(u), ratings.row_values(u))
        } else {
            (&[][..], &[][..])
        };
        for &item in by_user.row_indices(u) {
            let rating = cols.binary_search(&item).ok().map(|p| vals[p]);
            match rating {
                Some(r) if r > 0.0 && r.is_finite() => values.push(r),
                _ => {
                    return Err(BadRating {
                        user: u,
                        item,
                        rating,
                    });
                }
            }
        }
    }
    Ok(values)
}

/// `by_user`'s cells valued by their rating in `ratings` over the mean of
/// those ratings. Errors name what is missing: no ratings at all, a cell
/// without one, or a rating that is not positive (a confidence must be).
fn rating_strengths(by_user: &Csr, ratings: Option<&Csr>) -> Result<Csr, ModelError> {
    let ratings = ratings.ok_or_else(|| {
        ModelError::InvalidInput(
            "rating confidence needs explicit ratings (a ratings file), and these interactions \
             have none"
                .into(),
        )
    })?;
    let values = cell_ratings(by_user, ratings).map_err(|b| {
        ModelError::InvalidInput(match b.rating {
            None => format!(
                "rating confidence: no rating for user row {}, item column {}",
                b.user, b.item
            ),
            Some(r) => format!(
                "rating confidence needs positive ratings; user row {}, item column {} has {r}",
                b.user, b.item
            ),
        })
    })?;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / values.len().max(1) as f64;
    let inv = (1.0 / mean) as f32;
    Ok(Csr {
        values: values.into_iter().map(|v| v * inv).collect(),
        ..by_user.clone()
    })
}

/// `(max_items, session gap, session decay's bits)`: what a within-session
/// Gram matrix depends on.
type SessionGramKey = (usize, i64, u64);

impl<'a> FitContext<'a> {
    /// A context without interaction order.
    pub fn new(by_user: &'a Csr, by_item: &'a Csr) -> Self {
        FitContext {
            by_user,
            by_item,
            order: None,
            ratings: None,
            grams: Mutex::new(Vec::new()),
            session_grams: Mutex::new(Vec::new()),
            rated: Mutex::new(None),
        }
    }

    /// Adds the timeline of the interactions.
    pub fn with_order(mut self, order: Option<&'a Timeline>) -> Self {
        self.order = order;
        self
    }

    /// Adds the explicit ratings of the interactions (users × items).
    pub fn with_ratings(mut self, ratings: Option<&'a Csr>) -> Self {
        self.ratings = ratings;
        self
    }

    /// Adds everything `side` knows.
    pub fn with_side(self, side: SideInfo<'a>) -> Self {
        self.with_order(side.order).with_ratings(side.ratings)
    }

    /// Drops the cached EASE and session Gram matrices (items² each), which
    /// a later fit would build again. A search on several inner splits drops
    /// a split's once it has fitted its candidates there, so only one split's
    /// are held at a time (ml-100k, five splits: peak memory 592 → 505 MB).
    pub fn drop_grams(&self) {
        self.grams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        self.session_grams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The matrices iALS with `p` fits on: the interactions themselves, or —
    /// with [`IalsParams::rating_confidence`] — the same cells valued by
    /// their rating over the mean rating (built once).
    fn ials_input<T>(
        &self,
        p: &IalsParams,
        fit: impl FnOnce(&Csr, &Csr) -> Result<T, ModelError>,
    ) -> Result<T, ModelError> {
        if !p.rating_confidence {
            return fit(self.by_user, self.by_item);
        }
        let rated = {
            let mut cache = self
                .rated
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &*cache {
                Some(r) => Arc::clone(r),
                None => {
                    let by_user = rating_strengths(self.by_user, self.ratings)?;
                    let by_item = by_user.transpose();
                    let r = Arc::new((by_user, by_item));
                    *cache = Some(Arc::clone(&r));
                    r
                }
            }
        };
        fit(&rated.0, &rated.1)
    }

    /// The timeline, or the error saying `algo` needs interaction times.
    fn timeline(&self, algo: &str) -> Result<&'a Timeline, ModelError> {
        self.order.ok_or_else(|| {
            ModelError::InvalidInput(format!(
                "{algo} needs the time of each interaction (no timestamps given)"
            ))
        })
    }

    /// The within-session Gram matrix over EASE's items for sessions cut at
    /// `gap` seconds, each pair weighted by `exp(−Δt/decay)` (`decay` = 0:
    /// `SᵀS`), built once per `(max_items, gap, decay)`.
    fn session_gram(
        &self,
        max_items: usize,
        gap: i64,
        decay: f64,
    ) -> Result<Arc<DenseBuf>, ModelError> {
        let timeline = self.timeline("session-ease")?;
        let key = (max_items, gap, decay.to_bits());
        // Held while building, as in `gram`: parts fitted in parallel wait
        // for one build instead of each making its own.
        let mut cache = self
            .session_grams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, g)) = cache.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(g));
        }
        let visits = timeline.visits(self.by_user, gap)?;
        let g =
            Arc::new(
                self.gram(max_items)
                    .in_visits(self.by_user, self.by_item, &visits, decay),
            );
        cache.push((key, Arc::clone(&g)));
        Ok(g)
    }

    /// EASE's Gram matrix over at most `max_items` items (built once per cap).
    pub fn gram(&self, max_items: usize) -> Arc<EaseGram> {
        let mut cache = self
            .grams
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, g)) = cache.iter().find(|(m, _)| *m == max_items) {
            return Arc::clone(g);
        }
        let g = Arc::new(EaseGram::new(self.by_user, self.by_item, max_items));
        cache.push((max_items, Arc::clone(&g)));
        g
    }

    fn fit(&self, params: &AlgoParams) -> Result<Fitted, ModelError> {
        let (by_user, by_item) = (self.by_user, self.by_item);
        Ok(match params {
            AlgoParams::Popularity => Fitted::Popularity,
            AlgoParams::ItemKnn { k, shrink } => {
                Fitted::ItemKnn(ItemKnn::fit(by_user, by_item, *k, *shrink))
            }
            AlgoParams::SeqKnn { window, k, shrink } => {
                let timeline = self.timeline("seq-knn")?;
                Fitted::ItemKnn(ItemKnn::fit_sequential(
                    by_user,
                    &timeline.order,
                    *window,
                    *k,
                    *shrink,
                )?)
            }
            AlgoParams::UserKnn { k, shrink } => {
                Fitted::UserKnn(UserKnn::fit(by_user, by_item, *k, *shrink))
            }
            AlgoParams::Ials(p) => Fitted::Ials(self.ials_input(p, |u, i| Ials::fit(u, i, *p))?),
            AlgoParams::Ease {
                lambda,
                dropout,
                max_items,
            } => Fitted::Ease(Ease::from_gram(&self.gram(*max_items), *lambda, *dropout)?),
            AlgoParams::SessionKnn {
                k,
                shrink,
                session_weight,
                session_gap,
            } => {
                check_session_gap(*session_gap)?;
                let sessions = self
                    .timeline("session-knn")?
                    .sessions(by_user, *session_gap)?;
                Fitted::ItemKnn(ItemKnn::fit_with_sessions(
                    by_user,
                    by_item,
                    &sessions,
                    *session_weight as f32,
                    *k,
                    *shrink,
                )?)
            }
            AlgoParams::SessionEase {
                lambda,
                dropout,
                session_weight,
                session_gap,
                session_decay,
                max_items,
            } => {
                check_session_gap(*session_gap)?;
                check_session_decay(*session_decay)?;
                let sg = self.session_gram(*max_items, *session_gap, *session_decay)?;
                Fitted::Ease(Ease::from_grams(
                    &self.gram(*max_items),
                    Some((&sg, *session_weight as f32)),
                    *lambda,
                    *dropout,
                )?)
            }
            AlgoParams::GfCf {
                k,
                alpha,
                max_items,
            } => Fitted::GfCf(GfCf::fit(by_user, by_item, *k, *alpha, *max_items)?),
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
                    || Ease::from_gram(&self.gram(*max_items), *lambda, *dropout),
                    || self.ials_input(ials, |u, i| Ials::fit(u, i, *ials)),
                );
                Fitted::Blend {
                    ease: ease?,
                    ials: ials?,
                    weight: *weight,
                }
            }
            AlgoParams::Ensemble { parts, weights } => {
                check_ensemble(parts.len(), weights)?;
                let parts = parts
                    .par_iter()
                    .map(|p| self.fit(p))
                    .collect::<Result<Vec<_>, _>>()?;
                Fitted::Ensemble {
                    parts,
                    weights: weights.clone(),
                }
            }
        })
    }
}

fn check_ensemble(n: usize, weights: &[f32]) -> Result<(), ModelError> {
    if n == 0 || weights.len() != n {
        return Err(ModelError::InvalidParameter {
            name: "weights".into(),
            reason: format!(
                "an ensemble needs one weight per part ({n} parts, {} weights)",
                weights.len()
            ),
        });
    }
    if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) || weights.iter().sum::<f32>() <= 0.0 {
        return Err(ModelError::InvalidParameter {
            name: "weights".into(),
            reason: "must be finite, >= 0, and not all 0".into(),
        });
    }
    Ok(())
}

/// The fitted state of one algorithm.
///
/// Serialized internally tagged (`{"kind": "ials", …fields}`); read back by
/// the hand-written [`Deserialize`] below, which streams (see there).
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// GF-CF.
    GfCf(GfCf),
    /// EASE + iALS blend.
    Blend {
        /// EASE part.
        ease: Ease,
        /// iALS part.
        ials: Ials,
        /// EASE weight.
        weight: f32,
    },
    /// Weighted ensemble of standardized scores.
    Ensemble {
        /// The fitted parts.
        parts: Vec<Fitted>,
        /// One weight per part.
        weights: Vec<f32>,
    },
}

/// Reads the `kind` tag first, then the variant's own fields from the rest of
/// the same map, without buffering.
///
/// Why not the derive: serde's derived deserializer for an internally tagged
/// enum first copies the whole value into an intermediate tree (it cannot know
/// where the tag is). For a model of 68k products that took 0.5 s and 0.5 GB
/// on every `recommend`. The serializer writes `kind` first, so reading it first
/// is always possible for what infogap saved; the format is unchanged.
impl<'de> Deserialize<'de> for Fitted {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FittedVisitor;
        #[derive(Deserialize)]
        struct BlendFields {
            ease: Ease,
            ials: Ials,
            weight: f32,
        }
        #[derive(Deserialize)]
        struct EnsembleFields {
            parts: Vec<Fitted>,
            weights: Vec<f32>,
        }
        impl<'de> serde::de::Visitor<'de> for FittedVisitor {
            type Value = Fitted;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a fitted recommender: a map whose first key is `kind`")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fitted, A::Error> {
                use serde::de::Error;
                match map.next_key::<String>()?.as_deref() {
                    Some("kind") => {}
                    _ => {
                        return Err(A::Error::custom(
                            "the first key of a fitted model must be `kind`",
                        ));
                    }
                }
                let kind: String = map.next_value()?;
                let rest = serde::de::value::MapAccessDeserializer::new(map);
                Ok(match kind.as_str() {
                    "popularity" => {
                        // No fields of its own; anything else is skipped.
                        let _: serde::de::IgnoredAny = Deserialize::deserialize(rest)?;
                        Fitted::Popularity
                    }
                    "item-knn" => Fitted::ItemKnn(ItemKnn::deserialize(rest)?),
                    "user-knn" => Fitted::UserKnn(UserKnn::deserialize(rest)?),
                    "ials" => Fitted::Ials(Ials::deserialize(rest)?),
                    "ease" => Fitted::Ease(Ease::deserialize(rest)?),
                    "gf-cf" => Fitted::GfCf(GfCf::deserialize(rest)?),
                    "blend" => {
                        let b = BlendFields::deserialize(rest)?;
                        Fitted::Blend {
                            ease: b.ease,
                            ials: b.ials,
                            weight: b.weight,
                        }
                    }
                    "ensemble" => {
                        let e = EnsembleFields::deserialize(rest)?;
                        Fitted::Ensemble {
                            parts: e.parts,
                            weights: e.weights,
                        }
                    }
                    other => return Err(A::Error::custom(format!("unknown model kind `{other}`"))),
                })
            }
        }
        d.deserialize_map(FittedVisitor)
    }
}

/// One customer to score in a batch: the training row (`None` to fold in
/// from the history alone) and the history.
pub type ScoreRow<'a> = (Option<u32>, &'a [(u32, f32)]);

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

/// Standardizes `s` in place over the items not in `history`: mean 0,
/// standard deviation 1 (a constant vector becomes 0).
fn standardize(s: &mut [f32], history: &[(u32, f32)]) {
    let (mut n, mut sum, mut sq) = (s.len() as f64, 0f64, 0f64);
    for &v in s.iter() {
        sum += f64::from(v);
        sq += f64::from(v) * f64::from(v);
    }
    for &(i, _) in history {
        if let Some(&v) = s.get(i as usize) {
            n -= 1.0;
            sum -= f64::from(v);
            sq -= f64::from(v) * f64::from(v);
        }
    }
    let n = n.max(1.0);
    let mean = sum / n;
    let sd = (sq / n - mean * mean).max(0.0).sqrt();
    let inv = if sd > 1e-12 { 1.0 / sd } else { 0.0 };
    for v in s.iter_mut() {
        *v = ((f64::from(*v) - mean) * inv) as f32;
    }
}

impl Fitted {
    /// What an ensemble adds up of this model for training rows `users` of
    /// `by_user`: each row's scores standardized over the items outside its
    /// history, row-major into `out` (`users.len()` rows of `by_user.n_cols`),
    /// in batches of 16 rows as [`Recommender::recommend_all`] scores them.
    /// Rows below `n_users` are scored as training rows. Model selection
    /// computes these once per model to try several ensemble weights; the
    /// values are those [`Fitted::Ensemble`] blends.
    pub fn standardized_scores(
        &self,
        popularity: &Popularity,
        n_users: usize,
        by_user: &Csr,
        users: std::ops::Range<usize>,
        out: &mut [f32],
    ) {
        let n = by_user.n_cols.max(1);
        out.par_chunks_mut(16 * n)
            .enumerate()
            .for_each(|(b, block)| {
                let u0 = users.start + 16 * b;
                let u1 = (u0 + block.len() / n).min(users.end);
                let hists: Vec<Vec<(u32, f32)>> =
                    (u0..u1).map(|u| by_user.row(u).collect()).collect();
                let rows: Vec<ScoreRow<'_>> = (u0..u1)
                    .zip(&hists)
                    .map(|(u, h)| {
                        let user = Some(u as u32).filter(|&u| (u as usize) < n_users);
                        (user, h.as_slice())
                    })
                    .collect();
                self.score_batch(popularity, &rows, block);
                for (row, h) in block.chunks_mut(n).zip(&hists) {
                    standardize(row, h);
                }
            });
    }

    /// Scores every item (see [`Recommender::scores`]); `popularity` serves the popularity model.
    pub fn score(
        &self,
        popularity: &Popularity,
        user: Option<u32>,
        history: &[(u32, f32)],
        out: &mut [f32],
    ) {
        match self {
            Fitted::Popularity => popularity.score(out),
            Fitted::ItemKnn(m) => m.score(history, out),
            Fitted::UserKnn(m) => m.score(user, history, out),
            Fitted::Ials(m) => m.score(user, history, out),
            Fitted::Ease(m) => m.score(history, out),
            Fitted::GfCf(m) => m.score(history, out),
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
            Fitted::Ensemble { .. } => self.score_batch(popularity, &[(user, history)], out),
        }
    }

    /// [`Fitted::score`] for several customers: row `r` of `out` (rows of
    /// `out.len() / rows.len()` items) gets the scores of `rows[r]` (training
    /// row or `None`, history), the same values as scoring them one by one.
    /// Factor models read their item factors once per batch instead of once
    /// per customer; the others score row by row.
    pub fn score_batch(&self, popularity: &Popularity, rows: &[ScoreRow<'_>], out: &mut [f32]) {
        let n = out.len() / rows.len().max(1);
        match self {
            Fitted::Ials(m) => m.score_batch(rows, out),
            Fitted::Ensemble { parts, weights } => {
                out.fill(0.0);
                let mut a = vec![0f32; out.len()];
                for (p, &w) in parts.iter().zip(weights) {
                    if w == 0.0 {
                        continue;
                    }
                    p.score_batch(popularity, rows, &mut a);
                    for ((o, a), &(_, history)) in out.chunks_mut(n).zip(a.chunks_mut(n)).zip(rows)
                    {
                        standardize(a, history);
                        for (o, x) in o.iter_mut().zip(a.iter()) {
                            *o += w * x;
                        }
                    }
                }
            }
            _ => {
                for (o, &(user, history)) in out.chunks_mut(n).zip(rows) {
                    self.score(popularity, user, history, o);
                }
            }
        }
    }

    /// Contribution of each history item to `item`'s score (unsorted, may hold non-positive values).
    pub fn contributions(
        &self,
        user: Option<u32>,
        history: &[(u32, f32)],
        item: u32,
    ) -> Vec<(u32, f32)> {
        // Each part's contributions as shares of that part's positive total.
        fn shares(v: Vec<(u32, f32)>) -> impl Iterator<Item = (u32, f32)> {
            let tot: f32 = v.iter().map(|x| x.1.max(0.0)).sum::<f32>().max(1e-12);
            v.into_iter().map(move |(i, x)| (i, x / tot))
        }
        match self {
            Fitted::Popularity => Vec::new(),
            Fitted::ItemKnn(m) => m.contributions(history, item),
            Fitted::UserKnn(m) => m.contributions(history, item, user),
            Fitted::Ials(m) => m.contributions(history, item),
            Fitted::Ease(m) => m.contributions(history, item),
            Fitted::GfCf(m) => m.contributions(history, item),
            Fitted::Blend { ease, ials, weight } => {
                let mut acc: std::collections::BTreeMap<u32, f32> = Default::default();
                for (i, x) in shares(ease.contributions(history, item)) {
                    *acc.entry(i).or_default() += weight * x;
                }
                for (i, x) in shares(ials.contributions(history, item)) {
                    *acc.entry(i).or_default() += (1.0 - weight) * x;
                }
                acc.into_iter().collect()
            }
            Fitted::Ensemble { parts, weights } => {
                let mut acc: std::collections::BTreeMap<u32, f32> = Default::default();
                for (p, &w) in parts.iter().zip(weights) {
                    for (i, x) in shares(p.contributions(user, history, item)) {
                        *acc.entry(i).or_default() += w * x;
                    }
                }
                acc.into_iter().collect()
            }
        }
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
        Self::fit_in(params, &FitContext::new(by_user, by_item))
    }

    /// Fits with a [`FitContext`] (interaction order, shared Gram matrices).
    pub fn fit_in(params: &AlgoParams, ctx: &FitContext<'_>) -> Result<Self, ModelError> {
        let by_user = ctx.by_user;
        if by_user.n_cols == 0 {
            return Err(ModelError::InvalidInput("no items to recommend".into()));
        }
        let popularity = Popularity::fit(by_user);
        let model = ctx.fit(params)?;
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
        self.model.score(&self.popularity, user, history, out);
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
    ///
    /// Customers are scored in batches (at most 16, and about 4 MB of scores)
    /// through [`Fitted::score_batch`]: the same scores as one by one, with
    /// the item factors read once per batch.
    pub fn recommend_all(&self, by_user: &Csr, n: usize, include_seen: bool) -> Vec<Vec<u32>> {
        let filter = TopNFilter {
            include_seen,
            ..Default::default()
        };
        let items = self.n_items.max(1);
        let batch = ((1usize << 20) / items).clamp(1, 16);
        let starts: Vec<usize> = (0..by_user.n_rows).step_by(batch).collect();
        let lists: Vec<Vec<Vec<u32>>> = starts
            .into_par_iter()
            .map_init(Vec::new, |s: &mut Vec<f32>, u0| {
                let u1 = (u0 + batch).min(by_user.n_rows);
                let hists: Vec<Vec<(u32, f32)>> =
                    (u0..u1).map(|u| by_user.row(u).collect()).collect();
                let rows: Vec<ScoreRow<'_>> = (u0..u1)
                    .zip(&hists)
                    .map(|(u, h)| {
                        let user = Some(u as u32).filter(|&u| (u as usize) < self.n_users);
                        (user, h.as_slice())
                    })
                    .collect();
                s.clear();
                s.resize(rows.len() * self.n_items, 0.0);
                self.model.score_batch(&self.popularity, &rows, s);
                (u0..u1)
                    .zip(s.chunks_mut(self.n_items.max(1)))
                    .zip(&hists)
                    .map(|((u, row), h)| {
                        if h.is_empty() {
                            self.popularity.score(row);
                        }
                        top_n(row, by_user.row_indices(u), n, &filter)
                            .into_iter()
                            .map(|x| x.item)
                            .collect()
                    })
                    .collect()
            })
            .collect();
        lists.into_iter().flatten().collect()
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
        let user = user.filter(|&u| (u as usize) < self.n_users);
        let mut c = self.model.contributions(user, history, item);
        c.retain(|x| x.1 > 0.0 && x.1.is_finite());
        c.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        c.truncate(top);
        c
    }

    /// Removes every per-user part the fitted model keeps for training row
    /// `row` (a person's erasure, GDPR Art. 17), without refitting: the row
    /// keeps existing (other users keep their rows) and the model stays usable
    /// for everyone else. Returns what was removed, one name per part (empty
    /// when the model keeps nothing per user or `row` is not a training row).
    ///
    /// - iALS (also inside a blend or an ensemble): the user's factor row is
    ///   zeroed. Nobody else's factors or scores change.
    /// - user-kNN: the user's stored interactions (their row, their column of
    ///   the transpose, their norm) are removed, so they are never anyone's
    ///   neighbour and their history never shapes others' recommendations.
    /// - Blend and ensemble: each part, as above.
    /// - Item-item models (item-kNN, seq-knn, session-knn, EASE, GF-CF) and
    ///   popularity hold only aggregates over all users (similarities, item
    ///   weights and filters, item counts): nothing of one user can be taken
    ///   out of them without refitting, and they are left as they are. The
    ///   iALS item factors are such aggregates too.
    pub fn forget_user(&mut self, row: usize) -> Vec<&'static str> {
        fn forget(m: &mut Fitted, row: usize, out: &mut Vec<&'static str>) {
            match m {
                Fitted::Ials(m) => {
                    if m.forget_user(row) {
                        out.push("ials user factors");
                    }
                }
                Fitted::UserKnn(m) => {
                    if m.forget_user(row) {
                        out.push("user-knn interactions");
                    }
                }
                Fitted::Blend { ials, .. } => {
                    if ials.forget_user(row) {
                        out.push("ials user factors");
                    }
                }
                Fitted::Ensemble { parts, .. } => {
                    for p in parts {
                        forget(p, row, out);
                    }
                }
                Fitted::Popularity | Fitted::ItemKnn(_) | Fitted::Ease(_) | Fitted::GfCf(_) => {}
            }
        }
        let mut out = Vec::new();
        if row < self.n_users {
            forget(&mut self.model, row, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recs::select::{evaluate, holdout};
    use crate::recs::synth::planted_taste;

    fn ease(lambda: f64) -> AlgoParams {
        AlgoParams::Ease {
            lambda,
            dropout: 0.0,
            max_items: EASE_MAX_ITEMS,
        }
    }

    #[test]
    fn rating_confidence_weighs_what_users_liked() {
        let p = planted_taste(300, 120, 4, 24, 0.5, 5);
        let (nu, ni) = (300, 120);
        let rated = p.rated(6);
        let all = Csr::from_triples(nu, ni, &rated, |_, b| b).expect("csr");
        let ones = all.map_values(|_| 1.0);
        let (train, test) = holdout(&ones, 0.25, 2).expect("holdout");
        let t = train.transpose();
        // The ratings cover the held-out cells too; only train's are read.
        let ctx = FitContext::new(&train, &t).with_ratings(Some(&all));
        let ials = |rating_confidence: bool| {
            AlgoParams::Ials(IalsParams {
                factors: 8,
                reg: 1.0,
                alpha: 5.0,
                iterations: 10,
                rating_confidence,
                ..IalsParams::default()
            })
        };
        let recall = |params: &AlgoParams| {
            let m = Recommender::fit_in(params, &ctx).expect("fit");
            evaluate(&m, &train, &test, 10).1.recall
        };
        let (plain, rated_conf) = (recall(&ials(false)), recall(&ials(true)));
        assert!(
            rated_conf > plain + 0.03,
            "rating confidence {rated_conf:.3} vs plain {plain:.3}"
        );
        // Equal ratings are plain iALS exactly (r / mean = 1).
        let same = all.map_values(|_| 4.0);
        let ctx_same = FitContext::new(&train, &t).with_ratings(Some(&same));
        let a = Recommender::fit_in(&ials(true), &ctx_same).expect("fit");
        let b = Recommender::fit_in(&ials(false), &ctx).expect("fit");
        let (Fitted::Ials(a), Fitted::Ials(b)) = (a.model, b.model) else {
            panic!("not iALS");
        };
        assert!(
            a.user_factors == b.user_factors && a.item_factors == b.item_factors,
            "equal ratings"
        );
        assert!(
            !SideInfo {
                order: None,
                ratings: Some(&same)
            }
            .ratings_inform_confidence()
        );
        assert!(
            SideInfo {
                order: None,
                ratings: Some(&all)
            }
            .ratings_inform_confidence()
        );
        // Without ratings, with a missing or a non-positive one: clear errors.
        let bare = FitContext::new(&train, &t);
        let err = Recommender::fit_in(&ials(true), &bare).expect_err("no ratings");
        assert!(err.to_string().contains("needs explicit ratings"), "{err}");
        let partial = all.retain_rows(|u| u != 7);
        let ctx_partial = FitContext::new(&train, &t).with_ratings(Some(&partial));
        let err = Recommender::fit_in(&ials(true), &ctx_partial).expect_err("missing");
        assert!(
            err.to_string().contains("no rating for user row 7"),
            "{err}"
        );
        let zeroes = all.map_values(|r| r - 1.0);
        let ctx_zero = FitContext::new(&train, &t).with_ratings(Some(&zeroes));
        let err = Recommender::fit_in(&ials(true), &ctx_zero).expect_err("zero");
        assert!(err.to_string().contains("positive ratings"), "{err}");
        assert!(
            !SideInfo {
                order: None,
                ratings: Some(&zeroes)
            }
            .ratings_inform_confidence()
        );
        // The switch is 0 or 1.
        let mut q = ials(false);
        q.set("rating_confidence", 1.0).expect("on");
        assert_eq!(q, ials(true));
        assert!(q.set("rating_confidence", 0.5).is_err());
    }

    #[test]
    fn session_models_find_what_visits_share() {
        use crate::recs::synth::planted_sessions;
        let p = planted_sessions(400, 150, 60, 6, 5, 4, 11);
        let (nu, ni) = (400, 150);
        let timeline = Timeline::new(nu, ni, &p.events).expect("timeline");
        let triples: Vec<(u32, u32, f32)> = p.events.iter().map(|e| (e.0, e.1, 1.0)).collect();
        let all = Csr::from_triples(nu, ni, &triples, |_, b| b).expect("csr");
        let (train, test) = holdout(&all, 0.25, 3).expect("holdout");
        let t = train.transpose();
        // The timeline covers the held-out cells too; only train's are read.
        let ctx = FitContext::new(&train, &t).with_order(Some(&timeline));
        let recall = |params: &AlgoParams| {
            let m = Recommender::fit_in(params, &ctx).expect("fit");
            let (recs, rep) = evaluate(&m, &train, &test, 10);
            for (u, r) in recs.iter().enumerate() {
                for i in r {
                    assert!(
                        train.row_indices(u).binary_search(i).is_err(),
                        "a seen item"
                    );
                }
            }
            rep.recall
        };
        let pop = recall(&AlgoParams::Popularity);
        let bare = FitContext::new(&train, &t);
        // Each session model against its plain counterpart (the sparse one is
        // item-kNN on the same co-occurrences).
        // A session model from (session weight, session gap).
        type Session = fn(f64, i64) -> AlgoParams;
        let cases: [(&str, AlgoParams, Session); 2] = [
            ("session-ease", ease(10.0), |w, gap| {
                AlgoParams::SessionEase {
                    lambda: 10.0,
                    dropout: 0.0,
                    session_weight: w,
                    session_gap: gap,
                    session_decay: 0.0,
                    max_items: EASE_MAX_ITEMS,
                }
            }),
            (
                "session-knn",
                AlgoParams::ItemKnn { k: 50, shrink: 1.0 },
                |w, gap| AlgoParams::SessionKnn {
                    k: 50,
                    shrink: 1.0,
                    session_weight: w,
                    session_gap: gap,
                },
            ),
        ];
        for (name, plain_params, session) in cases {
            let (plain, with_sessions) = (recall(&plain_params), recall(&session(3.0, 60)));
            assert!(
                with_sessions > plain + 0.05 && plain > pop,
                "{name} {with_sessions} vs {} {plain} vs popularity {pop}",
                plain_params.name()
            );
            // A gap spanning the visits makes one session per user: no better
            // than the plain model; weight 0 is the plain model exactly.
            assert!(recall(&session(3.0, 100_000_000)) < with_sessions - 0.05);
            let a = Recommender::fit_in(&session(0.0, 60), &ctx).expect("fit");
            let b = Recommender::fit_in(&plain_params, &ctx).expect("fit");
            assert_eq!(a.model, b.model, "{name}: weight 0");
            // Without times: a clear error, not a silent plain model.
            let err = Recommender::fit_in(&session(3.0, 60), &bare).expect_err("no times");
            assert!(
                err.to_string().contains(&format!("{name} needs the time")),
                "{err}"
            );
            let mut bad = session(1.0, 60);
            assert!(bad.set("session_gap", -1.0).is_err());
            assert!(bad.set("session_weight", -1.0).is_err());
            assert!(bad.set("session_gap", 0.0).is_ok());
        }
        // A decay finds the visits where the gap does not cut them: one
        // session per user, pairs an hour apart weighing e^-60.
        let decayed = |decay: f64| AlgoParams::SessionEase {
            lambda: 10.0,
            dropout: 0.0,
            session_weight: 3.0,
            session_gap: 100_000_000,
            session_decay: decay,
            max_items: EASE_MAX_ITEMS,
        };
        let (plain, cut, soft) = (
            recall(&ease(10.0)),
            recall(&decayed(0.0)),
            recall(&decayed(60.0)),
        );
        assert!(
            soft > plain + 0.05 && soft > cut + 0.05,
            "decayed {soft} vs plain {plain} vs one session per user {cut}"
        );
        let mut bad = decayed(60.0);
        for v in [-1.0, f64::NAN, f64::INFINITY] {
            let err = bad.set("session_decay", v).expect_err("refused");
            assert!(err.to_string().contains("session_decay"), "{err}");
        }
        let err = Recommender::fit_in(&decayed(-1.0), &ctx).expect_err("negative decay");
        assert!(err.to_string().contains("session_decay"), "{err}");
        let mut p = AlgoParams::default_for("session-knn").expect("known");
        for (key, v) in [
            ("k", 20.0),
            ("shrink", 2.0),
            ("session_weight", 1.0),
            ("session_gap", 5.0),
        ] {
            p.set(key, v).expect(key);
        }
        assert_eq!(
            p,
            AlgoParams::SessionKnn {
                k: 20,
                shrink: 2.0,
                session_weight: 1.0,
                session_gap: 5
            }
        );
        assert!(p.set("lambda", 1.0).is_err(), "not a session-kNN parameter");
        assert!(p.set("session_gap", 1.5).is_err());
    }

    #[test]
    fn ensemble_standardizes_parts_and_checks_weights() {
        let p = planted_taste(200, 60, 3, 12, 0.1, 4);
        let x = Interactions::from_dense_triples(200, 60, &p.triples).expect("triples");
        let (train, test) = holdout(&x.by_user, 0.25, 2).expect("holdout");
        let t = train.transpose();
        let ctx = FitContext::new(&train, &t);
        let knn = AlgoParams::ItemKnn { k: 20, shrink: 1.0 };
        let ens = AlgoParams::Ensemble {
            parts: vec![ease(10.0), knn.clone()],
            weights: vec![0.5, 0.5],
        };
        let m = Recommender::fit_in(&ens, &ctx).expect("fit");
        let (_, rep) = evaluate(&m, &train, &test, 10);
        let pop = Recommender::fit_in(&AlgoParams::Popularity, &ctx).expect("pop");
        let (_, rp) = evaluate(&pop, &train, &test, 10);
        assert!(
            rep.recall > rp.recall + 0.1,
            "{} vs {}",
            rep.recall,
            rp.recall
        );
        // A one-part ensemble ranks exactly like its part (standardizing is monotone).
        let solo = AlgoParams::Ensemble {
            parts: vec![knn.clone()],
            weights: vec![2.0],
        };
        let a = Recommender::fit_in(&solo, &ctx).expect("fit");
        let b = Recommender::fit_in(&knn, &ctx).expect("fit");
        assert_eq!(
            a.recommend_all(&train, 10, false),
            b.recommend_all(&train, 10, false)
        );
        // Standardized scores: mean 0 and sd 1 over the items not in the history.
        let h: Vec<(u32, f32)> = train.row(0).collect();
        let mut s = vec![0f32; 60];
        a.scores(Some(0), &h, &mut s);
        let rest: Vec<f64> = (0..60u32)
            .filter(|i| !h.iter().any(|x| x.0 == *i))
            .map(|i| f64::from(s[i as usize]) / 2.0)
            .collect();
        let mean = rest.iter().sum::<f64>() / rest.len() as f64;
        let var = rest.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / rest.len() as f64;
        assert!(
            mean.abs() < 1e-4 && (var.sqrt() - 1.0).abs() < 1e-3,
            "{mean} {var}"
        );
        // Explanations come from the customer's own items.
        let top = m.recommend(Some(0), &h, 1, &TopNFilter::default()).items[0].item;
        let why = m.explain(Some(0), &h, top, 3);
        assert!(!why.is_empty() && why.iter().all(|(i, _)| h.iter().any(|x| x.0 == *i)));
        // Bad weights and a sequence model without times are errors.
        for weights in [vec![1.0], vec![-1.0, 1.0], vec![0.0, 0.0]] {
            let bad = AlgoParams::Ensemble {
                parts: vec![ease(10.0), knn.clone()],
                weights,
            };
            assert!(Recommender::fit_in(&bad, &ctx).is_err());
        }
        let seq = AlgoParams::default_for("seq-knn").expect("seq-knn");
        let err = Recommender::fit_in(&seq, &ctx).expect_err("no order");
        assert!(err.to_string().contains("time"), "{err}");
    }

    #[test]
    fn the_gram_is_shared_across_ease_fits() {
        let p = planted_taste(50, 30, 2, 8, 0.1, 1);
        let x = Interactions::from_dense_triples(50, 30, &p.triples).expect("triples");
        let ctx = FitContext::new(&x.by_user, &x.by_item);
        let g1 = ctx.gram(EASE_MAX_ITEMS);
        let _ = Recommender::fit_in(&ease(5.0), &ctx).expect("fit");
        assert!(Arc::ptr_eq(&g1, &ctx.gram(EASE_MAX_ITEMS)));
        let direct = Recommender::fit(&ease(5.0), &x).expect("fit");
        assert_eq!(direct, Recommender::fit_in(&ease(5.0), &ctx).expect("fit"));
    }

    /// Every training user's scores as bit patterns.
    fn score_bits(m: &Recommender, x: &Interactions, skip: usize) -> Vec<Vec<u32>> {
        (0..x.by_user.n_rows)
            .filter(|&u| u != skip)
            .map(|u| {
                let h: Vec<(u32, f32)> = x.by_user.row(u).collect();
                let mut s = vec![0f32; m.n_items];
                m.scores(Some(u as u32), &h, &mut s);
                s.iter().map(|v| v.to_bits()).collect()
            })
            .collect()
    }

    fn small_ials() -> AlgoParams {
        AlgoParams::Ials(IalsParams {
            factors: 8,
            iterations: 4,
            ..IalsParams::default()
        })
    }

    #[test]
    fn forget_user_zeroes_exactly_that_ials_row() {
        let p = planted_taste(80, 40, 4, 10, 0.1, 3);
        let x = Interactions::from_dense_triples(80, 40, &p.triples).expect("triples");
        let before = Recommender::fit(&small_ials(), &x).expect("fit");
        let mut m = before.clone();
        let k = 7;
        assert_eq!(m.forget_user(k), vec!["ials user factors"]);
        let (Fitted::Ials(a), Fitted::Ials(b)) = (&m.model, &before.model) else {
            panic!("not iALS");
        };
        let f = 8;
        assert!(b.user_factors[k * f..(k + 1) * f].iter().any(|&v| v != 0.0));
        assert!(a.user_factors[k * f..(k + 1) * f].iter().all(|&v| v == 0.0));
        for u in (0..80).filter(|&u| u != k) {
            assert_eq!(
                a.user_factors[u * f..(u + 1) * f],
                b.user_factors[u * f..(u + 1) * f],
                "row {u}"
            );
        }
        assert!(a.item_factors == b.item_factors && a.yty == b.yty);
        assert_eq!(m.popularity, before.popularity);
        // Everyone else's scores are bit-identical.
        assert_eq!(score_bits(&m, &x, k), score_bits(&before, &x, k));
        // A row the model does not know: nothing to forget.
        assert!(m.forget_user(80).is_empty());
        // Item-item models hold nothing per user.
        let mut e = Recommender::fit(&ease(5.0), &x).expect("fit");
        let e0 = e.clone();
        assert!(e.forget_user(k).is_empty());
        assert_eq!(e, e0);
    }

    #[test]
    fn forget_user_removes_a_user_knn_neighbour() {
        // Users 0 and 1 share items 0..4; only user 1 has item 9.
        let mut t: Vec<(u32, u32, f32)> = Vec::new();
        for i in 0..4 {
            t.push((0, i, 1.0));
            t.push((1, i, 1.0));
        }
        t.push((1, 9, 1.0));
        // Users 2 and 3 share items 5..8 with each other only.
        for i in 5..9 {
            t.push((2, i, 1.0));
            t.push((3, i, 1.0));
        }
        t.push((3, 10, 1.0));
        let x = Interactions::from_dense_triples(4, 12, &t).expect("triples");
        let before = Recommender::fit(&AlgoParams::UserKnn { k: 3, shrink: 0.0 }, &x).expect("fit");
        let mut m = before.clone();
        let h0: Vec<(u32, f32)> = x.by_user.row(0).collect();
        let mut s = vec![0f32; 12];
        before.scores(Some(0), &h0, &mut s);
        assert!(s[9] > 0.0, "item 9 comes from neighbour 1: {s:?}");
        assert_eq!(m.forget_user(1), vec!["user-knn interactions"]);
        let Fitted::UserKnn(knn) = &m.model else {
            panic!("not user-kNN");
        };
        assert_eq!(knn.by_user.row_indices(1), &[] as &[u32]);
        assert!(knn.by_item.indices.iter().all(|&v| v != 1));
        assert_eq!(knn.norms[1], 0.0);
        assert_eq!(knn.by_user.row_indices(0), x.by_user.row_indices(0));
        assert_eq!(knn.by_user.row_indices(3), x.by_user.row_indices(3));
        // User 1 is nobody's neighbour: user 0 gets nothing from them.
        assert!(knn.neighbours(&h0, Some(0)).iter().all(|&(v, _)| v != 1));
        m.scores(Some(0), &h0, &mut s);
        assert!(s.iter().all(|&v| v == 0.0), "{s:?}");
        // Users 2 and 3 never had user 1 as a neighbour: unchanged scores.
        let bits = |m: &Recommender| -> Vec<Vec<u32>> { score_bits(m, &x, 1).split_off(1) };
        assert_eq!(bits(&m), bits(&before));
        // Recursion: an ensemble of iALS and user-kNN forgets in both.
        let ials = Recommender::fit(&small_ials(), &x).expect("fit");
        let mut ens = before.clone();
        ens.model = Fitted::Ensemble {
            parts: vec![ials.model.clone(), before.model.clone()],
            weights: vec![1.0, 1.0],
        };
        assert_eq!(
            ens.forget_user(1),
            vec!["ials user factors", "user-knn interactions"]
        );
        let Fitted::Ensemble { parts, .. } = &ens.model else {
            panic!("not an ensemble");
        };
        assert_eq!(parts[1], m.model);
        let Fitted::Ials(i) = &parts[0] else {
            panic!("not iALS");
        };
        assert!(i.user_factors[8..16].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn forgetting_ids_and_rows_keeps_the_others_in_place() {
        let mut ids = data::IdMap::from(vec!["a".to_owned(), "b".into(), "c".into()]);
        assert_eq!(ids.forget("b"), Some(1));
        assert_eq!(ids.forget("b"), None);
        assert_eq!(ids.forget("zz"), None);
        assert_eq!(
            (ids.get("a"), ids.get("b"), ids.get("c")),
            (Some(0), None, Some(2))
        );
        assert_eq!(ids.len(), 3);
        assert!(ids.is_erased(1) && !ids.is_erased(0));
        assert!(!ids.ids().iter().any(|s| s == "b"));
        // Round trip through serde keeps the map as it is.
        let back: data::IdMap =
            serde_json::from_str(&serde_json::to_string(&ids).expect("ser")).expect("de");
        assert_eq!(back, ids);
        let t = [(0, 1, 1.0), (1, 0, 2.0), (1, 2, 3.0), (2, 1, 4.0)];
        let mut c = Csr::from_triples(3, 3, &t, |_, b| b).expect("csr");
        let mut d = c.clone();
        assert_eq!(c.clear_row(1), 2);
        assert_eq!(c.indptr, vec![0, 1, 1, 2]);
        assert_eq!(
            (c.indices.clone(), c.values.clone()),
            (vec![1, 1], vec![1.0, 4.0])
        );
        assert_eq!(c.clear_row(5), 0);
        assert_eq!(d.clear_col(1), 2);
        assert_eq!(d.indptr, vec![0, 0, 2, 2]);
        assert_eq!((d.indices, d.values), (vec![0, 2], vec![2.0, 3.0]));
    }
}
