//! Exponential smoothing forecasts: simple exponential smoothing, Holt's linear
//! trend (optionally damped), Holt-Winters additive and multiplicative
//! seasonality, all as members of the ETS state-space family (Hyndman,
//! Koehler, Ord & Snyder 2008), plus automatic model selection by AICc and
//! prediction intervals.
//!
//! Why our own and not `augurs-ets`: augurs-ets 0.10 does not implement seasonal
//! models (its seasonal fit path is `unimplemented!()`), so it cannot do
//! Holt-Winters at all; on the non-seasonal family both are measured in
//! `benchmarks/forecast.md`.
//!
//! How a model is fitted: the states follow the error-correction recursions of
//! R's `forecast::ets` (the update does not depend on the error type; the error
//! type only changes the likelihood). Every free parameter (smoothing
//! parameters, damping, initial level, trend and m-1 seasonal states) is
//! estimated by maximum likelihood inside the "usual" bounds (0 < β ≤ α < 1,
//! 0 < γ ≤ 1-α, 0.8 ≤ φ ≤ 0.98), started from a classical-decomposition
//! heuristic. The concentrated likelihood is a sum of squares, so the search is
//! Levenberg-Marquardt on a box (`lm`), over a monomorphised, allocation-free
//! recursion (`kernel`); it converges in a few hundred evaluations where
//! Nelder-Mead, still available through [`FitOptions::nelder_mead`], needs
//! thousands and stops short in the 15+ dimensions of a seasonal model. The
//! additive models are fitted on standardised data (mean 0, sd 1), the
//! multiplicative ones on data divided by their mean (and the likelihood put
//! back on the data's scale), so one set of tolerances works at every scale
//! and level. A probe of a small grid of smoothing parameters then looks for
//! a better basin than the one the search ended in ([`FitOptions::probe`]).
//!
//! Every fit checks its own health (issue 15; the reference grid of
//! statsmodels fits over edge-shaped series is `tests/it/forecast_grid.rs`):
//! a model estimating k parameters needs n ≥ k + 2 observations (AICc is
//! finite) and, if seasonal, two full seasons; multiplicative models need
//! positive data; a non-finite parameter, state or criterion, or constant
//! one-step predictions of varying data, are errors naming the model, the
//! data and the reason. What is kept but should be known is in
//! [`EtsFit::warnings`] and [`Forecast::warnings`]: the exact fit of a
//! constant series (R's `ets` answer for it: flat at the constant), a fit
//! that reproduces the data exactly (σ² is floored at 1e-12 of the data's
//! magnitude, so the likelihood stays finite), a search that ran out of
//! evaluations, and forecasts of a positive model floored at zero.
//!
//! Automatic selection ([`AutoEts`]) fits every admissible combination of
//! error (A, M), trend (N, A, Ad) and season (N, A, M) — R's restricted set:
//! no additive error with multiplicative season — plus, optionally, the
//! additive-error models on log(y) (a Box-Cox λ = 0 transform) whose
//! likelihood is put back on the original scale with the Jacobian
//! (−Σ log y), so every candidate's AICc is comparable. Seasonal candidates are
//! screened with their initial seasonal states held at decomposition values,
//! the best few are fitted in full, and the lowest AICc wins; the winner's
//! parameters are then re-estimated by the average 1..h-step squared error
//! (AMSE, R's `opt.crit = "amse"`, `nmse = h`; the CLI and the engine set h
//! to the horizon being forecast, at most 30) when the series is long enough,
//! with the same converged Levenberg-Marquardt search (see
//! [`AutoEts::refit_nelder_mead`] for why not Nelder-Mead). Seasonal candidates need two full seasons
//! and, as in R, more observations than parameters + 4. Only the data passed
//! in (the training part) are used.
//!
//! Prediction intervals: analytic (Gaussian, Hyndman et al. 2008 §6.3, "class
//! 1") for additive-error models with additive or no trend and season, also on
//! the log scale (back-transformed, so the point forecast is then the median);
//! by simulation (seeded, 2 000 sample paths) for every other model.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Estimator, ModelError};

mod kernel;
mod lm;

/// How the error enters the observation equation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorType {
    /// y = μ + ε.
    Additive,
    /// y = μ (1 + ε).
    Multiplicative,
}

/// The trend component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrendType {
    /// No trend.
    None,
    /// Additive (linear) trend.
    Additive,
    /// Additive damped trend (φ < 1).
    Damped,
}

/// The seasonal component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SeasonType {
    /// No seasonality.
    None,
    /// Additive seasonal offsets (sum to 0 over a period).
    Additive,
    /// Multiplicative seasonal factors (mean 1 over a period).
    Multiplicative,
}

/// A transform applied to the data before fitting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Transform {
    /// Fit the data as they are.
    None,
    /// Fit log(y) (needs positive data); forecasts are back-transformed.
    Log,
}

/// One member of the ETS family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EtsSpec {
    /// Error type.
    pub error: ErrorType,
    /// Trend type.
    pub trend: TrendType,
    /// Season type.
    pub season: SeasonType,
    /// Season length (observations per cycle); ignored without a season.
    pub period: usize,
    /// Transform of the data.
    pub transform: Transform,
}

impl EtsSpec {
    /// Simple exponential smoothing, ETS(A,N,N).
    pub fn ses() -> Self {
        EtsSpec::new(ErrorType::Additive, TrendType::None, SeasonType::None, 1)
    }

    /// Holt's linear trend, ETS(A,A,N) or ETS(A,Ad,N) when `damped`.
    pub fn holt(damped: bool) -> Self {
        let trend = if damped {
            TrendType::Damped
        } else {
            TrendType::Additive
        };
        EtsSpec::new(ErrorType::Additive, trend, SeasonType::None, 1)
    }

    /// Holt-Winters additive, ETS(A,A,A) (damped: ETS(A,Ad,A)).
    pub fn hw_additive(period: usize, damped: bool) -> Self {
        let trend = if damped {
            TrendType::Damped
        } else {
            TrendType::Additive
        };
        EtsSpec::new(ErrorType::Additive, trend, SeasonType::Additive, period)
    }

    /// Holt-Winters multiplicative, ETS(M,A,M) (damped: ETS(M,Ad,M)), as R's `hw`.
    pub fn hw_multiplicative(period: usize, damped: bool) -> Self {
        let trend = if damped {
            TrendType::Damped
        } else {
            TrendType::Additive
        };
        EtsSpec::new(
            ErrorType::Multiplicative,
            trend,
            SeasonType::Multiplicative,
            period,
        )
    }

    /// A spec from its parts, without transform.
    pub fn new(error: ErrorType, trend: TrendType, season: SeasonType, period: usize) -> Self {
        EtsSpec {
            error,
            trend,
            season,
            period: period.max(1),
            transform: Transform::None,
        }
    }

    /// The same spec fitted on log(y).
    pub fn on_log(mut self) -> Self {
        self.transform = Transform::Log;
        self
    }

    /// The season length actually used (1 without a season).
    pub fn m(&self) -> usize {
        if self.season == SeasonType::None {
            1
        } else {
            self.period.max(1)
        }
    }

    /// Name in Hyndman's notation, e.g. `ETS(M,Ad,M)`, with ` on log(y)` for the transform.
    pub fn name(&self) -> String {
        let e = match self.error {
            ErrorType::Additive => "A",
            ErrorType::Multiplicative => "M",
        };
        let t = match self.trend {
            TrendType::None => "N",
            TrendType::Additive => "A",
            TrendType::Damped => "Ad",
        };
        let s = match self.season {
            SeasonType::None => "N",
            SeasonType::Additive => "A",
            SeasonType::Multiplicative => "M",
        };
        let log = if self.transform == Transform::Log {
            " on log(y)"
        } else {
            ""
        };
        format!("ETS({e},{t},{s}){log}")
    }

    /// Whether the analytic ("class 1") prediction variance applies.
    fn is_linear(&self) -> bool {
        self.error == ErrorType::Additive && self.season != SeasonType::Multiplicative
    }
}

/// Parameters held at given values instead of estimated (`None` = estimate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EtsFixed {
    /// Level smoothing α.
    pub alpha: Option<f64>,
    /// Trend smoothing β.
    pub beta: Option<f64>,
    /// Seasonal smoothing γ.
    pub gamma: Option<f64>,
    /// Damping φ.
    pub phi: Option<f64>,
    /// Initial level ℓ₀ (on the original scale).
    pub initial_level: Option<f64>,
}

/// The fitted parameters of an ETS model (on the scale of the data it was fitted on).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EtsParams {
    /// Level smoothing α.
    pub alpha: f64,
    /// Trend smoothing β (0 without trend).
    pub beta: f64,
    /// Seasonal smoothing γ (0 without season).
    pub gamma: f64,
    /// Damping φ (1 without damping).
    pub phi: f64,
    /// Initial level ℓ₀.
    pub l0: f64,
    /// Initial trend b₀ (0 without trend).
    pub b0: f64,
    /// Initial seasonal states s₋ₘ₊₁..s₀ in time order (empty without season).
    pub s0: Vec<f64>,
}

/// A fitted ETS model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EtsFit {
    /// Which model.
    pub spec: EtsSpec,
    /// Fitted parameters (for a log model: on the log scale).
    pub params: EtsParams,
    /// Number of observations fitted.
    pub n: usize,
    /// Number of estimated parameters, σ² included.
    pub k: usize,
    /// Log-likelihood on the original scale of the data.
    pub loglik: f64,
    /// Akaike information criterion.
    pub aic: f64,
    /// AIC with the small-sample correction.
    pub aicc: f64,
    /// Bayesian information criterion.
    pub bic: f64,
    /// Innovation variance σ² (on the fitted scale; relative for multiplicative error).
    pub sigma2: f64,
    /// Smoothed level after each observation (original scale, or log scale for a log model).
    pub levels: Vec<f64>,
    /// One-step-ahead fitted values (original scale).
    pub fitted: Vec<f64>,
    /// What the caller should know about this fit: an exact fit of a
    /// constant series, a criterion that stopped short of convergence, …
    /// (empty for a healthy fit).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The data were fitted as (y − shift) / scale (y on the log scale for a log model).
    scale: f64,
    #[serde(default)]
    shift: f64,
    last: State,
}

/// Point forecasts with a prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Point forecasts (mean; median for a log model), steps 1..=h.
    pub point: Vec<f64>,
    /// Lower interval bounds.
    pub lower: Vec<f64>,
    /// Upper interval bounds.
    pub upper: Vec<f64>,
    /// Coverage level of the interval, e.g. 0.95.
    pub level: f64,
    /// `analytic` or `simulation`.
    pub interval_method: String,
    /// What the caller should know about these forecasts (empty when nothing).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    l: f64,
    b: f64,
    /// Seasonal ring: `s[t % m]` is the state used at time t.
    s: Vec<f64>,
    /// Time index of the next observation (for the ring position).
    t: usize,
}

/// Smoothed levels of simple exponential smoothing with a given α and initial
/// level: ℓₜ = α yₜ + (1 − α) ℓₜ₋₁. The textbook table: α = 0.2, ℓ₀ = 0 on
/// 100, 120, 150, 180 gives 20, 40, 62, 85.6.
pub fn ses_levels(y: &[f64], alpha: f64, l0: f64) -> Vec<f64> {
    let mut l = l0;
    y.iter()
        .map(|&v| {
            l += alpha * (v - l);
            l
        })
        .collect()
}

fn check_series(y: &[f64]) -> Result<(), ModelError> {
    if y.is_empty() {
        return Err(ModelError::InvalidInput("empty series".into()));
    }
    if let Some(i) = y.iter().position(|v| !v.is_finite()) {
        return Err(ModelError::InvalidInput(format!(
            "value {} (index {i}) is not finite",
            y[i]
        )));
    }
    Ok(())
}

fn check_unit(name: &str, v: Option<f64>, lo: f64, hi: f64) -> Result<(), ModelError> {
    if let Some(v) = v
        && !(v >= lo && v <= hi)
    {
        return Err(ModelError::InvalidParameter {
            name: name.into(),
            reason: format!("{v} is outside [{lo}, {hi}]"),
        });
    }
    Ok(())
}

/// Residual standard deviations below this fraction of the data's magnitude
/// (mean |y|; 1 for relative errors and log-scale data) are rounding, not
/// noise: a fit that close is exact. σ² is floored there for the likelihood
/// and the intervals (an exact fit's likelihood is unbounded: AICc would be
/// −∞, or whatever the floor of the logarithm made it), and a series whose
/// values differ by less than this fraction of the largest is constant.
const SIGMA_REL_FLOOR: f64 = 1e-12;

/// Whether every value equals the first, to [`SIGMA_REL_FLOOR`] of the largest magnitude.
fn is_constant(y: &[f64]) -> bool {
    let big = y.iter().fold(0.0_f64, |a, v| a.max(v.abs()));
    y.iter().all(|v| (v - y[0]).abs() <= SIGMA_REL_FLOOR * big)
}

