//! Signing in and out: staff passwords (`/login`), first passwords from a
//! setup link (`/setup`), customers' one-time links (`/portal/link`).
//!
//! Why shaped like this: the engine checks credentials, issues sessions and
//! audits every sign-in; this module only moves them between forms and
//! cookies. Forms before a session exist carry a CSRF token bound to a
//! random pre-session cookie (so another site cannot sign a browser into an
//! account of its choosing). A one-time link opens a page with a button
//! rather than signing in on `GET`, so a mail scanner that follows links
//! cannot use it up. Failed attempts are limited per client address and per
//! account name (429 with `Retry-After`).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use infogap_engine::EngineError;
use infogap_engine::web::{SessionKind, WebSession};
use maud::{Markup, html};

use super::{
    Area, Cx, Fields, PRE_COOKIE, PageError, SESSION_COOKIE, error_page, field, html_response,
    parse_form, shell,
};
use crate::error::ApiError;
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/login", get(login_form).post(login))
        .route("/logout", axum::routing::post(logout))
        .route("/setup", get(setup_form).post(setup))
        .route("/portal/link", get(link_form).post(link))
}

fn random_hex() -> String {
    let a: [u8; 16] = rand::random();
    a.iter().map(|b| format!("{b:02x}")).collect()
}

/// The pre-session cookie of this browser, or a new one.
fn pre_cookie(cx: &Cx) -> (String, bool) {
    match cx.cookie(PRE_COOKIE) {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => {
            (v.to_string(), false)
        }
        _ => (random_hex(), true),
    }
}

/// The CSRF token of a pre-session form.
async fn pre_token(st: &Arc<AppState>, pre: &str) -> Result<String, ApiError> {
    let id = format!("pre:{pre}");
    st.run(move |e, _| e.csrf_token(&id)).await
}

/// Whether a pre-session form's token matches this browser's cookie.
async fn pre_ok(st: &Arc<AppState>, cx: &Cx, f: &Fields) -> Result<bool, ApiError> {
    let Some(pre) = cx.cookie(PRE_COOKIE).map(str::to_string) else {
        return Ok(false);
    };
    let token = field(f, "csrf").unwrap_or("").to_string();
    let id = format!("pre:{pre}");
    st.run(move |e, _| e.verify_csrf(&id, &token)).await
}

/// [`pre_ok`] as a page: `Err` is the refusal (403) or the error to show.
async fn pre_checked(st: &Arc<AppState>, cx: &Cx, f: &Fields) -> Result<(), Response> {
    match pre_ok(st, cx, f).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(error_page(
            cx,
            PageError::Api(ApiError::from(super::csrf_refused())),
        )),
        Err(e) => Err(error_page(cx, PageError::Api(e))),
    }
}

/// A stable, per-process, unguessable address standing for an account
/// name, so the address limiter's logic also limits guesses per account
/// (in its own limiter: these never meet real addresses).
fn account_key(name: &str) -> IpAddr {
    static S: OnceLock<RandomState> = OnceLock::new();
    let s = S.get_or_init(RandomState::new);
    let mut h = s.build_hasher();
    h.write(name.trim().to_lowercase().as_bytes());
    let v = h.finish();
    // the limiter groups IPv6 by /64: the hash fills the first 64 bits
    let seg = |k: u32| ((v >> (48 - 16 * k)) & 0xffff) as u16;
    IpAddr::V6(Ipv6Addr::new(seg(0), seg(1), seg(2), seg(3), 0, 0, 0, 1))
}

fn with_pre_cookie(cx: &Cx, mut res: Response, pre: &str, fresh: bool) -> Response {
    if fresh {
        res.headers_mut()
            .append(header::SET_COOKIE, cx.set_cookie(PRE_COOKIE, pre, None));
    }
    res
}

fn signed_in(cx: &Cx, s: &WebSession, to: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    let age = (s.expires_at - chrono::Utc::now().timestamp()).max(1);
    res.headers_mut().append(
        header::SET_COOKIE,
        cx.set_cookie(SESSION_COOKIE, &s.cookie, Some(age)),
    );
    res.headers_mut()
        .append(header::SET_COOKIE, cx.set_cookie(PRE_COOKIE, "", Some(0)));
    res
}

// ---------------------------------------------------------------------------
// Staff sign-in

fn login_markup(cx: &Cx, csrf: &str, name: &str, problem: Option<&str>) -> Markup {
    let l = cx.lang;
    shell(
        cx,
        Area::Public,
        None,
        "/login",
        l.t("Staff sign-in", "员工登录"),
        html! {
            @if let Some(p) = problem { p class="error" role="alert" { (p) } }
            form method="post" action="/login" class="panel" {
                input type="hidden" name="csrf" value=(csrf);
                label for="name" { (l.t("User name", "用户名")) }
                input type="text" id="name" name="name" value=(name) autocomplete="username" required autofocus;
                label for="password" { (l.t("Password", "密码")) }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                button type="submit" { (l.t("Sign in", "登录")) }
            }
            p class="muted" { (l.t("Customers sign in with the one-time link they were sent.", "客户请使用发给您的一次性链接登录。")) }
        },
    )
}

