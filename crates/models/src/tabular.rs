//! From a typed table to a numeric design matrix, without leakage.
//!
//! `eval classify` and `eval regress` take "any CSV"; the file reader
//! (`infogap_ingest::table`) gives typed columns and this module turns them
//! into model inputs. It owns every decision between the two, and describes
//! each one so the JSON reports can say what was done:
//!
//! 1. [`prepare`] (uses the whole table, but never the target's values except
//!    to pick rows and encode the label): extracts the target (`--target COL`;
//!    binary labels with `--positive VALUE` or automatically for
//!    Yes/No, 1/0, true/false, y/n, t/f; numeric targets as they are), drops
//!    rows whose target is missing, drops `--drop` columns, and detects and
//!    drops columns that cannot generalize: ID-like columns (a categorical
//!    column whose non-missing values are (almost) all unique, ≥ 90 %; a column
//!    named like an id (`id`, `*_id`, `customerID`, `UserId`, …) with ≥ 90 %
//!    unique values; a numeric row counter 0..n-1 or 1..n), constant columns
//!    and columns whose every cell is blank.
//! 2. [`Encoder::fit`] on the *training rows only* (so cross-validation folds
//!    never leak) learns, per column: for numerics the training median (blank
//!    cells are imputed with it, and a `COL=missing` 0/1 indicator column is
//!    added when the training rows have any blanks) and, when standardizing,
//!    the training mean and standard deviation; for categoricals the sorted set
//!    of training levels, one-hot encoded with *all* levels kept (blank cells and
//!    levels unseen in training become all zeros).
//! 3. [`FittedEncoder::transform`] applies exactly that to any rows (training,
//!    validation or test) and returns a row-major [`Matrix`].
//!
//! [`FittedEncoder::report`] and [`PrepareReport`] are serializable
//! descriptions of all of the above.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;

use crate::ModelError;

/// The typed values of one column, one entry per row; `None` = missing.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// Numbers.
    Numeric(Vec<Option<f64>>),
    /// Text labels.
    Categorical(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Numeric(v) => v.len(),
            ColumnData::Categorical(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the cell at `row` is missing.
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            ColumnData::Numeric(v) => v[row].is_none(),
            ColumnData::Categorical(v) => v[row].is_none(),
        }
    }

    /// The cell at `row` rendered as text (`None` when missing).
    pub fn text(&self, row: usize) -> Option<String> {
        match self {
            ColumnData::Numeric(v) => v[row].map(fmt_num),
            ColumnData::Categorical(v) => v[row].clone(),
        }
    }

    fn select(&self, rows: &[usize]) -> ColumnData {
        match self {
            ColumnData::Numeric(v) => ColumnData::Numeric(rows.iter().map(|&r| v[r]).collect()),
            ColumnData::Categorical(v) => {
                ColumnData::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
        }
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// One named, typed column.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Values.
    pub data: ColumnData,
}

/// A table of typed columns of equal length.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    columns: Vec<Column>,
    n_rows: usize,
}

impl Frame {
    /// Builds a frame; all columns must have the same length and distinct names.
    pub fn new(columns: Vec<Column>) -> Result<Self, ModelError> {
        let n_rows = columns.first().map_or(0, |c| c.data.len());
        let mut seen = HashSet::new();
        for c in &columns {
            if c.data.len() != n_rows {
                return Err(ModelError::InvalidInput(format!(
                    "column {} has {} rows, expected {n_rows}",
                    c.name,
                    c.data.len()
                )));
            }
            if !seen.insert(c.name.as_str()) {
                return Err(ModelError::InvalidInput(format!(
                    "duplicate column name {}",
                    c.name
                )));
            }
        }
        Ok(Frame { columns, n_rows })
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// The columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Index of the column named `name` (exact, then case-insensitive).
    pub fn position(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
            })
    }

    /// The column named `name` (exact, then case-insensitive).
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.position(name).map(|i| &self.columns[i])
    }

    /// The sub-frame of the given rows (in that order).
    pub fn select_rows(&self, rows: &[usize]) -> Frame {
        Frame {
            columns: self
                .columns
                .iter()
                .map(|c| Column {
                    name: c.name.clone(),
                    data: c.data.select(rows),
                })
                .collect(),
            n_rows: rows.len(),
        }
    }
}

