//! Binary classification: logistic regression, a readable decision tree,
//! gradient-boosted trees, a blend, and `auto`, which picks among them by
//! inner stratified cross-validation on the training rows only.
//!
//! Why here and shaped like this: churn risk on the store and `eval classify`
//! on any CSV share one family. Every model takes a dense row-major
//! [`DenseMatrix`] (the tabular layer builds it from a typed table; the
//! engine builds it from customer features) and `bool` labels, and every
//! fitted [`Classifier`] answers the positive-class probability, per-feature
//! contributions in log-odds (so churn reasons can be worded for a person),
//! and a readable description. Fitted models are `serde` values so the engine
//! can save them in the store. [`PlattScaler`] calibrates probabilities from
//! out-of-fold scores; [`stratified_folds`] is the one fold splitter.

pub mod bins;
pub mod gbm;
pub mod logreg;
pub mod tree;

use std::time::Instant;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::ModelError;
use crate::metrics::classification::BinaryMetrics;

pub use gbm::{GbmConfig, GbmModel};
pub use logreg::{LogRegConfig, LogRegModel};
pub use tree::{TreeConfig, TreeModel};

/// A dense matrix, row-major, with column names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseMatrix {
    /// Number of rows.
    pub n_rows: usize,
    /// Number of columns.
    pub n_cols: usize,
    /// `data[i * n_cols + j]`.
    pub data: Vec<f64>,
    /// Column names (`len == n_cols`).
    pub names: Vec<String>,
}

impl DenseMatrix {
    /// Builds a matrix from row-major data and column names.
    pub fn new(n_rows: usize, data: Vec<f64>, names: Vec<String>) -> Result<Self, ModelError> {
        let n_cols = names.len();
        if data.len() != n_rows * n_cols {
            return Err(ModelError::InvalidInput(format!(
                "matrix data has {} values, expected {n_rows} rows x {n_cols} columns",
                data.len()
            )));
        }
        Ok(DenseMatrix {
            n_rows,
            n_cols,
            data,
            names,
        })
    }

    /// Builds a matrix from rows (columns named `x0`, `x1`, …).
    pub fn from_rows(rows: &[Vec<f64>]) -> Result<Self, ModelError> {
        let n_cols = rows.first().map_or(0, Vec::len);
        if rows.iter().any(|r| r.len() != n_cols) {
            return Err(ModelError::InvalidInput("rows of different lengths".into()));
        }
        let data = rows.iter().flatten().copied().collect();
        let names = (0..n_cols).map(|j| format!("x{j}")).collect();
        DenseMatrix::new(rows.len(), data, names)
    }

    /// Value at row `i`, column `j`.
    #[inline]
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.n_cols + j]
    }

    /// Row `i` as a slice.
    #[inline]
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.n_cols..(i + 1) * self.n_cols]
    }

    /// The rows with the given indices, in that order.
    pub fn select_rows(&self, idx: &[usize]) -> DenseMatrix {
        let mut data = Vec::with_capacity(idx.len() * self.n_cols);
        for &i in idx {
            data.extend_from_slice(self.row(i));
        }
        DenseMatrix {
            n_rows: idx.len(),
            n_cols: self.n_cols,
            data,
            names: self.names.clone(),
        }
    }
}

fn check_xy(x: &DenseMatrix, y: &[bool]) -> Result<(), ModelError> {
    if x.n_rows != y.len() {
        return Err(ModelError::InvalidInput(format!(
            "{} rows but {} labels",
            x.n_rows,
            y.len()
        )));
    }
    if x.n_rows == 0 || x.n_cols == 0 {
        return Err(ModelError::InvalidInput(
            "no rows or no feature columns".into(),
        ));
    }
    let pos = y.iter().filter(|&&v| v).count();
    if pos == 0 || pos == y.len() {
        return Err(ModelError::InvalidInput(
            "the labels hold only one class".into(),
        ));
    }
    Ok(())
}

/// Tree routing: rows with `value <= threshold` or a missing (NaN) value go left.
#[inline]
pub(crate) fn goes_left(value: f64, threshold: f64) -> bool {
    value <= threshold || value.is_nan()
}

/// Stratified shuffled k-fold assignment: returns the fold (0..k) of each row.
/// Positives and negatives are shuffled separately with `seed` and dealt
/// round-robin, so each fold has the same class balance (±1 row).
pub fn stratified_folds(y: &[bool], k: usize, seed: u64) -> Result<Vec<usize>, ModelError> {
    if k < 2 {
        return Err(ModelError::InvalidParameter {
            name: "folds".into(),
            reason: "need at least 2".into(),
        });
    }
    let pos: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
    let neg: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).collect();
    if pos.len() < k || neg.len() < k {
        return Err(ModelError::InvalidInput(format!(
            "{k} stratified folds need at least {k} rows of each class ({} positive, {} negative)",
            pos.len(),
            neg.len()
        )));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0usize; y.len()];
    let mut offset = 0;
    for mut group in [pos, neg] {
        group.shuffle(&mut rng);
        for (r, &i) in group.iter().enumerate() {
            fold[i] = (r + offset) % k;
        }
        offset += group.len();
    }
    Ok(fold)
}

