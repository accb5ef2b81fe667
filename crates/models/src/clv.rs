//! Customer lifetime value: the BG/NBD purchase model (Fader, Hardie & Lee
//! 2005, "Counting your customers the easy way"), the Gamma-Gamma spend model
//! (Fader & Hardie 2013 note), and discounted CLV.
//!
//! This module owns the whole pure pipeline: the per-customer summary
//! (frequency x, recency tₓ, age T, mean repeat spend) built from raw
//! transactions, maximum-likelihood fits with analytic gradients (BFGS on
//! log-parameters), and the predictions: E[Y(t) | x, tₓ, T], P(alive),
//! E[X(t)] for a new customer, the expected average spend, and CLV.
//!
//! Conventions follow lifetimes' `summary_data_from_transaction_data` with
//! `freq='D'` so the published CDNOW figures are reproduced: purchases on the
//! same day count once (their amounts are summed), frequency is the number of
//! repeat purchase days, recency and age are measured in days and divided by
//! the length of the time unit (week = 7 days, as in the paper), and the
//! monetary value is the mean of the repeat days' spend (the first day is
//! excluded; 0 for customers without repeats).

pub mod expected;
mod optim;
pub mod special;

use serde::{Deserialize, Serialize};

pub use special::{digamma, digamma_ratio, hyp2f1, ln_gamma, ln_gamma_ratio};

use crate::{Estimator, ModelError};

/// The time unit recency, age and predictions are expressed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeUnit {
    /// One day.
    Day,
    /// Seven days (fractional weeks = days / 7, as in Fader, Hardie & Lee 2005).
    Week,
    /// An average month of 365.25 / 12 = 30.4375 days.
    Month,
}

impl TimeUnit {
    /// Length of the unit in days.
    pub fn days(self) -> f64 {
        match self {
            TimeUnit::Day => 1.0,
            TimeUnit::Week => 7.0,
            TimeUnit::Month => 365.25 / 12.0,
        }
    }

    /// Number of units per month used by the CLV discounting, the constants of
    /// lifetimes' `customer_lifetime_value` (30 days, 4.345 weeks, 1 month).
    pub fn per_month(self) -> f64 {
        match self {
            TimeUnit::Day => 30.0,
            TimeUnit::Week => 4.345,
            TimeUnit::Month => 1.0,
        }
    }

    /// Lower-case name (`day`, `week`, `month`).
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Day => "day",
            TimeUnit::Week => "week",
            TimeUnit::Month => "month",
        }
    }
}

impl std::str::FromStr for TimeUnit {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "day" | "days" | "d" => Ok(TimeUnit::Day),
            "week" | "weeks" | "w" => Ok(TimeUnit::Week),
            "month" | "months" | "m" => Ok(TimeUnit::Month),
            other => Err(ModelError::InvalidParameter {
                name: "time unit".into(),
                reason: format!("{other:?} is not one of day, week, month"),
            }),
        }
    }
}

/// One purchase: a customer (dense index), a day number and the amount spent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transaction {
    /// Dense customer index (0..n).
    pub customer: usize,
    /// Day number (e.g. days since 1970-01-01); only differences matter.
    pub day: i64,
    /// Amount spent.
    pub amount: f64,
}

/// The sufficient statistics of one customer in the calibration period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerSummary {
    /// Dense customer index, as in the transactions.
    pub customer: usize,
    /// x: number of repeat purchase days (distinct purchase days − 1).
    pub frequency: u32,
    /// tₓ: time from the first to the last purchase, in the time unit.
    pub recency: f64,
    /// T: time from the first purchase to the end of calibration, in the time unit.
    pub age: f64,
    /// Mean spend of the repeat purchase days (0 when `frequency == 0`).
    pub monetary: f64,
}

