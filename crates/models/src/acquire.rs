//! Active feature acquisition: per customer, which unknown field to ask next
//! to best improve a decision (churn, spend, a recommendation).
//!
//! Why here and shaped like this (issue 19): following EDDI (Ma et al., ICML
//! 2019), a row's next question is the unknown feature with the highest
//! expected information gain about the target given what is known about that
//! row, I(y; x_j | x_O) = E_{x_j ~ p(x_j | x_O)} KL(p(y | x_O, x_j) ‖ p(y | x_O)).
//! That needs one model that answers p(y | x_O) and p(x_j | x_O) for *any*
//! subset O. EDDI uses a partial VAE; we use a smaller model with the same
//! property and closed-form marginals: features are binned
//! ([`discretize`]: quantile bins for numbers, one bin per frequent level for
//! categories, a NaN is unknown) and p(x | y = c) is a latent-class mixture
//! (a product of categoricals per component, fitted by EM per class,
//! [`mixture`]). An unknown feature drops out of the product, so the same
//! fitted values score a row with any features missing, and a decision costs
//! O(candidates × bins × components) from an incremental per-row state
//! ([`model`]), with no refit.
//!
//! [`evaluate`] ([`eval`]) is `infogap eval ask-next`: per stratified fold,
//! every feature except the known ones starts unknown for each test row and
//! three policies acquire one feature per step: `ask_next` (the gain above at
//! every step by default; [`AcqOptions::free_steps`] can hand later steps to
//! the learned global order),
//! `global_order` (the best single fixed order, chosen by greedy forward
//! selection of validation ROC AUC on an inner split of the training fold,
//! EDDI's "SING") and `random` (a seeded random order per row); after each
//! step the same fitted model scores the row.

pub mod boost;
pub mod discretize;
pub mod eval;
pub mod mixture;
pub mod model;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::ModelError;

pub use eval::{AcqEvalReport, evaluate, evaluate_with};
pub use model::{AcqModel, AcqModelSummary, AcqState, GainScratch};

/// Rows of features with unknown cells, as the acquisition model takes them.
#[derive(Debug, Clone, PartialEq)]
pub struct AcqTable {
    /// Feature names.
    pub names: Vec<String>,
    /// Per feature: true = categorical (cells hold a level index 0.0, 1.0, …).
    pub categorical: Vec<bool>,
    /// Number of rows.
    pub n_rows: usize,
    /// Row-major `n_rows × names.len()`; `f64::NAN` = unknown.
    pub data: Vec<f64>,
}

impl AcqTable {
    /// Cell (i, j).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.names.len() + j]
    }

    /// Row i.
    pub fn row(&self, i: usize) -> &[f64] {
        let d = self.names.len();
        &self.data[i * d..(i + 1) * d]
    }

    /// The table of the given rows.
    pub fn select_rows(&self, rows: &[usize]) -> AcqTable {
        let mut data = Vec::with_capacity(rows.len() * self.names.len());
        for &i in rows {
            data.extend_from_slice(self.row(i));
        }
        AcqTable {
            names: self.names.clone(),
            categorical: self.categorical.clone(),
            n_rows: rows.len(),
            data,
        }
    }

    /// Checks shapes and values: a categorical cell is a non-negative whole
    /// number (or NaN), a numeric cell is finite (or NaN).
    pub fn validate(&self) -> Result<(), ModelError> {
        let d = self.names.len();
        if d == 0 {
            return Err(ModelError::InvalidInput(
                "acquisition table has no features".into(),
            ));
        }
        if self.categorical.len() != d {
            return Err(ModelError::InvalidInput(format!(
                "{} categorical flags for {d} features",
                self.categorical.len()
            )));
        }
        if self.data.len() != self.n_rows * d {
            return Err(ModelError::InvalidInput(format!(
                "acquisition table holds {} cells, expected {} rows × {d} features",
                self.data.len(),
                self.n_rows
            )));
        }
        if self.n_rows < 2 {
            return Err(ModelError::InvalidInput(format!(
                "acquisition table has {} rows; need at least 2",
                self.n_rows
            )));
        }
        for (k, &v) in self.data.iter().enumerate() {
            if v.is_nan() {
                continue;
            }
            let j = k % d;
            let bad = if self.categorical[j] {
                !(v >= 0.0 && v.fract() == 0.0 && v < 1e7)
            } else {
                !v.is_finite()
            };
            if bad {
                return Err(ModelError::InvalidInput(format!(
                    "feature {} row {}: {v} is not a {}",
                    self.names[j],
                    k / d + 1,
                    if self.categorical[j] {
                        "level index (0, 1, 2, …)"
                    } else {
                        "finite number"
                    }
                )));
            }
        }
        Ok(())
    }
}

