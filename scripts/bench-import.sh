#!/usr/bin/env bash
# Import throughput: infogap vs `sqlite3 .import` of the same CSV into a bare
# table (the ceiling: no validation, no identity resolution, no indexes).
# Usage: scripts/bench-import.sh [demo-customers] [repeats]
# Needs: sqlite3 (apt-get install sqlite3), ../shared/data for the Complete Journey part.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-28000}
R=${2:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
cargo build --release --locked -p infogap-cli >/dev/null 2>&1
BIN=$PWD/target/release/infogap
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

time_sqlite() { # csv -> seconds (median of R)
  local csv=$1 i t0 t1
  for i in $(seq "$R"); do
    rm -f "$W/bare.db"
    t0=$(now); sqlite3 "$W/bare.db" ".mode csv" ".import $csv t"; t1=$(now)
    echo "$t1 - $t0" | bc -l
  done | median
}

time_infogap() { # config source-name -> seconds of that source (median of R)
  local cfg=$1 name=$2 i
  for i in $(seq "$R"); do
    rm -f "$W/ig.db"*
    "$BIN" --db "$W/ig.db" --quiet import --config "$cfg" --json \
      | python3 -c "import json,sys; d=json.load(sys.stdin); print([s['seconds'] for s in d['sources'] if s['name']=='$name'][0])"
  done | median
}

echo "== demo data: $N people"
"$BIN" demo --out "$W/demo" --customers "$N" --seed 1 >/dev/null
rows=$(($(wc -l < "$W/demo/sales/order_lines.csv") - 1))
s_sql=$(time_sqlite "$W/demo/sales/order_lines.csv")
# the sales source alone (customers must exist first? no: order lines create them)
python3 - "$W/demo/infogap.toml" "$W/demo/sales-only.toml" <<'PY'
import sys, re
text = open(sys.argv[1]).read()
blocks = text.split("[[source]]")
keep = [b for b in blocks[1:] if 'name = "sales"' in b]
open(sys.argv[2], "w").write(blocks[0] + "[[source]]" + keep[0])
PY
s_ig=$(time_infogap "$W/demo/sales-only.toml" sales)
printf "demo order_lines.csv  rows %d  sqlite3 .import %.2f s (%.0f rows/s)  infogap %.2f s (%.0f rows/s)  ratio %.2f\n" \
  "$rows" "$s_sql" "$(echo "$rows / $s_sql" | bc -l)" "$s_ig" "$(echo "$rows / $s_ig" | bc -l)" "$(echo "$s_sql / $s_ig" | bc -l)"

CJ=../shared/data/completejourney/transactions.parquet
if [ -f "$CJ" ]; then
  echo "== Complete Journey transactions"
  "$BIN" bench parquet-to-csv --parquet "$CJ" --out "$W/cj.csv" >/dev/null
  rows=$(($(wc -l < "$W/cj.csv") - 1))
  c_sql=$(time_sqlite "$W/cj.csv")
  cat > "$W/cj.toml" <<TOML
[[source]]
name = "transactions"
file = "cj.csv"
kind = "order_lines"
namespace = "household"
[source.columns]
customer = "household_id"
order = "basket_id"
product = "product_id"
quantity = "quantity"
amount = "sales_value"
discount = "retail_disc + coupon_disc + coupon_match_disc"
time = "transaction_timestamp"
TOML
  c_ig=$(time_infogap "$W/cj.toml" transactions)
  sed "s#file = \"cj.csv\"#file = \"$PWD/$CJ\"#" "$W/cj.toml" > "$W/cjp.toml"
  c_pq=$(time_infogap "$W/cjp.toml" transactions)
  printf "CJ transactions CSV   rows %d  sqlite3 .import %.2f s (%.0f rows/s)  infogap %.2f s (%.0f rows/s)  ratio %.2f\n" \
    "$rows" "$c_sql" "$(echo "$rows / $c_sql" | bc -l)" "$c_ig" "$(echo "$rows / $c_ig" | bc -l)" "$(echo "$c_sql / $c_ig" | bc -l)"
  printf "CJ transactions Parquet  infogap %.2f s (%.0f rows/s)  ratio to sqlite3 CSV import %.2f\n" \
    "$c_pq" "$(echo "$rows / $c_pq" | bc -l)" "$(echo "$c_sql / $c_pq" | bc -l)"
fi