/// Builds the per-customer summaries from transactions, keeping only those on
/// or before `calibration_end` (a day number on the same scale as
/// [`Transaction::day`]). Customers without a purchase by then are absent.
/// The result is sorted by customer index.
pub fn summarize(
    transactions: &[Transaction],
    calibration_end: i64,
    unit: TimeUnit,
) -> Result<Vec<CustomerSummary>, ModelError> {
    let mut tx: Vec<(usize, i64, f64)> = Vec::with_capacity(transactions.len());
    for t in transactions {
        if !t.amount.is_finite() {
            return Err(ModelError::InvalidInput(format!(
                "customer {} day {}: amount {} is not a finite number",
                t.customer, t.day, t.amount
            )));
        }
        if t.day <= calibration_end {
            tx.push((t.customer, t.day, t.amount));
        }
    }
    tx.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    let ud = unit.days();
    let mut out = Vec::new();
    let mut i = 0;
    while i < tx.len() {
        let customer = tx[i].0;
        let first = tx[i].1;
        let mut last = first;
        let mut days = 0u32;
        let mut repeat_sum = 0.0;
        while i < tx.len() && tx[i].0 == customer {
            let day = tx[i].1;
            let mut spend = 0.0;
            while i < tx.len() && tx[i].0 == customer && tx[i].1 == day {
                spend += tx[i].2;
                i += 1;
            }
            if days > 0 {
                repeat_sum += spend;
            }
            days += 1;
            last = day;
        }
        let frequency = days - 1;
        out.push(CustomerSummary {
            customer,
            frequency,
            recency: (last - first) as f64 / ud,
            age: (calibration_end - first) as f64 / ud,
            monetary: if frequency > 0 {
                repeat_sum / f64::from(frequency)
            } else {
                0.0
            },
        });
    }
    Ok(out)
}