/// Lower bound of the estimated smoothing parameters.
const SMOOTH_LO: f64 = 1e-4;
/// Upper bound of the estimated α.
const SMOOTH_HI: f64 = 0.9999;
/// Bounds of the estimated damping φ.
const PHI_LO: f64 = 0.8;
const PHI_HI: f64 = 0.98;

/// Layout of the optimisation vector for one spec and set of fixed values.
#[derive(Debug, Clone)]
struct Layout {
    spec: EtsSpec,
    m: usize,
    fixed: EtsFixed,
    /// Positions in the vector (None = fixed or absent).
    alpha: Option<usize>,
    beta: Option<usize>,
    gamma: Option<usize>,
    phi: Option<usize>,
    l0: Option<usize>,
    b0: Option<usize>,
    s0: Option<usize>,
    /// Initial seasonal states when they are not estimated.
    s0_fixed: Vec<f64>,
    dim: usize,
}

impl Layout {
    fn new(spec: EtsSpec, fixed: EtsFixed, s0_fixed: Option<Vec<f64>>) -> Self {
        let m = spec.m();
        let mut dim = 0;
        let mut take = |present: bool| {
            if present {
                dim += 1;
                Some(dim - 1)
            } else {
                None
            }
        };
        let trend = spec.trend != TrendType::None;
        let season = spec.season != SeasonType::None;
        let alpha = take(fixed.alpha.is_none());
        let beta = take(trend && fixed.beta.is_none());
        let gamma = take(season && fixed.gamma.is_none());
        let phi = take(spec.trend == TrendType::Damped && fixed.phi.is_none());
        let l0 = take(fixed.initial_level.is_none());
        let b0 = take(trend);
        let s0 = if season && s0_fixed.is_none() {
            let at = dim;
            dim += m - 1;
            Some(at)
        } else {
            None
        };
        let s0_fixed = s0_fixed.unwrap_or_default();
        Layout {
            spec,
            m,
            fixed,
            alpha,
            beta,
            gamma,
            phi,
            l0,
            b0,
            s0,
            s0_fixed,
            dim,
        }
    }

    /// Unpacks a raw vector (no transform of the smoothing parameters, see
    /// [`Layout::clamp`]) into parameters (scaled data). `l0_fixed` is the
    /// fixed initial level already on the fitting scale.
    fn unpack(&self, x: &[f64], l0_fixed: f64) -> EtsParams {
        let mut p = EtsParams {
            alpha: 0.0,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
            l0: 0.0,
            b0: 0.0,
            s0: Vec::with_capacity(self.m),
        };
        self.unpack_into(x, l0_fixed, &mut p);
        p
    }

    /// [`Layout::unpack`] into an existing value (no allocation once `p.s0` has capacity).
    fn unpack_into(&self, x: &[f64], l0_fixed: f64, p: &mut EtsParams) {
        let get = |p: Option<usize>, f: Option<f64>, d: f64| p.map(|i| x[i]).or(f).unwrap_or(d);
        let trend = self.spec.trend != TrendType::None;
        let season = self.spec.season != SeasonType::None;
        p.alpha = get(self.alpha, self.fixed.alpha, 0.0);
        p.beta = if trend {
            get(self.beta, self.fixed.beta, 0.0)
        } else {
            0.0
        };
        p.gamma = if season {
            get(self.gamma, self.fixed.gamma, 0.0)
        } else {
            0.0
        };
        p.phi = match self.spec.trend {
            TrendType::Damped => get(self.phi, self.fixed.phi, 0.98),
            _ => 1.0,
        };
        p.l0 = self.l0.map(|i| x[i]).unwrap_or(l0_fixed);
        p.b0 = self.b0.map(|i| x[i]).unwrap_or(0.0);
        p.s0.clear();
        match self.s0 {
            Some(at) => {
                p.s0.extend_from_slice(&x[at..at + self.m - 1]);
                let sum: f64 = p.s0.iter().sum();
                p.s0.push(match self.spec.season {
                    SeasonType::Multiplicative => self.m as f64 - sum,
                    _ => -sum,
                });
            }
            None => p.s0.extend_from_slice(&self.s0_fixed),
        }
    }

    /// Bounds of α: at least the fixed β, at most 1 − the fixed γ, inside [1e-4, 0.9999].
    fn alpha_bounds(&self) -> (f64, f64) {
        let mut lo = SMOOTH_LO;
        let mut hi = SMOOTH_HI;
        if self.spec.trend != TrendType::None
            && let Some(b) = self.fixed.beta
        {
            lo = lo.max(b);
        }
        if self.spec.season != SeasonType::None
            && let Some(g) = self.fixed.gamma
        {
            hi = hi.min(1.0 - g);
        }
        (lo, hi.max(lo))
    }

    /// Writes the parameters of an optimisation vector `u` into `p`. The
    /// smoothing parameters are held as α, β/α, γ/(1 − α) and φ, so the usual
    /// bounds (0 < β ≤ α, 0 < γ ≤ 1 − α) become a box ([`Layout::bounds`]);
    /// the initial states are taken as they are (the last seasonal state
    /// normalises the others). `p.s0` must hold the fixed seasonal states when
    /// they are not estimated.
    fn unpack_u(&self, u: &[f64], l0_fixed: f64, p: &mut EtsParams) {
        let trend = self.spec.trend != TrendType::None;
        let season = self.spec.season != SeasonType::None;
        p.alpha = match self.alpha {
            Some(i) => u[i],
            None => self.fixed.alpha.unwrap_or(0.0),
        };
        p.beta = match (trend, self.beta) {
            (false, _) => 0.0,
            (true, Some(i)) => p.alpha * u[i],
            (true, None) => self.fixed.beta.unwrap_or(0.0),
        };
        p.gamma = match (season, self.gamma) {
            (false, _) => 0.0,
            (true, Some(i)) => (1.0 - p.alpha) * u[i],
            (true, None) => self.fixed.gamma.unwrap_or(0.0),
        };
        p.phi = match (self.spec.trend, self.phi) {
            (TrendType::Damped, Some(i)) => u[i],
            (TrendType::Damped, None) => self.fixed.phi.unwrap_or(PHI_HI),
            _ => 1.0,
        };
        p.l0 = self.l0.map(|i| u[i]).unwrap_or(l0_fixed);
        p.b0 = self.b0.map(|i| u[i]).unwrap_or(0.0);
        if let Some(at) = self.s0 {
            p.s0.clear();
            p.s0.extend_from_slice(&u[at..at + self.m - 1]);
            let sum: f64 = p.s0.iter().sum();
            p.s0.push(match self.spec.season {
                SeasonType::Multiplicative => self.m as f64 - sum,
                _ => -sum,
            });
        }
    }

    /// Box bounds of the optimisation vector (see [`Layout::unpack_u`]).
    fn bounds(&self) -> (Vec<f64>, Vec<f64>) {
        let mut lo = vec![f64::NEG_INFINITY; self.dim];
        let mut hi = vec![f64::INFINITY; self.dim];
        if let Some(i) = self.alpha {
            (lo[i], hi[i]) = self.alpha_bounds();
        }
        for i in [self.beta, self.gamma].into_iter().flatten() {
            (lo[i], hi[i]) = (SMOOTH_LO, 1.0);
        }
        if let Some(i) = self.phi {
            (lo[i], hi[i]) = (PHI_LO, PHI_HI);
        }
        (lo, hi)
    }

    /// The optimisation vector of parameters `p` (inverse of [`Layout::unpack_u`]).
    fn pack_u(&self, p: &EtsParams) -> Vec<f64> {
        let mut u = vec![0.0; self.dim];
        if let Some(i) = self.alpha {
            u[i] = p.alpha;
        }
        if let Some(i) = self.beta {
            u[i] = p.beta / p.alpha.max(1e-12);
        }
        if let Some(i) = self.gamma {
            u[i] = p.gamma / (1.0 - p.alpha).max(1e-12);
        }
        if let Some(i) = self.phi {
            u[i] = p.phi;
        }
        if let Some(i) = self.l0 {
            u[i] = p.l0;
        }
        if let Some(i) = self.b0 {
            u[i] = p.b0;
        }
        if let Some(at) = self.s0 {
            for j in 0..self.m - 1 {
                u[at + j] = p.s0.get(j).copied().unwrap_or(match self.spec.season {
                    SeasonType::Multiplicative => 1.0,
                    _ => 0.0,
                });
            }
        }
        let (lo, hi) = self.bounds();
        for j in 0..self.dim {
            u[j] = u[j].clamp(lo[j], hi[j]);
        }
        u
    }

    /// Moves the estimated smoothing parameters into the usual bounds;
    /// returns the squared distance moved.
    fn clamp(&self, p: &mut EtsParams) -> f64 {
        const LO: f64 = 1e-4;
        const HI: f64 = 0.9999;
        let mut d = 0.0;
        let mut put = |v: &mut f64, lo: f64, hi: f64| {
            let c = v.clamp(lo, hi.max(lo));
            d += (*v - c) * (*v - c);
            *v = c;
        };
        if self.alpha.is_some() {
            put(&mut p.alpha, LO, HI);
        }
        if self.beta.is_some() {
            put(&mut p.beta, LO, p.alpha.min(HI));
        }
        if self.gamma.is_some() {
            put(&mut p.gamma, LO, 1.0 - p.alpha);
        }
        if self.phi.is_some() {
            put(&mut p.phi, 0.8, 0.98);
        }
        d
    }

    /// Whether the smoothing parameters are inside the usual bounds (only the
    /// estimated ones are checked; fixed ones were validated up front).
    fn admissible(&self, p: &EtsParams) -> bool {
        const LO: f64 = 1e-4;
        const HI: f64 = 0.9999;
        if self.alpha.is_some() && !(LO..=HI).contains(&p.alpha) {
            return false;
        }
        if self.beta.is_some() && !(p.beta >= LO && p.beta <= p.alpha.min(HI)) {
            return false;
        }
        if self.gamma.is_some() && !(p.gamma >= LO && p.gamma <= (1.0 - p.alpha).max(LO)) {
            return false;
        }
        if self.phi.is_some() && !(0.8..=0.98).contains(&p.phi) {
            return false;
        }
        if self.spec.season == SeasonType::Multiplicative && p.s0.iter().any(|&s| s <= 1e-3) {
            return false;
        }
        true
    }
}

/// Runs the recursions over `y` (already scaled). Returns
/// (sum of squared errors, Σ log|μ| for multiplicative error, final state),
/// or None when a forecast leaves the domain (μ ≤ 0 where it must be positive).
fn run(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    mut trace: Option<(&mut Vec<f64>, &mut Vec<f64>)>,
) -> Option<(f64, f64, State)> {
    run_amse(spec, p, y, 0, &mut trace).map(|(sse, logf, _, st)| (sse, logf, st))
}

/// [`run`] that also returns the average over horizons 1..=`h` of the mean
/// squared k-step-ahead error (R's `opt.crit = "amse"`), when `h > 0`.
fn run_amse(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    trace: &mut Option<(&mut Vec<f64>, &mut Vec<f64>)>,
) -> Option<(f64, f64, f64, State)> {
    let m = spec.m();
    let mut msek = vec![0.0; h];
    let mut cntk = vec![0usize; h];
    let mut l = p.l0;
    let mut b = p.b0;
    let mut s: Vec<f64> = if p.s0.is_empty() {
        vec![0.0; m]
    } else {
        p.s0.clone()
    };
    let seasonal = spec.season;
    let mult_err = spec.error == ErrorType::Multiplicative;
    let damped_b = |b: f64| b * p.phi;
    let mut sse = 0.0;
    let mut logf = 0.0;
    let mut prod = 1.0_f64;
    for (t, &yt) in y.iter().enumerate() {
        let i = t % m;
        let phib = if spec.trend == TrendType::None {
            0.0
        } else {
            damped_b(b)
        };
        let q = l + phib;
        let si = s[i];
        let mu = match seasonal {
            SeasonType::None => q,
            SeasonType::Additive => q + si,
            SeasonType::Multiplicative => q * si,
        };
        let e = if mult_err {
            if mu <= 1e-10 {
                return None;
            }
            // Σ log μ as the log of running products (one ln per 32 steps).
            prod *= mu;
            if t % 32 == 31 {
                logf += prod.ln();
                prod = 1.0;
            }
            (yt - mu) / mu
        } else {
            yt - mu
        };
        sse += e * e;
        if h > 0 {
            let mut damp = 0.0;
            let mut phik = 1.0;
            for k in 0..h.min(y.len() - t) {
                if spec.trend != TrendType::None {
                    phik *= p.phi;
                    damp += phik;
                }
                let qk = l + damp * b;
                let sk = s[(t + k) % m];
                let fk = match seasonal {
                    SeasonType::None => qk,
                    SeasonType::Additive => qk + sk,
                    SeasonType::Multiplicative => qk * sk,
                };
                let ek = y[t + k] - fk;
                msek[k] += ek * ek;
                cntk[k] += 1;
            }
        }
        let pv = match seasonal {
            SeasonType::None => yt,
            SeasonType::Additive => yt - si,
            SeasonType::Multiplicative => {
                if si.abs() < 1e-10 {
                    return None;
                }
                yt / si
            }
        };
        let l_new = q + p.alpha * (pv - q);
        if spec.trend != TrendType::None {
            b = phib + (p.beta / p.alpha) * (l_new - l - phib);
        }
        match seasonal {
            SeasonType::None => {}
            SeasonType::Additive => s[i] = si + p.gamma * (yt - q - si),
            SeasonType::Multiplicative => {
                if q.abs() < 1e-10 {
                    return None;
                }
                s[i] = si + p.gamma * (yt / q - si)
            }
        }
        l = l_new;
        if let Some((levels, fitted)) = trace.as_mut() {
            levels.push(l);
            fitted.push(mu);
        }
    }
    logf += prod.ln();
    if !sse.is_finite() || !logf.is_finite() {
        return None;
    }
    let amse = if h > 0 {
        msek.iter()
            .zip(&cntk)
            .filter(|(_, c)| **c > 0)
            .map(|(v, c)| v / *c as f64)
            .sum::<f64>()
            / h as f64
    } else {
        0.0
    };
    Some((
        sse,
        logf,
        amse,
        State {
            l,
            b,
            s,
            t: y.len(),
        },
    ))
}

