#!/usr/bin/env bash
# Whole-process wall time of the store-level commands on a store (median of
# R runs each), with the snapshot cache current, and the snapshot's load
# time and memory.
#   scripts/bench-store.sh STORE.db [repeats] [BIN]
# The store needs trained models for churn, clv and recommend
# (infogap --db STORE.db train churn / train clv / train recs).
set -euo pipefail
DB=$1
R=${2:-5}
BIN=${3:-$(dirname "$0")/../target/release/infogap}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
"$BIN" --db "$DB" snapshot --json > /dev/null
run() {
  local i t0 t1
  for i in $(seq "$R"); do
    t0=$(date +%s.%N)
    "$BIN" --db "$DB" "$@" > /dev/null 2>&1
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
  done | median
}
printf '%-48s %s\n' "command" "median s"
for c in "segments --method rfm --json" "segments --method kmeans --json" "churn --top 5" \
         "clv --top 5" "recommend --customer household:1023" "customer show household:1023" \
         "stats" "forecast --store" "train churn --quiet" "train clv --quiet" "train amount --quiet"; do
  # shellcheck disable=SC2086
  printf '%-48s %.3f\n' "$c" "$(run $c)"
done
t=$(mktemp)
printf '%-48s %.3f\n' "recommend --all --out FILE" "$(run recommend --all --out "$t" --quiet)"
rm -f "$t"
"$BIN" --db "$DB" snapshot