/// Row indices of (train, test) for fold `f`.
pub fn split_indices(folds: &[usize], f: usize) -> (Vec<usize>, Vec<usize>) {
    let mut tr = Vec::new();
    let mut te = Vec::new();
    for (i, &g) in folds.iter().enumerate() {
        if g == f { te.push(i) } else { tr.push(i) }
    }
    (tr, te)
}

/// Which model family to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Standardized L2 logistic regression (with automatic nonlinear terms when inner CV prefers them under `auto`).
    Logreg,
    /// Depth-limited CART tree.
    Tree,
    /// Gradient-boosted trees (our own histogram implementation).
    Gbm,
    /// Chosen by inner cross-validation among all of the above and a blend.
    Auto,
}

impl std::str::FromStr for ModelKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "logreg" | "logistic" => Ok(ModelKind::Logreg),
            "tree" | "cart" => Ok(ModelKind::Tree),
            "gbm" | "boost" => Ok(ModelKind::Gbm),
            "auto" => Ok(ModelKind::Auto),
            other => Err(ModelError::InvalidParameter {
                name: "model".into(),
                reason: format!("`{other}` is not one of logreg, tree, gbm, auto"),
            }),
        }
    }
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Logreg => "logreg",
            ModelKind::Tree => "tree",
            ModelKind::Gbm => "gbm",
            ModelKind::Auto => "auto",
        })
    }
}

/// A fitted classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Classifier {
    /// Logistic regression.
    Logreg(LogRegModel),
    /// Decision tree.
    Tree(TreeModel),
    /// Boosted trees.
    Gbm(GbmModel),
    /// Weighted average of probabilities of several models.
    Blend(Vec<(f64, Classifier)>),
    /// Plain average of the probabilities of one family's models fitted on
    /// different training subsets (`auto` keeps its inner-fold models instead
    /// of refitting).
    Bag(Vec<Classifier>),
}

impl Classifier {
    /// Positive-class probability of one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        match self {
            Classifier::Logreg(m) => m.predict_row(row),
            Classifier::Tree(m) => m.predict_row(row),
            Classifier::Gbm(m) => m.predict_row(row),
            Classifier::Blend(parts) => parts.iter().map(|(w, m)| w * m.predict_row(row)).sum(),
            Classifier::Bag(models) => {
                models.iter().map(|m| m.predict_row(row)).sum::<f64>() / models.len().max(1) as f64
            }
        }
    }

    /// Positive-class probability of every row.
    pub fn predict_proba(&self, x: &DenseMatrix) -> Vec<f64> {
        (0..x.n_rows).map(|i| self.predict_row(x.row(i))).collect()
    }

    /// Per-input-column contributions to the log-odds of one row, relative to
    /// the model's baseline (logistic regression: coefficient × standardized
    /// value, nonlinear terms folded into their source column; trees: change
    /// of log-odds along the path, credited to the split's column; blends: the
    /// weighted sum).
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        match self {
            Classifier::Logreg(m) => m.contributions(row),
            Classifier::Tree(m) => m.contributions(row),
            Classifier::Gbm(m) => m.contributions(row),
            Classifier::Blend(parts) => {
                let mut out = vec![0.0; row.len()];
                for (w, m) in parts {
                    for (o, c) in out.iter_mut().zip(m.contributions(row)) {
                        *o += w * c;
                    }
                }
                out
            }
            Classifier::Bag(models) => {
                let mut out = vec![0.0; row.len()];
                let w = 1.0 / models.len().max(1) as f64;
                for m in models {
                    for (o, c) in out.iter_mut().zip(m.contributions(row)) {
                        *o += w * c;
                    }
                }
                out
            }
        }
    }

    /// Short name (`logreg`, `logreg+nonlinear`, `tree(depth 5)`, `gbm(200 trees)`, `blend(..)`).
    pub fn name(&self) -> String {
        match self {
            Classifier::Logreg(m) => {
                if m.nonlinear() {
                    "logreg+nonlinear".into()
                } else {
                    "logreg".into()
                }
            }
            Classifier::Tree(m) => format!("tree(depth {})", m.depth()),
            Classifier::Gbm(m) => format!("gbm({} trees)", m.n_trees()),
            Classifier::Blend(parts) => {
                let inner: Vec<String> = parts
                    .iter()
                    .map(|(w, m)| format!("{w:.2}*{}", m.name()))
                    .collect();
                format!("blend({})", inner.join(" + "))
            }
            Classifier::Bag(models) => match models.first() {
                Some(m) => format!("{}×{}", m.name(), models.len()),
                None => "bag()".into(),
            },
        }
    }
}

/// Settings of every family plus the selection protocol of `auto`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// Which family.
    pub kind: ModelKind,
    /// Logistic-regression settings.
    pub logreg: LogRegConfig,
    /// Tree settings.
    pub tree: TreeConfig,
    /// Boosting settings.
    pub gbm: GbmConfig,
    /// Inner folds used by `auto` (and for out-of-fold calibration scores).
    /// Default 2: every candidate is fitted on each half of the training rows
    /// and scored on the other; the chosen ones keep both halves' models.
    pub inner_folds: usize,
    /// Seed of every random choice (folds, subsampling).
    pub seed: u64,
}

