//! `eval ask-next`: how fast three acquisition policies recover the decision,
//! by stratified k-fold on a binary target.
//!
//! Why here: the command is a thin shell over this pure function, so the
//! protocol is testable on planted tables. Per fold the model is fitted on the
//! training rows; each test row starts with only the `known` features and
//! each policy reveals one of the row's true values per step; after each step
//! every test row is scored by the same fitted model, and the curve is the
//! ROC AUC over all test rows (pooled over folds) after 0..K acquisitions.
//! `global_order` is chosen on the training fold only: greedy forward
//! selection maximizing the mean validation AUC over `inner_folds` inner
//! stratified folds (a model fitted on each inner training part).

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use super::model::{AcqModel, AcqState, GainScratch};
use super::{AcqOptions, AcqTable, Criterion};
use crate::ModelError;
use crate::classify::{split_indices, stratified_folds};
use crate::metrics::classification::roc_auc;

/// One value per policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerPolicy<T> {
    /// Per-row expected gain under the model (EDDI).
    pub ask_next: T,
    /// The best single fixed order (greedy forward selection on the training folds).
    pub global_order: T,
    /// A seeded random order per row.
    pub random: T,
}

/// How often a feature was chosen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureCount {
    /// Feature name.
    pub feature: String,
    /// Rows.
    pub rows: usize,
    /// Fraction of the test rows.
    pub fraction: f64,
}

/// Wall-clock seconds of each phase (summed over folds).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcqSeconds {
    /// Fitting the fold models.
    pub fit: f64,
    /// Choosing `global_order` (inner fits and greedy selection).
    pub global_order_selection: f64,
    /// The `ask_next` policy over every test row (decisions, updates, scoring).
    pub ask_next: f64,
    /// Everything.
    pub total: f64,
}

/// The fitted model, described.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcqModelReport {
    /// `latent-class mixture per class over binned features`.
    pub kind: String,
    /// What `ask_next` maximizes.
    pub criterion: Criterion,
    /// Components per class (negative, positive) in each fold.
    pub components_per_class: Vec<Vec<usize>>,
    /// Bins of each feature in the first fold.
    pub bins_per_feature: Vec<usize>,
}

/// The result of [`evaluate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AcqEvalReport {
    /// Rows.
    pub rows: usize,
    /// Positive rows.
    pub positives: usize,
    /// Feature names.
    pub features: Vec<String>,
    /// Features known from the start.
    pub known: Vec<String>,
    /// Features that start unknown.
    pub unknown: usize,
    /// Acquisitions per row (K).
    pub budget: usize,
    /// Stratified folds.
    pub folds: usize,
    /// Seed.
    pub seed: u64,
    /// ROC AUC over all test rows after 0..K acquisitions (K + 1 values).
    pub curves: PerPolicy<Vec<f64>>,
    /// Mean of each curve.
    pub area: PerPolicy<f64>,
    /// Standard deviation over folds of each policy's per-fold area.
    pub area_std: PerPolicy<f64>,
    /// Per-fold areas (each fold's curve is the AUC over its own test rows).
    pub area_per_fold: PerPolicy<Vec<f64>>,
    /// ROC AUC with every feature known (pooled over folds).
    pub all_features_auc: f64,
    /// Per-fold ROC AUC with every feature known.
    pub all_features_auc_per_fold: Vec<f64>,
    /// The global order chosen in each fold (first `budget` features).
    pub global_order: Vec<Vec<String>>,
    /// How often `ask_next` asked each feature first (most frequent first).
    pub first_asked: Vec<FeatureCount>,
    /// How often `ask_next` asked each feature within the budget.
    pub asked: Vec<FeatureCount>,
    /// Acquisition decisions of `ask_next` (rows × budget).
    pub decisions: usize,
    /// Decisions per second of wall-clock of the `ask_next` policy.
    pub decisions_per_second: f64,
    /// Wall-clock seconds.
    pub seconds: AcqSeconds,
    /// Threads used.
    pub threads: usize,
    /// The model.
    pub model: AcqModelReport,
    /// The protocol, in words.
    pub protocol: String,
    /// Anything the reader should know.
    pub warnings: Vec<String>,
}

/// [`evaluate_with`] with the default options and `seed`.
pub fn evaluate(
    x: &AcqTable,
    y: &[bool],
    known: &[usize],
    budget: usize,
    folds: usize,
    seed: u64,
) -> Result<AcqEvalReport, ModelError> {
    evaluate_with(
        x,
        y,
        known,
        budget,
        folds,
        &AcqOptions {
            seed,
            ..AcqOptions::default()
        },
    )
}

/// Scores of one test row: `[policy][step]`.
struct RowScores {
    ask: Vec<f64>,
    global: Vec<f64>,
    random: Vec<f64>,
    asked: Vec<usize>,
}

