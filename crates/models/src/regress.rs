//! Linear regression (OLS and ridge) for purchase amounts and any numeric target.
//!
//! Why shaped like this: the interesting part of a purchase-amount model is
//! the coefficients a person can read ("each extra purchase adds 0.2"), so the
//! fit reports them in the original units with standard errors and t-values,
//! and it must be fast on millions of rows. The design matrix is never
//! materialized as a QR factorization: one parallel pass (rayon, chunks merged
//! with Chan's pairwise update, so it is exact and stable) accumulates the
//! column means and the centered cross-products `X'X`, `X'y`, `y'y`; the
//! predictors are standardized from those moments (`Z = (X − mean)/sd`), the
//! p×p system `(Z'Z + λI) β = Z'y` is solved by Cholesky, and β is mapped back
//! to raw units. Collinear columns (e.g. every one-hot level of a
//! category next to the intercept) are detected during the factorization and
//! reported as *aliased* (coefficient 0, no standard error), as R does: a
//! column is aliased when less than 1e-10 of its variance is left after the
//! columns before it (R's QR tolerance is 1e-7 on the norm; the normal
//! equations square the condition number, so this one is looser).
//!
//! Standard errors: σ² = RSS / (n − p_eff − 1); OLS: Cov(β_std) = σ²(Z'Z)⁻¹;
//! ridge: the sandwich σ² A⁻¹ Z'Z A⁻¹ with A = Z'Z + λI. The intercept's
//! variance is σ²/n + x̄ᵀ Cov(β_raw) x̄.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::tabular::Matrix;
use crate::{Estimator, ModelError, Predictor};

/// Configuration of a linear regression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearRegression {
    /// Ridge penalty λ on the standardized coefficients (0 = OLS). The
    /// standardized predictors have unit variance, so λ is comparable to n.
    pub ridge: f64,
}

impl Default for LinearRegression {
    fn default() -> Self {
        LinearRegression { ridge: 0.0 }
    }
}

/// A fitted linear model, with its inference statistics (all in raw units).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearFit {
    /// Intercept.
    pub intercept: f64,
    /// Coefficient per column (0 for aliased columns).
    pub coefficients: Vec<f64>,
    /// Standard error of the intercept.
    pub intercept_se: Option<f64>,
    /// Standard error per coefficient (`None` for aliased columns or when there
    /// are no residual degrees of freedom).
    pub standard_errors: Vec<Option<f64>>,
    /// Coefficients on the standardized scale (per one standard deviation of the column).
    pub standardized: Vec<f64>,
    /// Columns dropped because they are linear combinations of earlier ones (or constant).
    pub aliased: Vec<bool>,
    /// R² on the fitting rows (`None` when the target is constant: it is
    /// undefined, not NaN).
    pub r2: Option<f64>,
    /// Adjusted R² (`None` also without residual degrees of freedom).
    pub adj_r2: Option<f64>,
    /// Root mean squared error on the fitting rows.
    pub rmse: f64,
    /// Residual standard error σ (`None` without residual degrees of freedom).
    pub sigma: Option<f64>,
    /// Number of rows fitted.
    pub n: usize,
    /// Residual degrees of freedom.
    pub df_resid: usize,
    /// The ridge penalty used.
    pub ridge: f64,
}

impl LinearFit {
    /// A model from known coefficients (no inference statistics).
    pub fn from_coefficients(intercept: f64, coefficients: Vec<f64>) -> Self {
        let p = coefficients.len();
        LinearFit {
            intercept,
            standardized: vec![f64::NAN; p],
            coefficients,
            intercept_se: None,
            standard_errors: vec![None; p],
            aliased: vec![false; p],
            r2: None,
            adj_r2: None,
            rmse: f64::NAN,
            sigma: None,
            n: 0,
            df_resid: 0,
            ridge: 0.0,
        }
    }

    /// Prediction for one row of raw values.
    pub fn predict_row(&self, x: &[f64]) -> f64 {
        self.intercept
            + self
                .coefficients
                .iter()
                .zip(x)
                .map(|(b, v)| b * v)
                .sum::<f64>()
    }

    /// t-value per coefficient (coefficient / standard error).
    pub fn t_values(&self) -> Vec<Option<f64>> {
        self.coefficients
            .iter()
            .zip(&self.standard_errors)
            .map(|(b, se)| se.filter(|s| *s > 0.0).map(|s| b / s))
            .collect()
    }
}

