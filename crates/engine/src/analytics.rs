//! Analytics use cases: any-CSV tables for the model families, purchase-amount
//! regression, segments (RFM and k-means) and Bayes from the store.
//!
//! Owns the glue between the file reader (`infogap_ingest::table`), the pure
//! model families (`infogap_models::{tabular, regress, segment, bayes}`) and
//! the store's [`Dataset`]:
//! - [`read_frame`] / [`frame_from_table`]: what `eval classify` and
//!   `eval regress` use to get a typed [`Frame`] from "any CSV";
//! - [`eval_regress`]: OLS/ridge on a table, coefficients in raw units with
//!   standard errors, plus out-of-fold R²/RMSE (encoding fitted per fold);
//! - [`train_amount`]: next-period spend per customer from the feature
//!   pipeline (`crate::features`), saved in the store as model kind `amount`;
//! - [`segments`] / [`export_segment`]: RFM or k-means segments with profiles;
//! - [`bayes_from_store`]: P(outcome | event) estimated by counting customers,
//!   with a Wilson interval.
//!
//! Time convention: "now" is the latest fact time in the store
//! ([`Dataset::max_time`]), so reports on historical data make sense.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::time::Instant;

use infogap_core::dataset::{Dataset, IdIndex};
use infogap_ingest::table::{self, Table};
use infogap_models::Predictor;
use infogap_models::bayes::{self, Evidence};
use infogap_models::metrics::regression as rm;
use infogap_models::regress::{self, LinearFit, LinearRegression};
use infogap_models::segment::{self, KMeans};
use infogap_models::tabular::{
    Column, ColumnData, Encoder, EncoderOptions, EncodingReport, Frame, Matrix, PrepareReport,
    TargetSpec, prepare,
};
use serde::Serialize;

use crate::features::{self, DAY, FeatureOptions};
use crate::{Engine, EngineError};

// ───────────────────────────── tables ─────────────────────────────

/// Converts a table read by `infogap_ingest::table` into the model layer's [`Frame`].
pub fn frame_from_table(t: Table) -> Result<Frame, EngineError> {
    let cols = t
        .columns
        .into_iter()
        .map(|c| Column {
            name: c.name,
            data: match c.data {
                table::ColumnData::Numeric(v) => ColumnData::Numeric(v),
                table::ColumnData::Categorical(v) => ColumnData::Categorical(v),
            },
        })
        .collect();
    Ok(Frame::new(cols)?)
}

/// Reads any delimited file (delimiter detected, quotes, CRLF, BOM, blanks =
/// missing, types inferred) into a [`Frame`]. Errors name file, line, column
/// and reason.
pub fn read_frame(path: &Path) -> Result<Frame, EngineError> {
    let t = table::read_table(path).map_err(|e| EngineError::Invalid(e.to_string()))?;
    frame_from_table(t)
}

// ───────────────────────────── regression ─────────────────────────────

/// Options of [`eval_regress`].
#[derive(Debug, Clone)]
pub struct RegressOptions {
    /// Target column.
    pub target: String,
    /// Ridge penalty on standardized coefficients (0 = OLS).
    pub ridge: f64,
    /// Columns to leave out.
    pub drop: Vec<String>,
    /// Cross-validation folds for out-of-fold R²/RMSE (0 or 1 = none).
    pub folds: usize,
    /// Seed of the fold split.
    pub seed: u64,
}

/// Out-of-fold quality of a regression.
#[derive(Debug, Clone, Serialize)]
pub struct CvReport {
    /// Number of folds.
    pub folds: usize,
    /// Pooled out-of-fold R² (`None` when the target is constant).
    pub r2: Option<f64>,
    /// Pooled out-of-fold RMSE.
    pub rmse: Option<f64>,
    /// Pooled out-of-fold MAE.
    pub mae: Option<f64>,
}

/// The `eval regress` report (field names are a contract).
#[derive(Debug, Clone, Serialize)]
pub struct RegressReport {
    /// R² on all rows.
    pub r2: Option<f64>,
    /// RMSE on all rows.
    pub rmse: f64,
    /// Intercept (raw units).
    pub intercept: f64,
    /// Coefficient per feature column (raw units; one-hot columns per level).
    pub coefficients: BTreeMap<String, f64>,
    /// Seconds to fit the model on all rows (moments + solve; encoding excluded).
    pub fit_seconds: f64,
    /// Standard error per coefficient (`null` for aliased columns).
    pub standard_errors: BTreeMap<String, Option<f64>>,
    /// t-value per coefficient.
    pub t_values: BTreeMap<String, Option<f64>>,
    /// Standard error of the intercept.
    pub intercept_se: Option<f64>,
    /// Adjusted R².
    pub adj_r2: Option<f64>,
    /// Residual standard error.
    pub sigma: Option<f64>,
    /// Rows fitted.
    pub n: usize,
    /// Ridge penalty.
    pub ridge: f64,
    /// Columns left out of the fit because they are linear combinations of
    /// earlier ones: exactly, or so nearly that less than 1e-10 of their
    /// variance is their own (the normal equations cannot resolve them).
    pub aliased: Vec<String>,
    /// Out-of-fold quality, when folds > 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cv: Option<CvReport>,
    /// What was done to the table (target, dropped columns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preparation: Option<PrepareReport>,
    /// How columns were encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<EncodingReport>,
    /// Seconds to encode the table.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_seconds: Option<f64>,
    /// Seconds to generate the data (synthetic runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_seconds: Option<f64>,
    /// Further timings of the same fit (synthetic runs with repeats), seconds.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fit_seconds_repeats: Vec<f64>,
}

fn regress_report(fit: &LinearFit, names: &[String], fit_seconds: f64) -> RegressReport {
    let t = fit.t_values();
    RegressReport {
        r2: fit.r2,
        rmse: fit.rmse,
        intercept: fit.intercept,
        coefficients: names
            .iter()
            .cloned()
            .zip(fit.coefficients.iter().copied())
            .collect(),
        fit_seconds,
        standard_errors: names
            .iter()
            .cloned()
            .zip(fit.standard_errors.iter().copied())
            .collect(),
        t_values: names.iter().cloned().zip(t).collect(),
        intercept_se: fit.intercept_se,
        adj_r2: fit.adj_r2,
        sigma: fit.sigma,
        n: fit.n,
        ridge: fit.ridge,
        aliased: names
            .iter()
            .zip(&fit.aliased)
            .filter(|(_, a)| **a)
            .map(|(n, _)| n.clone())
            .collect(),
        cv: None,
        preparation: None,
        encoding: None,
        encode_seconds: None,
        generate_seconds: None,
        fit_seconds_repeats: Vec::new(),
    }
}

/// Linear regression on a table: prepares (target, `--drop`, ID-like and
/// constant columns), one-hot encodes, fits OLS/ridge on all rows and, when
/// `folds > 1`, measures out-of-fold R²/RMSE with the encoding refitted on each
/// fold's training rows.
pub fn eval_regress(frame: &Frame, opts: &RegressOptions) -> Result<RegressReport, EngineError> {
    let prep = prepare(frame, &opts.target, &TargetSpec::Numeric, &opts.drop)?;
    let n = prep.y.len();
    let model = LinearRegression { ridge: opts.ridge };
    let enc_opts = EncoderOptions { standardize: false };
    let all: Vec<usize> = (0..n).collect();

    let t0 = Instant::now();
    let enc = Encoder::new(enc_opts.clone()).fit(&prep.features, &all)?;
    let x = enc.transform(&prep.features, &all)?;
    let encode_seconds = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let fit = model.fit_matrix(&x, &prep.y)?;
    let fit_seconds = t0.elapsed().as_secs_f64();

    let mut report = regress_report(&fit, enc.feature_names(), fit_seconds);
    if opts.folds > 1 && n >= 2 * opts.folds {
        let mut pred = vec![f64::NAN; n];
        for test in regress::kfold(n, opts.folds, opts.seed) {
            let tset: HashSet<usize> = test.iter().copied().collect();
            let train: Vec<usize> = all.iter().copied().filter(|i| !tset.contains(i)).collect();
            let e = Encoder::new(enc_opts.clone()).fit(&prep.features, &train)?;
            let xt = e.transform(&prep.features, &train)?;
            let yt: Vec<f64> = train.iter().map(|&i| prep.y[i]).collect();
            let f = model.fit_matrix(&xt, &yt)?;
            let xs = e.transform(&prep.features, &test)?;
            for (&i, p) in test.iter().zip(f.predict(&xs)) {
                pred[i] = p;
            }
        }
        report.cv = Some(CvReport {
            folds: opts.folds,
            r2: rm::r2(&prep.y, &pred),
            rmse: rm::rmse(&prep.y, &pred),
            mae: rm::mae(&prep.y, &pred),
        });
    }
    report.preparation = Some(prep.report);
    report.encoding = Some(enc.report().clone());
    report.encode_seconds = Some(encode_seconds);
    crate::invariants::checked("eval regress", report)
}