/// Evaluates the three policies (see the module docs). `budget` is clamped to the
/// number of unknown features (with a warning).
pub fn evaluate_with(
    x: &AcqTable,
    y: &[bool],
    known: &[usize],
    budget: usize,
    folds: usize,
    opts: &AcqOptions,
) -> Result<AcqEvalReport, ModelError> {
    let t_total = Instant::now();
    x.validate()?;
    opts.validate()?;
    let d = x.names.len();
    if y.len() != x.n_rows {
        return Err(ModelError::InvalidInput(format!(
            "{} labels for {} rows",
            y.len(),
            x.n_rows
        )));
    }
    if let Some(&j) = known.iter().find(|&&j| j >= d) {
        return Err(ModelError::InvalidParameter {
            name: "known".into(),
            reason: format!("feature index {j} out of 0..{d}"),
        });
    }
    let mut is_known = vec![false; d];
    for &j in known {
        is_known[j] = true;
    }
    let unknown: Vec<usize> = (0..d).filter(|&j| !is_known[j]).collect();
    if unknown.is_empty() {
        return Err(ModelError::InvalidParameter {
            name: "known".into(),
            reason: "every feature is known; nothing is left to acquire".into(),
        });
    }
    if budget == 0 {
        return Err(ModelError::InvalidParameter {
            name: "budget".into(),
            reason: "must be at least 1".into(),
        });
    }
    if folds < 2 {
        return Err(ModelError::InvalidParameter {
            name: "folds".into(),
            reason: format!("{folds}; need at least 2"),
        });
    }
    let mut warnings = Vec::new();
    let budget = if budget > unknown.len() {
        warnings.push(format!(
            "budget {budget} is more than the {} unknown features; using {}",
            unknown.len(),
            unknown.len()
        ));
        unknown.len()
    } else {
        budget
    };
    let positives = y.iter().filter(|&&v| v).count();
    let negatives = y.len() - positives;
    // Each inner training part needs rows of both classes.
    let need = (folds * opts.inner_folds).max(2 * folds);
    if positives.min(negatives) < need {
        return Err(ModelError::InvalidInput(format!(
            "too few rows per class: {positives} positive, {negatives} negative; \
             {folds} folds (each with {} inner folds) need at least {need} of each",
            opts.inner_folds
        )));
    }
    let fold_of = stratified_folds(y, folds, opts.seed)?;
    let n = x.n_rows;
    let mut scores: Vec<Option<RowScores>> = (0..n).map(|_| None).collect();
    let mut seconds = AcqSeconds {
        fit: 0.0,
        global_order_selection: 0.0,
        ask_next: 0.0,
        total: 0.0,
    };
    let mut orders = Vec::with_capacity(folds);
    let mut components = Vec::with_capacity(folds);
    let mut bins_per_feature = Vec::new();
    let mut all_auc_fold = Vec::with_capacity(folds);
    let mut all_scores = vec![0.0; n];
    for f in 0..folds {
        let (tr, te) = split_indices(&fold_of, f);
        let xtr = x.select_rows(&tr);
        let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
        let fold_opts = AcqOptions {
            seed: opts.seed.wrapping_add(1000 * f as u64 + 1),
            ..opts.clone()
        };
        let t = Instant::now();
        let model = fit_binary(&xtr, &ytr, &fold_opts).map_err(|e| with_fold(e, f, tr.len()))?;
        seconds.fit += t.elapsed().as_secs_f64();
        components.push(model.summary().components_per_class.clone());
        if bins_per_feature.is_empty() {
            bins_per_feature = model.summary().bins_per_feature.clone();
        }

        let t = Instant::now();
        let order = choose_global_order(&xtr, &ytr, known, &unknown, budget, &fold_opts)
            .map_err(|e| with_fold(e, f, tr.len()))?;
        seconds.global_order_selection += t.elapsed().as_secs_f64();
        orders.push(order.iter().map(|&j| x.names[j].clone()).collect());

        // Every feature known.
        let full: Vec<f64> = te.par_iter().map(|&i| model.predict(x.row(i))[1]).collect();
        let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
        all_auc_fold.push(roc_auc(&yte, &full).unwrap_or(0.5));
        for (k, &i) in te.iter().enumerate() {
            all_scores[i] = full[k];
        }

        let start = |i: usize| {
            let row = x.row(i);
            let mut st = model.state(&[]);
            for &j in known {
                model.observe(&mut st, j, row[j]);
            }
            st
        };
        // ask_next, timed alone.
        let t = Instant::now();
        let ask: Vec<(Vec<f64>, Vec<usize>)> = te
            .par_iter()
            .map_init(GainScratch::default, |scratch, &i| {
                let row = x.row(i);
                let mut st = start(i);
                let mut cand = unknown.clone();
                let mut curve = Vec::with_capacity(budget + 1);
                let mut asked = Vec::with_capacity(budget);
                curve.push(model.positive_prob(&st, scratch));
                for s in 0..budget {
                    // Per-row choice for the first `free_steps` steps, then
                    // the learned prior (the global order of the training fold).
                    let next = if s < opts.free_steps {
                        None
                    } else {
                        order.iter().copied().find(|j| cand.contains(j))
                    };
                    let Some(j) =
                        next.or_else(|| model.best_candidate(&st, &cand, opts.criterion, scratch))
                    else {
                        break;
                    };
                    cand.retain(|&c| c != j);
                    model.observe(&mut st, j, row[j]);
                    asked.push(j);
                    curve.push(model.positive_prob(&st, scratch));
                }
                (curve, asked)
            })
            .collect();
        seconds.ask_next += t.elapsed().as_secs_f64();

        let follow = |st: &mut AcqState, row: &[f64], ord: &[usize], scratch: &mut GainScratch| {
            let mut curve = Vec::with_capacity(budget + 1);
            curve.push(model.positive_prob(st, scratch));
            for &j in ord.iter().take(budget) {
                model.observe(st, j, row[j]);
                curve.push(model.positive_prob(st, scratch));
            }
            curve
        };
        let others: Vec<(Vec<f64>, Vec<f64>)> = te
            .par_iter()
            .map_init(GainScratch::default, |scratch, &i| {
                let row = x.row(i);
                let mut st = start(i);
                let global = follow(&mut st, row, &order, scratch);
                let mut rng = ChaCha8Rng::seed_from_u64(
                    opts.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                );
                let mut perm = unknown.clone();
                perm.shuffle(&mut rng);
                let mut st = start(i);
                let random = follow(&mut st, row, &perm, scratch);
                (global, random)
            })
            .collect();
        for ((&i, (a, asked)), (g, r)) in te.iter().zip(ask).zip(others) {
            scores[i] = Some(RowScores {
                ask: a,
                global: g,
                random: r,
                asked,
            });
        }
    }
    let scores: Vec<RowScores> = scores
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ModelError::InvalidInput("a row was in no test fold".into()))?;

    let steps = budget + 1;
    let curve_of = |rows: &[usize], pick: fn(&RowScores) -> &[f64]| -> Vec<f64> {
        let yy: Vec<bool> = rows.iter().map(|&i| y[i]).collect();
        (0..steps)
            .map(|s| {
                let sc: Vec<f64> = rows.iter().map(|&i| pick(&scores[i])[s]).collect();
                roc_auc(&yy, &sc).unwrap_or(0.5)
            })
            .collect()
    };
    let all_rows: Vec<usize> = (0..n).collect();
    fn pick_a(r: &RowScores) -> &[f64] {
        &r.ask
    }
    fn pick_g(r: &RowScores) -> &[f64] {
        &r.global
    }
    fn pick_r(r: &RowScores) -> &[f64] {
        &r.random
    }
    let curves = PerPolicy {
        ask_next: curve_of(&all_rows, pick_a),
        global_order: curve_of(&all_rows, pick_g),
        random: curve_of(&all_rows, pick_r),
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let area = PerPolicy {
        ask_next: mean(&curves.ask_next),
        global_order: mean(&curves.global_order),
        random: mean(&curves.random),
    };
    let mut area_per_fold = PerPolicy {
        ask_next: Vec::new(),
        global_order: Vec::new(),
        random: Vec::new(),
    };
    for f in 0..folds {
        let (_, te) = split_indices(&fold_of, f);
        area_per_fold.ask_next.push(mean(&curve_of(&te, pick_a)));
        area_per_fold
            .global_order
            .push(mean(&curve_of(&te, pick_g)));
        area_per_fold.random.push(mean(&curve_of(&te, pick_r)));
    }
    let std = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / v.len().max(1) as f64).sqrt()
    };
    let area_std = PerPolicy {
        ask_next: std(&area_per_fold.ask_next),
        global_order: std(&area_per_fold.global_order),
        random: std(&area_per_fold.random),
    };
    let count = |pick: &dyn Fn(&RowScores) -> Vec<usize>| -> Vec<FeatureCount> {
        let mut c = vec![0usize; d];
        for r in &scores {
            for j in pick(r) {
                c[j] += 1;
            }
        }
        let mut out: Vec<FeatureCount> = (0..d)
            .filter(|&j| c[j] > 0)
            .map(|j| FeatureCount {
                feature: x.names[j].clone(),
                rows: c[j],
                fraction: c[j] as f64 / n as f64,
            })
            .collect();
        out.sort_by(|a, b| b.rows.cmp(&a.rows).then(a.feature.cmp(&b.feature)));
        out
    };
    let first_asked = count(&|r| r.asked.first().copied().into_iter().collect());
    let asked = count(&|r| r.asked.clone());
    let decisions: usize = scores.iter().map(|r| r.asked.len()).sum();
    let all_features_auc = roc_auc(y, &all_scores).unwrap_or(0.5);
    seconds.total = t_total.elapsed().as_secs_f64();
    let decisions_per_second = decisions as f64 / seconds.ask_next.max(1e-9);
    Ok(AcqEvalReport {
        rows: n,
        positives,
        features: x.names.clone(),
        known: known.iter().map(|&j| x.names[j].clone()).collect(),
        unknown: unknown.len(),
        budget,
        folds,
        seed: opts.seed,
        curves,
        area,
        area_std,
        area_per_fold,
        all_features_auc,
        all_features_auc_per_fold: all_auc_fold,
        global_order: orders,
        first_asked,
        asked,
        decisions,
        decisions_per_second,
        seconds,
        threads: rayon::current_num_threads(),
        model: AcqModelReport {
            kind: "latent-class mixture per class over binned features (EM)".into(),
            criterion: opts.criterion,
            components_per_class: components,
            bins_per_feature,
        },
        protocol: format!(
            "{folds} stratified folds (seed {}); per fold the model is fitted on the training rows; \
             each test row starts with only the known features and each policy reveals one true \
             value per step for {budget} steps; curves are ROC AUC over all test rows after each \
             step; global_order is chosen by greedy forward selection of mean validation ROC AUC \
             over {} inner stratified folds of the training rows; random is a seeded random order \
             per row; decisions_per_second = ask_next decisions / wall-clock seconds of the \
             ask_next policy on {} threads",
            opts.seed,
            opts.inner_folds,
            rayon::current_num_threads()
        ),
        warnings,
    })
}

