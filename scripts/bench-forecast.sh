#!/bin/bash
# Same-run comparison on AirPassengers, three alternating rounds:
#  - statsmodels: the anchor script (its Holt-Winters row b: cold fit, after
#    the script's SES fits, and the median of 5);
#  - infogap in the same protocol: `infogap bench forecast` (rows a1, a2 as the
#    script's SES rows, then auto and hw-mul against row b; cold and median of 5);
#  - infogap's first fit of a fresh process: `infogap eval forecast --repeat 5`
#    (`fit_seconds`, and the median of 5 more).
#   cargo build --release --locked -p infogap-cli
#   PY=/work/venv/bin/python scripts/bench-forecast.sh
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED:-$ROOT/../shared}
PY=${PY:-python3}
F=$SHARED/data/airpassengers/AirPassengers.csv; B=$ROOT/target/release/infogap
W=$(mktemp -d)
cp "$SHARED"/anchors/{hw_airpassengers.py,_common.py} "$W"/
echo "load: $(cat /proc/loadavg)"
for round in 1 2 3; do
  (cd "$W" && ANCHORS_DATA=$SHARED/data $PY hw_airpassengers.py >/dev/null 2>&1)
  for i in 1 2 3; do $B bench forecast --csv $F --holdout 12 --season 12 --repeat 5 --json > "$W/ours.$i.json"; done
  python3 - "$W" <<'EOF'
import json, sys
w = sys.argv[1]
sm = json.load(open(f'{w}/results/hw_airpassengers.json'))['results']
pairs = [('a1', 'a1_SES(alpha=0.2, l0 estimated)'), ('a2', 'a2_SES(alpha=0.2, l0=y[0])'),
         ('auto', 'b_HoltWinters(add trend, mul season 12, init=estimated)'),
         ('hw-mul', 'b_HoltWinters(add trend, mul season 12, init=estimated)')]
for i in (1, 2, 3):
    rows = {r['id']: r for r in json.load(open(f'{w}/ours.{i}.json'))['rows']}
    for ours, theirs in pairs:
        s, o = sm[theirs], rows[ours]
        print('%-7s statsmodels cold %8.3f ms median5 %8.3f ms MAPE %.4f | infogap %-11s cold %6.3f ms median5 %6.3f ms MAPE %.4f | ratio cold %6.1fx median %6.1fx'
              % (ours, s['fit_s_cold'] * 1e3, s['fit_s_median5'] * 1e3, s['mape_pct'], o['method'],
                 o['fit_seconds_cold'] * 1e3, o['fit_seconds_median'] * 1e3, o['mape'],
                 s['fit_s_cold'] / o['fit_seconds_cold'], s['fit_s_median5'] / o['fit_seconds_median']))
EOF
  for i in 1 2 3; do $B eval forecast --csv $F --holdout 12 --season 12 --method auto --json --repeat 5 | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('eval forecast (fresh process): first fit %.3f ms  median5 %.3f ms  MAPE %.4f  %s' % (d['fit_seconds']*1e3, d['fit_seconds_median']*1e3, d['mape'], d['method']))"; done
done
echo "load: $(cat /proc/loadavg)"