/// How the target column is to be read.
#[derive(Debug, Clone, PartialEq)]
pub enum TargetSpec {
    /// A binary label; `positive` names the positive value, else it is inferred
    /// for Yes/No, 1/0, true/false, y/n, t/f (positive = Yes/1/true/y/t).
    Binary {
        /// The positive value (`--positive`); other values are negative.
        positive: Option<String>,
    },
    /// A numeric target (regression).
    Numeric,
}

/// A column removed before encoding, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DroppedColumn {
    /// Column name.
    pub name: String,
    /// Why: `requested (--drop)`, `id-like: …`, `constant`.
    pub reason: String,
}

/// What [`prepare`] did with the target.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetReport {
    /// Target column name.
    pub name: String,
    /// `binary` or `numeric`.
    pub kind: String,
    /// For binary targets: the value counted as positive (1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positive: Option<String>,
    /// For binary targets: the values counted as negative (0).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub negative: Vec<String>,
    /// For binary targets: number of positive rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub positives: Option<usize>,
    /// How the positive value was chosen (`--positive`, `auto: Yes/No`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// What [`prepare`] did, for the JSON reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrepareReport {
    /// Rows in the input.
    pub rows_in: usize,
    /// Rows kept (target present).
    pub rows_used: usize,
    /// Rows dropped because the target was blank.
    pub rows_missing_target: usize,
    /// The target.
    pub target: TargetReport,
    /// Columns dropped before encoding, with reasons.
    pub dropped: Vec<DroppedColumn>,
    /// Feature columns kept, in order.
    pub kept: Vec<String>,
}

/// A table split into features and a numeric target.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// Feature columns (target and dropped columns removed, rows with a blank target removed).
    pub features: Frame,
    /// Target per row: 0/1 for binary, the value for numeric.
    pub y: Vec<f64>,
    /// What was done.
    pub report: PrepareReport,
}

/// Fraction of unique non-missing values from which a column is ID-like.
pub const ID_UNIQUE_RATIO: f64 = 0.9;

/// Extracts the target, drops `drop` columns, ID-like, constant and all-blank columns, and
/// rows with a missing target. See the module docs for the rules.
pub fn prepare(
    frame: &Frame,
    target: &str,
    spec: &TargetSpec,
    drop: &[String],
) -> Result<Prepared, ModelError> {
    let names = || {
        frame
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ti = frame
        .position(target)
        .ok_or_else(|| ModelError::InvalidParameter {
            name: "target".into(),
            reason: format!("no column {target:?}; columns are: {}", names()),
        })?;
    let tcol = &frame.columns[ti];
    let mut drop_idx = HashSet::new();
    let mut dropped = Vec::new();
    for d in drop.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
        let i = frame
            .position(d)
            .ok_or_else(|| ModelError::InvalidParameter {
                name: "drop".into(),
                reason: format!("no column {d:?}; columns are: {}", names()),
            })?;
        if i == ti {
            return Err(ModelError::InvalidParameter {
                name: "drop".into(),
                reason: format!("{d:?} is the target column"),
            });
        }
        if drop_idx.insert(i) {
            dropped.push(DroppedColumn {
                name: frame.columns[i].name.clone(),
                reason: "requested (--drop)".into(),
            });
        }
    }

    let rows: Vec<usize> = (0..frame.n_rows)
        .filter(|&r| !tcol.data.is_missing(r))
        .collect();
    if rows.is_empty() {
        return Err(ModelError::InvalidInput(format!(
            "target column {} has no values",
            tcol.name
        )));
    }
    let (y, treport) = encode_target(tcol, &rows, spec)?;

    let mut kept_cols = Vec::new();
    for (i, c) in frame.columns.iter().enumerate() {
        if i == ti || drop_idx.contains(&i) {
            continue;
        }
        let sub = c.data.select(&rows);
        if let Some(reason) = id_like(&c.name, &sub) {
            dropped.push(DroppedColumn {
                name: c.name.clone(),
                reason,
            });
            continue;
        }
        if (0..sub.len()).all(|r| sub.is_missing(r)) {
            dropped.push(DroppedColumn {
                name: c.name.clone(),
                reason: "empty (every cell blank)".into(),
            });
            continue;
        }
        if is_constant(&sub) {
            dropped.push(DroppedColumn {
                name: c.name.clone(),
                reason: "constant (a single value, no blanks)".into(),
            });
            continue;
        }
        kept_cols.push(Column {
            name: c.name.clone(),
            data: sub,
        });
    }
    if kept_cols.is_empty() {
        return Err(ModelError::InvalidInput("no feature columns left after dropping the target, --drop, ID-like, constant and empty columns".into()));
    }
    let kept = kept_cols.iter().map(|c| c.name.clone()).collect();
    let features = Frame::new(kept_cols)?;
    Ok(Prepared {
        features,
        y,
        report: PrepareReport {
            rows_in: frame.n_rows,
            rows_used: rows.len(),
            rows_missing_target: frame.n_rows - rows.len(),
            target: treport,
            dropped,
            kept,
        },
    })
}