fn check_summaries(data: &[CustomerSummary]) -> Result<(), ModelError> {
    if data.is_empty() {
        return Err(ModelError::InvalidInput("no customers to fit".into()));
    }
    for s in data {
        if !(s.recency.is_finite() && s.age.is_finite() && s.recency >= 0.0 && s.recency <= s.age) {
            return Err(ModelError::InvalidInput(format!(
                "customer {}: need 0 ≤ recency ({}) ≤ age ({})",
                s.customer, s.recency, s.age
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// BG/NBD
// ---------------------------------------------------------------------------

/// BG/NBD parameters: transaction rate λ ~ Gamma(r, α), dropout probability
/// p ~ Beta(a, b). α is in the time unit of the data it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdParams {
    /// Shape of the purchase-rate gamma.
    pub r: f64,
    /// Scale (rate parameter) of the purchase-rate gamma, in time units.
    pub alpha: f64,
    /// Beta parameter a of the dropout probability.
    pub a: f64,
    /// Beta parameter b of the dropout probability.
    pub b: f64,
}

impl BgNbdParams {
    fn check(&self) -> Result<(), ModelError> {
        for (name, v) in [
            ("r", self.r),
            ("alpha", self.alpha),
            ("a", self.a),
            ("b", self.b),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(ModelError::InvalidParameter {
                    name: name.into(),
                    reason: format!("{v} is not > 0"),
                });
            }
        }
        Ok(())
    }

    /// Log-likelihood of one customer (x repeat purchases, recency tₓ, age T),
    /// the paper's equation (6) evaluated with log-gamma and log-sum-exp.
    pub fn log_likelihood(&self, x: f64, t_x: f64, age: f64) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *self;
        // A1 = ln Γ(r+x) − ln Γ(r) + r ln α, with r ln α folded into A3 and A4
        // (r ln α − (r+x) ln(α+T) = −r ln1p(T/α) − x ln(α+T)) so that large r
        // and α do not cancel catastrophically.
        let a1 = ln_gamma_ratio(r, x);
        let a2 = ln_gamma_ratio(b, x) - ln_gamma_ratio(a + b, x);
        let a3 = -r * (age / alpha).ln_1p() - x * (alpha + age).ln();
        let last = if x > 0.0 {
            let a4 =
                a.ln() - (b + x - 1.0).ln() - r * (t_x / alpha).ln_1p() - x * (alpha + t_x).ln();
            let m = a3.max(a4);
            m + (-(a3 - a4).abs()).exp().ln_1p()
        } else {
            a3
        };
        a1 + a2 + last
    }

    /// Sum of [`Self::log_likelihood`] over customers.
    pub fn total_log_likelihood(&self, data: &[CustomerSummary]) -> f64 {
        data.iter()
            .map(|s| self.log_likelihood(f64::from(s.frequency), s.recency, s.age))
            .sum()
    }

    /// P(alive | x, tₓ, T) (paper's equation (11)). By the model's definition
    /// a customer can only drop out right after a repeat purchase, so it is 1
    /// when x = 0.
    pub fn prob_alive(&self, x: f64, t_x: f64, age: f64) -> f64 {
        if x <= 0.0 {
            return 1.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        let ln_ratio =
            a.ln() - (b + x - 1.0).ln() + (r + x) * ((alpha + age).ln() - (alpha + t_x).ln());
        1.0 / (1.0 + ln_ratio.exp())
    }

    /// E[Y(t) | x, tₓ, T]: expected purchases in the next `t` time units of a
    /// customer with history (x, tₓ, T) (paper's equation (10)): P(alive)
    /// times the expected purchases of an alive customer, evaluated as a sum
    /// of positive terms by [`expected::alive_expected_purchases`] (the
    /// paper's ₂F₁ form cancels catastrophically for new customers when b is
    /// large). Never negative.
    pub fn expected_purchases(&self, t: f64, x: f64, t_x: f64, age: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        expected::alive_expected_purchases(r + x, a, b + x, t / (alpha + age))
            * self.prob_alive(x, t_x, age)
    }

    /// E[X(t)]: expected purchases in a period of length `t` for a new,
    /// randomly chosen customer (paper's equation (9)).
    pub fn expected_purchases_new(&self, t: f64) -> f64 {
        if t <= 0.0 {
            return 0.0;
        }
        let BgNbdParams { r, alpha, a, b } = *self;
        expected::alive_expected_purchases(r, a, b, t / alpha)
    }
}

/// BG/NBD estimator configuration (maximum likelihood).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbd {
    /// Stopping tolerance on the gradient of the mean log-likelihood with
    /// respect to the log-parameters.
    pub gtol: f64,
    /// Most BFGS iterations.
    pub max_iter: usize,
}

impl Default for BgNbd {
    fn default() -> Self {
        BgNbd {
            gtol: 1e-10,
            max_iter: 500,
        }
    }
}

/// A fitted BG/NBD model with its fit diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbdFit {
    /// Estimated parameters.
    pub params: BgNbdParams,
    /// Maximized log-likelihood (in the data's time unit).
    pub log_likelihood: f64,
    /// Customers fitted.
    pub customers: usize,
    /// Customers with at least one repeat purchase.
    pub repeaters: usize,
    /// BFGS iterations.
    pub iterations: usize,
    /// Likelihood-and-gradient evaluations.
    pub evaluations: usize,
    /// Whether BFGS reached its gradient tolerance (from some start); when
    /// false the parameters are the best found and reports say so.
    #[serde(default)]
    pub converged: bool,
}

/// Customers grouped by identical (x, tₓ, T), with lookup tables of the
/// distinct values so each evaluation costs a few logs per distinct value and
/// one exp per group.
struct BgGroups {
    xs: Vec<f64>,
    t_vals: Vec<f64>,
    tx_vals: Vec<f64>,
    /// (x index, T index, tₓ index, count)
    groups: Vec<(u32, u32, u32, f64)>,
    /// count of customers per distinct x
    x_counts: Vec<f64>,
    n: f64,
}

fn distinct(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_unstable_by(f64::total_cmp);
    v.dedup();
    v
}

fn index_of(vals: &[f64], v: f64) -> u32 {
    vals.binary_search_by(|p| p.total_cmp(&v)).unwrap_or(0) as u32
}

impl BgGroups {
    fn new(data: &[CustomerSummary], scale: f64) -> Self {
        let xs = distinct(data.iter().map(|s| f64::from(s.frequency)).collect());
        let t_vals = distinct(data.iter().map(|s| s.age / scale).collect());
        let tx_vals = distinct(data.iter().map(|s| s.recency / scale).collect());
        let mut keys: Vec<(u32, u32, u32)> = data
            .iter()
            .map(|s| {
                (
                    index_of(&xs, f64::from(s.frequency)),
                    index_of(&t_vals, s.age / scale),
                    index_of(&tx_vals, s.recency / scale),
                )
            })
            .collect();
        keys.sort_unstable();
        let mut groups: Vec<(u32, u32, u32, f64)> = Vec::new();
        let mut x_counts = vec![0.0; xs.len()];
        for k in keys {
            x_counts[k.0 as usize] += 1.0;
            match groups.last_mut() {
                Some(g) if (g.0, g.1, g.2) == k => g.3 += 1.0,
                _ => groups.push((k.0, k.1, k.2, 1.0)),
            }
        }
        BgGroups {
            xs,
            t_vals,
            tx_vals,
            groups,
            x_counts,
            n: data.len() as f64,
        }
    }

    /// Log-likelihood and its gradient with respect to (r, α, a, b).
    fn ll_grad(&self, p: &BgNbdParams, grad: &mut [f64; 4]) -> f64 {
        let BgNbdParams { r, alpha, a, b } = *p;
        let nx = self.xs.len();
        // ln a − ln(b+x−1), per distinct x
        let mut x_const = vec![0.0; nx];
        let mut ll = 0.0;
        let mut g = [0.0; 4];
        for (k, &x) in self.xs.iter().enumerate() {
            let n = self.x_counts[k];
            // A1 − r ln α and A2, as cancellation-free gamma ratios
            let a1 = ln_gamma_ratio(r, x);
            let a2 = ln_gamma_ratio(b, x) - ln_gamma_ratio(a + b, x);
            ll += n * (a1 + a2);
            g[0] += n * digamma_ratio(r, x);
            let dab = digamma_ratio(a + b, x);
            g[2] -= n * dab;
            g[3] += n * (digamma_ratio(b, x) - dab);
            if x > 0.0 {
                x_const[k] = a.ln() - (b + x - 1.0).ln();
            }
        }
        // per distinct time t: (ln(α+t), ln1p(t/α), t/(α(α+t)), 1/(α+t))
        let table = |vals: &[f64]| -> Vec<[f64; 4]> {
            vals.iter()
                .map(|&t| {
                    [
                        (alpha + t).ln(),
                        (t / alpha).ln_1p(),
                        t / (alpha * (alpha + t)),
                        1.0 / (alpha + t),
                    ]
                })
                .collect()
        };
        let lt = table(&self.t_vals);
        let ltx = table(&self.tx_vals);
        for &(xi, ti, txi, n) in &self.groups {
            let x = self.xs[xi as usize];
            // A3 + r ln α = −r ln1p(T/α) − x ln(α+T)
            let [l_t, l1p_t, q_t, i_t] = lt[ti as usize];
            let a3 = -r * l1p_t - x * l_t;
            let da3 = r * q_t - x * i_t;
            if x > 0.0 {
                let [l_tx, l1p_tx, q_tx, i_tx] = ltx[txi as usize];
                let a4 = x_const[xi as usize] - r * l1p_tx - x * l_tx;
                let da4 = r * q_tx - x * i_tx;
                let e = (-(a3 - a4).abs()).exp();
                let (m, w4) = if a4 > a3 {
                    (a4, 1.0 / (1.0 + e))
                } else {
                    (a3, e / (1.0 + e))
                };
                let w3 = 1.0 - w4;
                ll += n * (m + (1.0 + e).ln());
                g[0] -= n * (w3 * l1p_t + w4 * l1p_tx);
                g[1] += n * (w3 * da3 + w4 * da4);
                g[2] += n * w4 / a;
                g[3] -= n * w4 / (b + x - 1.0);
            } else {
                ll += n * a3;
                g[0] -= n * l1p_t;
                g[1] += n * da3;
            }
        }
        *grad = g;
        ll
    }
}

impl BgNbd {
    /// Fits the model to customer summaries by maximum likelihood.
    ///
    /// Times are rescaled internally so the oldest customer has age 10 (as
    /// lifetimes does), the optimiser works on log-parameters from (1,1,1,1),
    /// and α and the log-likelihood are reported in the data's own units.
    pub fn fit_summaries(&self, data: &[CustomerSummary]) -> Result<BgNbdFit, ModelError> {
        check_summaries(data)?;
        let max_age = data.iter().map(|s| s.age).fold(0.0, f64::max);
        if max_age <= 0.0 {
            return Err(ModelError::InvalidInput(
                "every customer has age 0: the calibration period must extend past the first purchases".into(),
            ));
        }
        let scale = max_age / 10.0;
        let groups = BgGroups::new(data, scale);
        let n = groups.n;
        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            let p = BgNbdParams {
                r: theta[0].exp(),
                alpha: theta[1].exp(),
                a: theta[2].exp(),
                b: theta[3].exp(),
            };
            let mut g = [0.0; 4];
            let ll = groups.ll_grad(&p, &mut g);
            let vals = [p.r, p.alpha, p.a, p.b];
            for i in 0..4 {
                grad[i] = -g[i] * vals[i] / n;
            }
            -ll / n
        };
        let mut best: Option<optim::Minimum> = None;
        for start in [
            [0.0, 0.0, 0.0, 0.0],
            [-1.0, 0.0, -0.5, 0.5],
            [0.5, 1.0, 0.5, 1.0],
        ] {
            let m = optim::bfgs(objective, &start, self.gtol, self.max_iter);
            let better = best.as_ref().is_none_or(|b| m.f < b.f);
            let done = m.converged && m.f.is_finite();
            if better {
                best = Some(m);
            }
            if done {
                break;
            }
        }
        let Some(m) = best.filter(|m| m.f.is_finite()) else {
            return Err(ModelError::FitFailed(
                "BG/NBD likelihood is not finite at any start".into(),
            ));
        };
        let params = BgNbdParams {
            r: m.x[0].exp(),
            alpha: m.x[1].exp() * scale,
            a: m.x[2].exp(),
            b: m.x[3].exp(),
        };
        params
            .check()
            .map_err(|e| ModelError::FitFailed(format!("BG/NBD estimate out of range: {e}")))?;
        // LL in the original units: rescaling times by s shifts each customer's LL by −x ln s.
        let sum_x: f64 = data.iter().map(|s| f64::from(s.frequency)).sum();
        let log_likelihood = -m.f * n - sum_x * scale.ln();
        Ok(BgNbdFit {
            params,
            log_likelihood,
            customers: data.len(),
            repeaters: data.iter().filter(|s| s.frequency > 0).count(),
            iterations: m.iterations,
            evaluations: m.evaluations,
            converged: m.converged,
        })
    }
}

impl Estimator<[CustomerSummary], ()> for BgNbd {
    type Fitted = BgNbdFit;
    fn fit(&self, x: &[CustomerSummary], _y: &()) -> Result<BgNbdFit, ModelError> {
        self.fit_summaries(x)
    }
}

// ---------------------------------------------------------------------------
// Gamma-Gamma
// ---------------------------------------------------------------------------

/// Gamma-Gamma spend parameters: each transaction's value ~ Gamma(p, ν),
/// ν ~ Gamma(q, γ).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaParams {
    /// Shape of the per-transaction spend.
    pub p: f64,
    /// Shape of the customers' ν.
    pub q: f64,
    /// Scale γ of the customers' ν (in money units).
    pub gamma: f64,
}

