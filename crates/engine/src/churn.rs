//! Churn risk on the store: label, train with honest metrics and calibration,
//! score every active customer with reasons a person can act on.
//!
//! Label: a customer active before the cutoff (≥ 1 order in the
//! `active_days` before it) churned when they placed no order in the
//! `window_days` from the cutoff on (default cutoff: the latest fact time
//! minus the window). Or, with `label_attribute`, a churn column imported as
//! a customer attribute (yes/true/1) — then features use all the data and the
//! attribute itself is left out of them.
//!
//! Training: features as of the cutoff (see [`crate::features`], strictly
//! before it), stratified k-fold CV of the chosen model (`auto` picks by inner
//! CV inside each training fold) gives the metrics and out-of-fold
//! probabilities; Platt scaling fitted on those gives calibrated
//! probabilities and the calibration table; the final model is fitted on all
//! rows. Scoring uses features as of the latest data (not the training
//! cutoff). Reasons are per-group contributions to the log-odds (scaled by the
//! calibration slope), worded from each column's template.

use std::collections::BTreeMap;
use std::time::Instant;

use infogap_core::dataset::{AttrValue, Dataset};
use infogap_models::classify::{
    CandidateScore, Classifier, ClassifierConfig, DenseMatrix, ModelKind, PlattScaler,
};
use infogap_models::metrics::classification::{
    BinaryMetrics, CalibrationBin, calibration_table, expected_calibration_error,
};
use serde::{Deserialize, Serialize};

use crate::features::{
    DAY, FeatureColumn, FeatureOptions, FeatureTable, Wording, build_features, phrase, phrase_in,
};
use crate::{Engine, EngineError};

/// Options of `train churn`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnOptions {
    /// Cutoff (Unix seconds); default: latest fact time minus the window.
    pub cutoff: Option<i64>,
    /// Churn window after the cutoff (days).
    pub window_days: i64,
    /// Customers count as active when they ordered in this many days before the cutoff.
    pub active_days: i64,
    /// Model family.
    pub model: ModelKind,
    /// Seed of folds and subsampling.
    pub seed: u64,
    /// Folds of the cross-validation that measures the model.
    pub folds: usize,
    /// Use this customer attribute as the churn label instead of the purchase window.
    pub label_attribute: Option<String>,
    /// Feature pipeline options.
    pub features: FeatureOptions,
}

impl Default for ChurnOptions {
    fn default() -> Self {
        ChurnOptions {
            cutoff: None,
            window_days: 90,
            active_days: 365,
            model: ModelKind::Auto,
            seed: 0,
            folds: 5,
            label_attribute: None,
            features: FeatureOptions::default(),
        }
    }
}

/// The saved churn model (serialized as JSON into the store's blob).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnModel {
    /// Columns the classifier was trained on, in order.
    pub columns: Vec<FeatureColumn>,
    /// The classifier.
    pub classifier: Classifier,
    /// Calibration of its probabilities.
    pub platt: PlattScaler,
    /// Calibration table (calibrated out-of-fold probabilities vs observed churn).
    pub calibration: Vec<CalibrationBin>,
    /// Options it was trained with.
    pub options: ChurnOptions,
    /// The cutoff actually used (Unix seconds).
    pub cutoff: i64,
}

/// A driver of churn over the training population.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Driver {
    /// Feature group (`tickets`, `survey`, `attr:age_band`, …).
    pub feature: String,
    /// Mean contribution (log-odds) among churners minus among the retained.
    pub separation: f64,
}

