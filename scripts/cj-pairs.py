"""The Complete Journey as implicit top-N data: one row per household x product.

    PY=/work/venv/bin/python; $PY scripts/cj-pairs.py cj_pairs.csv   # needs pandas + pyarrow
    infogap eval recs --ratings cj_pairs.csv --holdout-per-user 0.25 --algo auto --k 10 --json

Columns userId,itemId,rating,timestamp: rating = number of purchase lines, timestamp =
the last purchase (Unix seconds). Used by BENCHMARKS.md ("A larger real catalogue").
"""
import os
import sys

import pandas as pd

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "completejourney")
out = sys.argv[1] if len(sys.argv) > 1 else "cj_pairs.csv"
t = pd.read_parquet(os.path.join(root, "transactions.parquet"),
                    columns=["household_id", "product_id", "quantity", "transaction_timestamp"])
g = t.groupby(["household_id", "product_id"]).agg(n=("quantity", "size"), ts=("transaction_timestamp", "max")).reset_index()
g["ts"] = pd.to_datetime(g.ts).astype("int64") // 10**9
g.rename(columns={"household_id": "userId", "product_id": "itemId", "n": "rating", "ts": "timestamp"}).to_csv(out, index=False)
print(f"{len(g)} pairs, {g.household_id.nunique()} households -> {out}")
