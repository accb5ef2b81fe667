//! The web pages of `infogap serve`: staff sign-in and the department
//! dashboard (`/login`, `/dashboard…`), the customer self-service portal
//! (`/portal…`), in English and Simplified Chinese.
//!
//! Why here and shaped like this: a page is an API answer rendered as HTML.
//! Each handler resolves the session cookie to a principal, asks the engine
//! for the same use case the API calls (the engine authorizes, shapes every
//! field by the policy and writes the audit record) and renders the answer
//! with maud; nothing here decides what a role may see. Pages work without
//! JavaScript: forms post back (with a CSRF token bound to the session),
//! charts are SVG drawn here ([`chart`]) with their numbers as a table and a
//! CSV download. [`PAGES`] lists every page with who may open it, so the
//! route × principal tests walk all of them.

pub mod chart;
pub mod i18n;
pub mod view;

mod admin;
mod auth;
mod dashboard;
mod feedback;
mod portal;
mod webhooks;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use infogap_core::access::Action;
use infogap_engine::access::Access;
use infogap_engine::web::{SessionKind, SessionView};
use infogap_engine::{Engine, EngineError};
use maud::{DOCTYPE, Markup, html};

use crate::error::ApiError;
use crate::middleware::{Actor, ClientIp, RequestId};
use crate::state::AppState;
use i18n::Lang;

/// The session cookie (a staff or customer session's secret).
pub const SESSION_COOKIE: &str = "ig_session";
/// The pre-session cookie that binds the sign-in forms' CSRF token.
pub const PRE_COOKIE: &str = "ig_pre";
/// The language switch's cookie.
pub const LANG_COOKIE: &str = "ig_lang";

/// Who may open a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anyone (sign-in pages, assets).
    Public,
    /// A signed-in staff user whose role has the action.
    Staff(Action),
    /// A signed-in customer (their own data).
    Customer(Action),
}

/// One page route.
#[derive(Debug, Clone, Copy)]
pub struct PageDef {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Who may open it.
    pub who: Who,
}

const fn p(method: &'static str, path: &'static str, who: Who) -> PageDef {
    PageDef { method, path, who }
}

/// Every page.
pub const PAGES: &[PageDef] = &[
    p("GET", "/", Who::Public),
    p("GET", "/static/app.css", Who::Public),
    p("GET", "/favicon.ico", Who::Public),
    p("GET", "/lang/{code}", Who::Public),
    p("GET", "/login", Who::Public),
    p("POST", "/login", Who::Public),
    p("POST", "/logout", Who::Public),
    p("GET", "/setup", Who::Public),
    p("POST", "/setup", Who::Public),
    p("GET", "/portal/link", Who::Public),
    p("POST", "/portal/link", Who::Public),
    p("GET", "/dashboard", Who::Staff(Action::StatsRead)),
    p(
        "GET",
        "/dashboard/overview.csv",
        Who::Staff(Action::StatsRead),
    ),
    p(
        "GET",
        "/dashboard/customers",
        Who::Staff(Action::CustomersLookup),
    ),
    p(
        "POST",
        "/dashboard/customers",
        Who::Staff(Action::CustomersLookup),
    ),
    p(
        "GET",
        "/dashboard/customers/{id}",
        Who::Staff(Action::CustomersRead),
    ),
    p(
        "GET",
        "/dashboard/customers/{id}/merges",
        Who::Staff(Action::CustomersRead),
    ),
    p(
        "POST",
        "/dashboard/customers/{id}/split",
        Who::Staff(Action::CustomersMerge),
    ),
    p("GET", "/dashboard/system", Who::Staff(Action::ModelsTrain)),
    p(
        "GET",
        "/dashboard/system/imports.csv",
        Who::Staff(Action::ModelsTrain),
    ),
    p("GET", "/dashboard/churn", Who::Staff(Action::ChurnRead)),
    p("GET", "/alerts", Who::Staff(Action::AlertsRead)),
    p("GET", "/dashboard/churn.csv", Who::Staff(Action::ChurnRead)),
    p(
        "GET",
        "/dashboard/segments",
        Who::Staff(Action::SegmentsRead),
    ),
    p(
        "GET",
        "/dashboard/segments/{name}/members.csv",
        Who::Staff(Action::SegmentsExport),
    ),
    p("GET", "/dashboard/clv", Who::Staff(Action::ClvRead)),
    p(
        "GET",
        "/dashboard/forecasts",
        Who::Staff(Action::ForecastsRead),
    ),
    p(
        "GET",
        "/dashboard/forecasts.csv",
        Who::Staff(Action::ForecastsRead),
    ),
    p("GET", "/dashboard/gap", Who::Staff(Action::ModelsTrain)),
    p("POST", "/dashboard/gap", Who::Staff(Action::ModelsTrain)),
    p(
        "GET",
        "/dashboard/feedback",
        Who::Staff(Action::FeedbackRead),
    ),
    p(
        "GET",
        "/dashboard/feedback.csv",
        Who::Staff(Action::FeedbackRead),
    ),
    p("GET", "/dashboard/audit", Who::Staff(Action::AuditRead)),
    p(
        "GET",
        "/dashboard/webhooks",
        Who::Staff(Action::WebhooksManage),
    ),
    p(
        "POST",
        "/dashboard/webhooks/replay",
        Who::Staff(Action::WebhooksManage),
    ),
    p("GET", "/portal", Who::Customer(Action::SelfRead)),
    p("POST", "/portal/consent", Who::Customer(Action::SelfWrite)),
    p("POST", "/portal/correct", Who::Customer(Action::SelfWrite)),
    p("GET", "/portal/feedback", Who::Customer(Action::SelfRead)),
    p("POST", "/portal/feedback", Who::Customer(Action::SelfWrite)),
    p("GET", "/portal/export", Who::Customer(Action::SelfRead)),
    p("GET", "/portal/erase", Who::Customer(Action::SelfRead)),
    p("POST", "/portal/erase", Who::Customer(Action::SelfWrite)),
];

