"""Reference values for the BG/NBD and Gamma-Gamma predictions over a grid of
parameters and customer histories, edges included (brand-new customers, x = 0,
very large b, a = 1, long horizons, large purchase counts).

Two references per value: lifetimes 0.11.3 (scipy's hyp2f1), the peer users
compare against, and mpmath, the ground truth: closed forms at 60 digits, and
the BG/NBD expectation as the expectation it is, E[Y(t)|x,t_x,T] = P(alive) *
E_{p~Beta(a,b+x)}[(1 - (1 + p t/(alpha+T))^-(r+x)) / p], by tanh-sinh quadrature
(mpmath's own 2F1 fails to converge for several of these arguments). The Rust tests (crates/models/tests/it/clv.rs) hold ours
to the ground truth tightly and report where lifetimes itself is off.

Run once; the output is committed:
  /work/venv/bin/python scripts/reference/clv_grid.py > crates/models/tests/fixtures/clv_grid.csv
(venv: pip install -r ../shared/anchors/requirements-anchors.txt mpmath)
"""
import csv
import sys
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter

warnings.simplefilter("ignore")
mp.mp.dps = 60

PARAMS = {
    # name: (r, alpha, a, b)
    "cdnow": (0.243, 4.414, 0.793, 2.426),
    "completejourney": (1.412439087589589, 1.3910817490874676, 0.29416227724911925, 421.6142442304761),
    "huge_b": (2.0, 10.0, 0.5, 1.0e5),
    "a_is_1": (0.8, 3.0, 1.0, 4.0),
    "tiny_r_alpha": (0.01, 0.05, 0.3, 0.8),
    "large_r": (50.0, 100.0, 2.5, 7.0),
    "large_a": (1.5, 2.0, 20.0, 5.0),
}
# (x, t_x, T): brand new at the end of calibration, new with no repeat, the
# Complete Journey households 1636 and 1644 of issue 15, established, lapsed,
# heavy, long-lived without repeats
HISTORIES = [
    (0, 0.0, 0.0),
    (0, 0.0, 1.0),
    (1, 0.2857142857142857, 1.4285714285714286),
    (3, 4.0, 4.142857142857143),
    (10, 50.0, 52.0),
    (2, 5.0, 100.0),
    (100, 99.0, 100.0),
    (0, 0.0, 200.0),
]
HORIZONS = [1.0, 4.348214285714286, 52.17857142857143, 260.0, 520.0]
# Gamma-Gamma: (p, q, gamma) and (x, mean spend)
GG_PARAMS = {
    "cdnow": (6.2496, 3.7442, 15.4435),
    "completejourney": (0.4478854045955044, 3.8648952520031785, 240.6599924043921),
    "q_near_1": (2.0, 1.05, 30.0),
    "large_p": (80.0, 20.0, 5.0),
}
GG_CUSTOMERS = [(0, 0.0), (1, 12.5), (5, 40.0), (200, 109.4), (3, 0.01)]


def mp_alive(k, a, bp, u):
    """E over p ~ Beta(a, b') of (1 - (1 + p u)^-k) / p, by mpmath's tanh-sinh
    quadrature in y = logit(p), split where the integrand bends; computed at
    two precisions with different splits, which must agree to 1e-20."""
    def once(dps, shift):
        with mp.workdps(dps):
            K, A, BP, U = map(mp.mpf, (k, a, bp, u))
            ln_b = mp.loggamma(A) + mp.loggamma(BP) - mp.loggamma(A + BP)

            def f(y):
                lp = -mp.log1p(mp.exp(-y))
                lq = -mp.log1p(mp.exp(y))
                p = mp.exp(lp)
                return mp.exp(A * lp + BP * lq - ln_b) * -mp.expm1(-K * mp.log1p(p * U)) / p

            c = mp.log(A / BP) + shift
            bend = -mp.log(U * K + 1) + shift
            pts = sorted({c - 40, c - 10, c - 3, c, c + 3, c + 10, bend - 5, bend, bend + 5})
            return mp.quad(f, [-mp.inf] + pts + [mp.inf])
    v1, v2 = once(30, 0), once(45, mp.mpf("0.37"))
    assert abs(v1 - v2) <= mp.mpf("1e-20") * abs(v2), (k, a, bp, u, v1, v2)
    return v2


