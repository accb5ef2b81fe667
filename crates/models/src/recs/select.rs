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
//! - [`auto_candidates`]: the candidate set of `--algo auto`, sized to the data;
//!   [`auto_search_with`] runs it and then grows a weighted ensemble greedily
//!   from the best model of each family, reusing the fitted models (no refit).
//!
//! Every search fits its candidates through one [`FitContext`], so EASE's Gram
//! matrix is built once per search and each `(λ, dropout)` costs one
//! factorization.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use super::ials::{Ials, IalsParams};
use super::popularity::Popularity;
use super::{AlgoParams, EASE_MAX_ITEMS, FitContext, Fitted, Recommender, SideInfo};
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
    /// Fit time in seconds (for an ensemble assembled from already fitted
    /// parts: the sum of the parts' fit times).
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
    /// Wall time of the whole search (split, fits, evaluations), seconds.
    #[serde(default)]
    pub seconds: f64,
}

/// A fitted candidate kept for ensembling.
struct Kept {
    params: AlgoParams,
    model: Fitted,
    ndcg: f64,
    fit_seconds: f64,
}

/// Hears how a search advances: trials done and trials planned (stage 2 of
/// `auto` plans its ensembles as it goes). The binary draws a progress bar
/// with it; this crate does no I/O.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// A [`Progress`] that ignores everything.
pub fn no_progress(_: usize, _: usize) {}

/// iALS fits shared by candidates that differ only in `iterations`.
type IalsPaths = Vec<(IalsParams, Result<Vec<(Ials, f64)>, String>)>;

/// The [`IalsPaths`] key of an iALS candidate (its parameters but the sweeps).
fn path_key(c: &AlgoParams) -> Option<IalsParams> {
    match c {
        AlgoParams::Ials(p) => Some(IalsParams {
            iterations: 0,
            ..*p
        }),
        _ => None,
    }
}

/// Fits one candidate; iALS candidates differing only in the number of
/// sweeps come from one [`Ials::fit_path`] (cached in `paths`).
fn fit_candidate(
    c: &AlgoParams,
    candidates: &[AlgoParams],
    ctx: &FitContext<'_>,
    popularity: &Popularity,
    paths: &mut IalsPaths,
) -> Result<(Recommender, f64), ModelError> {
    let t0 = std::time::Instant::now();
    let (AlgoParams::Ials(p), Some(key)) = (c, path_key(c)) else {
        return Recommender::fit_in(c, ctx).map(|m| (m, t0.elapsed().as_secs_f64()));
    };
    if !paths.iter().any(|(q, _)| *q == key) {
        let iterations: Vec<usize> = candidates
            .iter()
            .filter(|x| path_key(x) == Some(key))
            .filter_map(|x| match x {
                AlgoParams::Ials(q) => Some(q.iterations),
                _ => None,
            })
            .collect();
        let path = ctx
            .ials_input(&key, |u, i| Ials::fit_path(u, i, key, &iterations))
            .map_err(|e| e.to_string());
        paths.push((key, path));
    }
    let path = paths
        .iter()
        .find(|(q, _)| *q == key)
        .map(|(_, path)| path)
        .ok_or_else(|| ModelError::FitFailed("iALS path missing".into()))?;
    let (m, secs) = match path {
        Ok(v) => v
            .iter()
            .find(|(m, _)| m.params.iterations == p.iterations)
            .ok_or_else(|| ModelError::FitFailed("iALS path missing a checkpoint".into()))?,
        Err(e) => return Err(ModelError::FitFailed(e.clone())),
    };
    Ok((
        Recommender {
            params: c.clone(),
            n_items: ctx.by_user.n_cols,
            n_users: ctx.by_user.n_rows,
            popularity: popularity.clone(),
            model: Fitted::Ials(m.clone()),
        },
        *secs,
    ))
}

/// Keeps `m` if it is the first or the best so far of its algorithm family.
fn keep_best(kept: &mut Vec<Kept>, m: Kept) {
    match kept.iter_mut().find(|x| x.params.name() == m.params.name()) {
        Some(x) if m.ndcg > x.ndcg => *x = m,
        Some(_) => {}
        None => kept.push(m),
    }
}

