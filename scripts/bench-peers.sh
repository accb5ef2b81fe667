#!/bin/bash
# Same-session comparison with the peer libraries: each anchor script of
# ../shared/anchors (run from a scratch copy, so the shared results/ and split
# files are not rewritten), then infogap on the same task, back to back.
#
#   python3 -m venv /tmp/venv && /tmp/venv/bin/pip install -r ../shared/anchors/requirements-anchors.txt
#   cargo build --release --locked -p infogap-cli
#   PY=/tmp/venv/bin/python scripts/bench-peers.sh [OUT_DIR]
#
# Writes every peer's output and every infogap JSON to OUT_DIR (default
# /tmp/infogap-bench-peers) and prints the start time and load of each part.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
PY=${PY:-python3}
B=$ROOT/target/release/infogap
A=$SHARED/anchors
D=$SHARED/data
O=${1:-/tmp/infogap-bench-peers}
mkdir -p "$O/anchors"
cp "$A"/*.py "$O/anchors/"
export ANCHORS_DATA=$D
log() { echo "== $* $(date -u +%T) load $(cut -d' ' -f1-3 /proc/loadavg)"; }
cd "$O/anchors"
log rating
$PY surprise_ml100k.py SVD > "$O/surprise1.txt" 2>&1
for i in 1 2 3; do $B eval recs --ratings "$D/ml-100k/u.data" --algo auto --folds 5 --seed 0 --json > "$O/rating_auto_$i.json"; done
$PY surprise_ml100k.py SVD > "$O/surprise2.txt" 2>&1
log topn
$PY implicit_ml100k.py > "$O/implicit.txt" 2>&1
for i in 1 2 3; do $B eval recs --train "$A/ml100k_split_train.csv" --test "$A/ml100k_split_test.csv" --algo auto --k 10 --json > "$O/topn_auto_$i.json"; done
for i in 1 2 3; do $B eval recs --train "$A/ml100k_split_train.csv" --test "$A/ml100k_split_test.csv" --algo ease --lambda 500 --k 10 --json > "$O/topn_ease_$i.json"; done
log churn
$PY churn_telco.py > "$O/churn_peers.txt" 2>&1
for m in logreg gbm; do $B eval classify --csv "$D/telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv" --target Churn --model $m --folds 5 --seed 0 --json > "$O/churn_$m.json"; done
for i in 1 2 3; do $B eval classify --csv "$D/telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv" --target Churn --model auto --folds 5 --seed 0 --json > "$O/churn_auto_$i.json"; done
log forecast
$PY hw_airpassengers.py > "$O/hw1.txt" 2>&1
# --repeat 5: `fit_seconds` is the first fit of a fresh process, `fit_seconds_median`
# the median of 5 more. `bench forecast` runs the anchor script's rows in its own
# protocol (its Holt-Winters "cold" fit follows the SES fits in the same process).
for i in $(seq 11); do $B eval forecast --csv "$D/airpassengers/AirPassengers.csv" --holdout 12 --season 12 --method auto --repeat 5 --json > "$O/fc_auto_$i.json"; done
for i in $(seq 5); do $B bench forecast --csv "$D/airpassengers/AirPassengers.csv" --holdout 12 --season 12 --repeat 5 --json > "$O/fc_bench_$i.json"; done
$PY hw_airpassengers.py > "$O/hw2.txt" 2>&1
log clv
$PY clv_cdnow.py > "$O/clv_peers.txt" 2>&1
for i in 1 2 3; do $B eval clv --transactions "$D/cdnow/CDNOW_sample.txt" --calibration-end 1997-09-30 --time-unit week --json > "$O/clv_sample_$i.json"; done
log done
