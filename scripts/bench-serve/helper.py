#!/usr/bin/env python3
"""Helpers of scripts/bench-serve.sh (JSON, SQLite and the final report).

  helper.py port                          a free TCP port on 127.0.0.1
  helper.py field NAME                    field NAME of the JSON object on stdin
  helper.py has-recs DB                   exit 0 if the store holds a `recs` model
  helper.py pick-keys DB KIND NS N        N lookup keys of customers who have orders
  helper.py brief FILE                    one line from an oha JSON report
  helper.py report MANIFEST OUT.json ...  results.json and a markdown table
"""
import json
import sqlite3
import sys

P99_MAX_MS = 5.0
RATIO_MIN = 0.3


def port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


def field(name):
    text = sys.stdin.read()
    try:
        v = json.loads(text)[name]
    except (ValueError, KeyError, TypeError):
        sys.exit(f"no field '{name}' in: {text[:300]!r}")
    print(v)


def has_recs(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        n = con.execute("select count(*) from models where kind = 'recs'").fetchone()[0]
    except sqlite3.Error:
        n = 0
    sys.exit(0 if n else 1)


def pick_keys(db, kind, ns, n):
    """Keys of N customers with at least one order, spread over the id range
    by a fixed hash (the same customers every run)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    q = """
      select i.namespace, i.kind, i.value, i.customer_id
      from identities i
      where i.kind = ? and (? = '' or i.namespace = ?) and i.shared = 0
        and i.customer_id in (select c.customer_id from orders o
                              join identities c on c.id = o.identity_id)
      order by (i.customer_id * 2654435761) % 4294967291, i.value
    """
    seen = set()
    for ns_, kind_, value, cid in con.execute(q, (kind, ns, ns)):
        if cid in seen:
            continue
        seen.add(cid)
        print(value if kind_ in ("email", "phone") else f"{ns_}:{value}")
        if len(seen) >= int(n):
            break


def load(path):
    with open(path) as f:
        return json.load(f)


def stats(path):
    """The figures of one oha run. Errors are transport errors (except the
    run's deadline, which is oha's, not the server's) plus non-2xx answers."""
    r = load(path)
    status = {k: int(v) for k, v in r.get("statusCodeDistribution", {}).items()}
    errs = {
        k: int(v)
        for k, v in r.get("errorDistribution", {}).items()
        if k != "aborted due to deadline"
    }
    ok = sum(v for k, v in status.items() if k.startswith("2"))
    total_s = r["summary"]["total"] or float("nan")
    pct = r.get("latencyPercentiles", {})
    ms = lambda k: None if pct.get(k) is None else round(pct[k] * 1000, 3)  # noqa: E731
    return {
        "ok_rps": round(ok / total_s, 1),
        "requests": ok + sum(v for k, v in status.items() if not k.startswith("2")) + sum(errs.values()),
        "p50_ms": ms("p50"),
        "p99_ms": ms("p99"),
        "p999_ms": ms("p99.9"),
        "max_ms": None if r["summary"].get("slowest") is None else round(r["summary"]["slowest"] * 1000, 3),
        "errors": sum(errs.values()) + sum(v for k, v in status.items() if not k.startswith("2")),
        "status": status,
        "error_kinds": errs,
    }


def brief(path):
    s = stats(path)
    print(
        f"{s['ok_rps']:.0f} ok req/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
        f"errors {s['errors']}, status {s['status']}"
        + (f", {s['error_kinds']}" if s["error_kinds"] else "")
    )


def report(manifest, out, meta_pairs):
    meta = {}
    for p in meta_pairs:
        k, v = p.split("=", 1)
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                pass
        meta[k] = v
    rows = []
    with open(manifest) as f:
        for line in f:
            if not line.strip():
                continue
            store, route, role, ids, nbytes, rate_f, max_f, ngx_f, note = line.rstrip("\n").split("\t")
            row = {"store": store, "route": route, "role": role, "customer_ids": [int(x) for x in ids.split(",") if x]}
            row["body_bytes_mean"] = int(nbytes) if nbytes else None
            if note:
                row["skipped"] = note
                rows.append(row)
                continue
            rs, ms_, ns = stats(rate_f), stats(max_f), stats(ngx_f)
            ratio = ms_["ok_rps"] / ns["ok_rps"] if ns["ok_rps"] else None
            row.update(
                {
                    "rate_target_rps": float(meta.get("rate", "nan")),
                    "rate_achieved_rps": rs["ok_rps"],
                    "rate_requests": rs["requests"],
                    "rate_p50_ms": rs["p50_ms"],
                    "rate_p99_ms": rs["p99_ms"],
                    "rate_p999_ms": rs["p999_ms"],
                    "rate_max_ms": rs["max_ms"],
                    "rate_errors": rs["errors"],
                    "rate_status": rs["status"],
                    "rate_error_kinds": rs["error_kinds"],
                    "max_rps": ms_["ok_rps"],
                    "max_p99_ms": ms_["p99_ms"],
                    "max_errors": ms_["errors"],
                    "nginx_max_rps": ns["ok_rps"],
                    "nginx_max_errors": ns["errors"],
                    "ratio": None if ratio is None else round(ratio, 3),
                    "pass": {
                        "p99_le_5ms": rs["p99_ms"] is not None and rs["p99_ms"] <= P99_MAX_MS,
                        "zero_errors": rs["errors"] == 0,
                        "ratio_ge_0_3": ratio is not None and ratio >= RATIO_MIN,
                    },
                    "raw": {"rate": rate_f, "max": max_f, "nginx": ngx_f},
                }
            )
            row["pass"]["all"] = all(row["pass"].values())
            rows.append(row)
    doc = {"meta": meta, "targets": {"p99_ms_max": P99_MAX_MS, "errors": 0, "ratio_min": RATIO_MIN}, "results": rows}
    with open(out, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")

    yes = lambda b: "yes" if b else "**NO**"  # noqa: E731
    print(
        f"\n{meta.get('rate')} req/s for {meta.get('duration')} s (p99, errors); "
        f"maximum: -c {meta.get('conns')} for {meta.get('max_duration')} s, "
        f"nginx {meta.get('nginx_version', '')} on a file of the same size right after; "
        f"{meta.get('started', '')}\n"
    )
    print("| store | route | key | p50 ms | p99 ms | errors | max req/s | nginx req/s | ratio | p99 ≤ 5 | 0 errors | ratio ≥ 0.3 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "skipped" in r:
            print(f"| {r['store']} | {r['route']} | {r['role']} | skipped: {r['skipped']} |" + " |" * 8)
            continue
        p = r["pass"]
        print(
            f"| {r['store']} | {r['route']} | {r['role']} | {r['rate_p50_ms']:.2f} | {r['rate_p99_ms']:.2f} "
            f"| {r['rate_errors']} | {r['max_rps']:.0f} | {r['nginx_max_rps']:.0f} | {r['ratio']:.2f} "
            f"| {yes(p['p99_le_5ms'])} | {yes(p['zero_errors'])} | {yes(p['ratio_ge_0_3'])} |"
        )
    # A route the policy refuses to a role (403) is the policy at work, not a
    # failure; anything else that kept a row from being measured is.
    measured = [r for r in rows if "skipped" not in r]
    broken = [r for r in rows if "skipped" in r and not r["skipped"].startswith("HTTP 403")]
    if measured and all(r["pass"]["all"] for r in measured) and not broken:
        print("\nAll targets met.")
    else:
        print("\nTargets NOT all met (see above).")
    print(f"Written: {out}")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "port":
        port()
    elif cmd == "field":
        field(args[0])
    elif cmd == "has-recs":
        has_recs(args[0])
    elif cmd == "pick-keys":
        pick_keys(*args)
    elif cmd == "brief":
        brief(args[0])
    elif cmd == "report":
        report(args[0], args[1], args[2:])
    else:
        sys.exit(f"unknown helper command {cmd}")


if __name__ == "__main__":
    main()