/// −2 log-likelihood up to the constant n(1 + log 2π) − n log n, i.e. R's
/// `n log(SSE) + 2 Σ log|μ|`.
fn objective(spec: &EtsSpec, n: usize, sse: f64, logf: f64) -> f64 {
    let base = n as f64 * sse.max(1e-300).ln();
    if spec.error == ErrorType::Multiplicative {
        base + 2.0 * logf
    } else {
        base
    }
}

/// Classical-decomposition starting values (Hyndman et al. 2008 §2.6.1).
fn heuristic_start(spec: &EtsSpec, y: &[f64]) -> (f64, f64, Vec<f64>) {
    let m = spec.m();
    let n = y.len();
    let mut s = Vec::new();
    let mut ysa: Vec<f64> = y.to_vec();
    if spec.season != SeasonType::None && n >= 2 * m {
        let cycles = (n / m).min(4);
        let w = &y[..cycles * m];
        // Centred moving average of order m (2×m for even m).
        let mut ma = vec![f64::NAN; w.len()];
        let half = m / 2;
        for t in half..w.len().saturating_sub(half) {
            let v = if m.is_multiple_of(2) {
                if t + half >= w.len() {
                    continue;
                }
                let inner: f64 = w[t + 1 - half..t + half].iter().sum();
                (inner + 0.5 * (w[t - half] + w[t + half])) / m as f64
            } else {
                w[t - half..=t + half].iter().sum::<f64>() / m as f64
            };
            ma[t] = v;
        }
        let mult = spec.season == SeasonType::Multiplicative;
        let mut acc = vec![0.0; m];
        let mut cnt = vec![0usize; m];
        for t in 0..w.len() {
            if ma[t].is_finite() && (!mult || ma[t] > 0.0) {
                acc[t % m] += if mult { w[t] / ma[t] } else { w[t] - ma[t] };
                cnt[t % m] += 1;
            }
        }
        s = (0..m)
            .map(|i| {
                if cnt[i] > 0 {
                    acc[i] / cnt[i] as f64
                } else if mult {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let mean = s.iter().sum::<f64>() / m as f64;
        if mult {
            for v in &mut s {
                *v = (*v / mean).max(0.05);
            }
        } else {
            for v in &mut s {
                *v -= mean;
            }
        }
        for (t, v) in ysa.iter_mut().enumerate() {
            *v = if mult { *v / s[t % m] } else { *v - s[t % m] };
        }
    } else if spec.season != SeasonType::None {
        s = vec![
            if spec.season == SeasonType::Multiplicative {
                1.0
            } else {
                0.0
            };
            m
        ];
    }
    let k = ysa.len().min((2 * m).max(10));
    let head = &ysa[..k];
    if spec.trend == TrendType::None || k < 2 {
        let l0 = head.iter().sum::<f64>() / k as f64;
        (l0, 0.0, s)
    } else {
        let tm = (k as f64 + 1.0) / 2.0;
        let ym = head.iter().sum::<f64>() / k as f64;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (i, &v) in head.iter().enumerate() {
            let dx = (i + 1) as f64 - tm;
            sxy += dx * (v - ym);
            sxx += dx * dx;
        }
        let b0 = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        (ym - b0 * tm, b0, s)
    }
}

/// Nelder-Mead minimisation with per-coordinate initial steps. Returns the best
/// point and value.
fn nelder_mead(
    f: &mut dyn FnMut(&[f64]) -> f64,
    x0: &[f64],
    steps: &[f64],
    max_evals: usize,
    tol: f64,
) -> (Vec<f64>, f64, usize) {
    let d = x0.len();
    let mut evals = 0;
    let mut eval = |x: &[f64], evals: &mut usize| {
        *evals += 1;
        let v = f(x);
        if v.is_finite() { v } else { f64::INFINITY }
    };
    if d == 0 {
        let v = eval(x0, &mut evals);
        return (Vec::new(), v, evals);
    }
    let mut simplex: Vec<Vec<f64>> = vec![x0.to_vec()];
    for i in 0..d {
        let mut x = x0.to_vec();
        x[i] += steps[i];
        simplex.push(x);
    }
    let mut fv: Vec<f64> = simplex.iter().map(|x| eval(x, &mut evals)).collect();
    // Adaptive coefficients (Gao & Han 2012) help in higher dimensions.
    let df = d as f64;
    let (alpha, gamma, rho, sigma) = if d > 2 {
        (1.0, 1.0 + 2.0 / df, 0.75 - 1.0 / (2.0 * df), 1.0 - 1.0 / df)
    } else {
        (1.0, 2.0, 0.5, 0.5)
    };
    let mut order: Vec<usize> = (0..=d).collect();
    let mut centroid = vec![0.0; d];
    let mut xr = vec![0.0; d];
    let mut xe = vec![0.0; d];
    let mut xc = vec![0.0; d];
    while evals < max_evals {
        order.sort_by(|&a, &b| fv[a].total_cmp(&fv[b]));
        let (best, worst, second) = (order[0], order[d], order[d - 1]);
        let spread = fv[worst] - fv[best];
        if spread.abs() <= tol || !fv[best].is_finite() && spread.is_nan() {
            break;
        }
        centroid.iter_mut().for_each(|c| *c = 0.0);
        for &i in &order[..d] {
            for (c, v) in centroid.iter_mut().zip(&simplex[i]) {
                *c += v / df;
            }
        }
        for j in 0..d {
            xr[j] = centroid[j] + alpha * (centroid[j] - simplex[worst][j]);
        }
        let fr = eval(&xr, &mut evals);
        if fr < fv[best] {
            for j in 0..d {
                xe[j] = centroid[j] + gamma * (xr[j] - centroid[j]);
            }
            let fe = eval(&xe, &mut evals);
            if fe < fr {
                simplex[worst].copy_from_slice(&xe);
                fv[worst] = fe;
            } else {
                simplex[worst].copy_from_slice(&xr);
                fv[worst] = fr;
            }
            continue;
        }
        if fr < fv[second] {
            simplex[worst].copy_from_slice(&xr);
            fv[worst] = fr;
            continue;
        }
        let outside = fr < fv[worst];
        for j in 0..d {
            xc[j] = if outside {
                centroid[j] + rho * (xr[j] - centroid[j])
            } else {
                centroid[j] + rho * (simplex[worst][j] - centroid[j])
            };
        }
        let fc = eval(&xc, &mut evals);
        if fc < fr.min(fv[worst]) {
            simplex[worst].copy_from_slice(&xc);
            fv[worst] = fc;
            continue;
        }
        // Shrink towards the best point.
        let xb = simplex[best].clone();
        for &i in &order[1..] {
            for j in 0..d {
                simplex[i][j] = xb[j] + sigma * (simplex[i][j] - xb[j]);
            }
            fv[i] = eval(&simplex[i], &mut evals);
        }
    }
    let best = (0..=d)
        .min_by(|&a, &b| fv[a].total_cmp(&fv[b]))
        .unwrap_or(0);
    (simplex[best].clone(), fv[best], evals)
}

/// Options of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FitOptions {
    /// Maximum evaluations of the criterion per optimiser run.
    pub max_evals: usize,
    /// Number of restarts from the best point found (fresh damping for
    /// Levenberg-Marquardt, a fresh simplex for Nelder-Mead), each with half
    /// the evaluations.
    pub restarts: usize,
    /// 0: maximum likelihood. h > 0: minimise the average mean squared
    /// 1..h-step-ahead error instead (R's `opt.crit = "amse"`, `nmse = h`).
    pub amse_horizon: usize,
    /// Keep the initial seasonal states at their classical-decomposition
    /// values instead of estimating them (far fewer free parameters; they
    /// are still counted in the AICc's parameter count).
    pub heuristic_season: bool,
    /// Stop when the criterion (−2 log-likelihood, or log AMSE) changes by
    /// less than this (Levenberg-Marquardt: per step, twice running;
    /// Nelder-Mead: across the simplex).
    pub tol: f64,
    /// Use the derivative-free Nelder-Mead search (with one restart) instead of
    /// Levenberg-Marquardt. Slower and it stops short of the optimum in the
    /// 15+ dimensions of a seasonal model; kept because `auto`'s AMSE
    /// re-estimation was designed and benchmarked with it.
    pub nelder_mead: bool,
    /// After the Levenberg-Marquardt search, evaluate the criterion on a
    /// grid of smoothing parameters (at most 2 × 27 residual passes, 8 at a
    /// time) and search again from the best grid point if it lies in another
    /// basin and comes close to the optimum found; also start from the grid
    /// where the default start leaves the model's domain. Default true; the
    /// screening fits of [`AutoEts`] (which only rank candidates) skip it.
    /// On AirPassengers it costs ≈ 5 % of `auto`'s fit time.
    #[serde(default = "default_probe")]
    pub probe: bool,
}

fn default_probe() -> bool {
    true
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            max_evals: 1500,
            restarts: 1,
            amse_horizon: 0,
            heuristic_season: false,
            tol: 1e-4,
            nelder_mead: false,
            probe: true,
        }
    }
}

/// Work buffers of one residual evaluation: parameters and seasonal buffer,
/// then the same for the lanes of a batched evaluation.
type Scratch = (EtsParams, Vec<f64>, Vec<EtsParams>, Vec<f64>);

/// Fits one ETS model by maximum likelihood.
pub fn fit_ets(y: &[f64], spec: EtsSpec, fixed: &EtsFixed) -> Result<EtsFit, ModelError> {
    fit_ets_with(y, spec, fixed, &FitOptions::default())
}

/// Fits one ETS model with explicit optimiser options.
pub fn fit_ets_with(
    y: &[f64],
    spec: EtsSpec,
    fixed: &EtsFixed,
    opts: &FitOptions,
) -> Result<EtsFit, ModelError> {
    fit_ets_from(y, spec, fixed, opts, None)
}

