#!/usr/bin/env python3
"""RFM on The Complete Journey: infogap's snapshot path beside DuckDB.

    PY=/path/to/python-with-duckdb
    $PY benchmarks/rfm_duckdb.py --db cj.db [--bin target/release/infogap] [--runs 7]

Per household: days since the last purchase (as of the latest transaction),
distinct baskets, sum of sales_value. DuckDB computes it straight from
transactions.parquet; infogap runs `segments --method rfm --json` on the
store imported with examples/completejourney/infogap.toml (whole process,
snapshot cache current), and again with `--customers` for the per-household
values that are compared. Runs alternate, in the same minute; medians are
reported. The values are compared household by household and the script
fails if any differs by more than 1e-6 (relative).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PARQUET = os.path.normpath(
    os.path.join(HERE, "../../shared/data/completejourney/transactions.parquet")
)

QUERY = f"""
WITH t AS (SELECT * FROM '{PARQUET}'),
     latest AS (SELECT max(transaction_timestamp) AS m FROM t)
SELECT household_id,
       epoch(latest.m - max(transaction_timestamp)) / 86400.0 AS recency_days,
       count(DISTINCT basket_id) AS frequency,
       sum(sales_value) AS monetary
FROM t, latest GROUP BY household_id, latest.m
"""

# The whole DuckDB process, as a user would run it (interpreter, import, query).
DUCK_PROCESS = f"import duckdb; duckdb.sql({QUERY!r}).fetchall()"


def duck_query(con):
    t = time.perf_counter()
    rows = con.sql(QUERY).fetchall()
    return time.perf_counter() - t, rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    ap.add_argument("--bin", default=os.path.join(HERE, "../target/release/infogap"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    import duckdb

    con = duckdb.connect()
    # the cache must be current before timing (the import writes it)
    subprocess.run([a.bin, "--db", a.db, "snapshot", "--json"], check=True, capture_output=True)
    ours, ours_rows, duck_q, duck_p = [], [], [], []
    out = None
    rows = None
    for _ in range(a.runs):
        t = time.perf_counter()
        p = subprocess.run(
            [a.bin, "--db", a.db, "segments", "--method", "rfm", "--json"],
            check=True,
            capture_output=True,
        )
        ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        p = subprocess.run(
            [a.bin, "--db", a.db, "segments", "--method", "rfm", "--json", "--customers"],
            check=True,
            capture_output=True,
        )
        ours_rows.append(time.perf_counter() - t)
        out = p.stdout
        s, rows = duck_query(con)
        duck_q.append(s)
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", DUCK_PROCESS], check=True)
        duck_p.append(time.perf_counter() - t)
    got = json.loads(out)
    by_key = {c["key"]: c for c in got["customer_rows"]}
    worst = 0.0
    compared = 0
    for hh, rec, freq, mon in rows:
        c = by_key.get(f"household:{hh}")
        if c is None:
            sys.exit(f"household {hh} is missing from infogap's answer")
        for ours_v, duck_v in ((c["recency_days"], rec), (c["frequency"], freq), (c["monetary"], mon)):
            d = abs(ours_v - duck_v) / max(1.0, abs(duck_v))
            worst = max(worst, d)
        compared += 1
    if compared != len(got["customer_rows"]):
        sys.exit(f"infogap has {len(got['customer_rows'])} households, DuckDB {compared}")
    res = {
        "households": compared,
        "max_relative_difference": worst,
        "infogap_segments_rfm_process_s": statistics.median(ours),
        "infogap_with_customer_rows_process_s": statistics.median(ours_rows),
        "duckdb_query_s": statistics.median(duck_q),
        "duckdb_process_s": statistics.median(duck_p),
        "ratio_to_duckdb_query": statistics.median(ours) / statistics.median(duck_q),
        "runs": a.runs,
        "duckdb": duckdb.__version__,
    }
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"households compared        {compared} (max relative difference {worst:.2e})")
        print(f"infogap segments (process) {res['infogap_segments_rfm_process_s']:.3f} s")
        print(f"  with --customers         {res['infogap_with_customer_rows_process_s']:.3f} s")
        print(f"DuckDB query               {res['duckdb_query_s']:.3f} s")
        print(f"DuckDB (whole process)     {res['duckdb_process_s']:.3f} s")
        print(f"ratio to the DuckDB query  {res['ratio_to_duckdb_query']:.2f}x  (target <= 2)")
    if worst > 1e-6:
        sys.exit("values differ")


if __name__ == "__main__":
    main()