/// What the `ask_next` policy maximizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Criterion {
    /// Expected information gain about y (mutual information, nats): EDDI's.
    #[default]
    Information,
    /// Information gain with the mixture's own p(y | x_O, x_j) (coherent, but
    /// the mixture ranks worse than the scorer).
    MixtureInformation,
    /// Expected reduction of the Brier score (expected squared change of p(y | x_O)).
    Brier,
}

/// Settings of [`AcqModel::fit`] and [`evaluate_with`].
#[derive(Debug, Clone)]
pub struct AcqOptions {
    /// Seed of EM restarts, inner folds and the random policy.
    pub seed: u64,
    /// Most bins of a numeric feature (quantile bins).
    pub max_bins: usize,
    /// Rows a categorical level needs to keep its own bin (rarer levels are pooled).
    pub min_level_rows: usize,
    /// Most bins of a categorical feature.
    pub max_levels: usize,
    /// Mixture components per class; `None` = training rows of the class /
    /// `min_rows_per_component`, between 1 and `max_components`.
    pub components: Option<usize>,
    /// Training rows per component (automatic component count).
    pub min_rows_per_component: usize,
    /// Most components per class (automatic component count).
    pub max_components: usize,
    /// Dirichlet pseudo-rows per bin.
    pub alpha: f64,
    /// Most EM iterations.
    pub max_iter: usize,
    /// EM stops when the log-likelihood changes by less than `tol` per row.
    pub tol: f64,
    /// EM restarts per class (the best log-likelihood is kept).
    pub restarts: usize,
    /// Inner folds of the training fold on which `global_order` is chosen.
    pub inner_folds: usize,
    /// What `ask_next` maximizes in [`evaluate_with`].
    pub criterion: Criterion,
    /// Steps of [`evaluate_with`]'s `ask_next` chosen per row by the expected
    /// gain; later steps follow the learned prior (the global order chosen on
    /// the training fold), skipping what the row already knows. `usize::MAX`
    /// (the default) = every step per row (plain EDDI), the policy `gap
    /// ask-next` uses for its queues: the evaluation measures what ships.
    pub free_steps: usize,
    /// Masked copies of each training row for the scorer (missingness augmentation).
    pub mask_copies: usize,
    /// Boosting rounds of the scorer.
    pub trees: usize,
    /// Depth of the scorer's trees.
    pub depth: usize,
    /// Shrinkage of each tree.
    pub learning_rate: f64,
    /// L2 penalty of the leaf values.
    pub l2: f64,
    /// Least hessian mass (≈ rows × p(1 − p)) in a leaf.
    pub min_hess: f64,
    /// Pseudo-rows that shrink each answer's p(y | x_O, x_j = v) toward the
    /// answer-averaged p(y | x_O) in the gain: an answer expected in n
    /// training rows keeps n / (n + `gain_shrink`) of its own deviation, so a
    /// feature with many thin bins does not look informative from noise.
    pub gain_shrink: f64,
}

impl Default for AcqOptions {
    fn default() -> Self {
        AcqOptions {
            seed: 0,
            max_bins: 8,
            min_level_rows: 10,
            max_levels: 24,
            components: None,
            min_rows_per_component: 60,
            max_components: 12,
            alpha: 1.0,
            max_iter: 150,
            tol: 1e-6,
            restarts: 2,
            inner_folds: 3,
            criterion: Criterion::Information,
            free_steps: usize::MAX,
            mask_copies: 4,
            trees: 80,
            depth: 4,
            learning_rate: 0.15,
            l2: 1.0,
            min_hess: 5.0,
            gain_shrink: 100.0,
        }
    }
}

impl AcqOptions {
    /// Checks every knob's domain.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |name: &str, reason: &str| {
            Err(ModelError::InvalidParameter {
                name: name.into(),
                reason: reason.into(),
            })
        };
        if self.max_bins < 2 {
            return bad("max_bins", "need at least 2");
        }
        if self.max_levels < 2 {
            return bad("max_levels", "need at least 2");
        }
        if self.components == Some(0) {
            return bad("components", "need at least 1");
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("alpha", "must be a positive number");
        }
        if !(self.tol.is_finite() && self.tol >= 0.0) {
            return bad("tol", "must be a non-negative number");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("l2", "must be a non-negative number");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(self.gain_shrink.is_finite() && self.gain_shrink >= 0.0) {
            return bad("gain_shrink", "must be a non-negative number");
        }
        if !(self.min_hess.is_finite() && self.min_hess >= 0.0) {
            return bad("min_hess", "must be a non-negative number");
        }
        if self.mask_copies == 0 {
            return bad("mask_copies", "need at least 1");
        }
        if self.inner_folds < 2 {
            return bad("inner_folds", "need at least 2");
        }
        Ok(())
    }
}