/// Fits and evaluates every candidate on `ctx` (the inner training data),
/// returning the trials and the best fitted model of each algorithm family.
fn run_trials(
    candidates: &[AlgoParams],
    ctx: &FitContext<'_>,
    valid: &[Vec<u32>],
    k: usize,
    progress: Progress<'_>,
) -> (Vec<Trial>, Vec<Kept>) {
    let mut trials = Vec::with_capacity(candidates.len());
    let mut kept: Vec<Kept> = Vec::new();
    let popularity = Popularity::fit(ctx.by_user);
    let mut paths = IalsPaths::new();
    for (at, c) in candidates.iter().enumerate() {
        let t0 = std::time::Instant::now();
        match fit_candidate(c, candidates, ctx, &popularity, &mut paths) {
            Ok((m, fit_seconds)) => {
                let (_, rep) = evaluate(&m, ctx.by_user, valid, k);
                trials.push(Trial {
                    params: c.clone(),
                    report: Some(rep),
                    fit_seconds,
                    error: None,
                });
                keep_best(
                    &mut kept,
                    Kept {
                        params: c.clone(),
                        model: m.model,
                        ndcg: rep.ndcg,
                        fit_seconds,
                    },
                );
            }
            Err(e) => trials.push(Trial {
                params: c.clone(),
                report: None,
                fit_seconds: t0.elapsed().as_secs_f64(),
                error: Some(e.to_string()),
            }),
        }
        // A path's checkpoints are dropped after its last candidate: kept
        // all along, 48 iALS models of a 68k-item catalogue took 0.9 GB.
        if let Some(key) = path_key(c)
            && !candidates[at + 1..]
                .iter()
                .any(|x| path_key(x) == Some(key))
        {
            paths.retain(|(q, _)| *q != key);
        }
        progress(at + 1, candidates.len());
    }
    (trials, kept)
}

/// The best trial by validation nDCG (the first of equals).
fn best_of(trials: &[Trial]) -> Result<(AlgoParams, RankingReport), ModelError> {
    let mut best: Option<(usize, RankingReport)> = None;
    for (i, t) in trials.iter().enumerate() {
        if let Some(r) = t.report
            && best.is_none_or(|(_, b)| r.ndcg > b.ndcg)
        {
            best = Some((i, r));
        }
    }
    let (i, r) = best.ok_or_else(|| {
        ModelError::FitFailed("every candidate configuration failed to fit".into())
    })?;
    Ok((trials[i].params.clone(), r))
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
    grid_search_with(
        candidates,
        train,
        SideInfo::default(),
        fraction,
        seed,
        k,
        &no_progress,
    )
}