/// [`fit_ets_with`] started from `warm` (parameters on the data's scale, e.g.
/// those of a cheaper fit of the same spec) instead of the default start.
fn fit_ets_from(
    y: &[f64],
    spec: EtsSpec,
    fixed: &EtsFixed,
    opts: &FitOptions,
    warm: Option<&EtsParams>,
) -> Result<EtsFit, ModelError> {
    check_series(y)?;
    check_unit("alpha", fixed.alpha, 0.0, 1.0)?;
    check_unit("beta", fixed.beta, 0.0, 1.0)?;
    check_unit("gamma", fixed.gamma, 0.0, 1.0)?;
    check_unit("phi", fixed.phi, 0.0, 1.0)?;
    if let Some(l0) = fixed.initial_level
        && !l0.is_finite()
    {
        return Err(ModelError::InvalidParameter {
            name: "initial_level".into(),
            reason: "not finite".into(),
        });
    }
    if spec.trend != TrendType::None && fixed.alpha == Some(0.0) {
        return Err(ModelError::InvalidParameter {
            name: "alpha".into(),
            reason: "must be > 0 for a trend model".into(),
        });
    }
    let m = spec.m();
    if let Some(i) = y.iter().position(|&v| v <= 0.0)
        && (spec.error == ErrorType::Multiplicative
            || spec.season == SeasonType::Multiplicative
            || spec.transform == Transform::Log)
    {
        return Err(ModelError::InvalidInput(format!(
            "{} needs strictly positive data, but value {} (index {i} of {}) is not",
            spec.name(),
            y[i],
            y.len()
        )));
    }
    if spec.season != SeasonType::None && m < 2 {
        return Err(ModelError::InvalidParameter {
            name: "season".into(),
            reason: "a seasonal model needs a season length of at least 2".into(),
        });
    }
    let layout = Layout::new(spec, *fixed, None);
    // k estimated parameters (σ² included) need n ≥ k + 2: R's `ets` stops
    // at n ≥ k + 1, where AICc's correction 2k(k+1)/(n−k−1) divides by zero.
    let k = layout.dim + 1;
    let seasonal = spec.season != SeasonType::None;
    if y.len() < k + 2 || (seasonal && y.len() < 2 * m) {
        return Err(ModelError::InvalidInput(format!(
            "{} observations are too few for {}: it estimates {k} parameters (σ² included) and needs at least {} observations{}",
            y.len(),
            spec.name(),
            k + 2,
            if seasonal {
                format!(" and two full seasons of {m} ({})", 2 * m)
            } else {
                String::new()
            }
        )));
    }
    // Fitting scale: log transform, then x = (y − shift) / scale. The
    // additive models are equivariant under shifts and scalings of the data,
    // so they are fitted on standardised data (mean 0, standard deviation 1):
    // the one-step errors are then differences of numbers of the size of the
    // data's spread, not of its level, and the finite-difference Jacobian
    // resolves them even when the noise is 1e-10 of the level. Multiplicative
    // models are only scale-equivariant: they are divided by the mean magnitude.
    let mut x: Vec<f64> = match spec.transform {
        Transform::None => y.to_vec(),
        Transform::Log => y.iter().map(|v| v.ln()).collect(),
    };
    let nf = x.len() as f64;
    let magnitude = {
        let mean = x.iter().map(|v| v.abs()).sum::<f64>() / nf;
        if mean > 0.0 && mean.is_finite() {
            mean
        } else {
            1.0
        }
    };
    let constant = is_constant(&x);
    let (shift, scale) = if spec.is_linear() {
        if constant {
            (x[0], magnitude)
        } else {
            let mean = x.iter().sum::<f64>() / nf;
            let sd = (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / nf).sqrt();
            (
                mean,
                if sd > SIGMA_REL_FLOOR * magnitude && sd.is_finite() {
                    sd
                } else {
                    magnitude
                },
            )
        }
    } else {
        (0.0, magnitude)
    };
    for v in &mut x {
        *v = (*v - shift) / scale;
    }
    // σ² floor on the fitting scale (see SIGMA_REL_FLOOR): relative errors
    // and log-scale data are already relative to the level.
    let sigma_floor = if spec.error == ErrorType::Multiplicative {
        SIGMA_REL_FLOOR
    } else if spec.transform == Transform::Log {
        SIGMA_REL_FLOOR / scale
    } else {
        SIGMA_REL_FLOOR * magnitude / scale
    };
    let fitting = Fitting {
        y,
        x: &x,
        shift,
        scale,
        sigma2_floor: sigma_floor * sigma_floor,
    };
    let l0_fixed = fixed
        .initial_level
        .map(|l| match spec.transform {
            Transform::None => (l - shift) / scale,
            Transform::Log => (l.max(1e-300).ln() - shift) / scale,
        })
        .unwrap_or(0.0);
    if constant
        && (fixed.initial_level.is_none()
            || (l0_fixed - x[0]).abs() <= SIGMA_REL_FLOOR * x[0].abs().max(1.0))
    {
        return constant_fit(spec, &layout, fixed, l0_fixed, &fitting);
    }

    let (hl, hb, hs) = heuristic_start(&spec, &x);
    let layout = if opts.heuristic_season && spec.season != SeasonType::None {
        Layout::new(spec, *fixed, Some(hs.clone()))
    } else {
        layout
    };
    let n = x.len();
    // Starting point: the caller's warm start (data scale → fitting scale),
    // else the usual defaults and the decomposition states.
    let a0 = fixed.alpha.unwrap_or(if spec.season != SeasonType::None {
        0.2
    } else {
        0.5
    });
    let mut start = EtsParams {
        alpha: a0,
        beta: fixed.beta.unwrap_or((0.1 * a0).max(2e-4)),
        gamma: fixed.gamma.unwrap_or((0.05 * (1.0 - a0)).max(2e-4)),
        phi: fixed.phi.unwrap_or(0.97),
        l0: hl,
        b0: hb,
        s0: hs.clone(),
    };
    if let Some(w) = warm {
        start.alpha = w.alpha;
        start.beta = w.beta;
        start.gamma = w.gamma;
        if spec.trend == TrendType::Damped {
            start.phi = w.phi;
        }
        if spec.transform == Transform::None {
            start.l0 = (w.l0 - shift) / scale;
            start.b0 = w.b0 / scale;
            if w.s0.len() == m {
                start.s0 = match spec.season {
                    SeasonType::Additive => w.s0.iter().map(|v| v / scale).collect(),
                    _ => w.s0.clone(),
                };
            }
        }
    }
    let no_admissible = || {
        ModelError::FitFailed(format!(
            "{} on {} observations: no admissible parameters found (every start leaves the model's domain)",
            spec.name(),
            y.len()
        ))
    };
    if opts.nelder_mead {
        let (params, converged) =
            nelder_mead_fit(&layout, &start, &x, l0_fixed, opts).ok_or_else(no_admissible)?;
        let warnings = if converged {
            Vec::new()
        } else {
            vec![not_converged(&spec, opts.max_evals)]
        };
        return finish_fit(spec, &layout, params, &fitting, warnings);
    }
    let u0 = layout.pack_u(&start);
    let h = opts.amse_horizon;
    let nres = if h > 0 { n * h } else { n };
    let work0 = EtsParams {
        s0: if layout.s0.is_none() {
            layout.s0_fixed.clone()
        } else {
            Vec::with_capacity(m)
        },
        ..start.clone()
    };
    // Scratch of one residual evaluation: the parameters and the seasonal
    // buffer, and the same for the lanes of a batch.
    let make_scratch = || {
        (
            work0.clone(),
            Vec::with_capacity(n + m),
            vec![work0.clone(); kernel::LANES],
            Vec::with_capacity(kernel::LANES * (n + m)),
        )
    };
    let mut scratch = make_scratch();
    let mult_err = spec.error == ErrorType::Multiplicative;
    let mult_season = spec.season == SeasonType::Multiplicative;
    let amse_w: Vec<f64> = (0..h)
        .map(|k| 1.0 / ((h * (n - k.min(n - 1))) as f64).sqrt())
        .collect();
    // The criterion's weights on the kernel's raw residuals.
    let weigh = |r: &mut [f64], logsum: f64| {
        if h > 0 {
            for row in r.chunks_exact_mut(h) {
                for (v, w) in row.iter_mut().zip(&amse_w) {
                    *v *= w;
                }
            }
        } else if mult_err {
            // n log Σ e² + 2 Σ log μ = n log Σ (e G)², G = exp(Σ log μ / n).
            let g = (logsum / n as f64).exp();
            r.iter_mut().for_each(|v| *v *= g);
        }
    };
    let outside = |p: &EtsParams| mult_season && p.s0.iter().any(|&s| s <= 1e-3);
    let resid = |u: &[f64], r: &mut [f64], (work, ring, _, _): &mut Scratch| -> bool {
        layout.unpack_u(u, l0_fixed, work);
        if outside(work) {
            return false;
        }
        match kernel::residuals(&spec, work, &x, h, ring, r) {
            None => false,
            Some(logsum) => {
                weigh(r, logsum);
                true
            }
        }
    };
    // The same for several points at once (the Jacobian's columns).
    // The AMSE weights are fixed, so the kernel writes the columns itself;
    // the likelihood's weight G needs the whole pass first.
    let batch = |us: &[f64],
                 used: usize,
                 base: &[f64],
                 inv: [f64; kernel::LANES],
                 out: &mut [f64],
                 (_, _, works, bufs): &mut Scratch| {
        let mut ok = [false; kernel::LANES];
        let d = us.len() / used.max(1);
        for (i, u) in us.chunks_exact(d.max(1)).take(used).enumerate() {
            layout.unpack_u(u, l0_fixed, &mut works[i]);
            ok[i] = !outside(&works[i]);
        }
        let ps: [&EtsParams; kernel::LANES] = std::array::from_fn(|i| &works[i.min(used - 1)]);
        let fd = (h > 0).then_some(kernel::FdColumns {
            weights: &amse_w,
            base,
            inv,
        });
        let logs = kernel::residuals_lanes(&spec, &ps[..used], &x, h, fd, bufs, out);
        for (i, r) in out.chunks_exact_mut(nres).take(used).enumerate() {
            match logs[i] {
                Some(logsum) if ok[i] => {
                    if h == 0 {
                        weigh(r, logsum);
                        for (c, a0) in r.iter_mut().zip(base) {
                            *c = (*c - a0) * inv[i];
                        }
                    }
                }
                _ => ok[i] = false,
            }
        }
        ok
    };
    let crit_scale = if h > 0 { 1.0 } else { n as f64 };
    let (lo, hi) = layout.bounds();
    let lm_from = |u: &[f64], max_evals: usize, scratch: &mut Scratch| {
        lm::minimise(
            &resid,
            Some(&batch),
            scratch,
            &make_scratch,
            u,
            &lo,
            &hi,
            nres,
            lm::Stop {
                scale: crit_scale,
                tol: opts.tol,
                max_evals,
            },
        )
    };
    // The probe evaluates plain residuals through the Jacobian's batches:
    // (r − 0) · 1 is r, bit for bit.
    let zeros = vec![0.0; nres];
    let mut best = lm_from(&u0, opts.max_evals, &mut scratch);
    if best.is_none() && opts.probe {
        // The default start leaves the model's domain (e.g. a steep initial
        // trend that takes a multiplicative model's forecast below zero):
        // start from the best admissible point of the probe grid instead.
        if let Some((_, u)) = probe_smoothing(
            &layout,
            &u0,
            &lo,
            &hi,
            f64::INFINITY,
            nres,
            &mut |us, used, out| batch(us, used, &zeros, [1.0; kernel::LANES], out, &mut scratch),
        ) {
            best = lm_from(&u, opts.max_evals, &mut scratch);
        }
    }
    for _ in 0..opts.restarts {
        let Some(b) = &best else { break };
        match lm_from(&b.x, opts.max_evals / 2, &mut scratch) {
            Some(a) if a.f < b.f * (1.0 - 1e-9) => best = Some(a),
            _ => break,
        }
    }
    // Another basin: the criterion surface of a model that does not suit
    // the data (Holt on a seasonal series, say) has several local minima,
    // and the search can end in a corner of the box (α at 0.9999, β/α at
    // 1e-4) far worse than another basin (the reference grid of
    // tests/it/forecast_grid.rs found Holt 1.1–1.7× and Holt-Winters 1.24×
    // statsmodels' SSE so). The grid of smoothing parameters is probed with
    // the optimum's initial states and with the decomposition's (states
    // fitted in a corner can suit only that corner); the best grid point, if
    // it lies elsewhere (some smoothing coordinate more than 0.1 away) and
    // within PROBE_MARGIN of the optimum — its states are not fitted yet —
    // gets a search of its own, kept if it ends lower.
    if opts.probe
        && let Some(b) = &best
    {
        let beat = b.f * (1.0 + PROBE_MARGIN);
        let mut found: Option<(f64, Vec<f64>)> = None;
        for around in [&b.x, &u0] {
            if let Some(p) = probe_smoothing(
                &layout,
                around,
                &lo,
                &hi,
                beat,
                nres,
                &mut |us, used, out| {
                    batch(us, used, &zeros, [1.0; kernel::LANES], out, &mut scratch)
                },
            ) && found.as_ref().is_none_or(|f| p.0 < f.0)
            {
                found = Some(p);
            }
        }
        let elsewhere = |u: &[f64]| {
            [layout.alpha, layout.beta, layout.gamma, layout.phi]
                .into_iter()
                .flatten()
                .any(|i| (u[i] - b.x[i]).abs() > 0.1)
        };
        if let Some((_, u)) = found
            && elsewhere(&u)
            && let Some(a) = lm_from(&u, opts.max_evals, &mut scratch)
            && a.f < b.f
        {
            best = Some(a);
        }
    }
    let best = best.ok_or_else(no_admissible)?;
    let mut params = start;
    if layout.s0.is_none() {
        params.s0 = layout.s0_fixed.clone();
    }
    layout.unpack_u(&best.x, l0_fixed, &mut params);
    let warnings = if best.converged {
        Vec::new()
    } else {
        vec![not_converged(&spec, opts.max_evals)]
    };
    finish_fit(spec, &layout, params, &fitting, warnings)
}

/// The warning of a fit whose optimiser ran out of evaluations.
fn not_converged(spec: &EtsSpec, max_evals: usize) -> String {
    format!(
        "{}: the optimiser stopped at its budget of {max_evals} evaluations before converging; the parameters are the best found",
        spec.name()
    )
}

/// The data of one fit on its fitting scale.
struct Fitting<'a> {
    /// The data as given.
    y: &'a [f64],
    /// The data fitted: (y − shift) / scale (y on the log scale for a log model).
    x: &'a [f64],
    shift: f64,
    scale: f64,
    /// Smallest σ² (fitting scale) the likelihood uses, see [`SIGMA_REL_FLOOR`].
    sigma2_floor: f64,
}

