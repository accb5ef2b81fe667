#!/usr/bin/env bash
# Issue 17's serving target, measured with oha on loopback:
#
#   GET /v1/customers/{id}  and  GET /v1/customers/{id}/recommendations?k=10,
#   auth + policy + audit on, against the demo store and The Complete Journey:
#   p99 ≤ 5 ms at a fixed 1,000 req/s for 60 s with 0 errors, and maximum
#   throughput ≥ 0.3× that of nginx (Debian package) serving a static JSON file
#   of the same size, measured in the same run.
#
#   scripts/bench-serve.sh [demo|cj|all|selftest] [--duration 60] [--rate 1000]
#                          [--max-duration 15] [--conns 50] [--ids 8]
#                          [--roles admin,support] [--fresh] [--no-build]
#
# What it does, per store:
#   1. builds target/release/infogap if it is missing or older than the sources
#      (INFOGAP_BIN=path skips that), prepares the store under target/bench-serve/
#      (demo: `infogap quickstart`; cj: import of examples/completejourney plus
#      `train recs --algo item-knn` (RECS_ALGO) if the store has no recs model;
#      --fresh rebuilds both), and creates one API key per role of --roles
#      (default admin,support: support's answers are masked by the policy; a
#      role the policy refuses a route (403) is listed as skipped, not measured;
#      `--roles admin,support,analyst` adds masking on the recommendations too).
#   2. starts `infogap --db STORE serve --bind 127.0.0.1:PORT` ($SERVE_ARGS are
#      appended) and waits for GET /healthz.
#   3. looks up --ids customers (POST /v1/customers/lookup, keys of customers
#      with orders, the same ones every run); every oha run picks one of their
#      URLs at random per request (--urls-from-file), so one run covers all ids.
#   4. per route and key role: a 3 s warm-up; the fixed-rate run (`-q RATE
#      --latency-correction -z DURATION`, p50/p99/errors); the max-throughput run
#      (`-c CONNS -z MAX_DURATION`, no rate limit); and right after it the same
#      max-throughput run against nginx serving, for every id, the very bytes the
#      server answered (same size, same JSON) from a static file.
#   `selftest` runs only the nginx half on made-up 2 KB files (tooling check).
#
# How to read it: the markdown table (also target/bench-serve/results.json,
# raw oha reports in target/bench-serve/raw/) has, per store × route × key role:
#   p50/p99 ms, errors   of the fixed-rate run (latency-corrected: a request's
#                        time counts from when it was due, so a server falling
#                        behind shows in p99); errors = transport errors + non-2xx.
#   max req/s            successful answers per second of the unlimited run,
#   nginx req/s          the same for nginx, measured a few seconds later;
#   ratio                max req/s ÷ nginx req/s (target ≥ 0.3).
# oha, the server and nginx share this machine's cores, so the absolute figures
# depend on the machine and its load; the same-run ratio is the figure to compare.
# All runs send `Authorization: Bearer KEY` (nginx ignores it) and no
# Accept-Encoding (oha --disable-compression), so both send identical bodies.
#
# Time: about 5 minutes per store at the defaults (3 measured rows: support may
# not read recommendations). Tools: oha (`cargo install oha --locked`, ~7 min) and nginx (apt-get) are
# installed when missing. python3 parses JSON. Processes started here are
# stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HELPER="$ROOT/scripts/bench-serve/helper.py"
OUT=${BENCH_DIR:-$ROOT/target/bench-serve}
RAW="$OUT/raw"

TARGET=all DURATION=60 RATE=1000 MAX_DURATION=15 CONNS=50 NIDS=8
ROLES=admin,support FRESH=0 BUILD=1
RECS_ALGO=${RECS_ALGO:-item-knn}   # personal and quick (10 s on CJ) instead of the `auto` search
SERVE_ARGS=${SERVE_ARGS:-}

