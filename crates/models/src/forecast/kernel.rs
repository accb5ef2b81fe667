//! The ETS recursions as the optimiser sees them: one pass over the (scaled)
//! series that writes the residual vector of the fitting criterion into a
//! caller-owned buffer — for one parameter set, or for up to [`LANES`] at once
//! (the columns of a finite-difference Jacobian).
//!
//! Why separate from the general recursion in the parent module: this pass
//! runs thousands of times per automatic selection, so it is monomorphised per
//! season and error type (no per-step branching on the model), keeps the
//! seasonal states in a linear buffer (no `t % m`, and the multi-step
//! forecasts read it contiguously), allocates nothing once warm (the buffers
//! are the caller's), and is compiled per instruction set with a run-time
//! choice ([`pulp`]). A single pass is a chain of dependent operations through
//! time, so one parameter set waits on latency; several sets run side by side
//! in the same loop, each doing exactly the operations of a single pass (so
//! the Jacobian is the same as column by column). The parent's `run` and
//! `run_amse` stay the reference: unit tests check the kernel against them and
//! the lanes against single passes, bit for bit.

use super::{ErrorType, EtsParams, EtsSpec, SeasonType, TrendType};

/// Season kinds as const-generic tags.
const S_NONE: u8 = 0;
const S_ADD: u8 = 1;
const S_MUL: u8 = 2;

/// Writes the residuals of `spec` with parameters `p` on `y` into `res` and
/// returns Σ log μₜ (0 for additive error), or None when the recursion leaves
/// the domain.
///
/// With `h == 0`, `res[t]` is the one-step error (relative for multiplicative
/// error), `res.len() == y.len()`. With `h > 0`, `res[t * h + k]` is the
/// (k+1)-step-ahead error of the forecast made before observing `y[t]`
/// (absolute, 0 past the end of the series), `res.len() == y.len() * h`.
pub(super) fn residuals(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    ring: &mut Vec<f64>,
    res: &mut [f64],
) -> Option<f64> {
    pulp::Arch::new().dispatch(Lanes {
        spec,
        ps: &[p],
        y,
        h,
        fd: None,
        bufs: ring,
        res,
    })[0]
}

/// Average over k = 1..=h of the mean squared k-step-ahead error (R's
/// `opt.crit = "amse"`, h ≥ 1). `res` is scratch space (resized to n·h); the
/// squares are summed per horizon in time order.
pub(super) fn amse(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    ring: &mut Vec<f64>,
    res: &mut Vec<f64>,
) -> Option<f64> {
    let n = y.len();
    let h = h.max(1);
    res.clear();
    res.resize(n * h, 0.0);
    residuals(spec, p, y, h, ring, res)?;
    let mut sums = vec![0.0; h];
    for row in res.chunks_exact(h) {
        for (s, e) in sums.iter_mut().zip(row) {
            *s += e * e;
        }
    }
    let total: f64 = sums[..h.min(n)]
        .iter()
        .enumerate()
        .map(|(k, s)| s / (n - k) as f64)
        .sum();
    Some(total / h as f64)
}

/// Parameter sets evaluated together by [`residuals_lanes`].
pub(super) const LANES: usize = 8;

/// [`residuals`] for up to [`LANES`] parameter sets at once (the columns of a
/// finite-difference Jacobian): lane `i` reads `ps[i]` and writes its
/// residual vector to `res[i * nres..(i + 1) * nres]` (`nres = y.len()` for
/// `h == 0`, else `y.len() * h`). Returns each lane's Σ log μₜ, None where
/// that lane leaves the domain (its residuals are then garbage).
///
/// Why: one pass is a chain of dependent operations through time (a
/// division or two per step), so a single pass waits on latency; running
/// several parameter sets in the same loop overlaps those chains. Each lane
/// performs exactly the operations of [`residuals`] in the same order, so the
/// results are bit-identical to calling it once per lane (a unit test checks).
///
/// With `fd = Some(FdColumns { .. })` and `h > 0`, each lane writes instead
/// the finite-difference column `(e · w_k − r) · inv_i` of its weighted
/// multi-step residuals `e · w_k` against the base residuals `r` — the same
/// operations the caller would apply afterwards, fused into the pass.
pub(super) fn residuals_lanes(
    spec: &EtsSpec,
    ps: &[&EtsParams],
    y: &[f64],
    h: usize,
    fd: Option<FdColumns<'_>>,
    bufs: &mut Vec<f64>,
    res: &mut [f64],
) -> [Option<f64>; LANES] {
    if ps.is_empty() || ps.len() > LANES {
        return [None; LANES];
    }
    pulp::Arch::new().dispatch(Lanes {
        spec,
        ps,
        y,
        h,
        fd,
        bufs,
        res,
    })
}