fn encode_target(
    col: &Column,
    rows: &[usize],
    spec: &TargetSpec,
) -> Result<(Vec<f64>, TargetReport), ModelError> {
    match spec {
        TargetSpec::Numeric => match &col.data {
            ColumnData::Numeric(v) => {
                let y: Vec<f64> = rows.iter().filter_map(|&r| v[r]).collect();
                Ok((
                    y,
                    TargetReport {
                        name: col.name.clone(),
                        kind: "numeric".into(),
                        positive: None,
                        negative: vec![],
                        positives: None,
                        rule: None,
                    },
                ))
            }
            ColumnData::Categorical(v) => {
                let bad = rows
                    .iter()
                    .filter_map(|&r| v[r].as_deref())
                    .next()
                    .unwrap_or("");
                Err(ModelError::InvalidInput(format!(
                    "target column {} is not numeric (value {bad:?}); regression needs a numeric target",
                    col.name
                )))
            }
        },
        TargetSpec::Binary { positive } => {
            let texts: Vec<String> = rows
                .iter()
                .map(|&r| col.data.text(r).unwrap_or_default())
                .collect();
            let levels: BTreeSet<&str> = texts.iter().map(String::as_str).collect();
            let (pos, rule) = match positive {
                Some(p) => {
                    let found = levels
                        .iter()
                        .find(|l| **l == p.as_str())
                        .or_else(|| levels.iter().find(|l| l.eq_ignore_ascii_case(p)))
                        .or_else(|| {
                            // "1" matches "1.0" and the like for numeric labels.
                            let pv = p.trim().parse::<f64>().ok()?;
                            levels.iter().find(|l| l.parse::<f64>().ok() == Some(pv))
                        });
                    match found {
                        Some(f) => (f.to_string(), "--positive".to_string()),
                        None => {
                            return Err(ModelError::InvalidParameter {
                                name: "positive".into(),
                                reason: format!(
                                    "{p:?} does not occur in target column {}; its values are: {}",
                                    col.name,
                                    list_levels(&levels)
                                ),
                            });
                        }
                    }
                }
                None => auto_positive(&levels).ok_or_else(|| ModelError::InvalidParameter {
                    name: "positive".into(),
                    reason: format!(
                        "cannot tell which value of target column {} is positive (values: {}); pass --positive VALUE",
                        col.name,
                        list_levels(&levels)
                    ),
                })?,
            };
            if levels.len() < 2 {
                return Err(ModelError::InvalidInput(format!(
                    "target column {} has a single value ({}); a binary target needs two",
                    col.name,
                    list_levels(&levels)
                )));
            }
            let y: Vec<f64> = texts
                .iter()
                .map(|t| f64::from(u8::from(*t == pos)))
                .collect();
            let positives = y.iter().filter(|&&v| v > 0.5).count();
            let negative = levels
                .iter()
                .filter(|l| **l != pos)
                .map(|l| l.to_string())
                .collect();
            Ok((
                y,
                TargetReport {
                    name: col.name.clone(),
                    kind: "binary".into(),
                    positive: Some(pos),
                    negative,
                    positives: Some(positives),
                    rule: Some(rule),
                },
            ))
        }
    }
}

fn list_levels(levels: &BTreeSet<&str>) -> String {
    let mut v: Vec<String> = levels.iter().take(10).map(|l| format!("{l:?}")).collect();
    if levels.len() > 10 {
        v.push(format!("… ({} in all)", levels.len()));
    }
    v.join(", ")
}

