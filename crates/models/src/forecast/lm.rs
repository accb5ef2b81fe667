//! Levenberg-Marquardt minimisation of a sum of squared residuals, with a
//! forward-difference Jacobian.
//!
//! Why this optimiser: every criterion an ETS model is fitted by is a sum of
//! squares of a residual vector — the Gaussian likelihood concentrated over σ²
//! (`n log Σ eₜ²`, and with multiplicative error `n log Σ (eₜ G)²`, G the
//! geometric mean of the one-step forecasts) and the average multi-step MSE
//! (AMSE). Gauss-Newton steps use that structure and converge in tens of
//! iterations where Nelder-Mead needs thousands of evaluations in the 15+
//! dimensions of a seasonal model with estimated initial states.

/// Outcome of a minimisation.
pub(super) struct LmResult {
    /// Best point.
    pub x: Vec<f64>,
    /// Σ r² at `x`.
    pub f: f64,
}

/// When to stop.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stop {
    /// Converts a relative decrease of Σ r² into the caller's criterion units
    /// (n for a concentrated log-likelihood, 1 for a log AMSE).
    pub scale: f64,
    /// Stop when a step gains less than this (criterion units) twice running.
    pub tol: f64,
    /// Budget of residual evaluations.
    pub max_evals: usize,
}

/// Minimises Σ r(x)² from `x0` inside the box `lo ≤ x ≤ hi` (infinite bounds
/// allowed; steps are projected onto the box and variables held on a bound
/// by the gradient drop out of the step). `resid(x, r)` fills `r` (length `nres`) and
/// returns false where the residuals are undefined (such points are rejected
/// like a failed step). See [`Stop`] for when it stops.
pub(super) fn minimise(
    resid: &mut dyn FnMut(&[f64], &mut [f64]) -> bool,
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    nres: usize,
    stop: Stop,
) -> Option<LmResult> {
    let Stop {
        scale,
        tol,
        max_evals,
    } = stop;
    let d = x0.len();
    let mut x: Vec<f64> = (0..d).map(|j| x0[j].clamp(lo[j], hi[j])).collect();
    let mut r = vec![0.0; nres];
    if !resid(&x, &mut r) {
        return None;
    }
    let mut f = sumsq(&r);
    if !f.is_finite() {
        return None;
    }
    if d == 0 {
        return Some(LmResult { x, f });
    }
    let mut evals = 1usize;
    let mut jac = vec![0.0; nres * d]; // column-major: jac[j * nres + i]
    let mut rt = vec![0.0; nres];
    let mut xt = vec![0.0; d];
    let mut a = vec![0.0; d * d];
    let mut g = vec![0.0; d];
    let mut step = vec![0.0; d];
    let mut chol = vec![0.0; d * d];
    let mut lambda = -1.0_f64;
    let mut small = 0;
    'outer: while evals < max_evals {
        // Jacobian by forward differences.
        for j in 0..d {
            let mut hj = 1e-7 * x[j].abs().max(1.0);
            if x[j] + hj > hi[j] {
                hj = -hj;
            }
            xt.copy_from_slice(&x);
            xt[j] += hj;
            evals += 1;
            let col = &mut jac[j * nres..(j + 1) * nres];
            if resid(&xt, &mut rt) {
                for (c, (a1, a0)) in col.iter_mut().zip(rt.iter().zip(&r)) {
                    *c = (a1 - a0) / hj;
                }
            } else {
                // Step off the domain: try the backward difference.
                xt[j] = x[j] - hj;
                evals += 1;
                if resid(&xt, &mut rt) {
                    for (c, (a1, a0)) in col.iter_mut().zip(rt.iter().zip(&r)) {
                        *c = (a0 - a1) / hj;
                    }
                } else {
                    col.iter_mut().for_each(|c| *c = 0.0);
                }
            }
        }
        // Normal equations A = JᵀJ, g = Jᵀr.
        for j in 0..d {
            let cj = &jac[j * nres..(j + 1) * nres];
            g[j] = dot(cj, &r);
            for k in 0..=j {
                let v = dot(cj, &jac[k * nres..(k + 1) * nres]);
                a[j * d + k] = v;
                a[k * d + j] = v;
            }
        }
        // Variables on a bound that the gradient pushes outwards stay there.
        let mut active = 0usize;
        for j in 0..d {
            let out = (x[j] <= lo[j] && g[j] > 0.0) || (x[j] >= hi[j] && g[j] < 0.0);
            if out {
                for k in 0..d {
                    a[j * d + k] = 0.0;
                    a[k * d + j] = 0.0;
                }
                a[j * d + j] = 1.0;
                g[j] = 0.0;
                active += 1;
            }
        }
        if active == d {
            break;
        }
        if lambda < 0.0 {
            let maxdiag = (0..d).map(|j| a[j * d + j]).fold(0.0_f64, f64::max);
            lambda = 1e-3 * maxdiag.max(1e-12);
        }
        // Inner loop: damped steps until one decreases Σ r².
        loop {
            if evals >= max_evals {
                break 'outer;
            }
            chol.copy_from_slice(&a);
            for j in 0..d {
                let dj = a[j * d + j];
                chol[j * d + j] = dj + lambda * dj.max(1e-9);
            }
            if !cholesky_solve(&mut chol, &g, &mut step, d) {
                lambda *= 10.0;
                if lambda > 1e16 {
                    break 'outer;
                }
                continue;
            }
            for j in 0..d {
                xt[j] = (x[j] - step[j]).clamp(lo[j], hi[j]);
            }
            evals += 1;
            let ft = if resid(&xt, &mut rt) {
                sumsq(&rt)
            } else {
                f64::INFINITY
            };
            if ft.is_finite() && ft < f {
                let gain = scale * (f - ft) / f.max(1e-300);
                x.copy_from_slice(&xt);
                std::mem::swap(&mut r, &mut rt);
                f = ft;
                lambda = (lambda / 3.0).max(1e-12);
                if gain < tol {
                    small += 1;
                    if small >= 2 {
                        break 'outer;
                    }
                } else {
                    small = 0;
                }
                break;
            }
            lambda *= 4.0;
            if lambda > 1e16 {
                break 'outer;
            }
        }
    }
    Some(LmResult { x, f })
}