/// OLS on the synthetic customer table of the scikit-learn anchor
/// (RESULTS.md §6, same distributions): the speed benchmark.
/// `repeats` further fits are timed into `fit_seconds_repeats`.
pub fn eval_regress_synthetic(
    n: usize,
    seed: u64,
    ridge: f64,
    repeats: usize,
) -> Result<RegressReport, EngineError> {
    let t0 = Instant::now();
    let (x, y) = regress::synthetic_customers(n, seed);
    let generate_seconds = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let fit = LinearRegression { ridge }.fit_matrix(&x, &y)?;
    let fit_seconds = t0.elapsed().as_secs_f64();
    let names: Vec<String> = regress::SYNTHETIC_COLUMNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut r = regress_report(&fit, &names, fit_seconds);
    r.generate_seconds = Some(generate_seconds);
    for _ in 0..repeats {
        let t0 = Instant::now();
        let again = LinearRegression { ridge }.fit_matrix(&x, &y)?;
        r.fit_seconds_repeats.push(t0.elapsed().as_secs_f64());
        debug_assert_eq!(again.coefficients, fit.coefficients);
    }
    crate::invariants::checked("eval regress", r)
}

// ───────────────────────────── purchase amount ─────────────────────────────

/// Options of [`train_amount`].
#[derive(Debug, Clone)]
pub struct AmountOptions {
    /// Length of the next period whose spend is predicted (days).
    pub horizon_days: i64,
    /// Ridge penalty on standardized coefficients.
    pub ridge: f64,
    /// Cross-validation folds.
    pub folds: usize,
    /// Seed of the folds.
    pub seed: u64,
    /// How many customers to list with their predicted next-period spend.
    pub top: usize,
}

impl Default for AmountOptions {
    fn default() -> Self {
        AmountOptions {
            horizon_days: 90,
            ridge: 1.0,
            folds: 5,
            seed: 0,
            top: 10,
        }
    }
}

/// A coefficient of the amount model.
#[derive(Debug, Clone, Serialize)]
pub struct Term {
    /// Feature name.
    pub feature: String,
    /// Coefficient (raw units: spend per unit of the feature).
    pub coefficient: f64,
    /// Standard error.
    pub standard_error: Option<f64>,
    /// t-value.
    pub t_value: Option<f64>,
}

/// One customer's predicted next-period spend.
#[derive(Debug, Clone, Serialize)]
pub struct AmountPrediction {
    /// Display key.
    pub key: String,
    /// Customer id.
    pub id: i64,
    /// Predicted spend over the next `horizon_days` (floored at 0).
    pub predicted: f64,
}

/// What `train amount` reports.
#[derive(Debug, Clone, Serialize)]
pub struct AmountReport {
    /// Model version saved in the store.
    pub version: i64,
    /// Training cutoff (RFC 3339): features strictly before, target in the next `horizon_days`.
    pub cutoff: String,
    /// Horizon in days.
    pub horizon_days: i64,
    /// Customers trained on (those with an order before the cutoff).
    pub customers: usize,
    /// Mean next-period spend of the training customers.
    pub mean_target: f64,
    /// R² on the training rows (`None` when every customer spent the same).
    pub r2: Option<f64>,
    /// RMSE on the training rows.
    pub rmse: f64,
    /// Out-of-fold quality.
    pub cv: Option<CvReport>,
    /// Out-of-fold RMSE of the naive baseline "next period = last period's spend".
    pub baseline_rmse: f64,
    /// Intercept.
    pub intercept: f64,
    /// Terms by |t| (largest first), at most 15.
    pub top_terms: Vec<Term>,
    /// Seconds to fit on all rows.
    pub fit_seconds: f64,
    /// Customers with the highest predicted spend for the period after the latest data.
    pub top_predicted: Vec<AmountPrediction>,
}

/// The saved `amount` model: feature names and the fitted linear model.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AmountModel {
    /// Feature columns, in order (matched by name at scoring time).
    pub features: Vec<String>,
    /// Horizon in days.
    pub horizon_days: i64,
    /// The fit.
    pub fit: LinearFit,
}

fn next_period_spend(ds: &Dataset, cutoff: i64, horizon: i64) -> HashMap<i64, f64> {
    let mut m = HashMap::new();
    for o in &ds.orders {
        if let Some(t) = o.time
            && t >= cutoff
            && t < cutoff + horizon
        {
            *m.entry(o.customer).or_insert(0.0) += o.amount;
        }
    }
    m
}

fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map_or_else(|| t.to_string(), |d| d.format("%Y-%m-%d").to_string())
}

/// Trains the next-period spend model on the store and saves it (kind `amount`).
pub fn train_amount(engine: &Engine, opts: &AmountOptions) -> Result<AmountReport, EngineError> {
    let ds = engine.dataset()?;
    let (report, model) = fit_amount(&ds, opts)?;
    let blob = serde_json::to_vec(&model)
        .map_err(|e| EngineError::Invalid(format!("serializing model: {e}")))?;
    let params = serde_json::json!({"horizon_days": opts.horizon_days, "ridge": opts.ridge, "folds": opts.folds, "seed": opts.seed});
    let metrics = serde_json::json!({"r2": report.r2, "rmse": report.rmse, "cv": report.cv, "baseline_rmse": report.baseline_rmse});
    let rec = engine.save_model("amount", &params, &metrics, &blob)?;
    crate::invariants::checked(
        "train amount",
        AmountReport {
            version: rec.version,
            ..report
        },
    )
}

/// Fits the amount model on a data set (no store); `version` is 0 in the report.
pub fn fit_amount(
    ds: &Dataset,
    opts: &AmountOptions,
) -> Result<(AmountReport, AmountModel), EngineError> {
    if opts.horizon_days < 1 {
        return Err(EngineError::Invalid(
            "horizon must be at least 1 day".into(),
        ));
    }
    let max_t = ds
        .max_time()
        .ok_or_else(|| EngineError::Invalid("the store has no dated facts".into()))?;
    let horizon = opts.horizon_days * DAY;
    let cutoff = max_t + 1 - horizon;
    let fopts = FeatureOptions {
        recent_days: opts.horizon_days,
        exclude_attributes: free_text_attributes(ds),
        // the texts' sentiment feeds churn; on spend it only adds
        // collinear columns to the OLS (CV RMSE above the baseline's on
        // the 300-person demo)
        without: vec!["sentiment".into()],
        ..FeatureOptions::default()
    };
    let ft = features::build_features(ds, cutoff, &fopts);
    let names = ft.names();
    let fcol = ft.column("frequency");
    let recent_col = ft.column("spend_recent");
    let target = next_period_spend(ds, cutoff, horizon);
    let rows: Vec<usize> = (0..ft.customers.len())
        .filter(|&i| fcol.is_none_or(|j| ft.get(i, j) > 0.0))
        .collect();
    if rows.len() < 10 {
        return Err(EngineError::Invalid(format!(
            "only {} customers bought before the cutoff {}; need at least 10 to train",
            rows.len(),
            rfc3339(cutoff)
        )));
    }
    let p = names.len();
    let mut data = Vec::with_capacity(rows.len() * p);
    let mut y = Vec::with_capacity(rows.len());
    for &i in &rows {
        data.extend_from_slice(ft.row(i));
        y.push(target.get(&ft.customers[i]).copied().unwrap_or(0.0));
    }
    let x = Matrix::new(data, rows.len(), p)?;
    let model = LinearRegression { ridge: opts.ridge };
    let t0 = Instant::now();
    let fit = model.fit_matrix(&x, &y)?;
    let fit_seconds = t0.elapsed().as_secs_f64();

    let n = rows.len();
    let (cv, baseline_rmse) = {
        let mut pred = vec![0.0; n];
        let folds = opts.folds.max(2).min(n / 2);
        for test in regress::kfold(n, folds, opts.seed) {
            let tset: HashSet<usize> = test.iter().copied().collect();
            let train: Vec<usize> = (0..n).filter(|i| !tset.contains(i)).collect();
            let xt = select_rows(&x, &train);
            let yt: Vec<f64> = train.iter().map(|&i| y[i]).collect();
            let f = model.fit_matrix(&xt, &yt)?;
            for &i in &test {
                pred[i] = f.predict_row(x.row(i)).max(0.0);
            }
        }
        let base: Vec<f64> = (0..n)
            .map(|i| recent_col.map_or(0.0, |j| x.get(i, j)))
            .collect();
        (
            Some(CvReport {
                folds,
                r2: rm::r2(&y, &pred),
                rmse: rm::rmse(&y, &pred),
                mae: rm::mae(&y, &pred),
            }),
            rm::rmse(&y, &base).unwrap_or(f64::NAN),
        )
    };

    let t = fit.t_values();
    let mut terms: Vec<Term> = (0..p)
        .filter(|&j| !fit.aliased[j])
        .map(|j| Term {
            feature: names[j].clone(),
            coefficient: fit.coefficients[j],
            standard_error: fit.standard_errors[j],
            t_value: t[j],
        })
        .collect();
    terms.sort_by(|a, b| {
        b.t_value
            .unwrap_or(0.0)
            .abs()
            .total_cmp(&a.t_value.unwrap_or(0.0).abs())
    });
    terms.truncate(15);

    // Score the period after the latest data.
    let now = features::build_features(ds, max_t + 1, &fopts);
    let aligned = now.aligned(&names);
    let mut preds: Vec<AmountPrediction> = (0..now.customers.len())
        .map(|i| AmountPrediction {
            key: now.keys[i].clone(),
            id: now.customers[i],
            predicted: fit.predict_row(&aligned[i * p..(i + 1) * p]).max(0.0),
        })
        .collect();
    preds.sort_by(|a, b| b.predicted.total_cmp(&a.predicted));
    preds.truncate(opts.top);

    let report = AmountReport {
        version: 0,
        cutoff: rfc3339(cutoff),
        horizon_days: opts.horizon_days,
        customers: n,
        mean_target: y.iter().sum::<f64>() / n as f64,
        r2: fit.r2,
        rmse: fit.rmse,
        cv,
        baseline_rmse,
        intercept: fit.intercept,
        top_terms: terms,
        fit_seconds,
        top_predicted: preds,
    };
    crate::invariants::checked(
        "train amount",
        (
            report,
            AmountModel {
                features: names,
                horizon_days: opts.horizon_days,
                fit,
            },
        ),
    )
}

