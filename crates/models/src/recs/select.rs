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
//! - [`Validation`]: how many inner splits ([`holdouts`], disjoint per-user
//!   holdouts) a search ranks its candidates on, by their mean.
//!   [`Validation::default_for`] uses five splits of 10 % on small data: one
//!   split of 25 % made the choice depend on that split's luck, and left the
//!   inner training data at 75 % of the density the chosen model is refitted
//!   at, where session signals and ensemble weights are judged too
//!   optimistically (BENCHMARKS.md, top-N, rounds 1–8).
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
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::data::Csr;
use super::ials::{Ials, IalsParams};
use super::popularity::Popularity;
use super::{AlgoParams, EASE_MAX_ITEMS, FitContext, Fitted, Recommender, SideInfo};
use crate::ModelError;
use crate::metrics::ranking::{self, RankingReport};

/// Splits each user's interactions: a share `fraction` (rounded half up) goes
/// to test. Returns the training matrix (same shape) and each user's test items.
pub fn holdout(by_user: &Csr, fraction: f64, seed: u64) -> Result<Split, ModelError> {
    let mut one = holdouts(by_user, fraction, 1, seed, false)?;
    one.pop()
        .ok_or_else(|| ModelError::FitFailed("holdout made no split".into()))
}

/// A training matrix and each user's held-out items.
pub type Split = (Csr, Vec<Vec<u32>>);

