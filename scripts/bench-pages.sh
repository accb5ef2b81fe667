#!/usr/bin/env bash
# Issue 20's page target: server-side render of the dashboard overview and of
# a customer profile, p95 ≤ 50 ms on The Complete Journey.
#
#   scripts/bench-pages.sh [--store PATH] [--requests 200] [--ids 8] [--no-build]
#
# What it does:
#   1. builds target/release/infogap (unless --no-build or INFOGAP_BIN=path);
#      prepares the CJ store at target/bench-pages/cj.db when --store is not
#      given and it is missing (import of examples/completejourney, then
#      `train churn`, `train clv`, `train recs --algo item-knn`);
#   2. creates a staff user `bench-pages-admin` (role admin) and an admin key,
#      starts `infogap serve` with its JSON access log going to a file;
#   3. signs in through /login like a browser (pre-session cookie, CSRF token);
#   4. per page: 5 warm-up requests, then --requests sequential requests
#      (profiles rotate over --ids customers from the churn watchlist);
#   5. reads the server's own duration of each request (`ms` in the access
#      log: from the request's arrival to the last byte of the page; network
#      and client excluded) and reports p50, p95 and max per page, as a
#      markdown table and target/bench-pages/results.json.
# The overview's numbers are cached per snapshot generation by the engine
# where they are derived from models (churn, segments); stats are read from
# the store on each request, as the API does.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${BENCH_DIR:-$ROOT/target/bench-pages}
STORE="" REQUESTS=200 NIDS=8 BUILD=1
while [ $# -gt 0 ]; do
  case "$1" in
    --store) STORE=$2; shift 2 ;;
    --requests) REQUESTS=$2; shift 2 ;;
    --ids) NIDS=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
log() { echo "bench-pages: $*" >&2; }
die() { echo "bench-pages: error: $*" >&2; exit 1; }

BIN=${INFOGAP_BIN:-$ROOT/target/release/infogap}
if [ -z "${INFOGAP_BIN:-}" ] && [ "$BUILD" = 1 ]; then
  log "cargo build --release --locked"
  (cd "$ROOT" && cargo build --release --locked -p infogap-cli --quiet)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

if [ -z "$STORE" ]; then
  STORE="$OUT/cj.db"
  if [ ! -f "$STORE" ]; then
    log "import of The Complete Journey into $STORE"
    "$BIN" --db "$STORE" import --config "$ROOT/examples/completejourney/infogap.toml" --quiet >"$OUT/import.log" 2>&1 ||
      { tail -20 "$OUT/import.log" >&2; die "import failed"; }
    for m in "churn" "clv" "recs --algo item-knn"; do
      log "train $m"
      # shellcheck disable=SC2086
      "$BIN" --db "$STORE" train $m --quiet >/dev/null || die "train $m failed"
    done
  fi
fi

PW="bench pages pass phrase $(date +%s)"
USER="bench-pages-admin-$(date +%s)"
echo "$PW" | "$BIN" --db "$STORE" users create --name "$USER" --role admin --password-stdin >/dev/null ||
  die "users create failed"
KEY=$("$BIN" --db "$STORE" keys create --name "bench-pages-$(date +%s)" --role admin --expires 1d --json |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ACCESS="$OUT/access.log"
: >"$ACCESS"
"$BIN" --db "$STORE" serve --bind "127.0.0.1:$PORT" 2>"$ACCESS" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 200); do
  curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$BASE/healthz" >/dev/null || die "the server did not start"

JAR="$OUT/cookies.txt"
rm -f "$JAR"
CSRF=$(curl -s -c "$JAR" "$BASE/login" | python3 -c 'import re,sys; print(re.search(r"name=\"csrf\" value=\"([^\"]+)\"", sys.stdin.read()).group(1))')
CODE=$(curl -s -o /dev/null -w '%{http_code}' -b "$JAR" -c "$JAR" \
  --data-urlencode "csrf=$CSRF" --data-urlencode "name=$USER" --data-urlencode "password=$PW" "$BASE/login")
[ "$CODE" = 303 ] || die "sign-in answered $CODE"

IDS=$(curl -s -H "Authorization: Bearer $KEY" "$BASE/v1/churn/watchlist?top=$NIDS" |
  python3 -c 'import json,sys; print(" ".join(str(c["id"]) for c in json.load(sys.stdin)["customers"]))')
[ -n "$IDS" ] || die "no customer ids from the watchlist"
read -r -a ID_ARR <<<"$IDS"

hit() { curl -s -o /dev/null -b "$JAR" -w '%{http_code}\n' "$BASE$1"; }
log "warm-up"
for _ in 1 2 3 4 5; do
  hit /dashboard >/dev/null
  for id in "${ID_ARR[@]}"; do hit "/dashboard/customers/$id" >/dev/null; done
done
MARK=$(wc -l <"$ACCESS")
log "$REQUESTS requests per page"
for ((i = 0; i < REQUESTS; i++)); do
  [ "$(hit /dashboard)" = 200 ] || die "overview did not answer 200"
  id=${ID_ARR[$((i % ${#ID_ARR[@]}))]}
  [ "$(hit "/dashboard/customers/$id")" = 200 ] || die "profile $id did not answer 200"
done
sleep 0.5
tail -n +"$((MARK + 1))" "$ACCESS" >"$OUT/measured.log"
cat >"$OUT/summary.py" <<'PY'
import json, sys
out, store = sys.argv[1], sys.argv[2]
ms = {"/dashboard": [], "/dashboard/customers/{id}": []}
for line in open(sys.argv[3]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if v.get("route") in ms and v.get("status") == 200:
        ms[v["route"]].append(v["ms"])
res = {}
print("| page | requests | p50 ms | p95 ms | max ms | target p95 ≤ 50 ms |")
print("|---|---|---|---|---|---|")
for route, xs in ms.items():
    xs.sort()
    if not xs:
        continue
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]
    r = {"requests": len(xs), "p50_ms": q(0.5), "p95_ms": q(0.95), "max_ms": xs[-1]}
    res[route] = r
    print(f"| `{route}` | {r['requests']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {'met' if r['p95_ms'] <= 50 else 'missed'} |")
json.dump({"store": store, "pages": res}, open(out, "w"), indent=2)
PY
python3 "$OUT/summary.py" "$OUT/results.json" "$STORE" "$OUT/measured.log"
