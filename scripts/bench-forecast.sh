#!/bin/bash
# Same-run comparison on AirPassengers: statsmodels Holt-Winters (the anchor
# script, cold fit and median of 5) against infogap `auto` (--repeat 5: first
# fit of the process and median of 5 more), three alternating rounds.
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
  python3 -c "
import json
v=json.load(open('$W/results/hw_airpassengers.json'))['results']['b_HoltWinters(add trend, mul season 12, init=estimated)']
print('statsmodels  cold %.2f ms  median5 %.2f ms  MAPE %.4f' % (v['fit_s_cold']*1e3, v['fit_s_median5']*1e3, v['mape_pct']))"
  for i in 1 2 3; do $B eval forecast --csv $F --holdout 12 --season 12 --method auto --json --repeat 5 | python3 -c "
import json,sys; d=json.load(sys.stdin)
print('infogap auto cold %.2f ms  median5 %.2f ms  MAPE %.4f  %s' % (d['fit_seconds']*1e3, d['fit_seconds_median']*1e3, d['mape'], d['method']))"; done
done
echo "load: $(cat /proc/loadavg)"
