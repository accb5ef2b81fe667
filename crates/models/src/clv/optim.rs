//! A small BFGS minimiser with a strong-Wolfe line search, for the few
//! (log-)parameters of the CLV likelihoods.
//!
//! Why not a crate: the problems have 3–4 parameters, the objective comes
//! with an analytic gradient, and we need tight convergence (the published
//! estimates are checked to 3 decimals) at a few dozen evaluations.

/// Result of a minimisation.
#[derive(Debug, Clone)]
pub(crate) struct Minimum {
    /// The minimiser.
    pub x: Vec<f64>,
    /// The objective there.
    pub f: f64,
    /// Iterations taken.
    pub iterations: usize,
    /// Whether the gradient tolerance was met.
    pub converged: bool,
    /// Objective evaluations.
    pub evaluations: usize,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Evaluation of f and ∇f at `x + t d`.
struct Probe {
    t: f64,
    f: f64,
    g: Vec<f64>,
    dphi: f64,
}

fn probe<F: FnMut(&[f64], &mut [f64]) -> f64>(fg: &mut F, x: &[f64], d: &[f64], t: f64) -> Probe {
    let xt: Vec<f64> = x.iter().zip(d).map(|(a, b)| a + t * b).collect();
    let mut g = vec![0.0; x.len()];
    let mut f = fg(&xt, &mut g);
    if !f.is_finite() || g.iter().any(|v| !v.is_finite()) {
        f = f64::INFINITY;
    }
    let dphi = if f.is_finite() { dot(&g, d) } else { f64::NAN };
    Probe { t, f, g, dphi }
}

/// Rounding noise allowed in the sufficient-decrease test (the "approximate
/// Wolfe" idea of Hager & Zhang): near the minimum the objective, a sum over
/// thousands of customers, cannot resolve smaller changes, and insisting on
/// them makes the search zoom until it gives up.
fn f_noise(f0: f64) -> f64 {
    1e-12 * f0.abs().max(1e-300)
}

/// Strong-Wolfe line search (Nocedal & Wright, algorithms 3.5 and 3.6) with
/// safeguarded quadratic/bisection interpolation. Non-finite objective values
/// count as "too far".
fn line_search<F: FnMut(&[f64], &mut [f64]) -> f64>(
    fg: &mut F,
    x: &[f64],
    f0: f64,
    dphi0: f64,
    d: &[f64],
    t_init: f64,
) -> Option<Probe> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    let mut prev = Probe {
        t: 0.0,
        f: f0,
        g: Vec::new(),
        dphi: dphi0,
    };
    let mut t = t_init;
    for i in 0..40 {
        let p = probe(fg, x, d, t);
        if p.f > f0 + C1 * t * dphi0 + f_noise(f0) || (i > 0 && p.f >= prev.f) {
            return zoom(fg, x, f0, dphi0, d, prev, p);
        }
        if p.dphi.abs() <= -C2 * dphi0 {
            return Some(p);
        }
        if p.dphi >= 0.0 {
            return zoom(fg, x, f0, dphi0, d, p, prev);
        }
        t *= 2.0;
        prev = p;
    }
    None
}

fn zoom<F: FnMut(&[f64], &mut [f64]) -> f64>(
    fg: &mut F,
    x: &[f64],
    f0: f64,
    dphi0: f64,
    d: &[f64],
    mut lo: Probe,
    mut hi: Probe,
) -> Option<Probe> {
    const C1: f64 = 1e-4;
    const C2: f64 = 0.9;
    for _ in 0..30 {
        let (a, b) = (lo.t, hi.t);
        let width = b - a;
        // quadratic through (lo.f, lo.dphi) and hi.f, kept inside the interval
        let mut t = a + 0.5 * width;
        if hi.f.is_finite() && lo.dphi.is_finite() {
            let denom = 2.0 * (hi.f - lo.f - lo.dphi * width);
            if denom.abs() > 0.0 {
                let q = a - lo.dphi * width * width / denom;
                let (l, u) = (a.min(b), a.max(b));
                let margin = 0.1 * (u - l);
                if q.is_finite() && q > l + margin && q < u - margin {
                    t = q;
                }
            }
        }
        let p = probe(fg, x, d, t);
        if p.f > f0 + C1 * t * dphi0 + f_noise(f0) || p.f > lo.f + f_noise(f0) {
            hi = p;
        } else {
            if p.dphi.abs() <= -C2 * dphi0 {
                return Some(p);
            }
            if p.dphi * (hi.t - lo.t) >= 0.0 {
                hi = lo;
            }
            lo = p;
        }
        if (hi.t - lo.t).abs() < 1e-12 * lo.t.abs().max(1e-3) {
            break;
        }
    }
    // The interval collapsed: accept the best point if it decreases f.
    if lo.t > 0.0 && lo.f < f0 {
        Some(lo)
    } else {
        None
    }
}

