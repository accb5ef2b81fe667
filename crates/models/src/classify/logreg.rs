//! Standardized L2-penalized logistic regression fitted by damped Newton
//! (iteratively reweighted least squares with a Cholesky solve and a
//! backtracking line search; a fit that does not converge is an error), optionally
//! with automatic nonlinear terms.
//!
//! Standardization is learned on the training rows (mean, population sd;
//! constant columns are left at zero). The penalty `l2/2·‖β‖²` is on the
//! standardized coefficients, not the intercept, so `l2 = 1` is scikit-learn's
//! `C = 1`. With `nonlinear`, every column with more than
//! [`NONLINEAR_MIN_DISTINCT`] distinct training values also gets `log1p(x − min)`
//! and a clipped square of its standardized value: a cheap spline-like
//! expansion that lets a linear model bend (e.g. churn falling fast over the
//! first months of tenure, then slowly). Those terms are folded back into
//! their source column when explaining a prediction.

use serde::{Deserialize, Serialize};

use super::{DenseMatrix, check_xy, sigmoid};
use crate::ModelError;

/// Columns need more distinct values than this to get nonlinear terms.
pub const NONLINEAR_MIN_DISTINCT: usize = 10;

/// Settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRegConfig {
    /// L2 penalty on standardized coefficients (1.0 ≈ scikit-learn's `C=1`).
    pub l2: f64,
    /// Add `log1p` and squared terms of continuous columns.
    pub nonlinear: bool,
    /// Newton iterations at most.
    pub max_iter: usize,
}

impl Default for LogRegConfig {
    fn default() -> Self {
        LogRegConfig {
            l2: 1.0,
            nonlinear: false,
            max_iter: 100,
        }
    }
}

/// A derived term.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
enum Term {
    /// The input column itself.
    Raw(usize),
    /// `log1p(max(x − min, 0))`.
    Log { col: usize, min: f64 },
    /// `clamp((x − mean)/sd, −4, 4)²`.
    Square { col: usize, mean: f64, sd: f64 },
}

impl Term {
    fn source(&self) -> usize {
        match *self {
            Term::Raw(c) | Term::Log { col: c, .. } | Term::Square { col: c, .. } => c,
        }
    }
    fn eval(&self, row: &[f64]) -> f64 {
        let v = |c: usize| if row[c].is_finite() { row[c] } else { 0.0 };
        match *self {
            Term::Raw(c) => v(c),
            Term::Log { col, min } => (v(col) - min).max(0.0).ln_1p(),
            Term::Square { col, mean, sd } => ((v(col) - mean) / sd).clamp(-4.0, 4.0).powi(2),
        }
    }
}

/// A fitted logistic regression.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRegModel {
    terms: Vec<Term>,
    mean: Vec<f64>,
    sd: Vec<f64>,
    /// Coefficients on standardized terms.
    coef: Vec<f64>,
    intercept: f64,
    names: Vec<String>,
    nonlinear: bool,
}

/// One coefficient, for reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Coefficient {
    /// Term name (`tenure`, `log1p(tenure)`, `tenure²`).
    pub name: String,
    /// Change in log-odds per standard deviation of the term.
    pub standardized: f64,
    /// Change in log-odds per unit of the term.
    pub per_unit: f64,
}

fn col_stats(vals: &[f64]) -> (f64, f64) {
    let n = vals.len().max(1) as f64;
    let m = vals.iter().sum::<f64>() / n;
    let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, v.sqrt())
}

/// ln(1 + eˣ), exact for large |x| in both directions.
fn softplus(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

/// Whether `vals` hold more than `k` distinct values (stops early; cheap on 0/1 columns).
fn more_distinct_than(vals: &[f64], k: usize) -> bool {
    let mut seen: Vec<f64> = Vec::with_capacity(k + 1);
    for &v in vals {
        if !seen.contains(&v) {
            seen.push(v);
            if seen.len() > k {
                return true;
            }
        }
    }
    false
}

/// Cholesky factor of a symmetric positive definite `a` (row-major p×p), in
/// place (lower triangle). `false` when `a` is not positive definite.
fn cholesky_factor(a: &mut [f64], p: usize) -> bool {
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if d <= 0.0 || !d.is_finite() {
            return false;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = s / d;
        }
    }
    true
}