fn auto_positive(levels: &BTreeSet<&str>) -> Option<(String, String)> {
    const PAIRS: [(&str, &str); 5] = [
        ("yes", "no"),
        ("1", "0"),
        ("true", "false"),
        ("y", "n"),
        ("t", "f"),
    ];
    if levels.len() != 2 {
        return None;
    }
    let lv: Vec<&str> = levels.iter().copied().collect();
    for (p, n) in PAIRS {
        for (a, b) in [(lv[0], lv[1]), (lv[1], lv[0])] {
            let norm = |s: &str| {
                let t = s.trim().to_ascii_lowercase();
                // 1.0 / 0.0 from numeric columns
                match t.parse::<f64>() {
                    Ok(1.0) => "1".to_string(),
                    Ok(0.0) => "0".to_string(),
                    _ => t,
                }
            };
            if norm(a) == p && norm(b) == n {
                return Some((a.to_string(), format!("auto: {a}/{b} → positive {a:?}")));
            }
        }
    }
    None
}

fn looks_like_id_name(name: &str) -> bool {
    let n = name.trim();
    let lower = n.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "id" | "idx" | "uuid" | "guid" | "key" | "index" | "row" | "rowid" | "row_id"
    ) {
        return true;
    }
    for suffix in [
        "_id", " id", "-id", ".id", "_key", "_uuid", "uuid", "_no", "_number",
    ] {
        if lower.ends_with(suffix) && lower.len() > suffix.len() {
            return true;
        }
    }
    // camelCase / PascalCase: customerID, UserId.
    let b = n.as_bytes();
    if b.len() > 2 && (n.ends_with("ID") || n.ends_with("Id")) {
        let prev = b[b.len() - 3];
        if prev.is_ascii_lowercase() || prev.is_ascii_digit() || n.ends_with("Id") {
            return true;
        }
    }
    false
}

/// Why a column is ID-like, or `None`.
fn id_like(name: &str, data: &ColumnData) -> Option<String> {
    let (present, distinct) = match data {
        ColumnData::Numeric(v) => {
            let vals: Vec<u64> = v.iter().flatten().map(|x| x.to_bits()).collect();
            let d = vals.iter().collect::<HashSet<_>>().len();
            (vals.len(), d)
        }
        ColumnData::Categorical(v) => {
            let vals: Vec<&str> = v.iter().flatten().map(String::as_str).collect();
            let d = vals.iter().collect::<HashSet<_>>().len();
            (vals.len(), d)
        }
    };
    if present < 10 {
        return None;
    }
    let ratio = distinct as f64 / present as f64;
    let share = format!("{distinct} distinct of {present} values");
    if looks_like_id_name(name) && ratio >= ID_UNIQUE_RATIO {
        return Some(format!("id-like: named like an identifier, {share}"));
    }
    match data {
        ColumnData::Categorical(_) if ratio >= ID_UNIQUE_RATIO => {
            Some(format!("id-like: (almost) every value unique, {share}"))
        }
        ColumnData::Numeric(v) if distinct == present && present == v.len() => {
            let first = v[0].unwrap_or(f64::NAN);
            let counter = (first == 0.0 || first == 1.0)
                && v.iter()
                    .enumerate()
                    .all(|(i, x)| *x == Some(first + i as f64));
            counter.then(|| {
                format!(
                    "id-like: a row counter {}..{}",
                    fmt_num(first),
                    fmt_num(first + present as f64 - 1.0)
                )
            })
        }
        _ => None,
    }
}

fn is_constant(data: &ColumnData) -> bool {
    match data {
        ColumnData::Numeric(v) => {
            let first = v.first().copied().flatten();
            first.is_some() && v.iter().all(|x| *x == first)
        }
        ColumnData::Categorical(v) => {
            let first = v.first().cloned().flatten();
            first.is_some() && v.iter().all(|x| *x == first)
        }
    }
}

/// A dense row-major matrix of `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    /// Values, row after row.
    pub data: Vec<f64>,
    /// Number of rows.
    pub n_rows: usize,
    /// Number of columns.
    pub n_cols: usize,
}

impl Matrix {
    /// Builds a matrix from row-major values.
    pub fn new(data: Vec<f64>, n_rows: usize, n_cols: usize) -> Result<Self, ModelError> {
        if data.len() != n_rows * n_cols {
            return Err(ModelError::InvalidInput(format!(
                "matrix data has {} values, expected {n_rows}×{n_cols}",
                data.len()
            )));
        }
        Ok(Matrix {
            data,
            n_rows,
            n_cols,
        })
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// Cell `(i, j)`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n_cols + j]
    }

    /// Rows as an iterator of slices.
    pub fn rows(&self) -> impl Iterator<Item = &[f64]> {
        self.data.chunks_exact(self.n_cols.max(1)).take(self.n_rows)
    }

