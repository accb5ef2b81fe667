//! The merge-evidence and system pages over plain HTTP: admin sees the
//! links of customer A with the source of each; the analyst's page never
//! holds A's raw email; a split posted without its CSRF token, or by a
//! role without `customers.merge`, is refused (403) and changes nothing;
//! the system page lists the import runs with a CSV download. A real split
//! and its undo go through the page on a server of their own, over a fresh
//! demo store (the shared fixture's customers A and B stay as they are).

use std::path::Path;
use std::sync::Arc;

use infogap_core::config::Config;
use infogap_engine::Engine;
use infogap_engine::import::ImportOptions;
use infogap_store::audit::AuditFilter;

use crate::fixture::{PLANTED, fixture};
use crate::pages::{FormBody, csrf_of, http, run, sign_in};

/// A signed-in session of the fixture's first user of `role` (not the
/// department one).
async fn session_of(c: &reqwest::Client, role: &str) -> String {
    let f = fixture();
    let (name, pw, _) = f
        .users
        .iter()
        .find(|u| u.2 == role && !u.0.contains("-support-"))
        .unwrap_or_else(|| panic!("no {role} user"))
        .clone();
    sign_in(c, &f.base, &name, &pw).await
}

async fn get(c: &reqwest::Client, base: &str, path: &str, s: &str) -> (u16, String) {
    let res = c
        .get(format!("{base}{path}"))
        .header("cookie", format!("ig_session={s}"))
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[test]
fn merge_evidence_pages_follow_the_role() {
    run(merge_evidence_pages());
}

async fn merge_evidence_pages() {
    let f = fixture();
    let c = http();
    let path = format!("/dashboard/customers/{}/merges", f.customer_a);

    // admin: every identity in full, each link with its rule and source,
    // the split forms
    let admin = session_of(&c, "admin").await;
    let (status, page) = get(&c, &f.base, &path, &admin).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("crm:CZZ0001"), "A's CRM id");
    assert!(page.contains(PLANTED.email), "admin sees the email");
    assert!(page.contains("seen on the same record"), "a rule in words");
    // the planted ticket is the record that joined A's support id to A
    assert!(page.contains("support:SZZ0001"));
    assert!(
        page.contains("<td>support</td>") && page.contains("<td>crm</td>"),
        "the links name their sources"
    );
    assert!(page.contains(&format!(
        "action=\"/dashboard/customers/{}/split\"",
        f.customer_a
    )));
    assert!(page.contains("value=\"split\""), "a split form");
    // in Chinese
    let res = c
        .get(format!("{}{path}", f.base))
        .header("cookie", format!("ig_session={admin}; ig_lang=zh"))
        .send()
        .await
        .unwrap();
    let zh = res.text().await.unwrap();
    assert!(zh.contains("关联：合并的证据") && zh.contains("出现在同一条记录中"));

    // analyst: masked email, never the raw one, and no split forms
    let analyst = session_of(&c, "analyst").await;
    let (status, page) = get(&c, &f.base, &path, &analyst).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        !page.contains(PLANTED.email),
        "the analyst sees the raw email"
    );
    assert!(
        page.contains("p***@example.org"),
        "the masked email is shown"
    );
    assert!(!page.contains(PLANTED.phone_digits));
    assert!(
        !page.contains("/split\""),
        "no split form without customers.merge"
    );

    // the department user: outside its department, refused
    let (name, pw, _) = f
        .users
        .iter()
        .find(|u| u.0.contains("-support-"))
        .unwrap()
        .clone();
    let dept = sign_in(&c, &f.base, &name, &pw).await;
    let (status, _) = get(
        &c,
        &f.base,
        &format!("/dashboard/customers/{}/merges", f.outside_support),
        &dept,
    )
    .await;
    assert_eq!(status, 403);
    // a path that is no id
    let (status, _) = get(&c, &f.base, "/dashboard/customers/x%40y/merges", &admin).await;
    assert_eq!(status, 400);
}

#[test]
fn split_posts_need_the_token_and_the_right() {
    run(split_posts_refused());
}