/// The exact fit of a constant series (see [`SIGMA_REL_FLOOR`]): every
/// member of the family reproduces it with a flat level, no trend and
/// neutral seasonal states, whatever its smoothing parameters, so these are
/// not identified. They are set as R's `ets` sets them for a constant series
/// (α = 0.9999; β, γ and φ at their lowest, lowest and highest usual values),
/// or to the caller's fixed values, and the fit says so.
fn constant_fit(
    spec: EtsSpec,
    layout: &Layout,
    fixed: &EtsFixed,
    l0_fixed: f64,
    f: &Fitting<'_>,
) -> Result<EtsFit, ModelError> {
    let alpha = fixed.alpha.unwrap_or(SMOOTH_HI);
    let params = EtsParams {
        alpha,
        beta: fixed.beta.unwrap_or(SMOOTH_LO.min(alpha)),
        gamma: fixed.gamma.unwrap_or(SMOOTH_LO.min(1.0 - alpha)),
        phi: fixed.phi.unwrap_or(PHI_HI),
        l0: if fixed.initial_level.is_some() {
            l0_fixed
        } else {
            f.x[0]
        },
        b0: 0.0,
        s0: match spec.season {
            SeasonType::None => Vec::new(),
            SeasonType::Additive => vec![0.0; spec.m()],
            SeasonType::Multiplicative => vec![1.0; spec.m()],
        },
    };
    let warning = format!(
        "{}: the series is constant (all {} values are {}): the fit is exact (σ² = 0), so the smoothing parameters are not identified and are set as R's ets sets them (α = {}); the forecasts are that value, with zero-width intervals; the likelihood and AICc use σ at its floor of 1e-12 of the data's magnitude",
        spec.name(),
        f.y.len(),
        f.y[0],
        params.alpha
    );
    finish_fit(spec, layout, params, f, vec![warning])
}

/// Grid of the smoothing parameters probed by [`probe_smoothing`] (in the
/// optimisation vector's terms: α, β/α, γ/(1 − α), φ).
const PROBE_ALPHA: [f64; 3] = [0.02, 0.5, 0.98];
const PROBE_BETA: [f64; 3] = [0.02, 0.5, 0.98];
const PROBE_GAMMA: [f64; 3] = [0.02, 0.5, 0.95];
const PROBE_PHI: [f64; 1] = [0.9];
/// A grid point elsewhere within this relative margin of the optimum's Σ r²
/// gets a search of its own (its initial states are not fitted yet).
const PROBE_MARGIN: f64 = 0.05;

/// Residuals of up to [`kernel::LANES`] points laid end to end (see [`probe_smoothing`]).
type ProbeEval<'a> = dyn FnMut(&[f64], usize, &mut [f64]) -> [bool; kernel::LANES] + 'a;

/// Evaluates the criterion Σ r² at the grid of smoothing parameters
/// (`PROBE_*`, clamped into the box, at most 27 points) with the other
/// coordinates of `around` (the initial states) kept; returns the best grid
/// point and its Σ r² if it is below `beat`. One residual pass per point, up
/// to [`kernel::LANES`] points at a time (`eval(points, used, out)` writes the
/// residuals of `used` points laid end to end into `out` and says which lanes
/// stayed in the model's domain): a fraction of one Levenberg-Marquardt search.
fn probe_smoothing(
    layout: &Layout,
    around: &[f64],
    lo: &[f64],
    hi: &[f64],
    beat: f64,
    nres: usize,
    eval: &mut ProbeEval<'_>,
) -> Option<(f64, Vec<f64>)> {
    let axes: Vec<(usize, &[f64])> = [
        (layout.alpha, &PROBE_ALPHA[..]),
        (layout.beta, &PROBE_BETA[..]),
        (layout.gamma, &PROBE_GAMMA[..]),
        (layout.phi, &PROBE_PHI[..]),
    ]
    .into_iter()
    .filter_map(|(i, g)| i.map(|i| (i, g)))
    .collect();
    if axes.is_empty() {
        return None;
    }
    // Every grid point (odometer over the axes), laid end to end.
    let d = around.len();
    let mut points: Vec<f64> = Vec::new();
    let mut at = vec![0usize; axes.len()];
    'grid: loop {
        let start = points.len();
        points.extend_from_slice(around);
        for (&(i, grid), &k) in axes.iter().zip(&at) {
            points[start + i] = grid[k].clamp(lo[i], hi[i]);
        }
        let mut a = 0;
        loop {
            if a == axes.len() {
                break 'grid;
            }
            at[a] += 1;
            if at[a] < axes[a].1.len() {
                break;
            }
            at[a] = 0;
            a += 1;
        }
    }
    let mut out = vec![0.0; kernel::LANES * nres];
    let mut best: Option<(f64, usize)> = None;
    for (c, chunk) in points.chunks(kernel::LANES * d).enumerate() {
        let used = chunk.len() / d;
        let ok = eval(chunk, used, &mut out);
        for (lane, r) in out.chunks_exact(nres).take(used).enumerate() {
            let f: f64 = r.iter().map(|v| v * v).sum();
            if ok[lane] && f.is_finite() && f < beat && best.is_none_or(|(fb, _)| f < fb) {
                best = Some((f, c * kernel::LANES + lane));
            }
        }
    }
    best.map(|(f, k)| (f, points[k * d..(k + 1) * d].to_vec()))
}

/// Nelder-Mead over the raw parameters (the estimator before
/// Levenberg-Marquardt, kept for the AMSE estimation of `auto`, see
/// [`FitOptions::nelder_mead`]): out-of-bounds points are evaluated at the
/// nearest point inside the bounds plus a penalty growing with the distance,
/// one restart from the best point. Returns the parameters on the fitting scale.
fn nelder_mead_fit(
    layout: &Layout,
    start: &EtsParams,
    x: &[f64],
    l0_fixed: f64,
    opts: &FitOptions,
) -> Option<(EtsParams, bool)> {
    let spec = layout.spec;
    let m = layout.m;
    let n = x.len();
    let mut x0 = vec![0.0; layout.dim];
    let mut steps = vec![0.0; layout.dim];
    if let Some(i) = layout.alpha {
        x0[i] = start.alpha;
        steps[i] = 0.1;
    }
    if let Some(i) = layout.beta {
        x0[i] = start.beta;
        steps[i] = 0.02;
    }
    if let Some(i) = layout.gamma {
        x0[i] = start.gamma;
        steps[i] = 0.05;
    }
    if let Some(i) = layout.phi {
        x0[i] = start.phi;
        steps[i] = -0.05;
    }
    let sd = {
        let mean = x.iter().sum::<f64>() / n as f64;
        (x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64)
            .sqrt()
            .max(1e-3)
    };
    if let Some(i) = layout.l0 {
        x0[i] = start.l0;
        steps[i] = 0.1 * sd;
    }
    if let Some(i) = layout.b0 {
        x0[i] = start.b0;
        steps[i] = 0.01 * sd;
    }
    if let Some(at) = layout.s0 {
        for j in 0..m - 1 {
            x0[at + j] = start.s0.get(j).copied().unwrap_or(0.0);
            steps[at + j] = match spec.season {
                SeasonType::Multiplicative => 0.02,
                _ => 0.1 * sd,
            };
        }
    }
    let h = opts.amse_horizon;
    let mut res = vec![0.0; if h > 0 { n * h } else { n }];
    let mut ring = Vec::with_capacity(m);
    let mut p = start.clone();
    let mut obj = |v: &[f64]| {
        layout.unpack_into(v, l0_fixed, &mut p);
        let out = layout.clamp(&mut p);
        if !layout.admissible(&p) {
            return f64::INFINITY;
        }
        let penalty = 1e4 * out;
        if h > 0 {
            return match kernel::amse(&spec, &p, x, h, &mut ring, &mut res) {
                Some(amse) => amse.max(1e-300).ln() + penalty,
                None => f64::INFINITY,
            };
        }
        match kernel::residuals(&spec, &p, x, 0, &mut ring, &mut res) {
            Some(logf) => {
                let sse: f64 = res.iter().map(|e| e * e).sum();
                objective(&spec, n, sse, logf) + penalty
            }
            None => f64::INFINITY,
        }
    };
    let (mut best, mut fbest, evals) = nelder_mead(&mut obj, &x0, &steps, opts.max_evals, opts.tol);
    // Converged when the last run stopped on the tolerance, not the budget.
    let mut converged = evals < opts.max_evals;
    for _ in 0..opts.restarts {
        let (xb, fb, evals) = nelder_mead(&mut obj, &best, &steps, opts.max_evals / 2, opts.tol);
        converged = evals < opts.max_evals / 2;
        let improved = fb < fbest - 1e-9 * fbest.abs().max(1.0);
        if fb <= fbest {
            best = xb;
            fbest = fb;
        }
        if !improved {
            break;
        }
    }
    if !fbest.is_finite() {
        return None;
    }
    let mut params = layout.unpack(&best, l0_fixed);
    layout.clamp(&mut params);
    Some((params, converged))
}

/// Final pass of a fit: states, fitted values, likelihood and information
/// criteria, everything back on the data's scale; then the fit's health
/// check. A fit that cannot be true (a non-finite parameter, state, fitted
/// value or criterion; one-step predictions that are all equal although the
/// data are not and α was estimated) is an error naming the model, the data
/// and the reason. An exact fit is kept, with σ² at its floor and a warning.
fn finish_fit(
    spec: EtsSpec,
    layout: &Layout,
    params: EtsParams,
    f: &Fitting<'_>,
    mut warnings: Vec<String>,
) -> Result<EtsFit, ModelError> {
    let (x, scale, shift) = (f.x, f.scale, f.shift);
    let failed = |reason: String| {
        ModelError::FitFailed(format!(
            "{} on {} observations: {reason}",
            spec.name(),
            f.y.len()
        ))
    };
    let m = layout.m;
    let n = x.len();
    let p = &params;
    let smoothing = [p.alpha, p.beta, p.gamma, p.phi, p.l0, p.b0];
    if smoothing.iter().chain(&p.s0).any(|v| !v.is_finite()) {
        return Err(failed(format!("a parameter is not finite ({p:?})")));
    }
    let mut levels = Vec::with_capacity(n);
    let mut fitted = Vec::with_capacity(n);
    let (sse, logf, last) =
        run(&spec, &params, x, Some((&mut levels, &mut fitted))).ok_or_else(|| {
            failed(
                "the recursion left the model's domain (a forecast or seasonal factor reached zero)"
                    .into(),
            )
        })?;
    let nf = n as f64;
    let exact = sse / nf < f.sigma2_floor;
    if exact && !is_constant(f.x) {
        warnings.push(format!(
            "{}: the model reproduces the {n} observations exactly (residual standard deviation below 1e-12 of the data's magnitude); σ² is taken at that floor for the likelihood, AICc and intervals",
            spec.name()
        ));
    }
    let sigma2 = (sse / nf).max(f.sigma2_floor);
    // Gaussian log-likelihood on the fitting scale, then back to the
    // original scale (the shift has Jacobian 1, the scale 1/scale per value).
    let mut loglik = -0.5 * nf * ((2.0 * std::f64::consts::PI * sigma2).ln() + 1.0);
    if spec.error == ErrorType::Multiplicative {
        loglik -= logf;
    }
    loglik -= nf * scale.ln();
    if spec.transform == Transform::Log {
        loglik -= f.y.iter().map(|v| v.ln()).sum::<f64>();
    }
    let k = layout.dim
        + 1
        + if layout.s0.is_none() && spec.season != SeasonType::None {
            m - 1
        } else {
            0
        };
    let kf = k as f64;
    let aic = -2.0 * loglik + 2.0 * kf;
    // fit_ets_from requires n ≥ k + 2, so the correction is finite.
    let aicc = aic + 2.0 * kf * (kf + 1.0) / (nf - kf - 1.0);
    let bic = -2.0 * loglik + kf * nf.ln();
    // Back to the data's scale.
    let unscale_level = |v: f64| v * scale + shift;
    let mut out = params.clone();
    out.l0 = unscale_level(params.l0);
    out.b0 = params.b0 * scale;
    if spec.season == SeasonType::Additive {
        out.s0 = params.s0.iter().map(|&v| v * scale).collect();
    }
    let levels: Vec<f64> = levels.into_iter().map(unscale_level).collect();
    let fitted: Vec<f64> = fitted
        .into_iter()
        .map(|v| match spec.transform {
            Transform::None => unscale_level(v),
            Transform::Log => unscale_level(v).exp(),
        })
        .collect();
    let sigma2 = match spec.error {
        ErrorType::Additive => sigma2 * scale * scale,
        ErrorType::Multiplicative => sigma2,
    };
    let last = State {
        l: unscale_level(last.l),
        b: last.b * scale,
        s: if spec.season == SeasonType::Additive {
            last.s.iter().map(|v| v * scale).collect()
        } else {
            last.s
        },
        t: last.t,
    };
    // Health (the parameters were checked before the pass).
    if let Some(i) = fitted.iter().position(|v| !v.is_finite()) {
        return Err(failed(format!(
            "the one-step prediction of observation {i} is not finite"
        )));
    }
    if levels
        .iter()
        .chain([&last.l, &last.b])
        .chain(&last.s)
        .any(|v| !v.is_finite())
    {
        return Err(failed("a smoothed state is not finite".into()));
    }
    for (what, v) in [
        ("σ²", sigma2),
        ("the log-likelihood", loglik),
        ("AICc", aicc),
        ("BIC", bic),
    ] {
        if !v.is_finite() {
            return Err(failed(format!("{what} is not finite ({v})")));
        }
    }
    if layout.alpha.is_some() && !is_constant(f.y) && fitted.iter().all(|v| *v == fitted[0]) {
        return Err(failed(format!(
            "the one-step predictions are all {} although the data vary (a degenerate fit, α = {})",
            fitted[0], out.alpha
        )));
    }
    Ok(EtsFit {
        spec,
        params: out,
        n,
        k,
        loglik,
        aic,
        aicc,
        bic,
        sigma2,
        levels,
        fitted,
        warnings,
        scale,
        shift,
        last,
    })
}