/// Text attributes that are personal data or free text (named like a name,
/// contact, address or date, or with more than 20 distinct values): not
/// features of a spend model; their one-hot levels would only fit noise.
fn free_text_attributes(ds: &Dataset) -> Vec<String> {
    let mut levels: BTreeMap<&str, HashSet<String>> = BTreeMap::new();
    for c in &ds.customers {
        for (k, v) in &c.attributes {
            if v.as_f64().is_none() {
                levels.entry(k.as_str()).or_default().insert(v.as_text());
            }
        }
    }
    const PERSONAL: [&str; 10] = [
        "name", "email", "phone", "address", "street", "zip", "postal", "birth", "date", "seen",
    ];
    let personal = |k: &str| {
        let k = k.to_ascii_lowercase();
        PERSONAL.iter().any(|p| k.contains(p))
    };
    levels
        .into_iter()
        .filter(|(k, l)| l.len() > 20 || personal(k))
        .map(|(k, _)| k.to_string())
        .collect()
}

fn select_rows(x: &Matrix, rows: &[usize]) -> Matrix {
    let mut d = Vec::with_capacity(rows.len() * x.n_cols);
    for &r in rows {
        d.extend_from_slice(x.row(r));
    }
    Matrix {
        data: d,
        n_rows: rows.len(),
        n_cols: x.n_cols,
    }
}

// ───────────────────────────── segments ─────────────────────────────

/// How customers are segmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SegmentMethod {
    /// RFM quintile scores and named segments.
    Rfm,
    /// k-means on standardized recency, log frequency and log spend.
    Kmeans,
}

impl SegmentMethod {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SegmentMethod::Rfm => "rfm",
            SegmentMethod::Kmeans => "kmeans",
        }
    }
}

/// Options of [`segments`].
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// Method.
    pub method: SegmentMethod,
    /// Number of clusters for k-means (`None` = chosen by silhouette in 2..=8).
    pub k: Option<usize>,
    /// Seed of k-means.
    pub seed: u64,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            method: SegmentMethod::Rfm,
            k: None,
            seed: 0,
        }
    }
}

/// Name of the segment of customers who never bought.
pub const NO_PURCHASES: &str = "no purchases";

/// One customer's segment and RFM values.
#[derive(Debug, Clone, Serialize)]
pub struct CustomerSegment {
    /// Display key.
    pub key: String,
    /// Customer id (left out of shared rows when pseudonymized).
    #[serde(skip_serializing_if = "crate::privacy::aggregate::withheld")]
    pub id: i64,
    /// Segment name.
    pub segment: String,
    /// Days since the last purchase (`None` without purchases).
    pub recency_days: Option<f64>,
    /// Number of orders.
    pub frequency: usize,
    /// Total spend.
    pub monetary: f64,
    /// RFM scores (RFM method only).
    pub r: Option<u8>,
    /// Frequency score.
    pub f: Option<u8>,
    /// Monetary score.
    pub m: Option<u8>,
}

/// A category's share of a segment's spend.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryShare {
    /// Category.
    pub category: String,
    /// Share of the segment's line spend.
    pub share: f64,
}

/// Profile of one segment.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentProfile {
    /// Name (the segment's identifier in routes and exports).
    pub name: String,
    /// The name in Simplified Chinese (for display).
    pub name_zh: String,
    /// Customers.
    pub size: usize,
    /// Share of all customers.
    pub share: f64,
    /// Total spend of the segment.
    pub revenue: f64,
    /// Share of all spend.
    pub revenue_share: f64,
    /// Median days since the last purchase.
    pub median_recency_days: Option<f64>,
    /// Median number of orders.
    pub median_frequency: f64,
    /// Median total spend.
    pub median_monetary: f64,
    /// Top categories by spend.
    pub top_categories: Vec<CategoryShare>,
    /// What characterizes it (k-means: centroid in words; RFM: the rule).
    pub description: String,
    /// The same in Simplified Chinese.
    pub description_zh: String,
}

/// The segments report.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentsReport {
    /// `rfm` or `kmeans`.
    pub method: String,
    /// Reference time (RFC 3339 date): recency is counted up to it.
    pub as_of: String,
    /// Customers segmented.
    pub customers: usize,
    /// Number of clusters (k-means).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Mean silhouette per k tried (k-means without `--k`) or of the chosen k.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub silhouettes: Vec<(usize, f64)>,
    /// The segments, largest revenue first (RFM: in the canonical order).
    pub segments: Vec<SegmentProfile>,
    /// The rules used, in words.
    pub rules: Vec<String>,
    /// The same in Simplified Chinese.
    pub rules_zh: Vec<String>,
}

struct Rfm {
    recency: Vec<Option<f64>>,
    frequency: Vec<usize>,
    monetary: Vec<f64>,
}

fn rfm_values(ds: &Dataset, as_of: i64) -> Rfm {
    let index = ds.customer_index();
    let n = ds.customers.len();
    let mut last: Vec<Option<i64>> = vec![None; n];
    let mut frequency = vec![0usize; n];
    let mut monetary = vec![0.0; n];
    for o in &ds.orders {
        if let Some(i) = index.pos(o.customer) {
            frequency[i] += 1;
            monetary[i] += o.amount;
            if let Some(t) = o.time {
                last[i] = Some(last[i].map_or(t, |l: i64| l.max(t)));
            }
        }
    }
    let recency = (0..n)
        .map(|i| {
            if frequency[i] == 0 {
                None
            } else {
                // An order without a time counts as "long ago": the whole history.
                Some(last[i].map_or(f64::MAX, |t| ((as_of - t) as f64 / DAY as f64).max(0.0)))
            }
        })
        .collect();
    Rfm {
        recency,
        frequency,
        monetary,
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    })
}

/// A segment's name in Simplified Chinese (RFM names, k-means clusters,
/// no purchases); other names as they are.
pub fn segment_name_zh(name: &str) -> String {
    if let Some(k) = name.strip_prefix("cluster ") {
        return format!("第 {k} 类");
    }
    match name {
        "champions" => "冠军客户",
        "loyal" => "忠诚客户",
        "potential loyalists" => "潜在忠诚客户",
        "new" => "新客户",
        "promising" => "有潜力客户",
        "need attention" => "需要关注",
        "about to sleep" => "即将沉睡",
        "at risk" => "有流失风险",
        "can't lose" => "不能失去",
        "hibernating" => "休眠客户",
        "lost" => "已流失",
        NO_PURCHASES => "尚无购买",
        other => other,
    }
    .to_string()
}

