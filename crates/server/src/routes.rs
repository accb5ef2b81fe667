//! The routes of the API: each parses its request, authenticates the caller,
//! asks the engine (which authorizes, shapes by policy and audits) on the
//! blocking pool, and renders JSON (or CSV).
//!
//! [`ROUTES`] is the one list of routes: the router is built from it, the
//! OpenAPI document must name every entry, and the security tests walk it,
//! so a route cannot be added without being tested.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use infogap_core::access::Action;
use infogap_engine::access::{Access, Principal};
use infogap_engine::{Engine, EngineError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::error::ApiError;
use crate::extract::{Json, Path, Query};
use crate::middleware::{Actor, ClientIp, RequestId};
use crate::state::AppState;

/// One route: method, path template, and the action it needs (`None`:
/// public, no customer data).
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Action required.
    pub action: Option<Action>,
}

const fn r(method: &'static str, path: &'static str, action: Option<Action>) -> RouteDef {
    RouteDef {
        method,
        path,
        action,
    }
}

/// Every route of the API.
pub const ROUTES: &[RouteDef] = &[
    r("GET", "/healthz", None),
    r("GET", "/metrics", None),
    r("GET", "/v1/openapi.json", None),
    r(
        "POST",
        "/v1/customers/lookup",
        Some(Action::CustomersLookup),
    ),
    r("GET", "/v1/customers/{id}", Some(Action::CustomersRead)),
    r(
        "GET",
        "/v1/customers/{id}/timeline",
        Some(Action::CustomersRead),
    ),
    r(
        "GET",
        "/v1/customers/{id}/recommendations",
        Some(Action::RecommendationsRead),
    ),
    r("GET", "/v1/customers/{id}/churn", Some(Action::ChurnRead)),
    r("GET", "/v1/customers/{id}/clv", Some(Action::ClvRead)),
    r(
        "GET",
        "/v1/customers/{id}/consents",
        Some(Action::ConsentsRead),
    ),
    r(
        "PUT",
        "/v1/customers/{id}/consents",
        Some(Action::ConsentsWrite),
    ),
    r("GET", "/v1/segments", Some(Action::SegmentsRead)),
    r(
        "GET",
        "/v1/segments/{name}/members",
        Some(Action::SegmentsExport),
    ),
    r("GET", "/v1/churn/watchlist", Some(Action::ChurnRead)),
    r("GET", "/v1/customers/{id}/gap", Some(Action::CustomersRead)),
    r(
        "GET",
        "/v1/customers/{id}/ask-next",
        Some(Action::CustomersRead),
    ),
    r("GET", "/v1/gap", Some(Action::ModelsTrain)),
    r("GET", "/v1/gap/departments", Some(Action::ModelsTrain)),
    r("GET", "/v1/stats", Some(Action::StatsRead)),
    r("GET", "/v1/forecasts", Some(Action::ForecastsRead)),
    r("GET", "/v1/me", Some(Action::SelfRead)),
    r("GET", "/v1/me/recommendations", Some(Action::SelfRead)),
    r("GET", "/v1/me/consents", Some(Action::SelfRead)),
    r("PUT", "/v1/me/consents", Some(Action::SelfWrite)),
    r(
        "GET",
        "/v1/customers/{id}/export",
        Some(Action::PrivacyExport),
    ),
    r("GET", "/v1/me/export", Some(Action::SelfRead)),
    r("POST", "/v1/models/{kind}/train", Some(Action::ModelsTrain)),
    r("GET", "/v1/jobs/{id}", Some(Action::ModelsTrain)),
    r("GET", "/v1/audit", Some(Action::AuditRead)),
    r(
        "POST",
        "/v1/customers/{id}/erase",
        Some(Action::PrivacyErase),
    ),
    r("POST", "/v1/me/erase", Some(Action::SelfWrite)),
    r("GET", "/v1/erasures", Some(Action::PrivacyErase)),
    r(
        "POST",
        "/v1/erasures/{id}/approve",
        Some(Action::PrivacyErase),
    ),
    r("GET", "/v1/alerts", Some(Action::AlertsRead)),
    r("GET", "/v1/feedback/summary", Some(Action::FeedbackRead)),
    r("POST", "/v1/identify", Some(Action::EventsWrite)),
    r("POST", "/v1/track", Some(Action::EventsWrite)),
    r("POST", "/v1/page", Some(Action::EventsWrite)),
    r("POST", "/v1/screen", Some(Action::EventsWrite)),
    r("POST", "/v1/alias", Some(Action::EventsWrite)),
    r("POST", "/v1/batch", Some(Action::EventsWrite)),
    r("GET", "/v1/webhooks", Some(Action::WebhooksManage)),
    r("POST", "/v1/webhooks", Some(Action::WebhooksManage)),
    r("DELETE", "/v1/webhooks/{id}", Some(Action::WebhooksManage)),
    r("GET", "/v1/webhooks/messages", Some(Action::WebhooksManage)),
    r("GET", "/v1/webhooks/dead", Some(Action::WebhooksManage)),
    r(
        "POST",
        "/v1/webhooks/dead/{id}/replay",
        Some(Action::WebhooksManage),
    ),
];