impl Predictor<Matrix> for LinearFit {
    type Output = Vec<f64>;
    fn predict(&self, x: &Matrix) -> Vec<f64> {
        if x.n_rows > 50_000 {
            x.data
                .par_chunks(x.n_cols.max(1))
                .map(|r| self.predict_row(r))
                .collect()
        } else {
            x.rows().map(|r| self.predict_row(r)).collect()
        }
    }
}

/// Means and centered co-moments of the augmented rows `[x…, y]`.
#[derive(Debug, Clone)]
struct Moments {
    n: f64,
    mean: Vec<f64>,
    /// Upper triangle (row-major, full square for simplicity) of Σ (z − mean)(z − mean)ᵀ.
    m2: Vec<f64>,
}

impl Moments {
    fn empty(q: usize) -> Self {
        Moments {
            n: 0.0,
            mean: vec![0.0; q],
            m2: vec![0.0; q * q],
        }
    }

    fn of_chunk(x: &[f64], y: &[f64], p: usize) -> Self {
        let q = p + 1;
        let n = y.len();
        let mut mean = vec![0.0; q];
        for (r, yi) in x.chunks_exact(p.max(1)).zip(y) {
            for j in 0..p {
                mean[j] += r[j];
            }
            mean[p] += yi;
        }
        for m in &mut mean {
            *m /= n as f64;
        }
        let mut m2 = vec![0.0; q * q];
        let mut z = vec![0.0; q];
        for (r, yi) in x.chunks_exact(p.max(1)).zip(y) {
            for j in 0..p {
                z[j] = r[j] - mean[j];
            }
            z[p] = yi - mean[p];
            for a in 0..q {
                let za = z[a];
                let row = &mut m2[a * q..a * q + q];
                for b in a..q {
                    row[b] += za * z[b];
                }
            }
        }
        Moments {
            n: n as f64,
            mean,
            m2,
        }
    }

    /// The same for a fixed number of columns `P` (`Q = P + 1`): one pass over
    /// the chunk with sums shifted by its first row (stable: the shift is a
    /// data point), fully unrolled by the compiler.
    #[allow(clippy::needless_range_loop)]
    fn of_chunk_fixed<const P: usize, const Q: usize>(x: &[f64], y: &[f64]) -> Self {
        let n = y.len();
        if n == 0 {
            return Moments::empty(Q);
        }
        let mut shift = [0.0; Q];
        shift[..P].copy_from_slice(&x[..P]);
        shift[P] = y[0];
        let mut s = [0.0; Q];
        let mut ss = [[0.0; Q]; Q];
        for (r, &yi) in x.chunks_exact(P).zip(y) {
            let mut z = [0.0; Q];
            for j in 0..P {
                z[j] = r[j] - shift[j];
            }
            z[P] = yi - shift[P];
            for a in 0..Q {
                s[a] += z[a];
                for b in a..Q {
                    ss[a][b] += z[a] * z[b];
                }
            }
        }
        let nf = n as f64;
        let mean = (0..Q).map(|a| shift[a] + s[a] / nf).collect();
        let mut m2 = vec![0.0; Q * Q];
        for a in 0..Q {
            for b in a..Q {
                m2[a * Q + b] = ss[a][b] - s[a] * s[b] / nf;
            }
        }
        Moments { n: nf, mean, m2 }
    }

    fn merge(mut self, o: Moments) -> Moments {
        if o.n == 0.0 {
            return self;
        }
        if self.n == 0.0 {
            return o;
        }
        let q = self.mean.len();
        let n = self.n + o.n;
        let d: Vec<f64> = (0..q).map(|j| o.mean[j] - self.mean[j]).collect();
        let f = self.n * o.n / n;
        for a in 0..q {
            for b in a..q {
                self.m2[a * q + b] += o.m2[a * q + b] + f * d[a] * d[b];
            }
        }
        for (m, dj) in self.mean.iter_mut().zip(&d) {
            *m += dj * o.n / n;
        }
        self.n = n;
        self
    }

    fn get(&self, a: usize, b: usize) -> f64 {
        let q = self.mean.len();
        if a <= b {
            self.m2[a * q + b]
        } else {
            self.m2[b * q + a]
        }
    }
}

const CHUNK_ROWS: usize = 8192;

