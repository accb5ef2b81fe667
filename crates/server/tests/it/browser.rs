//! The pages in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) driven over WebDriver. Staff sign in through the form
//! per role and open every page their menu offers (a masked or hidden
//! planted value never appears); a form whose CSRF token was removed is
//! refused; a customer signs in with a one-time link, changes consent (seen
//! by the next API call), corrects an attribute, downloads the export,
//! answers a survey (it reaches the staff inbox) and asks for erasure; the
//! language switch turns the pages Chinese; no page logs a console error.
//! Screenshots of the main pages go to `target/screenshots/`.
//!
//! Without `chromedriver` the test fails and says how to install it; set
//! `INFOGAP_BROWSER_TESTS=skip` to skip it knowingly (it says so).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use infogap_core::access::{FieldClass, Visibility};
use serde_json::{Value, json};

use crate::fixture::{PLANTED, fixture};
use crate::pages::http;

struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

fn start_driver() -> Option<Driver> {
    let Some(bin) = find_program(&["chromedriver"]) else {
        if std::env::var("INFOGAP_BROWSER_TESTS").as_deref() == Ok("skip") {
            eprintln!("browser tests SKIPPED (INFOGAP_BROWSER_TESTS=skip): no chromedriver");
            return None;
        }
        panic!(
            "the browser tests need Chromium's WebDriver: `apt-get install chromium chromium-driver fonts-wqy-zenhei` (Debian), or set INFOGAP_BROWSER_TESTS=skip to skip them knowingly"
        );
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let t0 = Instant::now();
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "chromedriver did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Driver { child, url })
}

async fn browser(d: &Driver, lang: &str, width: u32, height: u32) -> Client {
    let binary = find_program(&["chromium", "chromium-browser", "google-chrome"])
        .map(|p| p.display().to_string());
    let mut opts = json!({
        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 format!("--window-size={width},{height}"), format!("--lang={lang}")],
        "prefs": {"intl.accept_languages": lang},
    });
    if let Some(b) = binary {
        opts["binary"] = json!(b);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:chromeOptions".into(), opts);
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&d.url)
        .await
        .expect("a browser session")
}