impl Default for ClassifierConfig {
    fn default() -> Self {
        ClassifierConfig {
            kind: ModelKind::Auto,
            logreg: LogRegConfig::default(),
            tree: TreeConfig::default(),
            gbm: GbmConfig::default(),
            inner_folds: 2,
            seed: 0,
        }
    }
}

/// Rounds of greedy ensemble selection in `auto` (weights are multiples of 1/rounds).
pub const ENSEMBLE_ROUNDS: usize = 10;

/// One model considered by `auto`, with its inner-CV score.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CandidateScore {
    /// Candidate name.
    pub name: String,
    /// Mean ROC AUC over the inner folds.
    pub inner_roc_auc: f64,
}

/// A fitted classifier and how it was chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FitOutcome {
    /// The model.
    pub model: Classifier,
    /// Inner-CV scores of every candidate (`auto` only; empty otherwise).
    pub candidates: Vec<CandidateScore>,
    /// Out-of-fold probabilities of the chosen candidate on the training rows
    /// (filled when `auto` ran inner CV or when asked with [`ClassifierConfig::fit_with_oof`]).
    pub oof: Vec<f64>,
    /// What went wrong on the way without stopping the fit (a candidate that
    /// `auto` left out because its fit failed its health check, with why).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Clone)]
enum Candidate {
    Logreg(LogRegConfig),
    Tree(TreeConfig),
    Gbm(GbmConfig),
}

impl Candidate {
    fn name(&self) -> String {
        match self {
            Candidate::Logreg(c) => {
                if c.nonlinear {
                    "logreg+nonlinear".into()
                } else {
                    "logreg".into()
                }
            }
            Candidate::Tree(c) => format!("tree(depth {})", c.max_depth),
            Candidate::Gbm(c) => format!("gbm({} trees)", c.n_trees),
        }
    }

    fn fit(&self, x: &DenseMatrix, y: &[bool]) -> Result<Classifier, ModelError> {
        Ok(match self {
            Candidate::Logreg(c) => Classifier::Logreg(c.fit(x, y)?),
            Candidate::Tree(c) => Classifier::Tree(c.fit(x, y)?),
            Candidate::Gbm(c) => Classifier::Gbm(c.fit(x, y)?),
        })
    }
}

/// What the inner cross-validation of `auto` leaves behind.
struct InnerFits {
    /// Out-of-fold probabilities, `oof[candidate][row]`.
    oof: Vec<Vec<f64>>,
    /// Inner fold of each row.
    folds: Vec<usize>,
    /// `models[candidate][fold]`: each fitted on the other folds' rows.
    models: Vec<Vec<Classifier>>,
    /// Why a candidate failed (its fit errored on some split, or its
    /// out-of-fold probabilities are not finite or all the same); `None` when healthy.
    failures: Vec<Option<String>>,
}

/// The health check every fitted classifier's probabilities must pass:
/// finite, inside [0, 1], and not all the same (the labels hold both classes,
/// so a model that cannot tell any two rows apart has collapsed).
pub fn check_probabilities(name: &str, p: &[f64]) -> Result<(), ModelError> {
    if let Some(v) = p
        .iter()
        .find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v)))
    {
        return Err(ModelError::FitFailed(format!(
            "{name} gives a probability of {v}, outside [0, 1]"
        )));
    }
    let (lo, hi) = p
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if p.len() > 1 && hi - lo <= 1e-12 {
        return Err(ModelError::FitFailed(format!(
            "{name} predicts the same probability ({lo:.4}) for all {} rows",
            p.len()
        )));
    }
    Ok(())
}