fn rfm_rule_zh(name: &str) -> &'static str {
    match name {
        "champions" => "R 5，F 4-5：最近购买且购买频繁",
        "loyal" => "R 3-4，F 4-5：经常购买，但不是最近",
        "potential loyalists" => "R 4-5，F 2-3：最近购买过几次",
        "new" => "R 5，F 1：最近刚完成首单",
        "promising" => "R 4，F 1：最近有一笔订单",
        "need attention" => "R 3，F 3：处于中间水平且在下滑",
        "about to sleep" => "R 3，F 1-2：订单少且不是最近",
        "at risk" => "R 1-2，F 3-4：曾经定期购买，最近没有",
        "can't lose" => "R 1-2，F 5：最好的客户已沉寂",
        "hibernating" => "R 1-2，F 1-2（R1F1 除外）：订单少且很久以前",
        "lost" => "R 1，F 1：只有一笔很久以前的订单",
        NO_PURCHASES => "店内没有订单",
        _ => "",
    }
}

fn rfm_rule(name: &str) -> &'static str {
    match name {
        "champions" => "R 5, F 4-5: bought recently and often",
        "loyal" => "R 3-4, F 4-5: buy often, not the very latest",
        "potential loyalists" => "R 4-5, F 2-3: recent, a few orders",
        "new" => "R 5, F 1: first order very recently",
        "promising" => "R 4, F 1: one recent order",
        "need attention" => "R 3, F 3: average and slipping",
        "about to sleep" => "R 3, F 1-2: few orders, not recent",
        "at risk" => "R 1-2, F 3-4: used to buy regularly, not lately",
        "can't lose" => "R 1-2, F 5: best customers who have gone quiet",
        "hibernating" => "R 1-2, F 1-2 (not R1F1): few orders, long ago",
        "lost" => "R 1, F 1: one order, long ago",
        NO_PURCHASES => "no order in the store",
        _ => "",
    }
}

/// Segments every customer and profiles the segments.
pub fn segments(
    ds: &Dataset,
    opts: &SegmentOptions,
) -> Result<(SegmentsReport, Vec<CustomerSegment>), EngineError> {
    let as_of = ds
        .max_time()
        .ok_or_else(|| EngineError::Invalid("the store has no dated facts".into()))?;
    let rfm = rfm_values(ds, as_of);
    let n = ds.customers.len();
    let buyers: Vec<usize> = (0..n).filter(|&i| rfm.frequency[i] > 0).collect();
    if buyers.len() < 5 {
        return Err(EngineError::Invalid(format!(
            "only {} customers have orders; need at least 5 to segment",
            buyers.len()
        )));
    }
    let mut seg_of: Vec<String> = vec![NO_PURCHASES.to_string(); n];
    let mut scores: Vec<Option<(u8, u8, u8)>> = vec![None; n];
    let mut k_out = None;
    let mut silhouettes = Vec::new();
    let mut descriptions: HashMap<String, String> = HashMap::new();
    let mut descriptions_zh: HashMap<String, String> = HashMap::new();
    let mut rules = Vec::new();
    let mut rules_zh: Vec<String> = Vec::new();
    let rec: Vec<f64> = buyers
        .iter()
        .map(|&i| rfm.recency[i].unwrap_or(f64::MAX))
        .collect();
    let freq: Vec<f64> = buyers.iter().map(|&i| rfm.frequency[i] as f64).collect();
    let mon: Vec<f64> = buyers.iter().map(|&i| rfm.monetary[i]).collect();
    match opts.method {
        SegmentMethod::Rfm => {
            let s = segment::rfm_scores(&rec, &freq, &mon)?;
            for (b, sc) in buyers.iter().zip(&s) {
                seg_of[*b] = sc.segment.to_string();
                scores[*b] = Some((sc.r, sc.f, sc.m));
            }
            rules.push("R, F, M: quintile scores 1-5 among customers with orders (rank-based, ties share the lowest rank); R = 5 for the most recent fifth".into());
            rules.push("names from (R, F): champions R5 F4-5; loyal R3-4 F4-5; potential loyalists R4-5 F2-3; new R5 F1; promising R4 F1; need attention R3 F3; about to sleep R3 F1-2; at risk R1-2 F3-4; can't lose R1-2 F5; lost R1 F1; hibernating the rest of R1-2 F1-2".into());
            rules_zh.push("R、F、M：在有订单的客户中按五分位打分 1-5（按排名，并列取最低名次）；最近购买的五分之一 R = 5".into());
            rules_zh.push("按 (R, F) 命名：冠军客户 R5 F4-5；忠诚客户 R3-4 F4-5；潜在忠诚客户 R4-5 F2-3；新客户 R5 F1；有潜力客户 R4 F1；需要关注 R3 F3；即将沉睡 R3 F1-2；有流失风险 R1-2 F3-4；不能失去 R1-2 F5；已流失 R1 F1；其余 R1-2 F1-2 为休眠客户".into());
            for name in segment::RFM_SEGMENTS.iter().chain([&NO_PURCHASES]) {
                descriptions.insert(name.to_string(), rfm_rule(name).to_string());
                descriptions_zh.insert(name.to_string(), rfm_rule_zh(name).to_string());
            }
        }
        SegmentMethod::Kmeans => {
            let horizon = rec
                .iter()
                .copied()
                .filter(|r| *r < f64::MAX)
                .fold(0.0, f64::max);
            let mut data = Vec::with_capacity(buyers.len() * 3);
            for j in 0..buyers.len() {
                let r = if rec[j] == f64::MAX { horizon } else { rec[j] };
                data.extend_from_slice(&[r, freq[j].ln_1p(), mon[j].max(0.0).ln_1p()]);
            }
            let mut x = Matrix::new(data, buyers.len(), 3)?;
            let (means, sds) = segment::standardize(&mut x);
            let base = KMeans {
                k: 2,
                restarts: 8,
                max_iter: 100,
                seed: opts.seed,
            };
            let fit = match opts.k {
                Some(k) => {
                    if k < 1 || k > buyers.len() {
                        return Err(EngineError::Invalid(format!(
                            "--k must be between 1 and the number of customers with orders ({})",
                            buyers.len()
                        )));
                    }
                    let f = KMeans { k, ..base }.fit(&x)?;
                    if k > 1
                        && let Some(s) = segment::silhouette(&x, &f.labels, 2_000, opts.seed)
                    {
                        silhouettes.push((k, s));
                    }
                    f
                }
                None => {
                    let c = segment::choose_k(&x, 2, 8, &base, 2_000)?;
                    silhouettes = c.silhouettes;
                    c.fit
                }
            };
            let k = fit.centroids.len();
            k_out = Some(k);
            // Order clusters by median spend (highest first) so names are stable.
            let mut med: Vec<(usize, f64)> = (0..k)
                .map(|c| {
                    let v: Vec<f64> = fit
                        .labels
                        .iter()
                        .zip(&mon)
                        .filter(|(l, _)| **l == c)
                        .map(|(_, m)| *m)
                        .collect();
                    (c, median(v).unwrap_or(0.0))
                })
                .collect();
            med.sort_by(|a, b| b.1.total_cmp(&a.1));
            let mut name_of = vec![String::new(); k];
            for (rank, (c, _)) in med.iter().enumerate() {
                let name = format!("cluster {}", rank + 1);
                let cen = &fit.centroids[*c];
                let word = |z: f64, lo: &str, mid: &str, hi: &str| {
                    if z > 0.5 {
                        hi.to_string()
                    } else if z < -0.5 {
                        lo.to_string()
                    } else {
                        mid.to_string()
                    }
                };
                let raw = |j: usize| cen[j] * sds[j] + means[j];
                let desc = format!(
                    "{}, {}, {} (centroid: {} days, {} orders, spend {})",
                    word(
                        cen[0],
                        "recent",
                        "moderately recent",
                        "long since last purchase"
                    ),
                    word(
                        cen[1],
                        "rare buyers",
                        "occasional buyers",
                        "frequent buyers"
                    ),
                    word(cen[2], "low spend", "mid spend", "high spend"),
                    // the centroid of non-negative values cannot be negative;
                    // rounding of the standardization can make it -0.3
                    crate::features::fixed(raw(0).max(0.0), 0),
                    crate::features::fixed(raw(1).exp_m1().max(0.0), 1),
                    crate::features::fixed(raw(2).exp_m1().max(0.0), 0)
                );
                descriptions.insert(name.clone(), desc);
                let desc_zh = format!(
                    "{}，{}，{}（中心：{} 天，{} 笔订单，消费 {}）",
                    word(cen[0], "最近购买", "较近购买", "很久未购买"),
                    word(cen[1], "很少购买", "偶尔购买", "经常购买"),
                    word(cen[2], "消费低", "消费中等", "消费高"),
                    crate::features::fixed(raw(0).max(0.0), 0),
                    crate::features::fixed(raw(1).exp_m1().max(0.0), 1),
                    crate::features::fixed(raw(2).exp_m1().max(0.0), 0)
                );
                descriptions_zh.insert(name.clone(), desc_zh);
                name_of[*c] = name;
            }
            for (b, l) in buyers.iter().zip(&fit.labels) {
                seg_of[*b] = name_of[*l].clone();
            }
            rules.push(
                "features: days since last purchase, ln(1 + orders), ln(1 + spend), standardized"
                    .into(),
            );
            rules.push(format!(
                "k-means++ with 8 seeded restarts (seed {}); k {}; clusters named by median spend, highest first",
                opts.seed,
                if opts.k.is_some() { "given" } else { "chosen by the highest mean silhouette in 2..8 (sample of ≤ 2000 customers)" }
            ));
            rules_zh.push("特征：距上次购买天数、ln(1 + 订单数)、ln(1 + 消费)，标准化".into());
            rules_zh.push(format!(
                "k-means++，8 次带种子的重启（种子 {}）；k {}；各类按消费中位数从高到低命名",
                opts.seed,
                if opts.k.is_some() {
                    "为给定值"
                } else {
                    "取 2..8 中平均轮廓系数最高者（最多抽样 2000 位客户）"
                }
            ));
            descriptions.insert(NO_PURCHASES.to_string(), rfm_rule(NO_PURCHASES).to_string());
            descriptions_zh.insert(
                NO_PURCHASES.to_string(),
                rfm_rule_zh(NO_PURCHASES).to_string(),
            );
        }
    }

    let customers: Vec<CustomerSegment> = (0..n)
        .map(|i| CustomerSegment {
            key: ds.customers[i].key.clone(),
            id: ds.customers[i].id,
            segment: seg_of[i].clone(),
            recency_days: rfm.recency[i].filter(|r| *r < f64::MAX),
            frequency: rfm.frequency[i],
            monetary: rfm.monetary[i],
            r: scores[i].map(|s| s.0),
            f: scores[i].map(|s| s.1),
            m: scores[i].map(|s| s.2),
        })
        .collect();

    // Category spend per segment: dense indices, one pass over the lines.
    let index = ds.customer_index();
    let mut cat_names: Vec<&str> = Vec::new();
    let mut cat_ix: HashMap<&str, usize> = HashMap::new();
    let pairs: Vec<(i64, i64)> = ds
        .products
        .iter()
        .filter_map(|p| {
            let c = p.category.as_deref()?;
            let ix = *cat_ix.entry(c).or_insert_with(|| {
                cat_names.push(c);
                cat_names.len() - 1
            });
            Some((p.id, ix as i64))
        })
        .collect();
    let product_cat = IdIndex::new(pairs.into_iter());
    let mut seg_names: Vec<&str> = Vec::new();
    let mut seg_ix_of: HashMap<&str, usize> = HashMap::new();
    let seg_ix: Vec<usize> = seg_of
        .iter()
        .map(|s| {
            *seg_ix_of.entry(s.as_str()).or_insert_with(|| {
                seg_names.push(s.as_str());
                seg_names.len() - 1
            })
        })
        .collect();
    let ncat = cat_names.len();
    let mut spend = vec![0.0f64; seg_names.len() * ncat];
    let mut seen = vec![false; seg_names.len() * ncat];
    for l in &ds.lines {
        if let (Some(i), Some(c)) = (
            index.pos(l.customer),
            l.product.and_then(|p| product_cat.pos(p)),
        ) {
            let k = seg_ix[i] * ncat + c;
            spend[k] += l.amount;
            seen[k] = true;
        }
    }
    let seg_cat = |name: &str| -> Vec<(&str, f64)> {
        let Some(&s) = seg_ix_of.get(name) else {
            return Vec::new();
        };
        (0..ncat)
            .filter(|&c| seen[s * ncat + c])
            .map(|c| (cat_names[c], spend[s * ncat + c]))
            .collect()
    };
    let total_rev: f64 = rfm.monetary.iter().sum();
    let mut names: Vec<String> = seg_of
        .iter()
        .cloned()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    match opts.method {
        SegmentMethod::Rfm => {
            let order = |s: &str| {
                segment::RFM_SEGMENTS
                    .iter()
                    .position(|x| *x == s)
                    .unwrap_or(usize::MAX)
            };
            names.sort_by_key(|s| order(s));
        }
        SegmentMethod::Kmeans => names.sort_by_key(|s| {
            s.strip_prefix("cluster ")
                .and_then(|k| k.parse::<usize>().ok())
                .unwrap_or(usize::MAX)
        }),
    }
    let profiles = names
        .iter()
        .map(|name| {
            let members: Vec<usize> = (0..n).filter(|&i| &seg_of[i] == name).collect();
            let revenue: f64 = members.iter().map(|&i| rfm.monetary[i]).sum();
            let mut cats = seg_cat(name);
            // summed in a fixed order (categories by name) so the shares do
            // not depend on hashing
            cats.sort_by(|a, b| a.0.cmp(b.0));
            let cat_total: f64 = cats.iter().map(|c| c.1).sum();
            cats.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
            SegmentProfile {
                name: name.clone(),
                size: members.len(),
                share: members.len() as f64 / n as f64,
                revenue,
                revenue_share: if total_rev > 0.0 {
                    revenue / total_rev
                } else {
                    0.0
                },
                median_recency_days: median(
                    members
                        .iter()
                        .filter_map(|&i| rfm.recency[i])
                        .filter(|r| *r < f64::MAX)
                        .collect(),
                ),
                median_frequency: median(
                    members.iter().map(|&i| rfm.frequency[i] as f64).collect(),
                )
                .unwrap_or(0.0),
                median_monetary: median(members.iter().map(|&i| rfm.monetary[i]).collect())
                    .unwrap_or(0.0),
                top_categories: cats
                    .into_iter()
                    .take(3)
                    .map(|(c, v)| CategoryShare {
                        category: c.to_string(),
                        share: if cat_total > 0.0 { v / cat_total } else { 0.0 },
                    })
                    .collect(),
                description: descriptions.get(name).cloned().unwrap_or_default(),
                description_zh: descriptions_zh.get(name).cloned().unwrap_or_default(),
                name_zh: segment_name_zh(name),
            }
        })
        .collect();
    let report = SegmentsReport {
        method: opts.method.as_str().into(),
        as_of: rfc3339(as_of),
        customers: n,
        k: k_out,
        silhouettes,
        segments: profiles,
        rules,
        rules_zh,
    };
    crate::invariants::checked("segments", (report, customers))
}