/// What [`residuals_lanes`] needs to write finite-difference columns.
#[derive(Clone, Copy)]
pub(super) struct FdColumns<'a> {
    /// Weight of the k-step residuals (length h).
    pub weights: &'a [f64],
    /// The weighted residuals at the base point (length n·h).
    pub base: &'a [f64],
    /// 1 / step of each lane.
    pub inv: [f64; LANES],
}

/// One batched pass (the arguments of [`residuals_lanes`]), run as a
/// [`pulp::WithSimd`] operation: compiled once per
/// instruction set (with AVX2 one lane array is one register), the CPU's best
/// one runs. IEEE arithmetic gives the same values on every path.
struct Lanes<'a> {
    spec: &'a EtsSpec,
    ps: &'a [&'a EtsParams],
    y: &'a [f64],
    h: usize,
    fd: Option<FdColumns<'a>>,
    bufs: &'a mut Vec<f64>,
    res: &'a mut [f64],
}

impl pulp::WithSimd for Lanes<'_> {
    type Output = [Option<f64>; LANES];

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        // One point (a single pass) runs alone, up to 4 (short steps of a
        // small model) 4 wide, the rest 8.
        match self.ps.len() {
            1 => self.by_kind::<1>(),
            2..=4 => self.by_kind::<4>(),
            _ => self.by_kind::<LANES>(),
        }
    }
}

impl Lanes<'_> {
    /// [`kern_lanes`] for the spec's season and error type, `L` lanes wide.
    #[inline(always)]
    fn by_kind<const L: usize>(self) -> [Option<f64>; LANES] {
        let me = self.spec.error == ErrorType::Multiplicative;
        match (self.spec.season, me) {
            (SeasonType::None, false) => kern_lanes::<S_NONE, false, L>(self),
            (SeasonType::None, true) => kern_lanes::<S_NONE, true, L>(self),
            (SeasonType::Additive, false) => kern_lanes::<S_ADD, false, L>(self),
            (SeasonType::Additive, true) => kern_lanes::<S_ADD, true, L>(self),
            (SeasonType::Multiplicative, false) => kern_lanes::<S_MUL, false, L>(self),
            (SeasonType::Multiplicative, true) => kern_lanes::<S_MUL, true, L>(self),
        }
    }
}