/// Fits every candidate on every inner training split (in parallel), scores
/// the held-out rows, and keeps the models. Boosting and the tree bin `x` once
/// and reuse it for every split (cut points come from feature values only, no
/// labels); boosting stops early on each split's held-out rows.
fn inner_fits(
    cands: &[Candidate],
    x: &DenseMatrix,
    y: &[bool],
    k: usize,
    seed: u64,
) -> Result<InnerFits, ModelError> {
    use rayon::prelude::*;
    let folds = stratified_folds(y, k, seed)?;
    let splits: Vec<(Vec<usize>, Vec<usize>)> = (0..k).map(|f| split_indices(&folds, f)).collect();
    let (binned, tree_bins) = rayon::join(
        || {
            cands.iter().find_map(|c| match c {
                Candidate::Gbm(g) => Some(gbm::BinnedMatrix::new(x, g.max_bins)),
                _ => None,
            })
        },
        || {
            cands.iter().find_map(|c| match c {
                Candidate::Tree(t) => {
                    let b = bins::Binner::fit(x, t.max_bins);
                    let v = b.transform(x);
                    Some((b, v))
                }
                _ => None,
            })
        },
    );
    let jobs: Vec<(usize, usize)> = (0..cands.len())
        .flat_map(|c| (0..k).map(move |f| (f, c)))
        .collect();
    type FoldFit = (usize, usize, Classifier, Vec<f64>);
    let results: Vec<Result<FoldFit, ModelError>> = jobs
        .par_iter()
        .map(|&(f, c)| {
            let (tr, te) = &splits[f];
            let m = match (&cands[c], &binned, &tree_bins) {
                (Candidate::Gbm(g), Some(b), _) => {
                    let (m, p) = g.fit_binned_scored(b, tr, te, y)?;
                    if p.len() == te.len() {
                        return Ok((f, c, Classifier::Gbm(m), p));
                    }
                    Classifier::Gbm(m)
                }
                (Candidate::Tree(t), _, Some((b, v))) => {
                    Classifier::Tree(t.fit_prebinned(x, b, v, tr, y)?)
                }
                (cand, _, _) => {
                    let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
                    cand.fit(&x.select_rows(tr), &ytr)?
                }
            };
            let p = te.iter().map(|&i| m.predict_row(x.row(i))).collect();
            Ok((f, c, m, p))
        })
        .collect();
    let mut oof = vec![vec![0.0; y.len()]; cands.len()];
    let mut slots: Vec<Vec<Option<Classifier>>> = vec![vec![None; k]; cands.len()];
    let mut failures: Vec<Option<String>> = vec![None; cands.len()];
    for (r, &(f, c)) in results.into_iter().zip(&jobs) {
        match r {
            Ok((f, c, m, p)) => {
                for (&i, v) in splits[f].1.iter().zip(p) {
                    oof[c][i] = v;
                }
                slots[c][f] = Some(m);
            }
            Err(e) => {
                failures[c].get_or_insert_with(|| format!("inner split {}: {e}", f + 1));
            }
        }
    }
    for (c, fail) in failures.iter_mut().enumerate() {
        if fail.is_none()
            && let Err(e) = check_probabilities(&cands[c].name(), &oof[c])
        {
            *fail = Some(format!("out of fold: {e}"));
        }
    }
    let models = slots
        .into_iter()
        .map(|v| v.into_iter().flatten().collect())
        .collect();
    Ok(InnerFits {
        oof,
        folds,
        models,
        failures,
    })
}

/// Mean over folds of the ROC AUC of `p` on each fold's rows (`fold_rows[f]`).
/// Same value as [`roc_auc`](crate::metrics::classification::roc_auc) (ties get average ranks), with one reused buffer
/// and an unstable sort of (score, label) pairs: ensemble selection calls it
/// many times.
fn mean_fold_auc(y: &[bool], p: &[f64], fold_rows: &[Vec<usize>]) -> f64 {
    let mut s = 0.0;
    let mut n = 0;
    let mut buf: Vec<(f64, bool)> = Vec::new();
    for rows in fold_rows {
        buf.clear();
        buf.extend(rows.iter().map(|&i| (p[i], y[i])));
        let n_pos = buf.iter().filter(|e| e.1).count();
        let n_neg = buf.len() - n_pos;
        if n_pos == 0 || n_neg == 0 {
            continue;
        }
        buf.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut rank_sum_pos = 0.0;
        let mut i = 0;
        while i < buf.len() {
            let mut j = i + 1;
            while j < buf.len() && buf[j].0 == buf[i].0 {
                j += 1;
            }
            let pos = buf[i..j].iter().filter(|e| e.1).count();
            rank_sum_pos += (i + 1 + j) as f64 / 2.0 * pos as f64;
            i = j;
        }
        let np = n_pos as f64;
        s += (rank_sum_pos - np * (np + 1.0) / 2.0) / (np * n_neg as f64);
        n += 1;
    }
    if n == 0 { f64::NAN } else { s / n as f64 }
}

impl ClassifierConfig {
    /// A configuration of one kind with defaults.
    pub fn of_kind(kind: ModelKind, seed: u64) -> Self {
        let mut c = ClassifierConfig {
            kind,
            seed,
            ..Default::default()
        };
        c.gbm.seed = seed;
        c
    }

    fn candidates(&self) -> Vec<Candidate> {
        let mut nl = self.logreg.clone();
        nl.nonlinear = true;
        let mut plain = self.logreg.clone();
        plain.nonlinear = false;
        vec![
            Candidate::Logreg(plain),
            Candidate::Logreg(nl),
            Candidate::Tree(self.tree.clone()),
            Candidate::Gbm(self.gbm.clone()),
        ]
    }

    /// Fits the configured model. `auto` runs inner stratified CV on `x`/`y`
    /// (which must be training rows only) over logreg, logreg with automatic
    /// nonlinear terms, the tree and boosting, adds a weighted blend found by
    /// greedy ensemble selection on the same out-of-fold probabilities, and
    /// returns the best by inner ROC AUC as the average of its inner-fold
    /// models (no refit).
    pub fn fit(&self, x: &DenseMatrix, y: &[bool]) -> Result<FitOutcome, ModelError> {
        check_xy(x, y)?;
        match self.kind {
            ModelKind::Logreg => Ok(self.single(Candidate::Logreg(self.logreg.clone()), x, y)?),
            ModelKind::Tree => Ok(self.single(Candidate::Tree(self.tree.clone()), x, y)?),
            ModelKind::Gbm => Ok(self.single(Candidate::Gbm(self.gbm.clone()), x, y)?),
            ModelKind::Auto => self.fit_auto(x, y),
        }
    }

