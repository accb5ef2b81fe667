"""Weekly sales of the 40 largest product categories of The Complete Journey, one CSV per category.

    PY=/work/venv/bin/python; $PY scripts/cj-weekly-series.py OUT_DIR   # needs pandas + pyarrow

Reads ../shared/data/completejourney/{transactions,products}.parquet; writes OUT_DIR/catNN.csv
(date,value) for weeks 1-52 of 2017 (week 53 holds only the last day and is dropped) and
OUT_DIR/pre/catNN.csv with weeks 1-44 (a holdout before Thanksgiving and Christmas).
Used by BENCHMARKS.md ("Real weekly series") to check `auto` on series nobody tuned it on.
"""
import os
import sys

import pandas as pd

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "completejourney")
out = sys.argv[1] if len(sys.argv) > 1 else "cj-weekly"
os.makedirs(os.path.join(out, "pre"), exist_ok=True)
t = pd.read_parquet(os.path.join(root, "transactions.parquet"), columns=["product_id", "sales_value", "week"])
p = pd.read_parquet(os.path.join(root, "products.parquet"), columns=["product_id", "product_category"])
g = t.merge(p, on="product_id", how="left").groupby(["product_category", "week"]).sales_value.sum().unstack(fill_value=0)
weeks = [w for w in sorted(g.columns) if w <= 52]
top = g[weeks].sum(axis=1).sort_values(ascending=False).index[:40]
dates = (pd.Timestamp("2017-01-02") + pd.to_timedelta([(w - 1) * 7 for w in weeks], unit="D")).strftime("%Y-%m-%d")
for i, c in enumerate(top):
    df = pd.DataFrame({"date": dates, "value": g.loc[c, weeks].round(2).to_numpy()})
    df.to_csv(os.path.join(out, f"cat{i:02d}.csv"), index=False)
    df.iloc[:44].to_csv(os.path.join(out, "pre", f"cat{i:02d}.csv"), index=False)
print(f"{len(top)} categories x {len(weeks)} weeks -> {out}")
