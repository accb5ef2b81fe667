//! Webhooks against `infogap serve` as a process and receivers of our own
//! that fail at random: every try signed (checked here with an independent
//! HMAC, not the product's code), retried with backoff, dead after the
//! last try and replayable; payloads shaped by the webhook's role and the
//! person's consent (planted values never sent); the outbox survives
//! `kill -9`; sign-in links delivered through a `portal.link` webhook.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::common::{fails, json as cli_json, ok};
use crate::intake::{alerts_until, resent_are_duplicates, try_post};
use crate::share::{Server, demo_store_with, http, key};

/// How a receiver answers.
pub(crate) const RANDOM: u8 = 0;
pub(crate) const ALWAYS_503: u8 = 1;
pub(crate) const ALWAYS_200: u8 = 2;

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) id: String,
    pub(crate) timestamp: i64,
    pub(crate) signature: String,
    pub(crate) body: String,
    pub(crate) received_unix: i64,
    pub(crate) at: Instant,
    /// The status answered (0: hung up without answering).
    pub(crate) status: u16,
}

/// A webhook receiver on a free port: answers by its mode (random: 200,
/// 500, 503, or a hang past the sender's timeout; seeded, so a run is
/// reproducible) and records every request.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    pub(crate) hits: Arc<Mutex<Vec<Hit>>>,
    pub(crate) mode: Arc<AtomicU8>,
}

impl Receiver {
    pub(crate) fn start(mode: u8, seed: u64) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(Mutex::new(Vec::new()));
        let mode = Arc::new(AtomicU8::new(mode));
        let rng = Arc::new(Mutex::new(seed.max(1)));
        let (h, m) = (hits.clone(), mode.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (h, m, rng) = (h.clone(), m.clone(), rng.clone());
                std::thread::spawn(move || handle(stream, &h, &m, &rng));
            }
        });
        Receiver { addr, hits, mode }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().expect("hits").clone()
    }
}

fn handle(stream: std::net::TcpStream, hits: &Mutex<Vec<Hit>>, mode: &AtomicU8, rng: &Mutex<u64>) {
    let mut reader = BufReader::new(stream);
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("POST ") {
        return;
    }
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let status = match mode.load(Ordering::SeqCst) {
        ALWAYS_503 => 503,
        ALWAYS_200 => 200,
        _ => {
            let mut s = rng.lock().expect("rng");
            // xorshift64
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            match *s % 6 {
                0 => 500,
                1 => 503,
                2 => 0,
                _ => 200,
            }
        }
    };
    let hit = Hit {
        id: headers.get("webhook-id").cloned().unwrap_or_default(),
        timestamp: headers
            .get("webhook-timestamp")
            .and_then(|t| t.parse().ok())
            .unwrap_or(0),
        signature: headers
            .get("webhook-signature")
            .cloned()
            .unwrap_or_default(),
        body: String::from_utf8_lossy(&body).into_owned(),
        received_unix: chrono::Utc::now().timestamp(),
        at: Instant::now(),
        status,
    };
    hits.lock().expect("hits").push(hit);
    let mut stream = reader.into_inner();
    if status == 0 {
        // hang past the sender's timeout, then hang up
        std::thread::sleep(Duration::from_millis(1500));
        return;
    }
    let _ = stream.write_all(
        format!("HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
    );
}

/// Standard Webhooks, computed here independently of the product.
pub(crate) fn signed_by(secret: &str, h: &Hit) -> bool {
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|b| STANDARD.decode(b).ok())
    else {
        return false;
    };
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("hmac key");
    m.update(format!("{}.{}.{}", h.id, h.timestamp, h.body).as_bytes());
    let expect = format!("v1,{}", STANDARD.encode(m.finalize().into_bytes()));
    h.signature.split(' ').any(|s| s == expect)
}