async fn login_form(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let (pre, fresh) = pre_cookie(&cx);
    match pre_token(&st, &pre).await {
        Ok(t) => with_pre_cookie(
            &cx,
            html_response(StatusCode::OK, login_markup(&cx, &t, "", None), None),
            &pre,
            fresh,
        ),
        Err(e) => error_page(&cx, PageError::Api(e)),
    }
}

async fn login(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let l = cx.lang;
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let name = field(&f, "name").unwrap_or("").trim().to_string();
    let password = field(&f, "password").unwrap_or("").to_string();
    let account = account_key(&name);
    for (limiter, key) in [(&st.limiter, cx.ip), (&st.account_limiter, Some(account))] {
        if let Some(k) = key
            && let Err(secs) = limiter.check(k)
        {
            return error_page(&cx, PageError::Api(ApiError::rate_limited(secs)));
        }
    }
    if let Err(res) = pre_checked(&st, &cx, &f).await {
        return res;
    }
    let origin = cx.origin();
    let n = name.clone();
    let out = st.run(move |e, _| e.sign_in(&n, &password, &origin)).await;
    match out {
        Ok(s) => {
            if let Some(ip) = cx.ip {
                st.limiter.record_success(ip);
            }
            st.account_limiter.record_success(account);
            signed_in(&cx, &s, "/dashboard")
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            if let Some(ip) = cx.ip {
                st.limiter.record_failure(ip);
            }
            st.account_limiter.record_failure(account);
            let (pre, fresh) = pre_cookie(&cx);
            let token = pre_token(&st, &pre).await.unwrap_or_default();
            let m = login_markup(
                &cx,
                &token,
                &name,
                Some(l.t(
                    "That user name and password do not match an active account.",
                    "用户名或密码不正确，或账户已停用。",
                )),
            );
            with_pre_cookie(
                &cx,
                html_response(StatusCode::UNAUTHORIZED, m, None),
                &pre,
                fresh,
            )
        }
        Err(e) => error_page(&cx, PageError::Api(e)),
    }
}

async fn logout(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let Some(cookie) = cx.cookie(SESSION_COOKIE).map(str::to_string) else {
        return Redirect::to("/login").into_response();
    };
    let token = field(&f, "csrf").unwrap_or("").to_string();
    let origin = cx.origin();
    let out = st
        .run(move |e, _| {
            let sv = match e.session(&cookie, &origin) {
                Ok(s) => s,
                // an ended session: only the cookie is left to clear
                Err(EngineError::Unauthorized(_)) => return Ok(None),
                Err(err) => return Err(err),
            };
            if !e.verify_csrf(&sv.id, &token)? {
                return Err(super::csrf_refused());
            }
            e.sign_out(&cookie)?;
            Ok(Some(sv.kind))
        })
        .await;
    match out {
        Ok(kind) => {
            let to = if kind == Some(SessionKind::Customer) {
                "/portal/link"
            } else {
                "/login"
            };
            let mut res = Redirect::to(to).into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                cx.set_cookie(SESSION_COOKIE, "", Some(0)),
            );
            res
        }
        Err(e) => error_page(&cx, PageError::Api(e)),
    }
}

// ---------------------------------------------------------------------------
// First password (setup link)

fn query_token(q: Option<&str>) -> String {
    q.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    })
    .unwrap_or_default()
}

fn setup_markup(cx: &Cx, csrf: &str, token: &str, problem: Option<&str>) -> Markup {
    let l = cx.lang;
    shell(
        cx,
        Area::Public,
        None,
        "/setup",
        l.t("Choose your password", "设置密码"),
        html! {
            @if let Some(p) = problem { p class="error" role="alert" { (p) } }
            form method="post" action="/setup" class="panel" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="token" value=(token);
                label for="password" { (l.t("New password (at least 12 characters)", "新密码（至少 12 个字符）")) }
                input type="password" id="password" name="password" autocomplete="new-password" minlength="12" required autofocus;
                label for="confirm" { (l.t("The same password again", "再次输入密码")) }
                input type="password" id="confirm" name="confirm" autocomplete="new-password" minlength="12" required;
                button type="submit" { (l.t("Set password and sign in", "设置密码并登录")) }
            }
        },
    )
}