impl GammaGammaParams {
    /// Log-likelihood of one repeat customer's mean spend `m` over `x` transactions.
    pub fn log_likelihood(&self, x: f64, m: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let px = p * x;
        let xm = x * m;
        // = ln Γ(px+q) − ln Γ(px) − ln Γ(q) + q ln γ + (px−1) ln m + px ln x − (px+q) ln(xm+γ),
        // regrouped so that large p or γ do not cancel catastrophically
        ln_gamma_ratio(px, q)
            - ln_gamma(q)
            - q * (xm / gamma).ln_1p()
            - px * (gamma / xm).ln_1p()
            - m.ln()
    }

    /// E[Z | x, z̄]: expected average spend per transaction of a customer with
    /// `x` repeat transactions of mean `m` (the population mean pγ/(q−1) when
    /// x = 0). Infinite where the posterior mean does not exist: px + q ≤ 1
    /// (so for x = 0 whenever q ≤ 1).
    pub fn expected_average_spend(&self, x: f64, m: f64) -> f64 {
        let GammaGammaParams { p, q, gamma } = *self;
        let x = x.max(0.0);
        let den = p * x + q - 1.0;
        if den <= 0.0 {
            return f64::INFINITY;
        }
        p * (gamma + x * m) / den
    }
}

/// Gamma-Gamma estimator configuration (maximum likelihood on repeat customers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGamma {
    /// Stopping tolerance on the gradient of the mean log-likelihood.
    pub gtol: f64,
    /// Most BFGS iterations.
    pub max_iter: usize,
}

