//! The pages over plain HTTP: sign-in and its lockout, cookies, CSRF, and
//! every page of `PAGES` × every kind of visitor (nobody, each staff role,
//! a department user, a customer), with the planted values that a role
//! must not see searched in every answer, CSV downloads included.

use std::time::Duration;

use infogap_core::access::{FieldClass, Visibility};
use infogap_server::pages::{PAGES, Who};
use reqwest::redirect::Policy as Redirects;

use crate::fixture::{PLANTED, fixture};

/// A browser-like client without automatic redirects or cookie store: the
/// tests carry cookies by hand, so each one is explicit.
pub fn http() -> reqwest::Client {
    crate::http_client()
        .redirect(Redirects::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Form bodies (`application/x-www-form-urlencoded`) for reqwest.
pub trait FormBody {
    /// Sets the body and its content type.
    fn form_body(self, pairs: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, pairs: &[(&str, &str)]) -> Self {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(ser.finish())
    }
}

/// `name=value` pairs of every `Set-Cookie` of a response.
pub fn set_cookies(res: &reqwest::Response) -> Vec<(String, String, String)> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            Some((k.to_string(), val.to_string(), v.to_string()))
        })
        .collect()
}

/// The value of the first `name="csrf"` field of a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

/// Signs a staff user in; returns the session cookie value.
pub async fn sign_in(c: &reqwest::Client, base: &str, name: &str, password: &str) -> String {
    let res = c.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let pre = set_cookies(&res)
        .into_iter()
        .find(|(k, _, _)| k == "ig_pre")
        .expect("a pre-session cookie")
        .1;
    let html = res.text().await.unwrap();
    let csrf = csrf_of(&html);
    let res = c
        .post(format!("{base}/login"))
        .header("cookie", format!("ig_pre={pre}"))
        .form_body(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign-in of {name}");
    let cookies = set_cookies(&res);
    let (_, v, raw) = cookies
        .iter()
        .find(|(k, v, _)| k == "ig_session" && !v.is_empty())
        .expect("a session cookie")
        .clone();
    assert!(raw.contains("HttpOnly"), "{raw}");
    assert!(raw.contains("SameSite=Lax"), "{raw}");
    assert!(raw.contains("Path=/"), "{raw}");
    v
}

/// Runs a test body on a runtime of its own, after the fixture is built
/// (the fixture and the engine block on their own runtimes).
pub fn run<F: std::future::Future>(f: F) -> F::Output {
    fixture();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A one-time sign-in link's token for a customer (engine on the
/// blocking pool).
pub async fn link_token(customer: i64) -> String {
    tokio::task::spawn_blocking(move || {
        let e = infogap_engine::Engine::open_existing(&fixture().db).unwrap();
        e.customer_link(customer, Some("10m")).unwrap().token
    })
    .await
    .unwrap()
}

/// A customer's session through a one-time link.
pub async fn customer_session(c: &reqwest::Client, base: &str, customer: i64) -> String {
    let token = link_token(customer).await;
    let res = c
        .get(format!("{base}/portal/link?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let pre = set_cookies(&res)
        .into_iter()
        .find(|(k, _, _)| k == "ig_pre")
        .unwrap()
        .1;
    let csrf = csrf_of(&res.text().await.unwrap());
    let post = |c: &reqwest::Client| {
        c.post(format!("{base}/portal/link"))
            .header("cookie", format!("ig_pre={pre}"))
            .form_body(&[("csrf", csrf.as_str()), ("token", token.as_str())])
            .send()
    };
    let res = post(c).await.unwrap();
    assert_eq!(res.status(), 303);
    let s = set_cookies(&res)
        .into_iter()
        .find(|(k, v, _)| k == "ig_session" && !v.is_empty())
        .unwrap()
        .1;
    // the link works once
    let again = post(c).await.unwrap();
    assert_eq!(again.status(), 401);
    s
}

fn concrete(path: &str, customer: i64, segment: &str) -> String {
    path.replace("{id}", &customer.to_string())
        .replace("{name}", segment)
        .replace("{code}", "zh")
}

/// The name of the largest segment (as the API lists them).
async fn a_segment(c: &reqwest::Client) -> String {
    let f = fixture();
    let v: serde_json::Value = c
        .get(format!("{}/v1/segments", f.base))
        .bearer_auth(&f.staff("admin").secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let segs = v["segments"].as_array().unwrap();
    let best = segs
        .iter()
        .max_by_key(|s| s["size"].as_u64().unwrap_or(0))
        .unwrap();
    best["name"].as_str().unwrap().replace(' ', "%20")
}

#[test]
fn sign_in_cookies_csrf_and_sign_out() {
    run(sign_in_cookies_csrf_and_sign_out_async());
}

async fn sign_in_cookies_csrf_and_sign_out_async() {
    let f = fixture();
    let c = http();
    let (name, pw, _) = &f.users[0];
    let s = sign_in(&c, &f.base, name, pw).await;

    // a form without its token, or with another session's, is refused
    let res = c
        .post(format!("{}/dashboard/customers", f.base))
        .header("cookie", format!("ig_session={s}"))
        .form_body(&[("key", PLANTED.email)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("security token"), "{body}");
    assert!(!body.contains(PLANTED.email));
    let (n2, p2, _) = &f.users[1];
    let other = sign_in(&c, &f.base, n2, p2).await;
    let page = c
        .get(format!("{}/dashboard/customers", f.base))
        .header("cookie", format!("ig_session={other}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let other_token = csrf_of(&page);
    let res = c
        .post(format!("{}/dashboard/customers", f.base))
        .header("cookie", format!("ig_session={s}"))
        .form_body(&[("key", PLANTED.email), ("csrf", other_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // with its own token the search finds A and redirects to the profile
    let page = c
        .get(format!("{}/dashboard/customers", f.base))
        .header("cookie", format!("ig_session={s}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = csrf_of(&page);
    let res = c
        .post(format!("{}/dashboard/customers", f.base))
        .header("cookie", format!("ig_session={s}"))
        .form_body(&[("key", PLANTED.email), ("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        format!("/dashboard/customers/{}", f.customer_a)
    );
    // a login post without the pre-session cookie is refused
    let res = c
        .post(format!("{}/login", f.base))
        .form_body(&[
            ("csrf", "x"),
            ("name", name.as_str()),
            ("password", pw.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // sign-out ends the session for good
    let res = c
        .post(format!("{}/logout", f.base))
        .header("cookie", format!("ig_session={s}"))
        .form_body(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = c
        .get(format!("{}/dashboard", f.base))
        .header("cookie", format!("ig_session={s}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
}

#[test]
fn the_language_follows_accept_language_and_the_switch() {
    run(async {
        let f = fixture();
        let c = http();
        let get = |lang: &'static str, cookie: Option<&'static str>| {
            let mut r = c
                .get(format!("{}/login", f.base))
                .header("accept-language", lang);
            if let Some(k) = cookie {
                r = r.header("cookie", k);
            }
            r.send()
        };
        let zh = get("zh-CN,zh;q=0.9,en;q=0.5", None)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(zh.contains("lang=\"zh-CN\"") && zh.contains("员工登录"));
        let en = get("en-GB,en;q=0.9", None)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(en.contains("lang=\"en\"") && en.contains("Staff sign-in"));
        // the switch's cookie wins over the header
        let res = c
            .get(format!("{}/lang/en?next=/login", f.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert_eq!(res.headers()["location"], "/login");
        let cookie = set_cookies(&res)
            .into_iter()
            .find(|(k, _, _)| k == "ig_lang")
            .unwrap();
        assert_eq!(cookie.1, "en");
        let en = get("zh-CN", Some("ig_lang=en"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(en.contains("Staff sign-in"));
        // no open redirect through the switch
        let res = c
            .get(format!("{}/lang/zh?next=//evil.example/x", f.base))
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["location"], "/");
    });
}

#[test]
fn repeated_failures_lock_the_account_out() {
    // its own server over the same store: the lockout must not lock the
    // shared fixture's address for the other tests
    let f = fixture();
    let metrics = std::sync::Arc::new(infogap_server::Metrics::new());
    let state = infogap_server::state::AppState::open(&f.db, None, metrics.clone()).unwrap();
    let http_cfg = infogap_server::HttpConfig {
        log: false,
        metrics,
        ..Default::default()
    };
    let (addr, _server) = crate::fixture::serve_in_background(state, http_cfg).unwrap();
    run(lockout(format!("http://{addr}")));
}

async fn lockout(base: String) {
    let f = fixture();
    let c = http();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        let res = c.get(format!("{base}/login")).send().await.unwrap();
        let pre = set_cookies(&res)
            .into_iter()
            .find(|(k, _, _)| k == "ig_pre")
            .unwrap()
            .1;
        let csrf = csrf_of(&res.text().await.unwrap());
        let res = c
            .post(format!("{base}/login"))
            .header("cookie", format!("ig_pre={pre}"))
            .form_body(&[
                ("csrf", csrf.as_str()),
                ("name", "marketing-user"),
                ("password", "wrong password!!"),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
        let retry = res.headers().contains_key("retry-after");
        let body = res.text().await.unwrap();
        if statuses.len() == 1 {
            assert!(body.contains("do not match"), "{body}");
        }
        if *statuses.last().unwrap() == 429 {
            assert!(retry);
        }
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    // the right password is refused too while locked
    let (name, pw, _) = f
        .users
        .iter()
        .find(|u| u.0 == "marketing-user")
        .unwrap()
        .clone();
    let res = c.get(format!("{base}/login")).send().await.unwrap();
    let pre = set_cookies(&res)
        .into_iter()
        .find(|(k, _, _)| k == "ig_pre")
        .unwrap()
        .1;
    let csrf = csrf_of(&res.text().await.unwrap());
    let res = c
        .post(format!("{base}/login"))
        .header("cookie", format!("ig_pre={pre}"))
        .form_body(&[("csrf", csrf.as_str()), ("name", &name), ("password", &pw)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
}

#[test]
fn every_page_for_every_visitor() {
    run(every_page_for_every_visitor_async());
}

async fn every_page_for_every_visitor_async() {
    let f = fixture();
    let c = http();
    let mut sessions: Vec<(String, Option<String>, String)> = Vec::new(); // (who, session, role)
    sessions.push(("nobody".into(), None, String::new()));
    for (name, pw, role) in &f.users {
        let s = sign_in(&c, &f.base, name, pw).await;
        sessions.push((name.clone(), Some(s), role.clone()));
    }
    let cust = customer_session(&c, &f.base, f.customer_a).await;
    let segment = a_segment(&c).await;
    sessions.push(("customer A".into(), Some(cust), "customer".into()));

    let planted = [
        (PLANTED.email, FieldClass::Contact),
        (PLANTED.first_name, FieldClass::Contact),
        (PLANTED.region, FieldClass::Demographic),
        (PLANTED.ticket_text, FieldClass::FeedbackText),
        (PLANTED.survey_text, FieldClass::FeedbackText),
    ];
    for (who, session, role) in &sessions {
        let dept_user = who.contains("-support-");
        for def in PAGES {
            if def.method != "GET" {
                continue;
            }
            let path = concrete(def.path, f.customer_a, &segment);
            let mut req = c.get(format!("{}{path}", f.base));
            if let Some(s) = session {
                req = req.header("cookie", format!("ig_session={s}"));
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(status < 500, "{who} {path}: {status}\n{body}");
            let expected: &[u16] = match (def.who, session.is_some(), role.as_str()) {
                (Who::Public, _, _) => &[200, 303, 404],
                (Who::Staff(_), false, _) => &[303],
                (Who::Customer(_), false, _) => &[401],
                (Who::Staff(_), true, "customer") => &[403, 303],
                (Who::Customer(_), true, r) if r != "customer" => &[403],
                (Who::Staff(a), true, r) => {
                    let allowed = f.policy.role(r).is_some_and(|p| p.actions.contains(&a));
                    if !allowed {
                        &[403, 303]
                    } else if dept_user && path.contains("/customers/") {
                        &[200, 403]
                    } else {
                        &[200]
                    }
                }
                (Who::Customer(_), true, _) => &[200],
            };
            assert!(
                expected.contains(&status),
                "{who} GET {path}: {status}, expected {expected:?}\n{}",
                &body[..body.len().min(600)]
            );
            // what the role must not see, on any page or download
            if role != "customer"
                && let Some(rp) = f.policy.role(role)
            {
                for (value, class) in planted {
                    if rp.visibility(class) != Visibility::Visible {
                        assert!(
                            !body.contains(value),
                            "{who} ({role}) sees {class:?} value on {path}"
                        );
                    }
                }
            }
            if session.is_none() || role == "customer" && matches!(def.who, Who::Staff(_)) {
                for (value, _) in planted {
                    assert!(
                        !body.contains(value),
                        "{who} sees a planted value on {path}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_gap_page_computes_in_the_background_for_its_scope_only() {
    run(gap_page());
}

async fn gap_page() {
    let f = fixture();
    let c = http();
    let user = |role: &str| f.users.iter().find(|u| u.2 == role).unwrap().clone();
    let (an, ap, _) = user("admin");
    let admin = sign_in(&c, &f.base, &an, &ap).await;
    let get = |s: &str| {
        c.get(format!("{}/dashboard/gap", f.base))
            .header("cookie", format!("ig_session={s}"))
            .send()
    };
    let page = get(&admin).await.unwrap().text().await.unwrap();
    let token = csrf_of(&page);
    // without the token: refused, nothing started
    let res = c
        .post(format!("{}/dashboard/gap", f.base))
        .header("cookie", format!("ig_session={admin}"))
        .form_body(&[])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(
        !get(&admin)
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Computing")
    );
    let res = c
        .post(format!("{}/dashboard/gap", f.base))
        .header("cookie", format!("ig_session={admin}"))
        .form_body(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let t0 = std::time::Instant::now();
    let done = loop {
        let p = get(&admin).await.unwrap().text().await.unwrap();
        if p.contains("What sharing is worth") || t0.elapsed() > Duration::from_secs(300) {
            break p;
        }
        assert!(!p.contains("class=\"error\""), "the job failed: {p}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        done.contains("What sharing is worth"),
        "the result is shown"
    );
    assert!(done.contains("unified"), "the unified view is a row");
    // another scope (analyst: masked contacts, no feedback text) does not
    // get the admin's result
    let (nn, np, _) = user("analyst");
    let analyst = sign_in(&c, &f.base, &nn, &np).await;
    let p = get(&analyst).await.unwrap().text().await.unwrap();
    assert!(
        !p.contains("What sharing is worth"),
        "a result shaped for admin leaked"
    );
    // sales has no models.train
    let (sn, sp, _) = user("sales");
    let sales = sign_in(&c, &f.base, &sn, &sp).await;
    assert_eq!(get(&sales).await.unwrap().status(), 403);
}

#[test]
fn the_profile_shows_what_to_ask_next_within_the_policy() {
    run(async {
        let f = fixture();
        let c = http();
        let api = |role: &'static str, id: i64| {
            c.get(format!("{}/v1/customers/{id}/ask-next?top=20", f.base))
                .bearer_auth(&f.staff(role).secret)
                .send()
        };
        // the guest bought but told us nothing about themselves: every
        // attribute is unknown, so the queue holds attribute questions
        let res = api("admin", f.guest).await.unwrap();
        assert_eq!(res.status(), 200);
        let admin: serde_json::Value = res.json().await.unwrap();
        assert_eq!(admin["decision"], "churn");
        let qs = admin["questions"].as_array().unwrap();
        assert!(!qs.is_empty(), "{admin}");
        let gains: Vec<f64> = qs
            .iter()
            .map(|q| q["expected_gain"].as_f64().unwrap())
            .collect();
        assert!(
            gains.windows(2).all(|w| w[0] >= w[1]),
            "best first: {gains:?}"
        );
        assert!(gains[0] > 0.0, "{gains:?}");
        let fields: Vec<&str> = qs.iter().map(|q| q["field"].as_str().unwrap()).collect();
        let demographic = |name: &str| f.policy.attribute_class(name) == FieldClass::Demographic;
        assert!(
            fields.iter().any(|n| demographic(n)),
            "the admin is asked demographic questions: {fields:?}"
        );
        // support does not see demographics, so it is not told to ask them
        let support: serde_json::Value =
            api("support", f.guest).await.unwrap().json().await.unwrap();
        let sf: Vec<&str> = support["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["field"].as_str().unwrap())
            .collect();
        assert!(!sf.iter().any(|n| demographic(n)), "{sf:?}");
        assert!(sf.iter().all(|n| fields.contains(n)), "{sf:?} ⊆ {fields:?}");
        // a field that is known for customer A (the planted CRM row has an
        // age band and a region) is never asked of A
        let a: serde_json::Value = api("admin", f.customer_a)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let af: Vec<&str> = a["questions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|q| q["field"].as_str().unwrap())
            .collect();
        assert!(
            !af.contains(&"region") && !af.contains(&"age_band"),
            "{af:?}"
        );
        // a customer key is refused
        let res = c
            .get(format!("{}/v1/customers/{}/ask-next", f.base, f.guest))
            .bearer_auth(&f.token_a.secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403);

        // the profile page shows the same queue, in both languages
        let (name, password, _) = f.users.iter().find(|u| u.0 == "admin-user").unwrap();
        let session = sign_in(&c, &f.base, name, password).await;
        for (lang, heading) in [("en", "What to ask next"), ("zh-CN", "下一步该问什么")] {
            let html = c
                .get(format!("{}/dashboard/customers/{}", f.base, f.guest))
                .header("cookie", format!("ig_session={session}"))
                .header("accept-language", lang)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(html.contains(heading), "{lang}");
            assert!(
                html.contains(&format!("<td>{}</td>", fields[0])),
                "{lang}: {}",
                fields[0]
            );
        }
    });
}

#[test]
fn a_setup_link_sets_the_first_password_once() {
    run(async {
        let f = fixture();
        let c = http();
        let token = tokio::task::spawn_blocking(|| {
            let e = infogap_engine::Engine::open_existing(&fixture().db).unwrap();
            let policy = e.policy().unwrap();
            e.create_user(
                &policy,
                &infogap_engine::web::NewUser {
                    name: "new-analyst".into(),
                    role: "analyst".into(),
                    department: None,
                },
                None,
            )
            .unwrap()
            .setup_token
            .expect("a setup token without a password")
        })
        .await
        .unwrap();
        let form = c
            .get(format!("{}/setup?token={token}", f.base))
            .send()
            .await
            .unwrap();
        assert_eq!(form.status(), 200);
        let pre = set_cookies(&form)
            .into_iter()
            .find(|(k, _, _)| k == "ig_pre")
            .unwrap()
            .1;
        let html = form.text().await.unwrap();
        let csrf = csrf_of(&html);
        let post = |password: &'static str, confirm: &'static str, csrf: String| {
            c.post(format!("{}/setup", f.base))
                .header("cookie", format!("ig_pre={pre}"))
                .form_body(&[
                    ("csrf", csrf.as_str()),
                    ("token", token.as_str()),
                    ("password", password),
                    ("confirm", confirm),
                ])
                .send()
        };
        // without the form's token: refused, nothing set
        let res = post(
            "a long new password 1",
            "a long new password 1",
            "forged".into(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 403);
        // two different passwords: the form again, the token still unused
        let res = post(
            "a long new password 1",
            "a long new password 2",
            csrf.clone(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 400);
        // too short: the engine's rule, said on the form
        let res = post("short", "short", csrf.clone()).await.unwrap();
        assert_eq!(res.status(), 400);
        let res = post(
            "a long new password 1",
            "a long new password 1",
            csrf.clone(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 303, "signed in after setting the password");
        assert!(
            set_cookies(&res)
                .iter()
                .any(|(k, v, _)| k == "ig_session" && !v.is_empty())
        );
        // the link is used up
        let res = post(
            "another long password",
            "another long password",
            csrf.clone(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 401);
        // and the password works at the sign-in form
        let session = sign_in(&c, &f.base, "new-analyst", "a long new password 1").await;
        let res = c
            .get(format!("{}/dashboard", f.base))
            .header("cookie", format!("ig_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    });
}

#[test]
fn segment_names_and_rules_follow_the_language() {
    run(async {
        let f = fixture();
        let c = http();
        let (name, password, _) = f.users.iter().find(|u| u.0 == "admin-user").unwrap();
        let session = sign_in(&c, &f.base, name, password).await;
        let page = |lang: &'static str| {
            c.get(format!("{}/dashboard/segments", f.base))
                .header("cookie", format!("ig_session={session}"))
                .header("accept-language", lang)
                .send()
        };
        let zh = page("zh-CN").await.unwrap().text().await.unwrap();
        assert!(
            zh.contains("冠军客户") && zh.contains("最近购买且购买频繁"),
            "Chinese names and rules"
        );
        let en = page("en").await.unwrap().text().await.unwrap();
        assert!(en.contains("champions") && en.contains("bought recently and often"));
        assert!(!en.contains("冠军客户"));
    });
}