/// `splits` per-user holdouts of `fraction` each, from one shuffle of each
/// user's items: split `s` holds out the `s`-th run of `floor(f·n + 0.5)`
/// shuffled items (wrapping around), so the holdouts are disjoint while the
/// user has enough items and every split keeps at least one item in train.
/// With `at_least_one`, a user with two items or more holds out at least one
/// (an inner split of 10 % would otherwise leave users with fewer than five
/// items out of the validation). Split 0 is [`holdout`] with the same seed
/// (without `at_least_one`).
pub fn holdouts(
    by_user: &Csr,
    fraction: f64,
    splits: usize,
    seed: u64,
    at_least_one: bool,
) -> Result<Vec<Split>, ModelError> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(ModelError::InvalidParameter {
            name: "holdout-per-user".into(),
            reason: format!("must be strictly between 0 and 1, got {fraction}"),
        });
    }
    if splits == 0 {
        return Err(ModelError::InvalidParameter {
            name: "inner-splits".into(),
            reason: "must be at least 1".into(),
        });
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut triples = vec![Vec::with_capacity(by_user.nnz()); splits];
    let mut test = vec![Vec::with_capacity(by_user.n_rows); splits];
    for u in 0..by_user.n_rows {
        let mut row: Vec<(u32, f32)> = by_user.row(u).collect();
        row.shuffle(&mut rng);
        let n = row.len();
        let n_test = ((fraction * n as f64 + 0.5).floor() as usize)
            .max(usize::from(at_least_one))
            .min(n.saturating_sub(1));
        for (s, (tr, te)) in triples.iter_mut().zip(test.iter_mut()).enumerate() {
            let start = if n == 0 { 0 } else { (s * n_test) % n };
            let held = |j: usize| (j + n - start) % n.max(1) < n_test;
            let mut t: Vec<u32> = Vec::with_capacity(n_test);
            for (j, &(i, v)) in row.iter().enumerate() {
                if held(j) {
                    t.push(i);
                } else {
                    tr.push((u as u32, i, v));
                }
            }
            t.sort_unstable();
            te.push(t);
        }
    }
    triples
        .into_iter()
        .zip(test)
        .map(|(tr, te)| {
            let train = Csr::from_triples(by_user.n_rows, by_user.n_cols, &tr, |_, b| b)?;
            Ok((train, te))
        })
        .collect()
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

/// A candidate up to its iALS sweep count: an iALS candidate's path
/// ([`path_key`]), any other candidate itself.
fn unit(c: &AlgoParams) -> AlgoParams {
    path_key(c).map_or_else(|| c.clone(), AlgoParams::Ials)
}

/// The best validation nDCG of each [`unit`] among the evaluated `trials`
/// that `pick` accepts, in order of first appearance.
fn best_per_unit(trials: &[Trial], pick: impl Fn(&AlgoParams) -> bool) -> Vec<(AlgoParams, f64)> {
    let mut units: Vec<(AlgoParams, f64)> = Vec::new();
    for t in trials.iter().filter(|t| pick(&t.params)) {
        let Some(r) = t.report else { continue };
        let u = unit(&t.params);
        match units.iter_mut().find(|(q, _)| *q == u) {
            Some((_, best)) => *best = best.max(r.ndcg),
            None => units.push((u, r.ndcg)),
        }
    }
    units
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

/// How the inner validation is carved from the training data: `splits`
/// per-user holdouts of `fraction` each ([`holdouts`]). A candidate is ranked
/// by its mean validation metrics over the splits; more splits cost more fits
/// and make the choice less dependent on one split's luck.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Share of each user's training interactions held out in each split.
    pub fraction: f64,
    /// How many splits.
    pub splits: usize,
}

impl Validation {
    /// One per-user holdout of `fraction`.
    pub fn holdout(fraction: f64) -> Self {
        Validation {
            fraction,
            splits: 1,
        }
    }

    /// The default for `nnz` training interactions, holding out `fraction`
    /// of each user's ([`DEFAULT_VALIDATION_FRACTION`] when `None`): as many
    /// disjoint splits as it takes to validate on about
    /// [`VALIDATED_INTERACTIONS`] interactions in all, at most
    /// [`MAX_INNER_SPLITS`] and at most `1 / fraction` (so they stay
    /// disjoint); large data gets one split, which is large already.
    ///
    /// A catalogue of `n_items` that gets dense item-item models (up to
    /// [`EASE_MAX_ITEMS`]) also caps the splits: each split keeps its best
    /// EASE, session-EASE and GF-CF model (items² floats each) until the
    /// ensemble stage, within [`DENSE_MODELS_HELD`] bytes in all.
    ///
    /// Without a `fraction`, data that one split of 10 % validates well
    /// enough gets one split of [`LARGE_DATA_VALIDATION_FRACTION`] instead.
    pub fn default_for(nnz: usize, n_items: usize, fraction: Option<f64>) -> Self {
        let given = fraction;
        let fraction = fraction.unwrap_or(DEFAULT_VALIDATION_FRACTION);
        let per_split = (fraction * nnz as f64).max(1.0);
        let wanted = (VALIDATED_INTERACTIONS as f64 / per_split).ceil();
        let disjoint = (1.0 / fraction).floor().max(1.0);
        let dense = if n_items <= EASE_MAX_ITEMS {
            let per_split = 3.0 * (n_items as f64).powi(2) * 4.0;
            (DENSE_MODELS_HELD as f64 / per_split.max(1.0)).floor()
        } else {
            f64::INFINITY
        };
        let splits = wanted
            .min(disjoint)
            .min(dense)
            .clamp(1.0, MAX_INNER_SPLITS as f64) as usize;
        match (splits, given) {
            (1, None) => Validation::holdout(LARGE_DATA_VALIDATION_FRACTION),
            _ => Validation { fraction, splits },
        }
    }
}

/// Share of each user's training interactions a default inner split holds
/// out. Small, so the inner training data keeps 90 % of the interactions and
/// its density is close to that of the refit on all of them: models and
/// parameters whose value depends on density (session signals, iALS's sweep
/// count, ensemble weights) are judged near the density they are used at.
/// On ml-100k, 5 splits of 10 % chose better than one split of 25 %
/// (BENCHMARKS.md, round 8).
pub const DEFAULT_VALIDATION_FRACTION: f64 = 0.1;

/// About how many held-out interactions the default inner splits add up to
/// (5 splits of 10 % on ml-100k's 75 k training interactions; one split on
/// the Complete Journey's 650 k).
pub const VALIDATED_INTERACTIONS: usize = 35_000;

/// The default's holdout when one split suffices (large data): a quarter of
/// each user's interactions. On the Complete Journey (650 k training
/// interactions) one split of 25 % chose better than one of 10 % (test nDCG@10
/// 0.2648 against 0.2631): the larger holdout's lower noise matters more there
/// than its lower density.
pub const LARGE_DATA_VALIDATION_FRACTION: f64 = 0.25;

/// Bytes the default lets the splits' dense item-item models take (three per
/// split, items² floats each): 5 splits up to about 3 000 items, one from
/// about 4 600. ml-100k (1 682 items) holds 170 MB of them on 5 splits.
pub const DENSE_MODELS_HELD: usize = 512 << 20;

/// Most inner splits the default makes (each costs a whole stage 1).
pub const MAX_INNER_SPLITS: usize = 5;

/// One inner split: its training matrices and each user's validation items.
struct Inner {
    by_user: Csr,
    by_item: Csr,
    valid: Vec<Vec<u32>>,
}

/// The inner splits of `train` a search fits on (never any test data).
fn inner_splits(train: &Csr, v: Validation, seed: u64) -> Result<Vec<Inner>, ModelError> {
    if !(v.fraction > 0.0 && v.fraction < 1.0) {
        return Err(ModelError::InvalidParameter {
            name: "validation".into(),
            reason: format!(
                "the inner validation share must be strictly between 0 and 1, got {}",
                v.fraction
            ),
        });
    }
    Ok(
        holdouts(train, v.fraction, v.splits, seed.wrapping_add(0x5eed), true)?
            .into_iter()
            .map(|(by_user, valid)| Inner {
                by_item: by_user.transpose(),
                by_user,
                valid,
            })
            .collect(),
    )
}

/// The mean of the splits' reports (`users`: the mean, rounded).
fn mean_report(reps: &[RankingReport]) -> Option<RankingReport> {
    let first = reps.first()?;
    let n = reps.len() as f64;
    let avg = |f: fn(&RankingReport) -> f64| reps.iter().map(f).sum::<f64>() / n;
    Some(RankingReport {
        k: first.k,
        users: (reps.iter().map(|r| r.users as f64).sum::<f64>() / n).round() as usize,
        precision: avg(|r| r.precision),
        recall: avg(|r| r.recall),
        ndcg: avg(|r| r.ndcg),
        map: avg(|r| r.map),
        coverage: avg(|r| r.coverage),
    })
}

/// Runs `candidates` on every split (`ctxs[s]` fits on `splits[s]`) and
/// merges each candidate's trials into one with the mean report and mean
/// fit time (failed on any split: failed, with the first error). With
/// `prune`, the splits after the first fit only the [`survivors`] of the
/// first; the others are reported without a result, saying so. Also returns
/// each split's best fitted model of every family (by that split) and how
/// many fits were made. `progress` hears (fits done, fits planned).
fn run_on_splits(
    candidates: &[AlgoParams],
    ctxs: &[FitContext<'_>],
    splits: &[Inner],
    k: usize,
    prune: bool,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> (Vec<Trial>, Vec<Vec<Kept>>, usize) {
    let mut per_split: Vec<Vec<Trial>> = Vec::with_capacity(splits.len());
    let mut kept = Vec::with_capacity(splits.len());
    // Which candidates the later splits fit, by index into `candidates`.
    let mut later: Vec<usize> = (0..candidates.len()).collect();
    let mut planned = candidates.len() * splits.len();
    let mut done = 0;
    let mut later_params: Vec<AlgoParams> = Vec::new();
    for (s, (ctx, inner)) in ctxs.iter().zip(splits).enumerate() {
        let these = if s == 0 { candidates } else { &later_params };
        let (t, kp) = run_trials(these, ctx, &inner.valid, k, &|d, _| {
            progress(done + d, planned)
        });
        ctx.drop_grams();
        done += these.len();
        if s == 0 && prune && splits.len() > 1 {
            let keep = survivors(&t);
            later.retain(|&i| keep[i]);
            planned = candidates.len() + later.len() * (splits.len() - 1);
        }
        if s == 0 {
            later_params = later.iter().map(|&i| candidates[i].clone()).collect();
        }
        per_split.push(t);
        kept.push(kp);
    }
    let n = per_split.len() as f64;
    let merged = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let first = &per_split[0][i];
            let Some(at) = later.iter().position(|&j| j == i) else {
                return Trial {
                    params: c.clone(),
                    report: None,
                    fit_seconds: first.fit_seconds,
                    error: Some(format!(
                        "left out after the first inner split (validation nDCG {:.4} there): \
                         not among the {AUTO_SURVIVORS} best of its family",
                        first.report.map_or(0.0, |r| r.ndcg)
                    )),
                };
            };
            // The candidate's place in each split's trials.
            let all: Vec<&Trial> = per_split
                .iter()
                .enumerate()
                .map(|(s, t)| &t[if s == 0 { i } else { at }])
                .collect();
            let reps: Option<Vec<RankingReport>> = all.iter().map(|t| t.report).collect();
            Trial {
                params: c.clone(),
                report: reps.as_deref().and_then(mean_report),
                fit_seconds: all.iter().map(|t| t.fit_seconds).sum::<f64>() / n,
                error: all.iter().find_map(|t| t.error.clone()),
            }
        })
        .collect();
    (merged, kept, done)
}

/// How many configurations of each family `auto` fits on the inner splits
/// after the first (an iALS configuration: a `(reg, alpha)` path with all its
/// sweep counts). The later splits then cost about a quarter of the first:
/// on ml-100k the search takes 14–16 s instead of 22–24 s. Over 15 runs
/// (five datasets × three seeds) it chose the same model as the unpruned
/// search 11 times, and its mean test nDCG per dataset was equal or higher
/// (BENCHMARKS.md, round 8).
const AUTO_SURVIVORS: usize = 3;

/// Which of the first split's `trials` the later splits fit: the
/// [`AUTO_SURVIVORS`] best configurations of each family (iALS checkpoints
/// of one path count as one configuration, scored by their best).
fn survivors(trials: &[Trial]) -> Vec<bool> {
    let units = best_per_unit(trials, |_| true);
    let keep: Vec<&AlgoParams> = units
        .iter()
        .filter(|(u, score)| {
            let better = units
                .iter()
                .filter(|(v, s)| v.name() == u.name() && s > score)
                .count();
            better < AUTO_SURVIVORS
        })
        .map(|(u, _)| u)
        .collect();
    trials
        .iter()
        .map(|t| keep.contains(&&unit(&t.params)))
        .collect()
}

/// The best trial by validation nDCG (the first of equals) among those not
/// `set_aside`.
fn best_of(
    trials: &[Trial],
    set_aside: &[bool],
) -> Result<(AlgoParams, RankingReport), ModelError> {
    let mut best: Option<(usize, RankingReport)> = None;
    for (i, t) in trials.iter().enumerate() {
        if let Some(r) = t.report
            && !set_aside.get(i).copied().unwrap_or(false)
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

/// Share of validation nDCG `auto` gives up for fewer iALS sweeps: the
/// sweep counts of one `(reg, alpha)` path are checkpoints of one fit, and
/// the final refit costs in proportion to them. Validation curves are flat
/// past the optimum (ml-100k, five splits of 10 %: 0.1803 / 0.1803 / 0.1804
/// after 6 / 8 / 15 sweeps), where the extra sweeps buy only noise. As
/// `eval recs` rating mode's `auto`, which trades 0.25 % of validation RMSE
/// for a cheaper model; a `--grid` takes the best.
const AUTO_SWEEP_TOLERANCE: f64 = 0.0025;

/// Which trials `auto` sets aside for a cheaper equivalent: the iALS
/// checkpoints of a path other than its fewest sweeps within
/// [`AUTO_SWEEP_TOLERANCE`] of the path's best.
fn set_aside_for_fewer_sweeps(trials: &[Trial]) -> Vec<bool> {
    let best = best_per_unit(trials, |c| path_key(c).is_some());
    let mut chosen: Vec<(IalsParams, usize)> = Vec::new();
    for t in trials {
        let (AlgoParams::Ials(p), Some(key), Some(r)) = (&t.params, path_key(&t.params), t.report)
        else {
            continue;
        };
        let path = AlgoParams::Ials(key);
        let top = best
            .iter()
            .find(|(q, _)| *q == path)
            .map_or(r.ndcg, |b| b.1);
        if r.ndcg >= (1.0 - AUTO_SWEEP_TOLERANCE) * top {
            match chosen.iter_mut().find(|(q, _)| *q == key) {
                Some((_, n)) => *n = (*n).min(p.iterations),
                None => chosen.push((key, p.iterations)),
            }
        }
    }
    trials
        .iter()
        .map(|t| match (&t.params, path_key(&t.params), t.report) {
            (AlgoParams::Ials(p), Some(key), Some(_)) => chosen
                .iter()
                .find(|(q, _)| *q == key)
                .is_some_and(|(_, n)| *n != p.iterations),
            _ => false,
        })
        .collect()
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
        Validation::holdout(fraction),
        seed,
        k,
        &no_progress,
    )
}

/// [`grid_search`] on the inner splits of `validation`, with what else is
/// known of `train`'s interactions: their [`Timeline`] (needed by sequence
/// and session models) and their ratings (rating-confidence iALS).
pub fn grid_search_with(
    candidates: &[AlgoParams],
    train: &Csr,
    side: SideInfo<'_>,
    validation: Validation,
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
    let splits = inner_splits(train, validation, seed)?;
    let ctxs: Vec<FitContext<'_>> = splits
        .iter()
        .map(|s| FitContext::new(&s.by_user, &s.by_item).with_side(side))
        .collect();
    let (trials, _, _) = run_on_splits(candidates, &ctxs, &splits, k, false, progress);
    let (best, best_report) = best_of(&trials, &[])?;
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
/// weights (and with a few time decays within half-hour visits),
/// session-aware item-kNN over the same (for any catalogue size), and
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
                            session_decay: 0.0,
                            max_items: EASE_MAX_ITEMS,
                        });
                    }
                }
            }
            for session_decay in AUTO_SESSION_DECAYS {
                for session_weight in AUTO_DECAYED_WEIGHTS {
                    for lambda in [500.0, 1000.0] {
                        c.push(AlgoParams::SessionEase {
                            lambda,
                            dropout: 0.0,
                            session_weight,
                            session_gap: AUTO_DECAYED_GAP,
                            session_decay,
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

/// Time scales (seconds) of `auto`'s session-EASE candidates whose pairs
/// weigh `exp(−Δt/τ)`: five minutes and a quarter of an hour. On ml-100k a
/// decay beat every hard session cut alone (test file, λ 500, w 3: τ 600
/// 0.4926 against 0.4891 for the best cut) and, blended with iALS, over a broad
/// range (τ 300–600, w 2–5: 0.500–0.504 against 0.498–0.499), so `auto` tries
/// two time scales rather than tuning one.
const AUTO_SESSION_DECAYS: [f64; 2] = [300.0, 900.0];
/// Weights of the decayed co-occurrence in those candidates.
const AUTO_DECAYED_WEIGHTS: [f64; 2] = [3.0, 5.0];
/// Visit gap of those candidates: the decay does the rest.
const AUTO_DECAYED_GAP: i64 = 1800;

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
    let binary = |c: &AlgoParams| matches!(c, AlgoParams::Ials(p) if !p.rating_confidence);
    let mut points = best_per_unit(trials, binary);
    points.sort_by(|a, b| b.1.total_cmp(&a.1));
    points
        .iter()
        .take(AUTO_RATING_POINTS)
        .filter_map(|(u, _)| match u {
            AlgoParams::Ials(p) => Some(*p),
            _ => None,
        })
        .flat_map(|p| {
            AUTO_IALS_SWEEPS.map(|iterations| {
                AlgoParams::Ials(IalsParams {
                    iterations,
                    rating_confidence: true,
                    ..p
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
    auto_search_with(
        train,
        SideInfo::default(),
        Validation::holdout(fraction),
        seed,
        k,
        &no_progress,
    )
}

/// A stage-2 ensemble member: a family's best configuration (by the mean over
/// the splits) and its model fitted on each split.
struct Member {
    params: AlgoParams,
    models: Vec<Fitted>,
    fit_seconds: f64,
}

/// Each family's best configuration by the mean over the splits (popularity
/// and the `set_aside` trials left out), with its model on every split: taken from the split's own
/// family best when it is the same configuration (always, with one split),
/// refitted on that split otherwise.
fn members(
    trials: &[Trial],
    set_aside: &[bool],
    mut kept: Vec<Vec<Kept>>,
    ctxs: &[FitContext<'_>],
    popularity: &[Popularity],
) -> Vec<Member> {
    let mut best: Vec<(AlgoParams, f64, f64)> = Vec::new();
    for (_, t) in trials
        .iter()
        .enumerate()
        .filter(|(i, _)| !set_aside.get(*i).copied().unwrap_or(false))
    {
        let Some(r) = t.report else { continue };
        if matches!(
            t.params,
            AlgoParams::Popularity | AlgoParams::Ensemble { .. }
        ) {
            continue;
        }
        match best.iter_mut().find(|b| b.0.name() == t.params.name()) {
            Some(b) if r.ndcg > b.1 => *b = (t.params.clone(), r.ndcg, t.fit_seconds),
            Some(_) => {}
            None => best.push((t.params.clone(), r.ndcg, t.fit_seconds)),
        }
    }
    best.into_iter()
        .filter_map(|(params, _, fit_seconds)| {
            let models = kept
                .iter_mut()
                .zip(ctxs)
                .zip(popularity)
                .map(|((kept, ctx), pop)| {
                    match kept.iter().position(|x| x.params == params) {
                        // Moved, not copied: a dense item-item model is items² floats.
                        Some(at) => Some(kept.swap_remove(at).model),
                        None => fit_candidate(
                            &params,
                            std::slice::from_ref(&params),
                            ctx,
                            pop,
                            &mut IalsPaths::new(),
                        )
                        .ok()
                        .map(|(m, _)| m.model),
                    }
                })
                .collect::<Option<Vec<Fitted>>>()?;
            Some(Member {
                params,
                models,
                fit_seconds,
            })
        })
        .collect()
}

/// Evaluates a weighted ensemble of `pool[idx]` (one member: that model) on
/// every split: the mean report and the per-user nDCG of all splits, in turn.
fn evaluate_members(
    pool: &[Member],
    idx: &[usize],
    weights: &[f32],
    splits: &[Inner],
    popularity: &[Popularity],
    k: usize,
) -> Result<(AlgoParams, RankingReport, Vec<f64>), ModelError> {
    let params = match idx {
        [one] => pool[*one].params.clone(),
        _ => AlgoParams::Ensemble {
            parts: idx.iter().map(|&i| pool[i].params.clone()).collect(),
            weights: weights.to_vec(),
        },
    };
    let mut reps = Vec::with_capacity(splits.len());
    let mut per_user = Vec::new();
    for (s, (inner, pop)) in splits.iter().zip(popularity).enumerate() {
        let model = match idx {
            [one] => pool[*one].models[s].clone(),
            _ => Fitted::Ensemble {
                parts: idx.iter().map(|&i| pool[i].models[s].clone()).collect(),
                weights: weights.to_vec(),
            },
        };
        let model = Recommender {
            params: params.clone(),
            n_items: inner.by_user.n_cols,
            n_users: inner.by_user.n_rows,
            popularity: pop.clone(),
            model,
        };
        let (recs, rep) = evaluate(&model, &inner.by_user, &inner.valid, k);
        per_user.extend(per_user_ndcg(&recs, &inner.valid, k));
        reps.push(rep);
    }
    let rep =
        mean_report(&reps).ok_or_else(|| ModelError::FitFailed("no validation split".into()))?;
    Ok((params, rep, per_user))
}

/// Most scores [`evaluate_blends`] holds at once (4 bytes each): the
/// standardized scores of every model it blends, for a block of users.
const BLEND_SCORES_HELD: usize = 1 << 24;

/// Evaluates ensembles that all extend `members` by one model, `blends[c] =
/// (pool index, weights of members then it)`, on every split; for each the
/// mean report and the per-user nDCG of all splits in turn. Each model's
/// standardized scores are computed once per block of users (at most `held`
/// scores at once) and shared by every blend, with the same arithmetic as [`Fitted::Ensemble`], so the
/// results equal [`evaluate_members`]' for each blend.
fn evaluate_blends(
    pool: &[Member],
    members: &[usize],
    blends: &[(usize, Vec<f32>)],
    splits: &[Inner],
    popularity: &[Popularity],
    k: usize,
    held: usize,
) -> Result<Vec<(RankingReport, Vec<f64>)>, ModelError> {
    let mut needed: Vec<usize> = members
        .iter()
        .copied()
        .chain(blends.iter().map(|b| b.0))
        .collect();
    needed.sort_unstable();
    needed.dedup();
    // Each blend as (index into the scores held, weight), zero weights left out.
    let terms: Vec<Vec<(usize, f32)>> = blends
        .iter()
        .map(|(pi, ws)| {
            members
                .iter()
                .chain([pi])
                .zip(ws)
                .filter(|(_, w)| **w != 0.0)
                .filter_map(|(i, &w)| needed.iter().position(|j| j == i).map(|z| (z, w)))
                .collect()
        })
        .collect();
    let filter = super::topn::TopNFilter::default();
    let mut reps: Vec<Vec<RankingReport>> = vec![Vec::with_capacity(splits.len()); blends.len()];
    let mut per_user: Vec<Vec<f64>> = vec![Vec::new(); blends.len()];
    for (s, (inner, pop)) in splits.iter().zip(popularity).enumerate() {
        let (n_users, n_items) = (inner.by_user.n_rows, inner.by_user.n_cols.max(1));
        let block = (held / (needed.len() * n_items).max(1)).clamp(1, n_users.max(1));
        // recs[c][u]: blend c's top k for user u.
        let mut recs: Vec<Vec<Vec<u32>>> = vec![Vec::with_capacity(n_users); blends.len()];
        for u0 in (0..n_users).step_by(block) {
            let u1 = (u0 + block).min(n_users);
            let z: Vec<Vec<f32>> = needed
                .iter()
                .map(|&i| {
                    let mut z = vec![0f32; (u1 - u0) * n_items];
                    pool[i].models[s].standardized_scores(
                        pop,
                        n_users,
                        &inner.by_user,
                        u0..u1,
                        &mut z,
                    );
                    z
                })
                .collect();
            let lists: Vec<Vec<Vec<u32>>> = (u0..u1)
                .into_par_iter()
                .map(|u| {
                    let r = (u - u0) * n_items..(u - u0 + 1) * n_items;
                    let mut row = vec![0f32; n_items];
                    terms
                        .iter()
                        .map(|blend| {
                            row.fill(0.0);
                            for &(zi, w) in blend {
                                for (o, &x) in row.iter_mut().zip(&z[zi][r.clone()]) {
                                    *o += w * x;
                                }
                            }
                            if inner.by_user.row_indices(u).is_empty() {
                                pop.score(&mut row);
                            }
                            super::topn::top_n(&row, inner.by_user.row_indices(u), k, &filter)
                                .into_iter()
                                .map(|x| x.item)
                                .collect()
                        })
                        .collect()
                })
                .collect();
            for user_lists in lists {
                for (c, list) in user_lists.into_iter().enumerate() {
                    recs[c].push(list);
                }
            }
        }
        for (c, lists) in recs.iter().enumerate() {
            reps[c].push(ranking::evaluate(
                lists,
                &inner.valid,
                k,
                inner.by_user.n_cols,
            ));
            per_user[c].extend(per_user_ndcg(lists, &inner.valid, k));
        }
    }
    reps.iter()
        .zip(per_user)
        .map(|(r, u)| {
            let rep = mean_report(r)
                .ok_or_else(|| ModelError::FitFailed("no validation split".into()))?;
            Ok((rep, u))
        })
        .collect()
}

/// `--algo auto`: stage 1 fits [`auto_candidates_with`] on every inner split
/// of `validation` (one shared EASE Gram matrix per split) and ranks them by
/// their mean; then — when `side` has ratings that vary — rating-confidence
/// iALS at the best binary iALS points; stage 2 starts from the best model
/// and greedily adds the best model of another family to a weighted ensemble
/// of standardized scores (the new member's weight from `ENSEMBLE_WEIGHTS`,
/// at most `ENSEMBLE_MAX_PARTS` members) while the mean validation nDCG@k
/// improves by more than one standard error of the paired per-user
/// difference (the users of all splits). Ensembles reuse the stage-1 models,
/// so stage 2 costs evaluations only. Only `train` (and what `side` knows of
/// it) is used.
pub fn auto_search_with(
    train: &Csr,
    side: SideInfo<'_>,
    validation: Validation,
    seed: u64,
    k: usize,
    progress: Progress<'_>,
) -> Result<Selection, ModelError> {
    let t0 = std::time::Instant::now();
    let splits = inner_splits(train, validation, seed)?;
    let ctxs: Vec<FitContext<'_>> = splits
        .iter()
        .map(|s| FitContext::new(&s.by_user, &s.by_item).with_side(side))
        .collect();
    let popularity: Vec<Popularity> = splits.iter().map(|s| Popularity::fit(&s.by_user)).collect();
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
    let after = rated * splits.len()
        + families.saturating_sub(1) * ENSEMBLE_WEIGHTS.len() * (ENSEMBLE_MAX_PARTS - 1);
    let (mut trials, mut kept, mut done) =
        run_on_splits(&cands, &ctxs, &splits, k, true, &|d, p| {
            progress(d, p + after)
        });
    let planned = done + after;
    if with_ratings {
        // Stage 1b: rating confidence around the best binary iALS points;
        // a better rating-confidence iALS takes the iALS family's place.
        let extra = rating_confidence_candidates(&trials);
        let (more, more_kept, _) = run_on_splits(&extra, &ctxs, &splits, k, false, &|d, _| {
            progress(done + d, planned)
        });
        done += extra.len() * splits.len();
        trials.extend(more);
        for (kept, more) in kept.iter_mut().zip(more_kept) {
            for m in more {
                keep_best(kept, m);
            }
        }
    }
    let set_aside = set_aside_for_fewer_sweeps(&trials);
    let (mut best, mut best_report) = best_of(&trials, &set_aside)?;
    // Greedy ensemble over the best model of each family.
    let pool = members(&trials, &set_aside, kept, &ctxs, &popularity);
    let mut members: Vec<usize> = pool
        .iter()
        .position(|x| x.params == best)
        .into_iter()
        .collect();
    let mut weights: Vec<f32> = vec![1.0];
    let mut current: Vec<f64> = match members.as_slice() {
        [] => Vec::new(),
        idx => evaluate_members(&pool, idx, &weights, &splits, &popularity, k)?.2,
    };
    while !members.is_empty() && members.len() < ENSEMBLE_MAX_PARTS {
        let mut round: Option<RoundBest> = None;
        let blends: Vec<(usize, Vec<f32>)> = (0..pool.len())
            .filter(|pi| !members.contains(pi))
            .flat_map(|pi| {
                ENSEMBLE_WEIGHTS.map(|w| {
                    let mut ws: Vec<f32> = weights.iter().map(|x| x * (1.0 - w)).collect();
                    ws.push(w);
                    (pi, ws)
                })
            })
            .collect();
        let results = evaluate_blends(
            &pool,
            &members,
            &blends,
            &splits,
            &popularity,
            k,
            BLEND_SCORES_HELD,
        )?;
        for ((pi, ws), (rep, per_user)) in blends.into_iter().zip(results) {
            let idx: Vec<usize> = members.iter().copied().chain([pi]).collect();
            let params = AlgoParams::Ensemble {
                parts: idx.iter().map(|&i| pool[i].params.clone()).collect(),
                weights: ws.clone(),
            };
            trials.push(Trial {
                params: params.clone(),
                report: Some(rep),
                fit_seconds: idx.iter().map(|&i| pool[i].fit_seconds).sum(),
                error: None,
            });
            done += 1;
            progress(done, planned.max(done));
            if round.as_ref().is_none_or(|r| rep.ndcg > r.report.ndcg) {
                round = Some(RoundBest {
                    member: pi,
                    weights: ws,
                    params,
                    report: rep,
                    per_user,
                });
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
    progress(done, done);
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

    /// Users with 1, 2, 5, 12 and 40 items, item ids from the user's index.
    fn uneven() -> Csr {
        let mut t = Vec::new();
        for (u, n) in [1u32, 2, 5, 12, 40].into_iter().enumerate() {
            t.extend((0..n).map(|i| (u as u32, (i * 7 + u as u32) % 50, 1.0 + i as f32)));
        }
        Csr::from_triples(5, 50, &t, |_, b| b).expect("triples")
    }

    #[test]
    fn holdouts_are_disjoint_and_the_first_is_the_holdout() {
        let x = uneven();
        let splits = holdouts(&x, 0.25, 4, 9, false).expect("splits");
        assert_eq!(splits.len(), 4);
        let (tr0, te0) = holdout(&x, 0.25, 9).expect("holdout");
        assert_eq!(splits[0].0.indices, tr0.indices);
        assert_eq!(splits[0].1, te0);
        for u in 0..x.n_rows {
            let all: Vec<u32> = x.row(u).map(|(i, _)| i).collect();
            let n = all.len();
            let n_test = ((0.25 * n as f64 + 0.5).floor() as usize).min(n - 1);
            let mut held: Vec<u32> = Vec::new();
            for (train, test) in &splits {
                assert_eq!(test[u].len(), n_test, "user {u}");
                // Train and validation split the user's items, values kept.
                let mut both: Vec<u32> = train.row(u).map(|(i, _)| i).collect();
                assert!(!both.is_empty(), "user {u} keeps a training item");
                assert!(
                    train
                        .row(u)
                        .all(|(i, v)| x.row(u).any(|(j, w)| i == j && v == w))
                );
                both.extend(&test[u]);
                both.sort_unstable();
                assert_eq!(both, all, "user {u}");
                held.extend(&test[u]);
            }
            held.sort_unstable();
            let distinct =
                held.windows(2).filter(|w| w[0] != w[1]).count() + usize::from(!held.is_empty());
            // Disjoint while 4 runs of n_test fit in the user's items.
            assert_eq!(distinct, (4 * n_test).min(n), "user {u}: {held:?}");
        }
        assert!(holdouts(&x, 0.25, 0, 9, false).is_err());
        assert!(holdouts(&x, 1.0, 2, 9, false).is_err());
        // At 10 %, users with 2 and 5 items hold out one item only when asked.
        let sizes = |at_least_one| -> Vec<usize> {
            let h = holdouts(&x, 0.1, 2, 9, at_least_one).expect("splits");
            h[1].1.iter().map(Vec::len).collect()
        };
        assert_eq!(sizes(false), vec![0, 0, 1, 1, 4]);
        assert_eq!(sizes(true), vec![0, 1, 1, 1, 4]);
    }

    /// Binary iALS paths `(reg, [nDCG after 4 sweeps, after 8])`.
    const FOUR_PATHS: [(f32, [f64; 2]); 4] = [
        (1.0, [0.10, 0.30]),
        (2.0, [0.25, 0.05]),
        (3.0, [0.20, 0.21]),
        (4.0, [0.22, 0.01]),
    ];

    /// The trials of binary iALS paths with checkpoints at 4 and 8 sweeps.
    fn binary_paths(paths: &[(f32, [f64; 2])]) -> Vec<Trial> {
        paths
            .iter()
            .flat_map(|&(reg, [at4, at8])| {
                [
                    trial(ials(reg, 4, false), at4),
                    trial(ials(reg, 8, false), at8),
                ]
            })
            .collect()
    }

    #[test]
    fn shared_scores_give_each_ensemble_its_own_result() {
        let (n_users, n_items) = (60, 40);
        let p = crate::recs::synth::planted_taste(n_users, n_items, 3, 8, 0.1, 5);
        let x = crate::recs::data::Interactions::from_dense_triples(n_users, n_items, &p.triples)
            .expect("triples");
        let v = Validation {
            fraction: 0.25,
            splits: 2,
        };
        let splits = inner_splits(&x.by_user, v, 1).expect("splits");
        let pops: Vec<Popularity> = splits.iter().map(|s| Popularity::fit(&s.by_user)).collect();
        let params = [
            AlgoParams::ItemKnn { k: 10, shrink: 0.0 },
            ials(1.0, 4, false),
            AlgoParams::Ease {
                lambda: 10.0,
                dropout: 0.0,
                max_items: EASE_MAX_ITEMS,
            },
        ];
        let pool: Vec<Member> = params
            .iter()
            .map(|p| Member {
                params: p.clone(),
                models: splits
                    .iter()
                    .map(|s| {
                        Recommender::fit_matrices(p, &s.by_user, &s.by_item)
                            .expect("fit")
                            .model
                    })
                    .collect(),
                fit_seconds: 0.0,
            })
            .collect();
        let blends = vec![
            (1, vec![0.6, 0.4]),
            (2, vec![0.75, 0.25]),
            (2, vec![0.45, 0.55]),
        ];
        // All users in one block, and blocks of 7 users.
        for held in [BLEND_SCORES_HELD, 7 * 3 * n_items] {
            let got =
                evaluate_blends(&pool, &[0], &blends, &splits, &pops, 5, held).expect("blends");
            assert_eq!(got.len(), blends.len());
            for ((pi, ws), (rep, users)) in blends.iter().zip(&got) {
                let (_, want, want_users) =
                    evaluate_members(&pool, &[0, *pi], ws, &splits, &pops, 5).expect("members");
                assert_eq!(rep.ndcg, want.ndcg, "{pi} {ws:?} held {held}");
                assert_eq!(rep.precision, want.precision);
                assert_eq!(rep.map, want.map);
                assert_eq!(rep.coverage, want.coverage);
                assert_eq!(users, &want_users);
                assert!(rep.ndcg > 0.0);
            }
        }
    }

    #[test]
    fn fewer_sweeps_win_within_the_tolerance() {
        let t = |reg, it, ndcg| trial(ials(reg, it, false), ndcg);
        let trials = vec![
            trial(AlgoParams::Popularity, 0.5),
            // Flat after 6 sweeps: 6 is kept, 8 and 15 set aside.
            t(1.0, 4, 0.1700),
            t(1.0, 6, 0.1800),
            t(1.0, 8, 0.1803),
            t(1.0, 15, 0.1804),
            // Still climbing: only the best (15) is kept.
            t(2.0, 4, 0.1500),
            t(2.0, 8, 0.1600),
            t(2.0, 15, 0.1700),
        ];
        let aside = set_aside_for_fewer_sweeps(&trials);
        assert_eq!(
            aside,
            vec![false, true, false, true, true, true, true, false]
        );
        // The overall best is then the 6-sweep checkpoint, not the 15.
        let (best, _) = best_of(&trials[1..], &aside[1..]).expect("best");
        assert_eq!(best, ials(1.0, 6, false));
        assert_eq!(
            best_of(&trials[1..], &[]).expect("best").0,
            ials(1.0, 15, false)
        );
    }

    #[test]
    fn later_splits_refit_the_best_of_each_family() {
        let ease = |lambda: f64| AlgoParams::Ease {
            lambda,
            dropout: 0.0,
            max_items: EASE_MAX_ITEMS,
        };
        let mut trials = vec![trial(AlgoParams::Popularity, 0.01)];
        for (lambda, score) in [(1.0, 0.3), (2.0, 0.5), (3.0, 0.1), (4.0, 0.4), (5.0, 0.2)] {
            trials.push(trial(ease(lambda), score));
        }
        // iALS paths: the best checkpoint scores the path.
        trials.extend(binary_paths(&FOUR_PATHS));
        let mut failed = trial(ease(6.0), 0.0);
        failed.report = None;
        trials.push(failed);
        let keep = survivors(&trials);
        let kept: Vec<&AlgoParams> = trials
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(t, _)| &t.params)
            .collect();
        let mut want = vec![AlgoParams::Popularity, ease(1.0), ease(2.0), ease(4.0)];
        for reg in [1.0, 2.0, 4.0] {
            want.extend([ials(reg, 4, false), ials(reg, 8, false)]);
        }
        assert_eq!(kept.len(), want.len(), "{kept:?}");
        assert!(want.iter().all(|w| kept.contains(&w)), "{kept:?}");
    }

    #[test]
    fn the_default_validation_grows_with_the_data() {
        let v = |nnz, f| {
            let v = Validation::default_for(nnz, 1_682, f);
            (v.fraction, v.splits)
        };
        // ml-100k's training file: five splits of 10 %.
        assert_eq!(v(74_887, None), (0.1, 5));
        assert_eq!(v(1_000, None), (0.1, 5));
        assert_eq!(v(200_000, None), (0.1, 2));
        // One split of 10 % would do: one quarter instead.
        assert_eq!(v(650_000, None), (0.25, 1));
        // A given share is kept; its splits stay disjoint.
        assert_eq!(v(74_887, Some(0.25)), (0.25, 2));
        assert_eq!(v(1_000, Some(0.5)), (0.5, 2));
        assert_eq!(v(650_000, Some(0.1)), (0.1, 1));
        // Dense item-item models on every split cap the count by catalogue size.
        let with_items = |n_items| {
            let v = Validation::default_for(74_887, n_items, None);
            (v.fraction, v.splits)
        };
        assert_eq!(with_items(3_000), (0.1, 4));
        assert_eq!(with_items(4_000), (0.1, 2));
        assert_eq!(with_items(5_000), (0.25, 1));
        // Past the dense cap no dense models are fitted: no cap.
        assert_eq!(with_items(EASE_MAX_ITEMS + 1), (0.1, 5));
    }

    #[test]
    fn a_search_on_several_splits_ranks_by_the_mean() {
        let x = uneven();
        let cands = [
            AlgoParams::Popularity,
            AlgoParams::ItemKnn { k: 5, shrink: 0.0 },
        ];
        let one = grid_search(&cands, &x, 0.25, 3, 5).expect("one split");
        let v = Validation {
            fraction: 0.25,
            splits: 3,
        };
        let sel = grid_search_with(&cands, &x, SideInfo::default(), v, 3, 5, &no_progress)
            .expect("three splits");
        assert_eq!(sel.trials.len(), cands.len());
        // Each trial's report is the mean of its three splits' reports.
        let splits = inner_splits(&x, v, 3).expect("splits");
        let first = holdout(&x, 0.25, 3u64.wrapping_add(0x5eed)).expect("h");
        assert_eq!(
            splits[0].valid, first.1,
            "at 25 % every user with 2 items holds one out"
        );
        for (c, t) in cands.iter().zip(&sel.trials) {
            let mut ndcg = 0.0;
            for s in &splits {
                let m = Recommender::fit_matrices(c, &s.by_user, &s.by_item).expect("fit");
                ndcg += evaluate(&m, &s.by_user, &s.valid, 5).1.ndcg / 3.0;
            }
            let got = t.report.expect("report").ndcg;
            assert!((got - ndcg).abs() < 1e-12, "{c:?}: {got} vs {ndcg}");
        }
        assert_eq!(one.trials[0].report.expect("r").ndcg, {
            let s = &splits[0];
            let m = Recommender::fit_matrices(&cands[0], &s.by_user, &s.by_item).expect("fit");
            evaluate(&m, &s.by_user, &s.valid, 5).1.ndcg
        });
    }

    #[test]
    fn rating_confidence_is_retried_at_the_best_binary_points() {
        // Five binary points; each point's best sweep count ranks it.
        let mut trials = vec![trial(AlgoParams::Popularity, 0.9)];
        trials.extend(binary_paths(&FOUR_PATHS));
        trials.extend(binary_paths(&[(5.0, [0.02, 0.03])]));
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