async fn setup_form(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let token = query_token(q.as_deref());
    let (pre, fresh) = pre_cookie(&cx);
    match pre_token(&st, &pre).await {
        Ok(t) => with_pre_cookie(
            &cx,
            html_response(StatusCode::OK, setup_markup(&cx, &t, &token, None), None),
            &pre,
            fresh,
        ),
        Err(e) => error_page(&cx, PageError::Api(e)),
    }
}

/// The setup form again, with what was wrong.
async fn setup_again(st: &Arc<AppState>, cx: &Cx, token: &str, problem: &str) -> Response {
    let (pre, fresh) = pre_cookie(cx);
    let t = pre_token(st, &pre).await.unwrap_or_default();
    with_pre_cookie(
        cx,
        html_response(
            StatusCode::BAD_REQUEST,
            setup_markup(cx, &t, token, Some(problem)),
            None,
        ),
        &pre,
        fresh,
    )
}

async fn setup(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let l = cx.lang;
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    if let Some(ip) = cx.ip
        && let Err(secs) = st.limiter.check(ip)
    {
        return error_page(&cx, PageError::Api(ApiError::rate_limited(secs)));
    }
    if let Err(res) = pre_checked(&st, &cx, &f).await {
        return res;
    }
    let token = field(&f, "token").unwrap_or("").to_string();
    let password = field(&f, "password").unwrap_or("").to_string();
    if field(&f, "confirm") != Some(password.as_str()) {
        return setup_again(
            &st,
            &cx,
            &token,
            l.t("The two passwords differ.", "两次输入的密码不一致。"),
        )
        .await;
    }
    let origin = cx.origin();
    let t = token.clone();
    let out = st
        .run(move |e, _| e.redeem_setup(&t, &password, &origin))
        .await;
    match out {
        Ok(s) => signed_in(&cx, &s, "/dashboard"),
        Err(e) if e.status == StatusCode::BAD_REQUEST => {
            setup_again(&st, &cx, &token, &e.message).await
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED
                && let Some(ip) = cx.ip
            {
                st.limiter.record_failure(ip);
            }
            error_page(&cx, PageError::Api(e))
        }
    }
}

// ---------------------------------------------------------------------------
// Customer one-time link

fn link_markup(cx: &Cx, csrf: &str, token: &str) -> Markup {
    let l = cx.lang;
    shell(
        cx,
        Area::Public,
        None,
        "/portal/link",
        l.t("Your data", "您的数据"),
        html! {
            @if token.is_empty() {
                p { (l.t("Open the one-time sign-in link you were sent. A link works once and for a short time; ask the business for a new one if it has expired.", "请打开发给您的一次性登录链接。链接只能使用一次且有效期很短；如已过期，请向商家申请新的链接。")) }
            } @else {
                p { (l.t("See what we hold about you, correct it, choose what we may use it for, download it or ask us to erase it.", "查看我们持有的关于您的数据，更正数据，选择数据的用途，下载数据或要求删除。")) }
                form method="post" action="/portal/link" class="panel" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="token" value=(token);
                    button type="submit" { (l.t("Continue to my data", "进入我的数据")) }
                }
            }
        },
    )
}

async fn link_form(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let token = query_token(q.as_deref());
    let (pre, fresh) = pre_cookie(&cx);
    match pre_token(&st, &pre).await {
        Ok(t) => with_pre_cookie(
            &cx,
            html_response(StatusCode::OK, link_markup(&cx, &t, &token), None),
            &pre,
            fresh,
        ),
        Err(e) => error_page(&cx, PageError::Api(e)),
    }
}

async fn link(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    if let Some(ip) = cx.ip
        && let Err(secs) = st.limiter.check(ip)
    {
        return error_page(&cx, PageError::Api(ApiError::rate_limited(secs)));
    }
    if let Err(res) = pre_checked(&st, &cx, &f).await {
        return res;
    }
    let token = field(&f, "token").unwrap_or("").to_string();
    let origin = cx.origin();
    match st.run(move |e, _| e.redeem_link(&token, &origin)).await {
        Ok(s) => {
            if let Some(ip) = cx.ip {
                st.limiter.record_success(ip);
            }
            signed_in(&cx, &s, "/portal")
        }
        Err(e) => {
            if e.status == StatusCode::UNAUTHORIZED
                && let Some(ip) = cx.ip
            {
                st.limiter.record_failure(ip);
            }
            let l = cx.lang;
            let e = if e.status == StatusCode::UNAUTHORIZED {
                ApiError::unauthorized(l.t(
                    "This sign-in link has been used, has expired or is not valid. Ask for a new one.",
                    "此登录链接已使用、已过期或无效。请申请新的链接。",
                ))
            } else {
                e
            };
            error_page(&cx, PageError::Api(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_keys_are_stable_and_distinct() {
        assert_eq!(account_key("Alice"), account_key(" alice "));
        assert_ne!(account_key("alice"), account_key("bob"));
    }
}