/// What training measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnTrainReport {
    /// Saved model version (None when not saved).
    pub version: Option<i64>,
    /// Model chosen for the final fit.
    pub model: String,
    /// Cutoff date (UTC, `YYYY-MM-DD`).
    pub cutoff: String,
    /// Churn window (days).
    pub window_days: i64,
    /// How the label was defined.
    pub label: String,
    /// Customers in the training population.
    pub customers: usize,
    /// Of whom churned.
    pub churners: usize,
    /// Churn rate.
    pub churn_rate: f64,
    /// Cross-validated metrics (mean over folds).
    pub metrics: BinaryMetrics,
    /// Their standard deviation over folds.
    pub metrics_std: BinaryMetrics,
    /// Folds.
    pub folds: usize,
    /// Calibration table of calibrated out-of-fold probabilities.
    pub calibration: Vec<CalibrationBin>,
    /// Expected calibration error before and after Platt scaling.
    pub ece_raw: f64,
    /// Expected calibration error after Platt scaling.
    pub ece_calibrated: f64,
    /// Candidates scored by inner CV in the final fit (`auto`).
    pub candidates: Vec<CandidateScore>,
    /// Feature groups that separate churners from the retained most.
    pub drivers: Vec<Driver>,
    /// Number of feature columns.
    pub n_features: usize,
    /// Feature families left out (`--without`: an ablation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub without: Vec<String>,
    /// Wall-clock seconds of CV + final fit.
    pub fit_seconds: f64,
    /// What went wrong without stopping the training (a candidate `auto`
    /// left out because its fit failed its health check, and why).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// One reason of one customer's risk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Reason {
    /// Feature group.
    pub feature: String,
    /// Worded for a person, with the contribution, e.g. `3 support tickets in the last 90 days (+0.21)`.
    pub text: String,
    /// The same in Simplified Chinese, e.g. `最近 90 天 3 张客服工单 (+0.21)`.
    #[serde(default)]
    pub text_zh: String,
    /// The feature value behind the wording.
    pub value: f64,
    /// Contribution to the (calibrated) log-odds of churn.
    pub contribution: f64,
}

/// One scored customer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnRisk {
    /// Store id (left out of the analyst's pseudonymized lists).
    #[serde(default, skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub customer: i64,
    /// Display key.
    pub key: String,
    /// Calibrated churn probability.
    pub probability: f64,
    /// Top reasons (those pushing the risk up), strongest first.
    pub reasons: Vec<Reason>,
}

/// The risk table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChurnScores {
    /// Model version used.
    pub model_version: i64,
    /// Features as of this date (UTC).
    pub as_of: String,
    /// Customers scored.
    pub scored: usize,
    /// Highest risk first.
    pub customers: Vec<ChurnRisk>,
    /// Customers left out for lack of profiling consent, by reason.
    #[serde(default)]
    pub left_out: crate::privacy::consent::LeftOut,
    /// Whether keys are keyed-hash pseudonyms and ids left out (the
    /// analyst role under `[privacy] pseudonymize_analyst`).
    #[serde(default)]
    pub pseudonymized: bool,
    /// The model's calibration table.
    pub calibration: Vec<CalibrationBin>,
}

/// Formats Unix seconds as a UTC date.
pub fn fmt_date(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Parses `YYYY-MM-DD` (or RFC 3339) to Unix seconds (midnight UTC).
pub fn parse_date(s: &str) -> Result<i64, EngineError> {
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        && let Some(dt) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(dt.and_utc().timestamp());
    }
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.timestamp())
        .map_err(|_| EngineError::Invalid(format!("date `{s}`: expected YYYY-MM-DD")))
}

fn truthy(v: &AttrValue) -> Option<bool> {
    match v {
        AttrValue::Bool(b) => Some(*b),
        AttrValue::Int(i) => Some(*i != 0),
        AttrValue::Float(f) => Some(*f != 0.0),
        AttrValue::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" | "true" | "1" | "churn" | "churned" => Some(true),
            "no" | "n" | "false" | "0" | "retained" | "active" => Some(false),
            _ => None,
        },
    }
}

/// Training population, labels and features of a data set.
pub struct LabeledFeatures {
    /// Features of the population rows only.
    pub table: FeatureTable,
    /// Churned?
    pub labels: Vec<bool>,
    /// Cutoff used.
    pub cutoff: i64,
    /// How the label was defined.
    pub label: String,
}