async fn split_posts_refused() {
    let f = fixture();
    let c = http();
    let url = format!("{}/dashboard/customers/{}/split", f.base, f.customer_a);
    let merges = format!("/dashboard/customers/{}/merges", f.customer_a);
    // `unsplit` of an identity with nothing split: were a refusal missed,
    // the answer would be a 400 and the shared customer A unchanged
    let fields = |csrf: Option<&str>| {
        let mut v = vec![("identity", "crm:CZZ0001"), ("action", "unsplit")];
        if let Some(t) = csrf {
            v.push(("csrf", t));
        }
        v.into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    };
    let post = |s: String, body: Vec<(String, String)>| {
        let pairs: Vec<(&str, &str)> = body.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        c.post(&url)
            .header("cookie", format!("ig_session={s}"))
            .form_body(&pairs)
            .send()
    };

    // admin without the token, and with another session's
    let admin = session_of(&c, "admin").await;
    let (_, before) = get(&c, &f.base, &merges, &admin).await;
    let res = post(admin.clone(), fields(None)).await.unwrap();
    assert_eq!(res.status(), 403);
    let other = session_of(&c, "admin").await;
    let (_, page) = get(&c, &f.base, &merges, &other).await;
    let res = post(admin.clone(), fields(Some(&csrf_of(&page))))
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "another session's token");

    // support has no customers.merge: refused even with a valid token
    let support = session_of(&c, "support").await;
    let (status, page) = get(&c, &f.base, &merges, &support).await;
    assert_eq!(status, 200);
    let token = csrf_of(&page);
    let res = post(support.clone(), fields(Some(&token))).await.unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("customers.merge"), "{body}");
    // and a real split by support too
    let split = vec![
        ("identity".to_string(), format!("email:{}", PLANTED.email)),
        ("action".to_string(), "split".to_string()),
        ("csrf".to_string(), token),
    ];
    assert_eq!(post(support, split).await.unwrap().status(), 403);

    // admin with the token and a bad action: 400, before anything runs
    let (_, page) = get(&c, &f.base, &merges, &admin).await;
    let token = csrf_of(&page);
    let bad = vec![
        ("identity".to_string(), "crm:CZZ0001".to_string()),
        ("action".to_string(), "merge-all".to_string()),
        ("csrf".to_string(), token.clone()),
    ];
    assert_eq!(post(admin.clone(), bad).await.unwrap().status(), 400);
    // nothing split back: nothing to restore (no value echoed)
    let res = post(admin.clone(), fields(Some(&token))).await.unwrap();
    assert_eq!(res.status(), 400);
    let msg = res.text().await.unwrap();
    assert!(msg.contains("identity:"), "{msg}");

    // customer A is as it was
    let (_, after) = get(&c, &f.base, &merges, &admin).await;
    let links = |p: &str| p.matches("seen on the same record").count();
    assert_eq!(links(&after), links(&before));
    assert!(!after.contains("switched off by a split"));
}

#[test]
fn the_system_page_lists_import_runs_and_models() {
    run(system_page());
}

