//! The event intake over HTTP against `infogap serve` as a process:
//! Segment-spec batches journaled and applied (anonymous → identified
//! merge with provenance, duplicates, bad messages by index), erased and
//! non-consenting people dropped and counted, the journal sealed, and
//! nothing acknowledged lost or doubled by `kill -9`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::json as cli_json;
use crate::share::{Server, demo_store, http, key};

/// A POST that gives up quietly when the server dies under it (the drill
/// kills it mid-request): the status and body, or None.
pub(crate) fn try_post(
    addr: std::net::SocketAddr,
    path: &str,
    key: &str,
    body: &str,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let (_, b) = text.split_once("\r\n\r\n")?;
    let b = match (b.find('{'), b.rfind('}')) {
        (Some(x), Some(y)) if y >= x => b[x..=y].to_string(),
        _ => b.to_string(),
    };
    Some((status, b))
}

/// Polls `infogap intake status` until nothing is pending.
fn drained(dir: &Path) -> Value {
    let t0 = Instant::now();
    loop {
        let s = cli_json(dir, &["intake", "status", "--json"]);
        if s["pending"] == 0 {
            return s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the worker left messages pending: {s}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(server: &Server, path: &str, k: &str, body: &Value) -> (u16, Value) {
    let (st, b) = http(server.addr, "POST", path, Some(k), Some(&body.to_string()));
    (st, serde_json::from_str(&b).unwrap_or(Value::Null))
}

/// The customer a key names, through the API once the snapshot has it.
fn customer(server: &Server, admin: &str, key: &str) -> Value {
    let t0 = Instant::now();
    loop {
        let (st, b) = post(
            server,
            "/v1/customers/lookup",
            admin,
            &json!({ "key": key }),
        );
        if st == 200 {
            let id = b["id"].as_i64().expect("id");
            let (st, c) = http(
                server.addr,
                "GET",
                &format!("/v1/customers/{id}"),
                Some(admin),
                None,
            );
            assert_eq!(st, 200, "{c}");
            return serde_json::from_str(&c).expect("json");
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{key} never reached the served snapshot ({st} {b})"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_batch_is_journaled_deduplicated_and_applied_with_identity_resolution() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "150");
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let server = Server::start(dir);
    let planted = "zz.intake.planted@example.org";
    let batch = json!({"batch": [
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m1"},
        {"type": "track", "anonymousId": "a-1", "event": "Product Viewed",
         "properties": {"product_id": "P001"}, "messageId": "m2"},
        {"type": "identify", "userId": "u-100", "anonymousId": "a-1", "messageId": "m3",
         "traits": {"email": planted, "plan": "gold", "firstName": "Zed"}},
        {"type": "track", "userId": "u-100"},
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m1"},
        {"type": "track", "userId": "u-100", "event": "Order Completed", "messageId": "m4",
         "properties": {"order_id": "W-1", "products": [{"product_id": "P002", "quantity": 2, "price": 10.5}]}}
    ]});
    let (st, r) = post(&server, "/v1/batch", &source, &batch);
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["accepted"].clone(), r["duplicates"].clone()),
        (json!(4), json!(1)),
        "{r}"
    );
    let rejected = r["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 1, "{r}");
    assert_eq!(rejected[0]["index"], 3);
    assert!(
        rejected[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("event")
    );
    // the same batch again: every message a duplicate
    let (st, r) = post(&server, "/v1/batch", &source, &batch);
    assert_eq!(
        (st, r["accepted"].clone(), r["duplicates"].clone()),
        (200, json!(0), json!(5))
    );

    let s = drained(dir);
    assert_eq!(s["applied"], 4, "{s}");
    // one customer: the anonymous visitor merged into the user, with the
    // message that linked them as provenance
    let c = customer(&server, &admin, "web:u-100");
    let ids = c["identities"].as_array().expect("identities");
    let values: Vec<&str> = ids.iter().filter_map(|i| i["value"].as_str()).collect();
    assert!(values.contains(&"anon:a-1"), "{values:?}");
    assert!(values.contains(&planted), "{values:?}");
    assert!(ids.iter().all(|i| i["source"] == "web"), "{ids:?}");
    let anon = ids.iter().find(|i| i["value"] == "anon:a-1").expect("anon");
    assert!(
        anon["linked_by"]
            .as_str()
            .unwrap_or("")
            .contains("web:u-100"),
        "{anon}"
    );
    let events: Vec<(&str, i64)> = c["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or(""),
                e["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(
        events.contains(&("view", 1)) && events.contains(&("page", 1)),
        "{events:?}"
    );
    assert_eq!(c["orders"]["count"], 1);
    assert_eq!(c["orders"]["revenue"], 21.0);
    let plan = c["attributes"]
        .as_array()
        .expect("attributes")
        .iter()
        .find(|a| a["name"] == "plan")
        .expect("plan from the traits");
    assert_eq!(plan["value"], "gold");

    // the merge is undone like any other: the anonymous visitor's events
    // go back with them
    crate::common::ok(
        dir,
        &[
            "customer",
            "split",
            "web:u-100",
            "--identity",
            "web:anon:a-1",
            "--quiet",
        ],
    );
    let anon = cli_json(dir, &["customer", "show", "web:anon:a-1", "--json"]);
    assert_ne!(anon["id"], c["id"], "split off into a customer of its own");
    let anon_events: Vec<&str> = anon["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    assert!(
        anon_events.contains(&"view") && anon_events.contains(&"page"),
        "{anon_events:?}"
    );

    // a single bad message is refused as a whole, naming why
    let (st, r) = post(&server, "/v1/track", &source, &json!({"userId": "u-1"}));
    assert_eq!(st, 400, "{r}");
    assert!(r["message"].as_str().unwrap_or("").contains("event"), "{r}");
    // only a source key writes events; no key at all is 401
    let (st, _) = post(
        &server,
        "/v1/track",
        &admin,
        &json!({"userId": "u", "event": "x"}),
    );
    assert_eq!(st, 403);
    let (st, _) = http(server.addr, "POST", "/v1/track", None, Some("{}"));
    assert_eq!(st, 401);
    // the journal keeps no readable copy of what it took
    drop(server);
    for f in ["infogap.db", "infogap.db-wal"] {
        let p = dir.join(f);
        if let Ok(bytes) = std::fs::read(&p) {
            assert!(
                !bytes
                    .windows(planted.len())
                    .any(|w| w == planted.as_bytes()),
                "{f} holds the planted email in clear"
            );
        }
    }
}

#[test]
fn erased_and_non_consenting_people_are_dropped_and_counted() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "150");
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    // a web user the demo knows, erased
    let links = std::fs::read_to_string(dir.join("demo/web/crm_links.csv")).expect("links");
    let web_user = links
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a web user")
        .to_string();
    crate::common::ok(
        dir,
        &["privacy", "erase", &format!("web:{web_user}"), "--quiet"],
    );
    let server = Server::start(dir);
    // a person who tells us who they are, then withdraws analytics
    let (st, r) = post(
        &server,
        "/v1/identify",
        &source,
        &json!({"userId": "u-consent", "traits": {"plan": "basic"}}),
    );
    assert_eq!(st, 200, "{r}");
    drained(dir);
    crate::common::ok(
        dir,
        &[
            "privacy",
            "consent",
            "web:u-consent",
            "--withdraw",
            "analytics",
            "--quiet",
        ],
    );
    let batch = json!({"batch": [
        {"type": "track", "userId": web_user, "event": "Product Viewed", "messageId": "e1"},
        {"type": "track", "userId": "u-consent", "event": "Product Viewed", "messageId": "e2"},
        // the message itself denies analytics
        {"type": "page", "userId": "u-other", "messageId": "e3",
         "context": {"consent": {"categoryPreferences": {"Analytics": false}}}},
        {"type": "track", "userId": "u-other", "event": "Signed Up", "messageId": "e4"}
    ]});
    let (st, r) = post(&server, "/v1/batch", &source, &batch);
    assert_eq!((st, r["accepted"].clone()), (200, json!(4)), "{r}");
    let s = drained(dir);
    assert_eq!(s["suppressed"], 1, "the erased person's event: {s}");
    assert_eq!(s["no_consent"], 2, "{s}");
    assert_eq!(s["applied"], 2, "identify and the other's sign-up: {s}");
    // the erased person did not come back
    let out = crate::common::run_in(dir, &["customer", "show", &format!("web:{web_user}")]);
    assert!(!out.status.success(), "an erased person is back");
}

#[test]
fn nothing_acknowledged_is_lost_or_doubled_by_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "100");
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let before = cli_json(dir, &["stats", "--json"])["events"]
        .as_i64()
        .expect("events");
    let mut acknowledged: Vec<Value> = Vec::new();
    let mut sent = 0usize;
    for round in 0..3 {
        let mut server = Server::start(dir);
        let addr = server.addr;
        let src = source.clone();
        // a client posting batches of 50 until the server dies under it
        let client = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for b in 0..1000 {
                let batch: Vec<Value> = (0..50)
                    .map(|i| {
                        json!({"type": "track", "userId": format!("k{round}-{}", i % 7),
                               "event": "Drill", "messageId": format!("r{round}-b{b}-m{i}")})
                    })
                    .collect();
                let body = json!({ "batch": batch });
                let Some((st, r)) = try_post(addr, "/v1/batch", &src, &body.to_string()) else {
                    break;
                };
                if st != 200 {
                    break;
                }
                let r: Value = serde_json::from_str(&r).unwrap_or(Value::Null);
                assert_eq!(r["accepted"], 50, "{r}");
                acked.push(body);
            }
            acked
        });
        std::thread::sleep(Duration::from_millis(700 + 300 * round));
        server.child.kill().expect("kill -9");
        server.child.wait().ok();
        let acked = client.join().expect("client");
        assert!(!acked.is_empty(), "round {round}: nothing was acknowledged");
        sent += acked.len() * 50;
        acknowledged.extend(acked);
    }
    // a new server applies what the killed ones left pending
    let server = Server::start(dir);
    let s = drained(dir);
    let applied = s["applied"].as_u64().expect("applied") as usize;
    assert!(applied >= sent, "{applied} applied < {sent} acknowledged");
    // each journaled message became exactly one event
    let after = cli_json(dir, &["stats", "--json"])["events"]
        .as_i64()
        .expect("events");
    assert_eq!(
        (after - before) as usize,
        applied,
        "events vs applied messages"
    );
    // and sending every acknowledged batch again adds nothing
    resent_are_duplicates(&server, &source, acknowledged.iter().take(20));
}