/// Console messages of level SEVERE since the last call.
async fn console_errors(d: &Driver, c: &Client) -> Vec<String> {
    let id = c.session_id().await.unwrap().unwrap();
    let v: Value = crate::http_client()
        .build()
        .unwrap()
        .post(format!("{}/session/{id}/se/log", d.url))
        .json(&json!({"type": "browser"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["level"] == "SEVERE")
        .map(|e| e["message"].as_str().unwrap_or("").to_string())
        .collect()
}

fn shots_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(c: &Client, base: &str, name: &str, password: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    type_into(c, Locator::Id("name"), name).await;
    type_into(c, Locator::Id("password"), password).await;
    click(c, Locator::Css("main form button[type=submit]")).await;
    let t0 = Instant::now();
    while c.current_url().await.unwrap().path() == "/login"
        && t0.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at = c.current_url().await.unwrap();
    assert!(
        at.path().starts_with("/dashboard"),
        "{name} signed in, now at {at}: {}",
        c.source().await.unwrap()
    );
}

async fn cookie(c: &Client, name: &str) -> String {
    c.get_named_cookie(name).await.unwrap().value().to_string()
}

/// Clicks the element `at` finds.
async fn click(c: &Client, at: Locator<'_>) {
    c.find(at).await.unwrap().click().await.unwrap();
}

/// Types `text` into the element `at` finds.
async fn type_into(c: &Client, at: Locator<'_>, text: &str) {
    c.find(at).await.unwrap().send_keys(text).await.unwrap();
}

/// Waits (up to 10 s) until the page's path is `path`; returns the path.
async fn wait_path(c: &Client, path: &str) -> String {
    let t0 = Instant::now();
    loop {
        let now = c.current_url().await.unwrap().path().to_string();
        if now == path || t0.elapsed() > Duration::from_secs(10) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (up to 10 s) until the page holds `needle`; returns the page.
async fn wait_text(c: &Client, needle: &str) -> String {
    let t0 = Instant::now();
    loop {
        let html = c.source().await.unwrap();
        if html.contains(needle) || t0.elapsed() > Duration::from_secs(10) {
            return html;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The menu's links of the current page.
async fn menu(c: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for a in c.find_all(Locator::Css("header nav a")).await.unwrap() {
        if let Some(h) = a.attr("href").await.unwrap() {
            out.push(h);
        }
    }
    out
}

#[test]
fn pages_in_a_real_browser() {
    crate::pages::run(browse());
}

async fn browse() {
    let f = fixture();
    let Some(d) = start_driver() else { return };
    let base = f.base.clone();
    let c = browser(&d, "en-US", 1280, 900).await;

    // ---- staff: every role through the form, every page of its menu
    let planted = [
        (PLANTED.email, FieldClass::Contact),
        (PLANTED.phone_digits, FieldClass::Contact),
        (PLANTED.last_name, FieldClass::Contact),
        (PLANTED.region, FieldClass::Demographic),
        (PLANTED.ticket_text, FieldClass::FeedbackText),
        (PLANTED.survey_text, FieldClass::FeedbackText),
    ];
    for (name, pw, role) in &f.users {
        sign_in(&c, &base, name, pw).await;
        let landed = c.current_url().await.unwrap();
        assert!(
            landed.path().starts_with("/dashboard"),
            "{name} lands on the dashboard: {landed}"
        );
        let rp = f.policy.role(role).unwrap();
        let mut pages = menu(&c).await;
        assert!(!pages.is_empty(), "{name} has a menu");
        pages.push(format!("/dashboard/customers/{}", f.customer_a));
        for p in &pages {
            c.goto(&format!("{base}{p}")).await.unwrap();
            let html = c.source().await.unwrap();
            assert!(!html.contains("Something went wrong"), "{name} {p}");
            for (value, class) in planted {
                if rp.visibility(class) != Visibility::Visible {
                    assert!(
                        !html.contains(value),
                        "{name} ({role}) sees a {class:?} value on {p}"
                    );
                }
            }
            if role == "admin" {
                let slug = p.trim_start_matches('/').replace('/', "-");
                let slug = if slug.contains("customers-") {
                    "dashboard-profile".to_string()
                } else {
                    slug
                };
                shot(&c, &format!("en-{slug}")).await;
            }
        }
        // the profile shows the customer's key as the role may see it
        let errs = console_errors(&d, &c).await;
        assert!(errs.is_empty(), "{name}: console errors {errs:?}");
        click(&c, Locator::Css("form[action='/logout'] button")).await;
        assert_eq!(wait_path(&c, "/login").await, "/login");
    }

    // ---- the information gap: computed in the background on request
    let (admin, admin_pw, _) = f.users.iter().find(|u| u.2 == "admin").unwrap().clone();
    sign_in(&c, &base, &admin, &admin_pw).await;
    c.goto(&format!("{base}/dashboard/gap")).await.unwrap();
    if !c.source().await.unwrap().contains("What sharing is worth") {
        if let Ok(b) = c
            .find(Locator::Css("form[action='/dashboard/gap'] button"))
            .await
        {
            // disabled while another request computes it
            let _ = b.click().await;
        }
        let t0 = Instant::now();
        while !c.source().await.unwrap().contains("What sharing is worth")
            && t0.elapsed() < Duration::from_secs(300)
        {
            tokio::time::sleep(Duration::from_millis(500)).await;
            c.goto(&format!("{base}/dashboard/gap")).await.unwrap();
        }
    }
    let html = c.source().await.unwrap();
    assert!(
        html.contains("What sharing is worth"),
        "the gap result is shown"
    );
    shot(&c, "en-dashboard-gap-result").await;
    click(&c, Locator::Css("form[action='/logout'] button")).await;
    assert_eq!(wait_path(&c, "/login").await, "/login");

    // ---- a form whose CSRF token was removed is refused
    sign_in(&c, &base, &admin, &admin_pw).await;
    c.goto(&format!("{base}/dashboard/customers"))
        .await
        .unwrap();
    c.execute(
        "document.querySelector('main input[name=csrf]').value = 'forged';",
        vec![],
    )
    .await
    .unwrap();
    type_into(&c, Locator::Id("key"), PLANTED.email).await;
    click(&c, Locator::Css("main form button")).await;
    let html = wait_text(&c, "security token").await;
    assert!(html.contains("security token"), "forged CSRF refused");
    assert!(!html.contains(PLANTED.email));
    // the refusal is the one expected console entry (a 403)
    let errs = console_errors(&d, &c).await;
    assert!(errs.iter().all(|e| e.contains("403")), "{errs:?}");
    // and with the real token the search opens the profile
    c.goto(&format!("{base}/dashboard/customers"))
        .await
        .unwrap();
    type_into(&c, Locator::Id("key"), PLANTED.email).await;
    click(&c, Locator::Css("main form button")).await;
    let want = format!("/dashboard/customers/{}", f.customer_a);
    assert_eq!(wait_path(&c, &want).await, want);
    assert!(
        !c.current_url()
            .await
            .unwrap()
            .as_str()
            .contains("example.org")
    );

    // ---- language switch: the same pages in Chinese
    c.goto(&format!("{base}/dashboard")).await.unwrap();
    click(&c, Locator::Css("a[hreflang='zh-CN']")).await;
    let html = wait_text(&c, "lang=\"zh-CN\"").await;
    assert!(html.contains("lang=\"zh-CN\""), "Chinese page");
    assert!(
        html.contains("概览") && html.contains("客户"),
        "Chinese labels"
    );
    shot(&c, "zh-dashboard").await;
    c.goto(&format!("{base}/dashboard/segments")).await.unwrap();
    shot(&c, "zh-dashboard-segments").await;
    click(&c, Locator::Css("a[hreflang='en']")).await;
    assert!(wait_text(&c, "lang=\"en\"").await.contains("lang=\"en\""));
    click(&c, Locator::Css("form[action='/logout'] button")).await;
    // the sign-out's navigation must land before the next one starts
    assert_eq!(wait_path(&c, "/login").await, "/login");

    // ---- the customer portal (customer C: not one the other tests use)
    let cust = *f
        .customers
        .iter()
        .rev()
        .find(|x| ![f.customer_a, f.customer_b, f.guest, f.outside_support].contains(x))
        .unwrap();
    let link = crate::pages::link_token(cust).await;
    let token = tokio::task::spawn_blocking(move || {
        let e = infogap_engine::Engine::open_existing(&fixture().db).unwrap();
        e.customer_token(cust, Some("10m")).unwrap().token
    })
    .await
    .unwrap();
    c.goto(&format!("{base}/portal/link?token={link}"))
        .await
        .unwrap();
    shot(&c, "en-portal-link").await;
    click(&c, Locator::Css("main form button")).await;
    assert_eq!(wait_path(&c, "/portal").await, "/portal");
    let html = wait_text(&c, "What each department holds about you").await;
    assert!(html.contains("What each department holds about you"));
    shot(&c, "en-portal").await;

    // consent: flip marketing; the next API call sees it
    let api = http();
    let before: Value = api
        .get(format!("{base}/v1/me/consents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let allowed_before = before["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "marketing")
        .unwrap()["allowed"]
        .as_bool()
        .unwrap();
    click(
        &c,
        Locator::Css("form[action='/portal/consent'] input[value=marketing] ~ button"),
    )
    .await;
    assert!(
        wait_text(&c, "consent choice is saved")
            .await
            .contains("consent choice is saved")
    );
    let after: Value = api
        .get(format!("{base}/v1/me/consents"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let allowed_after = after["purposes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["purpose"] == "marketing")
        .unwrap()["allowed"]
        .as_bool()
        .unwrap();
    assert_eq!(allowed_after, !allowed_before, "the consent change is live");

    // correction: a self-service fact with provenance, the original kept
    type_into(&c, Locator::Id("attribute"), "region").await;
    type_into(&c, Locator::Id("value"), "zzcorrectedregion").await;
    click(&c, Locator::Css("form[action='/portal/correct'] button")).await;
    assert!(
        wait_text(&c, "correction is recorded")
            .await
            .contains("correction is recorded")
    );
    // the staff view follows within the snapshot refresh
    let t0 = Instant::now();
    let me = loop {
        let v: Value = api
            .get(format!("{base}/v1/customers/{cust}"))
            .bearer_auth(&f.staff("admin").secret)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if v.to_string().contains("zzcorrectedregion") || t0.elapsed() > Duration::from_secs(10) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        me.to_string().contains("zzcorrectedregion"),
        "the correction is in the staff view: {me}"
    );

    // export: a zip of the person's data
    let session = cookie(&c, "ig_session").await;
    let res = api
        .get(format!("{base}/portal/export"))
        .header("cookie", format!("ig_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip = res.bytes().await.unwrap();
    assert!(zip.starts_with(b"PK"), "a zip");

    // survey: an NPS answer lands as feedback in the staff inbox
    c.goto(&format!("{base}/portal/feedback")).await.unwrap();
    shot(&c, "en-portal-feedback").await;
    click(
        &c,
        Locator::Css("form input[name=kind][value=nps] ~ fieldset input[value='9']"),
    )
    .await;
    type_into(&c, Locator::Id("nps-text"), "zz portal survey answer").await;
    click(
        &c,
        Locator::Css("form input[name=kind][value=nps] ~ button"),
    )
    .await;
    assert!(
        wait_text(&c, "answer is recorded")
            .await
            .contains("answer is recorded")
    );

    // erasure: confirmed, then queued (the demo's default) — recorded
    c.goto(&format!("{base}/portal/erase")).await.unwrap();
    click(&c, Locator::Css("input[name=confirm]")).await;
    click(&c, Locator::Css("form[action='/portal/erase'] button")).await;
    let html = wait_text(&c, "Reference").await;
    assert!(
        html.contains("request is recorded") || html.contains("has been erased"),
        "{html}"
    );
    let erasures: Value = api
        .get(format!("{base}/v1/erasures"))
        .bearer_auth(&f.staff("admin").secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        erasures
            .to_string()
            .contains(&format!("\"customer_id\":{cust}")),
        "the request is in the journal: {erasures}"
    );
    let errs = console_errors(&d, &c).await;
    assert!(errs.is_empty(), "portal console errors {errs:?}");

    // the survey answer in the staff inbox
    sign_in(&c, &base, &admin, &admin_pw).await;
    c.goto(&format!("{base}/dashboard/feedback")).await.unwrap();
    assert!(
        wait_text(&c, "zz portal survey answer")
            .await
            .contains("zz portal survey answer"),
        "the answer reaches the inbox"
    );
    shot(&c, "en-dashboard-feedback").await;
    c.close().await.unwrap();

    // ---- phone width, Chinese by Accept-Language
    // (Accept-Language itself is checked over plain HTTP in pages.rs: the
    // browser's own header depends on its profile)
    let phone = browser(&d, "zh-CN", 390, 844).await;
    phone
        .goto(&format!("{base}/lang/zh-CN?next=/login"))
        .await
        .unwrap();
    let html = wait_text(&phone, "员工登录").await;
    assert!(html.contains("员工登录"), "Chinese after the switch");
    shot(&phone, "zh-phone-login").await;
    let errs = console_errors(&d, &phone).await;
    assert!(errs.is_empty(), "console errors {errs:?}");
    phone.close().await.unwrap();
}