fn with_fold(e: ModelError, f: usize, rows: usize) -> ModelError {
    match e {
        ModelError::FitFailed(why) => {
            ModelError::FitFailed(format!("fold {} ({rows} training rows): {why}", f + 1))
        }
        other => other,
    }
}

fn fit_binary(x: &AcqTable, y: &[bool], opts: &AcqOptions) -> Result<AcqModel, ModelError> {
    let yy: Vec<usize> = y.iter().map(|&b| usize::from(b)).collect();
    AcqModel::fit(x, &yy, 2, opts)
}

/// Greedy forward selection of a fixed order of `budget` features among
/// `unknown`, maximizing the mean validation ROC AUC over inner folds of the
/// training rows (`x`, `y` are the training fold only).
fn choose_global_order(
    x: &AcqTable,
    y: &[bool],
    known: &[usize],
    unknown: &[usize],
    budget: usize,
    opts: &AcqOptions,
) -> Result<Vec<usize>, ModelError> {
    let inner = stratified_folds(y, opts.inner_folds, opts.seed.wrapping_add(77))?;
    struct Part {
        model: AcqModel,
        rows: Vec<usize>,
        y: Vec<bool>,
        states: Vec<AcqState>,
    }
    let mut parts = Vec::with_capacity(opts.inner_folds);
    for g in 0..opts.inner_folds {
        let (itr, iva) = split_indices(&inner, g);
        let ytr: Vec<bool> = itr.iter().map(|&i| y[i]).collect();
        let model = fit_binary(
            &x.select_rows(&itr),
            &ytr,
            &AcqOptions {
                seed: opts.seed.wrapping_add(100 + g as u64),
                ..opts.clone()
            },
        )?;
        let states = iva
            .iter()
            .map(|&i| {
                let mut st = model.state(&[]);
                for &j in known {
                    model.observe(&mut st, j, x.get(i, j));
                }
                st
            })
            .collect();
        parts.push(Part {
            y: iva.iter().map(|&i| y[i]).collect(),
            rows: iva,
            model,
            states,
        });
    }
    let mut order = Vec::with_capacity(budget);
    let mut left: Vec<usize> = unknown.to_vec();
    for _ in 0..budget {
        let aucs: Vec<f64> = left
            .par_iter()
            .map_init(GainScratch::default, |scratch, &j| {
                let mut s = 0.0;
                for p in &parts {
                    let sc: Vec<f64> = p
                        .rows
                        .iter()
                        .zip(&p.states)
                        .map(|(&i, st)| p.model.positive_prob_after(st, j, x.get(i, j), scratch))
                        .collect();
                    s += roc_auc(&p.y, &sc).unwrap_or(0.5);
                }
                s / parts.len() as f64
            })
            .collect();
        let mut best = 0;
        for (k, &a) in aucs.iter().enumerate() {
            if a > aucs[best] {
                best = k;
            }
        }
        let j = left.remove(best);
        for p in &mut parts {
            for (&i, st) in p.rows.iter().zip(p.states.iter_mut()) {
                p.model.observe(st, j, x.get(i, j));
            }
        }
        order.push(j);
    }
    Ok(order)
}