fn handler(def: &RouteDef) -> MethodRouter<Arc<AppState>> {
    match (def.method, def.path) {
        ("GET", "/healthz") => get(healthz),
        ("GET", "/metrics") => get(metrics),
        ("GET", "/v1/openapi.json") => get(openapi),
        ("POST", "/v1/customers/lookup") => post(lookup),
        ("GET", "/v1/customers/{id}") => get(customer),
        ("GET", "/v1/customers/{id}/timeline") => get(timeline),
        ("GET", "/v1/customers/{id}/recommendations") => get(recommendations),
        ("GET", "/v1/customers/{id}/churn") => get(churn),
        ("GET", "/v1/customers/{id}/clv") => get(clv),
        ("GET", "/v1/customers/{id}/consents") => get(consents),
        ("PUT", "/v1/customers/{id}/consents") => put(consents_change),
        ("GET", "/v1/segments") => get(segments),
        ("GET", "/v1/segments/{name}/members") => get(members),
        ("GET", "/v1/churn/watchlist") => get(watchlist),
        ("GET", "/v1/customers/{id}/gap") => get(customer_gap),
        ("GET", "/v1/customers/{id}/ask-next") => get(customer_ask_next),
        ("GET", "/v1/gap") => get(gap_overview),
        ("GET", "/v1/gap/departments") => get(gap_departments),
        ("GET", "/v1/stats") => get(stats),
        ("GET", "/v1/forecasts") => get(forecasts),
        ("GET", "/v1/me") => get(me),
        ("GET", "/v1/me/recommendations") => get(me_recommendations),
        ("GET", "/v1/me/consents") => get(me_consents),
        ("PUT", "/v1/me/consents") => put(me_consents_change),
        ("GET", "/v1/customers/{id}/export") => get(export),
        ("GET", "/v1/me/export") => get(me_export),
        ("POST", "/v1/models/{kind}/train") => post(train),
        ("GET", "/v1/jobs/{id}") => get(job),
        ("GET", "/v1/audit") => get(audit),
        ("POST", "/v1/customers/{id}/erase") => post(erase),
        ("POST", "/v1/me/erase") => post(me_erase),
        ("GET", "/v1/erasures") => get(erasures),
        ("POST", "/v1/erasures/{id}/approve") => post(approve_erasure),
        ("GET", "/v1/alerts") => get(alerts),
        ("GET", "/v1/feedback/summary") => get(feedback_summary),
        ("GET", "/v1/webhooks") => get(webhooks_list),
        ("POST", "/v1/webhooks") => post(webhooks_add),
        ("DELETE", "/v1/webhooks/{id}") => delete(webhooks_remove),
        ("GET", "/v1/webhooks/messages") => get(webhooks_messages),
        ("GET", "/v1/webhooks/dead") => get(webhooks_dead),
        ("POST", "/v1/webhooks/dead/{id}/replay") => post(webhooks_replay),
        ("POST", "/v1/identify") => post(intake_identify),
        ("POST", "/v1/track") => post(intake_track),
        ("POST", "/v1/page") => post(intake_page),
        ("POST", "/v1/screen") => post(intake_screen),
        ("POST", "/v1/alias") => post(intake_alias),
        ("POST", "/v1/batch") => post(intake_batch),
        // the table and this match are kept together: a route in the table
        // without a handler stops the server from starting (and every test)
        (m, p) => panic!("route {m} {p} is in ROUTES but has no handler"),
    }
}

/// The API router with the pages (without the shared layers; see [`crate::layer`]).
pub fn router(state: Arc<AppState>) -> Router {
    let mut app: Router<Arc<AppState>> = Router::new();
    for def in ROUTES {
        app = app.route(def.path, handler(def));
    }
    app.with_state(state.clone())
        .merge(crate::pages::router(state))
}

/// Who is calling: bearer secret, address and request id.
#[derive(Debug, Clone)]
pub struct Caller {
    bearer: Option<String>,
    ip: Option<std::net::IpAddr>,
    request_id: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, rest) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| rest.trim().to_string())
            });
        Ok(Caller {
            bearer,
            ip: parts.extensions.get::<ClientIp>().map(|c| c.0),
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        })
    }
}

/// Authenticates, authorizes `action` and runs `f` on the blocking pool;
/// the response carries the actor for the access log.
async fn call<T, F>(
    st: &Arc<AppState>,
    c: Caller,
    action: Action,
    f: F,
) -> Result<(T, String), ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Engine, &AppState, &Access) -> Result<T, EngineError> + Send + 'static,
{
    if let Some(ip) = c.ip
        && let Err(secs) = st.limiter.check(ip)
    {
        return Err(ApiError::rate_limited(secs));
    }
    let origin =
        c.ip.map(|i| i.to_string())
            .unwrap_or_else(|| "unknown".into());
    let out = st
        .run(move |engine, state| {
            let p: Principal =
                state.authenticate(engine, c.bearer.as_deref(), &origin, c.request_id)?;
            let access = engine
                .authorize(&state.policy(), &p, action)?
                .with_records(state.insights().records.clone());
            let v = f(engine, state, &access)?;
            Ok((v, p.name))
        })
        .await;
    if let Some(ip) = c.ip {
        match &out {
            Err(e) if e.status == StatusCode::UNAUTHORIZED => st.limiter.record_failure(ip),
            Ok(_) => st.limiter.record_success(ip),
            Err(_) => {}
        }
    }
    out
}

fn json_with_actor<T: Serialize>(status: StatusCode, v: &T, actor: String) -> Response {
    let mut res = (status, Json(v)).into_response();
    res.extensions_mut().insert(Actor(actor));
    res
}

async fn ok_json<T, F>(
    st: Arc<AppState>,
    c: Caller,
    action: Action,
    f: F,
) -> Result<Response, ApiError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&Engine, &AppState, &Access) -> Result<T, EngineError> + Send + 'static,
{
    let (v, actor) = call(&st, c, action, f).await?;
    Ok(json_with_actor(StatusCode::OK, &v, actor))
}

// ---------------------------------------------------------------------------