    /// Like [`fit`](Self::fit) but always fills `oof` (out-of-fold scores on the
    /// training rows, from `inner_folds` inner folds), e.g. for calibration.
    pub fn fit_with_oof(&self, x: &DenseMatrix, y: &[bool]) -> Result<FitOutcome, ModelError> {
        let mut out = self.fit(x, y)?;
        if out.oof.is_empty() {
            let cand = match self.kind {
                ModelKind::Logreg => Candidate::Logreg(self.logreg.clone()),
                ModelKind::Tree => Candidate::Tree(self.tree.clone()),
                _ => Candidate::Gbm(self.gbm.clone()),
            };
            let fits = inner_fits(
                std::slice::from_ref(&cand),
                x,
                y,
                self.inner_folds.max(2),
                self.seed ^ 0x5eed,
            )?;
            if let Some(Some(why)) = fits.failures.first() {
                return Err(ModelError::FitFailed(format!("{}: {why}", cand.name())));
            }
            out.oof = fits.oof.into_iter().next().unwrap_or_default();
        }
        Ok(out)
    }

    fn single(&self, c: Candidate, x: &DenseMatrix, y: &[bool]) -> Result<FitOutcome, ModelError> {
        let model = c.fit(x, y)?;
        check_probabilities(&c.name(), &model.predict_proba(x))?;
        Ok(FitOutcome {
            model,
            candidates: Vec::new(),
            oof: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn fit_auto(&self, x: &DenseMatrix, y: &[bool]) -> Result<FitOutcome, ModelError> {
        let all = self.candidates();
        let k = self.inner_folds.max(2);
        let fits = inner_fits(&all, x, y, k, self.seed ^ 0x5eed)?;
        // A candidate that failed its health check is never a member.
        let mut warnings = Vec::new();
        let mut cands = Vec::new();
        let mut oof = Vec::new();
        let mut models = Vec::new();
        for (((c, p), m), fail) in all
            .into_iter()
            .zip(fits.oof)
            .zip(fits.models)
            .zip(fits.failures)
        {
            match fail {
                Some(why) => warnings.push(format!("auto left out {}: {why}", c.name())),
                None => {
                    cands.push(c);
                    oof.push(p);
                    models.push(m);
                }
            }
        }
        if cands.is_empty() {
            return Err(ModelError::FitFailed(format!(
                "auto: every candidate failed ({})",
                warnings.join("; ")
            )));
        }
        let folds = fits.folds;
        let fold_rows: Vec<Vec<usize>> = (0..k).map(|f| split_indices(&folds, f).1).collect();
        let mut scores: Vec<CandidateScore> = cands
            .iter()
            .zip(&oof)
            .map(|(c, p)| CandidateScore {
                name: c.name(),
                inner_roc_auc: mean_fold_auc(y, p, &fold_rows),
            })
            .collect();
        // Ensemble selection (Caruana et al. 2004): greedily add, with
        // replacement, the candidate whose out-of-fold probabilities raise the
        // inner-CV AUC of the running average most; keep the best round.
        let mut counts = vec![0usize; cands.len()];
        let mut sum = vec![0.0; y.len()];
        let mut best_counts = counts.clone();
        let mut best_score = f64::NEG_INFINITY;
        for round in 1..=ENSEMBLE_ROUNDS {
            let mut pick: Option<(f64, usize)> = None;
            for (c, p) in oof.iter().enumerate() {
                let avg: Vec<f64> = sum
                    .iter()
                    .zip(p)
                    .map(|(s, v)| (s + v) / round as f64)
                    .collect();
                let sc = mean_fold_auc(y, &avg, &fold_rows);
                if pick.is_none_or(|(b, _)| sc > b) {
                    pick = Some((sc, c));
                }
            }
            let Some((sc, c)) = pick else { break };
            counts[c] += 1;
            for (s, v) in sum.iter_mut().zip(&oof[c]) {
                *s += v;
            }
            if sc > best_score {
                best_score = sc;
                best_counts = counts.clone();
            }
        }
        let total: usize = best_counts.iter().sum();
        let members: Vec<(usize, f64)> = best_counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(c, &n)| (c, n as f64 / total as f64))
            .collect();
        let ens_oof: Vec<f64> = (0..y.len())
            .map(|i| members.iter().map(|&(c, w)| w * oof[c][i]).sum())
            .collect();
        let ens_name = format!(
            "blend({})",
            members
                .iter()
                .map(|&(c, w)| format!("{w:.2}*{}", cands[c].name()))
                .collect::<Vec<_>>()
                .join(" + ")
        );
        scores.push(CandidateScore {
            name: ens_name,
            inner_roc_auc: mean_fold_auc(y, &ens_oof, &fold_rows),
        });
        let mut best = 0;
        for (i, s) in scores.iter().enumerate() {
            // strictly better wins, so on ties the simpler (earlier) candidate stays
            if s.inner_roc_auc > scores[best].inner_roc_auc {
                best = i;
            }
        }
        // No refit: the chosen candidates' inner-fold models are kept and
        // averaged (each saw (k−1)/k of the rows), so the selection's cost is
        // the whole cost of `auto`.
        let mut bag = |c: usize| Classifier::Bag(std::mem::take(&mut models[c]));
        let (model, oof_best) = if best == cands.len() && members.len() > 1 {
            let parts = members.iter().map(|&(c, w)| (w, bag(c))).collect();
            (Classifier::Blend(parts), ens_oof)
        } else {
            let single = if best == cands.len() {
                members[0].0
            } else {
                best
            };
            (bag(single), oof[single].clone())
        };
        Ok(FitOutcome {
            model,
            candidates: scores,
            oof: oof_best,
            warnings,
        })
    }
}

/// Platt scaling: `p' = σ(a·logit(p) + b)`, fitted by Newton's method on
/// out-of-fold scores (a tiny ridge keeps it finite on separable data).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlattScaler {
    /// Slope on the logit of the raw probability.
    pub a: f64,
    /// Intercept.
    pub b: f64,
}

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-9, 1.0 - 1e-9);
    (p / (1.0 - p)).ln()
}

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

