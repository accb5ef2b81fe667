//! The top-N evaluation protocol and model selection.
//!
//! - [`holdout`]: per-user random holdout (the shared ml-100k protocol: each
//!   user's items in id order, shuffled, `floor(f·n + 0.5)` go to test, at
//!   least one item stays in train).
//! - [`evaluate`]: rank every item for every training user, drop the user's
//!   training items, and compute [`RankingReport`].
//! - [`grid_search`]: fit each candidate on an inner split carved from the
//!   TRAIN data only and keep the best by nDCG@k. The caller then refits the
//!   winner on the whole training data; the test data is never looked at.
//! - [`parse_grid`] / [`expand_grid`] read `--grid 'lambda=100,250;dropout=0,0.2'`.
//! - [`auto_candidates`]: the candidate set of `--algo auto`, sized to the data.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use super::ials::IalsParams;
use super::{AlgoParams, EASE_MAX_ITEMS, Recommender};
use crate::ModelError;
use crate::metrics::ranking::{self, RankingReport};

/// Splits each user's interactions: a share `fraction` (rounded half up) goes
/// to test. Returns the training matrix (same shape) and each user's test items.
pub fn holdout(
    by_user: &Csr,
    fraction: f64,
    seed: u64,
) -> Result<(Csr, Vec<Vec<u32>>), ModelError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(ModelError::InvalidParameter {
            name: "holdout-per-user".into(),
            reason: format!("must be strictly between 0 and 1, got {fraction}"),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut triples = Vec::with_capacity(by_user.nnz());
    let mut test = Vec::with_capacity(by_user.n_rows);
    for u in 0..by_user.n_rows {
        let mut row: Vec<(u32, f32)> = by_user.row(u).collect();
        row.shuffle(&mut rng);
        let n = row.len();
        let n_test = ((fraction * n as f64 + 0.5).floor() as usize).min(n.saturating_sub(1));
        let mut t: Vec<u32> = row[..n_test].iter().map(|x| x.0).collect();
        t.sort_unstable();
        test.push(t);
        triples.extend(row[n_test..].iter().map(|&(i, v)| (u as u32, i, v)));
    }
    let train = Csr::from_triples(by_user.n_rows, by_user.n_cols, &triples, |_, b| b)?;
    Ok((train, test))
}

/// Top-`k` lists of every training user (train items removed) and their metrics.
pub fn evaluate(
    model: &Recommender,
    train: &Csr,
    test: &[Vec<u32>],
    k: usize,
) -> (Vec<Vec<u32>>, RankingReport) {
    let recs = model.recommend_all(train, k, false);
    let rep = ranking::evaluate(&recs, test, k, train.n_cols);
    (recs, rep)
}

/// One evaluated candidate of a search.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trial {
    /// The configuration.
    pub params: AlgoParams,
    /// Its validation metrics (`None` when the fit failed).
    pub report: Option<RankingReport>,
    /// Fit time in seconds.
    pub fit_seconds: f64,
    /// Why the fit failed, if it did.
    pub error: Option<String>,
}

/// The outcome of [`grid_search`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Selection {
    /// The best configuration by validation nDCG@k.
    pub best: AlgoParams,
    /// Its validation metrics.
    pub best_report: RankingReport,
    /// Every candidate tried, in order.
    pub trials: Vec<Trial>,
}

/// Fits every candidate on an inner split of `train` (per-user holdout of
/// `fraction`, seeded) and returns the best by nDCG@k.
pub fn grid_search(
    candidates: &[AlgoParams],
    train: &Csr,
    fraction: f64,
    seed: u64,
    k: usize,
) -> Result<Selection, ModelError> {
    if candidates.is_empty() {
        return Err(ModelError::InvalidInput(
            "no candidate configurations".into(),
        ));
    }
    let (inner, valid) = holdout(train, fraction, seed.wrapping_add(0x5eed))?;
    let inner_t = inner.transpose();
    let mut trials = Vec::with_capacity(candidates.len());
    let mut best: Option<(usize, RankingReport)> = None;
    for (ci, c) in candidates.iter().enumerate() {
        let t0 = std::time::Instant::now();
        match Recommender::fit_matrices(c, &inner, &inner_t) {
            Ok(m) => {
                let fit_seconds = t0.elapsed().as_secs_f64();
                let (_, rep) = evaluate(&m, &inner, &valid, k);
                if best.is_none_or(|(_, b)| rep.ndcg > b.ndcg) {
                    best = Some((ci, rep));
                }
                trials.push(Trial {
                    params: c.clone(),
                    report: Some(rep),
                    fit_seconds,
                    error: None,
                });
            }
            Err(e) => trials.push(Trial {
                params: c.clone(),
                report: None,
                fit_seconds: t0.elapsed().as_secs_f64(),
                error: Some(e.to_string()),
            }),
        }
    }
    let (bi, best_report) = best.ok_or_else(|| {
        ModelError::FitFailed("every candidate configuration failed to fit".into())
    })?;
    Ok(Selection {
        best: candidates[bi].clone(),
        best_report,
        trials,
    })
}