/// Health.
#[utoipa::path(get, path = "/healthz", responses((status = 200, description = "The server is up; the generation of the snapshot it serves")))]
async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    let g = st.insights().generation;
    Json(serde_json::json!({"status": "ok", "generation": g})).into_response()
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format")))]
async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.metrics.render(),
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/v1/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document of this API")))]
async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// Body of a lookup: any email, phone, `ns:id` or `#ID`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LookupBody {
    /// The key.
    pub key: String,
}

/// Finds a customer by key (PII travels in the body, never the URL).
#[utoipa::path(post, path = "/v1/customers/lookup", request_body = LookupBody,
    responses((status = 200, description = "`{\"id\": …, \"key\": …}`"), (status = 404, description = "No customer with that key")),
    security(("bearer" = [])))]
async fn lookup(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Json(body): Json<LookupBody>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::CustomersLookup, move |e, _, a| {
        e.share_lookup(a, &body.key)
    })
    .await
}

/// The unified view of a customer, as the policy allows.
#[utoipa::path(get, path = "/v1/customers/{id}", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "Identities with provenance, attributes, orders, events, feedback, campaigns, consents")),
    security(("bearer" = [])))]
async fn customer(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::CustomersRead, move |e, _, a| {
        e.share_customer(a, id)
    })
    .await
}

/// Page parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
}

/// A customer's dated facts, newest first.
#[utoipa::path(get, path = "/v1/customers/{id}/timeline", params(("id" = i64, Path, description = "Customer id"), PageQuery),
    responses((status = 200, description = "`items` and `next_cursor`")), security(("bearer" = [])))]
async fn timeline(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::CustomersRead, move |e, _, a| {
        e.share_timeline(a, id, q.cursor.as_deref(), q.limit.unwrap_or(50))
    })
    .await
}

/// Number of recommendations.
#[derive(Debug, Deserialize, IntoParams)]
pub struct KQuery {
    /// How many (1-100, default 10).
    pub k: Option<usize>,
}

/// Recommendations with explanations.
#[utoipa::path(get, path = "/v1/customers/{id}/recommendations", params(("id" = i64, Path, description = "Customer id"), KQuery),
    responses((status = 200, description = "Items with scores and the purchases that explain them")), security(("bearer" = [])))]
async fn recommendations(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    Query(q): Query<KQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::RecommendationsRead, move |e, s, a| {
        recommend(e, s, a, id, q.k)
    })
    .await
}

/// Recommendations for one customer from the served snapshot and model.
pub(crate) fn recommend(
    e: &Engine,
    s: &AppState,
    a: &Access,
    id: i64,
    k: Option<usize>,
) -> Result<infogap_engine::share::SharedRecs, EngineError> {
    let k = k.unwrap_or(10);
    if !(1..=100).contains(&k) {
        return Err(EngineError::Invalid("k: expected 1 to 100".into()));
    }
    let opts = infogap_engine::recs::RecommendOptions {
        k,
        explain: true,
        ..Default::default()
    };
    let ins = s.insights();
    e.share_recommendations(a, Some(&ins), &*ins.recs(e)?, id, &opts)
}

/// Churn risk with reasons.
#[utoipa::path(get, path = "/v1/customers/{id}/churn", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "Probability, band and reasons")), security(("bearer" = [])))]
async fn churn(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ChurnRead, move |e, s, a| {
        e.share_churn(a, &s.insights(), id)
    })
    .await
}

/// Lifetime value.
#[utoipa::path(get, path = "/v1/customers/{id}/clv", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "CLV over 12 months, rank and band")), security(("bearer" = [])))]
async fn clv(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ClvRead, move |e, s, a| {
        e.share_clv(a, &s.insights(), id)
    })
    .await
}

/// Body of a consent change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// The purpose: `personalization`, `profiling`, `marketing`,
    /// `analytics`, or one the config adds.
    pub purpose: String,
    /// `true` grants it, `false` withdraws it.
    pub granted: bool,
}

/// A customer's consent by purpose (mode, allowed, reason, since, source)
/// and its full history.
#[utoipa::path(get, path = "/v1/customers/{id}/consents", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "`purposes` and `history`")), security(("bearer" = [])))]
async fn consents(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ConsentsRead, move |e, _, a| {
        e.share_consents(a, id)
    })
    .await
}

/// Records a consent change for a customer (appended to the history); it
/// applies from the next request on.
#[utoipa::path(put, path = "/v1/customers/{id}/consents", params(("id" = i64, Path, description = "Customer id")),
    request_body = ConsentBody,
    responses((status = 200, description = "The consent after the change"), (status = 400, description = "Unknown purpose (the known ones are named)")),
    security(("bearer" = [])))]
async fn consents_change(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    Json(body): Json<ConsentBody>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ConsentsWrite, move |e, _, a| {
        e.share_consent_change(a, id, &body.purpose, body.granted)
    })
    .await
}

/// RFM segments.
#[utoipa::path(get, path = "/v1/segments", responses((status = 200, description = "Segments with sizes")), security(("bearer" = [])))]
async fn segments(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::SegmentsRead, move |e, s, a| {
        e.share_segments(a, &s.insights())
    })
    .await
}

/// Members of a segment: JSON pages, or all as CSV with `Accept: text/csv`.
#[utoipa::path(get, path = "/v1/segments/{name}/members", params(("name" = String, Path, description = "Segment name"), PageQuery),
    responses((status = 200, description = "Members (JSON page or CSV)")), security(("bearer" = [])))]
