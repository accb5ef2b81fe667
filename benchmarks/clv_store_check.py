"""Checks every customer's expected purchases and P(alive) from `infogap clv`
against lifetimes 0.11.3 given the same parameters and horizon (issue 15).

  infogap --db cj.db train clv
  infogap --db cj.db clv --top 1000000 --json > clv.json
  /work/venv/bin/python benchmarks/clv_store_check.py clv.json

Prints one JSON line: customers compared, the largest relative errors, the
worst customer, and whether any value is negative or non-finite.
"""
import json
import math
import sys
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter

warnings.simplefilter("ignore")
d = json.load(open(sys.argv[1]))
p = d["bgnbd"]
f = BetaGeoFitter()
f.params_ = pd.Series(dict(r=p["r"], alpha=p["alpha"], a=p["a"], b=p["b"]))
t = d["horizon_time_units"]
rows = d["top"]
x = np.array([r["frequency"] for r in rows], dtype=float)
tx = np.array([r["recency"] for r in rows])
T = np.array([r["age"] for r in rows])
ours_e = np.array([r["expected_purchases"] for r in rows])
ours_a = np.array([r["prob_alive"] for r in rows])
ref_e = np.asarray(f.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T), dtype=float)
ref_a = np.asarray(f.conditional_probability_alive(x, tx, T), dtype=float)
rel_e = np.abs(ours_e - ref_e) / np.maximum(np.abs(ref_e), 1e-300)
rel_a = np.abs(ours_a - ref_a) / np.maximum(np.abs(ref_a), 1e-300)
w = int(np.nanargmax(rel_e))
print(json.dumps({
    "customers": len(rows),
    "customers_in_report": d["customers"],
    "horizon_time_units": t,
    "time_unit": d["time_unit"],
    "max_rel_err_expected_purchases": float(np.nanmax(rel_e)),
    "max_rel_err_prob_alive": float(np.nanmax(rel_a)),
    "lifetimes_non_finite": int((~np.isfinite(ref_e)).sum()),
    "worst": {"key": rows[w]["key"], "ours": float(ours_e[w]), "lifetimes": float(ref_e[w])},
    "ours_negative_or_non_finite": int(sum(1 for r in rows for k in ("expected_purchases", "clv", "prob_alive")
                                         if not (math.isfinite(r[k]) and r[k] >= 0))),
    "total_clv": d["total_clv"],
}))
