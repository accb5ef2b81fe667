//! Erasure over HTTP on a server of its own (the shared security fixture
//! must keep its customers): a customer's own request is queued, only an
//! admin sees and approves it, the receipt ends with `residue: 0`, the
//! person is gone from every answer and their token stops working, and a
//! dry run by an admin changes nothing.

use std::path::Path;
use std::sync::Arc;

use infogap_core::config::Config;
use infogap_engine::import::ImportOptions;
use infogap_engine::keys::NewKey;
use infogap_engine::{Engine, demo};
use infogap_server::state::AppState;
use infogap_server::{HttpConfig, Metrics};
use serde_json::Value;

use super::fixture::serve_in_background;

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    secret: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut b = c.request(method, url).bearer_auth(secret);
    if let Some(v) = body {
        b = b.json(&v);
    }
    let r = b.send().await.expect("a response");
    let status = r.status().as_u16();
    let text = r.text().await.expect("a body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[test]
fn a_customers_request_is_approved_by_an_admin_and_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let summary = demo::generate(&demo::DemoOptions {
        out: dir.path().join("demo"),
        customers: 80,
        seed: 3,
    })
    .expect("demo");
    let db = dir.path().join("store.db");
    let engine = Engine::open(&db).expect("open");
    let config = Config::load(Path::new(&summary.config)).expect("config");
    infogap_engine::import::import(&engine, &config, &ImportOptions::default()).expect("import");
    let policy = engine.policy().expect("policy");
    let key = |name: &str, role: &str| {
        engine
            .create_key(
                &policy,
                &NewKey {
                    name: name.into(),
                    role: role.into(),
                    department: None,
                    source: None,
                    expires: None,
                },
            )
            .expect("key")
            .key
    };
    let admin = key("admin-key", "admin");
    let marketing = key("marketing-key", "marketing");
    // a customer with an email and orders: the one who asks
    let ds = engine.dataset().expect("dataset");
    let who = ds.customers[3].id;
    let other = ds.customers[4].id;
    let token = engine.customer_token(who, Some("1h")).expect("token").token;
    let other_token = engine
        .customer_token(other, Some("1h"))
        .expect("token")
        .token;
    let email = engine
        .store()
        .customer_identities(who)
        .expect("identities")
        .into_iter()
        .find(|i| i.kind == "email")
        .map(|i| i.value);
    drop(engine);

    let state = AppState::open(&db, None, Arc::new(Metrics::new())).expect("state");
    let (addr, _server) = serve_in_background(state, HttpConfig::default()).expect("serve");
    let base = format!("http://{addr}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use reqwest::Method;
        let c = crate::http_client().build().unwrap();
        // a dry run by an admin counts and changes nothing
        let (s, plan) = send(
            &c,
            Method::POST,
            format!("{base}/v1/customers/{who}/erase"),
            &admin,
            Some(serde_json::json!({"dry_run": true})),
        )
        .await;
        assert_eq!(s, 200, "{plan}");
        assert_eq!(plan["dry_run"], true);
        let (s, _) = send(&c, Method::GET, format!("{base}/v1/me"), &token, None).await;
        assert_eq!(s, 200);
        // marketing may not erase, nor see the journal
        let (s, _) = send(
            &c,
            Method::POST,
            format!("{base}/v1/customers/{who}/erase"),
            &marketing,
            None,
        )
        .await;
        assert_eq!(s, 403);
        let (s, _) = send(
            &c,
            Method::GET,
            format!("{base}/v1/erasures"),
            &marketing,
            None,
        )
        .await;
        assert_eq!(s, 403);
        // the customer asks: queued
        let (s, req) = send(
            &c,
            Method::POST,
            format!("{base}/v1/me/erase"),
            &token,
            None,
        )
        .await;
        assert_eq!(s, 200, "{req}");
        assert_eq!(req["status"], "requested", "{req}");
        let id = req["erasure_id"].as_i64().expect("id");
        // asking twice gives the same request
        let (_, again) = send(
            &c,
            Method::POST,
            format!("{base}/v1/me/erase"),
            &token,
            None,
        )
        .await;
        assert_eq!(again["erasure_id"].as_i64(), Some(id));
        let (s, list) = send(&c, Method::GET, format!("{base}/v1/erasures"), &admin, None).await;
        assert_eq!(s, 200);
        assert_eq!(list[0]["status"], "requested", "{list}");
        // another customer cannot approve anything
        let (s, _) = send(
            &c,
            Method::POST,
            format!("{base}/v1/erasures/{id}/approve"),
            &other_token,
            None,
        )
        .await;
        assert_eq!(s, 403);
        let (s, receipt) = send(
            &c,
            Method::POST,
            format!("{base}/v1/erasures/{id}/approve"),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, 200, "{receipt}");
        assert_eq!(receipt["status"], "done", "{receipt}");
        assert_eq!(receipt["residue"].as_u64(), Some(0), "{receipt}");
        for t in ["identities", "customers"] {
            let rows = receipt["tables"]
                .as_array()
                .expect("tables")
                .iter()
                .find(|x| x["table"] == t)
                .and_then(|x| x["rows"].as_u64());
            assert!(rows >= Some(1), "{t}: {receipt}");
        }
        // gone: the token no longer works, staff get 404, lookups find nothing
        let (s, _) = send(&c, Method::GET, format!("{base}/v1/me"), &token, None).await;
        assert_eq!(s, 401);
        let (s, _) = send(
            &c,
            Method::GET,
            format!("{base}/v1/customers/{who}"),
            &admin,
            None,
        )
        .await;
        assert_eq!(s, 404);
        if let Some(e) = &email {
            let (s, _) = send(
                &c,
                Method::POST,
                format!("{base}/v1/customers/lookup"),
                &admin,
                Some(serde_json::json!({"key": e})),
            )
            .await;
            assert_eq!(s, 404, "the erased email still finds someone");
        }
        // the others are served as before
        let (s, _) = send(&c, Method::GET, format!("{base}/v1/me"), &other_token, None).await;
        assert_eq!(s, 200);
        let (s, list) = send(&c, Method::GET, format!("{base}/v1/erasures"), &admin, None).await;
        assert_eq!(s, 200);
        assert_eq!(list[0]["status"], "done", "{list}");
        if let Some(e) = &email {
            assert!(
                !list.to_string().contains(e.as_str()),
                "the journal holds no PII"
            );
        }
    });
}