impl Default for GammaGamma {
    fn default() -> Self {
        GammaGamma {
            gtol: 1e-10,
            max_iter: 500,
        }
    }
}

/// A fitted Gamma-Gamma model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGammaFit {
    /// Estimated parameters.
    pub params: GammaGammaParams,
    /// Maximized log-likelihood.
    pub log_likelihood: f64,
    /// Customers used (x > 0 and mean spend > 0).
    pub customers: usize,
    /// BFGS iterations.
    pub iterations: usize,
    /// Likelihood-and-gradient evaluations.
    pub evaluations: usize,
    /// Whether BFGS reached its gradient tolerance (from some start).
    #[serde(default)]
    pub converged: bool,
    /// Mean of those customers' mean repeat spend: what a customer without
    /// repeats is valued at when q ≤ 1 (the model's population mean
    /// pγ/(q−1) does not exist then).
    #[serde(default)]
    pub observed_mean_spend: f64,
}

/// Repeat customers' (x, mean spend) prepared for fast likelihood
/// evaluations: counts per distinct x and per-customer logs.
struct GgData {
    xs: Vec<f64>,
    x_counts: Vec<f64>,
    /// (x, x·m, ln(x·m)) per customer
    xm: Vec<(f64, f64, f64)>,
    min_xm: f64,
    sum_ln_m: f64,
    n: f64,
}