/// Fits one model for forecasting: by AMSE over 1..`amse_h` steps when the
/// series is long enough for it (n ≥ 3 (k + h), k the number of parameters),
/// else (or when `amse_h` is 0) by maximum likelihood. Returns the fit and
/// `amse<h>` or `mle`.
pub fn fit_ets_for_forecast(
    y: &[f64],
    spec: EtsSpec,
    fixed: &EtsFixed,
    amse_h: usize,
) -> Result<(EtsFit, String), ModelError> {
    let k = Layout::new(spec, *fixed, None).dim + 1;
    if !y.is_empty() && is_constant(y) {
        return Ok((fit_ets(y, spec, fixed)?, CONSTANT_ESTIMATION.into()));
    }
    if amse_h == 0 || y.len() < 3 * (k + amse_h) || k <= 1 {
        return Ok((fit_ets(y, spec, fixed)?, "mle".into()));
    }
    let opts = FitOptions {
        amse_horizon: amse_h,
        nelder_mead: AutoEts::default().refit_nelder_mead,
        ..FitOptions::default()
    };
    match fit_ets_with(y, spec, fixed, &opts) {
        Ok(f) => Ok((f, format!("amse{amse_h}"))),
        Err(_) => Ok((fit_ets(y, spec, fixed)?, "mle".into())),
    }
}

/// How the parameters of a constant series' fit were "estimated" (they were not).
const CONSTANT_ESTIMATION: &str = "none (constant series)";

/// Acklam's rational approximation of the standard normal quantile (|error| < 1.2e-9).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let plow = 0.02425;
    if p < plow {
        let q = (-2.0 * p.ln()).sqrt();
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    } else if p <= 1.0 - plow {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    } else {
        -normal_quantile(1.0 - p)
    }
}

impl EtsFit {
    /// The model's name, e.g. `ETS(M,Ad,M)`.
    pub fn name(&self) -> String {
        self.spec.name()
    }

    /// Point forecasts on the fitting scale (log scale for a log model).
    fn mean_path(&self, h: usize) -> Vec<f64> {
        let m = self.spec.m();
        let st = &self.last;
        let p = &self.params;
        let mut out = Vec::with_capacity(h);
        let mut damp_sum = 0.0;
        let mut phi_j = 1.0;
        for j in 1..=h {
            phi_j *= p.phi;
            damp_sum += phi_j;
            let trend = if self.spec.trend == TrendType::None {
                0.0
            } else {
                damp_sum * st.b
            };
            let q = st.l + trend;
            let s = st.s.get((st.t + j - 1) % m).copied().unwrap_or(0.0);
            out.push(match self.spec.season {
                SeasonType::None => q,
                SeasonType::Additive => q + s,
                SeasonType::Multiplicative => q * s,
            });
        }
        out
    }

    /// Point forecasts for steps 1..=h on the original scale (the median for
    /// a log model). A model of strictly positive data (multiplicative error
    /// or season) whose additive trend takes the forecast below zero is
    /// floored at 0 from there on ([`EtsFit::forecast_intervals`] says so).
    pub fn forecast(&self, h: usize) -> Vec<f64> {
        let mean = self.mean_path(h);
        match self.spec.transform {
            Transform::None => mean
                .into_iter()
                .map(|v| if self.positive_model() { v.max(0.0) } else { v })
                .collect(),
            Transform::Log => mean.into_iter().map(f64::exp).collect(),
        }
    }

    /// Whether the model describes strictly positive data on the original
    /// scale (multiplicative error or season): its observation equation
    /// y = μ (1 + ε) or y = (ℓ + φb) s … has no meaning at μ ≤ 0. (A log
    /// model's forecasts are positive by construction.)
    fn positive_model(&self) -> bool {
        self.spec.transform == Transform::None
            && (self.spec.error == ErrorType::Multiplicative
                || self.spec.season == SeasonType::Multiplicative)
    }

    /// The warning of a positive model whose mean path reaches zero (first
    /// step, 1-based), if it does.
    fn crossing_warning(&self, mean: &[f64]) -> Option<String> {
        if !self.positive_model() {
            return None;
        }
        let j = mean.iter().position(|&v| v <= 0.0)?;
        Some(format!(
            "{}: the trend takes the forecast to {:.6} at step {} of {}, below zero, which a model of strictly positive data cannot forecast; the forecasts and interval bounds below zero are set to 0",
            self.name(),
            mean[j],
            j + 1,
            mean.len()
        ))
    }

    /// Point forecasts with a `level` (e.g. 0.95) prediction interval: analytic
    /// for the linear models, by seeded simulation otherwise.
    pub fn forecast_intervals(&self, h: usize, level: f64) -> Result<Forecast, ModelError> {
        if !(level > 0.0 && level < 1.0) {
            return Err(ModelError::InvalidParameter {
                name: "level".into(),
                reason: format!("{level} is not in (0, 1)"),
            });
        }
        let z = normal_quantile(0.5 + level / 2.0);
        let mean = self.mean_path(h);
        let back = |v: f64| match self.spec.transform {
            Transform::None => v,
            Transform::Log => v.exp(),
        };
        if self.spec.is_linear() {
            let p = &self.params;
            let m = self.spec.m();
            let mut var_sum = 0.0;
            let mut damp_sum = 0.0;
            let mut phi_i = 1.0;
            let (mut lower, mut upper) = (Vec::with_capacity(h), Vec::with_capacity(h));
            for (j, &mu) in mean.iter().enumerate() {
                // Var(h) = σ² (1 + Σ_{i=1}^{h-1} c_i²), c_i = α + β Σ_{k≤i} φ^k + γ 1[i mod m = 0].
                if j > 0 {
                    let i = j;
                    phi_i *= p.phi;
                    damp_sum += phi_i;
                    let mut c = p.alpha;
                    if self.spec.trend != TrendType::None {
                        c += p.beta * damp_sum;
                    }
                    if self.spec.season != SeasonType::None && i % m == 0 {
                        c += p.gamma;
                    }
                    var_sum += c * c;
                }
                let sd = (self.sigma2 * (1.0 + var_sum)).sqrt();
                lower.push(back(mu - z * sd));
                upper.push(back(mu + z * sd));
            }
            return Ok(Forecast {
                point: mean.iter().map(|&v| back(v)).collect(),
                lower,
                upper,
                level,
                interval_method: "analytic".into(),
                warnings: Vec::new(),
            });
        }
        const PATHS: usize = 2000;
        let mut sims = self.simulate(h, PATHS, 0x5eed_f00d);
        let (mut lower, mut upper) = (Vec::with_capacity(h), Vec::with_capacity(h));
        let lo_q = (1.0 - level) / 2.0;
        for col in sims.chunks_exact_mut(PATHS) {
            lower.push(back(quantile_select(col, lo_q)));
            upper.push(back(quantile_select(col, 1.0 - lo_q)));
        }
        // Models of positive data only (see `positive_model`): floored at 0.
        let warnings: Vec<String> = self.crossing_warning(&mean).into_iter().collect();
        let floor = |v: Vec<f64>| -> Vec<f64> {
            if self.positive_model() {
                v.into_iter().map(|x| x.max(0.0)).collect()
            } else {
                v
            }
        };
        Ok(Forecast {
            point: floor(mean.iter().map(|&v| back(v)).collect()),
            lower: floor(lower),
            upper: floor(upper),
            level,
            interval_method: "simulation".into(),
            warnings,
        })
    }

    /// Simulated future sample paths (fitting scale) with Gaussian
    /// innovations, stored by step: value `j * paths + path`.
    fn simulate(&self, h: usize, paths: usize, seed: u64) -> Vec<f64> {
        let m = self.spec.m();
        let p = &self.params;
        let sd = self.sigma2.sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normals = NormalPairs::default();
        let mut out = vec![0.0; h * paths];
        let mut s = self.last.s.clone();
        let trend = self.spec.trend != TrendType::None;
        let beta_a = if trend { p.beta / p.alpha } else { 0.0 };
        for path in 0..paths {
            let mut l = self.last.l;
            let mut b = self.last.b;
            s.clear();
            s.extend_from_slice(&self.last.s);
            let mut i = self.last.t % m;
            for j in 0..h {
                let phib = if trend { p.phi * b } else { 0.0 };
                let q = l + phib;
                let si = s.get(i).copied().unwrap_or(0.0);
                let mu = match self.spec.season {
                    SeasonType::None => q,
                    SeasonType::Additive => q + si,
                    SeasonType::Multiplicative => q * si,
                };
                let e = sd * normals.next(&mut rng);
                let yt = match self.spec.error {
                    ErrorType::Additive => mu + e,
                    ErrorType::Multiplicative => mu * (1.0 + e),
                };
                let pv = match self.spec.season {
                    SeasonType::None => yt,
                    SeasonType::Additive => yt - si,
                    SeasonType::Multiplicative => yt / si,
                };
                let l_new = q + p.alpha * (pv - q);
                if trend {
                    b = phib + beta_a * (l_new - l - phib);
                }
                match self.spec.season {
                    SeasonType::None => {}
                    SeasonType::Additive => s[i] = si + p.gamma * (yt - q - si),
                    SeasonType::Multiplicative => s[i] = si + p.gamma * (yt / q - si),
                }
                l = l_new;
                out[j * paths + path] = yt;
                i += 1;
                if i == m {
                    i = 0;
                }
            }
        }
        out
    }
}

/// Standard normal draws by Box-Muller, using both values of each pair.
#[derive(Default)]
struct NormalPairs {
    spare: Option<f64>,
}

impl NormalPairs {
    fn next(&mut self, rng: &mut ChaCha8Rng) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let u1: f64 = rng.random::<f64>().max(1e-300);
        let u2: f64 = rng.random::<f64>();
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        self.spare = Some(r * sin);
        r * cos
    }
}

/// The `q` quantile of `v` (linear interpolation between order statistics,
/// as [`quantile_sorted`] on the sorted values) by selection, in O(n); `v` is
/// reordered.
fn quantile_select(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let w = pos - lo as f64;
    let (_, &mut a, rest) = v.select_nth_unstable_by(lo, f64::total_cmp);
    if w == 0.0 || rest.is_empty() {
        return a;
    }
    let b = rest.iter().copied().fold(f64::INFINITY, f64::min);
    a * (1.0 - w) + b * w
}

#[cfg(test)]
fn quantile_sorted(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let pos = q * (v.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let w = pos - lo as f64;
    v[lo] * (1.0 - w) + v[hi.min(v.len() - 1)] * w
}

/// Stopping tolerance (in −2 log-likelihood) of the seasonal screening fits.
const SCREEN_TOL: f64 = 0.05;

/// Observations × candidates from which `auto` fits its candidates on several threads.
const PARALLEL_WORK: usize = 20_000;

/// Automatic model selection across the ETS family by AICc.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AutoEts {
    /// Season length; 1 (or 0) means non-seasonal candidates only.
    pub period: usize,
    /// Consider damped trends.
    pub allow_damped: bool,
    /// Consider additive-error models on log(y) (positive data only).
    pub allow_log: bool,
    /// Optimiser options of the selection fits (maximum likelihood).
    pub options: FitOptions,
    /// 0: keep the maximum-likelihood parameters of the chosen model. h > 0:
    /// re-estimate the chosen model's parameters by the average 1..h-step
    /// squared error (AMSE) on the training data, aiming them at multi-step
    /// forecasts (the choice of model stays the AICc one).
    pub refit_amse: usize,
    /// Seasonal candidates are screened with fixed initial seasonal states;
    /// those within this AICc margin of the best screened one (at least 2, at
    /// most `finalists`) are fitted in full.
    pub screen_margin: f64,
    /// Maximum number of seasonal candidates fitted in full.
    pub finalists: usize,
    /// Re-estimate by AMSE with Nelder-Mead (see [`FitOptions::nelder_mead`])
    /// instead of Levenberg-Marquardt. Default false: Nelder-Mead stops short of
    /// the optimum in 15+ dimensions, so its answer depends on where it stops
    /// (on AirPassengers its AMSE-3 point forecasts 1960 at 1.97 % MAPE, the
    /// converged AMSE-3 optimum at 2.56 %); a criterion should not rely on
    /// that. Kept for comparisons.
    pub refit_nelder_mead: bool,
}

