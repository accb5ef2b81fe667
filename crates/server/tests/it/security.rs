//! The security regime of the API (issue 17), in process against the real
//! router, layers, engine and store (see `fixture`):
//!
//! 1. every route of [`ROUTES`] × every kind of principal: 401 (with
//!    `WWW-Authenticate`) for missing, malformed, unknown, expired and
//!    revoked credentials, 403 for roles without the action, for a
//!    department key on a customer the department does not know and for
//!    customer tokens, 2xx for the roles that have the action;
//! 2. IDOR: customer tokens never read another customer;
//! 3. planted values never reach a role that must not see their class, the
//!    access log or the audit trail;
//! 4. key secrets are not in the store's files;
//! 5. failed authentications lock the client out (429, `Retry-After`);
//! 6. fuzzed paths, queries and bodies never cause a 5xx;
//! 7. every successful customer read is in the audit trail under its actor
//!    and request id, and the chain is intact.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use infogap_core::access::{Action, FieldClass, Visibility};
use infogap_server::routes::{ROUTES, RouteDef};
use infogap_server::state::AppState;
use infogap_server::{HttpConfig, LogSink, Metrics};
use infogap_store::audit::{AuditFilter, AuditLog, AuditRecord, audit_path};
use serde_json::Value;

use super::fixture::{Captured, Fixture, Key, PLANTED, fixture, serve_in_background};

// ---------------------------------------------------------------------------
// Helpers

/// Runs an async test body on a runtime of its own (the server has its own).
fn run<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(f)
}

fn client() -> reqwest::Client {
    crate::http_client()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client")
}

/// A response, read whole.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    fn request_id(&self) -> String {
        self.header("x-request-id")
            .expect("every response carries x-request-id")
    }

    fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One request.
#[derive(Debug, Clone, Default)]
struct Req {
    method: String,
    /// Path and query (already encoded).
    path: String,
    auth: Option<String>,
    body: Option<Vec<u8>>,
    content_type: Option<String>,
    accept: Option<String>,
}

impl Req {
    fn get(path: impl Into<String>) -> Req {
        Req {
            method: "GET".into(),
            path: path.into(),
            ..Default::default()
        }
    }

    fn bearer(mut self, secret: &str) -> Req {
        self.auth = Some(format!("Bearer {secret}"));
        self
    }

    fn auth(mut self, header: Option<String>) -> Req {
        self.auth = header;
        self
    }

    fn json_body(mut self, v: &Value) -> Req {
        self.body = Some(v.to_string().into_bytes());
        self.content_type = Some("application/json".into());
        self
    }
}

async fn send(c: &reqwest::Client, base: &str, r: &Req) -> Resp {
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).expect("a method");
    let url = format!("{base}{}", r.path);
    let mut b = c.request(method, &url);
    if let Some(a) = &r.auth {
        b = b.header("authorization", a);
    }
    if let Some(ct) = &r.content_type {
        b = b.header("content-type", ct);
    }
    if let Some(a) = &r.accept {
        b = b.header("accept", a);
    }
    if let Some(body) = &r.body {
        b = b.body(body.clone());
    }
    let res = b
        .send()
        .await
        .unwrap_or_else(|e| panic!("{} {url}: {e:?}", r.method));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.bytes().await.expect("a body").to_vec();
    Resp {
        status,
        headers,
        body,
    }
}

/// Checks a JSON error: the status, `{"code","message"}` and nothing else,
/// and for 401 the `WWW-Authenticate` challenge.
fn assert_error(r: &Resp, status: u16, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    assert_json_error_shape(r, what);
    assert_eq!(r.json()["code"], code, "{what}: {}", r.text());
    if status == 401 {
        assert_eq!(
            r.header("www-authenticate").as_deref(),
            Some("Bearer"),
            "{what}: a 401 carries WWW-Authenticate"
        );
    }
}

fn assert_json_error_shape(r: &Resp, what: &str) {
    let ct = r.header("content-type").unwrap_or_default();
    assert!(
        ct.starts_with("application/json"),
        "{what}: status {} with content-type {ct:?}: {}",
        r.status,
        r.text()
    );
    let v = r.json();
    let o = v
        .as_object()
        .unwrap_or_else(|| panic!("{what}: error is not an object: {v}"));
    assert!(
        o.len() == 2 && o["code"].is_string() && o["message"].is_string(),
        "{what}: an error is exactly {{code, message}}: {v}"
    );
}

/// The needles of `hay` that it contains (case-insensitive).
fn found<'a>(hay: &str, needles: &[&'a str]) -> Vec<&'a str> {
    let h = hay.to_lowercase();
    needles
        .iter()
        .copied()
        .filter(|n| !n.is_empty() && h.contains(&n.to_lowercase()))
        .collect()
}

/// Every planted value.
fn planted_all() -> Vec<&'static str> {
    let p = &PLANTED;
    vec![
        p.email,
        p.phone_digits,
        "013-4242",
        "555) 013",
        p.first_name,
        p.last_name,
        p.region,
        p.ticket_text,
        p.survey_text,
        p.guest_email,
    ]
}

/// The planted values of a field class.
fn planted_of(c: FieldClass) -> Vec<&'static str> {
    let p = &PLANTED;
    match c {
        FieldClass::Contact => vec![
            p.email,
            p.guest_email,
            p.phone_digits,
            "013-4242",
            "555) 013",
            p.first_name,
            p.last_name,
        ],
        FieldClass::Demographic => vec![p.region],
        FieldClass::FeedbackText => vec![p.ticket_text, p.survey_text],
        _ => vec![],
    }
}

/// Every credential string and its secret part.
fn secrets(fx: &Fixture) -> Vec<String> {
    let mut v = Vec::new();
    for k in fx.all_keys() {
        v.push(k.secret.clone());
        let secret = k.secret.rsplit('_').next().expect("a secret part");
        assert_eq!(secret.len(), 64, "{}", k.name);
        v.push(secret.to_string());
    }
    v
}

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn role_of<'a>(fx: &'a Fixture, k: &Key) -> &'a infogap_engine::access::RolePolicy {
    fx.policy
        .role(&k.role)
        .unwrap_or_else(|| panic!("role {} is in the policy", k.role))
}

/// The access log must never hold a planted value, a credential or an
/// email address, whoever called.
fn assert_access_log_clean(fx: &Fixture) {
    let log = fx.log.text();
    assert!(!log.is_empty(), "the access log was captured");
    let leaked = found(&log, &planted_all());
    assert!(leaked.is_empty(), "the access log holds {leaked:?}");
    for s in secrets(fx) {
        assert!(!log.contains(&s), "the access log holds a credential");
    }
    assert!(!log.contains('@'), "the access log holds an email address");
    let templates: HashSet<&str> = ROUTES
        .iter()
        .map(|r| r.path)
        .chain(infogap_server::pages::PAGES.iter().map(|p| p.path))
        .collect();
    for line in log.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("log line {line}: {e}"));
        let route = v["route"].as_str().unwrap_or_default();
        assert!(
            route == "unmatched" || templates.contains(route),
            "the access log names a raw path: {line}"
        );
        let o = v.as_object().expect("an object");
        for k in o.keys() {
            assert!(
                [
                    "ts",
                    "request_id",
                    "method",
                    "route",
                    "status",
                    "ms",
                    "bytes",
                    "client",
                    "actor"
                ]
                .contains(&k.as_str()),
                "unexpected access-log field {k}: {line}"
            );
        }
    }
}