usage() { sed -n '10,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit "${1:-2}"; }
die() { echo "bench-serve: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
posint() { [[ $2 =~ ^[1-9][0-9]*$ ]] || die "$1 wants a positive integer, got '$2'"; }

while [ $# -gt 0 ]; do
  case $1 in
    demo | cj | all | selftest) TARGET=$1 ;;
    --duration) posint "$1" "${2-}"; DURATION=$2; shift ;;
    --rate) posint "$1" "${2-}"; RATE=$2; shift ;;
    --max-duration) posint "$1" "${2-}"; MAX_DURATION=$2; shift ;;
    --conns) posint "$1" "${2-}"; CONNS=$2; shift ;;
    --ids) posint "$1" "${2-}"; NIDS=$2; shift ;;
    --roles) [[ ${2-} =~ ^[a-z][a-z0-9_-]*(,[a-z][a-z0-9_-]*)*$ ]] || die "--roles takes role names: admin,support"; ROLES=$2; shift ;;
    --fresh) FRESH=1 ;;
    --no-build) BUILD=0 ;;
    -h | --help) usage 0 ;;
    *) echo "bench-serve: unknown argument '$1'" >&2; usage ;;
  esac
  shift
done
case $TARGET in all) STORES="demo cj" ;; selftest) STORES="" ;; *) STORES=$TARGET ;; esac

# --- processes started here, stopped on exit --------------------------------
SERVER_PID="" NGINX_PID="" OHA_PID="" WORK=""
cleanup() {
  set +e
  if [ -n "$OHA_PID" ]; then kill "$OHA_PID" 2>/dev/null; wait "$OHA_PID" 2>/dev/null; fi
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  if [ -n "$NGINX_PID" ]; then kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null; fi
  [ -n "$WORK" ] && rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------
ensure_tools() {
  command -v python3 >/dev/null || die "python3 is needed"
  command -v curl >/dev/null || die "curl is needed"
  export PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin:/usr/sbin"
  if ! command -v oha >/dev/null; then
    log "oha missing: cargo install oha --locked (takes several minutes)"
    cargo install oha --locked || die "cargo install oha failed"
  fi
  oha --help | grep -q -- --urls-from-file || die "this oha ($(oha --version)) lacks --urls-from-file; cargo install oha --locked --force"
  if ! command -v nginx >/dev/null; then
    log "nginx missing: apt-get install nginx"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get install -y nginx || { $sudo apt-get update && $sudo apt-get install -y nginx; } ||
      die "apt-get install nginx failed"
  fi
}

# --- the binary -------------------------------------------------------------
BIN=""
ensure_binary() {
  if [ -n "${INFOGAP_BIN:-}" ]; then
    BIN=$INFOGAP_BIN
    [ -x "$BIN" ] || die "INFOGAP_BIN=$BIN is not an executable"
  else
    BIN="$ROOT/target/release/infogap"
    local stale=""
    if [ -x "$BIN" ]; then
      stale=$(cd "$ROOT" && find crates Cargo.toml Cargo.lock -newer "$BIN" -type f \
        \( -name '*.rs' -o -name '*.toml' -o -name '*.sql' -o -name Cargo.lock \) -print -quit)
    fi
    if [ ! -x "$BIN" ] || { [ -n "$stale" ] && [ "$BUILD" = 1 ]; }; then
      log "building the release binary${stale:+ ($stale is newer)}"
      (cd "$ROOT" && cargo build --release --locked -p infogap-cli) || die "cargo build failed"
    elif [ -n "$stale" ]; then
      log "warning: $BIN is older than $stale (--no-build)"
    fi
  fi
  # The server of issue 17 must be in this binary.
  "$BIN" serve --help >/dev/null 2>&1 ||
    die "'$BIN' has no 'serve' command: issue 17's server is not built into it yet"
  "$BIN" keys create --help >/dev/null 2>&1 ||
    die "'$BIN' has no 'keys create' command: issue 17's API keys are not built into it yet"
}

# --- stores -----------------------------------------------------------------
prepare_store() { # NAME -> prints the store path
  local name=$1 db
  case $name in
    demo)
      db="$OUT/demo/infogap.db"
      [ "$FRESH" = 1 ] && rm -rf "$OUT/demo"
      if [ ! -f "$db" ]; then
        log "demo: infogap quickstart (trains the recs model too)"
        "$BIN" quickstart --dir "$OUT/demo" --quiet >"$OUT/demo-quickstart.log" 2>&1 ||
          { tail -20 "$OUT/demo-quickstart.log" >&2; die "quickstart failed"; }
      fi
      ;;
    cj)
      db="$OUT/cj.db"
      [ "$FRESH" = 1 ] && rm -f "$db" "$db"-wal "$db"-shm "$db".snapshot
      if [ ! -f "$db" ]; then
        [ -d "$ROOT/../shared/data/completejourney" ] || die "The Complete Journey is not in $ROOT/../shared/data"
        log "cj: import of The Complete Journey"
        "$BIN" --db "$db" import --config "$ROOT/examples/completejourney/infogap.toml" --quiet \
          >"$OUT/cj-import.log" 2>&1 || { tail -20 "$OUT/cj-import.log" >&2; die "cj import failed"; }
      fi
      ;;
  esac
  if ! python3 "$HELPER" has-recs "$db"; then
    log "$name: train recs --algo $RECS_ALGO"
    "$BIN" --db "$db" train recs --algo "$RECS_ALGO" --quiet >/dev/null || die "train recs failed"
  fi
  echo "$db"
}

