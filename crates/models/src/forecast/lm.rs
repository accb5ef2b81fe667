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

/// Forward-difference Jacobian columns at up to [`LANES`] points at once:
/// `xs` holds `used` points of dimension d one after the other; column `i`
/// (`out[i * nres..(i + 1) * nres]`) must be `(resid(xᵢ) − r) · invᵢ`
/// computed exactly so, with [`Resid`]'s residuals and the base residuals
/// `r`. Lane `i` of the answer is false where the residuals are undefined.
pub(super) type Batch<'a, W> =
    dyn Fn(&[f64], usize, &[f64], [f64; LANES], &mut [f64], &mut W) -> [bool; LANES] + Sync + 'a;

/// Points a [`Batch`] evaluates together.
pub(super) use super::kernel::LANES;

/// Residuals × parameters from which the Jacobian is computed on several threads.
pub(super) const PARALLEL_JAC: usize = 1_000_000;

/// Outcome of a minimisation.
pub(super) struct LmResult {
    /// Best point.
    pub x: Vec<f64>,
    /// Σ r² at `x`.
    pub f: f64,
    /// False when the search stopped because it ran out of evaluations
    /// ([`Stop::max_evals`]); true when it stopped on the tolerance, at a
    /// point where no damped step decreases Σ r² any more, or with every
    /// variable held on a bound.
    pub converged: bool,
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
/// so the result does not depend on the number of threads. Otherwise, with
/// `batch`, the columns are computed [`LANES`] at a time (same values).
#[allow(clippy::too_many_arguments)]
pub(super) fn minimise<W: Send>(
    resid: &Resid<'_, W>,
    batch: Option<&Batch<'_, W>>,
    scratch: &mut W,
    make_scratch: &(dyn Fn() -> W + Sync),
    x0: &[f64],
    lo: &[f64],
    hi: &[f64],
    nres: usize,
    stop: Stop,
) -> Option<LmResult> {
    let d = x0.len();
    let need =
        24 + 3 * nres + nres * d + 2 * d * d + 3 * d + if batch.is_some() { LANES * d } else { 0 };
    let mut pool = WorkPool::take(need);
    let work = &mut pool.0[..];
    let Stop {
        scale,
        tol,
        max_evals,
    } = stop;
    let mut x: Vec<f64> = (0..d).map(|j| x0[j].clamp(lo[j], hi[j])).collect();
    let (mut r, work) = aligned(work).split_at_mut(nres);
    let (mut rt, work) = aligned(work).split_at_mut(nres);
    let (jac, work) = aligned(work).split_at_mut(nres * d); // column-major: jac[j * nres + i]
    let (a, work) = work.split_at_mut(d * d);
    let (chol, work) = work.split_at_mut(d * d);
    let (xt, work) = work.split_at_mut(d);
    let (g, work) = work.split_at_mut(d);
    let (step, xs) = work.split_at_mut(d);
    if !resid(&x, r, scratch) {
        return None;
    }
    let mut f = sumsq(r);
    if !f.is_finite() {
        return None;
    }
    if d == 0 {
        return Some(LmResult {
            x,
            f,
            converged: true,
        });
    }
    let mut evals = 1usize;
    let parallel = nres * d >= PARALLEL_JAC && rayon::current_num_threads() >= 2;
    let mut lambda = -1.0_f64;
    let mut small = 0;
    // Cleared when the budget runs out (the loops below are left early).
    let mut converged = true;
    'outer: loop {
        if evals >= max_evals {
            converged = false;
            break;
        }
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
        } else if let Some(batch) = batch {
            let mut j0 = 0;
            while j0 < d {
                let used = (d - j0).min(LANES);
                let mut inv = [0.0; LANES];
                for (i, pt) in xs.chunks_exact_mut(d).take(used).enumerate() {
                    let hj = fd_step(&x, hi, j0 + i);
                    pt.copy_from_slice(&x);
                    pt[j0 + i] += hj;
                    inv[i] = 1.0 / hj;
                }
                let cols = &mut jac[j0 * nres..(j0 + used) * nres];
                let ok = batch(&xs[..used * d], used, r, inv, cols, scratch);
                for (i, col) in cols.chunks_exact_mut(nres).enumerate() {
                    if ok[i] {
                        evals += 1;
                    } else {
                        let j = j0 + i;
                        evals += fd_column(resid, scratch, j, &x, r, hi, xt, rt, col);
                    }
                }
                j0 += used;
            }
        } else {
            for (j, col) in jac.chunks_exact_mut(nres).enumerate() {
                evals += fd_column(resid, scratch, j, &x, r, hi, xt, rt, col);
            }
        }
        // Normal equations A = JᵀJ, g = Jᵀr (row j: g_j and A_jk, k ≤ j).
        let gram_row = |j: usize, row: &mut [f64]| -> f64 {
            let cj = &jac[j * nres..(j + 1) * nres];
            for (k, v) in row.iter_mut().enumerate().take(j + 1) {
                *v = dot(cj, &jac[k * nres..(k + 1) * nres]);
            }
            dot(cj, r)
        };
        if parallel {
            a.par_chunks_mut(d)
                .zip(g.par_iter_mut())
                .with_max_len(1)
                .enumerate()
                .for_each(|(j, (row, gj))| *gj = gram_row(j, row));
        } else {
            normal_equations(jac, r, nres, d, a, g);
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
                converged = false;
                break 'outer;
            }
            chol.copy_from_slice(a);
            for j in 0..d {
                let dj = a[j * d + j];
                chol[j * d + j] = dj + lambda * dj.max(1e-9);
            }
            if !cholesky_solve(chol, g, step, d) {
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
            let ft = if resid(xt, rt, scratch) {
                sumsq(rt)
            } else {
                f64::INFINITY
            };
            if ft.is_finite() && ft < f {
                let gain = scale * (f - ft) / f.max(1e-300);
                x.copy_from_slice(xt);
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
    Some(LmResult { x, f, converged })
}

/// The thread's work memory for one minimisation (zeroed, `need` long),
/// handed back to the thread when dropped.
struct WorkPool(Vec<f64>);

impl WorkPool {
    fn take(need: usize) -> WorkPool {
        // Empty if a caller up the stack holds it.
        let mut work = WORK.with(|w| {
            w.try_borrow_mut()
                .map(|mut v| std::mem::take(&mut *v))
                .unwrap_or_default()
        });
        if work.capacity() < need {
            work = Vec::new(); // freed first: growing would copy the old contents
        }
        work.clear();
        work.resize(need, 0.0);
        WorkPool(work)
    }
}

impl Drop for WorkPool {
    fn drop(&mut self) {
        if self.0.capacity() <= KEEP_WORK {
            let work = std::mem::take(&mut self.0);
            WORK.with(|w| {
                if let Ok(mut v) = w.try_borrow_mut() {
                    *v = work;
                }
            });
        }
    }
}

/// Largest work memory (in f64s) a thread keeps between minimisations.
const KEEP_WORK: usize = 1 << 19;

thread_local! {
    /// Work memory of [`minimise`] kept between calls on this thread.
    ///
    /// Why: an automatic selection runs dozens of minimisations whose
    /// buffers differ in size; fresh allocations each time fragment the heap,
    /// and on a virtual machine every page touched for the first time costs
    /// a fault (≈ 1.6 µs here). Reusing one block keeps the pages a
    /// process's first fit touches to the largest single need.
    static WORK: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `v` from its first 64-byte aligned element on (the Jacobian's columns
/// then start on cache lines; carved at 16-byte offsets instead, the AMSE
/// refit of AirPassengers ran ≈ 12 % slower).
fn aligned(v: &mut [f64]) -> &mut [f64] {
    let skip = ((v.as_ptr() as usize).wrapping_neg() % 64 / 8).min(v.len());
    &mut v[skip..]
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
    let hj = fd_step(x, hi, j);
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

/// The forward-difference step of coordinate `j` (backward at the upper bound).
fn fd_step(x: &[f64], hi: &[f64], j: usize) -> f64 {
    let hj = 1e-7 * x[j].abs().max(1.0);
    if x[j] + hj > hi[j] { -hj } else { hj }
}

/// A = JᵀJ (lower triangle, row-major d×d) and g = Jᵀr, J column-major
/// with `nres` rows: the same values as [`dot`] entry by entry, computed in
/// 2×2 tiles (each loaded column chunk serves two entries) under a runtime
/// dispatch to the widest SIMD the CPU has. The residuals are treated as
/// column d, so g comes out of the same tiles.
fn normal_equations(jac: &[f64], r: &[f64], nres: usize, d: usize, a: &mut [f64], g: &mut [f64]) {
    pulp::Arch::new().dispatch(Gram {
        jac,
        r,
        nres,
        d,
        a,
        g,
    });
}

/// [`normal_equations`] as a [`pulp::WithSimd`] operation, so that its loops
/// are compiled once per instruction set and the CPU's best one runs.
struct Gram<'a> {
    jac: &'a [f64],
    r: &'a [f64],
    nres: usize,
    d: usize,
    a: &'a mut [f64],
    g: &'a mut [f64],
}

impl pulp::WithSimd for Gram<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Gram {
            jac,
            r,
            nres,
            d,
            a,
            g,
        } = self;
        let col = |j: usize| {
            if j < d {
                &jac[j * nres..(j + 1) * nres]
            } else {
                r
            }
        };
        let mut put = |j: usize, k: usize, v: f64| {
            if j == d {
                if k < d {
                    g[k] = v;
                }
            } else if k <= j {
                a[j * d + k] = v;
            }
        };
        let mut jb = 0;
        while jb <= d {
            let j1 = (jb + 1).min(d);
            let mut kb = 0;
            while kb <= jb {
                let k1 = (kb + 1).min(d);
                let t = dot2x2(col(jb), col(j1), col(kb), col(k1));
                put(jb, kb, t[0]);
                put(jb, k1, t[1]);
                put(j1, kb, t[2]);
                put(j1, k1, t[3]);
                kb += 2;
            }
            jb += 2;
        }
    }
}

/// The four dot products a0·b0, a0·b1, a1·b0, a1·b1, each summed exactly as
/// [`dot`] sums it (eight accumulators, the same tail and final order).
#[inline(always)]
fn dot2x2(a0: &[f64], a1: &[f64], b0: &[f64], b1: &[f64]) -> [f64; 4] {
    let n = a0.len().min(a1.len()).min(b0.len()).min(b1.len());
    let (a0, a1, b0, b1) = (&a0[..n], &a1[..n], &b0[..n], &b1[..n]);
    let mut acc = [[0.0_f64; 8]; 4];
    let whole = n - n % 8;
    for (((x0, x1), y0), y1) in a0[..whole]
        .chunks_exact(8)
        .zip(a1[..whole].chunks_exact(8))
        .zip(b0[..whole].chunks_exact(8))
        .zip(b1[..whole].chunks_exact(8))
    {
        // One loop per entry: each becomes whole-vector adds on its own
        // accumulators (a single interleaved loop gets shuffled).
        let [c0, c1, c2, c3] = &mut acc;
        for l in 0..8 {
            c0[l] += x0[l] * y0[l];
        }
        for l in 0..8 {
            c1[l] += x0[l] * y1[l];
        }
        for l in 0..8 {
            c2[l] += x1[l] * y0[l];
        }
        for l in 0..8 {
            c3[l] += x1[l] * y1[l];
        }
    }
    let mut tail = [0.0; 4];
    for i in whole..n {
        tail[0] += a0[i] * b0[i];
        tail[1] += a0[i] * b1[i];
        tail[2] += a1[i] * b0[i];
        tail[3] += a1[i] * b1[i];
    }
    // Opaque to the vectoriser: otherwise it lays the accumulators out for
    // this final pairing (lane l with l + 4) and shuffles inside the loop.
    let acc = std::hint::black_box(acc);
    std::array::from_fn(|e| {
        let c = &acc[e];
        ((c[0] + c[4]) + (c[1] + c[5])) + ((c[2] + c[6]) + (c[3] + c[7])) + tail[e]
    })
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
    let acc = std::hint::black_box(acc); // see dot2x2
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

    /// The tiled normal equations give exactly the entries of `dot`.
    #[test]
    fn tiled_normal_equations_equal_dot_products() {
        for (nres, d) in [(1, 1), (7, 2), (8, 3), (29, 5), (132, 16), (1584, 17)] {
            let val = |i: usize| ((i * 7919) % 1000) as f64 / 997.0 - 0.4;
            let jac: Vec<f64> = (0..nres * d).map(val).collect();
            let r: Vec<f64> = (0..nres).map(|i| val(i + 13)).collect();
            let mut a = vec![f64::NAN; d * d];
            let mut g = vec![f64::NAN; d];
            normal_equations(&jac, &r, nres, d, &mut a, &mut g);
            let col = |j: usize| &jac[j * nres..(j + 1) * nres];
            for j in 0..d {
                assert_eq!(
                    g[j].to_bits(),
                    dot(col(j), &r).to_bits(),
                    "g[{j}] {nres}x{d}"
                );
                for k in 0..=j {
                    let want = dot(col(j), col(k));
                    assert_eq!(
                        a[j * d + k].to_bits(),
                        want.to_bits(),
                        "a[{j},{k}] {nres}x{d}"
                    );
                }
            }
        }
    }

    /// Points of y = 2 exp(-0.3 t) at t = 0, 0.5, …, 9.5.
    fn exp_curve() -> (Vec<f64>, Vec<f64>) {
        let t: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
        let y = t.iter().map(|&t| 2.0 * (-0.3 * t).exp()).collect();
        (t, y)
    }

    #[test]
    fn fits_an_exponential_curve() {
        // r_i = a exp(b t_i) - y_i with a = 2, b = -0.3: exact fit from a poor start.
        let (t, y) = exp_curve();
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
            None,
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
            None,
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

    /// A search cut short by its budget says so; one that stops on its
    /// tolerance says it converged.
    #[test]
    fn reports_convergence() {
        let (t, y) = exp_curve();
        let resid = |x: &[f64], r: &mut [f64], _: &mut ()| {
            for i in 0..t.len() {
                r[i] = x[0] * (x[1] * t[i]).exp() - y[i];
            }
            true
        };
        let inf = [f64::INFINITY; 2];
        let ninf = [f64::NEG_INFINITY; 2];
        let run = |max_evals| {
            minimise(
                &resid,
                None,
                &mut (),
                &|| (),
                &[1.0, 0.0],
                &ninf,
                &inf,
                t.len(),
                Stop { max_evals, ..STOP },
            )
            .expect("fit")
        };
        let short = run(5);
        assert!(!short.converged && short.f > 1e-6, "{}", short.f);
        let full = run(10_000);
        assert!(full.converged && full.f < 1e-12, "{}", full.f);
    }

    /// The thread's reused work memory leaves no trace: a fit gives the same
    /// bits before and after a larger problem has used (and dirtied) it.
    #[test]
    fn reused_work_memory_does_not_change_results() {
        let fit = |n: usize, d: usize| {
            let resid = move |x: &[f64], r: &mut [f64], _: &mut ()| {
                for (i, v) in r.iter_mut().enumerate() {
                    let t = i as f64 / n as f64;
                    let model: f64 = x
                        .iter()
                        .enumerate()
                        .map(|(j, c)| c * t.powi(j as i32))
                        .sum();
                    *v = model.exp() - (1.0 + t).sin() - 2.0;
                }
                true
            };
            let lo = vec![f64::NEG_INFINITY; d];
            let hi = vec![f64::INFINITY; d];
            let out = minimise(
                &resid,
                None,
                &mut (),
                &|| (),
                &vec![0.1; d],
                &lo,
                &hi,
                n,
                STOP,
            )
            .expect("fit");
            (
                out.x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                out.f.to_bits(),
            )
        };
        let before = fit(30, 2);
        let big = fit(2000, 6);
        assert!(f64::from_bits(big.1).is_finite());
        assert_eq!(fit(30, 2), before);
    }
}