fn read_audit(fx: &Fixture) -> Vec<AuditRecord> {
    let log = AuditLog::open(&audit_path(&fx.db), false).expect("the audit trail opens");
    log.records(&AuditFilter {
        limit: 0,
        ..Default::default()
    })
    .expect("the audit trail reads")
}

fn assert_audit_chain_intact(fx: &Fixture) {
    let log = AuditLog::open(&audit_path(&fx.db), false).expect("the audit trail opens");
    let check = log.verify().expect("verify runs");
    assert!(check.intact(), "audit chain broken: {check:?}");
    assert!(check.entries > 0);
}

// ---------------------------------------------------------------------------
// 1 + 7. Route × principal, and the audit of every successful read

/// What a concrete request of a route is about.
#[derive(Debug, Clone)]
struct Built {
    req: Req,
    /// The customer whose data the route returns (single-customer routes).
    subject: Option<i64>,
    /// Audit action of a successful read of customer data (`None`: the
    /// route returns no customer data).
    audit_action: Option<&'static str>,
    /// The route returns many customers (ids in the body).
    list: bool,
    /// The route needs the predictions class (403 when hidden).
    predictions: bool,
    /// The request names a resource that does not exist (an allowed
    /// principal gets 404, so the walk changes nothing).
    missing: bool,
}

/// Concrete values for path parameters.
struct Params<'a> {
    customer: i64,
    lookup_key: &'a str,
    segment: &'a str,
    kind: &'a str,
    job: u64,
}

/// Builds a concrete request of a route. A route this does not know fails
/// the test: a new route cannot go untested.
fn build(def: &RouteDef, p: &Params<'_>) -> Built {
    let id = p.customer;
    let plain = |path: String| Built {
        req: Req {
            method: def.method.to_string(),
            path,
            ..Default::default()
        },
        subject: None,
        audit_action: None,
        list: false,
        predictions: false,
        missing: false,
    };
    let customer = |path: String, action: &'static str, predictions: bool| Built {
        subject: Some(id),
        audit_action: Some(action),
        predictions,
        ..plain(path)
    };
    match (def.method, def.path) {
        ("GET", "/healthz") | ("GET", "/metrics") | ("GET", "/v1/openapi.json") => {
            plain(def.path.to_string())
        }
        ("POST", "/v1/customers/lookup") => {
            let mut b = customer(def.path.to_string(), "customers.lookup", false);
            b.req = b.req.json_body(&serde_json::json!({ "key": p.lookup_key }));
            b
        }
        ("GET", "/v1/customers/{id}") => {
            customer(format!("/v1/customers/{id}"), "customers.read", false)
        }
        ("GET", "/v1/customers/{id}/timeline") => customer(
            format!("/v1/customers/{id}/timeline"),
            "customers.timeline",
            false,
        ),
        ("GET", "/v1/customers/{id}/recommendations") => customer(
            format!("/v1/customers/{id}/recommendations"),
            "recommendations.read",
            true,
        ),
        ("GET", "/v1/customers/{id}/churn") => {
            customer(format!("/v1/customers/{id}/churn"), "churn.read", true)
        }
        ("GET", "/v1/customers/{id}/clv") => {
            customer(format!("/v1/customers/{id}/clv"), "clv.read", true)
        }
        ("GET", "/v1/customers/{id}/consents") => customer(
            format!("/v1/customers/{id}/consents"),
            "consents.read",
            false,
        ),
        // granting analytics (opt-out by default) changes no other answer
        ("PUT", "/v1/customers/{id}/consents") => {
            let mut b = customer(
                format!("/v1/customers/{id}/consents"),
                "consents.write",
                false,
            );
            b.req = b
                .req
                .json_body(&serde_json::json!({"purpose": "analytics", "granted": true}));
            b
        }
        ("GET", "/v1/me/consents") => Built {
            audit_action: Some("self.read"),
            ..plain(def.path.to_string())
        },
        ("PUT", "/v1/me/consents") => {
            let mut b = Built {
                audit_action: Some("self.write"),
                ..plain(def.path.to_string())
            };
            b.req = b
                .req
                .json_body(&serde_json::json!({"purpose": "analytics", "granted": true}));
            b
        }
        ("GET", "/v1/segments") => plain(def.path.to_string()),
        ("GET", "/v1/segments/{name}/members") => Built {
            audit_action: Some("segments.export"),
            list: true,
            ..plain(format!("/v1/segments/{}/members?limit=1000", p.segment))
        },
        ("GET", "/v1/churn/watchlist") => Built {
            audit_action: Some("churn.watchlist"),
            list: true,
            predictions: true,
            ..plain("/v1/churn/watchlist?top=1000".into())
        },
        ("GET", "/v1/customers/{id}/gap") => {
            customer(format!("/v1/customers/{id}/gap"), "gap.customer", false)
        }
        ("GET", "/v1/customers/{id}/ask-next") => customer(
            format!("/v1/customers/{id}/ask-next?top=3"),
            "gap.ask_next",
            false,
        ),
        ("GET", "/v1/gap") | ("GET", "/v1/gap/departments") => plain(def.path.to_string()),
        ("GET", "/v1/stats") | ("GET", "/v1/forecasts") => plain(def.path.to_string()),
        ("GET", "/v1/me") => Built {
            audit_action: Some("self.read"),
            ..plain(def.path.to_string())
        },
        ("GET", "/v1/me/recommendations") => Built {
            audit_action: Some("recommendations.read"),
            predictions: true,
            ..plain(def.path.to_string())
        },
        // the export as JSON (the zip is checked in `export.rs`): admin only
        ("GET", "/v1/customers/{id}/export") => customer(
            format!("/v1/customers/{id}/export?format=json"),
            "privacy.export",
            false,
        ),
        ("GET", "/v1/me/export") => Built {
            audit_action: Some("privacy.export"),
            ..plain("/v1/me/export?format=json".into())
        },
        ("POST", "/v1/models/{kind}/train") => plain(format!("/v1/models/{}/train", p.kind)),
        ("GET", "/v1/jobs/{id}") => plain(format!("/v1/jobs/{}", p.job)),
        ("GET", "/v1/audit") => plain("/v1/audit?limit=5".into()),
        // a dry run: the walk must not erase the fixture's customers
        ("POST", "/v1/customers/{id}/erase") => {
            let mut b = customer(format!("/v1/customers/{id}/erase"), "privacy.erase", false);
            b.req = b.req.json_body(&serde_json::json!({"dry_run": true}));
            b
        }
        // queued for approval (the default), so nothing is erased
        ("POST", "/v1/me/erase") => Built {
            audit_action: Some("privacy.erase.request"),
            ..plain(def.path.to_string())
        },
        ("GET", "/v1/erasures") => plain(def.path.to_string()),
        // approving a real request erases a fixture customer: the walk
        // checks who may, on a request that does not exist
        ("POST", "/v1/erasures/{id}/approve") => Built {
            missing: true,
            ..plain("/v1/erasures/999999/approve".into())
        },
        ("GET", "/v1/alerts") => Built {
            audit_action: Some("alerts.read"),
            list: true,
            ..plain("/v1/alerts?limit=100".into())
        },
        // aggregates only: no customer named, nothing to audit per person
        ("GET", "/v1/feedback/summary") => {
            plain("/v1/feedback/summary?period=week&by=segment".into())
        }
        ("GET", "/v1/webhooks" | "/v1/webhooks/messages" | "/v1/webhooks/dead") => {
            plain(def.path.to_string())
        }
        // a webhook that takes withdrawals, to a port nobody listens on
        ("POST", "/v1/webhooks") => {
            let mut b = plain(def.path.to_string());
            b.req = b.req.json_body(&serde_json::json!({
                "url": "http://127.0.0.1:9/walk", "events": ["consent.withdrawn"], "role": "support"
            }));
            b
        }
        ("DELETE", "/v1/webhooks/{id}") => Built {
            missing: true,
            ..plain("/v1/webhooks/999999".into())
        },
        ("POST", "/v1/webhooks/dead/{id}/replay") => Built {
            missing: true,
            ..plain("/v1/webhooks/dead/999999/replay".into())
        },
        // intake: the message denies analytics, so it is journaled and
        // then dropped, and the walk adds no fact to the fixture
        (
            "POST",
            "/v1/identify" | "/v1/track" | "/v1/page" | "/v1/screen" | "/v1/alias" | "/v1/batch",
        ) => {
            let mut msg = serde_json::json!({
                "userId": "security-walk", "previousId": "security-walk-0", "event": "Probe",
                "context": {"consent": {"categoryPreferences": {"analytics": false}}}
            });
            let body = if def.path == "/v1/batch" {
                msg["type"] = "track".into();
                serde_json::json!({ "batch": [msg] })
            } else {
                msg
            };
            let mut b = plain(def.path.to_string());
            b.req = b.req.json_body(&body);
            b
        }
        (m, path) => panic!(
            "ROUTES has {m} {path}, which the security tests do not know how to build: \
             add it to `build` in crates/server/tests/it/security.rs"
        ),
    }
}