    /// The columns, each as its own vector (column-major copy).
    pub fn to_columns(&self) -> Vec<Vec<f64>> {
        let mut cols = vec![Vec::with_capacity(self.n_rows); self.n_cols];
        for r in self.rows() {
            for (c, v) in cols.iter_mut().zip(r) {
                c.push(*v);
            }
        }
        cols
    }
}

/// Options of the [`Encoder`].
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderOptions {
    /// Standardize numeric columns (mean 0, sd 1 on the training rows). One-hot
    /// and missing-indicator columns stay 0/1.
    pub standardize: bool,
}

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions { standardize: true }
    }
}

/// Learns an encoding from training rows; see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Encoder {
    /// Options.
    pub options: EncoderOptions,
}

#[derive(Debug, Clone)]
enum Plan {
    Numeric {
        src: usize,
        median: f64,
        indicator: bool,
        mean: f64,
        scale: f64,
    },
    OneHot {
        src: usize,
        levels: Vec<String>,
        index: HashMap<String, usize>,
    },
}

/// How one numeric column was encoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NumericEncoding {
    /// Column name.
    pub name: String,
    /// Blank cells among the training rows.
    pub blanks_in_training: usize,
    /// Value blanks are imputed with (the training median).
    pub imputed_with: f64,
    /// Name of the missing-indicator column, when one was added.
    pub indicator: Option<String>,
    /// Training mean subtracted (when standardizing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    /// Training standard deviation divided by (when standardizing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
}

/// How one categorical column was encoded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CategoricalEncoding {
    /// Column name.
    pub name: String,
    /// Number of training levels (= one-hot columns).
    pub levels: usize,
    /// Blank cells among the training rows (encoded as all zeros).
    pub blanks_in_training: usize,
}

/// What the fitted encoder does, for the JSON reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EncodingReport {
    /// Number of output feature columns.
    pub features: usize,
    /// Numeric columns were standardized.
    pub standardized: bool,
    /// Numeric columns.
    pub numeric: Vec<NumericEncoding>,
    /// Categorical columns.
    pub categorical: Vec<CategoricalEncoding>,
    /// The rules, in words.
    pub rules: Vec<String>,
}

/// An encoder fitted on training rows: applies the same encoding to any rows.
#[derive(Debug, Clone)]
pub struct FittedEncoder {
    plans: Vec<Plan>,
    names: Vec<String>,
    /// For each output column: the source column and whether it is a standardized numeric.
    origin: Vec<(usize, bool)>,
    report: EncodingReport,
    n_source_cols: usize,
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

impl Encoder {
    /// An encoder with the given options.
    pub fn new(options: EncoderOptions) -> Self {
        Encoder { options }
    }

