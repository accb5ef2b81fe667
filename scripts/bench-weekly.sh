#!/bin/bash
# `auto` on 40 real weekly series (The Complete Journey's largest product
# categories, 2017), 8-week holdouts, against naive baselines; both estimations.
#   cargo build --release --locked -p infogap-cli
#   PY=/work/venv/bin/python scripts/bench-weekly.sh        # PY needs pandas + pyarrow
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python3}; B=$ROOT/target/release/infogap
W=$(mktemp -d)
$PY "$ROOT/scripts/cj-weekly-series.py" "$W"
for window in "$W" "$W/pre"; do
  for f in "$window"/cat*.csv; do
    for e in amse mle; do
      $B eval forecast --csv "$f" --holdout 8 --season 1 --method auto --estimation $e --json \
        | python3 -c "import json,sys; d=json.load(sys.stdin); print('$f', '$e', d['method'].replace(' ', '_'), d['mape'])"
    done
  done > "$window/res.txt"
  python3 - "$window" <<'PYEOF'
import collections, csv, glob, os, statistics, sys
w = sys.argv[1]
by = collections.defaultdict(dict)
for line in open(os.path.join(w, "res.txt")):
    f, e, _, m = line.split()
    by[f][e] = float(m)
rows = collections.defaultdict(list)
for f in sorted(by):
    v = [float(r["value"]) for r in csv.DictReader(open(f))]
    tr, te = v[:-8], v[-8:]
    mape = lambda fc: 100 * statistics.mean(abs(a - b) / a for a, b in zip(te, fc) if a != 0)
    rows["auto (AMSE-8, default)"].append(by[f]["amse"])
    rows["auto --estimation mle"].append(by[f]["mle"])
    rows["naive (last week)"].append(mape([tr[-1]] * 8))
    rows["mean of the last 4 weeks"].append(mape([statistics.mean(tr[-4:])] * 8))
n = len(by); weeks = len(tr) + 8
print(f"{n} series of {weeks} weeks, holdout = weeks {weeks - 7}-{weeks}")
for k, x in rows.items():
    print(f"  {k:<26} MAPE mean {statistics.mean(x):7.3f}  median {statistics.median(x):7.3f}")
PYEOF
done