fn moments(x: &Matrix, y: &[f64]) -> Moments {
    let p = x.n_cols;
    let q = p + 1;
    if p == 0 {
        // Only y: the per-row x slice is empty.
        let mut m = Moments::empty(1);
        for &v in y {
            let one = Moments {
                n: 1.0,
                mean: vec![v],
                m2: vec![0.0],
            };
            m = m.merge(one);
        }
        return m;
    }
    x.data
        .par_chunks(CHUNK_ROWS * p)
        .zip(y.par_chunks(CHUNK_ROWS))
        .map(|(xc, yc)| match p {
            1 => Moments::of_chunk_fixed::<1, 2>(xc, yc),
            2 => Moments::of_chunk_fixed::<2, 3>(xc, yc),
            3 => Moments::of_chunk_fixed::<3, 4>(xc, yc),
            4 => Moments::of_chunk_fixed::<4, 5>(xc, yc),
            5 => Moments::of_chunk_fixed::<5, 6>(xc, yc),
            6 => Moments::of_chunk_fixed::<6, 7>(xc, yc),
            7 => Moments::of_chunk_fixed::<7, 8>(xc, yc),
            8 => Moments::of_chunk_fixed::<8, 9>(xc, yc),
            _ => Moments::of_chunk(xc, yc, p),
        })
        // Merged in chunk order, not by `reduce` (whose tree depends on the
        // work stealing), so the result does not depend on the threads.
        .collect::<Vec<_>>()
        .into_iter()
        .fold(Moments::empty(q), Moments::merge)
}

/// Cholesky of a symmetric p×p matrix (row-major), skipping columns whose
/// pivot falls below `tol` × their diagonal (aliased).
fn cholesky_aliased(a: &[f64], p: usize, tol: f64) -> (Vec<f64>, Vec<bool>) {
    let mut l = vec![0.0; p * p];
    let mut aliased = vec![false; p];
    for j in 0..p {
        let ajj = a[j * p + j];
        let mut d = ajj;
        for k in 0..j {
            d -= l[j * p + k] * l[j * p + k];
        }
        if ajj <= 0.0 || d.is_nan() || d <= tol * ajj {
            aliased[j] = true;
            continue;
        }
        let ljj = d.sqrt();
        l[j * p + j] = ljj;
        for i in j + 1..p {
            let mut s = a[i * p + j];
            for k in 0..j {
                s -= l[i * p + k] * l[j * p + k];
            }
            l[i * p + j] = s / ljj;
        }
    }
    (l, aliased)
}

fn chol_solve(l: &[f64], aliased: &[bool], p: usize, b: &[f64]) -> Vec<f64> {
    let mut z = vec![0.0; p];
    for i in 0..p {
        if aliased[i] {
            continue;
        }
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * p + k] * z[k];
        }
        z[i] = s / l[i * p + i];
    }
    let mut x = vec![0.0; p];
    for i in (0..p).rev() {
        if aliased[i] {
            continue;
        }
        let mut s = z[i];
        for k in i + 1..p {
            s -= l[k * p + i] * x[k];
        }
        x[i] = s / l[i * p + i];
    }
    x
}