/// Writes the customers of segment `name` (case-insensitive; for k-means
/// `cluster 2`, `cluster-2` or `2`) as CSV: key, id, segment, recency_days,
/// frequency, monetary, r, f, m. Returns how many were written.
///
/// The principal's policy shapes the file as it shapes the API: keys per the
/// contact class, RFM values per the behaviour class, only a department's
/// customers for a department key; the export is recorded in the audit
/// trail with every customer written.
///
/// A segment export is a marketing list: customers without `marketing`
/// consent (read now from the store) are left out, and counted by reason.
pub fn export_segment(
    engine: &crate::Engine,
    access: &crate::access::Access,
    ds: &Dataset,
    opts: &SegmentOptions,
    name: &str,
    out: &Path,
) -> Result<SegmentExport, EngineError> {
    use infogap_core::access::{FieldClass, Visibility};
    let (report, customers) = segments(ds, opts)?;
    let consents = engine.consents()?;
    let mut left_out = crate::privacy::consent::LeftOut::new(infogap_core::privacy::MARKETING);
    let allowed = engine.department_customers(access)?;
    let behaviour = access.visibility(FieldClass::Behaviour);
    let want = normalize_segment_name(name);
    let found = report
        .segments
        .iter()
        .find(|s| {
            normalize_segment_name(&s.name) == want
                || (opts.method == SegmentMethod::Kmeans
                    && normalize_segment_name(&s.name) == format!("cluster{want}"))
        })
        .ok_or_else(|| {
            EngineError::NotFound(format!(
                "segment {name:?} ({} method); segments are: {}",
                opts.method.as_str(),
                report
                    .segments
                    .iter()
                    .map(|s| format!("{:?}", s.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let io = |source: std::io::Error| EngineError::Io {
        path: out.display().to_string(),
        source,
    };
    let mut w = csv::Writer::from_path(out).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(err) => io(err),
        other => EngineError::Invalid(format!("{}: {other:?}", out.display())),
    })?;
    let csv_err = |e: csv::Error| EngineError::Invalid(format!("{}: {e}", out.display()));
    w.write_record([
        "key",
        "id",
        "segment",
        "recency_days",
        "frequency",
        "monetary",
        "r",
        "f",
        "m",
    ])
    .map_err(csv_err)?;
    let opt = |v: Option<u8>| v.map(|x| x.to_string()).unwrap_or_default();
    let shown = behaviour != Visibility::Hidden;
    let exact = behaviour == Visibility::Visible;
    let mut ids = Vec::new();
    // the analyst's export: keyed-hash pseudonyms, no ids or contact values
    let pseudonyms = engine.pseudonyms_for(access)?;
    for c in customers
        .iter()
        .filter(|c| c.segment == found.name)
        .filter(|c| allowed.as_ref().is_none_or(|a| a.contains(&c.id)))
    {
        if let Err(r) = consents.allows(c.id, infogap_core::privacy::MARKETING) {
            left_out.add(r);
            continue;
        }
        w.write_record([
            match &pseudonyms {
                Some(p) => p.of(c.id),
                None => crate::share::show_key(access, c.id, &c.key),
            },
            match &pseudonyms {
                Some(_) => String::new(),
                None => c.id.to_string(),
            },
            c.segment.clone(),
            c.recency_days
                .filter(|_| shown)
                .map(|r| format!("{r:.1}"))
                .unwrap_or_default(),
            if shown {
                c.frequency.to_string()
            } else {
                String::new()
            },
            if exact {
                format!("{:.2}", c.monetary)
            } else {
                String::new()
            },
            if exact { opt(c.r) } else { String::new() },
            if exact { opt(c.f) } else { String::new() },
            if exact { opt(c.m) } else { String::new() },
        ])
        .map_err(csv_err)?;
        ids.push(c.id);
    }
    w.flush().map_err(io)?;
    let count = ids.len();
    engine.record_access(
        access,
        "segments.export",
        ids,
        access.shown_classes(&[FieldClass::Contact, FieldClass::Behaviour]),
    )?;
    Ok(SegmentExport {
        written: count,
        left_out,
    })
}

/// What [`export_segment`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentExport {
    /// Customers written.
    pub written: usize,
    /// Segment members left out for lack of marketing consent, by reason.
    pub left_out: crate::privacy::consent::LeftOut,
}

fn normalize_segment_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect()
}

// ───────────────────────────── Bayes from the store ─────────────────────────────

/// A customer event the Bayes command can condition on.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerEvent {
    /// No purchase in the `n` days before the cutoff.
    NoPurchaseIn(i64),
    /// At least `n` support tickets / complaints before the cutoff.
    Complaints(usize),
    /// A survey or review score at or below `threshold` before the cutoff
    /// (`None`: ≤ 2 on scales up to 5, ≤ 6 on larger scales).
    LowScore(Option<f64>),
    /// Fewer orders in the last `n` days before the cutoff than in the `n` before those.
    Declining(i64),
}

impl CustomerEvent {
    /// Parses the small vocabulary: "no purchase in N days" (also "no order
    /// for N days"), "complaint" / "ticket" / "N+ tickets" / "at least N
    /// complaints", "low score" / "score below X" / "score <= X",
    /// "declining purchases" (90-day windows) / "declining purchases in N days".
    pub fn parse(s: &str) -> Result<Self, EngineError> {
        let t = s.trim().to_lowercase();
        let words: Vec<&str> = t
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .collect();
        let number = || {
            words.iter().find_map(|w| {
                w.trim_end_matches('+')
                    .trim_start_matches("<=")
                    .trim_start_matches('<')
                    .parse::<f64>()
                    .ok()
            })
        };
        let has = |w: &str| t.contains(w);
        if (has("no purchase") || has("no order") || has("not bought") || has("no buy"))
            && has("day")
        {
            let n = number().ok_or_else(|| bad_event(s))?;
            if n < 1.0 {
                return Err(EngineError::Invalid(format!(
                    "event {s:?}: the number of days must be ≥ 1"
                )));
            }
            return Ok(CustomerEvent::NoPurchaseIn(n as i64));
        }
        if has("declin") || has("fewer order") || has("fewer purchase") {
            let n = if has("day") {
                number().ok_or_else(|| bad_event(s))? as i64
            } else {
                90
            };
            return Ok(CustomerEvent::Declining(n.max(1)));
        }
        if has("complain") || has("ticket") {
            let n = number().map_or(1, |v| v.max(1.0) as usize);
            return Ok(CustomerEvent::Complaints(n));
        }
        if has("score") || has("rating") || has("unhappy") || has("detractor") {
            let explicit = if has("below") || has("<") || has("under") || has("at most") {
                number()
            } else {
                None
            };
            let th = explicit.map(|v| {
                if has("below") || has("under") || (has("<") && !has("<=")) {
                    v - 1e-9
                } else {
                    v
                }
            });
            return Ok(CustomerEvent::LowScore(th));
        }
        Err(bad_event(s))
    }

    /// Words for reports.
    /// `low_rule` words the default low-score thresholds (used when none was given).
    pub fn describe(&self, low_rule: &str) -> String {
        match self {
            CustomerEvent::NoPurchaseIn(n) => {
                format!("no purchase in the {n} days before the cutoff")
            }
            CustomerEvent::Complaints(1) => {
                "at least one support ticket or complaint before the cutoff".into()
            }
            CustomerEvent::Complaints(n) => {
                format!("at least {n} support tickets or complaints before the cutoff")
            }
            CustomerEvent::LowScore(Some(t)) => {
                format!("a survey or review score ≤ {} before the cutoff", fmt_g(*t))
            }
            CustomerEvent::LowScore(None) => {
                format!("a low survey or review score before the cutoff ({low_rule})")
            }
            CustomerEvent::Declining(n) => {
                format!(
                    "fewer orders in the last {n} days before the cutoff than in the {n} days before those"
                )
            }
        }
    }
}

fn fmt_g(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    format!("{r}")
}

fn bad_event(s: &str) -> EngineError {
    EngineError::Invalid(format!(
        "unknown event {s:?}; known events: \"no purchase in N days\", \"complaint\" (or \"ticket\", \"N+ tickets\"), \"low score\" (or \"score below X\"), \"declining purchases\""
    ))
}

/// Options of [`bayes_from_store`].
#[derive(Debug, Clone)]
pub struct BayesStoreOptions {
    /// The event B (see [`CustomerEvent::parse`]).
    pub event: String,
    /// The outcome A; only `churn` is known.
    pub outcome: String,
    /// Churn window: no purchase in this many days after the cutoff (cutoff = latest time − window).
    pub window_days: i64,
    /// Population: customers with an order in this many days before the cutoff.
    pub active_days: i64,
    /// Confidence level of the interval.
    pub confidence: f64,
}

impl Default for BayesStoreOptions {
    fn default() -> Self {
        BayesStoreOptions {
            event: String::new(),
            outcome: "churn".into(),
            window_days: 90,
            active_days: 365,
            confidence: 0.95,
        }
    }
}

/// Counts behind the estimate.
#[derive(Debug, Clone, Serialize)]
pub struct BayesCounts {
    /// Customers in the population (an order in the `active_days` before the cutoff).
    pub customers: usize,
    /// With the outcome (A).
    pub outcome: usize,
    /// With the event (B).
    pub event: usize,
    /// With both.
    pub both: usize,
}

/// An interval estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Confidence level.
    pub level: f64,
    /// How it was computed.
    pub method: String,
}