async fn members(
    State(st): State<Arc<AppState>>,
    c: Caller,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if !csv {
        return ok_json(st, c, Action::SegmentsExport, move |e, s, a| {
            e.share_segment_members(
                a,
                &s.insights(),
                &name,
                q.cursor.as_deref(),
                q.limit.unwrap_or(100).max(1),
            )
        })
        .await;
    }
    let (page, actor) = call(&st, c, Action::SegmentsExport, move |e, s, a| {
        e.share_segment_members(a, &s.insights(), &name, None, 0)
    })
    .await?;
    let mut w = String::new();
    w.push_str("id,key,segment,recency_days,frequency,monetary\n");
    for m in &page.members {
        let opt = |v: Option<String>| v.unwrap_or_default();
        w.push_str(&format!(
            "{},{},{},{},{},{}\n",
            // pseudonymized rows have no id
            if page.pseudonymized {
                String::new()
            } else {
                m.id.to_string()
            },
            csv_field(&m.key),
            csv_field(&m.segment),
            opt(m.recency_days.map(|v| v.to_string())),
            opt(m.frequency.map(|v| v.to_string())),
            opt(m.monetary.map(|v| format!("{v:.2}"))),
        ));
    }
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], w).into_response();
    res.extensions_mut().insert(Actor(actor));
    Ok(res)
}

/// Quotes a CSV field, and defuses spreadsheet formulas (`=`, `+`, `-`, `@`).
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// Watchlist size.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TopQuery {
    /// How many (default 50, at most 1000).
    pub top: Option<usize>,
}

/// Customers at highest churn risk.
#[utoipa::path(get, path = "/v1/churn/watchlist", params(TopQuery), responses((status = 200, description = "Highest risk first")), security(("bearer" = [])))]
async fn watchlist(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<TopQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ChurnRead, move |e, s, a| {
        e.share_watchlist(a, &s.insights(), q.top.unwrap_or(50))
    })
    .await
}

/// How well the business knows a customer: knowledge profile, conflicts
/// between departments, what the customer was never shown.
#[utoipa::path(get, path = "/v1/customers/{id}/gap", params(("id" = i64, Path, description = "Customer id")),
    responses((status = 200, description = "`knowledge_score`, `dimensions`, `conflicts`, `departments`, `held_not_shown`, `unaware_of`")), security(("bearer" = [])))]
async fn customer_gap(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::CustomersRead, move |e, s, a| {
        e.gap_customer_at(a, &s.insights(), id)
    })
    .await
}

/// What to ask this customer next: unknown fields ranked by how much the
/// answer is expected to sharpen the churn prediction (`?top=`, default 5).
#[utoipa::path(get, path = "/v1/customers/{id}/ask-next", params(("id" = i64, Path, description = "Customer id"), ("top" = Option<usize>, Query, description = "Questions (default 5)")),
    responses((status = 200, description = "`decision`, `target`, `questions[]` (`field`, `question`, `expected_gain`), `withheld` when the customer does not allow profiling")), security(("bearer" = [])))]
async fn customer_ask_next(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    Query(q): Query<TopQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::CustomersRead, move |e, s, a| {
        e.ask_next_customer(a, &s.insights(), id, q.top.unwrap_or(5).clamp(1, 50))
    })
    .await
}

/// The knowledge score over all customers and its backtest.
#[utoipa::path(get, path = "/v1/gap", responses((status = 200, description = "Distribution, dimensions, segments, departments, conflicts, backtest")), security(("bearer" = [])))]
async fn gap_overview(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ModelsTrain, move |e, _, a| e.gap_overview(a)).await
}

/// What each department holds, sees and decides alone vs the unified view.
#[utoipa::path(get, path = "/v1/gap/departments", responses((status = 200, description = "`departments[]` and `unified` with `churn_auc`, `ndcg10`, `spend_mae`")), security(("bearer" = [])))]
async fn gap_departments(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ModelsTrain, move |e, _, a| {
        e.gap_departments(
            a,
            &infogap_engine::gap::departments::DepartmentOptions::default(),
        )
    })
    .await
}

/// Store-wide counts.
#[utoipa::path(get, path = "/v1/stats", responses((status = 200, description = "Counts and revenue")), security(("bearer" = [])))]
async fn stats(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::StatsRead, stats_view).await
}

/// Store-wide counts as `GET /v1/stats` and the dashboard show them:
/// `{"stats", "generation", "privacy"}`.
pub(crate) fn stats_view(
    e: &Engine,
    s: &AppState,
    a: &Access,
) -> Result<serde_json::Value, EngineError> {
    let mut out = e.store().stats(false)?;
    let ins = s.insights();
    let mut sum = infogap_store::snapshot::KbnSum::default();
    for o in &ins.ds.orders {
        sum.add(o.amount);
    }
    out.revenue = (sum.value().unwrap_or(0.0) * 100.0).round() / 100.0;
    // small sources merged, DP noise: outside admin and analyst
    let (out, privacy) = infogap_engine::privacy::aggregate::shared_stats(e, a, out, &ins.ds)?;
    e.record_access(a, "stats.read", vec![], vec![])?;
    Ok(serde_json::json!({"stats": out, "generation": ins.generation, "privacy": privacy}))
}

/// Forecast parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ForecastQuery {
    /// A product category (all sales when absent).
    pub category: Option<String>,
    /// `week` (default) or `month`.
    pub by: Option<String>,
    /// Periods ahead (1-104, default 12).
    pub horizon: Option<usize>,
}

