"""Reference ETS fits over a grid of edge-shaped series, for the Rust test
suite in crates/models/tests/it/forecast_grid.rs.

The grid (numpy, fixed seeds): short series (6, 7, 10 and 14 training points,
offered a season of 4: Holt-Winters fits only the 14), constant series (all
equal, all zero, and constant with one outlier), zero-heavy counts (70 % zeros
with Poisson sizes; negative-binomial), strictly positive trends (linear up,
linear down toward zero, exponential decay whose linear extrapolation crosses
zero, an exact line without noise, exponential growth), seasonal series with a
trend (additive and multiplicative, periods 4 and 12), a level shift, and
near-zero-variance noise (relative sd 1e-6 and 1e-10). Every series is split into a training part
and a holdout; the fixture holds both, so the Rust test does not regenerate
them.

The reference is statsmodels' `ETSModel`, not `ExponentialSmoothing`, because
it is our model exactly:
  * the same state-space recursions (Hyndman et al. 2008, R's `forecast::ets`):
    our β and γ are its `smoothing_trend`/`smoothing_seasonal` (Hyndman's β,
    γ), whereas `ExponentialSmoothing`'s `smoothing_trend` is Holt's
    β* = β/α;
  * the same criterion, maximum likelihood with every initial state
    estimated (`initialization_method="estimated"`): for additive error that
    is least squares, for multiplicative error (our `hw_multiplicative` is
    ETS(M,A,M)) it is n/2 log Σ ((y-μ)/μ)² + Σ log|μ|, which
    `ExponentialSmoothing` (plain least squares) does not minimise;
  * the same "usual" bounds: 1e-4 ≤ α ≤ 1-1e-4, 1e-4 ≤ β/α ≤ 1-1e-4,
    1e-4 ≤ γ/(1-α) ≤ 1-1e-4, 0.8 ≤ φ ≤ 0.98 (ours allows β/α and γ/(1-α) up to
    1, a superset, so our optimum can only be as good or better);
  * an equivalent normalisation of the seasonal states (it fixes the last
    initial state at 0 or 1, we make them sum to 0 or average 1: the same
    family of fits, one degree of freedom moved into the level).
ETSModel's L-BFGS (numerical gradient, from its default start) sometimes stops
early, so each case is fitted twice: from ETSModel's default start and from
the `ExponentialSmoothing` least-squares solution (mapped into ETS parameters
and clipped into the bounds); the fit with the higher log-likelihood is the
reference (`start` says which). Both are local optimisers; the Rust test
allows ours to be better.

Methods: ses = ETS(A,N,N), holt = ETS(A,A,N), holt_damped = ETS(A,Ad,N),
hw_add = ETS(A,A,A), hw_mul = ETS(M,A,M) (our `EtsSpec::{ses, holt,
hw_additive, hw_multiplicative}`). A method that cannot apply to a series is
listed under "inapplicable" with the reason our fit must give instead of
numbers: multiplicative models need strictly positive data; seasonal models
need two full seasons; a model estimating k parameters (σ² included) needs at
least k + 2 observations (the rules of `fit_ets`, documented in
crates/models/src/forecast.rs; R's `ets` allows k + 1, where AICc divides by 0).

Output: per series, its values (train, test), period and, per method,
statsmodels' in-sample SSE of the one-step errors y - ŷ (original scale), its
log-likelihood, the fitted smoothing parameters, and the forecasts over the
holdout. A value statsmodels could not produce (e.g. the log-likelihood of a
series it fits exactly) is null.

Run once; the output is committed:
  /work/venv/bin/python scripts/reference/ets_grid.py > crates/models/tests/fixtures/ets_grid.json
(venv: statsmodels 0.15, numpy, scipy, pandas; pip install statsmodels)
"""
import json
import math
import sys
import warnings

import numpy as np
import statsmodels
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing

warnings.simplefilter("ignore")