create_key() { # DB ROLE -> prints the bearer secret (empty if the role is refused)
  local out err="$WORK/keys-create.err"
  if out=$("$BIN" --db "$1" keys create --name "bench-serve-$2-$(date +%s)" --role "$2" --json 2>"$err"); then
    printf '%s' "$out" | python3 "$HELPER" field key
  else
    log "warning: keys create --role $2 failed: $(cat "$err")"
  fi
}

# --- servers ----------------------------------------------------------------
wait_http() { # URL PID LOGFILE WHAT
  local i
  for i in $(seq 1 600); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -30 "$3" >&2; die "$4 exited before answering $1"; }
    sleep 0.2
  done
  tail -30 "$3" >&2
  die "$4 did not answer $1 within 120 s"
}

SPORT=""
start_server() { # DB NAME
  SPORT=$(python3 "$HELPER" port)
  log "$2: infogap serve on 127.0.0.1:$SPORT"
  # shellcheck disable=SC2086
  "$BIN" --db "$1" serve --bind "127.0.0.1:$SPORT" $SERVE_ARGS >"$OUT/serve-$2.log" 2>&1 &
  SERVER_PID=$!
  wait_http "http://127.0.0.1:$SPORT/healthz" "$SERVER_PID" "$OUT/serve-$2.log" "infogap serve"
}
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

NPORT="" NGX="" NGINX_VERSION=""
start_nginx() {
  [ -z "$NGINX_PID" ] || return 0
  NGX="$WORK/nginx"
  mkdir -p "$NGX/www" "$NGX/tmp"
  # Workers run as `nobody` when this runs as root: everything they read must be world-readable.
  chmod 755 "$WORK" "$NGX" "$NGX/www"
  NPORT=$(python3 "$HELPER" port)
  NGINX_VERSION=$(nginx -v 2>&1 | sed 's|.*nginx/||')
  # Debian's stock settings (sendfile, tcp_nopush, keep-alive defaults), no access log.
  cat >"$NGX/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    types { application/json json; }
    default_type application/json;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    server {
        listen 127.0.0.1:$NPORT;
        root $NGX/www;
    }
}
EOF
  nginx -t -q -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" 2>"$NGX/test.log" || { cat "$NGX/test.log" >&2; die "nginx config rejected"; }
  nginx -p "$NGX" -e "$NGX/error.log" -c "$NGX/nginx.conf" >"$NGX/stdout.log" 2>&1 &
  NGINX_PID=$!
  log "nginx $NGINX_VERSION on 127.0.0.1:$NPORT"
  # nginx answers 404 on / (no index); wait until it answers at all.
  local i
  for i in $(seq 1 100); do
    curl -sS -o /dev/null "http://127.0.0.1:$NPORT/" 2>/dev/null && return 0
    kill -0 "$NGINX_PID" 2>/dev/null || { cat "$NGX/error.log" "$NGX/stdout.log" >&2; die "nginx exited"; }
    sleep 0.1
  done
  die "nginx did not start"
}