/// Demand forecast with a 95 % interval.
#[utoipa::path(get, path = "/v1/forecasts", params(ForecastQuery), responses((status = 200, description = "History, forecast and interval")), security(("bearer" = [])))]
async fn forecasts(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<ForecastQuery>,
) -> Result<Response, ApiError> {
    use infogap_engine::forecast::{Measure, Period, Scope, forecast_demand};
    let period = match q.by.as_deref().unwrap_or("week") {
        "week" => Period::Week,
        "month" => Period::Month,
        other => {
            return Err(ApiError::bad_request(format!(
                "by: expected week or month, got {:?}",
                other.chars().take(20).collect::<String>()
            )));
        }
    };
    let horizon = q.horizon.unwrap_or(12);
    if !(1..=104).contains(&horizon) {
        return Err(ApiError::bad_request("horizon: expected 1 to 104"));
    }
    ok_json(st, c, Action::ForecastsRead, move |e, s, a| {
        let scope = match &q.category {
            Some(cat) if !cat.trim().is_empty() => Scope::Category(cat.trim().to_string()),
            _ => Scope::Total,
        };
        let ins = s.insights();
        let f = forecast_demand(&ins.ds, &scope, period, Measure::Revenue, horizon, 0.95)?;
        e.record_access(a, "forecasts.read", vec![], vec![])?;
        Ok(serde_json::json!({
            "scope": f.series.label,
            "by": period.name(),
            "measure": "revenue",
            "model": f.fit.spec.name(),
            "level": f.forecast.level,
            "history": f.series.starts.iter().zip(&f.series.values)
                .map(|(d, v)| serde_json::json!({"period": d.to_string(), "value": v}))
                .collect::<Vec<_>>(),
            "forecast": f.future.iter().enumerate()
                .map(|(i, d)| serde_json::json!({
                    "period": d.to_string(),
                    "point": f.forecast.point.get(i),
                    "lower": f.forecast.lower.get(i),
                    "upper": f.forecast.upper.get(i),
                }))
                .collect::<Vec<_>>(),
        }))
    })
    .await
}

/// The calling customer's own data (customer tokens), unmasked.
#[utoipa::path(get, path = "/v1/me", responses((status = 200, description = "The customer's unified view")), security(("bearer" = [])))]
async fn me(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::SelfRead, move |e, _, a| e.share_me(a)).await
}

/// The calling customer's recommendations, with explanations.
#[utoipa::path(get, path = "/v1/me/recommendations", params(KQuery), responses((status = 200, description = "Items with explanations")), security(("bearer" = [])))]
async fn me_recommendations(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<KQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::SelfRead, move |e, s, a| {
        let id = a
            .principal
            .customer
            .ok_or_else(|| EngineError::Forbidden("only a customer token has a `me`".into()))?;
        recommend(e, s, a, id, q.k)
    })
    .await
}

/// The calling customer's consent by purpose and its history.
#[utoipa::path(get, path = "/v1/me/consents", responses((status = 200, description = "`purposes` and `history`")), security(("bearer" = [])))]
async fn me_consents(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::SelfRead, move |e, _, a| {
        e.share_my_consents(a)
    })
    .await
}

/// The calling customer grants or withdraws a purpose.
#[utoipa::path(put, path = "/v1/me/consents", request_body = ConsentBody,
    responses((status = 200, description = "The consent after the change"), (status = 400, description = "Unknown purpose (the known ones are named)")),
    security(("bearer" = [])))]
async fn me_consents_change(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Json(body): Json<ConsentBody>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::SelfWrite, move |e, _, a| {
        e.share_my_consent_change(a, &body.purpose, body.granted)
    })
    .await
}

/// Format of an export.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ExportQuery {
    /// `zip` (default: `export.json`, one CSV per table, `README.txt`) or
    /// `json` (the JSON alone).
    pub format: Option<String>,
}

/// Everything held about a person (GDPR Art. 15/20), for the person: a zip
/// of JSON and CSV (admin only; refused to department keys and to roles
/// that do not see every field class).
#[utoipa::path(get, path = "/v1/customers/{id}/export", params(("id" = i64, Path, description = "Customer id"), ExportQuery),
    responses((status = 200, description = "`application/zip` (or JSON with `format=json`): identities and links, every department's facts with source and file or line, derived data, consent history, access log"),
        (status = 403, description = "Not a whole-person view (department key, masked role)")),
    security(("bearer" = [])))]
async fn export(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    export_response(st, c, Action::PrivacyExport, Some(id), q).await
}

/// Body of an erasure (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// Only say what would be erased.
    #[serde(default)]
    pub dry_run: bool,
}

/// Erases a customer (GDPR Art. 17): every row, field and file of theirs,
/// then a verification pass; the receipt ends with `residue` (admin).
#[utoipa::path(post, path = "/v1/customers/{id}/erase", params(("id" = i64, Path, description = "Customer id")),
    request_body(content = Option<EraseBody>, description = "`{\"dry_run\": true}` only counts"),
    responses((status = 200, description = "The receipt: tables, rows and fields touched, files cleaned, suppressed identities, `residue`"),
        (status = 404, description = "No such customer")),
    security(("bearer" = [])))]
async fn erase(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let b: EraseBody = if body.iter().all(u8::is_ascii_whitespace) {
        EraseBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?
    };
    erased_json(st, c, Action::PrivacyErase, move |e, a| {
        e.privacy_erase(a, id, b.dry_run)
    })
    .await
}

