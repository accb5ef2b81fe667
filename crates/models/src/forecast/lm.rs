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

use rayon::prelude::*;

/// Residual function: fills `r` at `x` using the scratch buffers `W`; false
/// where the residuals are undefined.
pub(super) type Resid<'a, W> = dyn Fn(&[f64], &mut [f64], &mut W) -> bool + Sync + 'a;

/// Residuals × parameters from which the Jacobian is computed on several threads.
pub(super) const PARALLEL_JAC: usize = 1_000_000;

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
/// like a failed step), using `scratch` (the caller's work buffers;
/// `make_scratch` makes more for other threads). See [`Stop`] for when it stops.
///
/// When the Jacobian is large (residuals × parameters ≥ [`PARALLEL_JAC`]) and
/// rayon has several threads, its columns and the normal equations are
/// computed in parallel; every entry is computed the same way on any thread,
/// so the result does not depend on the number of threads.
#[allow(clippy::too_many_arguments)]
pub(super) fn minimise<W: Send>(
    resid: &Resid<'_, W>,
    scratch: &mut W,
    make_scratch: &(dyn Fn() -> W + Sync),
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
    if !resid(&x, &mut r, scratch) {
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
    let parallel = nres * d >= PARALLEL_JAC && rayon::current_num_threads() >= 2;
    let mut lambda = -1.0_f64;
    let mut small = 0;
    'outer: while evals < max_evals {
        // Jacobian by forward differences.
        if parallel {
            let (xr, rr) = (&x, &r);
            evals += jac
                .par_chunks_mut(nres)
                .with_min_len(d.div_ceil(2))
                .enumerate()
                .map_init(
                    || (make_scratch(), vec![0.0; nres], vec![0.0; d]),
                    |(w, rt, xt), (j, col)| fd_column(resid, w, j, xr, rr, hi, xt, rt, col),
                )
                .sum::<usize>();
        } else {
            for (j, col) in jac.chunks_exact_mut(nres).enumerate() {
                evals += fd_column(resid, scratch, j, &x, &r, hi, &mut xt, &mut rt, col);
            }
        }
        // Normal equations A = JᵀJ, g = Jᵀr (row j: g_j and A_jk, k ≤ j).
        let gram_row = |j: usize, row: &mut [f64]| -> f64 {
            let cj = &jac[j * nres..(j + 1) * nres];
            for (k, v) in row.iter_mut().enumerate().take(j + 1) {
                *v = dot(cj, &jac[k * nres..(k + 1) * nres]);
            }
            dot(cj, &r)
        };
        if parallel {
            a.par_chunks_mut(d)
                .zip(g.par_iter_mut())
                .with_max_len(1)
                .enumerate()
                .for_each(|(j, (row, gj))| *gj = gram_row(j, row));
        } else {
            for (j, (row, gj)) in a.chunks_exact_mut(d).zip(g.iter_mut()).enumerate() {
                *gj = gram_row(j, row);
            }
        }
        for j in 0..d {
            for k in 0..j {
                a[k * d + j] = a[j * d + k];
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
            let ft = if resid(&xt, &mut rt, scratch) {
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

/// Column `j` of the forward-difference Jacobian at `x` (residuals `r`) into
/// `col`; falls back to the backward difference off the domain, zero if both
/// fail. Returns the number of residual evaluations.
#[allow(clippy::too_many_arguments)]
fn fd_column<W>(
    resid: &Resid<'_, W>,
    w: &mut W,
    j: usize,
    x: &[f64],
    r: &[f64],
    hi: &[f64],
    xt: &mut [f64],
    rt: &mut [f64],
    col: &mut [f64],
) -> usize {
    let mut hj = 1e-7 * x[j].abs().max(1.0);
    if x[j] + hj > hi[j] {
        hj = -hj;
    }
    xt.copy_from_slice(x);
    xt[j] += hj;
    let inv = 1.0 / hj;
    if resid(xt, rt, w) {
        for (c, (a1, a0)) in col.iter_mut().zip(rt.iter().zip(r)) {
            *c = (a1 - a0) * inv;
        }
        return 1;
    }
    // Step off the domain: try the backward difference.
    xt[j] = x[j] - hj;
    if resid(xt, rt, w) {
        for (c, (a1, a0)) in col.iter_mut().zip(rt.iter().zip(r)) {
            *c = (a0 - a1) * inv;
        }
    } else {
        col.iter_mut().for_each(|c| *c = 0.0);
    }
    2
}

fn sumsq(r: &[f64]) -> f64 {
    dot(r, r)
}

/// Dot product with eight independent accumulators: a single running sum is
/// one long chain of dependent additions that the compiler may not reorder
/// (and so cannot vectorise); the normal equations are most of an
/// iteration's cost. Deterministic: the summation order is fixed.
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0_f64; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
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
        let resid = |x: &[f64], r: &mut [f64], _: &mut ()| {
            for i in 0..t.len() {
                r[i] = x[0] * (x[1] * t[i]).exp() - y[i];
            }
            true
        };
        let inf = [f64::INFINITY; 2];
        let ninf = [f64::NEG_INFINITY; 2];
        let out = minimise(
            &resid,
            &mut (),
            &|| (),
            &[1.0, 0.0],
            &ninf,
            &inf,
            t.len(),
            STOP,
        )
        .expect("fit");
        assert!((out.x[0] - 2.0).abs() < 1e-5 && (out.x[1] + 0.3).abs() < 1e-5);
        assert!(out.f < 1e-12, "{}", out.f);
        // With the box b ≤ -0.4 the optimum sits on the bound.
        let hi = [f64::INFINITY, -0.4];
        let out = minimise(
            &resid,
            &mut (),
            &|| (),
            &[1.0, -1.0],
            &ninf,
            &hi,
            t.len(),
            STOP,
        )
        .expect("fit");
        assert!((out.x[1] + 0.4).abs() < 1e-12, "{:?}", out.x);
    }
}
