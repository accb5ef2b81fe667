#!/usr/bin/env bash
# What the feedback features add to churn (issue 21): the quickstart's demo
# store (2,000 people, seed 42), then `train churn --no-save` with every
# feature, without the texts' sentiment, without the scores (ticket counts,
# survey and review scores: the texts alone), and without any feedback
# feature; the same seeds, folds and split for each, models auto, logreg
# and gbm. Prints one Markdown row per model and seed (5-fold CV ROC AUC).
#   scripts/bench-feedback.sh [--no-build] [--seeds "0 1 2"]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_DIR:-$ROOT/target/bench-feedback}
BUILD=1 SEEDS="0 1 2"
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) BUILD=0; shift ;;
    --seeds) SEEDS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
BIN=${INFOGAP_BIN:-$ROOT/target/release/infogap}
if [ "$BUILD" = 1 ]; then (cd "$ROOT" && cargo build --release --locked -p infogap-cli --quiet); fi
rm -rf "$OUT" && mkdir -p "$OUT" && cd "$OUT"
"$BIN" -q demo --out demo --customers 2000 --seed 42 >/dev/null
"$BIN" -q --db store.db import --config demo/infogap.toml >/dev/null 2>&1
auc() { python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.4f" % r["metrics"]["roc_auc"])'; }
echo "| model | seed | all features | without sentiment | without scores (texts only) | without feedback |"
echo "|---|---|---|---|---|---|"
for model in auto logreg gbm; do
  for seed in $SEEDS; do
    row="| $model | $seed |"
    for without in "" "--without sentiment" "--without scores" "--without feedback"; do
      # shellcheck disable=SC2086
      a=$("$BIN" -q --db store.db train churn --no-save --json --model "$model" --seed "$seed" $without | auc)
      row="$row $a |"
    done
    echo "$row"
  done
done