/// Runs an erasure and answers once the served snapshot no longer holds
/// the person: no request after the receipt sees them, not even from the
/// caches of the snapshot before (the refresher swaps it within 200 ms).
async fn erased_json<F>(
    st: Arc<AppState>,
    c: Caller,
    action: Action,
    f: F,
) -> Result<Response, ApiError>
where
    F: FnOnce(
            &Engine,
            &Access,
        ) -> Result<infogap_engine::privacy::erase::EraseReceipt, EngineError>
        + Send
        + 'static,
{
    let ((receipt, generation), actor) = call(&st, c, action, move |e, _, a| {
        let r = f(e, a)?;
        Ok((r, e.store().generation()?.generation))
    })
    .await?;
    if receipt.status == "done" {
        let t0 = std::time::Instant::now();
        while st.insights().generation < generation {
            if t0.elapsed() > std::time::Duration::from_secs(10) {
                tracing::warn!("erasure: the snapshot did not follow within 10 s");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    Ok(json_with_actor(StatusCode::OK, &receipt, actor))
}

/// The calling customer asks to be erased: queued for an admin, or
/// executed at once, as `[privacy] erasure_requests` says.
#[utoipa::path(post, path = "/v1/me/erase",
    responses((status = 200, description = "`status`: `requested` (queued) or `done` with the receipt")),
    security(("bearer" = [])))]
async fn me_erase(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    erased_json(st, c, Action::SelfWrite, move |e, a| e.request_erasure(a)).await
}

/// The erasure journal: requests waiting for approval and receipts (admin).
#[utoipa::path(get, path = "/v1/erasures",
    responses((status = 200, description = "Erasures, newest first (no personal value)")),
    security(("bearer" = [])))]
async fn erasures(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::PrivacyErase, move |e, _, _| e.erasures(None)).await
}

/// Approves a queued erasure request and runs it (admin).
#[utoipa::path(post, path = "/v1/erasures/{id}/approve", params(("id" = i64, Path, description = "Erasure id")),
    responses((status = 200, description = "The receipt"), (status = 404, description = "No such request waiting")),
    security(("bearer" = [])))]
async fn approve_erasure(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    erased_json(st, c, Action::PrivacyErase, move |e, a| {
        e.approve_erasure(a, id)
    })
    .await
}

/// The calling customer's own export (customer tokens).
#[utoipa::path(get, path = "/v1/me/export", params(ExportQuery),
    responses((status = 200, description = "`application/zip` (or JSON with `format=json`) of everything held about the caller")),
    security(("bearer" = [])))]
async fn me_export(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    export_response(st, c, Action::SelfRead, None, q).await
}

/// Makes an export (of `id`, or of the calling customer) and renders it
/// as a zip attachment named by the customer id only, or as JSON.
async fn export_response(
    st: Arc<AppState>,
    c: Caller,
    action: Action,
    id: Option<i64>,
    q: ExportQuery,
) -> Result<Response, ApiError> {
    let json = match q.format.as_deref() {
        None | Some("zip") => false,
        Some("json") => true,
        Some(_) => return Err(ApiError::bad_request("format: expected zip or json")),
    };
    let ((bytes, id), actor) = call(&st, c, action, move |e, s, a| {
        let id = match id {
            Some(id) => id,
            None => a
                .principal
                .customer
                .ok_or_else(|| EngineError::Forbidden("only a customer token has a `me`".into()))?,
        };
        let ins = s.insights();
        let ex = e.privacy_export(a, Some(&ins), id)?;
        let bytes = if json {
            serde_json::to_vec(&ex)
                .map_err(|e| EngineError::Invariant(format!("the export is not JSON: {e}")))?
        } else {
            ex.to_zip(std::io::Cursor::new(Vec::new()))?.into_inner()
        };
        Ok((bytes, id))
    })
    .await?;
    let mut res = if json {
        ([(header::CONTENT_TYPE, "application/json")], bytes).into_response()
    } else {
        let disposition = format!("attachment; filename=\"infogap-export-{id}.zip\"");
        (
            [
                (header::CONTENT_TYPE, "application/zip".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            bytes,
        )
            .into_response()
    };
    res.extensions_mut().insert(Actor(actor));
    Ok(res)
}

/// Starts training a model (`recs`, `churn`, `clv`, `amount`) in the background.
#[utoipa::path(post, path = "/v1/models/{kind}/train", params(("kind" = String, Path, description = "recs, churn, clv or amount")),
    responses((status = 202, description = "The job; poll /v1/jobs/{id}")), security(("bearer" = [])))]
async fn train(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(kind): Path<String>,
) -> Result<Response, ApiError> {
    let st2 = st.clone();
    let (job, actor) = call(&st, c, Action::ModelsTrain, move |e, _, a| {
        let job = st2.start_training(&kind, &a.principal.name)?;
        e.record_access(a, &format!("models.train.{kind}"), vec![], vec![])?;
        Ok(job)
    })
    .await?;
    Ok(json_with_actor(StatusCode::ACCEPTED, &job, actor))
}

/// A background job.
#[utoipa::path(get, path = "/v1/jobs/{id}", params(("id" = u64, Path, description = "Job id")),
    responses((status = 200, description = "Status and, when done, the report")), security(("bearer" = [])))]
async fn job(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<u64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::ModelsTrain, move |_, s, _| {
        s.job(id)
            .ok_or_else(|| EngineError::NotFound(format!("no job {id}")))
    })
    .await
}

/// Audit filters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    /// Only records about this customer id.
    pub customer: Option<i64>,
    /// Only records by this actor.
    pub actor: Option<String>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size (default 100).
    pub limit: Option<usize>,
}

/// The audit trail, newest first (admin).
#[utoipa::path(get, path = "/v1/audit", params(AuditQuery), responses((status = 200, description = "`records` and `next_cursor`")), security(("bearer" = [])))]
async fn audit(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<Response, ApiError> {
    let before = match q.cursor.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<i64>()
                .map_err(|_| ApiError::bad_request("cursor: not a cursor this API gave"))?,
        ),
    };
    ok_json(st, c, Action::AuditRead, move |e, _, a| {
        e.audit_records(
            a,
            &infogap_store::audit::AuditFilter {
                customer: q.customer,
                actor: q.actor.clone(),
                before,
                limit: q.limit.unwrap_or(100),
            },
        )
    })
    .await
}