impl PlattScaler {
    /// The identity map.
    pub fn identity() -> Self {
        PlattScaler { a: 1.0, b: 0.0 }
    }

    /// Fits on raw probabilities and outcomes, as Platt (1999) with the
    /// improvements of Lin, Lin and Weng (2007): targets smoothed to
    /// `(N+ + 1) / (N+ + 2)` and `1 / (N- + 2)`, so scores that separate
    /// the classes perfectly (out-of-fold probabilities of a small store)
    /// give a finite slope instead of one that grows without bound; and
    /// Newton steps halved until the loss falls.
    pub fn fit(p: &[f64], y: &[bool]) -> Result<Self, ModelError> {
        if p.len() != y.len() || p.is_empty() {
            return Err(ModelError::InvalidInput(
                "calibration needs as many scores as labels".into(),
            ));
        }
        let s: Vec<f64> = p.iter().map(|&q| logit(q)).collect();
        let pos = y.iter().filter(|&&v| v).count() as f64;
        let neg = y.len() as f64 - pos;
        let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (neg + 2.0));
        let t: Vec<f64> = y.iter().map(|&v| if v { hi } else { lo }).collect();
        let ridge = 1e-6;
        // cross-entropy against the smoothed targets, in a stable form
        let loss = |a: f64, b: f64| -> f64 {
            let mut l = 0.5 * ridge * ((a - 1.0).powi(2) + b * b);
            for (&si, &ti) in s.iter().zip(&t) {
                let z = a * si + b;
                // log(1 + e^z) - t z
                let softplus = if z > 0.0 {
                    z + (-z).exp().ln_1p()
                } else {
                    z.exp().ln_1p()
                };
                l += softplus - ti * z;
            }
            l
        };
        let (mut a, mut b) = (1.0, 0.0);
        let mut current = loss(a, b);
        for _ in 0..100 {
            let (mut ga, mut gb, mut haa, mut hab, mut hbb) =
                (ridge * (a - 1.0), ridge * b, ridge, 0.0, ridge);
            for (&si, &ti) in s.iter().zip(&t) {
                let q = sigmoid(a * si + b);
                let r = q - ti;
                let w = (q * (1.0 - q)).max(1e-12);
                ga += r * si;
                gb += r;
                haa += w * si * si;
                hab += w * si;
                hbb += w;
            }
            let det = haa * hbb - hab * hab;
            if det.abs() < 1e-18 {
                break;
            }
            let da = (hbb * ga - hab * gb) / det;
            let db = (haa * gb - hab * ga) / det;
            let mut step = 1.0;
            let mut moved = false;
            while step > 1e-10 {
                let (na, nb) = (a - step * da, b - step * db);
                let l = loss(na, nb);
                if l.is_finite() && l <= current + 1e-12 {
                    (a, b, current) = (na, nb, l);
                    moved = true;
                    break;
                }
                step *= 0.5;
            }
            if !moved || (step * da).abs().max((step * db).abs()) < 1e-10 {
                break;
            }
        }
        if !a.is_finite() || !b.is_finite() {
            return Err(ModelError::FitFailed("Platt scaling diverged".into()));
        }
        Ok(PlattScaler { a, b })
    }

    /// Calibrated probability.
    pub fn apply(&self, p: f64) -> f64 {
        sigmoid(self.a * logit(p) + self.b)
    }
}

/// Result of k-fold cross-validation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CvReport {
    /// Metrics of each held-out fold.
    pub per_fold: Vec<BinaryMetrics>,
    /// Mean over folds.
    pub mean: BinaryMetrics,
    /// Standard deviation over folds (population, like numpy's default).
    pub std: BinaryMetrics,
    /// Wall-clock fit seconds of each fold (selection by inner CV included).
    pub fit_seconds: Vec<f64>,
    /// The model each fold ended up with.
    pub models: Vec<String>,
    /// Inner-CV candidate scores of each fold (`auto` only).
    pub candidates: Vec<Vec<CandidateScore>>,
    /// Each fold's fit warnings, prefixed with the fold.
    pub warnings: Vec<String>,
}