/// The report of `bayes --from-store`.
#[derive(Debug, Clone, Serialize)]
pub struct BayesStoreReport {
    /// P(A|B).
    pub posterior: f64,
    /// P(B).
    pub evidence: f64,
    /// P(A).
    pub prior: f64,
    /// P(B|A).
    pub likelihood: f64,
    /// P(B|not A).
    pub likelihood_not: Option<f64>,
    /// Interval for P(A|B).
    pub interval: Interval,
    /// P(A|B) / P(A).
    pub lift: Option<f64>,
    /// P(A | not B).
    pub posterior_without_event: Option<f64>,
    /// The event, in words.
    pub event: String,
    /// The outcome, in words.
    pub outcome: String,
    /// Cutoff date: events counted strictly before it, the outcome in the window after.
    pub cutoff: String,
    /// The counts.
    pub counts: BayesCounts,
}

/// The churn label, defined as in `crate::churn` (`train churn`): among
/// customers *active* before `cutoff` (an order in `[cutoff − active, cutoff)`),
/// churned = no order in `[cutoff, cutoff + window)`.
pub fn churn_labels(ds: &Dataset, cutoff: i64, window: i64, active: i64) -> HashMap<i64, bool> {
    let mut before: HashSet<i64> = HashSet::new();
    let mut after: HashSet<i64> = HashSet::new();
    for o in &ds.orders {
        if let Some(t) = o.time {
            if t < cutoff {
                if t >= cutoff - active {
                    before.insert(o.customer);
                }
            } else if t < cutoff + window {
                after.insert(o.customer);
            }
        }
    }
    before
        .into_iter()
        .map(|c| (c, !after.contains(&c)))
        .collect()
}