# --- oha --------------------------------------------------------------------
run_oha() { # NAME KEY URLFILE oha-args... ; writes $RAW/NAME.json
  local name=$1 key=$2 urls=$3
  shift 3
  # In the background so that a TERM to this script stops it at once (see cleanup).
  oha --no-tui --output-format json --disable-compression -t 10s -w \
    -H "Authorization: Bearer $key" "$@" --urls-from-file "$urls" >"$RAW/$name.json" &
  OHA_PID=$!
  wait "$OHA_PID" || die "oha failed ($name)"
  OHA_PID=""
  log "  $name: $(python3 "$HELPER" brief "$RAW/$name.json")"
}
warm_up() { # KEY URLFILE
  oha --no-tui --disable-compression -t 10s -z 3s -c 10 -H "Authorization: Bearer $1" \
    --urls-from-file "$2" >/dev/null 2>&1 || true
}

# --- one store --------------------------------------------------------------
MANIFEST="" AUDIT_META=""
lookup_ids() { # KEY KEYS... -> prints distinct customer ids
  local key=$1 k body out
  shift
  for k in "$@"; do
    body=$(python3 -c 'import json,sys; print(json.dumps({"key": sys.argv[1]}))' "$k")
    out=$(curl -sS -X POST -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
      -d "$body" -w '\n%{http_code}' "http://127.0.0.1:$SPORT/v1/customers/lookup") ||
      die "lookup of $k: curl failed"
    [ "${out##*$'\n'}" = 200 ] || die "POST /v1/customers/lookup {\"key\": \"$k\"} answered ${out##*$'\n'}: ${out%$'\n'*}"
    printf '%s' "${out%$'\n'*}" | python3 "$HELPER" field id
  done | awk '!seen[$0]++'
}

