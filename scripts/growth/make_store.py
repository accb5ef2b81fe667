#!/usr/bin/env python3
"""Writes a synthetic store K times the size of The Complete Journey.

Every CJ household is replicated K times under new ids (household_id +
r * 10,000; basket_id + r * 10^11), its times shifted back by r mod 29 days, so
replicas are distinct customers with distinct histories of the same shape.
One transactions file per replica (an import writes one file per
transaction), products, coupons and campaign descriptions as they are.

    python3 scripts/growth/make_store.py K OUTDIR

writes OUTDIR/*.parquet and OUTDIR/infogap.toml (import it with
`infogap --db OUTDIR/store.db import --config OUTDIR/infogap.toml`).
Needs the Python package duckdb.
"""
import os
import sys

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
CJ = os.path.normpath(os.path.join(HERE, "../../../shared/data/completejourney"))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    k = int(sys.argv[1])
    out = os.path.abspath(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    src = lambda name: f"'{CJ}/{name}.parquet'"
    for r in range(k):
        path = os.path.join(out, f"transactions_{r:03d}.parquet")
        if os.path.exists(path):
            continue
        con.execute(
            f"""COPY (SELECT household_id + {r} * 10000 AS household_id, store_id,
                       basket_id + {r} * 100000000000 AS basket_id, product_id, quantity,
                       sales_value, retail_disc, coupon_disc, coupon_match_disc, week,
                       transaction_timestamp - INTERVAL {r % 29} DAY AS transaction_timestamp
                FROM {src('transactions')}) TO '{path}' (FORMAT parquet)"""
        )
    reps = f"(SELECT range AS r FROM range({k}))"
    con.execute(
        f"""COPY (SELECT d.* REPLACE (household_id + r * 10000 AS household_id)
            FROM {src('demographics')} d, {reps}) TO '{out}/demographics.parquet' (FORMAT parquet)"""
    )
    con.execute(
        f"""COPY (SELECT campaign_id, household_id + r * 10000 AS household_id
            FROM {src('campaigns')}, {reps}) TO '{out}/campaigns.parquet' (FORMAT parquet)"""
    )
    con.execute(
        f"""COPY (SELECT household_id + r * 10000 AS household_id, coupon_upc, campaign_id,
                  redemption_date - INTERVAL (r % 29) DAY AS redemption_date
            FROM {src('coupon_redemptions')}, {reps}) TO '{out}/coupon_redemptions.parquet' (FORMAT parquet)"""
    )
    with open(os.path.join(HERE, "../../examples/completejourney/infogap.toml")) as f:
        cfg = f.read()
    # point the unchanged sources at CJ, the replicated ones here
    cfg = cfg.replace("../../../shared/data/completejourney/", CJ + "/")
    for name in ("demographics", "campaigns", "coupon_redemptions"):
        cfg = cfg.replace(f"{CJ}/{name}.parquet", f"{out}/{name}.parquet")
    head, tx_and_rest = cfg.split('[[source]]\nname = "transactions"', 1)
    tx_block, rest = tx_and_rest.split("[[source]]", 1)
    blocks = []
    for r in range(k):
        b = f'[[source]]\nname = "transactions_{r:03d}"' + tx_block
        b = b.replace(f"{CJ}/transactions.parquet", f"{out}/transactions_{r:03d}.parquet")
        blocks.append(b)
    with open(os.path.join(out, "infogap.toml"), "w") as f:
        f.write(head + "".join(blocks) + "[[source]]" + rest)
    print(f"{out}/infogap.toml: {k} replicas of The Complete Journey")


if __name__ == "__main__":
    main()
