//! The ETS recursions as the optimiser sees them: one pass over the (scaled)
//! series that writes the residual vector of the fitting criterion into a
//! caller-owned buffer.
//!
//! Why separate from the general recursion in the parent module: this pass
//! runs thousands of times per automatic selection, so it is monomorphised per
//! season and error type (no per-step branching on the model), keeps the
//! seasonal states in a linear buffer (no `t % m`, and the multi-step
//! forecasts read it contiguously), and allocates nothing once warm (the
//! seasonal buffer and the residuals are reused across calls). The
//! parent's `run_amse` stays the reference: a unit test checks both agree.

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
    dispatch::<false>(spec, p, y, h, ring, res)
}

/// Average over k = 1..=h of the mean squared k-step-ahead error (R's
/// `opt.crit = "amse"`, h ≥ 1), without storing the residuals. `sums` is
/// scratch space of length ≥ h.
pub(super) fn amse(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    ring: &mut Vec<f64>,
    sums: &mut [f64],
) -> Option<f64> {
    let n = y.len();
    let h = h.max(1);
    dispatch::<true>(spec, p, y, h, ring, sums)?;
    let total: f64 = sums[..h.min(n)]
        .iter()
        .enumerate()
        .map(|(k, s)| s / (n - k) as f64)
        .sum();
    Some(total / h as f64)
}

fn dispatch<const ACC: bool>(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    ring: &mut Vec<f64>,
    res: &mut [f64],
) -> Option<f64> {
    let me = spec.error == ErrorType::Multiplicative;
    match (spec.season, me) {
        (SeasonType::None, false) => kern::<S_NONE, false, ACC>(spec, p, y, h, ring, res),
        (SeasonType::None, true) => kern::<S_NONE, true, ACC>(spec, p, y, h, ring, res),
        (SeasonType::Additive, false) => kern::<S_ADD, false, ACC>(spec, p, y, h, ring, res),
        (SeasonType::Additive, true) => kern::<S_ADD, true, ACC>(spec, p, y, h, ring, res),
        (SeasonType::Multiplicative, false) => kern::<S_MUL, false, ACC>(spec, p, y, h, ring, res),
        (SeasonType::Multiplicative, true) => kern::<S_MUL, true, ACC>(spec, p, y, h, ring, res),
    }
}

#[inline(always)]
fn combine<const S: u8>(q: f64, s: f64) -> f64 {
    match S {
        S_NONE => q,
        S_ADD => q + s,
        _ => q * s,
    }
}

/// Largest horizon whose damping sums are kept on the stack.
const MAX_H_STACK: usize = 64;

/// The recursion. `ACC`: accumulate Σ e² per horizon into `res[k]` instead
/// of storing each residual.
///
/// The seasonal states live in a linear buffer instead of a ring: at time t
/// the state of the season phase (t + j) mod m is `buf[t + j]` (j < m), and
/// the update of phase t mod m goes to `buf[t + m]`. So the k-step forecasts
/// made at t read `buf[t..t + h]` contiguously (when h ≤ m) and the inner
/// loop over horizons vectorises. The damping sums φ + … + φᵏ are computed
/// once per call. Both give bit-identical results to the ring form.
fn kern<const S: u8, const ME: bool, const ACC: bool>(
    spec: &EtsSpec,
    p: &EtsParams,
    y: &[f64],
    h: usize,
    ring: &mut Vec<f64>,
    res: &mut [f64],
) -> Option<f64> {
    let n = y.len();
    let m = if S == S_NONE { 1 } else { spec.m() };
    let buf = ring;
    buf.clear();
    if S == S_NONE || p.s0.len() != m {
        buf.resize(m, if S == S_MUL { 1.0 } else { 0.0 });
    } else {
        buf.extend_from_slice(&p.s0);
    }
    buf.resize(n + m, 0.0);
    let trend = spec.trend != TrendType::None;
    let (phi, beta_a) = if trend {
        (p.phi, p.beta / p.alpha)
    } else {
        (1.0, 0.0)
    };
    let mut damp_stack = [0.0_f64; MAX_H_STACK];
    let mut damp_heap = Vec::new();
    let damp: &mut [f64] = if h <= MAX_H_STACK {
        &mut damp_stack[..h]
    } else {
        damp_heap.resize(h, 0.0);
        &mut damp_heap
    };
    {
        let mut d = 0.0;
        let mut phik = 1.0;
        for v in damp.iter_mut() {
            phik *= phi;
            d += phik;
            *v = d;
        }
    }
    let damp: &[f64] = damp;
    let contiguous = h <= m;
    let alpha = p.alpha;
    let gamma = p.gamma;
    let mut l = p.l0;
    let mut b = if trend { p.b0 } else { 0.0 };
    let mut logsum = 0.0;
    let mut prod = 1.0_f64;
    if ACC {
        res[..h].iter_mut().for_each(|v| *v = 0.0);
    }
    for t in 0..n {
        let yt = y[t];
        let phib = phi * b;
        let q = l + phib;
        let si = if S == S_NONE { 0.0 } else { buf[t] };
        let mu = combine::<S>(q, si);
        if ME {
            if mu <= 1e-10 {
                return None;
            }
            prod *= mu;
            if t & 31 == 31 {
                logsum += prod.ln();
                prod = 1.0;
            }
        }
        if h > 0 {
            let hk = h.min(n - t);
            let ys = &y[t..t + hk];
            if ACC {
                let acc = &mut res[..hk];
                if contiguous || S == S_NONE {
                    let ss = &buf[t..t + hk];
                    for k in 0..hk {
                        let e = ys[k] - combine::<S>(l + damp[k] * b, ss[k]);
                        acc[k] += e * e;
                    }
                } else {
                    for k in 0..hk {
                        let e = ys[k] - combine::<S>(l + damp[k] * b, buf[t + k % m]);
                        acc[k] += e * e;
                    }
                }
            } else {
                let row = &mut res[t * h..t * h + h];
                let (head, tail) = row.split_at_mut(hk);
                if contiguous || S == S_NONE {
                    let ss = &buf[t..t + hk];
                    for k in 0..hk {
                        head[k] = ys[k] - combine::<S>(l + damp[k] * b, ss[k]);
                    }
                } else {
                    for k in 0..hk {
                        head[k] = ys[k] - combine::<S>(l + damp[k] * b, buf[t + k % m]);
                    }
                }
                tail.iter_mut().for_each(|v| *v = 0.0);
            }
        } else if !ACC {
            res[t] = if ME { (yt - mu) / mu } else { yt - mu };
        }
        let pv = match S {
            S_NONE => yt,
            S_ADD => yt - si,
            _ => {
                if si.abs() < 1e-10 {
                    return None;
                }
                yt / si
            }
        };
        let l_new = q + alpha * (pv - q);
        b = phib + beta_a * (l_new - l - phib);
        match S {
            S_NONE => {}
            S_ADD => buf[t + m] = si + gamma * (yt - q - si),
            _ => {
                if q.abs() < 1e-10 {
                    return None;
                }
                buf[t + m] = si + gamma * (yt / q - si);
            }
        }
        l = l_new;
    }
    if ME {
        logsum += prod.ln();
    }
    if logsum.is_finite() && l.is_finite() && b.is_finite() {
        Some(logsum)
    } else {
        None
    }
}