/// Stratified k-fold cross-validation of a configuration.
pub fn cross_validate(
    config: &ClassifierConfig,
    x: &DenseMatrix,
    y: &[bool],
    k: usize,
    seed: u64,
) -> Result<CvReport, ModelError> {
    check_xy(x, y)?;
    let folds = stratified_folds(y, k, seed)?;
    let mut per_fold = Vec::with_capacity(k);
    let mut fit_seconds = Vec::with_capacity(k);
    let mut models = Vec::with_capacity(k);
    let mut candidates = Vec::with_capacity(k);
    let mut warnings = Vec::new();
    for f in 0..k {
        let (tr, te) = split_indices(&folds, f);
        let xtr = x.select_rows(&tr);
        let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
        let xte = x.select_rows(&te);
        let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
        let t0 = Instant::now();
        let out = config.fit(&xtr, &ytr)?;
        fit_seconds.push(t0.elapsed().as_secs_f64());
        let p = out.model.predict_proba(&xte);
        per_fold.push(BinaryMetrics::compute(&yte, &p));
        models.push(out.model.name());
        candidates.push(out.candidates);
        warnings.extend(out.warnings.iter().map(|w| format!("fold {}: {w}", f + 1)));
    }
    let (mean, std) = mean_std(&per_fold);
    Ok(CvReport {
        per_fold,
        mean,
        std,
        fit_seconds,
        models,
        candidates,
        warnings,
    })
}

fn mean_std(m: &[BinaryMetrics]) -> (BinaryMetrics, BinaryMetrics) {
    let get = |f: fn(&BinaryMetrics) -> f64| -> (f64, f64) {
        let v: Vec<f64> = m.iter().map(f).collect();
        let n = v.len().max(1) as f64;
        let mu = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mu).powi(2)).sum::<f64>() / n;
        (mu, var.sqrt())
    };
    let a = get(|b| b.roc_auc);
    let p = get(|b| b.pr_auc);
    let l = get(|b| b.log_loss);
    let br = get(|b| b.brier);
    let ac = get(|b| b.accuracy);
    (
        BinaryMetrics {
            roc_auc: a.0,
            pr_auc: p.0,
            log_loss: l.0,
            brier: br.0,
            accuracy: ac.0,
        },
        BinaryMetrics {
            roc_auc: a.1,
            pr_auc: p.1,
            log_loss: l.1,
            brier: br.1,
            accuracy: ac.1,
        },
    )
}

/// What `eval classify` reports: mean metrics over the held-out folds (the
/// field names are the CLI's JSON contract) plus how the table was read.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// Mean ROC AUC over folds.
    pub roc_auc: f64,
    /// Mean PR AUC (average precision).
    pub pr_auc: f64,
    /// Mean log loss.
    pub log_loss: f64,
    /// Mean Brier score.
    pub brier: f64,
    /// Mean accuracy at 0.5.
    pub accuracy: f64,
    /// Mean wall-clock seconds to fit one fold's model (inner-CV selection included for `auto`).
    pub fit_seconds_per_fold: f64,
    /// The requested model (`logreg`, `tree`, `gbm`, `auto`).
    pub model: String,
    /// Standard deviation of each metric over folds.
    pub std: BinaryMetrics,
    /// Metrics of each fold.
    pub per_fold: Vec<BinaryMetrics>,
    /// Fit seconds of each fold.
    pub fit_seconds: Vec<f64>,
    /// Model each fold ended with (what `auto` chose).
    pub chosen: Vec<String>,
    /// Inner-CV candidate scores per fold (`auto`).
    pub candidates: Vec<Vec<CandidateScore>>,
    /// Folds.
    pub folds: usize,
    /// Seed.
    pub seed: u64,
    /// How folds were made.
    pub protocol: String,
    /// Rows used and the target's encoding, dropped columns (ID-like, constant, --drop).
    pub table: crate::tabular::PrepareReport,
    /// How columns were encoded and blanks handled (encoder fitted on fold 1's training rows;
    /// every fold refits it on its own training rows).
    pub encoding: crate::tabular::EncodingReport,
    /// Fit warnings of each fold (a candidate `auto` left out, and why).
    pub warnings: Vec<String>,
}