async fn system_page() {
    let f = fixture();
    let c = http();
    let admin = session_of(&c, "admin").await;
    let (status, page) = get(&c, &f.base, "/dashboard/system", &admin).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Import runs") && page.contains("Saved models"));
    for s in ["<td>crm</td>", "<td>sales</td>", "<td>support</td>"] {
        assert!(page.contains(s), "{s} run listed");
    }
    assert!(page.contains("<td>customers.csv</td>"), "the file's name");
    assert!(
        !page.contains(&f.dir.display().to_string()),
        "no server directories"
    );
    assert!(
        page.contains("(churn)") && page.contains("(recs)"),
        "models"
    );
    assert!(page.contains("/dashboard/system/imports.csv"));

    // the CSV: BOM, a header, one row per run
    let res = c
        .get(format!("{}/dashboard/system/imports.csv", f.base))
        .header("cookie", format!("ig_session={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let bytes = res.bytes().await.unwrap();
    assert!(bytes.starts_with(&[0xEF, 0xBB, 0xBF]));
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let head = rd.headers().unwrap().clone();
    assert_eq!(head.get(2), Some("source"), "{head:?}");
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let runs = tokio::task::spawn_blocking(|| {
        Engine::open_existing(&fixture().db)
            .unwrap()
            .store()
            .import_runs()
            .unwrap()
            .len()
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), runs);
    assert!(rows.iter().any(|r| r.get(2) == Some("crm")));

    // analyst trains models: allowed; support and marketing are not
    let analyst = session_of(&c, "analyst").await;
    assert_eq!(get(&c, &f.base, "/dashboard/system", &analyst).await.0, 200);
    for role in ["support", "marketing"] {
        let s = session_of(&c, role).await;
        assert_eq!(
            get(&c, &f.base, "/dashboard/system", &s).await.0,
            403,
            "{role}"
        );
        assert_eq!(
            get(&c, &f.base, "/dashboard/system/imports.csv", &s)
                .await
                .0,
            403,
            "{role}"
        );
    }
}

/// A store of its own: a small demo imported, an admin user, served on
/// 127.0.0.1:0. Returns the directory (kept alive), the base URL and the
/// store path.
fn own_server() -> (tempfile::TempDir, String, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let summary = infogap_engine::demo::generate(&infogap_engine::demo::DemoOptions {
        out,
        customers: 150,
        seed: 21,
    })
    .unwrap();
    let db = dir.path().join("store.db");
    let engine = Engine::open(&db).unwrap();
    let config = Config::load(Path::new(&summary.config)).unwrap();
    infogap_engine::import::import(
        &engine,
        &config,
        &ImportOptions {
            skip_bad_rows: 0,
            rejects_dir: None,
            progress: false,
        },
    )
    .unwrap();
    let policy = engine.policy().unwrap();
    engine
        .create_user(
            &policy,
            &infogap_engine::web::NewUser {
                name: "merger".into(),
                role: "admin".into(),
                department: None,
            },
            Some("a long enough password for merger"),
        )
        .unwrap();
    drop(engine);
    let metrics = Arc::new(infogap_server::Metrics::new());
    let state = infogap_server::state::AppState::open(&db, None, metrics.clone()).unwrap();
    let cfg = infogap_server::HttpConfig {
        log: false,
        metrics,
        ..Default::default()
    };
    let (addr, _server) = crate::fixture::serve_in_background(state, cfg).unwrap();
    (dir, format!("http://{addr}"), db)
}

#[test]
fn a_split_and_its_undo_through_the_page() {
    let (_dir, base, db) = own_server();
    // a merged customer with a leaf identity (one live link): its split
    // makes exactly one more customer
    let engine = Engine::open_existing(&db).unwrap();
    let store = engine.store();
    let (id, spec) = engine
        .dataset()
        .unwrap()
        .customers
        .iter()
        .find_map(|c| {
            let ids = store.customer_identities(c.id).unwrap();
            if ids.len() < 2 {
                return None;
            }
            let leaf = ids.iter().find(|i| {
                let l = store.links_of(&[i.id]).unwrap();
                l.len() == 1 && !l[0].suppressed && i.kind == "customer"
            })?;
            Some((c.id, format!("{}:{}", leaf.namespace, leaf.value)))
        })
        .expect("a merged customer with a leaf identity");
    let count = || engine.store().stats(false).unwrap().customers;
    let n0 = count();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (split_to, back_to) = rt.block_on(async {
        let c = http();
        let s = sign_in(&c, &base, "merger", "a long enough password for merger").await;
        let (status, page) = get(&c, &base, &format!("/dashboard/customers/{id}/merges"), &s).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains(&format!("name=\"identity\" value=\"{spec}\"")),
            "a form for {spec}"
        );
        let token = csrf_of(&page);
        let post = |cid: i64, action: &'static str| {
            c.post(format!("{base}/dashboard/customers/{cid}/split"))
                .header("cookie", format!("ig_session={s}"))
                .form_body(&[
                    ("csrf", token.as_str()),
                    ("identity", spec.as_str()),
                    ("action", action),
                ])
                .send()
        };
        let location =
            |res: &reqwest::Response| res.headers()["location"].to_str().unwrap().to_string();

        // split: 303 to the merges page of the identity's customer, with a notice
        let res = post(id, "split").await.unwrap();
        assert_eq!(res.status(), 303);
        let to = location(&res);
        assert!(to.ends_with("/merges?done=split"), "{to}");
        assert!(!to.contains(&spec), "the identity stays out of the address");
        // (the store blocks on a runtime of its own)
        let now = tokio::task::block_in_place(count);
        assert_eq!(now, n0 + 1, "the split made one more customer");
        let (status, page) = get(&c, &base, &to, &s).await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Split done"), "{page}");
        assert!(page.contains("switched off by a split"));
        assert!(page.contains("value=\"unsplit\""), "an undo form");
        let split_to: i64 = to
            .trim_start_matches("/dashboard/customers/")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();

        // undo from that page: 303 back to the customer it rejoined
        let res = post(split_to, "unsplit").await.unwrap();
        assert_eq!(res.status(), 303);
        let back = location(&res);
        assert!(back.ends_with("/merges?done=unsplit"), "{back}");
        let (status, page) = get(&c, &base, &back, &s).await;
        assert_eq!(status, 200);
        assert!(page.contains("The split is undone"));
        let back_to: i64 = back
            .trim_start_matches("/dashboard/customers/")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        (split_to, back_to)
    });
    // the round trip: one customer more, then as before, both audited
    assert_eq!(
        engine.find_customer(&spec, None).unwrap(),
        Some(back_to),
        "the identity is home"
    );
    assert_eq!(count(), n0, "as many customers as before");
    let records = engine
        .audit_records(
            &infogap_engine::access::Policy::default()
                .authorize(
                    &infogap_engine::access::Principal::local(None),
                    infogap_core::access::Action::AuditRead,
                )
                .unwrap(),
            &AuditFilter {
                actor: Some(infogap_engine::web::user_principal_name("merger")),
                limit: 1000,
                ..Default::default()
            },
        )
        .unwrap()
        .records;
    let split = records
        .iter()
        .find(|r| r.entry.action == "customers.split")
        .expect("the split is audited");
    assert!(split.entry.customers.contains(&split_to) && split.entry.customers.contains(&id));
    assert_eq!(
        split.entry.customers.len(),
        2,
        "{:?}",
        split.entry.customers
    );
    assert!(
        records
            .iter()
            .any(|r| r.entry.action == "customers.unsplit" && r.entry.customers.contains(&back_to))
    );
    assert!(records.iter().any(|r| r.entry.action == "customers.merges"));
    // the merge log tells it
    let log = engine.store().merge_log(back_to).unwrap();
    let made = log
        .iter()
        .find(|e| e.action == "split")
        .expect("the split is logged");
    assert!(
        made.detail.contains("1 link(s) switched off"),
        "{}",
        made.detail
    );
}