/// The pages' router (merged with the API's by [`crate::routes::router`]).
pub fn router(state: Arc<AppState>) -> Router {
    let r: Router<Arc<AppState>> = Router::new()
        .route("/", get(root))
        .route("/static/app.css", get(css))
        .route("/favicon.ico", get(favicon))
        .route("/lang/{code}", get(switch_lang))
        .merge(admin::routes())
        .merge(webhooks::routes())
        .merge(auth::routes())
        .merge(dashboard::routes())
        .merge(feedback::routes())
        .merge(portal::routes());
    r.layer(from_fn(page_headers)).with_state(state)
}

/// Security headers of every page: no framing, no inline or foreign script
/// or style, no referrer (a one-time link's token must not leak), no caching
/// of pages that hold customer data.
async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        h.entry(k).or_insert(HeaderValue::from_static(v));
    };
    set(
        h,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-frame-options", "DENY");
    set(h, "x-content-type-options", "nosniff");
    set(h, "referrer-policy", "no-referrer");
    set(h, "cache-control", "no-store");
    res
}

// ---------------------------------------------------------------------------
// Request context

/// What every page handler knows about its request.
#[derive(Debug, Clone)]
pub struct Cx {
    /// Page language.
    pub lang: Lang,
    cookies: HashMap<String, String>,
    /// Client address.
    pub ip: Option<IpAddr>,
    request_id: Option<String>,
    /// Whether cookies get `Secure` (TLS, or a trusted proxy said https).
    pub secure: bool,
}

impl FromRequestParts<Arc<AppState>> for Cx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &Arc<AppState>) -> Result<Self, ApiError> {
        let mut cookies = HashMap::new();
        for v in parts.headers.get_all(header::COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            for kv in v.split(';') {
                if let Some((k, v)) = kv.trim().split_once('=')
                    && cookies.len() < 32
                {
                    cookies.insert(k.trim().to_string(), v.trim().to_string());
                }
            }
        }
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        let lang = Lang::negotiate(cookies.get(LANG_COOKIE).map(String::as_str), accept);
        let secure = st.secure_cookies();
        Ok(Cx {
            lang,
            cookies,
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
            secure,
        })
    }
}