/// Builds the labelled training table (no model).
pub fn labeled_features(ds: &Dataset, opts: &ChurnOptions) -> Result<LabeledFeatures, EngineError> {
    let max_t = ds
        .max_time()
        .ok_or_else(|| EngineError::Invalid("the store holds no dated facts".into()))?;
    let mut fopts = opts.features.clone();
    type LabelOf = Box<dyn Fn(usize) -> Option<bool>>;
    let (cutoff, label, labels_of): (i64, String, LabelOf) = match &opts.label_attribute {
        Some(attr) => {
            fopts.exclude_attributes.push(attr.clone());
            let cutoff = opts.cutoff.unwrap_or(max_t + 1);
            let a = attr.clone();
            let lab: Vec<Option<bool>> = ds
                .customers
                .iter()
                .map(|c| c.attributes.get(&a).and_then(truthy))
                .collect();
            (
                cutoff,
                format!("customer attribute `{attr}`"),
                Box::new(move |i| lab[i]),
            )
        }
        None => {
            if opts.window_days <= 0 {
                return Err(EngineError::Invalid("window-days must be > 0".into()));
            }
            let w = opts.window_days * DAY;
            let cutoff = opts.cutoff.unwrap_or(max_t + 1 - w);
            let active_from = cutoff - opts.active_days.max(1) * DAY;
            let index = ds.customer_index();
            let mut active = vec![false; ds.customers.len()];
            let mut bought_after = vec![false; ds.customers.len()];
            for o in &ds.orders {
                let (Some(t), Some(i)) = (o.time, index.pos(o.customer)) else {
                    continue;
                };
                if t < cutoff && t >= active_from {
                    active[i] = true;
                }
                if t >= cutoff && t < cutoff + w {
                    bought_after[i] = true;
                }
            }
            let lab: Vec<Option<bool>> = (0..ds.customers.len())
                .map(|i| active[i].then(|| !bought_after[i]))
                .collect();
            (
                cutoff,
                format!(
                    "no order in the {} days from {} (customers with an order in the {} days before)",
                    opts.window_days,
                    fmt_date(cutoff),
                    opts.active_days
                ),
                Box::new(move |i| lab[i]),
            )
        }
    };
    let full = build_features(ds, cutoff, &fopts);
    let rows: Vec<usize> = (0..ds.customers.len())
        .filter(|&i| labels_of(i).is_some())
        .collect();
    let labels: Vec<bool> = rows.iter().filter_map(|&i| labels_of(i)).collect();
    let d = full.columns.len();
    let mut data = Vec::with_capacity(rows.len() * d);
    for &i in &rows {
        data.extend_from_slice(full.row(i));
    }
    let table = FeatureTable {
        cutoff,
        customers: rows.iter().map(|&i| full.customers[i]).collect(),
        keys: rows.iter().map(|&i| full.keys[i].clone()).collect(),
        columns: full.columns,
        data,
    };
    Ok(LabeledFeatures {
        table,
        labels,
        cutoff,
        label,
    })
}

fn matrix(table: &FeatureTable) -> Result<DenseMatrix, EngineError> {
    Ok(DenseMatrix::new(
        table.customers.len(),
        table.data.clone(),
        table.names(),
    )?)
}