/// [`grid_search`] with what else is known of `train`'s interactions: their
/// [`Timeline`] (needed by sequence and session models) and their ratings
/// (rating-confidence iALS).
pub fn grid_search_with(
    candidates: &[AlgoParams],
    train: &Csr,
    side: SideInfo<'_>,
    fraction: f64,
    seed: u64,
    k: usize,
    progress: Progress<'_>,
) -> Result<Selection, ModelError> {
    let t0 = std::time::Instant::now();
    if candidates.is_empty() {
        return Err(ModelError::InvalidInput(
            "no candidate configurations".into(),
        ));
    }
    let (inner, valid) = holdout(train, fraction, seed.wrapping_add(0x5eed))?;
    let inner_t = inner.transpose();
    let ctx = FitContext::new(&inner, &inner_t).with_side(side);
    let (trials, _) = run_trials(candidates, &ctx, &valid, k, progress);
    let (best, best_report) = best_of(&trials)?;
    Ok(Selection {
        best,
        best_report,
        trials,
        seconds: t0.elapsed().as_secs_f64(),
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
/// — while the catalogue fits the dense model ([`EASE_MAX_ITEMS`]) — EASE
/// over a log-spaced `λ` grid with and without dropout emphasis and GF-CF
/// over a few low-pass ranks and weights, and, when the interactions have
/// times (`with_order`), session-aware EASE over a few session gaps and
/// weights, session-aware item-kNN over the same (for any catalogue size), and
/// sequence-kNN while `AUTO_SEQUENCE_MODELS` says so. (With explicit
/// ratings, [`auto_search_with`] adds rating-confidence iALS after these.)
pub fn auto_candidates(n_items: usize, seed: u64) -> Vec<AlgoParams> {
    auto_candidates_with(n_items, false, seed)
}

/// [`auto_candidates`], with the time-aware models when `with_order`.
pub fn auto_candidates_with(n_items: usize, with_order: bool, seed: u64) -> Vec<AlgoParams> {
    let mut c = vec![AlgoParams::Popularity];
    for k in [50, 200] {
        c.push(AlgoParams::ItemKnn { k, shrink: 10.0 });
    }
    c.push(AlgoParams::UserKnn {
        k: 50,
        shrink: 10.0,
    });
    if with_order {
        // Sparse, so tried whatever the catalogue's size.
        for session_gap in AUTO_SESSION_GAPS {
            for session_weight in [1.0, 3.0] {
                c.push(AlgoParams::SessionKnn {
                    k: 200,
                    shrink: 10.0,
                    session_weight,
                    session_gap,
                });
            }
        }
    }
    if with_order && AUTO_SEQUENCE_MODELS {
        for window in [2, 3, 5] {
            c.push(AlgoParams::SeqKnn {
                window,
                k: 200,
                shrink: 1.0,
            });
        }
    }
    for reg in [3.0, 10.0, 30.0, 100.0] {
        for alpha in [1.0, 3.0, 10.0] {
            // One fit per (reg, alpha): the sweep counts are checkpoints of it.
            for iterations in AUTO_IALS_SWEEPS {
                c.push(AlgoParams::Ials(IalsParams {
                    factors: 64,
                    reg,
                    alpha,
                    iterations,
                    cg_steps: 3,
                    seed,
                    rating_confidence: false,
                }));
            }
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
        if with_order {
            for session_gap in AUTO_SESSION_GAPS {
                for session_weight in [1.0, 3.0] {
                    for lambda in [500.0, 1000.0] {
                        c.push(AlgoParams::SessionEase {
                            lambda,
                            dropout: 0.0,
                            session_weight,
                            session_gap,
                            max_items: EASE_MAX_ITEMS,
                        });
                    }
                }
            }
        }
        // GF-CF: strongest as an ensemble partner of iALS (stage 2).
        for k in AUTO_GFCF_K {
            for alpha in [0.3, 1.0] {
                c.push(AlgoParams::GfCf {
                    k,
                    alpha,
                    max_items: EASE_MAX_ITEMS,
                });
            }
        }
    }
    c
}

/// Session gaps (seconds) of `auto`'s session-EASE candidates: equal times
/// only (one basket, one submitted page), about a minute (consecutive pages),
/// and half an hour (the usual web-analytics visit).
const AUTO_SESSION_GAPS: [i64; 3] = [0, 60, 1800];

/// Low-pass ranks of the GF-CF candidates of `auto`.
const AUTO_GFCF_K: [usize; 3] = [16, 32, 64];

/// Per-user nDCG@k of top-k lists (users without validation items skipped).
fn per_user_ndcg(recs: &[Vec<u32>], valid: &[Vec<u32>], k: usize) -> Vec<f64> {
    recs.iter()
        .zip(valid)
        .filter(|(_, v)| !v.is_empty())
        .map(|(r, v)| ranking::ndcg_at_k(r, v, k))
        .collect()
}

/// Whether `new` beats `old` (paired per-user nDCG) by more than one standard
/// error of the mean difference (the "one-standard-error rule": keep the
/// simpler model unless the more complex one is clearly better), a guard
/// against ensembles that only fit the noise of one validation split.
fn significantly_better(new: &[f64], old: &[f64]) -> bool {
    let n = new.len().min(old.len());
    if n < 2 {
        return false;
    }
    let d: Vec<f64> = new.iter().zip(old).map(|(a, b)| a - b).collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    mean > (var / n as f64).sqrt()
}

/// Whether `auto` tries sequence-kNN when interaction times are known. Off:
/// its validation advantage shrinks as the inner training data gets denser
/// (ml-100k train file, per-user holdouts of 50/40/25/10 %: seq-kNN/EASE
/// nDCG ratio 1.00/0.99/0.98/0.96), so a holdout carved from the training
/// data overstates what it adds once refitted on all of it.
const AUTO_SEQUENCE_MODELS: bool = false;

/// iALS sweep counts `auto` compares (early stopping regularizes; one fit
/// per `(reg, alpha)` yields all of them, see [`Ials::fit_path`]).
const AUTO_IALS_SWEEPS: [usize; 4] = [4, 6, 8, 15];

/// How many of the best binary iALS points (`reg`, `alpha`) `auto` retries
/// with rating confidence. Reading the ratings rescales each cell's
/// confidence by a factor around 1, so its optimum sits near the binary one:
/// on ml-100k and the Complete Journey the best rating-confidence point of the
/// full grid was among the three best binary points (30, 3 and 100, 3), at a
/// third of the full grid's cost.
const AUTO_RATING_POINTS: usize = 3;

/// Rating-confidence iALS at the [`AUTO_RATING_POINTS`] best binary iALS
/// points of `trials` (each point's best sweep count decides), with every
/// sweep count of [`AUTO_IALS_SWEEPS`].
fn rating_confidence_candidates(trials: &[Trial]) -> Vec<AlgoParams> {
    let mut points: Vec<(IalsParams, f64)> = Vec::new();
    for t in trials {
        let (AlgoParams::Ials(p), Some(r)) = (&t.params, t.report) else {
            continue;
        };
        if p.rating_confidence {
            continue;
        }
        let key = IalsParams {
            iterations: 0,
            ..*p
        };
        match points.iter_mut().find(|(q, _)| *q == key) {
            Some((_, best)) => *best = best.max(r.ndcg),
            None => points.push((key, r.ndcg)),
        }
    }
    points.sort_by(|a, b| b.1.total_cmp(&a.1));
    points
        .iter()
        .take(AUTO_RATING_POINTS)
        .flat_map(|(p, _)| {
            AUTO_IALS_SWEEPS.map(|iterations| {
                AlgoParams::Ials(IalsParams {
                    iterations,
                    rating_confidence: true,
                    ..*p
                })
            })
        })
        .collect()
}

/// The best extension of the ensemble in one greedy round.
struct RoundBest {
    member: usize,
    weights: Vec<f32>,
    params: AlgoParams,
    report: RankingReport,
    per_user: Vec<f64>,
}

/// Weights tried for a new ensemble member (the current members share the rest).
const ENSEMBLE_WEIGHTS: [f32; 3] = [0.25, 0.4, 0.55];
/// Most members of the ensemble `auto` builds.
const ENSEMBLE_MAX_PARTS: usize = 3;

/// `--algo auto` without interaction order (see [`auto_search_with`]).
pub fn auto_search(
    train: &Csr,
    fraction: f64,
    seed: u64,
    k: usize,
) -> Result<Selection, ModelError> {
    auto_search_with(train, SideInfo::default(), fraction, seed, k, &no_progress)
}

/// `--algo auto`: stage 1 fits [`auto_candidates_with`] on an inner split of
/// `train` (one shared EASE Gram matrix), then — when `side` has ratings that
/// vary — rating-confidence iALS at the best binary iALS points; stage 2 starts from the best model
/// and greedily adds the best model of another family to a weighted ensemble
/// of standardized scores (the new member's weight from `ENSEMBLE_WEIGHTS`,
/// at most `ENSEMBLE_MAX_PARTS` members) while validation nDCG@k improves by
/// more than one standard error of the paired per-user difference.
/// Ensembles reuse the stage-1 models, so stage 2 costs evaluations only.
/// Only `train` (and what `side` knows of it) is used.
pub fn auto_search_with(
    train: &Csr,
    side: SideInfo<'_>,
    fraction: f64,
    seed: u64,
    k: usize,
    progress: Progress<'_>,
) -> Result<Selection, ModelError> {
    let t0 = std::time::Instant::now();
    let (inner, valid) = holdout(train, fraction, seed.wrapping_add(0x5eed))?;
    let inner_t = inner.transpose();
    let ctx = FitContext::new(&inner, &inner_t).with_side(side);
    let cands = auto_candidates_with(train.n_cols, side.order.is_some(), seed);
    let with_ratings = side.ratings_inform_confidence();
    // Stage 2 evaluates at most (families − 1) × weights ensembles per round.
    let families = cands
        .iter()
        .map(AlgoParams::name)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let rated = if with_ratings {
        AUTO_RATING_POINTS * AUTO_IALS_SWEEPS.len()
    } else {
        0
    };
    let planned = cands.len()
        + rated
        + families.saturating_sub(1) * ENSEMBLE_WEIGHTS.len() * (ENSEMBLE_MAX_PARTS - 1);
    let (mut trials, mut kept) =
        run_trials(&cands, &ctx, &valid, k, &|done, _| progress(done, planned));
    if with_ratings {
        // Stage 1b: rating confidence around the best binary iALS points;
        // a better rating-confidence iALS takes the iALS family's place.
        let extra = rating_confidence_candidates(&trials);
        let done = trials.len();
        let (more, more_kept) =
            run_trials(&extra, &ctx, &valid, k, &|d, _| progress(done + d, planned));
        trials.extend(more);
        for m in more_kept {
            keep_best(&mut kept, m);
        }
    }
    let (mut best, mut best_report) = best_of(&trials)?;
    let popularity = Popularity::fit(&inner);
    // Greedy ensemble over the best model of each family.
    let pool: Vec<&Kept> = kept
        .iter()
        .filter(|x| !matches!(x.params, AlgoParams::Popularity))
        .collect();
    let mut members: Vec<usize> = pool
        .iter()
        .position(|x| x.params == best)
        .into_iter()
        .collect();
    let mut weights: Vec<f32> = vec![1.0];
    let mut current: Vec<f64> = match members.first() {
        Some(&m) => {
            let model = Recommender {
                params: pool[m].params.clone(),
                n_items: inner.n_cols,
                n_users: inner.n_rows,
                popularity: popularity.clone(),
                model: pool[m].model.clone(),
            };
            per_user_ndcg(&evaluate(&model, &inner, &valid, k).0, &valid, k)
        }
        None => Vec::new(),
    };
    while !members.is_empty() && members.len() < ENSEMBLE_MAX_PARTS {
        let mut round: Option<RoundBest> = None;
        for pi in 0..pool.len() {
            if members.contains(&pi) {
                continue;
            }
            for w in ENSEMBLE_WEIGHTS {
                let mut ws: Vec<f32> = weights.iter().map(|x| x * (1.0 - w)).collect();
                ws.push(w);
                let idx: Vec<usize> = members.iter().copied().chain([pi]).collect();
                let params = AlgoParams::Ensemble {
                    parts: idx.iter().map(|&i| pool[i].params.clone()).collect(),
                    weights: ws.clone(),
                };
                let model = Recommender {
                    params: params.clone(),
                    n_items: inner.n_cols,
                    n_users: inner.n_rows,
                    popularity: popularity.clone(),
                    model: Fitted::Ensemble {
                        parts: idx.iter().map(|&i| pool[i].model.clone()).collect(),
                        weights: ws.clone(),
                    },
                };
                let (recs, rep) = evaluate(&model, &inner, &valid, k);
                trials.push(Trial {
                    params: params.clone(),
                    report: Some(rep),
                    fit_seconds: idx.iter().map(|&i| pool[i].fit_seconds).sum(),
                    error: None,
                });
                progress(trials.len(), planned.max(trials.len()));
                if round.as_ref().is_none_or(|r| rep.ndcg > r.report.ndcg) {
                    round = Some(RoundBest {
                        member: pi,
                        weights: ws,
                        params,
                        report: rep,
                        per_user: per_user_ndcg(&recs, &valid, k),
                    });
                }
            }
        }
        match round {
            Some(r)
                if r.report.ndcg > best_report.ndcg
                    && significantly_better(&r.per_user, &current) =>
            {
                members.push(r.member);
                weights = r.weights;
                best = r.params;
                best_report = r.report;
                current = r.per_user;
            }
            _ => break,
        }
    }
    progress(trials.len(), trials.len());
    Ok(Selection {
        best,
        best_report,
        trials,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(params: AlgoParams, ndcg: f64) -> Trial {
        Trial {
            params,
            report: Some(RankingReport {
                k: 10,
                users: 1,
                precision: 0.0,
                recall: 0.0,
                ndcg,
                map: 0.0,
                coverage: 0.0,
            }),
            fit_seconds: 0.0,
            error: None,
        }
    }

    fn ials(reg: f32, iterations: usize, rating_confidence: bool) -> AlgoParams {
        AlgoParams::Ials(IalsParams {
            reg,
            iterations,
            rating_confidence,
            ..IalsParams::default()
        })
    }

    #[test]
    fn rating_confidence_is_retried_at_the_best_binary_points() {
        // Five binary points; each point's best sweep count ranks it.
        let mut trials = vec![trial(AlgoParams::Popularity, 0.9)];
        for (reg, scores) in [
            (1.0, [0.10, 0.30]),
            (2.0, [0.25, 0.05]),
            (3.0, [0.20, 0.21]),
            (4.0, [0.22, 0.01]),
            (5.0, [0.02, 0.03]),
        ] {
            trials.push(trial(ials(reg, 4, false), scores[0]));
            trials.push(trial(ials(reg, 8, false), scores[1]));
        }
        // Rating-confidence trials already run do not count as binary points.
        trials.push(trial(ials(5.0, 4, true), 0.99));
        let c = rating_confidence_candidates(&trials);
        assert_eq!(c.len(), AUTO_RATING_POINTS * AUTO_IALS_SWEEPS.len());
        let regs: Vec<f32> = c
            .iter()
            .map(|p| match p {
                AlgoParams::Ials(q) if q.rating_confidence => q.reg,
                other => panic!("not rating-confidence iALS: {other:?}"),
            })
            .collect();
        let expect: Vec<f32> = [1.0, 2.0, 4.0]
            .iter()
            .flat_map(|&r| [r; AUTO_IALS_SWEEPS.len()])
            .collect();
        assert_eq!(regs, expect, "the three best points, best first");
        assert!(rating_confidence_candidates(&[]).is_empty());
    }
}