impl GgData {
    fn new(obs: &[(f64, f64)]) -> Self {
        let xs = distinct(obs.iter().map(|o| o.0).collect());
        let mut x_counts = vec![0.0f64; xs.len()];
        let mut sum_ln_m = 0.0;
        for &(x, m) in obs {
            x_counts[index_of(&xs, x) as usize] += 1.0;
            sum_ln_m += m.ln();
        }
        let xm: Vec<(f64, f64, f64)> = obs.iter().map(|&(x, m)| (x, x * m, (x * m).ln())).collect();
        let min_xm = xm.iter().map(|v| v.1).fold(f64::INFINITY, f64::min);
        GgData {
            xs,
            x_counts,
            xm,
            min_xm,
            sum_ln_m,
            n: obs.len() as f64,
        }
    }

    /// Log-likelihood and its gradient in (p, q, γ). Per customer,
    /// ℓ = [ln Γ(px+q) − ln Γ(px)] − ln Γ(q) − q ln1p(xm/γ) − px ln1p(γ/(xm)) − ln m,
    /// the density rewritten without differences of large logs.
    fn ll_grad(&self, p: f64, q: f64, gamma: f64, grad: &mut [f64; 3]) -> f64 {
        let n = self.n;
        let (mut ll, mut gp, mut gq, mut gg) =
            (-self.sum_ln_m - n * ln_gamma(q), 0.0, -n * digamma(q), 0.0);
        for (k, &x) in self.xs.iter().enumerate() {
            let cnt = self.x_counts[k];
            let px = p * x;
            ll += cnt * ln_gamma_ratio(px, q);
            gp += cnt * x * digamma_ratio(px, q);
            gq += cnt * digamma(px + q);
        }
        // l1 = ln1p(xm/γ), l2 = ln1p(γ/xm): one log per customer, as
        // ln(xm+γ) minus precomputed logs, unless γ is so small next to
        // xm that the subtraction would lose l2's digits.
        let fast = gamma >= 1e-4 * self.min_xm;
        let ln_g = gamma.ln();
        for &(x, xm, ln_xm) in &self.xm {
            let d = xm + gamma;
            let (l1, l2) = if fast {
                let l = d.ln();
                (l - ln_g, l - ln_xm)
            } else {
                ((xm / gamma).ln_1p(), (gamma / xm).ln_1p())
            };
            ll -= q * l1 + p * x * l2;
            gp -= x * l2;
            gq -= l1;
            gg += (q * xm / gamma - p * x) / d;
        }
        *grad = [gp, gq, gg];
        ll
    }
}

impl GammaGamma {
    /// Fits on the customers with at least one repeat purchase and a positive
    /// mean repeat spend (others carry no information about spend).
    pub fn fit_summaries(&self, data: &[CustomerSummary]) -> Result<GammaGammaFit, ModelError> {
        let obs: Vec<(f64, f64)> = data
            .iter()
            .filter(|s| s.frequency > 0 && s.monetary > 0.0 && s.monetary.is_finite())
            .map(|s| (f64::from(s.frequency), s.monetary))
            .collect();
        if obs.len() < 2 {
            return Err(ModelError::InvalidInput(format!(
                "Gamma-Gamma needs at least 2 repeat customers with positive spend, got {}",
                obs.len()
            )));
        }
        let n = obs.len() as f64;
        let scale = obs.iter().map(|o| o.1).sum::<f64>() / n;
        let scaled: Vec<(f64, f64)> = obs.iter().map(|&(x, m)| (x, m / scale)).collect();
        let data = GgData::new(&scaled);
        let objective = |theta: &[f64], grad: &mut [f64]| -> f64 {
            let (p, q, gamma) = (theta[0].exp(), theta[1].exp(), theta[2].exp());
            let mut g = [0.0; 3];
            let ll = data.ll_grad(p, q, gamma, &mut g);
            grad[0] = -g[0] * p / n;
            grad[1] = -g[1] * q / n;
            grad[2] = -g[2] * gamma / n;
            -ll / n
        };
        let mut best: Option<optim::Minimum> = None;
        for start in [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0], [2.0, 0.5, 1.0]] {
            let m = optim::bfgs(objective, &start, self.gtol, self.max_iter);
            let better = best.as_ref().is_none_or(|b| m.f < b.f);
            let done = m.converged && m.f.is_finite();
            if better {
                best = Some(m);
            }
            if done {
                break;
            }
        }
        let Some(m) = best.filter(|m| m.f.is_finite() && m.x.iter().all(|v| v.is_finite())) else {
            return Err(ModelError::FitFailed(
                "Gamma-Gamma likelihood is not finite at any start".into(),
            ));
        };
        let params = GammaGammaParams {
            p: m.x[0].exp(),
            q: m.x[1].exp(),
            gamma: m.x[2].exp() * scale,
        };
        Ok(GammaGammaFit {
            params,
            log_likelihood: -m.f * n - n * scale.ln(),
            customers: obs.len(),
            iterations: m.iterations,
            evaluations: m.evaluations,
            converged: m.converged,
            observed_mean_spend: scale,
        })
    }
}