fn z_of(level: f64) -> f64 {
    // Inverse normal CDF (Acklam's rational approximation), two-sided.
    let p = 1.0 - (1.0 - level) / 2.0;
    let a = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    let b = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    let c = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    let d = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    let plow = 0.02425;
    if p > 1.0 - plow {
        let q = (-2.0 * (1.0 - p).ln()).sqrt();
        -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
            / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0)
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0)
    }
}

/// Estimates P(outcome), P(event | outcome) and P(event) by counting customers
/// and applies Bayes' rule; the interval is the Wilson score interval of the
/// empirical P(outcome | event) (= the posterior).
pub fn bayes_from_store(
    ds: &Dataset,
    opts: &BayesStoreOptions,
) -> Result<BayesStoreReport, EngineError> {
    let outcome = opts.outcome.trim().to_lowercase();
    if !matches!(outcome.as_str(), "churn" | "churned" | "churners") {
        return Err(EngineError::Invalid(format!(
            "unknown outcome {:?}; known outcomes: \"churn\"",
            opts.outcome
        )));
    }
    if !(opts.confidence > 0.0 && opts.confidence < 1.0) {
        return Err(EngineError::Invalid(format!(
            "confidence must be between 0 and 1, got {}",
            opts.confidence
        )));
    }
    if opts.window_days < 1 {
        return Err(EngineError::Invalid(
            "the churn window must be at least 1 day".into(),
        ));
    }
    let event = CustomerEvent::parse(&opts.event)?;
    let max_t = ds
        .max_time()
        .ok_or_else(|| EngineError::Invalid("the store has no dated facts".into()))?;
    let window = opts.window_days * DAY;
    let cutoff = max_t + 1 - window;
    if opts.active_days < 1 {
        return Err(EngineError::Invalid(
            "active-days must be at least 1".into(),
        ));
    }
    let labels = churn_labels(ds, cutoff, window, opts.active_days * DAY);
    if labels.is_empty() {
        return Err(EngineError::Invalid(format!(
            "no customer bought in the {} days before the cutoff {}",
            opts.active_days,
            rfc3339(cutoff)
        )));
    }

    // Event per customer, from facts strictly before the cutoff.
    let mut last_order: HashMap<i64, i64> = HashMap::new();
    let mut tickets: HashMap<i64, usize> = HashMap::new();
    let mut scores: Vec<(i64, String, f64)> = Vec::new();
    let mut scale_max: BTreeMap<String, f64> = BTreeMap::new();
    let (recent_n, prior_n) = {
        let mut r = HashMap::<i64, usize>::new();
        let mut p = HashMap::<i64, usize>::new();
        let span = match event {
            CustomerEvent::Declining(n) => n * DAY,
            _ => 90 * DAY,
        };
        for o in &ds.orders {
            if let Some(t) = o.time.filter(|&t| t < cutoff) {
                let e = last_order.entry(o.customer).or_insert(t);
                *e = (*e).max(t);
                if t >= cutoff - span {
                    *r.entry(o.customer).or_default() += 1;
                } else if t >= cutoff - 2 * span {
                    *p.entry(o.customer).or_default() += 1;
                }
            }
        }
        (r, p)
    };
    for f in &ds.feedback {
        if f.time.is_none_or(|t| t >= cutoff) {
            continue;
        }
        let k = f.kind.to_ascii_lowercase();
        if k.contains("ticket") || k.contains("complaint") || k.contains("support") {
            *tickets.entry(f.customer).or_default() += 1;
        } else if let Some(s) = f.score.filter(|s| s.is_finite()) {
            let m = scale_max.entry(k.clone()).or_insert(s);
            *m = m.max(s);
            scores.push((f.customer, k, s));
        }
    }
    // Default "low": ≤ 2 on a scale up to 5 (reviews, CSAT), ≤ 6 on larger
    // scales (0-10 NPS detractors), decided per feedback kind.
    let default_threshold = |kind: &str| {
        if scale_max.get(kind).is_some_and(|&m| m > 5.0) {
            6.0
        } else {
            2.0
        }
    };
    let low_rule = if scale_max.is_empty() {
        "no scored feedback in the store".to_string()
    } else {
        scale_max
            .keys()
            .map(|k| format!("{k} ≤ {}", default_threshold(k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let low_scorers: HashSet<i64> = match &event {
        CustomerEvent::LowScore(th) => scores
            .iter()
            .filter(|(_, k, s)| *s <= th.unwrap_or_else(|| default_threshold(k)))
            .map(|(c, _, _)| *c)
            .collect(),
        _ => HashSet::new(),
    };
    let has_event = |c: i64| -> bool {
        match &event {
            CustomerEvent::NoPurchaseIn(n) => {
                last_order.get(&c).is_none_or(|&t| t < cutoff - n * DAY)
            }
            CustomerEvent::Complaints(n) => tickets.get(&c).copied().unwrap_or(0) >= *n,
            CustomerEvent::LowScore(_) => low_scorers.contains(&c),
            CustomerEvent::Declining(_) => {
                recent_n.get(&c).copied().unwrap_or(0) < prior_n.get(&c).copied().unwrap_or(0)
            }
        }
    };
    let (mut na, mut nb, mut nab) = (0usize, 0usize, 0usize);
    for (&c, &churned) in &labels {
        let b = has_event(c);
        na += usize::from(churned);
        nb += usize::from(b);
        nab += usize::from(churned && b);
    }
    let n = labels.len();
    let counts = BayesCounts {
        customers: n,
        outcome: na,
        event: nb,
        both: nab,
    };
    if na == 0 {
        return Err(EngineError::Invalid(format!(
            "no customer churned (no purchase in the {} days after {}); P(B|A) cannot be estimated",
            opts.window_days,
            rfc3339(cutoff)
        )));
    }
    if nb == 0 {
        return Err(EngineError::Invalid(format!(
            "no customer has the event ({}); P(A|B) is undefined",
            event.describe(&low_rule)
        )));
    }
    let prior = na as f64 / n as f64;
    let likelihood = nab as f64 / na as f64;
    let evidence = nb as f64 / n as f64;
    let r = bayes::posterior(prior, likelihood, Evidence::Probability(evidence))?;
    let z = z_of(opts.confidence);
    let (lo, hi) = bayes::wilson_interval(nab as u64, nb as u64, z).unwrap_or((0.0, 1.0));
    let not_b = n - nb;
    crate::invariants::checked(
        "bayes",
        BayesStoreReport {
            posterior: r.posterior,
            evidence: r.evidence,
            prior,
            likelihood,
            likelihood_not: r.likelihood_not,
            interval: Interval {
                low: lo,
                high: hi,
                level: opts.confidence,
                method: format!(
                    "Wilson score interval of churners among the {nb} customers with the event ({nab} churned)"
                ),
            },
            lift: (prior > 0.0).then(|| r.posterior / prior),
            posterior_without_event: (not_b > 0).then(|| (na - nab) as f64 / not_b as f64),
            event: event.describe(&low_rule),
            outcome: format!(
                "churn: no purchase in the {} days from {} (customers with an order in the {} days before)",
                opts.window_days,
                rfc3339(cutoff),
                opts.active_days
            ),
            cutoff: rfc3339(cutoff),
            counts,
        },
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use infogap_core::dataset::{CustomerInfo, FeedbackFact, LineFact, OrderFact, ProductInfo};

    const T0: i64 = 1_700_000_000;

    /// 40 customers: the first 20 buy every 10 days until the end (20 orders);
    /// the next 20 buy twice early and stop 200 days before the end, 10 of them
    /// filed tickets. Customer 40 never buys.
    #[allow(clippy::field_reassign_with_default)]
    fn dataset() -> Dataset {
        let mut ds = Dataset::default();
        ds.products = vec![
            ProductInfo {
                id: 1,
                key: "p1".into(),
                name: None,
                category: Some("books".into()),
                price: None,
            },
            ProductInfo {
                id: 2,
                key: "p2".into(),
                name: None,
                category: Some("toys".into()),
                price: None,
            },
        ];
        let end = T0 + 400 * DAY;
        let mut oid = 0;
        for c in 0..41i64 {
            ds.customers.push(CustomerInfo {
                id: c,
                key: format!("crm:{c}"),
                attributes: Default::default(),
            });
            if c == 40 {
                continue;
            }
            let times: Vec<i64> = if c < 20 {
                (0..20).map(|k| end - k * 10 * DAY - c * 3600).collect()
            } else {
                vec![end - 300 * DAY, end - 200 * DAY - c * 3600]
            };
            for t in times {
                oid += 1;
                let amount = if c < 20 { 50.0 } else { 20.0 };
                ds.orders.push(OrderFact {
                    id: oid,
                    customer: c,
                    time: Some(t),
                    amount,
                    discount: 0.0,
                });
                let product = Some(if c < 20 { 1 } else { 2 });
                ds.lines.push(LineFact {
                    order: oid,
                    customer: c,
                    product,
                    quantity: 1.0,
                    amount,
                    discount: 0.0,
                    time: Some(t),
                });
            }
            if (20..30).contains(&c) {
                ds.feedback.push(FeedbackFact {
                    customer: c,
                    kind: "ticket".into(),
                    score: None,
                    text: None,
                    channel: None,
                    time: Some(end - 250 * DAY),
                });
            }
        }
        ds
    }

    #[test]
    fn rfm_segments_and_profiles() {
        let ds = dataset();
        let (rep, cust) = segments(&ds, &SegmentOptions::default()).unwrap();
        assert_eq!(rep.customers, 41);
        let sizes: usize = rep.segments.iter().map(|s| s.size).sum();
        assert_eq!(sizes, 41);
        assert_eq!(cust[40].segment, NO_PURCHASES);
        // Frequent recent buyers are the top segments; the quiet ones are not.
        assert!(
            ["champions", "loyal", "potential loyalists"].contains(&cust[0].segment.as_str()),
            "{}",
            cust[0].segment
        );
        assert!(
            ["hibernating", "lost", "about to sleep", "at risk"]
                .contains(&cust[25].segment.as_str()),
            "{}",
            cust[25].segment
        );
        let top = rep
            .segments
            .iter()
            .find(|s| s.name == cust[0].segment)
            .unwrap();
        assert_eq!(top.top_categories[0].category, "books");
        let rev: f64 = rep.segments.iter().map(|s| s.revenue_share).sum();
        assert!((rev - 1.0).abs() < 1e-9);
    }

    #[test]
    fn kmeans_segments_separate_the_two_groups() {
        let ds = dataset();
        let (rep, cust) = segments(
            &ds,
            &SegmentOptions {
                method: SegmentMethod::Kmeans,
                k: Some(2),
                seed: 0,
            },
        )
        .unwrap();
        assert_eq!(rep.k, Some(2));
        assert!(cust[..20].iter().all(|c| c.segment == "cluster 1"));
        assert!(cust[20..40].iter().all(|c| c.segment == "cluster 2"));
        let (auto, _) = segments(
            &ds,
            &SegmentOptions {
                method: SegmentMethod::Kmeans,
                k: None,
                seed: 0,
            },
        )
        .unwrap();
        assert!(auto.k.is_some() && !auto.silhouettes.is_empty());
    }

    #[test]
    fn export_writes_the_segment_and_refuses_unknown_names() {
        let ds = dataset();
        let dir = std::env::temp_dir().join(format!("infogap-seg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("c1.csv");
        let opts = SegmentOptions {
            method: SegmentMethod::Kmeans,
            k: Some(2),
            seed: 0,
        };
        let engine = crate::Engine::open(&dir.join("s.db")).unwrap();
        let access = crate::access::Policy::default()
            .authorize(
                &crate::access::Principal::local(None),
                infogap_core::access::Action::SegmentsExport,
            )
            .unwrap();
        // nobody granted marketing (opt-in by default): nobody is exported
        let none = export_segment(&engine, &access, &ds, &opts, "cluster-1", &out).unwrap();
        assert_eq!((none.written, none.left_out.not_granted), (0, 20));
        // marketing opt-out: everyone is
        let mut tx = engine.store().begin().unwrap();
        tx.set_setting("privacy", r#"{"consent":{"marketing":"opt-out"}}"#)
            .unwrap();
        tx.commit().unwrap();
        let all = export_segment(&engine, &access, &ds, &opts, "cluster-1", &out).unwrap();
        assert_eq!((all.written, all.left_out.total()), (20, 0));
        // the export is in the audit trail with its 20 customers
        let trail = engine
            .audit_sink()
            .unwrap()
            .log()
            .records(&Default::default())
            .unwrap();
        assert_eq!(trail[0].entry.action, "segments.export");
        assert_eq!(trail[0].entry.customers.len(), 20);
        assert_eq!(trail[1].entry.customers.len(), 0);
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("key,id,segment,recency_days,frequency,monetary,r,f,m"));
        assert_eq!(text.lines().count(), 21);
        let e = export_segment(
            &engine,
            &access,
            &ds,
            &SegmentOptions::default(),
            "vip",
            &out,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("segments are"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn bayes_counts_customers() {
        let ds = dataset();
        let opts = BayesStoreOptions {
            event: "no purchase in 30 days".into(),
            ..Default::default()
        };
        let r = bayes_from_store(&ds, &opts).unwrap();
        // 40 buyers before the cutoff; the 20 quiet ones churned and all have the event.
        assert_eq!(r.counts.customers, 40);
        assert_eq!(r.counts.outcome, 20);
        assert_eq!(r.counts.event, 20);
        assert_eq!(r.counts.both, 20);
        assert!((r.posterior - 1.0).abs() < 1e-12);
        assert!(r.interval.low > 0.8 && r.interval.high <= 1.0);
        let t = bayes_from_store(
            &ds,
            &BayesStoreOptions {
                event: "complaint".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(t.counts.event, 10);
        assert!((t.posterior - 1.0).abs() < 1e-12 && (t.prior - 0.5).abs() < 1e-12);
        assert!(
            bayes_from_store(
                &ds,
                &BayesStoreOptions {
                    event: "full moon".into(),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn event_vocabulary() {
        assert_eq!(
            CustomerEvent::parse("no purchase in 30 days").unwrap(),
            CustomerEvent::NoPurchaseIn(30)
        );
        assert_eq!(
            CustomerEvent::parse("No order for 45 days").unwrap(),
            CustomerEvent::NoPurchaseIn(45)
        );
        assert_eq!(
            CustomerEvent::parse("complaint").unwrap(),
            CustomerEvent::Complaints(1)
        );
        assert_eq!(
            CustomerEvent::parse("3+ tickets").unwrap(),
            CustomerEvent::Complaints(3)
        );
        assert_eq!(
            CustomerEvent::parse("low score").unwrap(),
            CustomerEvent::LowScore(None)
        );
        assert_eq!(
            CustomerEvent::parse("score <= 2").unwrap(),
            CustomerEvent::LowScore(Some(2.0))
        );
        assert_eq!(
            CustomerEvent::parse("declining purchases").unwrap(),
            CustomerEvent::Declining(90)
        );
        assert!(CustomerEvent::parse("no purchase in days").is_err());
        assert!((z_of(0.95) - 1.959964).abs() < 1e-5);
    }

    #[test]
    fn regression_on_a_frame() {
        let n = 200;
        // x is not a row counter (that would be dropped as id-like).
        let xv = |i: usize| ((i * 37) % 200) as f64;
        let x: Vec<Option<f64>> = (0..n).map(|i| Some(xv(i))).collect();
        let g: Vec<Option<String>> = (0..n)
            .map(|i| Some(["a", "b"][i % 2].to_string()))
            .collect();
        let y: Vec<Option<f64>> = (0..n)
            .map(|i| {
                Some(
                    1.0 + 0.5 * xv(i)
                        + if i % 2 == 1 { 3.0 } else { 0.0 }
                        + ((i * 7919) % 13) as f64 * 0.01,
                )
            })
            .collect();
        let f = Frame::new(vec![
            Column {
                name: "x".into(),
                data: ColumnData::Numeric(x),
            },
            Column {
                name: "g".into(),
                data: ColumnData::Categorical(g),
            },
            Column {
                name: "y".into(),
                data: ColumnData::Numeric(y),
            },
        ])
        .unwrap();
        let r = eval_regress(
            &f,
            &RegressOptions {
                target: "y".into(),
                ridge: 0.0,
                drop: vec![],
                folds: 5,
                seed: 0,
            },
        )
        .unwrap();
        assert!((r.coefficients["x"] - 0.5).abs() < 0.01);
        assert!(((r.coefficients["g=b"] - r.coefficients["g=a"]) - 3.0).abs() < 0.05);
        assert_eq!(r.aliased.len(), 1);
        assert!(
            r.cv.as_ref()
                .and_then(|cv| cv.r2)
                .is_some_and(|r2| r2 > 0.99)
        );
    }
}