impl Default for AutoEts {
    fn default() -> Self {
        AutoEts {
            period: 1,
            allow_damped: true,
            allow_log: true,
            options: FitOptions::default(),
            refit_amse: 3,
            screen_margin: 10.0,
            finalists: 3,
            refit_nelder_mead: false,
        }
    }
}

/// The outcome of automatic selection.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutoFit {
    /// The chosen model.
    pub best: EtsFit,
    /// Every candidate that could be fitted, with its AICc, best first.
    pub candidates: Vec<(String, f64)>,
    /// AICc of the chosen model at its maximum-likelihood parameters (the selection value).
    pub selection_aicc: f64,
    /// How the returned parameters were estimated: `mle`, `amse<h>`, or
    /// `none (constant series)` (an exact fit, see the fit's warnings).
    pub estimation: String,
}

impl AutoEts {
    /// A search over the seasonal and non-seasonal family with season length `period`.
    pub fn new(period: usize) -> Self {
        AutoEts {
            period,
            ..AutoEts::default()
        }
    }

    /// The candidate specs for a series (R's restricted set, plus log models).
    pub fn candidates(&self, y: &[f64]) -> Vec<EtsSpec> {
        let positive = !y.is_empty() && y.iter().all(|&v| v > 0.0);
        let m = self.period.max(1);
        // Two full seasons (what the decomposition start needs); each
        // candidate must also leave R's margin of data over its parameters.
        let seasonal_ok = m >= 2 && y.len() >= 2 * m;
        let mut trends = vec![TrendType::None, TrendType::Additive];
        if self.allow_damped {
            trends.push(TrendType::Damped);
        }
        let mut seasons = vec![SeasonType::None];
        if seasonal_ok {
            seasons.push(SeasonType::Additive);
            if positive {
                seasons.push(SeasonType::Multiplicative);
            }
        }
        let mut errors = vec![ErrorType::Additive];
        if positive {
            errors.push(ErrorType::Multiplicative);
        }
        let mut out = Vec::new();
        for &e in &errors {
            for &t in &trends {
                for &s in &seasons {
                    if e == ErrorType::Additive && s == SeasonType::Multiplicative {
                        continue; // infinite-variance combination (R's restrict = TRUE)
                    }
                    out.push(EtsSpec::new(e, t, s, m));
                }
            }
        }
        if self.allow_log && positive {
            for &t in &trends {
                for &s in &seasons {
                    if s != SeasonType::Multiplicative {
                        out.push(EtsSpec::new(ErrorType::Additive, t, s, m).on_log());
                    }
                }
            }
        }
        // R's `ets` skips a model unless n > (its parameter count) + 4; on a
        // series too short for every model, the fits' own checks decide.
        let roomy: Vec<EtsSpec> = out
            .iter()
            .copied()
            .filter(|s| y.len() > Layout::new(*s, EtsFixed::default(), None).dim + 4)
            .collect();
        if roomy.is_empty() { out } else { roomy }
    }

    /// Fits every candidate (on several threads for long series) and keeps
    /// the one with the lowest AICc.
    pub fn fit_series(&self, y: &[f64]) -> Result<AutoFit, ModelError> {
        check_series(y)?;
        if is_constant(y) {
            // Every candidate fits exactly and ties (R's `ets` does the same).
            let mut best = fit_ets(y, EtsSpec::ses(), &EtsFixed::default())?;
            best.warnings.push(format!(
                "auto: the series is constant, so {} is returned without a search",
                best.name()
            ));
            return Ok(AutoFit {
                candidates: vec![(best.name(), best.aicc)],
                selection_aicc: best.aicc,
                estimation: CONSTANT_ESTIMATION.into(),
                best,
            });
        }
        let specs = self.candidates(y);
        // Stage 1: every candidate at a coarse tolerance, seasonal ones with
        // their initial seasonal states held at the decomposition values
        // (cheap: few free parameters).
        let quick = FitOptions {
            heuristic_season: true,
            restarts: 0,
            max_evals: self.options.max_evals / 2,
            ..self.options
        };
        // Each fit takes well under a millisecond on a few hundred points:
        // handing them to other threads only pays on long series.
        // (Two threads splitting the candidates in halves were measured
        // too: on the shared 2-vCPU machine the threads slow each other and
        // the hand-offs cost more than they save, so the fits stay serial.)
        let parallel = y.len() * specs.len() >= PARALLEL_WORK && rayon::current_num_threads() >= 2;
        // The screen only ranks candidates for the final fits (the margin is
        // 10 AICc): it stops at a coarser tolerance.
        let screen = FitOptions {
            tol: self.options.tol.max(SCREEN_TOL),
            probe: false,
            ..quick
        };
        // Stage: 0 screen (coarse), 1 final non-seasonal fit, 2 final
        // seasonal fit (every initial state estimated).
        let one = |s: &EtsSpec, stage: u8| {
            let opts = match stage {
                0 => &screen,
                1 => &quick,
                _ => &self.options,
            };
            fit_ets_with(y, *s, &EtsFixed::default(), opts)
                .ok()
                .filter(|f| f.aicc.is_finite())
        };
        // Order-preserving either way, so the outcome does not depend on threads.
        let fit_all = |specs: &[EtsSpec], stage: &(dyn Fn(&EtsSpec) -> u8 + Sync)| -> Vec<EtsFit> {
            if parallel {
                specs
                    .par_iter()
                    .with_max_len(1)
                    .filter_map(|s| one(s, stage(s)))
                    .collect()
            } else {
                specs.iter().filter_map(|s| one(s, stage(s))).collect()
            }
        };
        let screened = fit_all(&specs, &|_| 0);
        // Stage 2: the non-seasonal candidates within the margin of the best
        // screened one are fitted to the full tolerance (the others cannot
        // win: a seasonal finalist only improves on its screen), and the
        // promising seasonal candidates get the full fit.
        let floor_all = screened
            .iter()
            .map(|f| f.aicc)
            .fold(f64::INFINITY, f64::min);
        let close: Vec<EtsSpec> = screened
            .iter()
            .filter(|f| f.spec.season == SeasonType::None)
            .filter(|f| f.aicc - floor_all <= self.screen_margin)
            .map(|f| f.spec)
            .collect();
        let mut seasonal: Vec<&EtsFit> = screened
            .iter()
            .filter(|f| f.spec.season != SeasonType::None)
            .collect();
        seasonal.sort_by(|a, b| a.aicc.total_cmp(&b.aicc));
        let floor = seasonal.first().map(|f| f.aicc).unwrap_or(f64::INFINITY);
        let finalists: Vec<EtsSpec> = seasonal
            .iter()
            .enumerate()
            .filter(|(i, f)| {
                *i < self.finalists.max(1) && (f.aicc - floor <= self.screen_margin || *i < 2)
            })
            .map(|(_, f)| f.spec)
            .collect();
        let finals: Vec<EtsSpec> = close.iter().copied().chain(finalists).collect();
        let mut fits = fit_all(&finals, &|s| {
            if s.season == SeasonType::None { 1 } else { 2 }
        });
        fits.sort_by(|a, b| a.aicc.total_cmp(&b.aicc));
        // The listing also shows the non-seasonal candidates left at their
        // screen (out of the running).
        let mut candidates: Vec<(String, f64)> = fits
            .iter()
            .chain(
                screened
                    .iter()
                    .filter(|f| f.spec.season == SeasonType::None && !close.contains(&f.spec)),
            )
            .map(|f| (f.name(), f.aicc))
            .collect();
        candidates.sort_by(|a, b| a.1.total_cmp(&b.1));
        let best = fits.into_iter().next().ok_or_else(|| {
            ModelError::FitFailed(format!(
                "no exponential smoothing model could be fitted to {} observations",
                y.len()
            ))
        })?;
        let selection_aicc = best.aicc;
        // AMSE needs enough data beyond the parameters to be stable.
        let h = self.refit_amse;
        if h > 0 && y.len() >= 3 * (best.k + h) {
            let opts = FitOptions {
                amse_horizon: h,
                nelder_mead: self.refit_nelder_mead,
                ..self.options
            };
            if let Ok(refit) = fit_ets_with(y, best.spec, &EtsFixed::default(), &opts) {
                return Ok(AutoFit {
                    best: refit,
                    candidates,
                    selection_aicc,
                    estimation: format!("amse{h}"),
                });
            }
        }
        Ok(AutoFit {
            best,
            candidates,
            selection_aicc,
            estimation: "mle".into(),
        })
    }
}

impl Estimator<(), [f64]> for AutoEts {
    type Fitted = AutoFit;
    fn fit(&self, _x: &(), y: &[f64]) -> Result<AutoFit, ModelError> {
        self.fit_series(y)
    }
}

/// A fixed spec with fixed values is an estimator of its remaining parameters.
impl Estimator<EtsFixed, [f64]> for EtsSpec {
    type Fitted = EtsFit;
    fn fit(&self, fixed: &EtsFixed, y: &[f64]) -> Result<EtsFit, ModelError> {
        fit_ets(y, *self, fixed)
    }
}

/// Mean absolute percentage error in percent (observations equal to 0 are skipped).
pub fn mape(actual: &[f64], forecast: &[f64]) -> f64 {
    let (mut s, mut n) = (0.0, 0usize);
    for (&a, &f) in actual.iter().zip(forecast) {
        if a != 0.0 {
            s += ((a - f) / a).abs();
            n += 1;
        }
    }
    if n == 0 {
        f64::NAN
    } else {
        100.0 * s / n as f64
    }
}

/// Root mean squared error.
pub fn rmse(actual: &[f64], forecast: &[f64]) -> f64 {
    let n = actual.len().min(forecast.len());
    if n == 0 {
        return f64::NAN;
    }
    let s: f64 = actual
        .iter()
        .zip(forecast)
        .map(|(a, f)| (a - f).powi(2))
        .sum();
    (s / n as f64).sqrt()
}