bench_store() { # NAME
  local name=$1 db role key route path ids id nb code size total n note tag urls ngx_urls
  db=$(prepare_store "$name")
  declare -A KEYS=()
  for role in ${ROLES//,/ }; do KEYS[$role]=$(create_key "$db" "$role"); done
  [ -n "${KEYS[admin]:-}" ] || KEYS[admin]=$(create_key "$db" admin)
  [ -n "${KEYS[admin]}" ] || die "$name: could not create an admin key"

  local audit0; audit0=$(stat -c %s "$db.audit" 2>/dev/null || echo 0)
  start_server "$db" "$name"
  local kind=email ns=""
  [ "$name" = cj ] && kind=customer ns=household
  mapfile -t keys < <(python3 "$HELPER" pick-keys "$db" "$kind" "$ns" "$NIDS")
  [ ${#keys[@]} -gt 0 ] || die "$name: no customer with orders found in $db"
  lookup_ids "${KEYS[admin]}" "${keys[@]}" >"$WORK/$name.ids" || die "$name: customer lookup failed"
  mapfile -t ids <"$WORK/$name.ids"
  log "$name: ${#keys[@]} customers looked up by key (keys not logged: they can be emails) -> ids ${ids[*]}"
  local idlist; idlist=$(IFS=,; echo "${ids[*]}")

  for route in customer recommendations; do
    for role in ${ROLES//,/ }; do
      key=${KEYS[$role]:-}
      tag="$name-$route-$role"
      if [ -z "$key" ]; then
        printf '%s\t%s\t%s\t%s\t\t\t\t\t%s\n' "$name" "$route" "$role" "$idlist" "no $role key" >>"$MANIFEST"
        continue
      fi
      log "$tag"
      urls="$WORK/$tag.urls" ngx_urls="$WORK/$tag.nginx-urls"
      : >"$urls"; : >"$ngx_urls"
      mkdir -p "$NGX/www/$tag"; chmod 755 "$NGX/www/$tag"
      note="" total=0 n=0
      for id in "${ids[@]}"; do
        path="/v1/customers/$id"
        [ "$route" = recommendations ] && path="$path/recommendations?k=10"
        # The server's answer, kept as nginx's static file (same bytes, same size).
        read -r code size < <(curl -sS -o "$NGX/www/$tag/$id.json" -w '%{http_code} %{size_download}\n' \
          -H "Authorization: Bearer $key" "http://127.0.0.1:$SPORT$path")
        chmod 644 "$NGX/www/$tag/$id.json"
        if [ "$code" != 200 ]; then
          note="HTTP ${code:-none} on $path"
          log "  $note: $(head -c 300 "$NGX/www/$tag/$id.json")"
          break
        fi
        total=$((total + size)) n=$((n + 1))
        echo "http://127.0.0.1:$SPORT$path" >>"$urls"
        echo "http://127.0.0.1:$NPORT/$tag/$id.json" >>"$ngx_urls"
      done
      nb=""; [ "$n" -gt 0 ] && nb=$((total / n))
      if [ -n "$note" ]; then
        printf '%s\t%s\t%s\t%s\t%s\t\t\t\t%s\n' "$name" "$route" "$role" "$idlist" "$nb" "$note" >>"$MANIFEST"
        continue
      fi
      log "  bodies: mean $nb bytes over $n ids"
      warm_up "$key" "$urls"
      run_oha "$tag-rate" "$key" "$urls" -z "${DURATION}s" -q "$RATE" --latency-correction
      run_oha "$tag-max" "$key" "$urls" -z "${MAX_DURATION}s" -c "$CONNS"
      warm_up "$key" "$ngx_urls"
      run_oha "$tag-nginx" "$key" "$ngx_urls" -z "${MAX_DURATION}s" -c "$CONNS"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' "$name" "$route" "$role" "$idlist" "$nb" \
        "$RAW/$tag-rate.json" "$RAW/$tag-max.json" "$RAW/$tag-nginx.json" >>"$MANIFEST"
    done
  done
  stop_server
  # Evidence that the audit trail was written (issue 17 keeps it in <db>.audit).
  local audit1; audit1=$(stat -c %s "$db.audit" 2>/dev/null || echo 0)
  log "$name: audit trail $db.audit grew by $((audit1 - audit0)) bytes (now $audit1)"
  AUDIT_META="$AUDIT_META audit_growth_bytes_$name=$((audit1 - audit0))"
  # One access-log line per request adds up (hundreds of thousands per max run): keep the tail.
  local slog="$OUT/serve-$name.log"
  log "$name: server log $(wc -l <"$slog") lines; kept the last 1000 in $slog"
  tail -n 1000 "$slog" >"$slog.tail" && mv "$slog.tail" "$slog"
}

# --- selftest: the nginx half only -------------------------------------------
selftest() {
  local tag=selftest i urls="$WORK/selftest.urls"
  mkdir -p "$NGX/www/$tag"; chmod 755 "$NGX/www/$tag"
  : >"$urls"
  for i in 1 2 3; do
    # A made-up JSON answer padded to 2,048 bytes.
    python3 -c 'import json,sys; s=json.dumps({"id": int(sys.argv[1]), "items": [{"product": "P%05d" % j, "score": 1 / (j + 1)} for j in range(30)]}); print(s.ljust(2047))' "$i" \
      >"$NGX/www/$tag/$i.json"
    chmod 644 "$NGX/www/$tag/$i.json"
    echo "http://127.0.0.1:$NPORT/$tag/$i.json" >>"$urls"
  done
  log "selftest: nginx on 3 files of $(stat -c %s "$NGX/www/$tag/1.json") bytes"
  warm_up none "$urls"
  run_oha "$tag-rate" none "$urls" -z "${DURATION}s" -q "$RATE" --latency-correction
  run_oha "$tag-max" none "$urls" -z "${MAX_DURATION}s" -c "$CONNS"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n' nginx static none "1,2,3" 2048 \
    "$RAW/$tag-rate.json" "$RAW/$tag-max.json" "$RAW/$tag-max.json" >>"$MANIFEST"
}

# --- main -------------------------------------------------------------------
mkdir -p "$OUT" "$RAW"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/bench-serve.XXXXXX")
MANIFEST="$WORK/manifest.tsv"
: >"$MANIFEST"
[ "$TARGET" = selftest ] || ensure_binary   # first: fails fast if the server is not in it
ensure_tools
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
start_nginx
if [ "$TARGET" = selftest ]; then
  selftest
else
  for s in $STORES; do bench_store "$s"; done
fi
RESULTS="$OUT/results.json"
[ "$TARGET" = selftest ] && RESULTS="$OUT/selftest.json"
python3 "$HELPER" report "$MANIFEST" "$RESULTS" \
  "started=$STARTED" "target=$TARGET" "rate=$RATE" "duration=$DURATION" "max_duration=$MAX_DURATION" \
  "conns=$CONNS" "nginx_version=$NGINX_VERSION" "oha_version=$(oha --version | awk '{print $2}')" \
  "infogap=${BIN:-}" "cores=$(nproc)" "serve_args=$SERVE_ARGS" $AUDIT_META