/// The customer a single-customer response is about.
fn subject_of(v: &Value) -> Option<i64> {
    ["id", "customer_id", "customer"]
        .iter()
        .find_map(|k| v[*k].as_i64())
}

/// The ids of the customers a list response names (none for the analyst's
/// pseudonymized lists, whose rows carry `p_…` keys and no id).
fn list_ids(v: &Value) -> Vec<i64> {
    if let Some(alerts) = v["alerts"].as_array() {
        return alerts
            .iter()
            .map(|a| a["customer_id"].as_i64().expect("an alert's customer"))
            .collect();
    }
    let arr = v["members"]
        .as_array()
        .or_else(|| v["customers"].as_array())
        .unwrap_or_else(|| panic!("a list response has members or customers: {v}"));
    if v["pseudonymized"] == true {
        for m in arr {
            assert!(m.get("id").is_none(), "a pseudonymized row has an id: {m}");
            assert!(
                m["key"].as_str().is_some_and(|k| k.starts_with("p_")),
                "a pseudonymized row without a pseudonym: {m}"
            );
        }
        return vec![];
    }
    arr.iter()
        .map(|m| m["id"].as_i64().expect("an id"))
        .collect()
}

/// A read the audit trail must hold.
#[derive(Debug)]
struct Expected {
    request_id: String,
    actor: String,
    action: &'static str,
    customers: Vec<i64>,
    what: String,
}