/// Parses `name=v1,v2;name2=v3` into `(name, values)` pairs.
pub fn parse_grid(spec: &str) -> Result<Vec<(String, Vec<f64>)>, ModelError> {
    let mut out = Vec::new();
    for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, vals) = part
            .split_once('=')
            .ok_or_else(|| ModelError::InvalidParameter {
                name: "grid".into(),
                reason: format!("{part:?} is not name=v1,v2,..."),
            })?;
        let vals = vals
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<f64>().map_err(|_| ModelError::InvalidParameter {
                    name: format!("grid {}", name.trim()),
                    reason: format!("{v:?} is not a number"),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if vals.is_empty() {
            return Err(ModelError::InvalidParameter {
                name: format!("grid {}", name.trim()),
                reason: "no values".into(),
            });
        }
        out.push((name.trim().to_owned(), vals));
    }
    if out.is_empty() {
        return Err(ModelError::InvalidParameter {
            name: "grid".into(),
            reason: "empty".into(),
        });
    }
    Ok(out)
}

/// Every combination of the grid's values applied to `base`.
pub fn expand_grid(
    base: &AlgoParams,
    grid: &[(String, Vec<f64>)],
) -> Result<Vec<AlgoParams>, ModelError> {
    let mut out = vec![base.clone()];
    for (name, vals) in grid {
        let mut next = Vec::with_capacity(out.len() * vals.len());
        for p in &out {
            for &v in vals {
                let mut q = p.clone();
                q.set(name, v)?;
                next.push(q);
            }
        }
        out = next;
    }
    Ok(out)
}

/// The first-stage candidates of `--algo auto`, sized to the data:
/// popularity, item-kNN, user-kNN, iALS over a log-spaced `reg × alpha` grid,
/// and — while the catalogue fits the dense model ([`EASE_MAX_ITEMS`]) — EASE
/// over a log-spaced `λ` grid with and without dropout emphasis.
pub fn auto_candidates(n_items: usize, seed: u64) -> Vec<AlgoParams> {
    let mut c = vec![AlgoParams::Popularity];
    for k in [50, 200] {
        c.push(AlgoParams::ItemKnn { k, shrink: 10.0 });
    }
    c.push(AlgoParams::UserKnn {
        k: 50,
        shrink: 10.0,
    });
    for reg in [3.0, 10.0, 30.0, 100.0] {
        for alpha in [1.0, 3.0, 10.0] {
            c.push(AlgoParams::Ials(IalsParams {
                factors: 64,
                reg,
                alpha,
                iterations: 15,
                cg_steps: 3,
                seed,
            }));
        }
    }
    if n_items <= EASE_MAX_ITEMS {
        for lambda in [50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0] {
            for dropout in [0.0, 0.5] {
                c.push(AlgoParams::Ease {
                    lambda,
                    dropout,
                    max_items: EASE_MAX_ITEMS,
                });
            }
        }
    }
    c
}

/// `--algo auto`: stage 1 searches [`auto_candidates`] on an inner split of
/// `train`; stage 2 tries rank blends (EASE weight 0.3, 0.5, 0.7) of the best
/// EASE and the best iALS of stage 1 on the same split. The best of all by
/// validation nDCG@k wins. Only `train` is used.
pub fn auto_search(
    train: &Csr,
    fraction: f64,
    seed: u64,
    k: usize,
) -> Result<Selection, ModelError> {
    let cands = auto_candidates(train.n_cols, seed);
    let first = grid_search(&cands, train, fraction, seed, k)?;
    let best_of = |name: &str| {
        first
            .trials
            .iter()
            .filter(|t| t.params.name() == name)
            .filter_map(|t| t.report.map(|r| (r.ndcg, t.params.clone())))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|x| x.1)
    };
    let (
        Some(AlgoParams::Ease {
            lambda,
            dropout,
            max_items,
        }),
        Some(AlgoParams::Ials(ials)),
    ) = (best_of("ease"), best_of("ials"))
    else {
        return Ok(first);
    };
    let blends: Vec<AlgoParams> = [0.3f32, 0.5, 0.7]
        .into_iter()
        .map(|weight| AlgoParams::Blend {
            lambda,
            dropout,
            weight,
            ials,
            max_items,
        })
        .collect();
    let second = grid_search(&blends, train, fraction, seed, k)?;
    let mut trials = first.trials;
    trials.extend(second.trials);
    Ok(if second.best_report.ndcg > first.best_report.ndcg {
        Selection {
            best: second.best,
            best_report: second.best_report,
            trials,
        }
    } else {
        Selection {
            best: first.best,
            best_report: first.best_report,
            trials,
        }
    })
}