# method -> (error, trend, damped, seasonal)
METHODS = {
    "ses": ("add", None, False, None),
    "holt": ("add", "add", False, None),
    "holt_damped": ("add", "add", True, None),
    "hw_add": ("add", "add", False, "add"),
    "hw_mul": ("mul", "add", False, "mul"),
}


def season(m, amp, mult):
    """A smooth seasonal pattern of period m: offsets (additive) or factors (multiplicative)."""
    s = amp * np.sin(2 * np.pi * (np.arange(m) + 0.5) / m) + 0.4 * amp * np.cos(4 * np.pi * np.arange(m) / m)
    return 1 + s if mult else s


def grid():
    """(name, shape description, series, holdout, period)."""
    out = []
    rng = np.random.default_rng(20240515)
    # Short series (the whole series is n + holdout).
    out.append(("short_6", "6 training points, level + noise", 50 + 3 * rng.standard_normal(9), 3, 4))
    t = np.arange(14)
    out.append(("short_10_s4", "10 training points, trend + season of 4",
                (40 + 1.0 * t + season(4, 6, False)[t % 4] + rng.standard_normal(14)), 4, 4))
    t = np.arange(18)
    out.append(("short_14_s4", "14 training points, trend + multiplicative season of 4",
                (60 + 1.5 * t) * season(4, 0.15, True)[t % 4] * (1 + 0.02 * rng.standard_normal(18)), 4, 4))
    out.append(("short_7_s4", "7 training points: fewer than two seasons of 4",
                30 + 2 * rng.standard_normal(10), 3, 4))
    # Constant series.
    out.append(("constant", "all equal (7.25)", np.full(28, 7.25), 4, 4))
    out.append(("constant_zero", "all zero", np.zeros(28), 4, 4))
    c = np.full(32, 12.0)
    c[13] = 60.0
    out.append(("constant_outlier", "constant 12 with one outlier (60) inside the training part", c, 4, 4))
    # Zero-heavy (intermittent demand).
    nz = rng.random(48) >= 0.7
    out.append(("intermittent_70", "70 % zeros, Poisson(3)+1 sizes", np.where(nz, rng.poisson(3, 48) + 1, 0).astype(float), 8, 4))
    out.append(("negbin", "negative-binomial counts (r 0.6, p 0.35), season offered 12",
                rng.negative_binomial(0.6, 0.35, 72).astype(float), 12, 12))
    # Strictly positive trends.
    t = np.arange(36)
    out.append(("linear_up", "10 + 2t + noise(sd 1.5)", 10 + 2 * t + 1.5 * rng.standard_normal(36), 6, 4))
    t = np.arange(36)
    out.append(("linear_down", "linear down toward zero: 100 - 2.6t + noise, last value near 9",
                np.maximum(100 - 2.6 * t + 1.0 * rng.standard_normal(36), 0.5), 6, 4))
    t = np.arange(36)
    out.append(("decay_to_zero", "100 * 0.9^t: a linear trend fitted near the end forecasts below zero within the holdout",
                100 * 0.9 ** t * np.exp(0.01 * rng.standard_normal(36)), 12, 4))
    t = np.arange(30)
    out.append(("linear_exact", "5 + 3t exactly (no noise): Holt reproduces it", 5.0 + 3.0 * t, 6, 4))
    t = np.arange(48)
    out.append(("exp_growth", "20 * 1.06^t, lognormal noise 3 %",
                20 * 1.06 ** t * np.exp(0.03 * rng.standard_normal(48)), 8, 4))
    # Seasonal with trend.
    t = np.arange(40)
    out.append(("seasonal_add_m4", "50 + 0.5t + additive season of 4 (amplitude 8) + noise",
                50 + 0.5 * t + season(4, 8, False)[t % 4] + rng.standard_normal(40), 8, 4))
    t = np.arange(84)
    out.append(("seasonal_add_m12", "80 + 0.8t + additive season of 12 (amplitude 15) + noise(sd 2)",
                80 + 0.8 * t + season(12, 15, False)[t % 12] + 2 * rng.standard_normal(84), 12, 12))
    t = np.arange(48)
    out.append(("seasonal_mul_m4", "(100 + 2t) * multiplicative season of 4 (±25 %) * noise 2 %",
                (100 + 2 * t) * season(4, 0.25, True)[t % 4] * (1 + 0.02 * rng.standard_normal(48)), 8, 4))
    t = np.arange(96)
    out.append(("seasonal_mul_m12", "(200 + 3t) * multiplicative season of 12 (±30 %) * noise 2 %",
                (200 + 3 * t) * season(12, 0.3, True)[t % 12] * (1 + 0.02 * rng.standard_normal(96)), 12, 12))
    # Level shift.
    t = np.arange(46)
    out.append(("level_shift", "level 20, shifts to 35 at t = 25, noise sd 1",
                np.where(t < 25, 20.0, 35.0) + rng.standard_normal(46), 6, 4))
    # Near-zero-variance noise.
    out.append(("tiny_noise_1e-6", "1000 * (1 + 1e-6 N(0,1))", 1000 * (1 + 1e-6 * rng.standard_normal(40)), 8, 4))
    out.append(("tiny_noise_1e-10", "1000 * (1 + 1e-10 N(0,1))", 1000 * (1 + 1e-10 * rng.standard_normal(40)), 8, 4))
    return out