/// Trains on a data set (pure: nothing is saved).
pub fn train_on_dataset(
    ds: &Dataset,
    opts: &ChurnOptions,
) -> Result<(ChurnModel, ChurnTrainReport), EngineError> {
    let t0 = Instant::now();
    let lf = labeled_features(ds, opts)?;
    let y = &lf.labels;
    let churners = y.iter().filter(|&&b| b).count();
    if churners < opts.folds || y.len() - churners < opts.folds {
        return Err(EngineError::Invalid(format!(
            "too few customers to train churn: {} churned and {} stayed (need at least {} of each); try another --cutoff or --window-days",
            churners,
            y.len() - churners,
            opts.folds
        )));
    }
    let x = matrix(&lf.table)?;
    let mut cfg = ClassifierConfig::of_kind(opts.model, opts.seed);
    cfg.inner_folds = 3;
    // Outer CV for honest metrics, keeping the out-of-fold probabilities for calibration.
    let (cv_mean, cv_std, oof, mut warnings) =
        cross_validate_oof(&cfg, &x, y, opts.folds, opts.seed)?;
    let platt = PlattScaler::fit(&oof, y)?;
    if platt.a <= 0.0 {
        // Calibrating would flip or flatten every probability and every
        // reason's sign: the model has learned nothing that generalizes.
        return Err(EngineError::Model(infogap_models::ModelError::FitFailed(
            format!(
                "churn model ({}) on {} customers: its out-of-fold probabilities do not rise with churn \
             (cross-validated ROC AUC {:.3}, calibration slope {:.3}); try another --cutoff, --window-days or --model",
                cfg.kind,
                y.len(),
                cv_mean.roc_auc,
                platt.a
            ),
        )));
    }
    let calibrated: Vec<f64> = oof.iter().map(|&p| platt.apply(p)).collect();
    let ece_raw = expected_calibration_error(&calibration_table(y, &oof, 10));
    let calibration = calibration_table(y, &calibrated, 10);
    let ece_calibrated = expected_calibration_error(&calibration);
    let fit = cfg.fit(&x, y)?;
    warnings.extend(fit.warnings.iter().map(|w| format!("final fit: {w}")));
    let classifier = fit.model;
    // Global drivers: mean group contribution among churners minus among the retained.
    let mut sum_c: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (i, &yi) in y.iter().enumerate() {
        let c = classifier.contributions(x.row(i));
        let mut g: BTreeMap<&str, f64> = BTreeMap::new();
        for (j, v) in c.iter().enumerate() {
            *g.entry(lf.table.columns[j].group.as_str()).or_default() += v;
        }
        for (k, v) in g {
            let e = sum_c.entry(k.to_string()).or_default();
            if yi { e.0 += v } else { e.1 += v }
        }
    }
    let n_pos = churners.max(1) as f64;
    let n_neg = (y.len() - churners).max(1) as f64;
    let mut drivers: Vec<Driver> = sum_c
        .into_iter()
        .map(|(feature, (p, n))| Driver {
            feature,
            separation: platt.a * (p / n_pos - n / n_neg),
        })
        .collect();
    drivers.sort_by(|a, b| b.separation.total_cmp(&a.separation));
    let report = ChurnTrainReport {
        version: None,
        model: classifier.name(),
        cutoff: fmt_date(lf.cutoff),
        window_days: opts.window_days,
        label: lf.label.clone(),
        customers: y.len(),
        churners,
        churn_rate: churners as f64 / y.len() as f64,
        metrics: cv_mean,
        metrics_std: cv_std,
        folds: opts.folds,
        calibration: calibration.clone(),
        ece_raw,
        ece_calibrated,
        candidates: fit.candidates,
        drivers,
        n_features: x.n_cols,
        without: opts.features.without.clone(),
        fit_seconds: t0.elapsed().as_secs_f64(),
        warnings,
    };
    let model = ChurnModel {
        columns: lf.table.columns.clone(),
        classifier,
        platt,
        calibration,
        options: opts.clone(),
        cutoff: lf.cutoff,
    };
    crate::invariants::checked("train churn", (model, report))
}

/// Stratified k-fold CV: mean and std of the metrics over folds, the
/// out-of-fold probability of every row, and the folds' fit warnings.
pub(crate) fn cross_validate_oof(
    cfg: &ClassifierConfig,
    x: &DenseMatrix,
    y: &[bool],
    k: usize,
    seed: u64,
) -> Result<(BinaryMetrics, BinaryMetrics, Vec<f64>, Vec<String>), EngineError> {
    use infogap_models::classify::{split_indices, stratified_folds};
    let folds = stratified_folds(y, k, seed)?;
    let mut oof = vec![0.0; y.len()];
    let mut per_fold = Vec::with_capacity(k);
    let mut warnings = Vec::new();
    for f in 0..k {
        let (tr, te) = split_indices(&folds, f);
        let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
        let fit = cfg.fit(&x.select_rows(&tr), &ytr)?;
        warnings.extend(fit.warnings.iter().map(|w| format!("fold {}: {w}", f + 1)));
        let m = fit.model;
        let mut p = Vec::with_capacity(te.len());
        for &i in &te {
            oof[i] = m.predict_row(x.row(i));
            p.push(oof[i]);
        }
        let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
        per_fold.push(BinaryMetrics::compute(&yte, &p));
    }
    let stat = |g: fn(&BinaryMetrics) -> f64| {
        let v: Vec<f64> = per_fold.iter().map(g).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        (
            m,
            (v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / v.len() as f64).sqrt(),
        )
    };
    let (a, b, c, d, e) = (
        stat(|m| m.roc_auc),
        stat(|m| m.pr_auc),
        stat(|m| m.log_loss),
        stat(|m| m.brier),
        stat(|m| m.accuracy),
    );
    Ok((
        BinaryMetrics {
            roc_auc: a.0,
            pr_auc: b.0,
            log_loss: c.0,
            brier: d.0,
            accuracy: e.0,
        },
        BinaryMetrics {
            roc_auc: a.1,
            pr_auc: b.1,
            log_loss: c.1,
            brier: d.1,
            accuracy: e.1,
        },
        oof,
        warnings,
    ))
}