/// Cross-validates a classifier on a typed table: extracts the binary target,
/// drops `drop`, ID-like and constant columns, and in each stratified fold fits
/// the encoding (one-hot, median imputation with missing indicators; no
/// standardization here, the models standardize themselves) on the training
/// rows only, fits the model, and scores the held-out rows.
pub fn eval_frame(
    frame: &crate::tabular::Frame,
    target: &str,
    positive: Option<String>,
    drop: &[String],
    config: &ClassifierConfig,
    k: usize,
    seed: u64,
) -> Result<EvalReport, ModelError> {
    use crate::tabular::{Encoder, EncoderOptions, TargetSpec, prepare};
    let prep = prepare(frame, target, &TargetSpec::Binary { positive }, drop)?;
    let y: Vec<bool> = prep.y.iter().map(|&v| v > 0.5).collect();
    if prep.features.columns().is_empty() {
        return Err(ModelError::InvalidInput(
            "no feature columns left after dropping ID-like/constant/--drop columns".into(),
        ));
    }
    let folds = stratified_folds(&y, k, seed)?;
    let enc = Encoder::new(EncoderOptions { standardize: false });
    let mut per_fold = Vec::with_capacity(k);
    let mut fit_seconds = Vec::with_capacity(k);
    let mut chosen = Vec::with_capacity(k);
    let mut candidates = Vec::with_capacity(k);
    let mut warnings = Vec::new();
    let mut encoding = None;
    for f in 0..k {
        let (tr, te) = split_indices(&folds, f);
        let fitted = enc.fit(&prep.features, &tr)?;
        let names = fitted.feature_names().to_vec();
        let mtr = fitted.transform(&prep.features, &tr)?;
        let mte = fitted.transform(&prep.features, &te)?;
        if encoding.is_none() {
            encoding = Some(fitted.report().clone());
        }
        let xtr = DenseMatrix::new(mtr.n_rows, mtr.data, names.clone())?;
        let xte = DenseMatrix::new(mte.n_rows, mte.data, names)?;
        let ytr: Vec<bool> = tr.iter().map(|&i| y[i]).collect();
        let yte: Vec<bool> = te.iter().map(|&i| y[i]).collect();
        let t0 = Instant::now();
        let out = config.fit(&xtr, &ytr).map_err(|e| match e {
            ModelError::FitFailed(why) => ModelError::FitFailed(format!(
                "fold {} ({} training rows x {} columns): {why}",
                f + 1,
                xtr.n_rows,
                xtr.n_cols
            )),
            other => other,
        })?;
        fit_seconds.push(t0.elapsed().as_secs_f64());
        let p = out.model.predict_proba(&xte);
        per_fold.push(BinaryMetrics::compute(&yte, &p));
        chosen.push(out.model.name());
        candidates.push(out.candidates);
        warnings.extend(out.warnings.iter().map(|w| format!("fold {}: {w}", f + 1)));
    }
    let (mean, std) = mean_std(&per_fold);
    let encoding = encoding.ok_or_else(|| ModelError::InvalidInput("no folds".into()))?;
    Ok(EvalReport {
        roc_auc: mean.roc_auc,
        pr_auc: mean.pr_auc,
        log_loss: mean.log_loss,
        brier: mean.brier,
        accuracy: mean.accuracy,
        fit_seconds_per_fold: fit_seconds.iter().sum::<f64>() / k as f64,
        model: config.kind.to_string(),
        std,
        per_fold,
        fit_seconds,
        chosen,
        candidates,
        folds: k,
        seed,
        protocol: format!(
            "{k} stratified folds (positives and negatives shuffled separately with seed {seed}, dealt round-robin); \
             encoding and model fitted on each fold's training rows only; metrics on its held-out rows, mean and population std over folds; \
             auto picks by {}-fold inner stratified CV on the training rows",
            config.inner_folds
        ),
        table: prep.report,
        encoding,
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_are_stratified_and_seeded() {
        let y: Vec<bool> = (0..103).map(|i| i % 4 == 0).collect();
        let f = stratified_folds(&y, 5, 1).unwrap();
        for k in 0..5 {
            let n = f.iter().filter(|&&g| g == k).count();
            let p = (0..y.len()).filter(|&i| f[i] == k && y[i]).count();
            assert!((20..=21).contains(&n), "fold {k} has {n}");
            assert!((5..=6).contains(&p), "fold {k} has {p} positives");
        }
        assert_eq!(f, stratified_folds(&y, 5, 1).unwrap());
        assert_ne!(f, stratified_folds(&y, 5, 2).unwrap());
        assert!(stratified_folds(&y, 1, 0).is_err());
    }

    #[test]
    fn platt_recovers_a_known_distortion() {
        // True probability q; model reports σ(2·logit(q)) (overconfident).
        let mut p = Vec::new();
        let mut y = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        use rand::Rng;
        for _ in 0..20000 {
            let z: f64 = rng.random_range(-3.0..3.0);
            let q = sigmoid(z);
            y.push(rng.random::<f64>() < q);
            p.push(sigmoid(2.0 * z));
        }
        let s = PlattScaler::fit(&p, &y).unwrap();
        assert!((s.a - 0.5).abs() < 0.05, "a = {}", s.a);
        assert!(s.b.abs() < 0.05, "b = {}", s.b);
    }

    #[test]
    fn platt_stays_finite_when_the_scores_separate_the_classes() {
        // out-of-fold probabilities of a small, separable store: every
        // churner above every stayer, some at the clamp of the logit
        let p: Vec<f64> = (0..60)
            .map(|i| {
                if i < 30 {
                    0.001 * (i + 1) as f64
                } else {
                    1.0 - 1e-12
                }
            })
            .collect();
        let y: Vec<bool> = (0..60).map(|i| i >= 30).collect();
        let s = PlattScaler::fit(&p, &y).unwrap();
        assert!(s.a.is_finite() && s.a > 0.0 && s.a < 5.0, "a = {}", s.a);
        // the smoothed targets bound what it may claim: 31/32 and 1/32
        assert!(s.apply(0.999_999) < 0.99, "{}", s.apply(0.999_999));
        assert!(s.apply(0.001) > 0.005, "{}", s.apply(0.001));
        // and the order of the scores is kept
        assert!(s.apply(0.9) > s.apply(0.1));
    }
}