    /// Learns the encoding from `rows` of `frame` only.
    pub fn fit(&self, frame: &Frame, rows: &[usize]) -> Result<FittedEncoder, ModelError> {
        if rows.is_empty() {
            return Err(ModelError::InvalidInput(
                "no training rows to fit the encoding on".into(),
            ));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= frame.n_rows) {
            return Err(ModelError::InvalidInput(format!(
                "row {r} out of range ({} rows)",
                frame.n_rows
            )));
        }
        let mut plans = Vec::new();
        let mut names = Vec::new();
        let mut origin = Vec::new();
        let mut numeric = Vec::new();
        let mut categorical = Vec::new();
        for (src, col) in frame.columns.iter().enumerate() {
            match &col.data {
                ColumnData::Numeric(v) => {
                    let mut present: Vec<f64> = rows.iter().filter_map(|&r| v[r]).collect();
                    let blanks = rows.len() - present.len();
                    let med = median(&mut present);
                    let indicator = blanks > 0;
                    let (mean, scale) = if self.options.standardize {
                        let n = rows.len() as f64;
                        let vals = rows.iter().map(|&r| v[r].unwrap_or(med));
                        let mean = vals.clone().sum::<f64>() / n;
                        let var = vals.map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
                        let sd = var.sqrt();
                        (
                            mean,
                            if sd > 1e-12 * mean.abs().max(1.0) {
                                sd
                            } else {
                                1.0
                            },
                        )
                    } else {
                        (0.0, 1.0)
                    };
                    names.push(col.name.clone());
                    origin.push((src, self.options.standardize));
                    let ind_name = indicator.then(|| format!("{}=missing", col.name));
                    if let Some(n) = &ind_name {
                        names.push(n.clone());
                        origin.push((src, false));
                    }
                    numeric.push(NumericEncoding {
                        name: col.name.clone(),
                        blanks_in_training: blanks,
                        imputed_with: med,
                        indicator: ind_name,
                        mean: self.options.standardize.then_some(mean),
                        scale: self.options.standardize.then_some(scale),
                    });
                    plans.push(Plan::Numeric {
                        src,
                        median: med,
                        indicator,
                        mean,
                        scale,
                    });
                }
                ColumnData::Categorical(v) => {
                    let set: BTreeSet<&str> =
                        rows.iter().filter_map(|&r| v[r].as_deref()).collect();
                    let blanks = rows.iter().filter(|&&r| v[r].is_none()).count();
                    let levels: Vec<String> = set.into_iter().map(str::to_string).collect();
                    let index = levels
                        .iter()
                        .enumerate()
                        .map(|(i, l)| (l.clone(), i))
                        .collect();
                    for l in &levels {
                        names.push(format!("{}={}", col.name, l));
                        origin.push((src, false));
                    }
                    categorical.push(CategoricalEncoding {
                        name: col.name.clone(),
                        levels: levels.len(),
                        blanks_in_training: blanks,
                    });
                    plans.push(Plan::OneHot { src, levels, index });
                }
            }
        }
        let mut rules = vec![
            "categorical columns: one-hot, all training levels kept; blank cells and levels unseen in training → all zeros"
                .to_string(),
            "numeric columns: blank cells imputed with the training median; a COL=missing 0/1 column is added when the training rows have blanks"
                .to_string(),
        ];
        if self.options.standardize {
            rules.push(
                "numeric columns standardized with the training mean and standard deviation".into(),
            );
        }
        rules.push("everything above is fitted on the training rows only".into());
        for n in numeric.iter().filter(|n| n.blanks_in_training > 0) {
            rules.push(format!(
                "{}: {} blank cells imputed with median {}, indicator {}",
                n.name,
                n.blanks_in_training,
                fmt_num(n.imputed_with),
                n.indicator.as_deref().unwrap_or("-")
            ));
        }
        let report = EncodingReport {
            features: names.len(),
            standardized: self.options.standardize,
            numeric,
            categorical,
            rules,
        };
        Ok(FittedEncoder {
            plans,
            names,
            origin,
            report,
            n_source_cols: frame.columns.len(),
        })
    }
}

impl FittedEncoder {
    /// Names of the output columns (`COL`, `COL=missing`, `COL=level`).
    pub fn feature_names(&self) -> &[String] {
        &self.names
    }

    /// Number of output columns.
    pub fn n_features(&self) -> usize {
        self.names.len()
    }

    /// What was learned, for reports.
    pub fn report(&self) -> &EncodingReport {
        &self.report
    }

    /// For each output column, the index of the source column in the frame.
    pub fn source_columns(&self) -> Vec<usize> {
        self.origin.iter().map(|o| o.0).collect()
    }

    /// Encodes `rows` of `frame` (which must have the columns it was fitted on).
    pub fn transform(&self, frame: &Frame, rows: &[usize]) -> Result<Matrix, ModelError> {
        if frame.columns.len() != self.n_source_cols {
            return Err(ModelError::InvalidInput(format!(
                "frame has {} columns, the encoder was fitted on {}",
                frame.columns.len(),
                self.n_source_cols
            )));
        }
        if let Some(&r) = rows.iter().find(|&&r| r >= frame.n_rows) {
            return Err(ModelError::InvalidInput(format!(
                "row {r} out of range ({} rows)",
                frame.n_rows
            )));
        }
        let p = self.names.len();
        let mut data = vec![0.0; rows.len() * p];
        for (i, &r) in rows.iter().enumerate() {
            let out = &mut data[i * p..(i + 1) * p];
            let mut j = 0;
            for plan in &self.plans {
                match plan {
                    Plan::Numeric {
                        src,
                        median,
                        indicator,
                        mean,
                        scale,
                    } => {
                        let ColumnData::Numeric(v) = &frame.columns[*src].data else {
                            return Err(ModelError::InvalidInput(format!(
                                "column {} is not numeric any more",
                                frame.columns[*src].name
                            )));
                        };
                        let x = v[r];
                        out[j] = (x.unwrap_or(*median) - mean) / scale;
                        j += 1;
                        if *indicator {
                            out[j] = f64::from(u8::from(x.is_none()));
                            j += 1;
                        }
                    }
                    Plan::OneHot { src, levels, index } => {
                        let col = &frame.columns[*src].data;
                        if let Some(t) = col.text(r)
                            && let Some(&k) = index.get(&t)
                        {
                            out[j + k] = 1.0;
                        }
                        j += levels.len();
                    }
                }
            }
        }
        Matrix::new(data, rows.len(), p)
    }