/// The recursion, `L` parameter sets at a time (residuals stored; see
/// [`residuals`] for the layout). Unused lanes (beyond `ps.len()`) repeat the
/// last parameter set and write nothing.
///
/// The seasonal states live in a linear buffer instead of a ring: at time t
/// the state of the season phase (t + j) mod m is `buf[t + j]` (j < m), and
/// the update of phase t mod m goes to `buf[t + m]`. So the k-step forecasts
/// made at t read `buf[t..t + h]` contiguously (when h ≤ m) and the inner
/// loop over horizons vectorises. The damping sums are computed once per call.
#[inline(always)]
fn kern_lanes<const S: u8, const ME: bool, const L: usize>(job: Lanes<'_>) -> [Option<f64>; LANES] {
    let Lanes {
        spec,
        ps,
        y,
        h,
        fd,
        bufs,
        res,
    } = job;
    let n = y.len();
    let used = ps.len();
    let nres = if h > 0 { n * h } else { n };
    let m = if S == S_NONE { 1 } else { spec.m() };
    let w = n + m;
    let p = |i: usize| ps[i.min(used - 1)];
    // Scratch: each lane's seasonal buffer, then its damping sums φ + … + φᵏ.
    bufs.clear();
    bufs.resize(L * (w + h), 0.0);
    let (bufs, damp) = bufs.split_at_mut(L * w);
    for i in 0..L {
        let b = &mut bufs[i * w..i * w + m];
        let pi = p(i);
        if S == S_NONE || pi.s0.len() != m {
            b.fill(if S == S_MUL { 1.0 } else { 0.0 });
        } else {
            b.copy_from_slice(&pi.s0);
        }
    }
    let trend = spec.trend != TrendType::None;
    let mut phi = [1.0; L];
    let mut beta_a = [0.0; L];
    let mut alpha = [0.0; L];
    let mut gamma = [0.0; L];
    let mut l = [0.0; L];
    let mut b = [0.0; L];
    for i in 0..L {
        let pi = p(i);
        if trend {
            phi[i] = pi.phi;
            beta_a[i] = pi.beta / pi.alpha;
            b[i] = pi.b0;
        }
        alpha[i] = pi.alpha;
        gamma[i] = pi.gamma;
        l[i] = pi.l0;
        let mut d = 0.0;
        let mut phik = 1.0;
        for v in damp[i * h..(i + 1) * h].iter_mut() {
            phik *= phi[i];
            d += phik;
            *v = d;
        }
    }
    let damp: &[f64] = damp;
    let contiguous = h <= m;
    let mut logsum = [0.0; L];
    let mut prod = [1.0_f64; L];
    let mut bad = [false; L];
    let (mut q, mut phib, mut si) = ([0.0; L], [0.0; L], [0.0; L]);
    let (mut pv, mut l_new, mut s_new) = ([0.0; L], [0.0; L], [0.0; L]);
    for t in 0..n {
        let yt = y[t];
        // Whole-array steps (one vector operation each under AVX2).
        for i in 0..L {
            phib[i] = phi[i] * b[i];
        }
        for i in 0..L {
            q[i] = l[i] + phib[i];
        }
        if S != S_NONE {
            for i in 0..L {
                si[i] = bufs[i * w + t];
            }
        }
        if ME {
            for i in 0..L {
                let mu = combine::<S>(q[i], si[i]);
                bad[i] |= mu <= 1e-10;
                prod[i] *= mu;
            }
            if t & 31 == 31 {
                for i in 0..L {
                    logsum[i] += prod[i].ln();
                    prod[i] = 1.0;
                }
            }
        }
        if h > 0 {
            let hk = h.min(n - t);
            let ys = &y[t..t + hk];
            for i in 0..used {
                let row = &mut res[i * nres + t * h..i * nres + t * h + h];
                let (head, tail) = row.split_at_mut(hk);
                let buf = &bufs[i * w..(i + 1) * w];
                let (li, bi, di) = (l[i], b[i], &damp[i * h..i * h + hk]);
                if let Some(fd) = fd {
                    let (wk, rk) = (&fd.weights[..h], &fd.base[t * h..t * h + h]);
                    let inv = fd.inv[i];
                    if contiguous || S == S_NONE {
                        let ss = &buf[t..t + hk];
                        for k in 0..hk {
                            let e = ys[k] - combine::<S>(li + di[k] * bi, ss[k]);
                            head[k] = (e * wk[k] - rk[k]) * inv;
                        }
                    } else {
                        for k in 0..hk {
                            let e = ys[k] - combine::<S>(li + di[k] * bi, buf[t + k % m]);
                            head[k] = (e * wk[k] - rk[k]) * inv;
                        }
                    }
                    for (k, v) in tail.iter_mut().enumerate() {
                        *v = (0.0 * wk[hk + k] - rk[hk + k]) * inv;
                    }
                    continue;
                }
                if contiguous || S == S_NONE {
                    let ss = &buf[t..t + hk];
                    for k in 0..hk {
                        head[k] = ys[k] - combine::<S>(li + di[k] * bi, ss[k]);
                    }
                } else {
                    for k in 0..hk {
                        head[k] = ys[k] - combine::<S>(li + di[k] * bi, buf[t + k % m]);
                    }
                }
                tail.iter_mut().for_each(|v| *v = 0.0);
            }
        } else {
            for i in 0..used {
                let mu = combine::<S>(q[i], si[i]);
                res[i * nres + t] = if ME { (yt - mu) / mu } else { yt - mu };
            }
        }
        match S {
            S_NONE => pv = [yt; L],
            S_ADD => {
                for i in 0..L {
                    pv[i] = yt - si[i];
                }
            }
            _ => {
                for i in 0..L {
                    bad[i] |= si[i].abs() < 1e-10;
                }
                for i in 0..L {
                    pv[i] = yt / si[i];
                }
            }
        }
        for i in 0..L {
            l_new[i] = q[i] + alpha[i] * (pv[i] - q[i]);
        }
        for i in 0..L {
            b[i] = phib[i] + beta_a[i] * (l_new[i] - l[i] - phib[i]);
        }
        match S {
            S_NONE => {}
            S_ADD => {
                for i in 0..L {
                    s_new[i] = si[i] + gamma[i] * (yt - q[i] - si[i]);
                }
            }
            _ => {
                for i in 0..L {
                    bad[i] |= q[i].abs() < 1e-10;
                }
                for i in 0..L {
                    s_new[i] = si[i] + gamma[i] * (yt / q[i] - si[i]);
                }
            }
        }
        if S != S_NONE {
            for i in 0..L {
                bufs[i * w + t + m] = s_new[i];
            }
        }
        l = l_new;
    }
    let mut out = [None; LANES];
    for i in 0..used {
        if ME {
            logsum[i] += prod[i].ln();
        }
        if !bad[i] && logsum[i].is_finite() && l[i].is_finite() && b[i].is_finite() {
            out[i] = Some(logsum[i]);
        }
    }
    out
}