/// augurs-ets 0.10 `AutoETS` over the non-seasonal family ("ZZN"), for the
/// benchmark against our own selection: returns the chosen model's name and
/// `h` point forecasts. (augurs-ets 0.10 has no seasonal models.)
pub fn augurs_auto_nonseasonal(train: &[f64], h: usize) -> Result<(String, Vec<f64>), ModelError> {
    use augurs_core::{Fit, Predict};
    check_series(train)?;
    let auto = augurs_ets::AutoETS::new(1, "ZZN").map_err(|e| ModelError::InvalidParameter {
        name: "spec".into(),
        reason: e.to_string(),
    })?;
    let fit = auto
        .fit(train)
        .map_err(|e| ModelError::FitFailed(format!("augurs: {e}")))?;
    let fc = fit
        .predict(h, None)
        .map_err(|e| ModelError::FitFailed(format!("augurs: {e}")))?;
    let t = fit.model().model_type();
    Ok((format!("augurs AutoETS {t:?}"), fc.point))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_ses_table() {
        let lv = ses_levels(&[100.0, 120.0, 150.0, 180.0], 0.2, 0.0);
        let want = [20.0, 40.0, 62.0, 85.6];
        for (a, b) in lv.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{lv:?}");
        }
        let fixed = EtsFixed {
            alpha: Some(0.2),
            initial_level: Some(0.0),
            ..EtsFixed::default()
        };
        let fit = fit_ets(&[100.0, 120.0, 150.0, 180.0], EtsSpec::ses(), &fixed).expect("fit");
        for (a, b) in fit.levels.iter().zip(want) {
            assert!((a - b).abs() < 1e-9, "{:?}", fit.levels);
        }
        assert!((fit.forecast(3)[2] - 85.6).abs() < 1e-9);
    }

    #[test]
    fn kernel_agrees_with_reference_recursion() {
        let y = kernel::sample_series(60);
        for spec in kernel::all_specs() {
            let p = kernel::sample_params(&spec, 0.0);
            let (sse, logf, _) = run(&spec, &p, &y, None).expect("reference");
            let mut ring = Vec::new();
            let mut res = vec![0.0; y.len()];
            let lk = kernel::residuals(&spec, &p, &y, 0, &mut ring, &mut res).expect("kernel");
            let ksse: f64 = res.iter().map(|e| e * e).sum();
            assert!((ksse - sse).abs() < 1e-9 * sse.max(1.0), "{}", spec.name());
            assert!((lk - logf).abs() < 1e-9, "{}", spec.name());
            let (_, _, amse, _) = run_amse(&spec, &p, &y, 3, &mut None).expect("ref");
            let mut sums = Vec::new();
            let ka = kernel::amse(&spec, &p, &y, 3, &mut ring, &mut sums).expect("kernel");
            assert!((ka - amse).abs() < 1e-9 * amse.max(1e-9), "{}", spec.name());
            // Stored multi-step residuals, horizons within and beyond a season.
            for h in [12, 15] {
                let (_, _, amse, _) = run_amse(&spec, &p, &y, h, &mut None).expect("ref");
                let mut res = vec![f64::NAN; y.len() * h];
                kernel::residuals(&spec, &p, &y, h, &mut ring, &mut res).expect("kernel");
                let ka: f64 = (0..h)
                    .map(|k| {
                        let s: f64 = res.iter().skip(k).step_by(h).map(|e| e * e).sum();
                        s / (y.len() - k) as f64
                    })
                    .sum::<f64>()
                    / h as f64;
                assert!(
                    (ka - amse).abs() < 1e-9 * amse.max(1e-9),
                    "{} h={h}",
                    spec.name()
                );
            }
        }
    }

    #[test]
    fn auto_offers_a_season_from_two_full_cycles() {
        // 24 monthly points with a strong planted season: the seasonal models
        // are candidates (two full cycles) and AICc takes one.
        let y: Vec<f64> = (0..24)
            .map(|t| {
                let f = [
                    0.8, 0.9, 1.0, 1.0, 1.0, 0.75, 0.75, 0.75, 1.0, 1.0, 1.3, 1.8,
                ][t % 12];
                300.0 * f * (1.0 + 0.03 * (((t * 7919) % 13) as f64 / 6.0 - 1.0))
            })
            .collect();
        let auto = AutoEts::new(12);
        assert!(
            auto.candidates(&y)
                .iter()
                .any(|s| s.season != SeasonType::None)
        );
        assert!(
            auto.candidates(&y[..23])
                .iter()
                .all(|s| s.season == SeasonType::None)
        );
        let fit = auto.fit_series(&y).expect("auto");
        assert_ne!(
            fit.best.spec.season,
            SeasonType::None,
            "{}",
            fit.best.name()
        );
        // A tiny series still gets a model.
        assert!(
            AutoEts::new(1)
                .fit_series(&[3.0, 4.0, 5.0, 4.5, 5.5, 5.0])
                .is_ok()
        );
    }

    #[test]
    fn quantile_by_selection_matches_sorting() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1usize, 2, 7, 2000] {
            let mut z = NormalPairs::default();
            let v: Vec<f64> = (0..n).map(|_| z.next(&mut rng)).collect();
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            for q in [0.0, 0.025, 0.5, 0.975, 1.0] {
                let mut w = v.clone();
                assert_eq!(quantile_select(&mut w, q), quantile_sorted(&sorted, q));
            }
        }
    }

    #[test]
    fn normal_quantile_known_values() {
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
        assert!(normal_quantile(0.5).abs() < 1e-12);
        assert!((normal_quantile(0.01) + 2.326_347_874).abs() < 1e-8);
    }

    #[test]
    fn nelder_mead_finds_quadratic_minimum() {
        let mut f = |x: &[f64]| (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2) + x[2].powi(2);
        let (x, v, _) = nelder_mead(&mut f, &[0.0, 0.0, 1.0], &[1.0, 1.0, 1.0], 5000, 1e-14);
        assert!(
            v < 1e-8 && (x[0] - 3.0).abs() < 1e-3 && (x[1] + 1.0).abs() < 1e-3,
            "{x:?}"
        );
    }

    /// The five methods of the CLI on a season of 4.
    fn methods() -> [EtsSpec; 5] {
        [
            EtsSpec::ses(),
            EtsSpec::holt(false),
            EtsSpec::holt(true),
            EtsSpec::hw_additive(4, false),
            EtsSpec::hw_multiplicative(4, false),
        ]
    }

    #[test]
    fn constant_series_is_an_exact_fit_that_says_so() {
        for v in [7.25, 0.1, 1e9] {
            let y = vec![v; 20];
            for spec in methods() {
                let fit = fit_ets(&y, spec, &EtsFixed::default()).expect("fit");
                let fc = fit.forecast_intervals(6, 0.95).expect("intervals");
                for x in fc.point.iter().chain(&fc.lower).chain(&fc.upper) {
                    assert!((x - v).abs() <= 1e-9 * v, "{} on {v}: {fc:?}", spec.name());
                }
                assert!(fit.aicc.is_finite() && fit.loglik.is_finite());
                assert!(fit.warnings[0].contains("constant"), "{:?}", fit.warnings);
                assert_eq!(fit.params.alpha, SMOOTH_HI);
            }
        }
        // All zero: the additive models fit it; auto returns SES without a search.
        let a = AutoEts::new(4).fit_series(&[0.0; 12]).expect("auto");
        assert_eq!(a.best.spec, EtsSpec::ses());
        assert_eq!(a.estimation, CONSTANT_ESTIMATION);
        assert_eq!(a.best.forecast(3), vec![0.0; 3]);
        assert!(a.best.aicc.is_finite() && a.selection_aicc == a.best.aicc);
        // A fixed initial level away from the constant is an ordinary fit.
        let fixed = EtsFixed {
            initial_level: Some(0.0),
            ..EtsFixed::default()
        };
        let fit = fit_ets(&[5.0; 12], EtsSpec::ses(), &fixed).expect("fit");
        assert!(fit.warnings.is_empty(), "{:?}", fit.warnings);
        assert!(fit.params.alpha > 0.9, "{}", fit.params.alpha);
    }

    #[test]
    fn shortest_admissible_series_has_a_finite_aicc() {
        let y: Vec<f64> = (0..40)
            .map(|t| 50.0 + t as f64 + [3.0, -2.0, 1.0, -2.0][t % 4] + ((t * 7) % 5) as f64)
            .collect();
        for spec in methods() {
            let k = Layout::new(spec, EtsFixed::default(), None).dim + 1;
            let n = (k + 2).max(2 * spec.m());
            let fit = fit_ets(&y[..n], spec, &EtsFixed::default()).expect("fit");
            assert!(fit.aicc.is_finite(), "{} on {n}: {}", spec.name(), fit.aicc);
            match fit_ets(&y[..n - 1], spec, &EtsFixed::default()) {
                Err(ModelError::InvalidInput(msg)) => {
                    assert!(
                        msg.contains("too few") && msg.contains(&spec.name()),
                        "{msg}"
                    );
                    assert!(msg.contains(&format!("{} observations", n - 1)), "{msg}");
                }
                other => panic!("{} on {} points: {other:?}", spec.name(), n - 1),
            }
        }
    }

    #[test]
    fn positive_model_forecasts_stop_at_zero_and_say_so() {
        // Falling by 4 a step toward zero: ETS(M,A,N)'s trend crosses zero
        // within 10 steps; its forecasts and bounds stop at 0.
        let y: Vec<f64> = (0..20)
            .map(|t| 100.0 - 4.0 * t as f64 + [0.5, -0.3, 0.2, -0.4][t % 4])
            .collect();
        let spec = EtsSpec::new(
            ErrorType::Multiplicative,
            TrendType::Additive,
            SeasonType::None,
            1,
        );
        let fit = fit_ets(&y, spec, &EtsFixed::default()).expect("fit");
        assert!(fit.mean_path(15).iter().any(|v| *v < 0.0));
        let fc = fit.forecast_intervals(15, 0.95).expect("intervals");
        assert!(
            fc.point.iter().chain(&fc.lower).all(|v| *v >= 0.0),
            "{fc:?}"
        );
        assert_eq!(fc.point, fit.forecast(15));
        assert!(fc.point[14] == 0.0 && fc.point[0] > 0.0, "{:?}", fc.point);
        assert!(fc.warnings[0].contains("below zero"), "{:?}", fc.warnings);
        // The additive model forecasts the same line below zero, as it may.
        let fit = fit_ets(&y, EtsSpec::holt(false), &EtsFixed::default()).expect("fit");
        let fc = fit.forecast_intervals(15, 0.95).expect("intervals");
        assert!(fc.point[14] < 0.0 && fc.warnings.is_empty(), "{fc:?}");
    }

    #[test]
    fn noise_a_ten_billionth_of_the_level_is_fitted() {
        // Additive models are fitted on standardised data: the search moves
        // (it stalled at its start, α 0.5, when the data were only divided
        // by their mean, the one-step errors then being 1e-10 of the values).
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mut z = NormalPairs::default();
        let y: Vec<f64> = (0..40)
            .map(|_| 1000.0 * (1.0 + 1e-10 * z.next(&mut rng)))
            .collect();
        let free = fit_ets(&y, EtsSpec::ses(), &EtsFixed::default()).expect("fit");
        let at_start = EtsFixed {
            alpha: Some(0.5),
            ..EtsFixed::default()
        };
        let start = fit_ets(&y, EtsSpec::ses(), &at_start).expect("fit");
        assert!(free.params.alpha < 0.1, "alpha {}", free.params.alpha);
        assert!(
            free.loglik > start.loglik + 1.0,
            "{} vs {}",
            free.loglik,
            start.loglik
        );
        assert!(free.warnings.is_empty(), "{:?}", free.warnings);
    }

    /// A seasonal series of 12 fitted by Holt: the search from the default
    /// start ends in the corner α = 0.9999, β/α = 1e-4; the probe finds the
    /// basin near α = β/α = 1, far more likely.
    #[test]
    fn probe_finds_a_better_basin() {
        let season = [
            9.0, 14.0, 15.0, 13.0, 7.0, -1.0, -9.0, -14.0, -15.0, -13.0, -6.0, 1.0,
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let mut z = NormalPairs::default();
        let y: Vec<f64> = (0..72)
            .map(|t| 80.0 + 0.8 * t as f64 + season[t % 12] + 2.0 * z.next(&mut rng))
            .collect();
        let without = FitOptions {
            probe: false,
            ..FitOptions::default()
        };
        let plain =
            fit_ets_with(&y, EtsSpec::holt(false), &EtsFixed::default(), &without).expect("fit");
        let probed = fit_ets(&y, EtsSpec::holt(false), &EtsFixed::default()).expect("fit");
        assert!(
            probed.loglik > plain.loglik + 1.0,
            "probed {} (α {}) vs {} (α {})",
            probed.loglik,
            probed.params.alpha,
            plain.loglik,
            plain.params.alpha
        );
    }

    /// A steep fall flattening out: the default start's trend takes
    /// ETS(M,A,M)'s forecast below zero, so the search needs another start.
    #[test]
    fn start_outside_the_domain_is_replaced_by_a_probe_point() {
        let y: Vec<f64> = (0..24).map(|t| 100.0 * 0.9_f64.powi(t)).collect();
        let spec = EtsSpec::hw_multiplicative(4, false);
        let without = FitOptions {
            probe: false,
            ..FitOptions::default()
        };
        match fit_ets_with(&y, spec, &EtsFixed::default(), &without) {
            Err(ModelError::FitFailed(msg)) => {
                assert!(msg.contains("ETS(M,A,M) on 24 observations"), "{msg}")
            }
            other => panic!("{other:?}"),
        }
        let fit = fit_ets(&y, spec, &EtsFixed::default()).expect("fit");
        assert!(
            fit.loglik.is_finite() && fit.warnings.is_empty(),
            "{:?}",
            fit.warnings
        );
    }

    /// The health check: a fit whose one-step predictions are all equal
    /// although α was estimated and the data vary, or with a non-finite
    /// parameter, is an error naming the model, the data and the reason.
    #[test]
    fn unhealthy_fits_are_errors() {
        let y = [3.0, 5.0, 4.0, 6.0, 5.0, 7.0];
        let spec = EtsSpec::ses();
        let layout = Layout::new(spec, EtsFixed::default(), None);
        let fitting = Fitting {
            y: &y,
            x: &y,
            shift: 0.0,
            scale: 1.0,
            sigma2_floor: 1e-24,
        };
        let params = |alpha: f64, l0: f64| EtsParams {
            alpha,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
            l0,
            b0: 0.0,
            s0: Vec::new(),
        };
        match finish_fit(spec, &layout, params(0.0, 5.0), &fitting, Vec::new()) {
            Err(ModelError::FitFailed(msg)) => {
                assert!(msg.contains("ETS(A,N,N) on 6 observations"), "{msg}");
                assert!(msg.contains("one-step predictions are all 5"), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        match finish_fit(spec, &layout, params(0.5, f64::NAN), &fitting, Vec::new()) {
            Err(ModelError::FitFailed(msg)) => assert!(msg.contains("not finite"), "{msg}"),
            other => panic!("{other:?}"),
        }
        assert!(finish_fit(spec, &layout, params(0.5, 5.0), &fitting, Vec::new()).is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(fit_ets(&[], EtsSpec::ses(), &EtsFixed::default()).is_err());
        assert!(fit_ets(&[1.0, f64::NAN, 2.0], EtsSpec::ses(), &EtsFixed::default()).is_err());
        let y = [1.0, 2.0, 3.0, 0.0, 5.0, 6.0, 7.0, 8.0];
        assert!(fit_ets(&y, EtsSpec::ses().on_log(), &EtsFixed::default()).is_err());
        let fixed = EtsFixed {
            alpha: Some(1.5),
            ..EtsFixed::default()
        };
        assert!(fit_ets(&y, EtsSpec::ses(), &fixed).is_err());
        assert!(
            fit_ets(
                &y[..5],
                EtsSpec::hw_additive(4, false),
                &EtsFixed::default()
            )
            .is_err()
        );
    }
}