impl Estimator<[CustomerSummary], ()> for GammaGamma {
    type Fitted = GammaGammaFit;
    fn fit(&self, x: &[CustomerSummary], _y: &()) -> Result<GammaGammaFit, ModelError> {
        self.fit_summaries(x)
    }
}

// ---------------------------------------------------------------------------
// CLV
// ---------------------------------------------------------------------------

/// Both fitted models and the time unit they were fitted in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvModel {
    /// Purchase model.
    pub bgnbd: BgNbdParams,
    /// Spend model.
    pub gamma_gamma: GammaGammaParams,
    /// Time unit of the BG/NBD parameters.
    pub unit: TimeUnit,
    /// Expected average spend used where the Gamma-Gamma one is not finite
    /// (q ≤ 1: customers without repeat purchases have no finite expected
    /// spend under the model): the observed mean repeat spend, set by the
    /// caller, who reports it as a warning.
    #[serde(default)]
    pub fallback_spend: Option<f64>,
}

/// The value of one customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CustomerValue {
    /// Dense customer index.
    pub customer: usize,
    /// Expected purchases over the horizon.
    pub expected_purchases: f64,
    /// P(alive) at the end of calibration.
    pub prob_alive: f64,
    /// Expected average spend per purchase.
    pub expected_spend: f64,
    /// Discounted CLV over the horizon.
    pub clv: f64,
}