    /// Maps coefficients of a linear model fitted on the encoded (standardized)
    /// columns back to the original units: `β_raw = β / scale`,
    /// `intercept_raw = intercept − Σ β·mean/scale`. Returns (coefficients, intercept).
    pub fn unstandardize(&self, coef: &[f64], intercept: f64) -> (Vec<f64>, f64) {
        let mut raw = coef.to_vec();
        let mut b0 = intercept;
        let mut j = 0;
        for plan in &self.plans {
            match plan {
                Plan::Numeric {
                    mean,
                    scale,
                    indicator,
                    ..
                } => {
                    if j < raw.len() {
                        raw[j] = coef[j] / scale;
                        b0 -= coef[j] * mean / scale;
                    }
                    j += 1 + usize::from(*indicator);
                }
                Plan::OneHot { levels, .. } => j += levels.len(),
            }
        }
        (raw, b0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cat(name: &str, v: &[&str]) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Categorical(
                v.iter()
                    .map(|s| (!s.is_empty()).then(|| s.to_string()))
                    .collect(),
            ),
        }
    }

    fn num(name: &str, v: &[Option<f64>]) -> Column {
        Column {
            name: name.into(),
            data: ColumnData::Numeric(v.to_vec()),
        }
    }

    fn frame12() -> Frame {
        let ids: Vec<String> = (0..12).map(|i| format!("C{i:03}")).collect();
        let idr: Vec<&str> = ids.iter().map(String::as_str).collect();
        Frame::new(vec![
            cat("customerID", &idr),
            cat(
                "color",
                &[
                    "red", "blue", "red", "green", "", "blue", "red", "blue", "red", "green",
                    "red", "blue",
                ],
            ),
            num(
                "charges",
                &[
                    Some(1.0),
                    Some(2.0),
                    None,
                    Some(4.0),
                    Some(5.0),
                    Some(6.0),
                    Some(7.0),
                    Some(8.0),
                    Some(9.0),
                    Some(10.0),
                    Some(11.0),
                    Some(12.0),
                ],
            ),
            num("const", &[Some(3.0); 12]),
            cat(
                "Churn",
                &[
                    "Yes", "No", "No", "Yes", "No", "No", "Yes", "No", "No", "Yes", "No", "No",
                ],
            ),
        ])
        .unwrap()
    }

    #[test]
    fn prepare_detects_target_ids_and_constants() {
        let p = prepare(
            &frame12(),
            "churn",
            &TargetSpec::Binary { positive: None },
            &[],
        )
        .unwrap();
        assert_eq!(p.y.iter().sum::<f64>(), 4.0);
        assert_eq!(p.report.target.positive.as_deref(), Some("Yes"));
        let dropped: Vec<&str> = p.report.dropped.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(dropped, ["customerID", "const"]);
        assert!(p.report.dropped[0].reason.starts_with("id-like"));
        assert_eq!(p.report.kept, ["color", "charges"]);
    }

    #[test]
    fn explicit_positive_and_errors() {
        let f = frame12();
        let p = prepare(
            &f,
            "Churn",
            &TargetSpec::Binary {
                positive: Some("No".into()),
            },
            &["color".into()],
        )
        .unwrap();
        assert_eq!(p.y.iter().sum::<f64>(), 8.0);
        assert_eq!(p.report.dropped[0].reason, "requested (--drop)");
        let e = prepare(
            &f,
            "Churn",
            &TargetSpec::Binary {
                positive: Some("Maybe".into()),
            },
            &[],
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"Maybe\""), "{e}");
        let e = prepare(&f, "nope", &TargetSpec::Numeric, &[]).unwrap_err();
        assert!(e.to_string().contains("columns are"), "{e}");
        let e = prepare(&f, "color", &TargetSpec::Binary { positive: None }, &[]).unwrap_err();
        assert!(e.to_string().contains("--positive"), "{e}");
    }

