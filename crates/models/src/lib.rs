//! infogap-models: pure algorithms over in-memory data.
//!
//! One module per model family. Nothing here does I/O, touches the store, or
//! knows about HTTP: every model is a value built by `fit` from slices and
//! matrices, and a fitted value answers `predict`. That keeps each family
//! testable on generated data with planted structure and benchmarkable alone.
//!
//! The shared vocabulary is [`Estimator`] (a configuration that can be fitted)
//! and [`Predictor`] (a fitted model), plus [`ModelError`].

pub mod acquire;
pub mod bayes;
pub mod classify;
pub mod clv;
pub mod dense;
pub mod forecast;
pub mod metrics;
pub mod packed;
pub mod recs;
pub mod regress;
pub mod segment;
pub mod tabular;
pub mod text;

/// Errors every model family can report.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The input data cannot be used (empty, wrong shape, non-finite values, …).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A parameter is out of its domain.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// Inputs that cannot all be true at once (e.g. probabilities that violate Bayes' rule).
    #[error("incoherent inputs: {0}")]
    Incoherent(String),
    /// An optimiser or solver did not reach a usable answer.
    #[error("fit failed: {0}")]
    FitFailed(String),
}

/// A model configuration that can be fitted to training data.
pub trait Estimator<X: ?Sized, Y: ?Sized> {
    /// The fitted model.
    type Fitted;
    /// Fits the model.
    fn fit(&self, x: &X, y: &Y) -> Result<Self::Fitted, ModelError>;
}

/// A fitted model that predicts from inputs.
pub trait Predictor<X: ?Sized> {
    /// What a prediction is.
    type Output;
    /// Predicts.
    fn predict(&self, x: &X) -> Self::Output;
}