impl Cx {
    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies.get(name).map(String::as_str)
    }

    /// Where the request came from, for the audit trail.
    pub fn origin(&self) -> String {
        self.ip.map_or_else(|| "unknown".into(), |i| i.to_string())
    }

    /// A `Set-Cookie` value: `HttpOnly`, `SameSite=Lax`, `Path=/`, and
    /// `Secure` over TLS; `max_age` None = a session cookie, `Some(0)` deletes.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if let Some(a) = max_age {
            c.push_str(&format!("; Max-Age={a}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("ig_bad=; Max-Age=0"))
    }
}

// ---------------------------------------------------------------------------
// Who is signed in

/// The signed-in person as the page shell needs it.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Staff user name, or None for a customer.
    pub user: Option<String>,
    /// Role.
    pub role: String,
    /// Department, if the user is limited to one.
    pub department: Option<String>,
    /// The actions the role may take (which menu entries to show).
    pub actions: Vec<Action>,
    /// The CSRF token of this session (every form carries it).
    pub csrf: String,
    /// Audit name.
    pub actor: String,
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): go to the sign-in page.
    SignIn {
        /// Staff (`/login`) or customer (`/portal/link`).
        customer: bool,
    },
    /// Any other error, shown as an error page with its status.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError::Api(e)
    }
}

/// A form's fields.
pub type Fields = Vec<(String, String)>;

/// The value of a form field.
pub fn field<'a>(f: &'a Fields, name: &str) -> Option<&'a str> {
    f.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Parses an `application/x-www-form-urlencoded` body (at most 256 fields).
pub fn parse_form(body: &[u8]) -> Result<Fields, ApiError> {
    let f: Fields = form_urlencoded::parse(body)
        .take(257)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if f.len() > 256 {
        return Err(ApiError::bad_request("the form has more than 256 fields"));
    }
    Ok(f)
}

pub(super) fn csrf_refused() -> EngineError {
    EngineError::Forbidden(
        "the form's security token is missing or out of date; reload the page and try again".into(),
    )
}

/// Runs `f` for the signed-in session on the blocking pool: the session
/// must be of `kind`, its role must have `action` (the engine authorizes and
/// audits), and with `form` the form's CSRF token must match the session.
async fn with_session<T, F>(
    st: &Arc<AppState>,
    cx: &Cx,
    kind: SessionKind,
    action: Action,
    form: Option<&Fields>,
    f: F,
) -> Result<(T, Viewer), PageError>
where
    T: Send + 'static,
    F: FnOnce(&Engine, &AppState, &Access) -> Result<T, EngineError> + Send + 'static,
{
    let customer = kind == SessionKind::Customer;
    let Some(cookie) = cx.cookie(SESSION_COOKIE).map(str::to_string) else {
        return Err(PageError::SignIn { customer });
    };
    if let Some(ip) = cx.ip
        && let Err(secs) = st.limiter.check(ip)
    {
        return Err(PageError::Api(ApiError::rate_limited(secs)));
    }
    let token = form.map(|f| field(f, "csrf").unwrap_or("").to_string());
    let origin = cx.origin();
    let rid = cx.request_id.clone();
    let out = st
        .run(move |engine, state| {
            let sv: SessionView = match engine.session(&cookie, &origin) {
                Ok(s) => s,
                Err(EngineError::Unauthorized(_)) => return Ok(Err(())),
                Err(e) => return Err(e),
            };
            if sv.kind != kind {
                return Err(EngineError::Forbidden(if customer {
                    "this page is for customers; staff use the dashboard".into()
                } else {
                    "this page is for staff; customers use the portal".into()
                }));
            }
            if let Some(t) = &token
                && !engine.verify_csrf(&sv.id, t)?
            {
                return Err(csrf_refused());
            }
            let mut principal = sv.principal.clone();
            principal.request_id = rid;
            let policy = state.policy();
            let actions: Vec<Action> = policy
                .role(&principal.role)
                .map(|r| r.actions.iter().copied().collect())
                .unwrap_or_default();
            let access = engine
                .authorize(&policy, &principal, action)?
                .with_records(state.insights().records.clone());
            let v = f(engine, state, &access)?;
            Ok(Ok((
                v,
                Viewer {
                    user: sv.user.clone(),
                    role: principal.role.clone(),
                    department: principal.department.clone(),
                    actions,
                    csrf: engine.csrf_token(&sv.id)?,
                    actor: principal.name.clone(),
                },
            )))
        })
        .await
        .map_err(PageError::Api)?;
    out.map_err(|()| PageError::SignIn { customer })
}

