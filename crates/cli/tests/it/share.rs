//! Sharing from the command line: keys, `--as-role`, the audit trail and
//! its chain, and `infogap serve` as a process (refresh after an import,
//! reads during an import, nothing acknowledged lost to `kill -9`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bin, fails, json, ok};

/// A demo store of `people` customers in `dir/infogap.db`.
pub(crate) fn demo_store(dir: &Path, people: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", people, "--quiet"],
    );
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

/// A demo store whose config has `extra` appended (rules, `[webhooks]`, …)
/// before the import.
pub(crate) fn demo_store_with(dir: &Path, people: &str, extra: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", people, "--quiet"],
    );
    let cfg = dir.join("demo/infogap.toml");
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text.push_str(extra);
    std::fs::write(&cfg, text).expect("write config");
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

/// A plain HTTP/1.1 request; returns (status, body).
pub(crate) fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    if let Some(b) = body {
        req.push_str(b);
    }
    s.write_all(req.as_bytes()).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // chunked bodies: keep the JSON between the first '{' and the last '}'
    let body = match (body.find(['{', '[']), body.rfind(['}', ']'])) {
        (Some(a), Some(b)) if b >= a => body[a..=b].to_string(),
        _ => body,
    };
    (status, body)
}

/// A running `infogap serve` on a free port.
pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
}

impl Server {
    pub(crate) fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// A server with more `serve` arguments.
    pub(crate) fn start_with(dir: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(bin())
            .current_dir(dir)
            .env("INFOGAP_DB", dir.join("infogap.db"))
            .args(["serve", "--bind", "127.0.0.1:0", "--no-access-log"])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn serve");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("serve printed its address")
                .expect("read stderr");
            if let Some(rest) = line.split("http://").nth(1) {
                let a = rest.split_whitespace().next().expect("address");
                break a.parse::<SocketAddr>().expect("socket address");
            }
        };
        // keep draining stderr so the server never blocks on it
        std::thread::spawn(move || for _ in lines {});
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn key(dir: &Path, name: &str, role: &str, extra: &[&str]) -> String {
    let mut args = vec!["keys", "create", "--name", name, "--role", role, "--json"];
    args.extend_from_slice(extra);
    let v = json(dir, &args);
    for f in ["key", "id", "name", "role", "expires_at"] {
        assert!(v.get(f).is_some(), "keys create --json lacks {f}: {v}");
    }
    v["key"].as_str().expect("key").to_string()
}

/// An email of a customer that has one, and its customer's `crm:` key.
fn an_email(dir: &Path) -> (String, String) {
    let v = json(dir, &["customer", "show", "crm:C000001", "--json"]);
    let email = v["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .find(|i| i["kind"] == "email")
        .and_then(|i| i["value"].as_str())
        .expect("customer C000001 has an email")
        .to_string();
    (email, "crm:C000001".to_string())
}

#[test]
fn keys_are_shown_once_listed_without_secrets_and_revoked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    let k = key(dir, "ana", "analyst", &["--expires", "30d"]);
    assert!(k.starts_with("igk_"), "{k}");
    let list = json(dir, &["keys", "list", "--json"]);
    let text = list.to_string();
    assert!(!text.contains(&k[21..]), "keys list shows a secret");
    let id = list[0]["id"].as_str().expect("id").to_string();
    assert_eq!(list[0]["status"], "active");
    assert!(list[0]["expires_at"].as_str().is_some());
    // the secret is nowhere in the store's files
    for f in ["infogap.db", "infogap.db-wal", "infogap.db.audit"] {
        if let Ok(bytes) = std::fs::read(dir.join(f)) {
            let hay = String::from_utf8_lossy(&bytes);
            assert!(!hay.contains(&k[21..]), "{f} holds the key's secret");
        }
    }
    let r = json(dir, &["keys", "revoke", &id, "--json"]);
    assert_eq!(r["status"], "revoked");
    let e = fails(dir, &["keys", "revoke", &id]);
    assert!(e.contains("already revoked"), "{e}");
    let e = fails(dir, &["keys", "create", "--name", "x", "--role", "boss"]);
    assert!(e.contains("unknown role") && e.contains("analyst"), "{e}");
    let e = fails(
        dir,
        &[
            "keys",
            "create",
            "--name",
            "x",
            "--role",
            "support",
            "--department",
            "nowhere",
        ],
    );
    assert!(e.contains("unknown department"), "{e}");
    let e = fails(
        dir,
        &[
            "keys",
            "create",
            "--name",
            "x",
            "--role",
            "admin",
            "--expires",
            "3y",
        ],
    );
    assert!(e.contains("duration"), "{e}");
    // a role that may not manage keys cannot issue one from the terminal either
    let e = fails(
        dir,
        &[
            "--as-role",
            "analyst",
            "keys",
            "create",
            "--name",
            "x",
            "--role",
            "admin",
        ],
    );
    assert!(e.contains("may not keys.manage"), "{e}");
}

#[test]
fn as_role_applies_the_policy_and_every_read_is_audited() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    let (email, ckey) = an_email(dir);
    // the analyst sees contact data masked, in text and JSON
    let shown = ok(dir, &["--as-role", "analyst", "customer", "show", &ckey]);
    assert!(!shown.contains(&email), "analyst saw {email}:\n{shown}");
    let masked = format!("{}***@", &email[..1]);
    assert!(shown.contains(&masked), "no masked email in:\n{shown}");
    let v = json(
        dir,
        &["--as-role", "analyst", "customer", "show", &ckey, "--json"],
    );
    assert_eq!(v["policy"]["fields"]["contact"], "masked");
    assert!(!v.to_string().contains(&email));
    // support may not export segments; an unknown role is refused by name
    let out = dir.join("champions.csv");
    let e = fails(
        dir,
        &[
            "--as-role",
            "support",
            "segment",
            "export",
            "champions",
            "--out",
            out.to_str().expect("path"),
        ],
    );
    assert!(
        e.contains("forbidden") && e.contains("segments.export"),
        "{e}"
    );
    assert!(!out.exists());
    let e = fails(dir, &["--as-role", "boss", "customer", "show", &ckey]);
    assert!(e.contains("unknown role"), "{e}");
    // marketing exports with contact data visible; the analyst's export masks it
    ok(
        dir,
        &[
            "--as-role",
            "analyst",
            "segment",
            "export",
            "champions",
            "--out",
            out.to_str().expect("path"),
        ],
    );
    let csv = std::fs::read_to_string(&out).expect("csv");
    assert!(csv.lines().count() > 1, "empty export");
    assert!(
        !csv.lines()
            .skip(1)
            .any(|l| l.starts_with("email:") && !l.contains("***@")),
        "analyst export holds an unmasked email:\n{csv}"
    );
    // the trail names each read: who, what, which customer
    let trail = json(dir, &["audit", "--json", "--actor", "local"]);
    let recs = trail.as_array().expect("records");
    let actions: Vec<&str> = recs.iter().filter_map(|r| r["action"].as_str()).collect();
    assert!(actions.contains(&"customers.read"), "{actions:?}");
    assert!(actions.contains(&"segments.export"), "{actions:?}");
    let exported = recs
        .iter()
        .find(|r| r["action"] == "segments.export")
        .expect("export record");
    assert_eq!(
        exported["customers"].as_array().map(Vec::len),
        Some(csv.lines().count() - 1),
        "the export record lists every exported customer"
    );
    let by_customer = json(dir, &["audit", "--json", "--customer", &ckey]);
    assert!(
        by_customer.as_array().is_some_and(|a| a
            .iter()
            .any(|r| r["action"] == "customers.read" && r["role"] == "analyst")),
        "{by_customer}"
    );
    assert!(!trail.to_string().contains(&email), "the trail holds PII");
}