def free_params(method, m):
    """Free parameters of our fit (smoothing, damping, initial states; σ² not counted)."""
    err, trend, damped, seas = METHODS[method]
    k = 1 + 1  # alpha, l0
    if trend:
        k += 2  # beta, b0
    if damped:
        k += 1
    if seas:
        k += 1 + (m - 1)  # gamma, m-1 free seasonal states
    return k


def inapplicable(method, y, m):
    err, trend, damped, seas = METHODS[method]
    n = len(y)
    if (err == "mul" or seas == "mul") and not np.all(y > 0):
        return "needs strictly positive data"
    if seas and n < 2 * m:
        return f"needs two full seasons of {m}"
    k = free_params(method, m)
    # k free parameters + σ² need n >= (k + 1) + 2 (AICc's correction).
    if n < k + 3:
        return f"too few observations ({n} for {k} parameters and sigma2)"
    return None


def fin(v, digits=12):
    v = float(v)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def holt_winters_start(y, method, m):
    """ExponentialSmoothing's least-squares fit as ETSModel start parameters."""
    err, trend, damped, seas = METHODS[method]
    es = ExponentialSmoothing(y, trend=trend, damped_trend=damped, seasonal=seas,
                              seasonal_periods=m if seas else None,
                              initialization_method="estimated").fit()
    p = es.params
    a = float(np.clip(p["smoothing_level"], 2e-4, 1 - 2e-4))
    out = [a]
    if trend:
        out.append(float(np.clip(a * p["smoothing_trend"], 2e-4 * a, (1 - 2e-4) * a)))
    if seas:
        out.append(float(np.clip(p["smoothing_seasonal"], 2e-4 * (1 - a), (1 - 2e-4) * (1 - a))))
    if damped:
        out.append(float(np.clip(p["damping_trend"], 0.8 + 1e-4, 0.98 - 1e-4)))
    l0 = float(p["initial_level"])
    b0 = float(p["initial_trend"]) if trend else 0.0
    if seas:
        # ES: initial_seasons in time order s_{1-m}..s_0; ETSModel wants
        # s_{-1}, ..., s_{-m} with s_{-m} = 0 (additive) or 1 (multiplicative).
        s = np.asarray(p["initial_seasons"], dtype=float)[::-1]
        if seas == "mul":
            c = s[-1]
            l0, b0, s = l0 * c, b0 * c, s / c
        else:
            c = s[-1]
            l0, s = l0 + c, s - c
    out.append(l0)
    if trend:
        out.append(b0)
    if seas:
        out.extend(s.tolist())
    return np.array(out)