/// What `GET /v1/feedback/summary` groups by.
#[derive(Debug, Deserialize, IntoParams)]
pub struct FeedbackSummaryQuery {
    /// `week` or `month` (default).
    pub period: Option<String>,
    /// `segment` or `department` (default: the source and kind of the feedback).
    pub by: Option<String>,
}

/// Feedback figures: NPS (0–10 answers) and CSAT (1–5 answers) kept apart,
/// sentiment and topics of the texts (English and Chinese), overall, per
/// segment or department and per period with the change between the last
/// two; aggregates only, protected for roles other than admin and analyst.
#[utoipa::path(get, path = "/v1/feedback/summary", params(FeedbackSummaryQuery),
    responses((status = 200, description = "`overall`, `groups[]`, `trend[]`, `change`, `keywords` (roles that see feedback text), `languages`, `scales`, `left_out`, `privacy`")),
    security(("bearer" = [])))]
async fn feedback_summary(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<FeedbackSummaryQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::FeedbackRead, move |e, s, a| {
        use infogap_engine::feedback::{FeedbackQuery, GroupBy, Period};
        let q = FeedbackQuery {
            period: q
                .period
                .as_deref()
                .map(Period::parse)
                .transpose()?
                .unwrap_or_default(),
            by: q
                .by
                .as_deref()
                .map(GroupBy::parse)
                .transpose()?
                .unwrap_or_default(),
        };
        e.share_feedback_summary(a, &s.insights(), &q)
    })
    .await
}

/// Paging of `GET /v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AlertsQuery {
    /// Only alerts with an id below this (the last id of the page before).
    pub before: Option<i64>,
    /// How many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// Alerts raised by the `[[rule]]`s, newest first, shaped by the policy.
#[utoipa::path(get, path = "/v1/alerts", params(AlertsQuery),
    responses((status = 200, description = "`alerts[]` (`id`, `rule`, `kind`, `customer_id`, `key`, `created_at`, `detail`), `left_out`")),
    security(("bearer" = [])))]
async fn alerts(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::AlertsRead, move |e, s, a| {
        e.share_alerts(a, &s.insights(), q.before, q.limit.unwrap_or(100))
    })
    .await
}

// ---------------------------------------------------------------------------
// Webhooks

/// A new webhook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// `https://…` (or `http://`) URL the messages are posted to.
    pub url: String,
    /// Event types: `churn.high`, `feedback.negative`, `segment.changed`,
    /// `consent.withdrawn`, `activity.unusual`, `portal.link`, or `*`.
    pub events: Vec<String>,
    /// The role whose field policy shapes the payloads.
    pub role: String,
    /// Only this department's customers.
    pub department: Option<String>,
}

/// Outbox messages: which state, and paging.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MessagesQuery {
    /// `pending`, `delivered`, `dead` or `dropped` (all when absent).
    pub state: Option<String>,
    /// Only messages with an id below this.
    pub before: Option<i64>,
    /// How many (default 100, at most 1000).
    pub limit: Option<usize>,
}

/// The webhooks in use.
#[utoipa::path(get, path = "/v1/webhooks",
    responses((status = 200, description = "`webhooks[]` (`id`, `url`, `events`, `role`, `department`, `created_at`, `created_by`)")),
    security(("bearer" = [])))]
async fn webhooks_list(State(st): State<Arc<AppState>>, c: Caller) -> Result<Response, ApiError> {
    ok_json(st, c, Action::WebhooksManage, move |e, _, a| {
        Ok(serde_json::json!({ "webhooks": e.list_webhooks(a)? }))
    })
    .await
}

/// Adds a webhook; the answer carries its signing secret (`whsec_…`) this once.
#[utoipa::path(post, path = "/v1/webhooks", request_body = WebhookBody,
    responses((status = 201, description = "The webhook and its `secret`"), (status = 400, description = "Bad URL, event type, role or department (named)")),
    security(("bearer" = [])))]
async fn webhooks_add(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Json(body): Json<WebhookBody>,
) -> Result<Response, ApiError> {
    let (v, actor) = call(&st, c, Action::WebhooksManage, move |e, s, a| {
        e.add_webhook(
            a,
            &s.policy(),
            &infogap_engine::webhooks::WebhookRequest {
                url: body.url,
                events: body.events,
                role: body.role,
                department: body.department,
            },
        )
    })
    .await?;
    Ok(json_with_actor(StatusCode::CREATED, &v, actor))
}

/// Removes a webhook; its undelivered messages are dropped.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", params(("id" = i64, Path, description = "Webhook id")),
    responses((status = 200, description = "`{\"removed\": id}`"), (status = 404, description = "No such webhook")),
    security(("bearer" = [])))]
async fn webhooks_remove(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::WebhooksManage, move |e, _, a| {
        e.remove_webhook(a, id)?;
        Ok(serde_json::json!({ "removed": id }))
    })
    .await
}

/// Outbox messages, newest first (`state=dead` for the dead letters).
#[utoipa::path(get, path = "/v1/webhooks/messages", params(MessagesQuery),
    responses((status = 200, description = "`messages[]` (`id`, `msg_id`, `webhook_id`, `event`, `state`, `attempts`, `last_status`, `last_error`, …) and `counts` per state")),
    security(("bearer" = [])))]
async fn webhooks_messages(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<MessagesQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::WebhooksManage, move |e, _, a| {
        e.webhook_messages(a, q.state.as_deref(), q.before, q.limit.unwrap_or(100))
    })
    .await
}

/// The dead letters: messages whose last try failed.
#[utoipa::path(get, path = "/v1/webhooks/dead", params(AlertsQuery),
    responses((status = 200, description = "`messages[]` in state `dead`, and `counts` per state")),
    security(("bearer" = [])))]