#[test]
fn the_webhooks_page_lists_dead_letters_and_replays_with_its_token() {
    use infogap_core::access::Action;
    use infogap_store::{OutboxIn, OutboxOutcome};
    let f = fixture();
    // a webhook and one dead message, made through the engine and the store
    // (outside the async runtime: the store blocks on its own)
    let engine = Engine::open_existing(&f.db).unwrap();
    let policy = engine.policy().unwrap();
    let admin_grant = policy
        .authorize(
            &infogap_engine::access::Principal::local(None),
            Action::WebhooksManage,
        )
        .unwrap();
    let w = engine
        .add_webhook(
            &admin_grant,
            &policy,
            &infogap_engine::webhooks::WebhookRequest {
                url: "http://127.0.0.1:9/pages-test".into(),
                events: vec!["consent.withdrawn".into()],
                role: "support".into(),
                department: None,
            },
        )
        .unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    engine
        .store()
        .outbox_enqueue(
            None,
            &[OutboxIn {
                msg_id: "msg_pages_test_dead".into(),
                webhook_id: w.webhook.id,
                event: "consent.withdrawn".into(),
                customer_id: None,
                alert_id: None,
                body: "{}".into(),
            }],
            now + 3_600_000,
        )
        .unwrap();
    // claimed far in the future (so the server's worker never takes it)
    let claimed = engine
        .store()
        .outbox_claim(now + 3_600_000, 1, 1, 100)
        .unwrap();
    let mine = claimed
        .iter()
        .find(|m| m.msg_id == "msg_pages_test_dead")
        .expect("claimed")
        .id;
    engine
        .store()
        .outbox_done(&[OutboxOutcome {
            id: mine,
            delivered: false,
            status: Some(503),
            error: Some("HTTP 503".into()),
            retry_at: None,
        }])
        .unwrap();
    let dead = |e: &Engine| {
        e.store()
            .outbox(Some("dead"), None, 1000)
            .unwrap()
            .iter()
            .any(|m| m.id == mine)
    };
    let c = http();
    let replay = |s: String, csrf: Option<String>| {
        let mut form: Vec<(String, String)> = vec![("id".into(), mine.to_string())];
        if let Some(t) = csrf {
            form.push(("csrf".into(), t));
        }
        let c = c.clone();
        let url = format!("{}/dashboard/webhooks/replay", f.base);
        async move {
            let pairs: Vec<(&str, &str)> =
                form.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            c.post(url)
                .header("cookie", format!("ig_session={s}"))
                .form_body(&pairs)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let (admin, page) = run(async {
        let admin = session_of(&c, "admin").await;
        let (status, page) = get(&c, &f.base, "/dashboard/webhooks", &admin).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("http://127.0.0.1:9/pages-test"),
            "the webhook is listed"
        );
        assert!(
            page.contains("HTTP 503"),
            "the dead letter and its last answer"
        );
        assert!(!page.contains("whsec_"), "no secret on the page");
        let res = c
            .get(format!("{}/dashboard/webhooks", f.base))
            .header("cookie", format!("ig_session={admin}; ig_lang=zh"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
        assert!(res.text().await.unwrap().contains("死信"), "Chinese page");
        // marketing may not manage webhooks
        let marketing = session_of(&c, "marketing").await;
        assert_eq!(
            get(&c, &f.base, "/dashboard/webhooks", &marketing).await.0,
            403
        );
        assert_eq!(
            replay(admin.clone(), None).await,
            403,
            "no token, no replay"
        );
        (admin, page)
    });
    assert!(dead(&engine), "still dead after the refused replay");
    assert_eq!(run(replay(admin, Some(csrf_of(&page)))), 303);
    assert!(!dead(&engine), "replayed");
}