#[inline(always)]
fn combine<const S: u8>(q: f64, s: f64) -> f64 {
    match S {
        S_NONE => q,
        S_ADD => q + s,
        _ => q * s,
    }
}

/// A seasonal test series on the fitting scale (values near 1).
#[cfg(test)]
pub(super) fn sample_series(n: usize) -> Vec<f64> {
    (0..n)
        .map(|t| (50.0 + t as f64) * (1.0 + 0.2 * ((t % 12) as f64 - 5.5) / 6.0) / 80.0)
        .collect()
}

/// Every model type with season length 12.
#[cfg(test)]
pub(super) fn all_specs() -> Vec<EtsSpec> {
    let mut out = Vec::new();
    for error in [ErrorType::Additive, ErrorType::Multiplicative] {
        for trend in [TrendType::None, TrendType::Additive, TrendType::Damped] {
            for season in [
                SeasonType::None,
                SeasonType::Additive,
                SeasonType::Multiplicative,
            ] {
                out.push(EtsSpec::new(error, trend, season, 12));
            }
        }
    }
    out
}

/// Admissible parameters for `spec` on [`sample_series`], shifted by `e`.
#[cfg(test)]
pub(super) fn sample_params(spec: &EtsSpec, e: f64) -> EtsParams {
    let (trend, season) = (spec.trend, spec.season);
    EtsParams {
        alpha: 0.3 + e,
        beta: if trend == TrendType::None { 0.0 } else { 0.05 },
        gamma: if season == SeasonType::None {
            0.0
        } else {
            0.2 - e
        },
        phi: if trend == TrendType::Damped { 0.9 } else { 1.0 },
        l0: 0.7 + e,
        b0: if trend == TrendType::None { 0.0 } else { 0.01 },
        s0: match season {
            SeasonType::None => Vec::new(),
            SeasonType::Additive => (0..12).map(|k| 0.01 * k as f64 - 0.055 + e).collect(),
            SeasonType::Multiplicative => (0..12).map(|k| 0.945 + 0.01 * k as f64 + e).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lane of a batch equals the single pass bit for bit, for all
    /// model types, horizons 0 (likelihood), within and beyond a season, 4
    /// and 8 lanes wide; the fused finite-difference columns equal the
    /// caller's formula applied to the single pass.
    #[test]
    fn lanes_match_single_passes_bit_for_bit() {
        let y = sample_series(50);
        for spec in all_specs() {
            let params: Vec<EtsParams> = (0..LANES)
                .map(|i| sample_params(&spec, i as f64 * 1e-3))
                .collect();
            for h in [0, 12, 15] {
                let nres = if h > 0 { y.len() * h } else { y.len() };
                let weights: Vec<f64> = (0..h).map(|k| 1.0 / (k + 2) as f64).collect();
                let base: Vec<f64> = (0..nres).map(|i| (i % 7) as f64 * 1e-3).collect();
                let inv: [f64; LANES] = std::array::from_fn(|i| 1e7 + i as f64);
                for used in [1, 3, 4, 5, LANES] {
                    let ps: Vec<&EtsParams> = params.iter().take(used).collect();
                    let mut bufs = Vec::new();
                    let mut out = vec![f64::NAN; used * nres];
                    let logs = residuals_lanes(&spec, &ps, &y, h, None, &mut bufs, &mut out);
                    let fd = FdColumns {
                        weights: &weights,
                        base: &base,
                        inv,
                    };
                    let mut cols = vec![f64::NAN; used * nres];
                    if h > 0 {
                        residuals_lanes(&spec, &ps, &y, h, Some(fd), &mut bufs, &mut cols);
                    }
                    for (i, p) in ps.iter().enumerate() {
                        let mut ring = Vec::new();
                        let mut one = vec![f64::NAN; nres];
                        let l1 = residuals(&spec, p, &y, h, &mut ring, &mut one);
                        let name = format!("{} h={h} used={used} lane {i}", spec.name());
                        assert_eq!(logs[i].map(f64::to_bits), l1.map(f64::to_bits), "{name}");
                        let lane = &out[i * nres..(i + 1) * nres];
                        let same = lane
                            .iter()
                            .zip(&one)
                            .all(|(a, b)| a.to_bits() == b.to_bits());
                        assert!(same, "{name}");
                        if h > 0 {
                            let col = &cols[i * nres..(i + 1) * nres];
                            for (j, (c, e)) in col.iter().zip(&one).enumerate() {
                                let want = (e * weights[j % h] - base[j]) * inv[i];
                                assert_eq!(c.to_bits(), want.to_bits(), "{name} row {j}");
                            }
                        }
                    }
                }
            }
        }
    }
}