/// Scores customers with features as of `as_of`; returns the `top` highest risks
/// (all when `top == 0`) and how many were scored.
pub fn score_dataset(
    ds: &Dataset,
    model: &ChurnModel,
    as_of: i64,
    top: usize,
) -> (usize, Vec<ChurnRisk>) {
    let mut fopts = model.options.features.clone();
    if let Some(a) = &model.options.label_attribute {
        fopts.exclude_attributes.push(a.clone());
    }
    let table = build_features(ds, as_of, &fopts);
    // population: active customers (ordered in the active window) for the window label; everyone otherwise
    let active_from = as_of - model.options.active_days.max(1) * DAY;
    let mut active = std::collections::HashSet::new();
    for o in &ds.orders {
        if let Some(t) = o.time
            && t < as_of
            && t >= active_from
        {
            active.insert(o.customer);
        }
    }
    let names: Vec<String> = model.columns.iter().map(|c| c.name.clone()).collect();
    let aligned = table.aligned(&names);
    let d = names.len();
    let mut out: Vec<ChurnRisk> = Vec::new();
    for i in 0..table.customers.len() {
        if model.options.label_attribute.is_none() && !active.contains(&table.customers[i]) {
            continue;
        }
        let row = &aligned[i * d..(i + 1) * d];
        let raw = model.classifier.predict_row(row);
        out.push(ChurnRisk {
            customer: table.customers[i],
            key: table.keys[i].clone(),
            probability: model.platt.apply(raw),
            reasons: Vec::new(),
        });
    }
    let scored = out.len();
    out.sort_by(|a, b| {
        b.probability
            .total_cmp(&a.probability)
            .then(a.customer.cmp(&b.customer))
    });
    if top > 0 {
        out.truncate(top);
    }
    let pos: std::collections::HashMap<i64, usize> = table
        .customers
        .iter()
        .enumerate()
        .map(|(i, &c)| (c, i))
        .collect();
    for r in &mut out {
        if let Some(&i) = pos.get(&r.customer) {
            r.reasons = reasons(model, &aligned[i * d..(i + 1) * d], 3);
        }
    }
    (scored, out)
}