def fit_reference(y, method, m, h):
    err, trend, damped, seas = METHODS[method]
    model = ETSModel(y, error=err, trend=trend, damped_trend=damped, seasonal=seas,
                     seasonal_periods=m if seas else None, initialization_method="estimated")
    fits = []
    try:
        fits.append(("default", model.fit(disp=False, maxiter=5000)))
    except Exception as e:  # noqa: BLE001 - recorded, not hidden
        print(f"  {method}: default start failed: {e}", file=sys.stderr)
    try:
        start = holt_winters_start(y, method, m)
        fits.append(("holtwinters", model.fit(start_params=start, disp=False, maxiter=5000)))
    except Exception as e:  # noqa: BLE001
        print(f"  {method}: Holt-Winters start failed: {e}", file=sys.stderr)
    if not fits:
        return None

    def score(f):
        v = f[1].llf
        return v if np.isfinite(v) else (np.inf if v == np.inf else -np.inf)

    start, res = max(fits, key=score)
    fitted = np.asarray(res.fittedvalues, dtype=float)
    sse = float(np.sum((y - fitted) ** 2))
    params = {"alpha": fin(res.smoothing_level)}
    if trend:
        params["beta"] = fin(res.smoothing_trend)
    if seas:
        params["gamma"] = fin(res.smoothing_seasonal)
    if damped:
        params["phi"] = fin(res.damping_trend)
    conv = res.mle_retvals.get("converged") if isinstance(res.mle_retvals, dict) else None
    return {
        "start": start,
        "converged": bool(conv) if conv is not None else None,
        "sse": fin(sse),
        "loglik": fin(res.llf),
        "params": params,
        "forecast": [fin(v) for v in np.asarray(res.forecast(h), dtype=float)],
    }


def main():
    cases = []
    for name, shape, y, h, m in grid():
        y = np.asarray(y, dtype=float)
        train, test = y[:-h], y[-h:]
        print(f"{name}: n_train {len(train)}, h {h}, m {m}", file=sys.stderr)
        methods = {}
        skipped = {}
        for method in METHODS:
            why = inapplicable(method, train, m)
            if why:
                skipped[method] = why
                continue
            methods[method] = fit_reference(train, method, m, h)
        cases.append({
            "name": name,
            "shape": shape,
            "period": m,
            "train": [fin(v, 17) for v in train],
            "test": [fin(v, 17) for v in test],
            "methods": methods,
            "inapplicable": skipped,
        })
    out = {
        "generator": "scripts/reference/ets_grid.py",
        "reference": "statsmodels ETSModel (maximum likelihood, initialization_method='estimated'), "
                     "best of its default start and the ExponentialSmoothing least-squares start",
        "versions": {"statsmodels": statsmodels.__version__, "numpy": np.__version__},
        "cases": cases,
    }
    # Compact but diff-friendly: one line per series' values and per method.
    one = lambda v: json.dumps(v, separators=(",", ":"))  # noqa: E731
    w = sys.stdout.write
    w("{\n")
    for key in ("generator", "reference", "versions"):
        w(f' "{key}": {one(out[key])},\n')
    w(' "cases": [\n')
    for i, c in enumerate(cases):
        w("  {\n")
        for key in ("name", "shape", "period", "train", "test", "inapplicable"):
            w(f'   "{key}": {one(c[key])},\n')
        w('   "methods": {\n')
        items = list(c["methods"].items())
        for j, (k, v) in enumerate(items):
            w(f'    "{k}": {one(v)}{"," if j + 1 < len(items) else ""}\n')
        w("   }\n")
        w("  }" + ("," if i + 1 < len(cases) else "") + "\n")
    w(" ]\n}\n")


if __name__ == "__main__":
    main()