/// [`with_session`] for staff pages.
pub(crate) async fn staff<T, F>(
    st: &Arc<AppState>,
    cx: &Cx,
    action: Action,
    form: Option<&Fields>,
    f: F,
) -> Result<(T, Viewer), PageError>
where
    T: Send + 'static,
    F: FnOnce(&Engine, &AppState, &Access) -> Result<T, EngineError> + Send + 'static,
{
    with_session(st, cx, SessionKind::Staff, action, form, f).await
}

/// [`with_session`] for portal pages.
pub(crate) async fn customer<T, F>(
    st: &Arc<AppState>,
    cx: &Cx,
    action: Action,
    form: Option<&Fields>,
    f: F,
) -> Result<(T, Viewer), PageError>
where
    T: Send + 'static,
    F: FnOnce(&Engine, &AppState, &Access) -> Result<T, EngineError> + Send + 'static,
{
    with_session(st, cx, SessionKind::Customer, action, form, f).await
}

// ---------------------------------------------------------------------------
// Rendering

/// Which shell a page uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Signed out (sign-in, errors).
    Public,
    /// The staff dashboard.
    Dashboard,
    /// The customer portal.
    Portal,
}

/// A whole page: head, header with navigation and language switch, main.
pub fn shell(
    cx: &Cx,
    area: Area,
    viewer: Option<&Viewer>,
    current: &str,
    title: &str,
    body: Markup,
) -> Markup {
    let l = cx.lang;
    let nav: Vec<(&str, &str)> = match (area, viewer) {
        (Area::Dashboard, Some(v)) => dashboard::nav(l, &v.actions),
        (Area::Portal, Some(_)) => portal::nav(l),
        _ => vec![],
    };
    let other = l.other();
    html! {
        (DOCTYPE)
        html lang=(l.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · infogap" }
                link rel="stylesheet" href="/static/app.css";
                link rel="icon" href="/favicon.ico" type="image/svg+xml";
            }
            body {
                a class="skip" href="#main" { (l.t("Skip to content", "跳到正文")) }
                header class="top" {
                    span class="brand" { "infogap" span class="sub" { (match area {
                        Area::Dashboard => l.t("dashboard", "部门看板"),
                        Area::Portal => l.t("my data", "我的数据"),
                        Area::Public => l.t("information gap", "信息差"),
                    }) } }
                    @if !nav.is_empty() {
                        nav aria-label=(l.t("Main", "主导航")) {
                            ul {
                                @for (href, label) in &nav {
                                    li { a href=(href) aria-current=[(*href == current).then_some("page")] { (label) } }
                                }
                            }
                        }
                    }
                    div class="tools" {
                        a href=(format!("/lang/{}?next={}", other.code(), current)) lang=(other.code()) hreflang=(other.code()) { (other.name()) }
                        @if let Some(v) = viewer {
                            span class="who" {
                                @if let Some(u) = &v.user { (u) " · " (v.role) } @else { (l.t("Signed in", "已登录")) }
                                @if let Some(d) = &v.department { " · " (d) }
                            }
                            form method="post" action="/logout" class="inline" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { (l.t("Sign out", "退出")) }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                footer { (l.t("Every view of customer data is shaped by your role and recorded in the audit trail.", "所有客户数据的显示都按您的角色处理，并记入审计日志。")) }
            }
        }
    }
}

/// An HTML response with a status.
pub fn html_response(status: StatusCode, m: Markup, actor: Option<String>) -> Response {
    let mut res = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response();
    if let Some(a) = actor {
        res.extensions_mut().insert(Actor(a));
    }
    res
}

/// A page of the dashboard or portal.
pub fn page(cx: &Cx, area: Area, v: &Viewer, current: &str, title: &str, body: Markup) -> Response {
    html_response(
        StatusCode::OK,
        shell(cx, area, Some(v), current, title, body),
        Some(v.actor.clone()),
    )
}

/// The response for a failed page: sign in again, or an error page with
/// the status and message the API would give.
pub fn error_page(cx: &Cx, e: PageError) -> Response {
    let l = cx.lang;
    match e {
        PageError::SignIn { customer: false } => Redirect::to("/login").into_response(),
        PageError::SignIn { customer: true } => html_response(
            StatusCode::UNAUTHORIZED,
            shell(
                cx,
                Area::Public,
                None,
                "/portal",
                l.t("Signed out", "已退出"),
                html! {
                    p { (l.t("Your session has ended. Open the sign-in link you were sent again, or ask for a new one.", "您的会话已结束。请重新打开发给您的登录链接，或申请新的链接。")) }
                },
            ),
            None,
        ),
        PageError::Api(err) => {
            let title = match err.status {
                StatusCode::FORBIDDEN => l.t("Not allowed", "无权访问"),
                StatusCode::NOT_FOUND => l.t("Not found", "未找到"),
                StatusCode::TOO_MANY_REQUESTS => l.t("Too many attempts", "尝试次数过多"),
                StatusCode::UNAUTHORIZED => l.t("Not signed in", "未登录"),
                s if s.is_client_error() => l.t("Please check the input", "请检查输入"),
                _ => l.t("Something went wrong", "出错了"),
            };
            let mut res = html_response(
                err.status,
                shell(
                    cx,
                    Area::Public,
                    None,
                    "/",
                    title,
                    html! {
                        p class="error" role="alert" { (err.message) }
                        p { a href="/" { (l.t("Back to the start", "返回首页")) } }
                    },
                ),
                None,
            );
            if let Some(s) = err.retry_after
                && let Ok(v) = HeaderValue::from_str(&s.to_string())
            {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
    }
}

/// A CSV download: UTF-8 with a byte-order mark (spreadsheet programs then
/// read Chinese correctly), CRLF line ends, fields quoted as needed.
pub fn csv_response(
    filename: &str,
    header_row: &[&str],
    rows: &[Vec<String>],
    actor: &str,
) -> Response {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(vec![0xEF, 0xBB, 0xBF]);
    let mut ok = w.write_record(header_row).is_ok();
    for r in rows {
        ok &= w.write_record(r).is_ok();
    }
    let bytes = match (ok, w.into_inner()) {
        (true, Ok(b)) => b,
        _ => return ApiError::internal().into_response(),
    };
    let disp = format!("attachment; filename=\"{filename}\"");
    let mut res = Response::new(Body::from(bytes));
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&disp) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    res.extensions_mut().insert(Actor(actor.to_string()));
    res
}

// ---------------------------------------------------------------------------
// Public routes

async fn root(cx: Cx) -> Response {
    if cx.cookie(SESSION_COOKIE).is_some() {
        // the dashboard sends a customer's session on to the portal
        Redirect::to("/dashboard").into_response()
    } else {
        Redirect::to("/login").into_response()
    }
}

/// Only local paths are followed after a switch (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 512
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/".into(),
    }
}

async fn switch_lang(
    cx: Cx,
    axum::extract::Path(code): axum::extract::Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let next = q.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "next")
            .map(|(_, v)| v.into_owned())
    });
    let mut res = Redirect::to(&safe_next(next.as_deref())).into_response();
    res.headers_mut().insert(
        header::SET_COOKIE,
        cx.set_cookie(LANG_COOKIE, lang.code(), Some(365 * 86_400)),
    );
    res
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("app.css"),
    )
        .into_response()
}

async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1f5f8b"/><path d="M4 11h8M4 8h5M4 5h8" stroke="#fff" stroke-width="1.6"/></svg>"##,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_paths_stay_local() {
        assert_eq!(safe_next(Some("/dashboard?x=1")), "/dashboard?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn forms_parse_and_are_bounded() {
        let f = parse_form(b"a=1&b=%E4%B8%AD+x&csrf=t").expect("form");
        assert_eq!(field(&f, "b"), Some("中 x"));
        assert_eq!(field(&f, "c"), None);
        let many: String = (0..300).map(|i| format!("k{i}=v&")).collect();
        assert!(parse_form(many.as_bytes()).is_err());
    }

    #[test]
    fn csv_has_a_bom_and_crlf() {
        let r = csv_response(
            "x.csv",
            &["a", "名"],
            &[vec!["1".into(), "中,文".into()]],
            "t",
        );
        assert_eq!(
            r.headers().get(header::CONTENT_TYPE).map(|v| v.as_bytes()),
            Some(&b"text/csv; charset=utf-8"[..])
        );
    }
}
