#!/usr/bin/env bash
# Event intake throughput (issue 21): `infogap serve` on a fresh demo store,
# a source key, then 60 s of Segment-spec track messages in batches of 100
# from 4 keep-alive connections (`infogap bench intake`, a Rust client), and
# 60 s of single /v1/track calls;
# acknowledged = durable in the intake journal. Reports events/s and
# latency p50/p99, the time the worker then takes to apply the backlog,
# and Python's sqlite3 inserting the same rows (one transaction per batch)
# into an unindexed table in the same run.
# With --live: only event → visible, the time from one `track` to the
# customer's changed churn probability and event count in the API.
#   scripts/bench-intake.sh [--seconds 60] [--no-build] [--live]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_DIR:-$ROOT/target/bench-intake}
SECONDS_RUN=60 BUILD=1 LIVE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --live) LIVE=1; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
log() { echo "bench-intake: $*" >&2; }
BIN=${INFOGAP_BIN:-$ROOT/target/release/infogap}
if [ "$BUILD" = 1 ]; then (cd "$ROOT" && cargo build --release --locked -p infogap-cli --quiet); fi
rm -rf "$OUT" && mkdir -p "$OUT" && cd "$OUT"
"$BIN" -q demo --out demo --customers 2000 >/dev/null
"$BIN" -q --db store.db import --config demo/infogap.toml >/dev/null 2>&1
KEY=$("$BIN" --db store.db keys create --name bench-web --role source --source web --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
PORT=$((20000 + RANDOM % 20000))
"$BIN" --db store.db serve --bind "127.0.0.1:$PORT" --no-access-log >serve.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
if [ "$LIVE" = 1 ]; then
  kill $PID; wait $PID 2>/dev/null || true
  "$BIN" -q --db store.db train churn >/dev/null
  "$BIN" -q --db store.db train recs --algo item-knn >/dev/null
  ADMIN=$("$BIN" --db store.db keys create --name bench-admin --role admin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  "$BIN" --db store.db serve --bind "127.0.0.1:$PORT" --no-access-log >serve.log 2>&1 &
  PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
  log "event → visible churn, recommendations and profile, 100 customers"
  python3 "$ROOT/scripts/bench-live.py" --port "$PORT" --source-key "$KEY" --admin-key "$ADMIN" --links demo/web/crm_links.csv --n 100 | tee live.json
  exit 0
fi
log "batches of 100 for ${SECONDS_RUN} s"
"$BIN" bench intake --addr "127.0.0.1:$PORT" --key "$KEY" --seconds "$SECONDS_RUN" --batch 100 --connections 4 --json | tee batch.json
EVENTS=$(python3 -c 'import json; print(json.load(open("batch.json"))["events"])')
log "python sqlite3: the same $EVENTS rows, one transaction per 100"
python3 "$ROOT/scripts/bench-intake.py" --port "$PORT" --key "$KEY" --batch 100 --sqlite-out "$OUT/bare.db" --sqlite-rows "$EVENTS" | tee sqlite.json
rm -f "$OUT/bare.db" "$OUT/bare.db-wal" "$OUT/bare.db-shm"
T0=$(date +%s.%N)
while [ "$("$BIN" --db store.db intake status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"])')" != 0 ]; do sleep 0.5; done
T1=$(date +%s.%N)
log "backlog applied $(python3 -c "print(round($T1 - $T0, 1))") s after the load ended"
log "single /v1/track calls for ${SECONDS_RUN} s"
"$BIN" bench intake --addr "127.0.0.1:$PORT" --key "$KEY" --seconds "$SECONDS_RUN" --batch 1 --connections 4 --json | tee single.json
"$BIN" --db store.db intake status --json | tee status.json
