"""Same-run peer timing for benchmarks/clv.md: lifetimes' BG/NBD and Gamma-Gamma
fits on CDNOW sample and master, set up exactly like ../shared/anchors/clv_cdnow.py
(variants B and C: freq='D', observation_period_end=1997-09-30, recency and T / 7,
penalizer_coef=0; Gamma-Gamma on repeat customers' mean repeat-day spend).

Prints one JSON line per file with the estimates and the fit times (first fit and
median of --repeat fits; wall clock, time.perf_counter).
Usage: /work/venv/bin/python benchmarks/clv_lifetimes.py [--data ../shared/data] [--repeat 5]
"""
import argparse
import json
import os
import statistics
import time
import warnings

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

warnings.simplefilter("ignore")
ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"))
ap.add_argument("--repeat", type=int, default=5)
args = ap.parse_args()


def read(path):
    t = pd.read_csv(path, sep=r"\s+", header=None, dtype=str)
    if t.shape[1] == 5:  # sample: master_id, id, date, cds, dollars
        t = t.iloc[:, 1:]
    t.columns = ["customer_id", "date", "n_cds", "dollars"]
    t = t[t["date"].str.isdigit()]  # drop the master's header line
    t["date"] = pd.to_datetime(t["date"], format="%Y%m%d")
    t["dollars"] = t["dollars"].astype(float)
    return t


def timed(fn, n):
    times = []
    out = None
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times[0], statistics.median(times)


for name in ["CDNOW_sample.txt", "CDNOW_master.txt"]:
    tx = read(os.path.join(args.data, "cdnow", name))
    s = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="dollars",
                                           observation_period_end="1997-09-30", freq="D")
    s["recency"] = s["recency"] / 7.0
    s["T"] = s["T"] / 7.0

    def fit_bg():
        f = BetaGeoFitter(penalizer_coef=0.0)
        f.fit(s["frequency"], s["recency"], s["T"])
        return f

    # lifetimes refuses non-positive spend (one master repeater spent $0): drop it, as infogap does
    rep = s[(s["frequency"] > 0) & (s["monetary_value"] > 0)]

    def fit_gg():
        f = GammaGammaFitter(penalizer_coef=0.0)
        f.fit(rep["frequency"], rep["monetary_value"])
        return f

    bg, bg_first, bg_med = timed(fit_bg, args.repeat)
    gg, gg_first, gg_med = timed(fit_gg, args.repeat)
    print(json.dumps({
        "file": name, "customers": len(s), "repeaters": int((s["frequency"] > 0).sum()), "gamma_gamma_customers": len(rep),
        "bgnbd": {k: round(float(v), 4) for k, v in bg.params_.items()},
        "gamma_gamma": {k: round(float(v), 4) for k, v in gg.params_.items()},
        "bgnbd_seconds_first": round(bg_first, 4), "bgnbd_seconds_median": round(bg_med, 4),
        "gamma_gamma_seconds_first": round(gg_first, 4), "gamma_gamma_seconds_median": round(gg_med, 4),
        "fit_seconds_median": round(bg_med + gg_med, 4), "repeat": args.repeat,
    }), flush=True)