async fn webhooks_dead(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Query(q): Query<AlertsQuery>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::WebhooksManage, move |e, _, a| {
        e.webhook_messages(a, Some("dead"), q.before, q.limit.unwrap_or(100))
    })
    .await
}

/// Puts a dead message back in the queue (its tries start again).
#[utoipa::path(post, path = "/v1/webhooks/dead/{id}/replay", params(("id" = i64, Path, description = "Message id (`messages[].id`)")),
    responses((status = 200, description = "`{\"replayed\": id}`"), (status = 404, description = "No dead message with that id")),
    security(("bearer" = [])))]
async fn webhooks_replay(
    State(st): State<Arc<AppState>>,
    c: Caller,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    ok_json(st, c, Action::WebhooksManage, move |e, _, a| {
        e.replay_webhook_message(a, id)?;
        Ok(serde_json::json!({ "replayed": id }))
    })
    .await
}

// ---------------------------------------------------------------------------
// Event intake (Segment spec)

/// Journals the messages of one intake request (answered once they are
/// durable) and wakes the intake worker.
async fn intake(
    st: Arc<AppState>,
    c: Caller,
    kind: Option<&'static str>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let now = chrono::Utc::now().timestamp();
    let wake = st.clone();
    let (receipt, actor) = call(&st, c, Action::EventsWrite, move |e, _, a| {
        e.intake(a, kind, &body, now)
    })
    .await?;
    if receipt.accepted > 0 {
        wake.wake_intake();
    }
    wake.intake_stats
        .taken(receipt.accepted, receipt.duplicates, receipt.rejected.len());
    Ok(json_with_actor(StatusCode::OK, &receipt, actor))
}

/// `identify`: who the user is (`traits`: `email`, `phone`, attributes); a
/// message with `userId` and `anonymousId` links them.
#[utoipa::path(post, path = "/v1/identify", request_body(content = String, description = "A Segment-spec identify message", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]` (`index`, `reason`): answered once durable"), (status = 400, description = "No good message (each named with its reason)")),
    security(("bearer" = [])))]
async fn intake_identify(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, Some("identify"), body).await
}

/// `track`: an event (`event`, `properties`); `Order Completed` also
/// records its order lines.
#[utoipa::path(post, path = "/v1/track", request_body(content = String, description = "A Segment-spec track message", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]`"), (status = 400, description = "A bad message")),
    security(("bearer" = [])))]
async fn intake_track(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, Some("track"), body).await
}

/// `page`: a page view.
#[utoipa::path(post, path = "/v1/page", request_body(content = String, description = "A Segment-spec page message", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]`"), (status = 400, description = "A bad message")),
    security(("bearer" = [])))]
async fn intake_page(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, Some("page"), body).await
}

/// `screen`: a screen view of an app (a page view with channel `app`).
#[utoipa::path(post, path = "/v1/screen", request_body(content = String, description = "A Segment-spec screen message", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]`"), (status = 400, description = "A bad message")),
    security(("bearer" = [])))]
async fn intake_screen(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, Some("screen"), body).await
}

/// `alias`: `previousId` is the same person as `userId`.
#[utoipa::path(post, path = "/v1/alias", request_body(content = String, description = "A Segment-spec alias message", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]`"), (status = 400, description = "A bad message")),
    security(("bearer" = [])))]
async fn intake_alias(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, Some("alias"), body).await
}

/// `batch`: many messages of any type; bad ones are listed by index and
/// the rest kept (or the whole batch refused, `[intake] bad_events`).
#[utoipa::path(post, path = "/v1/batch", request_body(content = String, description = "`{\"batch\": [messages]}`", content_type = "application/json"),
    responses((status = 200, description = "`accepted`, `duplicates`, `rejected[]` (`index`, `reason`)"), (status = 400, description = "No good message, or a bad one under `refuse_batch`")),
    security(("bearer" = [])))]
async fn intake_batch(
    State(st): State<Arc<AppState>>,
    c: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    intake(st, c, None, body).await
}

/// The OpenAPI document, generated from the handlers above.
#[derive(OpenApi)]
#[openapi(
    info(title = "infogap", description = "Customer data shared by policy: every response shaped by the caller's role and recorded in the audit trail."),
    paths(healthz, metrics, openapi, lookup, customer, timeline, recommendations, churn, clv, segments, members,
          customer_gap, customer_ask_next, gap_overview, gap_departments,
          watchlist, stats, forecasts, me, me_recommendations, export, me_export, train, job, audit,
          consents, consents_change, me_consents, me_consents_change,
          erase, me_erase, erasures, approve_erasure,
          alerts, feedback_summary, intake_identify, intake_track, intake_page, intake_screen, intake_alias, intake_batch,
          webhooks_list, webhooks_add, webhooks_remove, webhooks_messages, webhooks_dead, webhooks_replay),
    components(schemas(LookupBody, ConsentBody, EraseBody, WebhookBody)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc = serde_json::to_value(ApiDoc::openapi()).expect("serializes");
        assert!(
            doc["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1")),
            "{}",
            doc["openapi"]
        );
        for def in ROUTES {
            let ops = &doc["paths"][def.path];
            assert!(
                ops.get(def.method.to_lowercase()).is_some(),
                "{} {} is not in /v1/openapi.json",
                def.method,
                def.path
            );
        }
        let n: usize = doc["paths"]
            .as_object()
            .map(|o| {
                o.values()
                    .map(|v| v.as_object().map_or(0, |m| m.len()))
                    .sum()
            })
            .unwrap_or(0);
        assert_eq!(
            n,
            ROUTES.len(),
            "the document has operations that are not routes"
        );
    }

    #[test]
    fn every_route_has_a_handler() {
        for def in ROUTES {
            let _ = handler(def);
        }
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("x"), "x");
    }
}
