#!/usr/bin/env python3
"""Load generator of scripts/bench-intake.sh: posts Segment-spec track
messages to a running `infogap serve` for a fixed time from several
keep-alive connections, in batches of --batch (1: single /v1/track calls),
and prints requests, events acknowledged, events/s and latency percentiles
as JSON. Then inserts the same rows with Python's sqlite3 (one transaction
per batch, WAL, synchronous=NORMAL) into an unindexed table for the
comparison."""
import argparse, http.client, json, os, sqlite3, statistics, sys, threading, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--key", required=True)
p.add_argument("--seconds", type=float, default=60)
p.add_argument("--batch", type=int, default=100)
p.add_argument("--connections", type=int, default=4)
p.add_argument("--sqlite-out", default="")
p.add_argument("--sqlite-rows", type=int, default=0, help="no HTTP load: only insert this many rows with sqlite3")
a = p.parse_args()

RUN = f"r{int(time.time() * 1000)}"
stop = time.time() + a.seconds
lat, acked, lock = [], [0], threading.Lock()

def messages(conn_id, n):
    return [{"type": "track", "userId": f"bench-{conn_id}-{(n + i) % 500}", "event": "Product Viewed",
             "properties": {"product_id": f"P{(n + i) % 200:03d}"},
             "messageId": f"{RUN}-b{conn_id}-{n + i}"} for i in range(a.batch)]

def body(conn_id, n):
    msgs = messages(conn_id, n)
    if a.batch == 1:
        m = dict(msgs[0]); m.pop("type")
        return "/v1/track", json.dumps(m)
    return "/v1/batch", json.dumps({"batch": msgs})

def worker(cid):
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
    n, mine, got = 0, [], 0
    while time.time() < stop:
        path, b = body(cid, n)
        t0 = time.perf_counter()
        c.request("POST", path, b, {"Authorization": f"Bearer {a.key}", "Content-Type": "application/json"})
        r = c.getresponse(); data = r.read()
        mine.append(time.perf_counter() - t0)
        if r.status != 200:
            print(f"status {r.status}: {data[:200]!r}", file=sys.stderr); break
        got += json.loads(data)["accepted"]
        n += a.batch
    with lock:
        lat.extend(mine); acked[0] += got

if a.sqlite_rows:
    stop = time.time()
    acked[0] = a.sqlite_rows
t0 = time.time()
ts = [threading.Thread(target=worker, args=(i,)) for i in range(a.connections)]
for t in ts: t.start()
for t in ts: t.join()
wall = time.time() - t0
lat.sort()
q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] * 1000 if lat else float("nan")
out = {"batch": a.batch, "connections": a.connections, "seconds": round(wall, 2),
       "requests": len(lat), "events": acked[0], "events_per_second": round(acked[0] / wall),
       "p50_ms": round(q(0.5), 2), "p99_ms": round(q(0.99), 2), "max_ms": round(q(1.0), 2)}

if a.sqlite_out:
    # the same rows into a bare table, one transaction per batch
    if os.path.exists(a.sqlite_out): os.remove(a.sqlite_out)
    db = sqlite3.connect(a.sqlite_out, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL"); db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE t (source TEXT, message_id TEXT, body TEXT)")
    n = acked[0]; t1 = time.perf_counter(); done = 0
    while done < n:
        k = min(a.batch, n - done)
        rows = [("web", m["messageId"], json.dumps(m)) for m in messages(0, done)[:k]]
        db.execute("BEGIN"); db.executemany("INSERT INTO t VALUES (?, ?, ?)", rows); db.execute("COMMIT")
        done += k
    el = time.perf_counter() - t1
    out["sqlite3_rows_per_second"] = round(n / el) if el > 0 else None
print(json.dumps(out))