impl LinearRegression {
    /// Fits on a row-major matrix and a target.
    pub fn fit_matrix(&self, x: &Matrix, y: &[f64]) -> Result<LinearFit, ModelError> {
        let (n, p) = (x.n_rows, x.n_cols);
        if y.len() != n {
            return Err(ModelError::InvalidInput(format!(
                "{n} rows but {} targets",
                y.len()
            )));
        }
        if n < 2 {
            return Err(ModelError::InvalidInput(format!(
                "need at least 2 rows, got {n}"
            )));
        }
        if !(self.ridge >= 0.0 && self.ridge.is_finite()) {
            return Err(ModelError::InvalidParameter {
                name: "ridge".into(),
                reason: format!("must be a finite number ≥ 0, got {}", self.ridge),
            });
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::InvalidInput(format!(
                "target of row {i} is not finite"
            )));
        }
        if let Some(i) = x.data.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::InvalidInput(format!(
                "value at row {}, column {} is not finite",
                i / p.max(1),
                i % p.max(1)
            )));
        }
        let m = moments(x, y);
        let nf = n as f64;
        // Standard deviations of the predictors (population), 0 for constants.
        let sd: Vec<f64> = (0..p).map(|j| (m.get(j, j) / nf).max(0.0).sqrt()).collect();
        // A = Z'Z + λI with Z standardized; Z'y.
        let mut a = vec![0.0; p * p];
        let mut zy = vec![0.0; p];
        for i in 0..p {
            for j in 0..p {
                a[i * p + j] = if sd[i] > 0.0 && sd[j] > 0.0 {
                    m.get(i, j) / (sd[i] * sd[j])
                } else {
                    0.0
                };
            }
            zy[i] = if sd[i] > 0.0 {
                m.get(i, p) / sd[i]
            } else {
                0.0
            };
        }
        let ztz = a.clone();
        for i in 0..p {
            if sd[i] > 0.0 {
                a[i * p + i] += self.ridge;
            }
        }
        let (l, mut aliased) = cholesky_aliased(&a, p, 1e-10);
        for j in 0..p {
            if sd[j] <= 1e-12 * m.mean[j].abs().max(1.0) {
                aliased[j] = true;
            }
        }
        let beta_std = chol_solve(&l, &aliased, p, &zy);
        let coefficients: Vec<f64> = (0..p)
            .map(|j| if aliased[j] { 0.0 } else { beta_std[j] / sd[j] })
            .collect();
        let intercept = m.mean[p] - (0..p).map(|j| coefficients[j] * m.mean[j]).sum::<f64>();

        // RSS from the moments: Syy − 2 bᵀSxy + bᵀSxx b (raw, centered).
        let syy = m.get(p, p);
        let mut bsxy = 0.0;
        let mut bsb = 0.0;
        for i in 0..p {
            bsxy += coefficients[i] * m.get(i, p);
            for j in 0..p {
                bsb += coefficients[i] * m.get(i, j) * coefficients[j];
            }
        }
        let rss = (syy - 2.0 * bsxy + bsb).max(0.0);
        let p_eff = aliased.iter().filter(|a| !**a).count();
        let df_resid = n.saturating_sub(p_eff + 1);
        let r2 = (syy > 0.0).then(|| 1.0 - rss / syy);
        let adj_r2 =
            (df_resid > 0 && syy > 0.0).then(|| 1.0 - (rss / df_resid as f64) / (syy / (nf - 1.0)));
        let rmse = (rss / nf).sqrt();

        let (standard_errors, intercept_se, sigma) = if df_resid > 0 {
            let sigma2 = rss / df_resid as f64;
            // A⁻¹ column by column.
            let mut ainv = vec![0.0; p * p];
            for c in 0..p {
                if aliased[c] {
                    continue;
                }
                let mut e = vec![0.0; p];
                e[c] = 1.0;
                let col = chol_solve(&l, &aliased, p, &e);
                for r in 0..p {
                    ainv[r * p + c] = col[r];
                }
            }
            // Cov(β_std) = σ² A⁻¹ (OLS) or σ² A⁻¹ Z'Z A⁻¹ (ridge).
            let cov_std = if self.ridge > 0.0 {
                let t = matmul(&ainv, &ztz, p);
                matmul(&t, &ainv, p)
                    .into_iter()
                    .map(|v| v * sigma2)
                    .collect::<Vec<_>>()
            } else {
                ainv.iter().map(|v| v * sigma2).collect::<Vec<_>>()
            };
            let cov_raw = |i: usize, j: usize| cov_std[i * p + j] / (sd[i] * sd[j]);
            let se: Vec<Option<f64>> = (0..p)
                .map(|j| (!aliased[j]).then(|| cov_raw(j, j).max(0.0).sqrt()))
                .collect();
            let mut v0 = sigma2 / nf;
            for i in (0..p).filter(|&i| !aliased[i]) {
                for j in (0..p).filter(|&j| !aliased[j]) {
                    v0 += m.mean[i] * cov_raw(i, j) * m.mean[j];
                }
            }
            (se, Some(v0.max(0.0).sqrt()), Some(sigma2.sqrt()))
        } else {
            (vec![None; p], None, None)
        };
        let standardized = (0..p)
            .map(|j| if aliased[j] { 0.0 } else { beta_std[j] })
            .collect();
        Ok(LinearFit {
            intercept,
            coefficients,
            intercept_se,
            standard_errors,
            standardized,
            aliased,
            r2,
            adj_r2,
            rmse,
            sigma,
            n,
            df_resid,
            ridge: self.ridge,
        })
    }
}