fn sumsq(r: &[f64]) -> f64 {
    r.iter().map(|v| v * v).sum()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves (L Lᵀ) s = g in place of `a` (row-major d×d, overwritten by L).
/// Returns false when `a` is not positive definite.
fn cholesky_solve(a: &mut [f64], g: &[f64], s: &mut [f64], d: usize) -> bool {
    for j in 0..d {
        let mut v = a[j * d + j];
        for k in 0..j {
            v -= a[j * d + k] * a[j * d + k];
        }
        if v.is_nan() || v <= 0.0 || v.is_infinite() {
            return false;
        }
        let ljj = v.sqrt();
        a[j * d + j] = ljj;
        for i in j + 1..d {
            let mut w = a[i * d + j];
            for k in 0..j {
                w -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = w / ljj;
        }
    }
    // Forward: L z = g.
    for i in 0..d {
        let mut v = g[i];
        for k in 0..i {
            v -= a[i * d + k] * s[k];
        }
        s[i] = v / a[i * d + i];
    }
    // Backward: Lᵀ s = z.
    for i in (0..d).rev() {
        let mut v = s[i];
        for k in i + 1..d {
            v -= a[k * d + i] * s[k];
        }
        s[i] = v / a[i * d + i];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOP: Stop = Stop {
        scale: 1.0,
        tol: 1e-14,
        max_evals: 10_000,
    };

    #[test]
    fn fits_an_exponential_curve() {
        // r_i = a exp(b t_i) - y_i with a = 2, b = -0.3: exact fit from a poor start.
        let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
        let y: Vec<f64> = t.iter().map(|&t| 2.0 * (-0.3 * t).exp()).collect();
        let mut resid = |x: &[f64], r: &mut [f64]| {
            for i in 0..t.len() {
                r[i] = x[0] * (x[1] * t[i]).exp() - y[i];
            }
            true
        };
        let inf = [f64::INFINITY; 2];
        let ninf = [f64::NEG_INFINITY; 2];
        let out = minimise(&mut resid, &[1.0, 0.0], &ninf, &inf, t.len(), STOP).expect("fit");
        assert!((out.x[0] - 2.0).abs() < 1e-5 && (out.x[1] + 0.3).abs() < 1e-5);
        assert!(out.f < 1e-12, "{}", out.f);
        // With the box b ≤ -0.4 the optimum sits on the bound.
        let hi = [f64::INFINITY, -0.4];
        let out = minimise(&mut resid, &[1.0, -1.0], &ninf, &hi, t.len(), STOP).expect("fit");
        assert!((out.x[1] + 0.4).abs() < 1e-12, "{:?}", out.x);
    }
}
