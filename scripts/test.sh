#!/usr/bin/env bash
# The test command (README): every crate's tests on SQLite and, when a
# PostgreSQL server can be had, on PostgreSQL too.
#
# PostgreSQL: INFOGAP_TEST_PG when set (a URL the tests may create
# databases on); else a throwaway cluster started here from the local
# installation (Debian's postgresql: initdb on loopback in a temporary
# directory, stopped on exit). When neither is possible the PostgreSQL half
# is not run and this says so, loudly, at the start and at the end.
# INFOGAP_REQUIRE_PG=1 turns that into a failure (CI sets it).
# Extra arguments go to cargo test (e.g. --release -- --include-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_note=""
cleanup() { :; }
if [ -z "${INFOGAP_TEST_PG:-}" ]; then
  bindir=""
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir="$(pg_config --bindir)"
  else
    bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  fi
  if [ -n "$bindir" ] && [ -x "$bindir/initdb" ]; then
    dir="$(mktemp -d /tmp/infogap-pgtest.XXXXXX)"
    mkdir -p "$dir/sock"
    as_pg=()
    if [ "$(id -u)" = 0 ]; then
      chown -R postgres:postgres "$dir"
      as_pg=(runuser -u postgres --)
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
    if "${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U postgres -A trust --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 &&
       "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
         -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start </dev/null >/dev/null 2>&1; then
      export INFOGAP_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
      cleanup() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
      trap cleanup EXIT
      echo "== PostgreSQL half: throwaway cluster on 127.0.0.1:$port"
    else
      pg_note="PostgreSQL half NOT RUN: could not start a cluster with $bindir (see $dir/initdb.log, $dir/server.log)"
    fi
  else
    pg_note="PostgreSQL half NOT RUN: no PostgreSQL installed here (apt-get install postgresql, or set INFOGAP_TEST_PG)"
  fi
else
  echo "== PostgreSQL half: INFOGAP_TEST_PG"
fi
if [ -n "$pg_note" ]; then
  if [ "${INFOGAP_REQUIRE_PG:-}" = 1 ]; then
    echo "error: $pg_note (INFOGAP_REQUIRE_PG=1)" >&2
    exit 1
  fi
  echo "warning: $pg_note" >&2
fi

status=0
cargo test --workspace --locked "$@" || status=$?
if [ -n "$pg_note" ]; then
  echo "warning: $pg_note" >&2
fi
exit $status
