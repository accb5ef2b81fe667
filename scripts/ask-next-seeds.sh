#!/usr/bin/env bash
# Paired seed sweep of `infogap eval ask-next` (issue 19): ask_next vs
# global_order over several seeds (each seed changes the folds, the EM
# restarts and the scorer's masks), so a difference of 0.001 in area can be
# told from noise.
#
#   scripts/ask-next-seeds.sh [SEEDS] [DEMO_TABLE]
#
# SEEDS defaults to 10. DEMO_TABLE is a churn table written by
# `infogap gap ask-next --for churn --table-out t.csv` on a demo store; the
# demo half is skipped without it. Needs a release build (cargo build
# --release --locked) and ../shared/data/telco-churn.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-10}
DEMO=${2:-}
BIN=target/release/infogap
OUT=$(mktemp -d)
TELCO=../shared/data/telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv
for ((s = 0; s < SEEDS; s++)); do
  "$BIN" eval ask-next --csv "$TELCO" --target Churn --drop customerID --seed "$s" --json >"$OUT/telco_$s.json"
  if [ -n "$DEMO" ]; then
    "$BIN" eval ask-next --csv "$DEMO" --target outcome --positive churns \
      --known orders,orders_last_90_days,spend,days_since_last_order,days_since_first_order,tickets,events \
      --seed "$s" --json >"$OUT/demo_$s.json"
  fi
  echo "seed $s done" >&2
done
python3 - "$OUT" "$SEEDS" <<'PY'
import json, statistics as st, sys, os
out, n = sys.argv[1], int(sys.argv[2])
for t in ["telco", "demo"]:
    rows = []
    for s in range(n):
        p = os.path.join(out, f"{t}_{s}.json")
        if os.path.exists(p):
            a = json.load(open(p))["area"]
            rows.append((a["ask_next"], a["global_order"], a["random"]))
    if not rows:
        continue
    d = [r[0] - r[1] for r in rows]
    sd = st.stdev(d) if len(d) > 1 else 0.0
    m = [st.mean(c) for c in zip(*rows)]
    print(f"{t}: {len(rows)} seeds, mean areas ask_next {m[0]:.4f} global_order {m[1]:.4f} random {m[2]:.4f}; "
          f"ask_next - global_order {st.mean(d):+.4f} (sd {sd:.4f}, se {sd/len(d)**0.5:.4f}), ask_next ahead in {sum(x > 0 for x in d)}/{len(d)}")
PY