/// Top `k` reasons pushing one row's risk up, worded.
///
/// A reason is a feature group whose contribution raises the risk; it is
/// worded from the column of the group that raises it most and whose value
/// can be put in words ([`phrase`]: a placeholder value, such as the gap of
/// a one-order customer or an imputed survey score, cannot), with the second
/// such column when it raises the risk too. A group none of whose columns can
/// be worded truthfully is not offered; the next one is.
pub fn reasons(model: &ChurnModel, row: &[f64], k: usize) -> Vec<Reason> {
    let c = model.classifier.contributions(row);
    let mut groups: Vec<(String, f64, Vec<usize>)> = Vec::new();
    for (j, col) in model.columns.iter().enumerate() {
        match groups.iter_mut().find(|g| g.0 == col.group) {
            Some(g) => {
                g.1 += c[j];
                g.2.push(j);
            }
            None => groups.push((col.group.clone(), c[j], vec![j])),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    let other = |name: &str| {
        model
            .columns
            .iter()
            .position(|col| col.name == name)
            .map(|j| row[j])
    };
    groups
        .into_iter()
        .filter(|g| g.1 * model.platt.a > 0.01)
        .filter_map(|(group, contrib, cols)| {
            let contribution = contrib * model.platt.a;
            let is_level = cols.iter().all(|&j| model.columns[j].name.contains('='));
            let (text, text_zh, value) = if is_level {
                match cols.iter().find(|&&j| row[j] == 1.0) {
                    Some(&j) => {
                        let col = &model.columns[j];
                        (
                            col.template.clone(),
                            phrase_in(Wording::Zh, col, 1.0, &other)
                                .unwrap_or_else(|| col.template.clone()),
                            1.0,
                        )
                    }
                    None => {
                        let attr = group.trim_start_matches("attr:");
                        (
                            format!("{attr} is another value or not recorded"),
                            format!("{attr} 为其他值或未记录"),
                            0.0,
                        )
                    }
                }
            } else {
                // the columns of the group that push the risk up most and can be worded
                let mut by: Vec<usize> = cols.clone();
                by.sort_by(|&a, &b| c[b].total_cmp(&c[a]));
                let mut worded = by.iter().enumerate().filter_map(|(rank, &j)| {
                    // the group's top column may carry it with a small share;
                    // any other must raise the risk itself
                    if rank > 0 && c[j] <= 0.01 {
                        return None;
                    }
                    let col = &model.columns[j];
                    let en = phrase(col, row[j], &other)?;
                    let zh =
                        phrase_in(Wording::Zh, col, row[j], &other).unwrap_or_else(|| en.clone());
                    Some((j, en, zh))
                });
                let (j, mut text, mut text_zh) = worded.next()?;
                if let Some((k, second, second_zh)) = worded.next()
                    && c[k] > 0.01
                    && !model.columns[j].name.ends_with("_trend")
                    && !model.columns[k].name.ends_with("_trend")
                {
                    text = format!("{text}; {second}");
                    text_zh = format!("{text_zh}；{second_zh}");
                }
                (text, text_zh, row[j])
            };
            Some(Reason {
                feature: group,
                text: format!("{text} ({contribution:+.2})"),
                text_zh: format!("{text_zh} ({contribution:+.2})"),
                value,
                contribution,
            })
        })
        .take(k)
        .collect()
}

/// `train churn`: trains on the store and saves the model as kind `churn`.
pub fn train(engine: &Engine, opts: &ChurnOptions) -> Result<ChurnTrainReport, EngineError> {
    let ds = engine.dataset()?;
    let (model, mut report) = train_on_dataset(&ds, opts)?;
    let blob = serde_json::to_vec(&model)
        .map_err(|e| EngineError::Invalid(format!("serializing churn model: {e}")))?;
    let params = serde_json::to_value(opts).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let metrics = serde_json::to_value(&report).map_err(|e| EngineError::Invalid(e.to_string()))?;
    let rec = engine.save_model("churn", &params, &metrics, &blob)?;
    report.version = Some(rec.version);
    Ok(report)
}

/// `churn --top N`: scores with the saved model as of the latest data.
pub fn risk(
    engine: &Engine,
    access: &crate::access::Access,
    top: usize,
) -> Result<ChurnScores, EngineError> {
    let rec = engine.load_model("churn")?.ok_or_else(|| {
        EngineError::NotFound("no churn model in the store: run `infogap train churn` first".into())
    })?;
    let model: ChurnModel = serde_json::from_slice(&rec.blob).map_err(|e| {
        EngineError::Invalid(format!(
            "saved churn model v{} is unreadable: {e}",
            rec.version
        ))
    })?;
    let ds = engine.dataset()?;
    let as_of = ds.max_time().map_or(model.cutoff, |t| t + 1);
    let (scored, mut customers) = score_dataset(&ds, &model, as_of, 0);
    let left_out = crate::share::share_ranked_for(
        engine,
        access,
        infogap_core::privacy::PROFILING,
        "churn.read",
        &mut customers,
        top,
        |r| r.customer,
        |r| &mut r.key,
    )?;
    let pseudonymized = crate::privacy::aggregate::pseudonymize(engine, access, &mut customers)?;
    crate::invariants::checked(
        "churn",
        ChurnScores {
            model_version: rec.version,
            as_of: fmt_date(as_of),
            scored,
            customers,
            left_out,
            pseudonymized,
            calibration: model.calibration,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_core::dataset::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const END: i64 = 1_767_225_600; // 2026-01-01

    /// Customers whose churn is driven by recent tickets, a low survey score and
    /// a decline in orders before the cutoff; age band is drawn independently.
    pub(crate) fn planted(n: usize, seed: u64) -> Dataset {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cutoff = END - 90 * DAY;
        let mut ds = Dataset::default();
        for c in 0..8 {
            ds.products.push(ProductInfo {
                id: c,
                key: format!("p{c}"),
                name: None,
                category: Some(format!("cat{}", c % 4)),
                price: Some(10.0),
            });
        }
        let bands = ["18-29", "30-44", "45-59", "60+"];
        let mut oid = 0;
        for id in 0..n as i64 {
            let mut attributes = BTreeMap::new();
            attributes.insert(
                "age_band".to_string(),
                AttrValue::Text(bands[rng.random_range(0..4)].into()),
            );
            ds.customers.push(CustomerInfo {
                id,
                key: format!("crm:{id}"),
                attributes,
            });
            let tickets = (0..6).filter(|_| rng.random::<f64>() < 0.2).count() as f64;
            let score = rng.random_range(1..=5) as f64;
            let decline = rng.random::<f64>() < 0.3;
            let z = -1.6 + 0.8 * tickets + 0.6 * (3.0 - score) + 1.6 * f64::from(u8::from(decline));
            let churn = rng.random::<f64>() < 1.0 / (1.0 + (-z).exp());
            let gap = rng.random_range(10.0..25.0);
            let mut t = cutoff - 400 * DAY;
            let mut push = |t: i64, ds: &mut Dataset, rng: &mut ChaCha8Rng| {
                let amount = rng.random_range(10.0..60.0);
                ds.orders.push(OrderFact {
                    id: oid,
                    customer: id,
                    time: Some(t),
                    amount,
                    discount: 0.0,
                });
                ds.lines.push(LineFact {
                    order: oid,
                    customer: id,
                    product: Some(rng.random_range(0..8)),
                    quantity: 1.0,
                    amount,
                    discount: 0.0,
                    time: Some(t),
                });
                oid += 1;
            };
            loop {
                let g = if decline && t > cutoff - 100 * DAY {
                    gap * 4.0
                } else {
                    gap
                };
                t += (rng.random_range(0.5..1.5) * g * DAY as f64) as i64;
                if t >= cutoff {
                    break;
                }
                push(t, &mut ds, &mut rng);
            }
            if !churn {
                push(cutoff + rng.random_range(1..80) * DAY, &mut ds, &mut rng);
            }
            for _ in 0..tickets as usize {
                ds.feedback.push(FeedbackFact {
                    customer: id,
                    kind: "ticket".into(),
                    score: None,
                    text: None,
                    channel: None,
                    time: Some(cutoff - rng.random_range(1..85) * DAY),
                });
            }
            ds.feedback.push(FeedbackFact {
                customer: id,
                kind: "survey".into(),
                score: Some(score),
                text: None,
                channel: None,
                time: Some(cutoff - rng.random_range(1..200) * DAY),
            });
        }
        // the data ends on END
        ds.events.push(EventFact {
            customer: 0,
            kind: "view".into(),
            product: None,
            value: None,
            channel: Some("web".into()),
            time: Some(END - 1),
        });
        ds
    }

    #[test]
    fn planted_drivers_are_recovered_and_age_band_is_not_one() {
        let ds = planted(1200, 5);
        let opts = ChurnOptions {
            model: ModelKind::Logreg,
            ..Default::default()
        };
        let (model, report) = train_on_dataset(&ds, &opts).unwrap();
        assert_eq!(report.cutoff, fmt_date(END - 90 * DAY));
        assert!(
            report.metrics.roc_auc > 0.75,
            "auc {}",
            report.metrics.roc_auc
        );
        let top: Vec<&str> = report
            .drivers
            .iter()
            .take(4)
            .map(|d| d.feature.as_str())
            .collect();
        assert!(top.contains(&"tickets"), "{:?}", report.drivers);
        assert!(top.contains(&"survey"), "{:?}", report.drivers);
        assert!(
            top.iter().any(|f| [
                "order_trend",
                "recency_days",
                "overdue_ratio",
                "ipt_mean_days"
            ]
            .contains(f)),
            "{:?}",
            report.drivers
        );
        let age = report
            .drivers
            .iter()
            .find(|d| d.feature == "attr:age_band")
            .unwrap();
        let tickets = report
            .drivers
            .iter()
            .find(|d| d.feature == "tickets")
            .unwrap();
        assert!(
            age.separation.abs() < tickets.separation / 4.0,
            "{:?}",
            report.drivers
        );
        // Calibration table covers everyone and calibrated ECE is small.
        assert_eq!(
            report.calibration.iter().map(|b| b.count).sum::<usize>(),
            report.customers
        );
        assert!(
            report.ece_calibrated < 0.06,
            "ece {}",
            report.ece_calibrated
        );
        // Scoring as of the latest data works on the active customers...
        let (scored_now, now) = score_dataset(&ds, &model, ds.max_time().unwrap() + 1, 0);
        assert!(scored_now > 300 && now.len() == scored_now);
        // ...and as of the cutoff (where the planted drivers live) the reasons name them.
        let (scored, risks) = score_dataset(&ds, &model, model.cutoff, 50);
        assert!(scored > 500);
        assert_eq!(risks.len(), 50);
        assert!(
            risks
                .windows(2)
                .all(|w| w[0].probability >= w[1].probability)
        );
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for r in &risks {
            assert!(!r.reasons.is_empty());
            for x in &r.reasons {
                *counts.entry(x.feature.clone()).or_default() += 1;
                assert!(x.text.contains("(+"), "{}", x.text);
            }
        }
        let driver_hits = [
            "tickets",
            "survey",
            "order_trend",
            "recency_days",
            "overdue_ratio",
        ]
        .iter()
        .map(|k| counts.get(*k).copied().unwrap_or(0))
        .sum::<usize>();
        let age_hits = counts.get("attr:age_band").copied().unwrap_or(0);
        assert!(driver_hits > 5 * age_hits.max(1), "{counts:?}");
        assert!(
            risks
                .iter()
                .any(|r| r.reasons.iter().any(|x| x.text.contains("support ticket")))
        );
    }

    #[test]
    fn label_window_and_attribute_label() {
        let ds = planted(300, 9);
        let lf = labeled_features(&ds, &ChurnOptions::default()).unwrap();
        assert_eq!(lf.cutoff, END - 90 * DAY);
        let rate = lf.labels.iter().filter(|&&b| b).count() as f64 / lf.labels.len() as f64;
        assert!(rate > 0.2 && rate < 0.8, "{rate}");
        // A churn column from a source attribute.
        let mut ds2 = ds.clone();
        for (i, c) in ds2.customers.iter_mut().enumerate() {
            c.attributes.insert(
                "churned".into(),
                AttrValue::Text(if i % 3 == 0 { "Yes" } else { "No" }.into()),
            );
        }
        let opts = ChurnOptions {
            label_attribute: Some("churned".into()),
            ..Default::default()
        };
        let lf2 = labeled_features(&ds2, &opts).unwrap();
        assert_eq!(lf2.labels.len(), 300);
        assert_eq!(lf2.labels.iter().filter(|&&b| b).count(), 100);
        assert!(
            lf2.table
                .columns
                .iter()
                .all(|c| !c.name.contains("churned")),
            "the label is not a feature"
        );
        assert!(parse_date("2025-10-03").is_ok());
        assert!(parse_date("03/10/2025").is_err());
    }
}