/// The names of the segments, as admin lists them.
async fn segment_names(c: &reqwest::Client, fx: &Fixture) -> Vec<String> {
    let r = send(
        c,
        &fx.base,
        &Req::get("/v1/segments").bearer(&fx.staff("admin").secret),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<String> = r.json()["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| s["name"].as_str().expect("a name").to_string())
        .collect();
    assert!(!names.is_empty());
    names
}

#[test]
fn every_route_against_every_principal() {
    let fx = fixture();
    let (expected, denied) = run(async {
        let c = client();
        let admin = fx.staff("admin");
        let names = segment_names(&c, fx).await;
        // `{name}`: champions if the demo has it
        let segment = if names.iter().any(|n| n == "champions") {
            "champions".to_string()
        } else {
            names[0].replace(' ', "-")
        };
        // a job to look at (CLV trains in well under a second)
        let r = send(
            &c,
            &fx.base,
            &Req {
                method: "POST".into(),
                ..Req::get("/v1/models/clv/train")
            }
            .bearer(&admin.secret),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let job = r.json()["id"].as_u64().expect("a job id");

        let a_params = Params {
            customer: fx.customer_a,
            lookup_key: "crm:CZZ0001",
            segment: &segment,
            kind: "clv",
            job,
        };
        let outside_key = format!("#{}", fx.outside_support);
        let outside_params = Params {
            customer: fx.outside_support,
            lookup_key: &outside_key,
            ..a_params
        };
        let b_key = format!("#{}", fx.customer_b);
        let b_params = Params {
            customer: fx.customer_b,
            lookup_key: &b_key,
            ..a_params
        };
        let unknown_igk = format!("igk_{}_{}", "0123456789abcdef", "ab".repeat(32));
        let unknown_igc = format!("igc_{}_{}", "fedcba9876543210", "cd".repeat(32));
        // a real key id with a wrong secret, and a key presented as a token
        let admin_id = admin.secret.split('_').nth(1).expect("an id");
        let wrong_secret = format!("igk_{admin_id}_{}", "00".repeat(32));
        let as_token = admin.secret.replacen("igk_", "igc_", 1);
        let refused: Vec<(&str, Option<String>)> = vec![
            ("no Authorization header", None),
            ("Bearer garbage", Some("Bearer garbage".into())),
            ("empty bearer", Some("Bearer ".into())),
            (
                "Basic scheme with a real key",
                Some(format!("Basic {}", admin.secret)),
            ),
            ("unknown igk key", Some(format!("Bearer {unknown_igk}"))),
            ("unknown igc token", Some(format!("Bearer {unknown_igc}"))),
            (
                "known id, wrong secret",
                Some(format!("Bearer {wrong_secret}")),
            ),
            (
                "a key presented as a token",
                Some(format!("Bearer {as_token}")),
            ),
            ("expired key", Some(format!("Bearer {}", fx.expired.secret))),
            ("revoked key", Some(format!("Bearer {}", fx.revoked.secret))),
        ];
        // the 10th failure in a row would lock 127.0.0.1 out: a success
        // between halves forgets the failures
        let reset = Req::get("/v1/stats").bearer(&admin.secret);

        let mut expected: Vec<Expected> = Vec::new();
        let mut denied: Vec<(String, String)> = Vec::new();
        let mut ok_routes: HashSet<&str> = HashSet::new();
        let data_needles: Vec<&str> = {
            let mut v = planted_all();
            v.push("@example.");
            v
        };

        for def in ROUTES {
            let what = |who: &str| format!("{} {} as {who}", def.method, def.path);
            let built = build(def, &a_params);
            let Some(action) = def.action else {
                // public: answered without a key, and no customer data
                let r = send(&c, &fx.base, &built.req).await;
                assert_eq!(r.status, 200, "{}: {}", what("anonymous"), r.text());
                let leaked = found(&r.text(), &data_needles);
                assert!(leaked.is_empty(), "{} shows {leaked:?}", what("anonymous"));
                ok_routes.insert(def.path);
                continue;
            };

            // 401: every kind of bad credential
            for (i, (label, header)) in refused.iter().enumerate() {
                // before each route too: the one before may have ended
                // without a success (404s and 403s reset nothing)
                if i == 0 || i == refused.len() / 2 {
                    let r = send(&c, &fx.base, &reset).await;
                    assert_eq!(r.status, 200, "{}", r.text());
                }
                let r = send(&c, &fx.base, &built.req.clone().auth(header.clone())).await;
                assert_error(&r, 401, "unauthorized", &what(label));
                assert_eq!(
                    r.json()["message"],
                    infogap_engine::keys::REFUSED,
                    "{}: every refusal says the same",
                    what(label)
                );
            }

            // staff keys: the action decides
            for k in &fx.staff {
                let role = role_of(fx, k);
                let r = send(&c, &fx.base, &built.req.clone().bearer(&k.secret)).await;
                let may = role.actions.contains(&action)
                    && (!built.predictions
                        || role.visibility(FieldClass::Predictions) != Visibility::Hidden);
                if !may {
                    assert_error(&r, 403, "forbidden", &what(&k.name));
                    if !role.actions.contains(&action) {
                        denied.push((r.request_id(), k.name.clone()));
                    }
                    continue;
                }
                if built.missing {
                    assert_error(&r, 404, "not_found", &what(&k.name));
                    ok_routes.insert(def.path);
                    continue;
                }
                assert!(r.ok(), "{}: {} {}", what(&k.name), r.status, r.text());
                ok_routes.insert(def.path);
                if def.path == "/v1/models/{kind}/train" {
                    assert_eq!(r.status, 202, "{}", what(&k.name));
                }
                if let Some(act) = built.audit_action {
                    let customers = if built.list {
                        list_ids(&r.json())
                    } else {
                        built.subject.into_iter().collect()
                    };
                    if let Some(s) = built.subject {
                        let got = subject_of(&r.json());
                        assert_eq!(got, Some(s), "{}: the subject answers", what(&k.name));
                    }
                    expected.push(Expected {
                        request_id: r.request_id(),
                        actor: k.name.clone(),
                        action: act,
                        customers,
                        what: what(&k.name),
                    });
                }
            }

            // a department key on a customer its department does not know
            if let Some(s) = built.subject {
                assert!(!fx.known_to_support.contains(&fx.outside_support));
                let out = build(def, &outside_params);
                let r = send(&c, &fx.base, &out.req.bearer(&fx.support_dept.secret)).await;
                assert_error(
                    &r,
                    403,
                    "forbidden",
                    &what("support-dept, outside customer"),
                );
                // the refusal is in the trail too
                denied.push((r.request_id(), fx.support_dept.name.clone()));
                // …and on one it knows, as its role allows
                let r = send(
                    &c,
                    &fx.base,
                    &built.req.clone().bearer(&fx.support_dept.secret),
                )
                .await;
                let role = role_of(fx, &fx.support_dept);
                if role.actions.contains(&action) {
                    assert!(r.ok(), "{}: {}", what("support-dept on A"), r.text());
                    expected.push(Expected {
                        request_id: r.request_id(),
                        actor: fx.support_dept.name.clone(),
                        action: built.audit_action.expect("a customer route is audited"),
                        customers: vec![s],
                        what: what("support-dept on A"),
                    });
                } else {
                    assert_error(&r, 403, "forbidden", &what("support-dept on A"));
                }
            }

            // customer tokens: only /v1/me…, only their own customer
            for (tok, own) in [(&fx.token_a, fx.customer_a), (&fx.token_b, fx.customer_b)] {
                let other = if own == fx.customer_a {
                    &b_params
                } else {
                    &a_params
                };
                let on_other = build(def, other);
                let r = send(&c, &fx.base, &on_other.req.bearer(&tok.secret)).await;
                if !matches!(action, Action::SelfRead | Action::SelfWrite) {
                    assert_error(&r, 403, "forbidden", &what(&tok.name));
                    // and on their own id too: tokens have no staff reads
                    let r = send(&c, &fx.base, &built.req.clone().bearer(&tok.secret)).await;
                    assert_error(&r, 403, "forbidden", &what(&format!("{} on A", tok.name)));
                    continue;
                }
                assert!(r.ok(), "{}: {}", what(&tok.name), r.text());
                ok_routes.insert(def.path);
                let got = subject_of(&r.json());
                assert_eq!(
                    got,
                    Some(own),
                    "{}: a token sees its own customer",
                    what(&tok.name)
                );
                expected.push(Expected {
                    request_id: r.request_id(),
                    actor: tok.name.clone(),
                    action: built.audit_action.expect("/v1/me is audited"),
                    customers: vec![own],
                    what: what(&tok.name),
                });
            }
        }
        for def in ROUTES {
            assert!(
                ok_routes.contains(def.path),
                "no principal could use {} {}",
                def.method,
                def.path
            );
        }
        (expected, denied)
    });

    // 7. every successful read is in the trail under its actor and request
    // id (read outside the async runtime: the trail has its own)
    let records = read_audit(fx);
    let by_request: HashMap<&str, Vec<&AuditRecord>> =
        records.iter().fold(HashMap::new(), |mut m, r| {
            if let Some(id) = r.entry.request_id.as_deref() {
                m.entry(id).or_default().push(r);
            }
            m
        });
    assert!(expected.len() > 30, "{} audited reads", expected.len());
    for e in &expected {
        let recs = by_request
            .get(e.request_id.as_str())
            .unwrap_or_else(|| panic!("{}: no audit record for request {}", e.what, e.request_id));
        let hit = recs.iter().any(|r| {
            r.entry.actor == e.actor
                && r.entry.action == e.action
                && r.entry.detail == "ok"
                && r.entry.origin == "127.0.0.1"
                && e.customers.iter().all(|c| r.entry.customers.contains(c))
        });
        assert!(
            hit,
            "{}: the audit record does not name {} / {} / {:?}: {recs:?}",
            e.what, e.actor, e.action, e.customers
        );
    }
    for (rid, actor) in &denied {
        let recs = by_request
            .get(rid.as_str())
            .unwrap_or_else(|| panic!("no audit record of the refusal {rid} of {actor}"));
        assert!(
            recs.iter()
                .any(|r| &r.entry.actor == actor && r.entry.detail.starts_with("denied")),
            "refusal of {actor} not recorded as denied: {recs:?}"
        );
    }
    assert_audit_chain_intact(fx);
    assert_access_log_clean(fx);
}

// ---------------------------------------------------------------------------
// 2. IDOR

#[test]
fn customer_tokens_never_read_another_customer() {
    let fx = fixture();
    run(async {
        let c = client();
        let mut rng = Rng(0x1d0c_0ffe_e123);
        let paths = ["", "/timeline", "/recommendations", "/churn", "/clv"];
        let mut cases: Vec<(Key, i64, Req)> = Vec::new();
        for _ in 0..1000 {
            let (tok, own) = if rng.below(2) == 0 {
                (&fx.token_a, fx.customer_a)
            } else {
                (&fx.token_b, fx.customer_b)
            };
            let req = match rng.below(9) {
                // a lookup of someone else: tokens cannot look up
                8 => {
                    let other = fx.customers[rng.below(fx.customers.len())];
                    let key = if rng.below(2) == 0 {
                        format!("#{other}")
                    } else {
                        PLANTED.email.to_string()
                    };
                    Req {
                        method: "POST".into(),
                        ..Req::get("/v1/customers/lookup")
                    }
                    .json_body(&serde_json::json!({ "key": key }))
                }
                // its own view, trying to name someone else
                0 => {
                    let other = fx.customers[rng.below(fx.customers.len())];
                    let p = if rng.below(2) == 0 {
                        "/v1/me"
                    } else {
                        "/v1/me/recommendations"
                    };
                    Req::get(format!("{p}?id={other}&customer={other}"))
                }
                _ => {
                    let other = match rng.below(10) {
                        0 => [0, -1, i64::MAX, i64::MIN, 999_999][rng.below(5)],
                        1 => {
                            if own == fx.customer_a {
                                fx.customer_b
                            } else {
                                fx.customer_a
                            }
                        }
                        _ => loop {
                            let x = fx.customers[rng.below(fx.customers.len())];
                            if x != own {
                                break x;
                            }
                        },
                    };
                    Req::get(format!(
                        "/v1/customers/{other}{}",
                        paths[rng.below(paths.len())]
                    ))
                }
            };
            cases.push((tok.clone(), own, req.bearer(&tok.secret)));
        }
        let mut successes = Vec::new();
        let mut me_calls = 0;
        for chunk in cases.chunks(8) {
            let mut set = tokio::task::JoinSet::new();
            for (tok, own, req) in chunk.iter().cloned() {
                let c = c.clone();
                let base = fx.base.clone();
                set.spawn(async move {
                    let r = send(&c, &base, &req).await;
                    (tok, own, req, r)
                });
            }
            while let Some(done) = set.join_next().await {
                let (tok, own, req, r) = done.expect("a task");
                if req.path.starts_with("/v1/me") {
                    me_calls += 1;
                    assert_eq!(r.status, 200, "{} {}: {}", tok.name, req.path, r.text());
                    let got = subject_of(&r.json());
                    if got != Some(own) {
                        successes.push(format!("{} {} -> {got:?}", tok.name, req.path));
                    }
                } else if r.ok() {
                    successes.push(format!("{} {} -> {}", tok.name, req.path, r.status));
                } else {
                    assert_error(&r, 403, "forbidden", &format!("{} {}", tok.name, req.path));
                }
            }
        }
        assert!(me_calls > 50);
        assert!(
            successes.is_empty(),
            "{} of 1000 IDOR attempts read another customer: {:?}",
            successes.len(),
            &successes[..successes.len().min(10)]
        );
    });
}

// ---------------------------------------------------------------------------
// 3. Planted values never leak

/// Everything a principal can read about the planted customers, as text.
async fn everything_seen(
    c: &reqwest::Client,
    fx: &Fixture,
    k: &Key,
    segments: &[String],
) -> String {
    let mut out = String::new();
    let mut reqs: Vec<Req> = Vec::new();
    for id in [fx.customer_a, fx.guest] {
        for p in [
            "",
            "/timeline?limit=500",
            "/recommendations?k=20",
            "/churn",
            "/clv",
        ] {
            reqs.push(Req::get(format!("/v1/customers/{id}{p}")));
        }
    }
    for key in [
        PLANTED.email,
        PLANTED.phone_raw,
        "crm:CZZ0001",
        "support:SZZ0001",
        PLANTED.guest_email,
    ] {
        reqs.push(
            Req {
                method: "POST".into(),
                ..Req::get("/v1/customers/lookup")
            }
            .json_body(&serde_json::json!({ "key": key })),
        );
    }
    reqs.push(Req::get("/v1/segments"));
    for s in segments {
        let path = format!("/v1/segments/{}/members?limit=1000", s.replace(' ', "-"));
        reqs.push(Req::get(path.clone()));
        reqs.push(Req {
            accept: Some("text/csv".into()),
            ..Req::get(path)
        });
    }
    reqs.push(Req::get("/v1/churn/watchlist?top=1000"));
    for r in reqs {
        let res = send(c, &fx.base, &r.clone().bearer(&k.secret)).await;
        assert!(
            res.status < 500,
            "{} {} as {}: {}",
            r.method,
            r.path,
            k.name,
            res.text()
        );
        if r.accept.is_some() && res.ok() {
            assert!(
                res.header("content-type")
                    .is_some_and(|c| c.starts_with("text/csv")),
                "{}: a CSV export",
                r.path
            );
        }
        out.push_str(&res.text());
        out.push('\n');
    }
    out
}

#[test]
fn planted_values_reach_only_the_roles_that_may_see_them() {
    let fx = fixture();
    run(async {
        let c = client();
        let segments = segment_names(&c, fx).await;
        let masked_email = "p***@example.org";
        let masked_ticket = format!(
            "[redacted: {} characters]",
            PLANTED.ticket_text.chars().count()
        );

        // admin sees it all: the checks below could fail
        let admin = fx.staff("admin");
        let seen = everything_seen(&c, fx, admin, &segments).await;
        let shown = found(&seen, &planted_all());
        for v in [
            PLANTED.email,
            PLANTED.phone_digits,
            PLANTED.first_name,
            PLANTED.last_name,
            PLANTED.region,
            PLANTED.ticket_text,
            PLANTED.survey_text,
            PLANTED.guest_email,
        ] {
            assert!(shown.contains(&v), "admin does not see {v}");
        }
        // the guest's email is its key in a segment's CSV export
        let mut in_csv = 0;
        for s in &segments {
            let r = send(
                &c,
                &fx.base,
                &Req {
                    accept: Some("text/csv".into()),
                    ..Req::get(format!("/v1/segments/{}/members", s.replace(' ', "-")))
                }
                .bearer(&admin.secret),
            )
            .await;
            assert_eq!(r.status, 200, "{}", r.text());
            assert!(r.text().starts_with("id,key,segment,"));
            in_csv += usize::from(r.text().contains(PLANTED.guest_email));
        }
        assert_eq!(in_csv, 1, "the guest is in one segment's CSV for admin");

        let mut who: Vec<&Key> = fx
            .staff
            .iter()
            .filter(|k| k.role != "admin" && k.role != "source")
            .collect();
        who.push(&fx.support_dept);
        for k in who {
            let role = role_of(fx, k);
            let seen = everything_seen(&c, fx, k, &segments).await;
            let mut must_not: Vec<&str> = Vec::new();
            for class in [
                FieldClass::Contact,
                FieldClass::Demographic,
                FieldClass::FeedbackText,
            ] {
                let vis = role.visibility(class);
                if vis != Visibility::Visible {
                    must_not.extend(planted_of(class));
                }
            }
            if k.name == fx.support_dept.name {
                // facts of other departments: CRM attributes, surveys, guest orders
                must_not.extend([
                    PLANTED.first_name,
                    PLANTED.last_name,
                    PLANTED.region,
                    PLANTED.survey_text,
                    PLANTED.guest_email,
                ]);
            }
            let leaked = found(&seen, &must_not);
            assert!(
                leaked.is_empty(),
                "{} (role {}) sees {leaked:?}",
                k.name,
                k.role
            );
            // and what it may see, it does see (shaped as the policy says)
            let dept = k.name == fx.support_dept.name;
            match role.visibility(FieldClass::Contact) {
                Visibility::Visible if !dept => {
                    assert!(seen.contains(PLANTED.email), "{} misses the email", k.name)
                }
                Visibility::Masked => {
                    assert!(
                        seen.contains(masked_email),
                        "{} misses the masked email",
                        k.name
                    )
                }
                _ => {}
            }
            match role.visibility(FieldClass::FeedbackText) {
                Visibility::Visible => assert!(
                    seen.contains(PLANTED.ticket_text),
                    "{} misses the ticket text",
                    k.name
                ),
                Visibility::Masked => assert!(
                    seen.contains(&masked_ticket),
                    "{} misses the redacted ticket text",
                    k.name
                ),
                Visibility::Hidden => {}
            }
            if role.visibility(FieldClass::Demographic) == Visibility::Visible && !dept {
                assert!(
                    seen.contains(PLANTED.region),
                    "{} misses the region",
                    k.name
                );
            }
        }

        // a department key's watchlist names only customers it knows
        let r = send(
            &c,
            &fx.base,
            &Req::get("/v1/churn/watchlist?top=1000").bearer(&fx.support_dept.secret),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let ids = list_ids(&r.json());
        assert!(!ids.is_empty());
        for id in ids {
            assert!(
                fx.known_to_support.contains(&id),
                "the support department's watchlist names customer #{id}, unknown to it"
            );
        }

        // the audit trail, read through the API, holds no planted value or key
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        let mut all = String::new();
        loop {
            let path = match &cursor {
                Some(cur) => format!("/v1/audit?limit=1000&cursor={cur}"),
                None => "/v1/audit?limit=1000".into(),
            };
            let r = send(&c, &fx.base, &Req::get(path).bearer(&admin.secret)).await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            all.push_str(&r.text());
            pages += 1;
            match v["next_cursor"].as_str() {
                Some(cur) if pages < 100 => cursor = Some(cur.to_string()),
                _ => break,
            }
        }
        assert!(all.contains("customers.read"), "the trail was read");
        let leaked = found(&all, &planted_all());
        assert!(leaked.is_empty(), "the audit trail holds {leaked:?}");
        for s in secrets(fx) {
            assert!(!all.contains(&s), "the audit trail holds a credential");
        }
        assert!(!all.contains('@'), "the audit trail holds an email address");
        // and so do its files
        let mut bytes = Vec::new();
        for suffix in ["", "-wal"] {
            let mut p = audit_path(&fx.db).into_os_string();
            p.push(suffix);
            if let Ok(b) = std::fs::read(&p) {
                bytes.extend(b);
            }
        }
        assert!(!bytes.is_empty());
        let text = String::from_utf8_lossy(&bytes);
        let leaked = found(&text, &planted_all());
        assert!(leaked.is_empty(), "the audit files hold {leaked:?}");

        assert_access_log_clean(fx);
    });
}

// ---------------------------------------------------------------------------
// 4. Keys are not in the store's files

#[test]
fn key_secrets_are_not_stored_in_plaintext() {
    let fx = fixture();
    let mut bytes = Vec::new();
    let mut files = Vec::new();
    let stem = fx
        .db
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a file name")
        .to_string();
    let mut names: Vec<String> = std::fs::read_dir(&fx.dir)
        .expect("the fixture dir")
        .map(|e| {
            e.expect("an entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.starts_with(&stem) && !n.ends_with(".secret"))
        .collect();
    // write-ahead logs before their databases: a checkpoint in between
    // moves pages from the log into the database, never the other way
    names.sort_by_key(|n| (!n.ends_with("-wal"), n.clone()));
    for name in names {
        if let Ok(b) = std::fs::read(fx.dir.join(&name)) {
            bytes.extend(b);
            files.push(name);
        }
    }
    assert!(files.contains(&stem), "{files:?}");
    assert!(
        files.iter().any(|f| f.ends_with(".audit")),
        "the audit trail is beside the store: {files:?}"
    );
    let hay = String::from_utf8_lossy(&bytes);
    for k in fx.all_keys() {
        let mut parts = k.secret.splitn(3, '_');
        let (_prefix, id, secret) = (
            parts.next().expect("prefix"),
            parts.next().expect("id"),
            parts.next().expect("secret"),
        );
        // the public id is there (these are the right files)…
        assert!(hay.contains(id), "key id of {} not in {files:?}", k.name);
        // …its secret is not, in any form
        assert!(!hay.contains(&k.secret), "{}'s key is in {files:?}", k.name);
        assert!(!hay.contains(secret), "{}'s secret is in {files:?}", k.name);
        assert!(
            !hay.contains(&secret.to_uppercase()),
            "{}'s secret is in {files:?}",
            k.name
        );
        let raw: Vec<u8> = (0..secret.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&secret[i..i + 2], 16).expect("hex"))
            .collect();
        assert!(
            !bytes.windows(raw.len()).any(|w| w == raw.as_slice()),
            "{}'s secret is in {files:?} as bytes",
            k.name
        );
    }
}

// ---------------------------------------------------------------------------
// 5. Rate limiting

#[test]
fn repeated_failed_authentication_locks_the_client_out() {
    let fx = fixture();
    // a server of its own: the lockout is per client address
    let state = AppState::open(&fx.db, None, Arc::new(Metrics::new())).expect("state");
    let log = Captured::default();
    let http = HttpConfig {
        log_sink: LogSink::new(log.clone()),
        metrics: state.metrics.clone(),
        ..Default::default()
    };
    let (addr, _thread) = serve_in_background(state.clone(), http).expect("serves");
    let base = format!("http://{addr}");
    run(async {
        let c = client();
        let admin = &fx.staff("admin").secret;
        // a success first: the server answers this client
        let r = send(&c, &base, &Req::get("/v1/stats").bearer(admin)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let bad = format!("igk_{}_{}", "0123456789abcdef", "ee".repeat(32));
        let mut statuses = Vec::new();
        for i in 0..12 {
            let path = if i % 2 == 0 {
                "/v1/stats"
            } else {
                "/v1/customers/1"
            };
            let r = send(&c, &base, &Req::get(path).bearer(&bad)).await;
            statuses.push(r.status);
            if r.status == 429 {
                assert_error(&r, 429, "rate_limited", "locked out");
                let secs: u64 = r
                    .header("retry-after")
                    .expect("429 carries Retry-After")
                    .parse()
                    .expect("Retry-After in seconds");
                assert!((1..=60).contains(&secs), "Retry-After {secs}");
            } else {
                assert_error(&r, 401, "unauthorized", &format!("failure {i}"));
            }
        }
        assert_eq!(
            &statuses[..10],
            &[401; 10],
            "ten failures are answered: {statuses:?}"
        );
        assert_eq!(
            &statuses[10..],
            &[429, 429],
            "the 11th failure is refused: {statuses:?}"
        );
        // locked out even with a valid key, and without one
        let r = send(&c, &base, &Req::get("/v1/stats").bearer(admin)).await;
        assert_error(&r, 429, "rate_limited", "valid key while locked out");
        assert!(r.header("retry-after").is_some());
        // public routes still answer
        let r = send(&c, &base, &Req::get("/healthz")).await;
        assert_eq!(r.status, 200);
    });
    state.stop();
    let text = log.text();
    assert!(text.contains("\"status\":429"), "429s are logged");
    assert!(!text.contains(&fx.staff("admin").secret));
}

// ---------------------------------------------------------------------------
// 6. Fuzz

mod fuzz {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    use super::*;

    /// Strings that have broken parsers elsewhere.
    const NASTY: &[&str] = &[
        "' OR 1=1 --",
        "1; DROP TABLE customers; --",
        "\" OR \"\"=\"",
        "../../etc/passwd",
        "..%2F..%2Fetc%2Fpasswd",
        "<script>alert(1)</script>",
        "%00",
        "a%00b",
        "%",
        "%%",
        "%zz",
        "\u{0}",
        "\u{202e}gnp.exe",
        "\u{feff}",
        "${jndi:ldap://x}",
        "{{7*7}}",
        "%s%s%s%n",
        "-1",
        "0",
        "-0",
        "1e308",
        "NaN",
        "inf",
        "18446744073709551615",
        "18446744073709551616",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999999999",
        "1.5",
        "0x10",
        " 1",
        "１２３",
        "#1",
        "email:x@y",
        "champions",
        "at-risk",
        "week",
        "month",
        "9223372036854775807.order.9223372036854775807",
        "-9223372036854775808.feedback.-1",
        "1.order.1",
        "true",
        "null",
        "[]",
        "{}",
    ];

    /// A parameter value: text or raw bytes.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => proptest::sample::select(NASTY).prop_map(|s| s.as_bytes().to_vec()),
            2 => "\\PC{0,40}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..24),
            1 => proptest::sample::select(vec![
                vec![0xC0, 0xAF],
                vec![0xE0, 0x80, 0xAF],
                vec![0xF0, 0x80, 0x80, 0xAF],
                vec![0xFF, 0xFE],
                vec![0xED, 0xA0, 0x80],
                vec![0],
            ]),
            1 => (1usize..4, proptest::sample::select(vec!["a", "%", "'", "9", "é"]))
                .prop_map(|(n, s)| s.repeat(n * 3000).into_bytes()),
        ]
    }

    /// A body for the request.
    #[derive(Debug, Clone)]
    enum Body {
        None,
        /// `{"key": <value>}` (raw bytes spliced in when not UTF-8).
        Key(Vec<u8>),
        /// A malformed or odd JSON text.
        Text(&'static str),
        /// Bytes.
        Raw(Vec<u8>),
        /// Over the 1 MiB limit (2: 64 MiB declared, head only).
        Huge(usize),
        /// Nested arrays.
        Deep(usize),
    }

    fn body() -> impl Strategy<Value = Body> {
        prop_oneof![
            2 => Just(Body::None),
            4 => value().prop_map(Body::Key),
            2 => proptest::sample::select(vec![
                "",
                "{",
                "{\"key\":",
                "{\"key\": 1}",
                "{\"key\": null}",
                "{\"key\": [\"a\"]}",
                "{\"key\": \"a\", \"extra\": 1}",
                "{\"key\": \"a\", \"key\": \"b\"}",
                "{\"key\": \"\\u0000\"}",
                "{\"key\": \"\\ud800\"}",
                "{\"key\": \"#1\"}",
                "{\"key\": \"' OR 1=1 --\"}",
                "[]",
                "null",
                "\"key\"",
                "{\"KEY\": \"a\"}",
                "\u{feff}{\"key\": \"a\"}",
            ])
            .prop_map(Body::Text),
            1 => proptest::collection::vec(any::<u8>(), 0..64).prop_map(Body::Raw),
            1 => (0usize..3).prop_map(Body::Huge),
            1 => (100usize..20_000).prop_map(Body::Deep),
        ]
    }

    const QUERY_KEYS: &[&str] = &[
        "k", "top", "cursor", "limit", "category", "by", "horizon", "customer", "actor",
    ];

    /// One generated request.
    #[derive(Debug, Clone)]
    struct Case {
        route: usize,
        params: Vec<Vec<u8>>,
        query: Vec<(usize, Vec<u8>)>,
        body: Body,
        /// Percent-encode every byte that is not unreserved (else only what
        /// a URL cannot hold).
        encode: bool,
        content_type: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            0..ROUTES.len(),
            proptest::collection::vec(value(), 1..3),
            proptest::collection::vec((0..QUERY_KEYS.len(), value()), 0..4),
            body(),
            proptest::bool::weighted(0.8),
            0usize..4,
        )
            .prop_map(|(route, params, query, body, encode, content_type)| Case {
                route,
                params,
                query,
                body,
                encode,
                content_type,
            })
    }

    fn encode(bytes: &[u8], all: bool) -> String {
        let mut s = String::new();
        for &b in bytes {
            let keep = b.is_ascii_alphanumeric() || b"-._~".contains(&b);
            let raw_ok = !all && b.is_ascii_graphic() && !b"#?/ ".contains(&b);
            if keep || raw_ok {
                s.push(b as char);
            } else {
                s.push_str(&format!("%{b:02X}"));
            }
        }
        s
    }

    /// The path and query of a case; `None` for a path that would start a
    /// training (a valid model kind).
    fn path_of(c: &Case) -> Option<String> {
        let def = &ROUTES[c.route];
        let mut params = c.params.iter().cycle();
        let mut path = String::new();
        for seg in def.path.split('/').skip(1) {
            path.push('/');
            if seg.starts_with('{') {
                let v = params.next().expect("a value");
                if def.path.contains("{kind}")
                    && ["recs", "churn", "clv", "amount"]
                        .iter()
                        .any(|k| v.eq_ignore_ascii_case(k.as_bytes()))
                {
                    return None;
                }
                path.push_str(&encode(v, c.encode));
            } else {
                path.push_str(seg);
            }
        }
        for (i, (k, v)) in c.query.iter().enumerate() {
            path.push(if i == 0 { '?' } else { '&' });
            path.push_str(QUERY_KEYS[*k]);
            path.push('=');
            path.push_str(&encode(v, c.encode));
        }
        Some(path)
    }

    fn body_bytes(b: &Body) -> Option<Vec<u8>> {
        match b {
            Body::None => None,
            Body::Key(v) => Some(match std::str::from_utf8(v) {
                Ok(s) => serde_json::json!({ "key": s }).to_string().into_bytes(),
                Err(_) => [b"{\"key\": \"".as_slice(), v, b"\"}"].concat(),
            }),
            Body::Text(t) => Some(t.as_bytes().to_vec()),
            Body::Raw(r) => Some(r.clone()),
            Body::Huge(n) => {
                let mut v = b"{\"key\": \"".to_vec();
                v.extend(std::iter::repeat_n(b'a', 1024 * 1024 + 1 + n * 4096));
                v.extend(b"\"}");
                Some(v)
            }
            Body::Deep(n) => Some(format!("{}{}", "[".repeat(*n), "]".repeat(*n)).into_bytes()),
        }
    }

    /// Sends a request head declaring a body of `len` bytes, without the
    /// body, and reads the answer (the server must not wait for the body).
    async fn send_declared(base: &str, r: &Req, len: usize) -> Resp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let url = reqwest::Url::parse(&format!("{base}{}", r.path)).expect("a URL");
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let addr = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().expect("a port")
        );
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {len}\r\nConnection: close\r\n",
            r.method
        );
        if let Some(a) = &r.auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        if let Some(ct) = &r.content_type {
            head.push_str(&format!("Content-Type: {ct}\r\n"));
        }
        head.push_str("\r\n");
        let mut s = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connects");
        s.write_all(head.as_bytes()).await.expect("writes the head");
        // read until the head and the body it announces are in (the server
        // may keep the connection open for the body it was promised)
        let mut raw: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let (head_len, body_len) = loop {
            let n = tokio::time::timeout_at(deadline, s.read(&mut buf))
                .await
                .expect("answered in time")
                .expect("reads the answer");
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            if let Some(i) = text.find("\r\n\r\n") {
                let len = text[..i]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or_else(|| panic!("a sized answer: {text:?}"));
                if raw.len() >= i + 4 + len {
                    break (i, len);
                }
            }
            assert!(n > 0, "the connection closed mid-answer: {text:?}");
        };
        let head = String::from_utf8_lossy(&raw[..head_len]).into_owned();
        let body = raw[head_len + 4..head_len + 4 + body_len].to_vec();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head:?}"));
        let mut headers = reqwest::header::HeaderMap::new();
        for l in lines {
            if let Some((k, v)) = l.split_once(':')
                && let (Ok(k), Ok(v)) = (
                    reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                    reqwest::header::HeaderValue::from_str(v.trim()),
                )
            {
                headers.append(k, v);
            }
        }
        Resp {
            status,
            headers,
            body,
        }
    }

    #[test]
    fn fuzzed_requests_never_cause_a_server_error() {
        let fx = fixture();
        let admin = fx.staff("admin").secret.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let c = rt.block_on(async { client() });
        let config = Config {
            cases: 160,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        };
        let mut runner =
            TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
        let n = std::cell::Cell::new(0u32);
        let statuses: std::cell::RefCell<BTreeMap<u16, u32>> = Default::default();
        let result = runner.run(&case(), |case| {
            let Some(path) = path_of(&case) else {
                return Ok(());
            };
            let def = &ROUTES[case.route];
            let body = body_bytes(&case.body);
            let content_type = match case.content_type {
                0 | 1 => Some("application/json".to_string()),
                2 => Some("text/plain".to_string()),
                _ => None,
            };
            let req = Req {
                method: def.method.to_string(),
                path: path.clone(),
                auth: Some(format!("Bearer {admin}")),
                body,
                content_type,
                accept: None,
            };
            let r = match case.body {
                // declared far over the limit and never sent: refused from
                // the head alone
                Body::Huge(2) => rt.block_on(send_declared(
                    &fx.base,
                    &Req { body: None, ..req },
                    64 * 1024 * 1024,
                )),
                _ => rt.block_on(send(&c, &fx.base, &req)),
            };
            if matches!(case.body, Body::Huge(_)) {
                prop_assert_eq!(r.status, 413, "{}", r.text());
            }
            n.set(n.get() + 1);
            *statuses.borrow_mut().entry(r.status).or_default() += 1;
            prop_assert!(
                r.status < 500,
                "{} {} ({:?}) -> {}: {}",
                def.method,
                path.chars().take(300).collect::<String>(),
                case.body,
                r.status,
                r.text()
            );
            if r.status >= 400 {
                let ct = r.header("content-type").unwrap_or_default();
                prop_assert!(
                    ct.starts_with("application/json"),
                    "{} {path}: {ct}",
                    r.status
                );
                let v: Value = serde_json::from_slice(&r.body)
                    .map_err(|e| TestCaseError::fail(format!("{path}: not JSON: {e}")))?;
                prop_assert!(
                    v["code"].is_string() && v["message"].is_string(),
                    "{path}: {v}"
                );
            }
            if n.get().is_multiple_of(32) {
                let h = rt.block_on(send(&c, &fx.base, &Req::get("/healthz")));
                prop_assert_eq!(h.status, 200);
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{e}");
        }
        let (n, statuses) = (n.get(), statuses.into_inner());
        eprintln!("fuzz: {n} requests, statuses {statuses:?}");
        assert!(n >= 100, "{n} requests sent");
        assert!(
            statuses.keys().filter(|s| **s < 300).count() > 0,
            "some fuzzed requests succeed: {statuses:?}"
        );
        // still answering, and still authenticating
        let h = rt.block_on(send(&c, &fx.base, &Req::get("/healthz")));
        assert_eq!(h.status, 200);
        let s = rt.block_on(send(&c, &fx.base, &Req::get("/v1/stats").bearer(&admin)));
        assert_eq!(s.status, 200, "{}", s.text());
        assert_access_log_clean(fx);
    }

    /// Every edge value in every parameter a route reads, the others valid.
    #[test]
    fn edge_values_in_every_parameter_never_cause_a_server_error() {
        let fx = fixture();
        let admin = fx.staff("admin").secret.clone();
        run(async {
            let c = client();
            let segment = segment_names(&c, fx).await[0].replace(' ', "-");
            let a = fx.customer_a.to_string();
            let mut reqs: Vec<Req> = Vec::new();
            for v in NASTY {
                let v = encode(v.as_bytes(), true);
                for (path, key) in [
                    (format!("/v1/customers/{a}/recommendations"), "k"),
                    ("/v1/me/recommendations".to_string(), "k"),
                    ("/v1/churn/watchlist".to_string(), "top"),
                    (format!("/v1/customers/{a}/timeline"), "cursor"),
                    (format!("/v1/customers/{a}/export"), "format"),
                    (format!("/v1/customers/{a}/timeline"), "limit"),
                    (format!("/v1/segments/{segment}/members"), "cursor"),
                    (format!("/v1/segments/{segment}/members"), "limit"),
                    ("/v1/audit".to_string(), "cursor"),
                    ("/v1/audit".to_string(), "limit"),
                    ("/v1/audit".to_string(), "customer"),
                    ("/v1/audit".to_string(), "actor"),
                    ("/v1/forecasts".to_string(), "category"),
                    ("/v1/forecasts".to_string(), "by"),
                    ("/v1/forecasts".to_string(), "horizon"),
                ] {
                    reqs.push(Req::get(format!("{path}?{key}={v}")));
                }
                // a cursor and a limit together (start + limit)
                reqs.push(Req::get(format!(
                    "/v1/segments/{segment}/members?cursor={v}&limit={v}"
                )));
                for sub in [
                    "",
                    "/timeline",
                    "/recommendations",
                    "/churn",
                    "/clv",
                    "/export",
                ] {
                    reqs.push(Req::get(format!("/v1/customers/{v}{sub}")));
                }
                reqs.push(Req::get(format!("/v1/segments/{v}/members")));
                reqs.push(Req::get(format!("/v1/jobs/{v}")));
                reqs.push(Req {
                    method: "POST".into(),
                    ..Req::get(format!("/v1/models/{v}/train"))
                });
                reqs.push(
                    Req {
                        method: "POST".into(),
                        ..Req::get("/v1/customers/lookup")
                    }
                    .json_body(&serde_json::json!({ "key": v })),
                );
            }
            let mut statuses: BTreeMap<u16, u32> = BTreeMap::new();
            let mut errors = Vec::new();
            for r in &reqs {
                let res = send(&c, &fx.base, &r.clone().bearer(&admin)).await;
                *statuses.entry(res.status).or_default() += 1;
                if res.status >= 500 {
                    errors.push(format!(
                        "{} {} -> {}: {}",
                        r.method,
                        r.path,
                        res.status,
                        res.text()
                    ));
                } else if res.status >= 400 {
                    assert_json_error_shape(&res, &r.path);
                }
            }
            eprintln!(
                "edge values: {} requests, statuses {statuses:?}",
                reqs.len()
            );
            assert!(
                errors.is_empty(),
                "{} server errors: {errors:#?}",
                errors.len()
            );
            let h = send(&c, &fx.base, &Req::get("/healthz")).await;
            assert_eq!(h.status, 200);
        });
    }
}