/// Solves `L Lᵀ x = b` in place given the factor from [`cholesky_factor`].
fn cholesky_apply(a: &[f64], b: &mut [f64], p: usize) {
    for i in 0..p {
        let mut s = b[i];
        for k in 0..i {
            s -= a[i * p + k] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
    for i in (0..p).rev() {
        let mut s = b[i];
        for k in i + 1..p {
            s -= a[k * p + i] * b[k];
        }
        b[i] = s / a[i * p + i];
    }
}

impl LogRegConfig {
    /// Fits on `x`, `y`.
    pub fn fit(&self, x: &DenseMatrix, y: &[bool]) -> Result<LogRegModel, ModelError> {
        check_xy(x, y)?;
        if self.l2.is_nan() || self.l2 < 0.0 {
            return Err(ModelError::InvalidParameter {
                name: "l2".into(),
                reason: "must be >= 0".into(),
            });
        }
        let n = x.n_rows;
        // Terms.
        let mut terms: Vec<Term> = (0..x.n_cols).map(Term::Raw).collect();
        let mut names = x.names.clone();
        if self.nonlinear {
            let mut col = Vec::with_capacity(n);
            for j in 0..x.n_cols {
                col.clear();
                col.extend((0..n).map(|i| x.get(i, j)).filter(|v| v.is_finite()));
                if !more_distinct_than(&col, NONLINEAR_MIN_DISTINCT) {
                    continue;
                }
                let min = col.iter().copied().fold(f64::INFINITY, f64::min);
                let (m, sd) = col_stats(&col);
                if sd <= 0.0 {
                    continue;
                }
                terms.push(Term::Log { col: j, min });
                names.push(format!("log1p({})", x.names[j]));
                terms.push(Term::Square {
                    col: j,
                    mean: m,
                    sd,
                });
                names.push(format!("{}²", x.names[j]));
            }
        }
        let d = terms.len();
        let p = d + 1;
        // Standardized design with a leading 1, column-major: z[t * n + i].
        let mut z = vec![0.0; n * p];
        z[..n].iter_mut().for_each(|v| *v = 1.0);
        let mut mean = vec![0.0; d];
        let mut sd = vec![1.0; d];
        for (t, term) in terms.iter().enumerate() {
            let col = &mut z[(t + 1) * n..(t + 2) * n];
            for (i, c) in col.iter_mut().enumerate() {
                *c = term.eval(x.row(i));
            }
            let (m, sdev) = col_stats(col);
            mean[t] = m;
            if sdev > 1e-12 {
                sd[t] = sdev;
                let inv = 1.0 / sdev;
                col.iter_mut().for_each(|c| *c = (*c - m) * inv);
            } else {
                sd[t] = 0.0;
                col.iter_mut().for_each(|c| *c = 0.0);
            }
        }
        let yv: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
        let mut beta = vec![0.0; p];
        let prior = yv.iter().sum::<f64>() / n as f64;
        beta[0] = (prior / (1.0 - prior)).ln();
        // Damped Newton (IRLS) on the penalized negative log-likelihood
        // L(β) = Σ softplus(ηᵢ) − yᵢηᵢ + l2/2·‖β₁..‖², H = Zᵀ W Z + λI
        // (intercept unpenalized). Every step is a descent step: it is
        // halved until L falls by at least 1e-4 of the decrease the quadratic
        // model predicts (Armijo). Undamped Newton diverges on skewed columns
        // (a sentinel such as 999 for "never" beside small values), which once
        // left this fit with a wrong-signed slope and then constant
        // predictions. Every O(n·p) and O(n·p²) product is a faer SIMD matrix
        // product.
        let zm = faer::MatRef::from_column_major_slice(&z, n, p);
        let penalty = |b: &[f64]| 0.5 * self.l2 * b[1..].iter().map(|v| v * v).sum::<f64>();
        let loss = |eta: &[f64]| -> f64 {
            eta.iter()
                .zip(&yv)
                .map(|(&e, &yi)| softplus(e) - yi * e)
                .sum::<f64>()
        };
        let product = |v: &[f64], out: &mut faer::Mat<f64>| {
            let vm = faer::MatRef::from_column_major_slice(v, p, 1);
            faer::linalg::matmul::matmul(
                out.as_mut(),
                faer::Accum::Replace,
                zm,
                vm,
                1.0,
                faer::Par::Seq,
            );
        };
        let mut h = faer::Mat::<f64>::zeros(p, p);
        let mut sz = vec![0.0; n * p];
        let mut hs = vec![0.0; p * p];
        let mut eta_m = faer::Mat::<f64>::zeros(n, 1);
        let mut zs_m = faer::Mat::<f64>::zeros(n, 1);
        let mut resid = faer::Mat::<f64>::zeros(n, 1);
        let mut sw = vec![0.0; n];
        let mut gm = faer::Mat::<f64>::zeros(p, 1);
        let mut g = vec![0.0; p];
        product(&beta, &mut eta_m);
        let mut eta: Vec<f64> = (0..n).map(|i| eta_m[(i, 0)]).collect();
        let mut objective = loss(&eta) + penalty(&beta);
        let mut trial_eta = vec![0.0; n];
        let mut trial_beta = vec![0.0; p];
        // Newton steps refresh the Hessian; once steps are small the last
        // factor is reused (chord iterations: O(n·p) each instead of O(n·p²)).
        // A chord step that fails the descent test is retried as a Newton step.
        let mut fresh = false;
        let mut last_step = f64::INFINITY;
        let mut converged = false;
        let mut iterations = 0;
        for it in 0..self.max_iter.max(1) {
            iterations = it + 1;
            let refresh = it < 2 || !fresh;
            for i in 0..n {
                let q = sigmoid(eta[i]);
                resid[(i, 0)] = q - yv[i];
                sw[i] = (q * (1.0 - q)).max(1e-10).sqrt();
            }
            faer::linalg::matmul::matmul(
                gm.as_mut(),
                faer::Accum::Replace,
                zm.transpose(),
                resid.as_ref(),
                1.0,
                faer::Par::Seq,
            );
            for a in 0..p {
                g[a] = gm[(a, 0)] + if a > 0 { self.l2 * beta[a] } else { 0.0 };
            }
            if refresh {
                for t in 0..p {
                    for ((o, &zv), &w) in sz[t * n..(t + 1) * n]
                        .iter_mut()
                        .zip(&z[t * n..(t + 1) * n])
                        .zip(&sw)
                    {
                        *o = w * zv;
                    }
                }
                let szm = faer::MatRef::from_column_major_slice(&sz, n, p);
                faer::linalg::matmul::matmul(
                    h.as_mut(),
                    faer::Accum::Replace,
                    szm.transpose(),
                    szm,
                    1.0,
                    faer::Par::Seq,
                );
                for a in 0..p {
                    for b in 0..=a {
                        hs[a * p + b] = h[(a, b)];
                    }
                }
                for a in 1..p {
                    hs[a * p + a] += self.l2.max(1e-8);
                }
                hs[0] += 1e-10;
                if !cholesky_factor(&mut hs, p) {
                    return Err(ModelError::FitFailed(format!(
                        "logistic regression on {n} rows x {d} columns: the Hessian is not positive definite"
                    )));
                }
            }
            let mut step = g.clone();
            cholesky_apply(&hs, &mut step, p);
            // Newton decrement: the decrease the quadratic model predicts
            let decrement: f64 = g.iter().zip(&step).map(|(a, b)| a * b).sum();
            if !decrement.is_finite() {
                return Err(ModelError::FitFailed(format!(
                    "logistic regression on {n} rows x {d} columns diverged (non-finite step)"
                )));
            }
            if decrement <= 2e-12 * (1.0 + objective.abs()) {
                converged = true;
                break;
            }
            product(&step, &mut zs_m);
            let mut t = 1.0;
            let accepted = loop {
                for (b, (&b0, &s)) in trial_beta.iter_mut().zip(beta.iter().zip(&step)) {
                    *b = b0 - t * s;
                }
                for (i, e) in trial_eta.iter_mut().enumerate() {
                    *e = eta[i] - t * zs_m[(i, 0)];
                }
                let trial = loss(&trial_eta) + penalty(&trial_beta);
                if trial <= objective - 1e-4 * t * decrement {
                    break Some(trial);
                }
                if !refresh || t < 1e-10 {
                    break None;
                }
                t *= 0.5;
            };
            let Some(trial) = accepted else {
                if refresh {
                    // no descent along a fresh Newton direction: the
                    // objective is flat to rounding, i.e. at the optimum
                    converged = decrement <= 1e-6 * (1.0 + objective.abs());
                    break;
                }
                fresh = false;
                continue;
            };
            let max_step = step.iter().fold(0.0f64, |m, s| m.max((t * s).abs()));
            std::mem::swap(&mut beta, &mut trial_beta);
            std::mem::swap(&mut eta, &mut trial_eta);
            objective = trial;
            fresh = refresh || max_step < 0.5 * last_step;
            last_step = max_step;
        }
        if !converged {
            return Err(ModelError::FitFailed(format!(
                "logistic regression on {n} rows x {d} columns did not converge in {iterations} \
                 Newton iterations{}",
                if self.l2 == 0.0 {
                    " (without a penalty the classes may be separable: use l2 > 0)"
                } else {
                    ""
                }
            )));
        }
        if beta.iter().any(|b| !b.is_finite()) {
            return Err(ModelError::FitFailed(format!(
                "logistic regression on {n} rows x {d} columns has non-finite coefficients"
            )));
        }
        // Health: some column varies, so the log-odds must too (a collapsed
        // fit gives every row the same probability).
        if sd.iter().any(|&s| s > 0.0) {
            let (lo, hi) = eta
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &e| {
                    (lo.min(e), hi.max(e))
                });
            if hi - lo <= 1e-12 {
                return Err(ModelError::FitFailed(format!(
                    "logistic regression on {n} rows x {d} columns predicts the same probability for every row"
                )));
            }
        }
        Ok(LogRegModel {
            terms,
            mean,
            sd,
            intercept: beta[0],
            coef: beta[1..].to_vec(),
            names,
            nonlinear: self.nonlinear,
        })
    }
}

impl LogRegModel {
    fn zt(&self, t: usize, row: &[f64]) -> f64 {
        if self.sd[t] > 0.0 {
            (self.terms[t].eval(row) - self.mean[t]) / self.sd[t]
        } else {
            0.0
        }
    }

    /// Log-odds of one row.
    pub fn decision_row(&self, row: &[f64]) -> f64 {
        self.intercept
            + (0..self.terms.len())
                .map(|t| self.coef[t] * self.zt(t, row))
                .sum::<f64>()
    }

    /// Probability of one row.
    pub fn predict_row(&self, row: &[f64]) -> f64 {
        sigmoid(self.decision_row(row))
    }

    /// Contributions to the log-odds per input column (coefficient × standardized
    /// value, i.e. relative to the training mean; nonlinear terms summed into their column).
    pub fn contributions(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; row.len()];
        for t in 0..self.terms.len() {
            out[self.terms[t].source()] += self.coef[t] * self.zt(t, row);
        }
        out
    }

    /// Whether nonlinear terms were added.
    pub fn nonlinear(&self) -> bool {
        self.nonlinear
    }

    /// Intercept (log-odds of a row at the training means).
    pub fn intercept(&self) -> f64 {
        self.intercept
    }

    /// Coefficients of every term.
    pub fn coefficients(&self) -> Vec<Coefficient> {
        (0..self.terms.len())
            .map(|t| Coefficient {
                name: self.names[t].clone(),
                standardized: self.coef[t],
                per_unit: if self.sd[t] > 0.0 {
                    self.coef[t] / self.sd[t]
                } else {
                    0.0
                },
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovers_known_coefficients_without_penalty() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..20000 {
            let a: f64 = rng.random_range(-2.0..2.0);
            let b: f64 = rng.random_range(-2.0..2.0);
            let p = sigmoid(0.5 + 1.5 * a - 1.0 * b);
            rows.push(vec![a, b]);
            y.push(rng.random::<f64>() < p);
        }
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let m = LogRegConfig {
            l2: 0.0,
            ..Default::default()
        }
        .fit(&x, &y)
        .unwrap();
        let c = m.coefficients();
        assert!((c[0].per_unit - 1.5).abs() < 0.1, "{c:?}");
        assert!((c[1].per_unit + 1.0).abs() < 0.1, "{c:?}");
        let p0 = m.predict_row(&[0.0, 0.0]);
        assert!((p0 - sigmoid(0.5)).abs() < 0.03);
    }

    #[test]
    fn nonlinear_terms_fit_a_u_shape() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(8);
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for _ in 0..4000 {
            let a: f64 = rng.random_range(0.0..10.0);
            let p = sigmoid(-2.0 + 0.15 * (a - 5.0) * (a - 5.0));
            rows.push(vec![a]);
            y.push(rng.random::<f64>() < p);
        }
        let x = DenseMatrix::from_rows(&rows).unwrap();
        let lin = LogRegConfig::default().fit(&x, &y).unwrap();
        let nl = LogRegConfig {
            nonlinear: true,
            ..Default::default()
        }
        .fit(&x, &y)
        .unwrap();
        let auc = |m: &LogRegModel| {
            let p: Vec<f64> = (0..x.n_rows).map(|i| m.predict_row(x.row(i))).collect();
            crate::metrics::classification::roc_auc(&y, &p).unwrap()
        };
        assert!(auc(&nl) > auc(&lin) + 0.1, "{} vs {}", auc(&nl), auc(&lin));
        // Contributions come back on the one input column.
        assert_eq!(nl.contributions(&[1.0]).len(), 1);
    }
}