/// Waits until the outbox has nothing pending; the counts per state.
pub(crate) fn settled(dir: &Path, secs: u64) -> Value {
    let t0 = Instant::now();
    loop {
        let v = cli_json(dir, &["webhooks", "messages", "--json", "--limit", "1000"]);
        if v["counts"].get("pending").is_none() {
            return v;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "messages still pending: {}",
            v["counts"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Web users linked to a CRM customer whose latest marketing consent is
/// `yes` (`granted`) or not (`!granted`), skipping `avoid`.
pub(crate) fn web_users(dir: &Path, granted: bool, avoid: &[&str]) -> Vec<(String, String)> {
    let consents = std::fs::read_to_string(dir.join("demo/crm/consents.csv")).expect("consents");
    let mut latest: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for l in consents.lines().skip(1) {
        let f: Vec<&str> = l.split(',').collect();
        if f.len() >= 4 && f[1] == "marketing" {
            let e = latest
                .entry(f[0].to_string())
                .or_insert((String::new(), false));
            if f[3] >= e.0.as_str() {
                *e = (f[3].to_string(), f[2] == "yes");
            }
        }
    }
    let links = std::fs::read_to_string(dir.join("demo/web/crm_links.csv")).expect("links");
    links
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .filter(|(_, c)| !avoid.contains(c))
        .filter(|(_, c)| latest.get(*c).map(|x| x.1).unwrap_or(false) == granted)
        .map(|(w, c)| (w.to_string(), c.to_string()))
        .collect()
}

pub(crate) fn spike(user: &str, n: usize) -> Value {
    json!({"type": "track", "userId": user, "event": "Order Completed", "messageId": format!("spike-{user}-{n}"),
           "properties": {"order_id": format!("W-SPIKE-{user}-{n}"),
                          "products": [{"product_id": "P001", "quantity": 1, "price": 99999}]}})
}

#[test]
fn webhooks_are_signed_retried_dead_lettered_and_shaped_by_policy_and_consent() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store_with(
        dir,
        "200",
        "\n[[rule]]\nname = \"unsubscribed\"\nkind = \"consent_withdrawn\"\n\n[[rule]]\nname = \"odd-spend\"\nkind = \"unusual_activity\"\nfactor = 3\n\n[webhooks]\nattempts = 3\nfirst_retry = \"200ms\"\nmax_retry = \"400ms\"\ntimeout = \"1s\"\n",
    );
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let analyst = key(dir, "ana", "analyst", &[]);

    // bad input is refused, naming the parameter
    let flaky = Receiver::start(RANDOM, 0x5eed);
    let down = Receiver::start(ALWAYS_503, 1);
    for (args, word) in [
        (
            vec![
                "--url",
                "ftp://x/",
                "--events",
                "churn.high",
                "--role",
                "marketing",
            ],
            "--url",
        ),
        (
            vec![
                "--url",
                "https://u:p@x/",
                "--events",
                "churn.high",
                "--role",
                "marketing",
            ],
            "password",
        ),
        (
            vec![
                "--url",
                "https://x/",
                "--events",
                "weather",
                "--role",
                "marketing",
            ],
            "weather",
        ),
        (
            vec![
                "--url",
                "https://x/",
                "--events",
                "churn.high",
                "--role",
                "analyst",
            ],
            "alerts.read",
        ),
        (
            vec![
                "--url",
                "https://x/",
                "--events",
                "churn.high",
                "--role",
                "nobody",
            ],
            "nobody",
        ),
        (
            vec![
                "--url",
                "https://x/",
                "--events",
                "portal.link",
                "--role",
                "analyst",
            ],
            "contact",
        ),
    ] {
        let mut a = vec!["webhooks", "add"];
        a.extend(args);
        let e = fails(dir, &a);
        assert!(e.contains(word), "{a:?}: {e}");
    }
    assert!(
        cli_json(dir, &["webhooks", "list", "--json"])["webhooks"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "a refused webhook is not stored"
    );

    // one from the terminal, one over the API
    let url = flaky.url();
    let w1 = cli_json(
        dir,
        &[
            "webhooks",
            "add",
            "--url",
            &url,
            "--events",
            "activity.unusual,consent.withdrawn",
            "--role",
            "marketing",
            "--json",
        ],
    );
    let secret1 = w1["secret"].as_str().expect("secret").to_string();
    assert!(secret1.starts_with("whsec_"), "{w1}");
    let listed = cli_json(dir, &["webhooks", "list", "--json"]).to_string();
    assert!(!listed.contains(&secret1), "a secret is shown once only");
    let db = std::fs::read(dir.join("infogap.db")).expect("db");
    let raw = secret1.trim_start_matches("whsec_");
    assert!(
        !db.windows(raw.len()).any(|w| w == raw.as_bytes()),
        "the signing secret is not stored"
    );
    let server = Server::start(dir);
    let body =
        json!({"url": down.url(), "events": ["consent.withdrawn"], "role": "support"}).to_string();
    let (st, _) = http(
        server.addr,
        "POST",
        "/v1/webhooks",
        Some(&analyst),
        Some(&body),
    );
    assert_eq!(st, 403, "only webhooks.manage adds webhooks");
    let (st, w2) = http(
        server.addr,
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some(&body),
    );
    assert_eq!(st, 201, "{w2}");
    let w2: Value = serde_json::from_str(&w2).expect("json");
    let secret2 = w2["secret"].as_str().expect("secret").to_string();
    let (st, _) = http(
        server.addr,
        "POST",
        "/v1/webhooks",
        Some(&admin),
        Some("{\"url\": 1}"),
    );
    assert_eq!(st, 400);

    alerts_until(dir, "a baseline", |v| v["baseline_generation"].is_i64());
    // two withdrawals (sent whatever the consent), a spike by someone who
    // allows marketing, one by someone who does not; a planted email
    let yes = web_users(dir, true, &["C000003", "C000004"]);
    let no = web_users(dir, false, &[]);
    let (yes_user, yes_crm) = yes.first().cloned().expect("a consenting web user");
    let (no_user, no_crm) = no.first().cloned().expect("a non-consenting web user");
    let planted = "zz.webhook.planted@example.org";
    for c in ["crm:C000003", "crm:C000004"] {
        ok(
            dir,
            &[
                "privacy",
                "consent",
                c,
                "--withdraw",
                "marketing",
                "--quiet",
            ],
        );
    }
    let batch = json!({"batch": [
        {"type": "identify", "userId": yes_user, "traits": {"email": planted}, "messageId": "plant-1"},
        spike(&yes_user, 1),
        spike(&no_user, 1),
    ]});
    let (st, r) = http(
        server.addr,
        "POST",
        "/v1/batch",
        Some(&source),
        Some(&batch.to_string()),
    );
    assert_eq!(st, 200, "{r}");
    let r: Value = serde_json::from_str(&r).expect("json");
    assert_eq!(r["accepted"], 3, "{r}");
    let v = alerts_until(dir, "the four alerts", |v| {
        v["alerts"].as_array().map(Vec::len).unwrap_or(0) >= 4
    });
    let alerts = v["alerts"].as_array().expect("alerts").clone();

    // kill -9 mid-delivery, then restart: the outbox carries on
    let t0 = Instant::now();
    while flaky.hits().is_empty() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut server = server;
    server.child.kill().expect("kill -9");
    server.child.wait().ok();
    let server = Server::start(dir);
    let out = settled(dir, 60);

    let msgs = out["messages"].as_array().expect("messages").clone();
    let of = |w: &Value| -> Vec<Value> {
        msgs.iter()
            .filter(|m| m["webhook_id"] == w["id"])
            .cloned()
            .collect()
    };
    let m1 = of(&w1);
    let m2 = of(&w2);
    // consent: the non-consenting person's spike is alerted but never sent
    let spike_of = |crm: &str| {
        alerts
            .iter()
            .find(|a| a["rule"] == "odd-spend" && a["key"] == format!("crm:{crm}"))
            .unwrap_or_else(|| panic!("a spike alert for {crm}: {alerts:?}"))
            .clone()
    };
    let (sy, sn) = (spike_of(&yes_crm), spike_of(&no_crm));
    assert!(m1.iter().any(|m| m["alert_id"] == sy["id"]), "{m1:?}");
    assert!(
        !msgs.iter().any(|m| m["customer_id"] == sn["customer_id"]),
        "no message about someone who did not allow marketing"
    );
    assert_eq!(m1.len(), 3, "two withdrawals and one spike: {m1:?}");
    assert_eq!(m2.len(), 2, "the withdrawals only: {m2:?}");

    // every try signed, timestamped now, the same body under one id, spaced
    for (rcv, secret, msgs) in [(&flaky, &secret1, &m1), (&down, &secret2, &m2)] {
        let hits = rcv.hits();
        for h in &hits {
            assert!(signed_by(secret, h), "a bad signature: {h:?}");
            assert!(
                (h.timestamp - h.received_unix).abs() <= 5,
                "the timestamp is the time of the try: {h:?}"
            );
            assert!(!h.body.contains(planted), "a planted email was sent");
        }
        for m in msgs.iter() {
            let tries: Vec<&Hit> = hits.iter().filter(|h| h.id == m["msg_id"]).collect();
            assert!(!tries.is_empty(), "{m} was never tried");
            assert!(tries.windows(2).all(|w| w[0].body == w[1].body));
            assert!(
                tries
                    .windows(2)
                    .all(|w| w[1].at.duration_since(w[0].at) >= Duration::from_millis(90)),
                "retries wait (backoff)"
            );
            let n = m["attempts"].as_u64().expect("attempts") as usize;
            assert!(
                tries.len() <= n && n <= 3,
                "{m}: {} tries seen",
                tries.len()
            );
            match m["state"].as_str() {
                Some("delivered") => assert!(tries.iter().any(|h| h.status == 200)),
                Some("dead") => {
                    assert_eq!(n, 3, "{m}");
                    assert!(tries.iter().all(|h| h.status != 200), "{m}");
                }
                other => panic!("{other:?}: {m}"),
            }
            let b: Value = serde_json::from_str(&tries[0].body).expect("payload json");
            assert_eq!(b["type"], m["event"]);
            assert_eq!(b["data"]["alert"]["id"], m["alert_id"]);
            assert_eq!(
                b["data"]["policy"]["role"],
                if rcv.addr == flaky.addr {
                    "marketing"
                } else {
                    "support"
                }
            );
        }
    }
    assert!(
        flaky.hits().iter().any(|h| h.status != 200),
        "the random receiver failed some tries (seeded)"
    );

    // the dead letters: listed, replayed to a receiver that is back
    let dead = cli_json(dir, &["webhooks", "dead", "--json"]);
    let dead_ids: Vec<i64> = dead["messages"]
        .as_array()
        .expect("dead")
        .iter()
        .filter(|m| m["webhook_id"] == w2["id"])
        .filter_map(|m| m["id"].as_i64())
        .collect();
    assert_eq!(dead_ids.len(), 2, "{dead}");
    down.mode.store(ALWAYS_200, Ordering::SeqCst);
    ok(dir, &["webhooks", "replay", &dead_ids[0].to_string()]);
    let path = format!("/v1/webhooks/dead/{}/replay", dead_ids[1]);
    let (st, _) = http(server.addr, "POST", &path, Some(&analyst), None);
    assert_eq!(st, 403);
    let (st, b) = http(server.addr, "POST", &path, Some(&admin), None);
    assert_eq!(st, 200, "{b}");
    let e = fails(dir, &["webhooks", "replay", &dead_ids[0].to_string()]);
    assert!(e.contains("no dead message"), "{e}");
    settled(dir, 30);
    let (st, b) = http(server.addr, "GET", "/v1/webhooks/dead", Some(&admin), None);
    assert_eq!(st, 200);
    let after: Value = serde_json::from_str(&b).expect("json");
    assert!(
        !after["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["webhook_id"] == w2["id"]),
        "both replayed and delivered: {after}"
    );
    let hits = down.hits();
    for id in &dead_ids {
        let m = msgs.iter().find(|m| m["id"] == *id).expect("message");
        assert!(
            hits.iter()
                .any(|h| h.id == m["msg_id"] && h.status == 200 && signed_by(&secret2, h)),
            "the replay went out under the same webhook-id"
        );
    }

    // sign-in links through a portal.link webhook (the mailer)
    let mailer = Receiver::start(ALWAYS_200, 2);
    let e = fails(dir, &["customer", "link", "crm:C000001", "--deliver"]);
    assert!(e.contains("portal.link"), "{e}");
    let w3 = cli_json(
        dir,
        &[
            "webhooks",
            "add",
            "--url",
            &mailer.url(),
            "--events",
            "portal.link",
            "--role",
            "support",
            "--json",
        ],
    );
    let q = cli_json(
        dir,
        &["customer", "link", "crm:C000001", "--deliver", "--json"],
    );
    assert_eq!(q["queued"], 1, "{q}");
    assert!(q.get("url").is_none(), "a delivered link is not printed");
    settled(dir, 30);
    let link = mailer
        .hits()
        .into_iter()
        .next()
        .expect("the link was delivered");
    assert!(signed_by(w3["secret"].as_str().expect("secret"), &link));
    let b: Value = serde_json::from_str(&link.body).expect("json");
    assert_eq!(b["type"], "portal.link");
    assert!(
        b["data"]["url"]
            .as_str()
            .is_some_and(|u| u.contains("/portal/link?token=igl_")),
        "{b}"
    );
    let shown = cli_json(dir, &["customer", "show", "crm:C000001", "--json"]);
    let email = shown["identities"]
        .as_array()
        .and_then(|i| i.iter().find(|x| x["kind"] == "email"))
        .and_then(|x| x["value"].as_str())
        .expect("an email");
    assert_eq!(b["data"]["email"], email, "support sees contact details");

    // removal drops what was not delivered
    let (st, _) = http(
        server.addr,
        "DELETE",
        &format!("/v1/webhooks/{}", w2["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(st, 200);
    let (st, _) = http(
        server.addr,
        "DELETE",
        &format!("/v1/webhooks/{}", w2["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(st, 404);
    let left = cli_json(dir, &["webhooks", "list", "--json"]);
    assert_eq!(left["webhooks"].as_array().map(Vec::len), Some(2), "{left}");
    drop(server);
}

/// The crash drill of issue 21: the server is killed (`kill -9`) 100 times
/// (`INFOGAP_DRILL_KILLS` to change) while a client posts batches of events
/// (each with a refund, so alerts keep coming) and a receiver that fails
/// at random takes the webhook messages. Afterwards: every acknowledged
/// event is in the journal and applied exactly once, and every alert is a
/// webhook message that was delivered or is in the dead letters.
#[test]
#[ignore = "100 kill -9 of the server (minutes): run by .ci/run with --include-ignored"]
fn crash_drill_kills_lose_no_event_and_no_alert() {
    let kills: usize = std::env::var("INFOGAP_DRILL_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store_with(
        dir,
        "200",
        "\n[[rule]]\nname = \"odd\"\nkind = \"unusual_activity\"\n\n[webhooks]\nattempts = 4\nfirst_retry = \"100ms\"\nmax_retry = \"400ms\"\ntimeout = \"500ms\"\n",
    );
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let admin = key(dir, "adm", "admin", &[]);
    let receiver = Receiver::start(RANDOM, 0xd1e5);
    let hook = cli_json(
        dir,
        &[
            "webhooks",
            "add",
            "--url",
            &receiver.url(),
            "--events",
            "activity.unusual",
            "--role",
            "marketing",
            "--json",
        ],
    );
    let secret = hook["secret"].as_str().expect("secret").to_string();
    let users: Vec<String> = web_users(dir, true, &[])
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    assert!(users.len() >= 3, "consenting web users: {users:?}");
    let facts = |dir: &Path| {
        let v = cli_json(dir, &["stats", "--json"]);
        (
            v["events"].as_i64().expect("events"),
            v["orders"].as_i64().expect("orders"),
        )
    };
    let before = facts(dir);
    let mut acknowledged: Vec<Value> = Vec::new();
    let mut rng: u64 = 0x1234_5678;
    let t0 = Instant::now();
    for round in 0..kills {
        let mut server = Server::start(dir);
        let addr = server.addr;
        let (src, users) = (source.clone(), users.clone());
        let client = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for b in 0..10_000 {
                let mut batch: Vec<Value> = (0..19)
                    .map(|i| {
                        json!({"type": "track", "userId": format!("d{}", i % 11), "event": "Drill",
                               "messageId": format!("r{round}-b{b}-m{i}")})
                    })
                    .collect();
                let u = &users[(round + b) % users.len()];
                batch.push(json!({"type": "track", "userId": u, "event": "Order Completed",
                    "messageId": format!("r{round}-b{b}-refund"),
                    "properties": {"order_id": format!("R-{round}-{b}"),
                                   "products": [{"product_id": "P001", "quantity": 1, "price": -5}]}}));
                let body = json!({ "batch": batch });
                let Some((st, r)) = try_post(addr, "/v1/batch", &src, &body.to_string()) else {
                    break;
                };
                if st != 200 {
                    break;
                }
                let r: Value = serde_json::from_str(&r).unwrap_or(Value::Null);
                assert_eq!(r["accepted"], 20, "{r}");
                acked.push(body);
                std::thread::sleep(Duration::from_millis(20));
            }
            acked
        });
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(200 + rng % 900));
        server.child.kill().expect("kill -9");
        server.child.wait().ok();
        acknowledged.extend(client.join().expect("client"));
    }
    let drill_secs = t0.elapsed().as_secs_f64();
    // a last server finishes what the killed ones left
    let server = Server::start(dir);
    let t1 = Instant::now();
    let journal = loop {
        let s = cli_json(dir, &["intake", "status", "--json"]);
        if s["pending"] == 0 {
            break s;
        }
        assert!(t1.elapsed() < Duration::from_secs(120), "left pending: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // the alerts of the last applied events are raised, queued and settled
    std::thread::sleep(Duration::from_secs(2));
    let out = settled(dir, 120);
    let sent = acknowledged.len() * 20;
    let applied = journal["applied"].as_u64().expect("applied") as usize;
    assert!(applied >= sent, "{applied} applied < {sent} acknowledged");
    // each applied message is one event, and each refund one order
    let now = facts(dir);
    assert_eq!(
        (now.0 - before.0) as usize,
        applied,
        "events vs applied messages"
    );
    assert_eq!(
        (now.1 - before.1) as usize * 20,
        applied,
        "orders vs applied refunds (one in 20 messages)"
    );
    // every acknowledged batch sent again is all duplicates (none lost)
    resent_are_duplicates(&server, &source, acknowledged.iter());
    // every alert is a message, delivered or dead
    let alerts = all_pages(server.addr, &admin, "/v1/alerts", "alerts");
    assert!(!alerts.is_empty(), "the drill raised alerts");
    let msgs = all_pages(server.addr, &admin, "/v1/webhooks/messages", "messages");
    assert_eq!(
        msgs.len() as u64,
        out["counts"]
            .as_object()
            .expect("counts")
            .values()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        "every message listed"
    );
    let mut by_alert: BTreeMap<i64, Vec<&Value>> = BTreeMap::new();
    for m in &msgs {
        by_alert
            .entry(m["alert_id"].as_i64().expect("alert id"))
            .or_default()
            .push(m);
    }
    let hits = receiver.hits();
    let signed_ok: std::collections::HashSet<&str> = hits
        .iter()
        .filter(|h| h.status == 200 && signed_by(&secret, h))
        .map(|h| h.id.as_str())
        .collect();
    let mut delivered = 0;
    let mut dead = 0;
    for a in &alerts {
        let m: Vec<&Value> = by_alert
            .get(&a["id"].as_i64().expect("id"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(m.len(), 1, "alert {} is one message: {m:?}", a["id"]);
        match m[0]["state"].as_str() {
            Some("delivered") => {
                delivered += 1;
                assert!(
                    m[0]["msg_id"]
                        .as_str()
                        .is_some_and(|id| signed_ok.contains(id)),
                    "{}: delivered, so the receiver answered 200 to a signed try",
                    m[0]
                );
            }
            Some("dead") => dead += 1,
            other => panic!("alert {}: {other:?}", a["id"]),
        }
    }
    let mut oks: BTreeMap<&str, usize> = BTreeMap::new();
    for h in hits.iter().filter(|h| h.status == 200) {
        *oks.entry(h.id.as_str()).or_default() += 1;
    }
    let again = oks.values().filter(|n| **n > 1).count();
    eprintln!(
        "crash drill: {kills} kills in {drill_secs:.0} s; {sent} events acknowledged, {applied} applied once each, 0 lost; {} alerts: {delivered} delivered, {dead} dead, 0 lost; {} tries, {again} messages delivered more than once (same webhook-id)",
        alerts.len(),
        hits.len()
    );
    drop(server);
}

/// Every row of a paged list (`?limit=1000&before=ID`, newest first).
fn all_pages(addr: SocketAddr, admin: &str, path: &str, field: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let url = match before {
            Some(b) => format!("{path}?limit=1000&before={b}"),
            None => format!("{path}?limit=1000"),
        };
        let (st, b) = http(addr, "GET", &url, Some(admin), None);
        assert_eq!(st, 200, "{url}: {b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        let page = v[field].as_array().expect("a list").clone();
        let Some(last) = page.last().and_then(|x| x["id"].as_i64()) else {
            return out;
        };
        before = Some(last);
        out.extend(page);
    }
}

/// Two `infogap serve` processes over one store share the outbox: every
/// alert becomes one message (the cursor moves once), and the claims keep
/// the two from sending the same message twice.
#[test]
fn two_servers_share_one_outbox_without_doubles() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store_with(
        dir,
        "150",
        "\n[[rule]]\nname = \"odd\"\nkind = \"unusual_activity\"\n\n[webhooks]\nattempts = 3\nfirst_retry = \"100ms\"\nmax_retry = \"200ms\"\ntimeout = \"2s\"\n",
    );
    let source = key(dir, "web-intake", "source", &["--source", "web"]);
    let receiver = Receiver::start(ALWAYS_200, 3);
    ok(
        dir,
        &[
            "webhooks",
            "add",
            "--url",
            &receiver.url(),
            "--events",
            "activity.unusual",
            "--role",
            "marketing",
        ],
    );
    let users: Vec<String> = web_users(dir, true, &[])
        .into_iter()
        .map(|(w, _)| w)
        .collect();
    let a = Server::start(dir);
    let b = Server::start(dir);
    // refunds posted to both, one per batch, over a few seconds
    for i in 0..30 {
        let s = if i % 2 == 0 { &a } else { &b };
        let u = &users[i % users.len()];
        let batch = json!({"batch": [{"type": "track", "userId": u, "event": "Order Completed",
            "messageId": format!("two-{i}"),
            "properties": {"order_id": format!("T-{i}"), "products": [{"product_id": "P001", "quantity": 1, "price": -3}]}}]});
        let (st, r) = http(
            s.addr,
            "POST",
            "/v1/batch",
            Some(&source),
            Some(&batch.to_string()),
        );
        assert_eq!(st, 200, "{r}");
        std::thread::sleep(Duration::from_millis(120));
    }
    std::thread::sleep(Duration::from_secs(2));
    let out = settled(dir, 60);
    let msgs = out["messages"].as_array().expect("messages").clone();
    assert!(
        msgs.len() >= 5,
        "alerts were raised and queued: {}",
        out["counts"]
    );
    let mut per_alert: BTreeMap<i64, usize> = BTreeMap::new();
    for m in &msgs {
        assert_eq!(m["state"], "delivered", "{m}");
        *per_alert
            .entry(m["alert_id"].as_i64().expect("alert"))
            .or_default() += 1;
    }
    assert!(per_alert.values().all(|n| *n == 1), "one message per alert");
    let hits = receiver.hits();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for h in &hits {
        *per_id.entry(h.id.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_id.len(),
        msgs.len(),
        "every message reached the receiver"
    );
    assert!(
        per_id.values().all(|n| *n == 1),
        "no message was sent by both servers: {per_id:?}"
    );
    drop((a, b));
}
