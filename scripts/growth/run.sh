#!/usr/bin/env bash
# Growth of the store analytics with data size: builds a synthetic store K
# times The Complete Journey (scripts/growth/make_store.py), imports it and
# measures import, sizes, snapshot load and memory, RFM and `train churn`.
#
#   PY=/path/to/python-with-duckdb scripts/growth/run.sh K OUTDIR [BIN]
#
# Prints one JSON object. Needs /usr/bin/time (GNU) for peak memory.
set -euo pipefail
K=$1
OUT=$2
BIN=${3:-$(dirname "$0")/../../target/release/infogap}
PY=${PY:-python3}
BIN=$(realpath "$BIN")
"$PY" "$(dirname "$0")/make_store.py" "$K" "$OUT" >&2
DB="$OUT/store.db"
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB.snapshot"

measure() { # label, command...: prints "seconds peak_kb"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$OUT/$label.time" "$@" > "$OUT/$label.out" 2> "$OUT/$label.err"
  cat "$OUT/$label.time" | tail -1
}

read -r import_s import_kb < <(measure import "$BIN" --db "$DB" import --config "$OUT/infogap.toml" --quiet)
read -r status_s status_kb < <(measure snapshot "$BIN" --db "$DB" snapshot --json)
read -r rfm_s rfm_kb < <(measure rfm "$BIN" --db "$DB" segments --method rfm --json)
read -r churn_s churn_kb < <(measure train_churn "$BIN" --db "$DB" train churn --quiet)
store_bytes=$(( $(stat -c %s "$DB") + $( [ -f "$DB-wal" ] && stat -c %s "$DB-wal" || echo 0) ))
"$PY" - "$OUT/snapshot.out" <<PYEOF
import json, sys
s = json.load(open(sys.argv[1]))
print(json.dumps({
  "k": $K,
  "customers": s["customers"], "orders": s["orders"], "order_lines": s["order_lines"],
  "import_s": $import_s, "import_peak_mb": round($import_kb / 1024),
  "store_mb": round($store_bytes / 1e6), "cache_mb": round(s["cache_bytes"] / 1e6),
  "snapshot_load_s": round(s["load_seconds"], 3),
  "snapshot_memory_mb": round(s["memory_bytes"] / 1e6), "memory_ratio": round(s["memory_ratio"], 2),
  "snapshot_process_peak_mb": round($status_kb / 1024),
  "rfm_process_s": $rfm_s, "rfm_peak_mb": round($rfm_kb / 1024),
  "train_churn_s": $churn_s, "train_churn_peak_mb": round($churn_kb / 1024),
}))
PYEOF