fn matmul(a: &[f64], b: &[f64], p: usize) -> Vec<f64> {
    let mut c = vec![0.0; p * p];
    for i in 0..p {
        for k in 0..p {
            let aik = a[i * p + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..p {
                c[i * p + j] += aik * b[k * p + j];
            }
        }
    }
    c
}

impl Estimator<Matrix, [f64]> for LinearRegression {
    type Fitted = LinearFit;
    fn fit(&self, x: &Matrix, y: &[f64]) -> Result<LinearFit, ModelError> {
        self.fit_matrix(x, y)
    }
}

/// Shuffled k-fold row indices (test rows per fold), seeded.
pub fn kfold(n: usize, k: usize, seed: u64) -> Vec<Vec<usize>> {
    use rand::seq::SliceRandom;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let k = k.max(1).min(n.max(1));
    (0..k)
        .map(|f| idx.iter().copied().skip(f).step_by(k).collect())
        .collect()
}

/// A standard normal draw (Box–Muller).
pub fn std_normal<R: Rng>(rng: &mut R) -> f64 {
    loop {
        let u: f64 = rng.random();
        if u > 0.0 {
            let v: f64 = rng.random();
            return (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos();
        }
    }
}

/// A Poisson draw (Knuth's product method; fine for small λ).
pub fn poisson<R: Rng>(rng: &mut R, lambda: f64) -> f64 {
    let l = (-lambda).exp();
    let mut k = 0.0;
    let mut p = 1.0;
    loop {
        p *= rng.random::<f64>();
        if p <= l {
            return k;
        }
        k += 1.0;
    }
}

/// Column names of [`synthetic_customers`].
pub const SYNTHETIC_COLUMNS: [&str; 3] = ["age", "income", "purchase_history"];

/// The synthetic customer table of the scikit-learn anchor (RESULTS.md §6),
/// same distributions (seeded ChaCha, not numpy's stream): age ~ U{18..80},
/// income ~ N(50, 15) clipped at 0 (thousands), purchase_history ~ Poisson(10),
/// y = 10 + 0.5 age + 0.3 income + 0.2 history + N(0, 5). Generated in
/// parallel blocks, so it is deterministic for a seed whatever the thread count.
pub fn synthetic_customers(n: usize, seed: u64) -> (Matrix, Vec<f64>) {
    const BLOCK: usize = 65_536;
    let blocks: Vec<(Vec<f64>, Vec<f64>)> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut rng =
                ChaCha8Rng::seed_from_u64(seed ^ (b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let rows = BLOCK.min(n - b * BLOCK);
            let mut x = Vec::with_capacity(rows * 3);
            let mut y = Vec::with_capacity(rows);
            for _ in 0..rows {
                let age = rng.random_range(18..=80) as f64;
                let income = (50.0 + 15.0 * std_normal(&mut rng)).max(0.0);
                let hist = poisson(&mut rng, 10.0);
                let noise = 5.0 * std_normal(&mut rng);
                x.extend_from_slice(&[age, income, hist]);
                y.push(10.0 + 0.5 * age + 0.3 * income + 0.2 * hist + noise);
            }
            (x, y)
        })
        .collect();
    let mut xs = Vec::with_capacity(n * 3);
    let mut ys = Vec::with_capacity(n);
    for (x, y) in blocks {
        xs.extend(x);
        ys.extend(y);
    }
    (
        Matrix {
            data: xs,
            n_rows: n,
            n_cols: 3,
        },
        ys,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example_is_1525_6() {
        // intercept 10; 0.5 per year of age, 0.3 per unit of income, 0.2 per purchase.
        let m = LinearFit::from_coefficients(10.0, vec![0.5, 0.3, 0.2]);
        let pred = m.predict_row(&[30.0, 5000.0, 3.0]);
        assert!((pred - 1525.6).abs() < 1e-9, "{pred}");
    }

    #[test]
    fn exact_fit_and_aliasing() {
        // y = 1 + 2a − 3b exactly; c = a + b is aliased.
        let mut data = Vec::new();
        let mut y = Vec::new();
        for i in 0..30 {
            let a = i as f64;
            let b = ((i * 7) % 11) as f64;
            data.extend_from_slice(&[a, b, a + b]);
            y.push(1.0 + 2.0 * a - 3.0 * b);
        }
        let x = Matrix::new(data, 30, 3).unwrap();
        let f = LinearRegression::default().fit_matrix(&x, &y).unwrap();
        assert_eq!(f.aliased, [false, false, true]);
        assert!((f.coefficients[0] - 2.0).abs() < 1e-9 && (f.coefficients[1] + 3.0).abs() < 1e-9);
        assert!((f.intercept - 1.0).abs() < 1e-8);
        assert!(f.r2.is_some_and(|r2| r2 > 1.0 - 1e-12));
        assert!(f.standard_errors[2].is_none());
    }

    #[test]
    fn chunked_moments_match_direct() {
        let (x, y) = synthetic_customers(20_000, 3);
        let m = moments(&x, &y);
        let direct = Moments::of_chunk(&x.data, &y, 3);
        let fixed = Moments::of_chunk_fixed::<3, 4>(&x.data, &y);
        for (a, b) in fixed.m2.iter().zip(&direct.m2) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
        for (a, b) in m.m2.iter().zip(&direct.m2) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn kfold_partitions() {
        let f = kfold(23, 5, 1);
        let mut all: Vec<usize> = f.concat();
        all.sort();
        assert_eq!(all, (0..23).collect::<Vec<_>>());
    }
}
