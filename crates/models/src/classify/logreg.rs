//! Standardized L2-penalized logistic regression fitted by Newton's method
//! (iteratively reweighted least squares with a Cholesky solve), optionally
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
            max_iter: 50,
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

/// Solves `a x = b` for a symmetric positive definite `a` (row-major p×p), in place.
fn cholesky_solve(a: &mut [f64], b: &mut [f64], p: usize) -> bool {
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
    true
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
                let mut s = col.clone();
                s.sort_by(f64::total_cmp);
                s.dedup();
                if s.len() <= NONLINEAR_MIN_DISTINCT {
                    continue;
                }
                let (m, sd) = col_stats(&col);
                if sd <= 0.0 {
                    continue;
                }
                terms.push(Term::Log { col: j, min: s[0] });
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
        // Standardized design with a leading 1.
        let mut z = vec![0.0; n * p];
        let mut raw = vec![0.0; n * d];
        for i in 0..n {
            let row = x.row(i);
            for (t, term) in terms.iter().enumerate() {
                raw[i * d + t] = term.eval(row);
            }
        }
        let mut mean = vec![0.0; d];
        let mut sd = vec![1.0; d];
        let mut colv = Vec::with_capacity(n);
        for t in 0..d {
            colv.clear();
            colv.extend((0..n).map(|i| raw[i * d + t]));
            let (m, s) = col_stats(&colv);
            mean[t] = m;
            sd[t] = if s > 1e-12 { s } else { 0.0 };
        }
        for i in 0..n {
            z[i * p] = 1.0;
            for t in 0..d {
                z[i * p + 1 + t] = if sd[t] > 0.0 {
                    (raw[i * d + t] - mean[t]) / sd[t]
                } else {
                    0.0
                };
            }
        }
        let yv: Vec<f64> = y.iter().map(|&b| f64::from(u8::from(b))).collect();
        let mut beta = vec![0.0; p];
        let prior = yv.iter().sum::<f64>() / n as f64;
        beta[0] = (prior / (1.0 - prior)).ln();
        let mut h = vec![0.0; p * p];
        let mut g = vec![0.0; p];
        let mut converged = false;
        for _ in 0..self.max_iter.max(1) {
            h.iter_mut().for_each(|v| *v = 0.0);
            g.iter_mut().for_each(|v| *v = 0.0);
            for i in 0..n {
                let zi = &z[i * p..(i + 1) * p];
                let eta: f64 = zi.iter().zip(&beta).map(|(a, b)| a * b).sum();
                let q = sigmoid(eta);
                let r = q - yv[i];
                let w = (q * (1.0 - q)).max(1e-10);
                for a in 0..p {
                    g[a] += r * zi[a];
                    let s = w * zi[a];
                    let ha = &mut h[a * p..a * p + a + 1];
                    for (hv, zb) in ha.iter_mut().zip(&zi[..=a]) {
                        *hv += s * zb;
                    }
                }
            }
            for a in 1..p {
                g[a] += self.l2 * beta[a];
                h[a * p + a] += self.l2.max(1e-8);
            }
            h[0] += 1e-10;
            // mirror lower → upper (cholesky_solve reads the lower triangle only, but keep it symmetric)
            for a in 0..p {
                for b in 0..a {
                    h[b * p + a] = h[a * p + b];
                }
            }
            let mut step = g.clone();
            if !cholesky_solve(&mut h, &mut step, p) {
                return Err(ModelError::FitFailed(
                    "logistic regression Hessian is not positive definite".into(),
                ));
            }
            let mut max_step: f64 = 0.0;
            for (b, s) in beta.iter_mut().zip(&step) {
                *b -= s;
                max_step = max_step.max(s.abs());
            }
            if !max_step.is_finite() {
                return Err(ModelError::FitFailed("logistic regression diverged".into()));
            }
            if max_step < 1e-7 {
                converged = true;
                break;
            }
        }
        let _ = converged; // Newton with a ridge converges in a handful of steps; the last iterate is used either way.
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