def mp_expected(r, alpha, a, b, x, tx, T, t):
    return mp_alive(r + x, a, b + x, mp.mpf(t) / (mp.mpf(alpha) + T)) * mp_prob_alive(r, alpha, a, b, x, tx, T)


def mp_expected_new(r, alpha, a, b, t):
    return mp_alive(r, a, b, mp.mpf(t) / alpha)


def mp_prob_alive(r, alpha, a, b, x, tx, T):
    if x == 0:
        return mp.mpf(1)
    r, alpha, a, b, x, tx, T = map(mp.mpf, (r, alpha, a, b, x, tx, T))
    return 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))


def mp_loglik(r, alpha, a, b, x, tx, T):
    r, alpha, a, b, x, tx, T = map(mp.mpf, (r, alpha, a, b, x, tx, T))
    a1 = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha)
    a2 = mp.loggamma(a + b) + mp.loggamma(b + x) - mp.loggamma(b) - mp.loggamma(a + b + x)
    a3 = -(r + x) * mp.log(alpha + T)
    tail = mp.exp(a3)
    if x > 0:
        tail += mp.exp(mp.log(a) - mp.log(b + x - 1) - (r + x) * mp.log(alpha + tx))
    return a1 + a2 + mp.log(tail)


w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["quantity", "params", "p1", "p2", "p3", "p4", "x", "t_x", "T", "t", "m", "mpmath", "lifetimes"])
for name, (r, alpha, a, b) in PARAMS.items():
    bg = BetaGeoFitter()
    bg.params_ = pd.Series(dict(r=r, alpha=alpha, a=a, b=b))
    for x, tx, T in HISTORIES:
        pa = mp_prob_alive(r, alpha, a, b, x, tx, T)
        lpa = float(np.asarray(bg.conditional_probability_alive(x, tx, T)).ravel()[0]) if T > 0 else float("nan")
        w.writerow(["prob_alive", name, r, alpha, a, b, x, tx, T, "", "", mp.nstr(pa, 17), repr(lpa)])
        if T > 0:
            ll = mp_loglik(r, alpha, a, b, x, tx, T)
            w.writerow(["bgnbd_log_likelihood", name, r, alpha, a, b, x, tx, T, "", "", mp.nstr(ll, 17), ""])
        for t in HORIZONS:
            e = mp_expected(r, alpha, a, b, x, tx, T, t)
            try:
                le = float(np.asarray(bg.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)).ravel()[0])
            except Exception:
                le = float("nan")
            w.writerow(["expected_purchases", name, r, alpha, a, b, x, tx, T, t, "", mp.nstr(e, 17), repr(le)])
    for t in HORIZONS:
        e = mp_expected_new(r, alpha, a, b, t)
        le = float(np.asarray(bg.expected_number_of_purchases_up_to_time(t)).ravel()[0])
        w.writerow(["expected_purchases_new", name, r, alpha, a, b, "", "", "", t, "", mp.nstr(e, 17), repr(le)])
for name, (p, q, g) in GG_PARAMS.items():
    gg = GammaGammaFitter()
    gg.params_ = pd.Series(dict(p=p, q=q, v=g))
    for x, m in GG_CUSTOMERS:
        P, Q, G, X, M = map(mp.mpf, (p, q, g, x, m))
        want = P * (G + X * M) / (P * X + Q - 1)
        le = float(gg.conditional_expected_average_profit(pd.Series([x]), pd.Series([m])).iloc[0]) if x > 0 else float("nan")
        w.writerow(["expected_average_spend", name, p, q, g, "", x, "", "", "", m, mp.nstr(want, 17), repr(le)])
        if x > 0:
            ll = (mp.loggamma(P * X + Q) - mp.loggamma(P * X) - mp.loggamma(Q) + Q * mp.log(G)
                  + (P * X - 1) * mp.log(M) + P * X * mp.log(X) - (P * X + Q) * mp.log(X * M + G))
            w.writerow(["gamma_gamma_log_likelihood", name, p, q, g, "", x, "", "", "", m, mp.nstr(ll, 17), ""])