/// A gradient this small counts as converged when the line search can make
/// no further progress (the objective is flat to rounding there).
const STALL_GTOL: f64 = 1e-6;

/// Minimises `fg` (which returns f and writes ∇f) from `x0` with BFGS.
/// Stops when max |∇f| ≤ `gtol`, or when a line search can make no progress.
pub(crate) fn bfgs<F: FnMut(&[f64], &mut [f64]) -> f64>(
    mut inner: F,
    x0: &[f64],
    gtol: f64,
    max_iter: usize,
) -> Minimum {
    let mut evaluations = 0;
    let mut fg = |x: &[f64], g: &mut [f64]| {
        evaluations += 1;
        inner(x, g)
    };
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut f = fg(&x, &mut g);
    // inverse Hessian approximation, row-major
    let mut h = vec![0.0; n * n];
    for i in 0..n {
        h[i * n + i] = 1.0;
    }
    let mut first = true;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < max_iter {
        if !f.is_finite() {
            break;
        }
        if g.iter().all(|v| v.abs() <= gtol) {
            converged = true;
            break;
        }
        iterations += 1;
        let mut d: Vec<f64> = (0..n)
            .map(|i| -(0..n).map(|j| h[i * n + j] * g[j]).sum::<f64>())
            .collect();
        let mut dphi0 = dot(&g, &d);
        if dphi0 >= 0.0 || !dphi0.is_finite() {
            // not a descent direction: restart from steepest descent
            reset(&mut h, n);
            d = g.iter().map(|v| -v).collect();
            dphi0 = dot(&g, &d);
            first = true;
        }
        let t0 = if first {
            (1.0 / d.iter().map(|v| v.abs()).fold(0.0, f64::max)).min(1.0)
        } else {
            1.0
        };
        let Some(p) = line_search(&mut fg, &x, f, dphi0, &d, t0) else {
            // No progress possible along d: at a minimum up to rounding when
            // the gradient is already tiny.
            if g.iter().all(|v| v.abs() <= STALL_GTOL) {
                converged = true;
                break;
            }
            if first {
                break;
            }
            reset(&mut h, n);
            first = true;
            continue;
        };
        let s: Vec<f64> = d.iter().map(|v| p.t * v).collect();
        let y: Vec<f64> = p.g.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        let f_old = f;
        for i in 0..n {
            x[i] += s[i];
        }
        f = p.f;
        g = p.g;
        if sy > 1e-300 {
            if first {
                // Nocedal & Wright (6.20): scale the initial matrix
                let scale = sy / dot(&y, &y);
                reset(&mut h, n);
                for i in 0..n {
                    h[i * n + i] = scale;
                }
                first = false;
            }
            // H ← (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
            let rho = 1.0 / sy;
            let hy: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| h[i * n + j] * y[j]).sum())
                .collect();
            let yhy = dot(&y, &hy);
            for i in 0..n {
                for j in 0..n {
                    h[i * n + j] +=
                        rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
                }
            }
        }
        if (f_old - f).abs() <= 1e-16 * f.abs().max(1.0) && g.iter().all(|v| v.abs() <= gtol * 1e3)
        {
            converged = true;
            break;
        }
    }
    Minimum {
        x,
        f,
        iterations,
        converged,
        evaluations,
    }
}

fn reset(h: &mut [f64], n: usize) {
    h.iter_mut().for_each(|v| *v = 0.0);
    for i in 0..n {
        h[i * n + i] = 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bfgs_minimises_rosenbrock() {
        let m = bfgs(
            |x, g| {
                let (a, b) = (x[0], x[1]);
                g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
                g[1] = 200.0 * (b - a * a);
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
            },
            &[-1.2, 1.0],
            1e-10,
            500,
        );
        assert!(m.converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-7 && (m.x[1] - 1.0).abs() < 1e-7,
            "{:?}",
            m.x
        );
    }
}