impl ClvModel {
    /// Discounted CLV over `months` months, as lifetimes'
    /// `customer_lifetime_value`: Σ_{i=1..months} spend · (E[Y(i·k)] −
    /// E[Y((i−1)·k)]) / (1 + d)^i, with k = [`TimeUnit::per_month`] time units
    /// per month, d the monthly discount rate, and spend the Gamma-Gamma
    /// expected average spend.
    pub fn value(&self, s: &CustomerSummary, months: u32, monthly_discount: f64) -> CustomerValue {
        let x = f64::from(s.frequency);
        let k = self.unit.per_month();
        // The spend model is for positive amounts: repeat days that net to a
        // refund are valued at its limit for vanishing spend (m → 0).
        let spend = match self
            .gamma_gamma
            .expected_average_spend(x, s.monetary.max(0.0))
        {
            v if v.is_finite() => v,
            v => self.fallback_spend.unwrap_or(v),
        };
        let mut clv = 0.0;
        let mut prev = 0.0;
        for i in 1..=months {
            let e = self
                .bgnbd
                .expected_purchases(f64::from(i) * k, x, s.recency, s.age);
            clv += spend * (e - prev) / (1.0 + monthly_discount).powi(i as i32);
            prev = e;
        }
        CustomerValue {
            customer: s.customer,
            expected_purchases: prev,
            prob_alive: self.bgnbd.prob_alive(x, s.recency, s.age),
            expected_spend: spend,
            clv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(customer: usize, day: i64, amount: f64) -> Transaction {
        Transaction {
            customer,
            day,
            amount,
        }
    }

    #[test]
    fn summary_counts_days_once_and_ignores_after_calibration() {
        let tx = [
            t(0, 0, 10.0),
            t(0, 0, 5.0), // same day: merged
            t(0, 7, 20.0),
            t(0, 14, 4.0),
            t(0, 14, 6.0),
            t(0, 30, 99.0), // after calibration end
            t(1, 21, 8.0),
            t(2, 40, 1.0), // only after calibration: absent
        ];
        let s = summarize(&tx, 28, TimeUnit::Week).expect("summary");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].frequency, 2);
        assert!((s[0].recency - 2.0).abs() < 1e-12);
        assert!((s[0].age - 4.0).abs() < 1e-12);
        assert!((s[0].monetary - 15.0).abs() < 1e-12); // (20 + 10) / 2, first day excluded
        assert_eq!(s[1].frequency, 0);
        assert_eq!(s[1].monetary, 0.0);
        assert!((s[1].age - 1.0).abs() < 1e-12);
        assert!(summarize(&[t(0, 0, f64::NAN)], 1, TimeUnit::Day).is_err());
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let data: Vec<CustomerSummary> = (0..40)
            .map(|i| {
                let f = (i % 5) as u32;
                let age = 5.0 + (i % 7) as f64;
                CustomerSummary {
                    customer: i,
                    frequency: f,
                    recency: if f == 0 {
                        0.0
                    } else {
                        age * (0.2 + 0.1 * (i % 6) as f64)
                    },
                    age,
                    monetary: 10.0 + i as f64,
                }
            })
            .collect();
        let groups = BgGroups::new(&data, 1.0);
        let p = BgNbdParams {
            r: 0.7,
            alpha: 3.0,
            a: 0.6,
            b: 2.5,
        };
        let mut g = [0.0; 4];
        let ll = groups.ll_grad(&p, &mut g);
        assert!((ll - p.total_log_likelihood(&data)).abs() < 1e-9 * ll.abs());
        let base = [p.r, p.alpha, p.a, p.b];
        for i in 0..4 {
            let h = 1e-6 * base[i];
            let mut up = base;
            up[i] += h;
            let mut dn = base;
            dn[i] -= h;
            let mk = |v: [f64; 4]| BgNbdParams {
                r: v[0],
                alpha: v[1],
                a: v[2],
                b: v[3],
            };
            let fd = (mk(up).total_log_likelihood(&data) - mk(dn).total_log_likelihood(&data))
                / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-5 * (1.0 + fd.abs()),
                "param {i}: {fd} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn gamma_gamma_gradient_matches_finite_differences() {
        let obs: Vec<(f64, f64)> = (0..30)
            .map(|i| (f64::from(1 + i % 6), 5.0 + f64::from(i) * 1.7))
            .collect();
        let data = GgData::new(&obs);
        for (p, q, gamma) in [(6.25, 3.74, 15.44), (2.0, 1.5, 0.001), (1e6, 4.0, 3e-4)] {
            let mut g = [0.0; 3];
            let ll = data.ll_grad(p, q, gamma, &mut g);
            let params = GammaGammaParams { p, q, gamma };
            let direct: f64 = obs.iter().map(|&(x, m)| params.log_likelihood(x, m)).sum();
            assert!(
                (ll - direct).abs() < 1e-8 * (1.0 + direct.abs()),
                "{ll} vs {direct}"
            );
            let base = [p, q, gamma];
            for i in 0..3 {
                let h = 1e-6 * base[i];
                let (mut up, mut dn) = (base, base);
                up[i] += h;
                dn[i] -= h;
                let mut scratch = [0.0; 3];
                let fd = (data.ll_grad(up[0], up[1], up[2], &mut scratch)
                    - data.ll_grad(dn[0], dn[1], dn[2], &mut scratch))
                    / (2.0 * h);
                assert!(
                    (fd - g[i]).abs() < 1e-4 * (1.0 + fd.abs()),
                    "({p},{q},{gamma}) param {i}: {fd} vs {}",
                    g[i]
                );
            }
        }
    }

    #[test]
    fn conditional_expectation_agrees_with_unsimplified_formula() {
        let p = BgNbdParams {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        };
        for &(t, x, tx, age) in &[
            (39.0, 2.0, 30.0, 38.0),
            (5.0, 0.0, 0.0, 20.0),
            (52.0, 7.0, 35.0, 36.0),
        ] {
            let (r, alpha, a, b) = (p.r, p.alpha, p.a, p.b);
            let z = t / (alpha + age + t);
            let pow = ((alpha + age) / (alpha + age + t)).powf(r + x);
            let num = (a + b + x - 1.0) / (a - 1.0)
                * (1.0 - pow * hyp2f1(r + x, b + x, a + b + x - 1.0, z));
            let den = 1.0
                + if x > 0.0 {
                    a / (b + x - 1.0) * ((alpha + age) / (alpha + tx)).powf(r + x)
                } else {
                    0.0
                };
            let want = num / den;
            let got = p.expected_purchases(t, x, tx, age);
            assert!(
                (got - want).abs() < 1e-10 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
    }
}