    #[test]
    fn one_hot_fitted_on_training_rows_and_unseen_levels_are_zero() {
        let p = prepare(
            &frame12(),
            "Churn",
            &TargetSpec::Binary { positive: None },
            &[],
        )
        .unwrap();
        // Training rows exclude row 3 and 9 (the only "green") and row 2 (blank charges).
        let train: Vec<usize> = vec![0, 1, 4, 5, 6, 7, 8, 10, 11];
        let enc = Encoder::new(EncoderOptions { standardize: false })
            .fit(&p.features, &train)
            .unwrap();
        assert_eq!(enc.feature_names(), ["color=blue", "color=red", "charges"]);
        let m = enc.transform(&p.features, &[3, 2, 4]).unwrap();
        assert_eq!(m.row(0), [0.0, 0.0, 4.0]); // unseen green → zeros
        // blank charges in a non-training row: imputed with the training median, no indicator
        assert_eq!(m.row(1), [0.0, 1.0, 7.0]);
        assert_eq!(m.row(2), [0.0, 0.0, 5.0]); // blank color → zeros
    }

    #[test]
    fn blanks_in_training_get_median_and_indicator_and_standardization() {
        let p = prepare(
            &frame12(),
            "Churn",
            &TargetSpec::Binary { positive: None },
            &[],
        )
        .unwrap();
        let all: Vec<usize> = (0..12).collect();
        let enc = Encoder::default().fit(&p.features, &all).unwrap();
        let names = enc.feature_names();
        assert!(names.contains(&"charges=missing".to_string()));
        let rep = enc.report();
        assert_eq!(rep.numeric[0].blanks_in_training, 1);
        assert_eq!(rep.numeric[0].imputed_with, 7.0);
        let m = enc.transform(&p.features, &all).unwrap();
        let j = names.iter().position(|n| n == "charges").unwrap();
        let col: Vec<f64> = (0..12).map(|i| m.get(i, j)).collect();
        let mean = col.iter().sum::<f64>() / 12.0;
        let var = col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 12.0;
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-9);
        assert_eq!(m.get(2, j + 1), 1.0);
        // unstandardize maps a slope of sd back to 1 per unit
        let sd = rep.numeric[0].scale.unwrap();
        let mut coef = vec![0.0; names.len()];
        coef[j] = sd;
        let (raw, b0) = enc.unstandardize(&coef, 0.0);
        assert!((raw[j] - 1.0).abs() < 1e-12);
        assert!((b0 + rep.numeric[0].mean.unwrap()).abs() < 1e-9);
    }

    #[test]
    fn numeric_targets_and_row_counters() {
        let f = Frame::new(vec![
            num("idx", &(0..20).map(|i| Some(i as f64)).collect::<Vec<_>>()),
            num(
                "x",
                &(0..20).map(|i| Some((i % 3) as f64)).collect::<Vec<_>>(),
            ),
            num(
                "y",
                &(0..20)
                    .map(|i| if i == 5 { None } else { Some(i as f64 * 2.0) })
                    .collect::<Vec<_>>(),
            ),
        ])
        .unwrap();
        let p = prepare(&f, "y", &TargetSpec::Numeric, &[]).unwrap();
        assert_eq!(p.report.rows_missing_target, 1);
        assert_eq!(p.y.len(), 19);
        // idx is no longer a perfect counter after the row drop, but is named like an index.
        assert_eq!(p.report.dropped.len(), 1, "{:?}", p.report.dropped);
        assert!(p.report.dropped[0].reason.starts_with("id-like"));
    }

    #[test]
    fn all_blank_columns_are_dropped() {
        let f = Frame::new(vec![
            num("a", &[Some(1.0), Some(2.0), Some(3.0)]),
            cat("empty", &["", "", ""]),
            num("y", &[Some(1.0), Some(0.0), Some(1.0)]),
        ])
        .unwrap();
        let p = prepare(&f, "y", &TargetSpec::Binary { positive: None }, &[]).unwrap();
        assert_eq!(p.report.kept, ["a"]);
        assert_eq!(p.report.dropped[0].reason, "empty (every cell blank)");
    }

    #[test]
    fn id_names() {
        for n in ["id", "customerID", "UserId", "order_id", "Customer ID"] {
            assert!(looks_like_id_name(n), "{n}");
        }
        for n in ["paid", "valid", "Android", "tenure"] {
            assert!(!looks_like_id_name(n), "{n}");
        }
    }
}
