#!/usr/bin/env python3
"""Event → visible (issue 21): for each of --n customers known to the web
source, posts one `track` (Product Added) to a running `infogap serve`
and polls the API until the customer's churn probability, their
recommendations (history or scores) and their profile's event count have
all changed; prints the latencies (p50, p99, max)
as JSON. Run by scripts/bench-intake.sh --live."""
import argparse, csv, http.client, json, random, sys, time

p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--source-key", required=True)
p.add_argument("--admin-key", required=True)
p.add_argument("--links", required=True, help="demo/web/crm_links.csv")
p.add_argument("--n", type=int, default=50)
p.add_argument("--timestamp", default="2025-12-30T12:00:00Z")
a = p.parse_args()

c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
def call(method, path, key, body=None):
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    r = c.getresponse(); data = r.read()
    return r.status, (json.loads(data) if data else None)

users = [row["web_user"] for row in csv.DictReader(open(a.links))]
random.Random(7).shuffle(users)
lat, skipped = [], 0
for u in users:
    if len(lat) >= a.n: break
    st, found = call("POST", "/v1/customers/lookup", a.admin_key, {"key": f"web:{u}"})
    if st != 200: skipped += 1; continue
    cid = found["id"]
    st, ch = call("GET", f"/v1/customers/{cid}/churn", a.admin_key)
    # only customers the churn model scores (active in its window)
    if st != 200 or not isinstance(ch.get("probability"), float): skipped += 1; continue
    st, rec = call("GET", f"/v1/customers/{cid}/recommendations", a.admin_key)
    if st != 200: skipped += 1; continue
    key_of = lambda r: (r.get("history_items"), [(i["product"]["key"], round(i["score"], 6)) for i in r.get("items", [])])
    st, prof = call("GET", f"/v1/customers/{cid}", a.admin_key)
    events = sum(e["count"] for e in prof.get("events", []))
    t0 = time.perf_counter()
    st, r = call("POST", "/v1/track", a.source_key,
                 {"userId": u, "event": "Product Added", "properties": {"product_id": "P001"},
                  "timestamp": a.timestamp, "messageId": f"live-{time.time_ns()}-{u}"})
    assert st == 200, r
    while True:
        st, prof2 = call("GET", f"/v1/customers/{cid}", a.admin_key)
        st2, ch2 = call("GET", f"/v1/customers/{cid}/churn", a.admin_key)
        st3, rec2 = call("GET", f"/v1/customers/{cid}/recommendations", a.admin_key)
        if sum(e["count"] for e in prof2.get("events", [])) > events and st2 == 200 \
                and ch2.get("probability") != ch.get("probability") and st3 == 200 \
                and key_of(rec2) != key_of(rec):
            break
        if time.perf_counter() - t0 > 10:
            print(f"customer {cid}: no change within 10 s: {ch} / {ch2}", file=sys.stderr); break
        time.sleep(0.01)
    lat.append(time.perf_counter() - t0)
lat.sort()
q = lambda f: round(lat[min(len(lat) - 1, int(f * len(lat)))] * 1000, 1)
print(json.dumps({"events": len(lat), "skipped": skipped, "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0)}))
