//! EM for a latent-class model (a mixture of products of categoricals) on
//! binned rows with unknown cells, one class of the target at a time.
//!
//! Why here: the acquisition model is p(x | y = c) = Σₖ πₖ Πⱼ θₖⱼ(xⱼ); an
//! unknown cell simply drops out of the product (exact marginalization), so
//! the same fitted values answer p(y | any subset of features) and
//! p(xⱼ | any subset) without a refit. Parameters get a symmetric Dirichlet
//! prior (`alpha` pseudo-rows per bin) so no probability is ever 0.
//! Components start from distinct random rows (each component's θ is a blend
//! of the class marginal and one seed row) so EM does not sit at the
//! symmetric point; the best of a few restarts (by log-likelihood) is kept.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::discretize::MISSING;

/// Binned rows: `d` features per row, `MISSING` = unknown.
pub(crate) struct Binned<'a> {
    /// Row-major bins.
    pub data: &'a [u16],
    /// Features per row.
    pub d: usize,
    /// Offset of feature j's bins in a per-component parameter vector.
    pub offs: &'a [usize],
    /// Bins of feature j.
    pub nb: &'a [usize],
}

impl Binned<'_> {
    fn total(&self) -> usize {
        self.offs[self.d - 1] + self.nb[self.d - 1]
    }
    fn row(&self, i: usize) -> &[u16] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

/// A fitted mixture for one class.
#[derive(Debug, Clone)]
pub(crate) struct ClassMixture {
    /// Component weights (sum 1).
    pub weights: Vec<f64>,
    /// p(bin | component): component-major, `total` bins each.
    pub theta: Vec<f64>,
    /// Log-likelihood of the class's rows.
    pub loglik: f64,
    /// EM iterations of the kept restart.
    pub iterations: usize,
}

/// EM settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EmSettings {
    pub k: usize,
    pub alpha: f64,
    pub max_iter: usize,
    pub tol: f64,
    pub restarts: usize,
    pub seed: u64,
}

/// The smoothed marginal distribution of every feature over `rows`.
pub(crate) fn marginal(x: &Binned<'_>, rows: &[usize], alpha: f64) -> Vec<f64> {
    let total = x.total();
    let mut counts = vec![0.0; total];
    let mut obs = vec![0.0; x.d];
    for &i in rows {
        for (j, &b) in x.row(i).iter().enumerate() {
            if b != MISSING {
                counts[x.offs[j] + usize::from(b)] += 1.0;
                obs[j] += 1.0;
            }
        }
    }
    for j in 0..x.d {
        let den = obs[j] + alpha * x.nb[j] as f64;
        for v in 0..x.nb[j] {
            let c = &mut counts[x.offs[j] + v];
            *c = (*c + alpha) / den;
        }
    }
    counts
}

/// Fits the class's mixture (best of `restarts`).
pub(crate) fn fit_class(x: &Binned<'_>, rows: &[usize], s: &EmSettings) -> ClassMixture {
    let k = s.k.max(1).min(rows.len().max(1));
    let marg = marginal(x, rows, s.alpha);
    if k == 1 || rows.is_empty() {
        return ClassMixture {
            weights: vec![1.0],
            loglik: loglik_one(x, rows, &marg),
            theta: marg,
            iterations: 0,
        };
    }
    let restarts = s.restarts.max(1);
    let mut best: Option<ClassMixture> = None;
    for r in 0..restarts {
        let seed = s
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(r as u64 + 1);
        let m = run_em(x, rows, &marg, k, s, seed);
        if best.as_ref().is_none_or(|b| m.loglik > b.loglik) {
            best = Some(m);
        }
    }
    best.unwrap_or_else(|| ClassMixture {
        weights: vec![1.0],
        theta: marg,
        loglik: f64::NEG_INFINITY,
        iterations: 0,
    })
}

fn loglik_one(x: &Binned<'_>, rows: &[usize], theta: &[f64]) -> f64 {
    rows.iter()
        .map(|&i| {
            x.row(i)
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != MISSING)
                .map(|(j, &b)| theta[x.offs[j] + usize::from(b)].ln())
                .sum::<f64>()
        })
        .sum()
}

fn run_em(
    x: &Binned<'_>,
    rows: &[usize],
    marg: &[f64],
    k: usize,
    s: &EmSettings,
    seed: u64,
) -> ClassMixture {
    let total = x.total();
    let d = x.d;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Initial θ: each component blends the marginal with one random seed row.
    let mut theta = vec![0.0; k * total];
    for c in 0..k {
        let seed_row = x.row(rows[rng.random_range(0..rows.len())]);
        let th = &mut theta[c * total..(c + 1) * total];
        th.copy_from_slice(marg);
        for (j, &b) in seed_row.iter().enumerate() {
            if b == MISSING {
                continue;
            }
            let o = x.offs[j];
            for v in 0..x.nb[j] {
                let one = if v == usize::from(b) { 1.0 } else { 0.0 };
                th[o + v] = 0.6 * th[o + v] + 0.4 * one;
            }
        }
    }
    let mut weights = vec![1.0 / k as f64; k];
    let mut log_theta: Vec<f64> = theta.iter().map(|t| t.ln()).collect();
    let mut counts = vec![0.0; k * total];
    let mut obs = vec![0.0; k * d];
    let mut resp = vec![0.0; k];
    let mut prev = f64::NEG_INFINITY;
    let mut ll = f64::NEG_INFINITY;
    let mut iterations = 0;
    let n = rows.len() as f64;
    for it in 0..s.max_iter.max(1) {
        iterations = it + 1;
        counts.iter_mut().for_each(|c| *c = 0.0);
        obs.iter_mut().for_each(|c| *c = 0.0);
        let mut wsum = vec![0.0; k];
        ll = 0.0;
        let log_w: Vec<f64> = weights.iter().map(|w| w.ln()).collect();
        for &i in rows {
            let row = x.row(i);
            for c in 0..k {
                let lt = &log_theta[c * total..(c + 1) * total];
                let mut acc = log_w[c];
                for (j, &b) in row.iter().enumerate() {
                    if b != MISSING {
                        acc += lt[x.offs[j] + usize::from(b)];
                    }
                }
                resp[c] = acc;
            }
            let mx = resp.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut z = 0.0;
            for r in resp.iter_mut() {
                *r = (*r - mx).exp();
                z += *r;
            }
            ll += mx + z.ln();
            for c in 0..k {
                let r = resp[c] / z;
                if r < 1e-12 {
                    continue;
                }
                wsum[c] += r;
                let cnt = &mut counts[c * total..(c + 1) * total];
                let ob = &mut obs[c * d..(c + 1) * d];
                for (j, &b) in row.iter().enumerate() {
                    if b != MISSING {
                        cnt[x.offs[j] + usize::from(b)] += r;
                        ob[j] += r;
                    }
                }
            }
        }
        // M-step.
        for c in 0..k {
            weights[c] = (wsum[c] + 1.0) / (n + k as f64);
            for j in 0..d {
                let den = obs[c * d + j] + s.alpha * x.nb[j] as f64;
                let o = c * total + x.offs[j];
                for v in 0..x.nb[j] {
                    theta[o + v] = (counts[o + v] + s.alpha) / den;
                }
            }
        }
        for (lt, t) in log_theta.iter_mut().zip(&theta) {
            *lt = t.ln();
        }
        if (ll - prev).abs() < s.tol * n {
            break;
        }
        prev = ll;
    }
    ClassMixture {
        weights,
        theta,
        loglik: ll,
        iterations,
    }
}