/// Posts each acknowledged batch again: every message is a duplicate (the
/// journal still holds it), none is accepted.
pub(crate) fn resent_are_duplicates<'a>(
    server: &Server,
    source: &str,
    batches: impl Iterator<Item = &'a Value>,
) {
    for body in batches {
        let n = body["batch"].as_array().map_or(0, Vec::len);
        let (st, r) = post(server, "/v1/batch", source, body);
        assert_eq!(st, 200, "{r}");
        assert_eq!(
            (r["accepted"].clone(), r["duplicates"].clone()),
            (json!(0), json!(n))
        );
    }
}

#[test]
fn an_event_changes_churn_risk_and_recommendations_without_a_retrain() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    crate::common::ok(
        dir,
        &[
            "train", "churn", "--model", "logreg", "--folds", "3", "--quiet",
        ],
    );
    crate::common::ok(dir, &["train", "recs", "--algo", "item-knn", "--quiet"]);
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let server = Server::start(dir);
    let get = |path: String| {
        let (st, b) = http(server.addr, "GET", &path, Some(&admin), None);
        (st, serde_json::from_str::<Value>(&b).unwrap_or(Value::Null))
    };
    let recs_key = |r: &Value| {
        (
            r["history_items"].clone(),
            r["items"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|i| (i["product"]["key"].clone(), i["score"].clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
    };
    // a web user whose customer the churn model scores and the recommender
    // was trained on
    let links = std::fs::read_to_string(dir.join("demo/web/crm_links.csv")).expect("links");
    let mut chosen = None;
    for user in links.lines().skip(1).filter_map(|l| l.split(',').next()) {
        let (st, found) = post(
            &server,
            "/v1/customers/lookup",
            &admin,
            &json!({"key": format!("web:{user}")}),
        );
        if st != 200 {
            continue;
        }
        let id = found["id"].as_i64().expect("id");
        let (_, churn) = get(format!("/v1/customers/{id}/churn"));
        let (st, recs) = get(format!("/v1/customers/{id}/recommendations"));
        if churn["probability"].is_f64() && st == 200 && recs["in_training"] == true {
            chosen = Some((user.to_string(), id, churn, recs));
            break;
        }
    }
    let (user, id, churn, recs) = chosen.expect("a scored, trained-on web user");
    let t0 = Instant::now();
    let (st, r) = post(
        &server,
        "/v1/track",
        &source,
        &json!({"userId": user, "event": "Product Added", "properties": {"product_id": "P001"},
                "timestamp": "2025-12-30T12:00:00Z", "messageId": "live-1"}),
    );
    assert_eq!(st, 200, "{r}");
    loop {
        let (_, c2) = get(format!("/v1/customers/{id}/churn"));
        let (_, r2) = get(format!("/v1/customers/{id}/recommendations"));
        if c2["probability"] != churn["probability"] && recs_key(&r2) != recs_key(&recs) {
            // the new history is folded in, no retrain
            assert_eq!(r2["model_version"], recs["model_version"]);
            assert_eq!(c2["model_version"], churn["model_version"]);
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the event never reached churn and recommendations: {churn} → {c2}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `infogap alerts --json`, polled until `ok` accepts it.
pub(crate) fn alerts_until(dir: &Path, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let t0 = Instant::now();
    loop {
        let v = cli_json(dir, &["alerts", "--json"]);
        if ok(&v) {
            return v;
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "{what}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn raised(v: &Value, rule: &str) -> Vec<Value> {
    v["alerts"]
        .as_array()
        .map(|a| a.iter().filter(|x| x["rule"] == rule).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn rules_raise_alerts_once_and_a_restart_catches_up() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // rules in the config: the import stores them
    crate::share::demo_store_with(
        dir,
        "200",
        "\n[[rule]]\nname = \"unsubscribed\"\nkind = \"consent_withdrawn\"\npurpose = \"marketing\"\n\n[[rule]]\nname = \"odd-spend\"\nkind = \"unusual_activity\"\nfactor = 3\n",
    );
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let analyst = key(dir, "ana", "analyst", &[]);
    let mut server = Server::start(dir);
    let v = alerts_until(dir, "the first evaluation records a baseline", |v| {
        v["baseline_generation"].is_i64()
    });
    assert_eq!(v["rules"], json!(["unsubscribed", "odd-spend"]));
    assert_eq!(
        v["alerts"],
        json!([]),
        "nothing is alerted for the state at start"
    );

    // a consent withdrawn, and an order 100× anyone's usual through the intake
    crate::common::ok(
        dir,
        &[
            "privacy",
            "consent",
            "crm:C000003",
            "--withdraw",
            "marketing",
            "--quiet",
        ],
    );
    let links = std::fs::read_to_string(dir.join("demo/web/crm_links.csv")).expect("links");
    let user = links
        .lines()
        .nth(1)
        .and_then(|l| l.split(',').next())
        .expect("a web user");
    let (st, r) = post(
        &server,
        "/v1/track",
        &source,
        &json!({"userId": user, "event": "Order Completed", "messageId": "big-1",
                "properties": {"order_id": "W-BIG", "products": [{"product_id": "P001", "quantity": 1, "price": 99999}]}}),
    );
    assert_eq!(st, 200, "{r}");
    let v = alerts_until(dir, "both rules fire", |v| {
        !raised(v, "unsubscribed").is_empty() && !raised(v, "odd-spend").is_empty()
    });
    let unsub = raised(&v, "unsubscribed");
    assert_eq!(unsub.len(), 1, "{v}");
    assert_eq!(unsub[0]["key"], "crm:C000003");
    assert_eq!(unsub[0]["detail"]["purpose"], "marketing");
    let spike = raised(&v, "odd-spend");
    assert_eq!(spike[0]["kind"], "spend_spike");
    assert_eq!(spike[0]["detail"]["amount"], 99999.0);

    // the API: admin sees them, the analyst may not list alerts
    let (st, body) = http(server.addr, "GET", "/v1/alerts", Some(&admin), None);
    assert_eq!(st, 200, "{body}");
    let api: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(api["alerts"].as_array().map(Vec::len), Some(2), "{api}");
    let (st, _) = http(server.addr, "GET", "/v1/alerts", Some(&analyst), None);
    assert_eq!(st, 403);

    // a change while the server is down is alerted when it is back, once
    server.child.kill().expect("kill -9");
    server.child.wait().ok();
    crate::common::ok(
        dir,
        &[
            "privacy",
            "consent",
            "crm:C000004",
            "--withdraw",
            "marketing",
            "--quiet",
        ],
    );
    let server = Server::start(dir);
    let v = alerts_until(dir, "the change made while down", |v| {
        raised(v, "unsubscribed").len() == 2
    });
    std::thread::sleep(Duration::from_millis(1500));
    let again = cli_json(dir, &["alerts", "--json"]);
    assert_eq!(
        again["alerts"].as_array().map(Vec::len),
        Some(3),
        "no alert twice: {again}"
    );
    assert!(
        raised(&v, "unsubscribed")
            .iter()
            .any(|a| a["key"] == "crm:C000004")
    );
    drop(server);
}

/// `serve --retrain-every`: the churn model is retrained in the background
/// on its schedule and swapped in while requests keep coming: every
/// request is answered, each by one whole model, and the version only
/// moves forward.
#[test]
fn scheduled_retraining_swaps_models_under_load() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "150");
    crate::common::ok(
        dir,
        &[
            "train", "churn", "--model", "logreg", "--folds", "3", "--quiet",
        ],
    );
    let admin = key(dir, "adm", "admin", &[]);
    let e = crate::common::fails(dir, &["serve", "--retrain-every", "soon"]);
    assert!(e.contains("--retrain-every"), "{e}");
    let server = Server::start_with(dir, &["--retrain-every", "2s", "--retrain", "churn"]);
    let id = customer(&server, &admin, "crm:C000001")["id"]
        .as_i64()
        .expect("id");
    let path = format!("/v1/customers/{id}/churn");
    let t0 = Instant::now();
    let mut versions: Vec<i64> = Vec::new();
    while t0.elapsed() < Duration::from_secs(60) {
        let (st, b) = http(server.addr, "GET", &path, Some(&admin), None);
        assert_eq!(st, 200, "every request is answered during a swap: {b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        let version = v["model_version"].as_i64().expect("model_version");
        assert!(
            v["probability"]
                .as_f64()
                .is_some_and(|p| (0.0..=1.0).contains(&p)),
            "{v}"
        );
        versions.push(version);
        let distinct: std::collections::BTreeSet<i64> = versions.iter().copied().collect();
        if distinct.len() >= 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let distinct: std::collections::BTreeSet<i64> = versions.iter().copied().collect();
    assert!(
        distinct.len() >= 3,
        "two scheduled retrainings within a minute: {distinct:?}"
    );
    assert!(
        versions.windows(2).all(|w| w[0] <= w[1]),
        "a model once served is not replaced by an older one"
    );
}

/// Feedback in real time: `Product Reviewed` becomes a rating for the
/// recommender (a bad review a weightless `rating_negative`) and a review
/// with its text; `Feedback Submitted` a survey; a Chinese complaint with
/// no score raises the `negative_feedback` alert from its text.
#[test]
fn reviews_and_feedback_arrive_as_ratings_feedback_and_alerts() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    crate::share::demo_store_with(
        dir,
        "150",
        "\n[[rule]]\nname = \"complaint\"\nkind = \"negative_feedback\"\n",
    );
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let server = Server::start(dir);
    alerts_until(dir, "a baseline", |v| v["baseline_generation"].is_i64());
    let batch = json!({"batch": [
        {"type": "track", "userId": "rev-1", "event": "Product Reviewed", "messageId": "rv1",
         "properties": {"product_id": "P001", "rating": 5, "review_body": "Great quality, fast delivery"}},
        {"type": "track", "userId": "rev-1", "event": "Product Reviewed", "messageId": "rv2",
         "properties": {"product_id": "P002", "rating": 1, "review_body": "质量太差了，不满意"}},
        {"type": "track", "userId": "rev-1", "event": "Feedback Submitted", "messageId": "fb1",
         "properties": {"type": "ticket", "text": "退款一直没有收到，客服也不回复"}},
        {"type": "track", "userId": "rev-1", "event": "Feedback Submitted", "messageId": "fb2",
         "properties": {"type": "survey_nps", "score": 9, "comment": "love it"}}
    ]});
    let (st, r) = post(&server, "/v1/batch", &source, &batch);
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["accepted"], 4, "{r}");
    let t0 = Instant::now();
    let c = loop {
        let c2 = customer(&server, &admin, "web:rev-1");
        if c2["feedback"].as_array().map(Vec::len).unwrap_or(0) >= 3 {
            break c2;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "feedback never arrived: {c2}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let events: Vec<(String, i64)> = c["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or("").to_string(),
                e["count"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    assert!(events.contains(&("rating".to_string(), 1)), "{events:?}");
    assert!(
        events.contains(&("rating_negative".to_string(), 1)),
        "{events:?}"
    );
    let kinds: Vec<&str> = c["feedback"]
        .as_array()
        .expect("feedback")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    for k in ["review", "ticket", "survey_nps"] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
    let v = alerts_until(dir, "the complaint raises an alert", |v| {
        v["alerts"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["rule"] == "complaint" && x["key"] == "web:rev-1")
        })
    });
    let text = v.to_string();
    assert!(!text.contains("退款"), "alerts carry no text: {text}");
    drop(server);
}