#[test]
fn audit_verify_names_the_first_altered_or_missing_record() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "100");
    for k in ["crm:C000001", "crm:C000002", "crm:C000003", "crm:C000004"] {
        ok(dir, &["customer", "show", k]);
    }
    let v = json(dir, &["audit", "verify", "--json"]);
    assert_eq!(v["first_bad"], Value::Null, "{v}");
    assert!(v["entries"].as_i64().is_some_and(|n| n >= 4), "{v}");
    let audit = dir.join("infogap.db.audit");
    let sql = |q: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        rt.block_on(async {
            use sqlx::Connection;
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", audit.display()))
                .await
                .expect("open audit");
            sqlx::query(sqlx::AssertSqlSafe(q.to_string()))
                .execute(&mut c)
                .await
                .expect("tamper");
            c.close().await.ok();
        });
    };
    sql("UPDATE audit_log SET actor = 'someone else' WHERE seq = 2");
    let e = fails(dir, &["audit", "verify"]);
    assert!(e.contains("record 2") && e.contains("altered"), "{e}");
    sql("DELETE FROM audit_log WHERE seq = 2");
    let e = fails(dir, &["audit", "verify"]);
    assert!(e.contains("record 2") && e.contains("missing"), "{e}");
}

#[test]
fn serve_refreshes_after_an_import_and_answers_during_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    // the CRM master first, the rest imported while the server runs
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", "2000", "--quiet"],
    );
    let toml = std::fs::read_to_string(dir.join("demo/infogap.toml")).expect("config");
    let crm_only: String = toml
        .split("[[source]]")
        .enumerate()
        // the CRM source's part, without the sections that follow the last source
        .filter(|(i, part)| {
            *i == 0
                || part
                    .split("\n[access]")
                    .next()
                    .is_some_and(|p| p.contains("name = \"crm\""))
        })
        .map(|(i, p)| {
            if i == 0 {
                p.to_string()
            } else {
                format!("[[source]]{}", p.split("\n[access]").next().unwrap_or(p))
            }
        })
        .collect();
    std::fs::write(dir.join("demo/crm_only.toml"), crm_only).expect("write");
    ok(
        dir,
        &["import", "--config", "demo/crm_only.toml", "--quiet"],
    );
    let admin = key(dir, "adm", "admin", &[]);
    let server = Server::start(dir);
    let stats = |s: &Server| -> Value {
        let (st, body) = http(s.addr, "GET", "/v1/stats", Some(&admin), None);
        assert_eq!(st, 200, "{body}");
        serde_json::from_str(&body).expect("json")
    };
    let before = stats(&server);
    assert_eq!(before["stats"]["orders"], 0, "{before}");
    let gen0 = before["generation"].as_i64().expect("generation");
    let mut import = Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", dir.join("infogap.db"))
        .args(["import", "--config", "demo/infogap.toml", "--quiet"])
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn import");
    // reads are answered while the import writes
    let mut during = 0;
    let mut slowest = Duration::ZERO;
    while import.try_wait().expect("wait").is_none() {
        let t = Instant::now();
        let (st, body) = http(
            server.addr,
            "POST",
            "/v1/customers/lookup",
            Some(&admin),
            Some(r#"{"key":"crm:C000001"}"#),
        );
        assert_eq!(st, 200, "lookup during the import: {body}");
        slowest = slowest.max(t.elapsed());
        during += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(import.wait().expect("import").success());
    assert!(during > 0, "the import ended before any read");
    assert!(
        slowest < Duration::from_secs(2),
        "a read took {slowest:?} during the import"
    );
    // within a second of the import the server serves the new data
    let done = Instant::now();
    let after = loop {
        let v = stats(&server);
        if v["generation"].as_i64() != Some(gen0) && v["stats"]["orders"].as_i64() > Some(0) {
            break v;
        }
        assert!(
            done.elapsed() < Duration::from_secs(1),
            "not refreshed within 1 s: {v}"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    let cli = json(dir, &["stats", "--json"]);
    assert_eq!(
        after["stats"]["orders"], cli["orders"],
        "server {after} vs cli {cli}"
    );
    assert_eq!(after["stats"]["revenue"], cli["revenue"]);
}

#[test]
fn acknowledged_reads_are_in_the_trail_after_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    let admin = key(dir, "adm", "admin", &[]);
    let mut server = Server::start(dir);
    let (st, body) = http(
        server.addr,
        "POST",
        "/v1/customers/lookup",
        Some(&admin),
        Some(r#"{"key":"crm:C000001"}"#),
    );
    assert_eq!(st, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).expect("json")["id"]
        .as_i64()
        .expect("id");
    // concurrent clients; every 200 must leave a record
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let addr = server.addr;
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let acked = acked.clone();
            let admin = admin.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let (st, _) = http(
                        addr,
                        "GET",
                        &format!("/v1/customers/{id}"),
                        Some(&admin),
                        None,
                    );
                    if st == 200 {
                        acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client");
    }
    // no graceful anything: SIGKILL
    server.child.kill().expect("kill -9");
    server.child.wait().ok();
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(acked, 200, "every read was answered");
    let v = json(dir, &["audit", "verify", "--json"]);
    assert_eq!(v["first_bad"], Value::Null, "{v}");
    let reads = json(
        dir,
        &["audit", "--json", "--actor", "adm", "--limit", "1000"],
    );
    let n = reads
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "customers.read")
        .count();
    assert_eq!(
        n, acked,
        "acknowledged reads missing from the trail after kill -9"
    );
}

#[test]
fn customer_tokens_see_only_their_own_customer() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    let (email, ckey) = an_email(dir);
    let t = json(
        dir,
        &["customer", "token", &ckey, "--expires", "1h", "--json"],
    );
    let token = t["token"].as_str().expect("token").to_string();
    let own = t["customer"].as_i64().expect("customer");
    let server = Server::start(dir);
    let (st, body) = http(server.addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(st, 200, "{body}");
    let me: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(me["id"].as_i64(), Some(own));
    assert!(
        body.contains(&email),
        "a customer sees their own email unmasked"
    );
    let (st, _) = http(
        server.addr,
        "GET",
        &format!("/v1/customers/{own}"),
        Some(&token),
        None,
    );
    assert_eq!(st, 403, "a token has no staff rights, not even on itself");
    let (st, _) = http(
        server.addr,
        "GET",
        &format!("/v1/customers/{}", own + 1),
        Some(&token),
        None,
    );
    assert_eq!(st, 403);
    let (st, _) = http(server.addr, "GET", "/v1/audit", Some(&token), None);
    assert_eq!(st, 403);
    ok(dir, &["keys", "revoke", t["id"].as_str().expect("id")]);
    let (st, body) = http(server.addr, "GET", "/v1/me", Some(&token), None);
    assert_eq!(st, 401, "a revoked token still works: {body}");
}
