//! The department dashboard: overview, customer search and profile, churn
//! watchlist, segments, lifetime value, forecasts and audit trail (the
//! feedback page is [`super::feedback`]).
//!
//! Why shaped like this: each page asks the engine for the use cases the
//! API offers (the same calls as `routes.rs`, so a page and the API cannot
//! disagree on what a role sees); a section whose action the role lacks is
//! left out of the page rather than shown empty, and a section that cannot
//! be computed (no model trained yet) says why.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use infogap_core::access::Action;
use infogap_engine::access::Access;
use infogap_engine::{Engine, EngineError};
use maud::{Markup, html};
use serde_json::Value;

use super::chart::{self, Bar, Point};
use super::i18n::Lang;
use super::view::{self, scalar};
use super::{
    Area, Cx, PageError, Viewer, csv_response, error_page, field, page, parse_form, staff,
};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/overview.csv", get(overview_csv))
        .route("/dashboard/customers", get(search_form).post(search))
        .route("/dashboard/customers/{id}", get(profile))
        .route("/dashboard/churn", get(churn))
        .route("/dashboard/churn.csv", get(churn_csv))
        .route("/dashboard/segments", get(segments))
        .route("/dashboard/segments/{name}/members.csv", get(members_csv))
        .route("/dashboard/clv", get(clv))
        .route("/dashboard/forecasts", get(forecasts))
        .route("/dashboard/forecasts.csv", get(forecasts_csv))
        .route("/dashboard/gap", get(gap).post(gap_start))
        .route("/dashboard/audit", get(audit))
        .route("/alerts", get(alerts))
}

/// The menu entries a role's actions open.
pub(super) fn nav(l: Lang, actions: &[Action]) -> Vec<(&'static str, &'static str)> {
    let entries = [
        (Action::StatsRead, "/dashboard", l.t("Overview", "概览")),
        (
            Action::CustomersLookup,
            "/dashboard/customers",
            l.t("Customers", "客户"),
        ),
        (
            Action::ChurnRead,
            "/dashboard/churn",
            l.t("Churn watchlist", "流失预警"),
        ),
        (Action::AlertsRead, "/alerts", l.t("Alerts", "告警")),
        (
            Action::SegmentsRead,
            "/dashboard/segments",
            l.t("Segments", "客户分群"),
        ),
        (
            Action::ClvRead,
            "/dashboard/clv",
            l.t("Lifetime value", "客户终身价值"),
        ),
        (
            Action::ForecastsRead,
            "/dashboard/forecasts",
            l.t("Forecasts", "需求预测"),
        ),
        (
            Action::ModelsTrain,
            "/dashboard/gap",
            l.t("Information gap", "信息差"),
        ),
        (
            Action::FeedbackRead,
            "/dashboard/feedback",
            l.t("Feedback", "反馈"),
        ),
        (
            Action::ModelsTrain,
            "/dashboard/system",
            l.t("Imports and models", "导入与模型"),
        ),
        (
            Action::AuditRead,
            "/dashboard/audit",
            l.t("Audit trail", "审计日志"),
        ),
        (
            Action::WebhooksManage,
            "/dashboard/webhooks",
            l.t("Webhooks", "Webhook 推送"),
        ),
    ];
    entries
        .into_iter()
        .filter(|(a, _, _)| actions.contains(a))
        .map(|(_, h, t)| (h, t))
        .collect()
}

/// A further action on the same request, if the role has it (checked
/// against the role first, so a missing right is not audited as a denial).
pub(super) fn also(
    e: &Engine,
    s: &AppState,
    a: &Access,
    action: Action,
) -> Result<Option<Access>, EngineError> {
    let policy = s.policy();
    let has = policy
        .role(&a.principal.role)
        .is_some_and(|r| r.actions.contains(&action));
    if !has {
        return Ok(None);
    }
    Ok(Some(
        e.authorize(&policy, &a.principal, action)?
            .with_records(s.insights().records.clone()),
    ))
}

/// A section: shown, or why not. Internal errors still fail the page.
#[derive(Debug)]
enum Section<T> {
    Shown(T),
    Unavailable(String),
    NotAllowed,
}

fn section<T>(r: Result<Option<T>, EngineError>) -> Result<Section<T>, EngineError> {
    match r {
        Ok(Some(v)) => Ok(Section::Shown(v)),
        Ok(None) => Ok(Section::NotAllowed),
        Err(e @ (EngineError::Store(_) | EngineError::Io { .. } | EngineError::Invariant(_))) => {
            Err(e)
        }
        Err(e) => Ok(Section::Unavailable(e.to_string())),
    }
}

fn unavailable(l: Lang, why: &str) -> Markup {
    html! { p class="muted" { (l.t("Not available: ", "暂不可用：")) (why) } }
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Invariant(format!("serializing a view: {e}")))
}

// ---------------------------------------------------------------------------
// Overview

struct Overview {
    stats: Value,
    active: usize,
    churn: Section<Value>,
    segments: Section<Value>,
    trend: Section<Value>,
}

fn overview_data(e: &Engine, s: &AppState, a: &Access) -> Result<Overview, EngineError> {
    let stats = crate::routes::stats_view(e, s, a)?;
    let ins = s.insights();
    // active: an order in the 90 days before the newest order
    let allowed = e.department_customers(a)?;
    let newest = ins
        .ds
        .orders
        .iter()
        .filter_map(|o| o.time)
        .max()
        .unwrap_or(0);
    let mut act = std::collections::HashSet::new();
    for o in &ins.ds.orders {
        if o.time.is_some_and(|t| t > newest - 90 * 86_400)
            && allowed.as_ref().is_none_or(|x| x.contains(&o.customer))
        {
            act.insert(o.customer);
        }
    }
    let churn = section(
        also(e, s, a, Action::ChurnRead)?
            .map(|c| {
                e.share_churn_distribution(&c, &ins)
                    .and_then(|d| to_value(&d))
            })
            .transpose(),
    )?;
    let segments = section(
        also(e, s, a, Action::SegmentsRead)?
            .map(|c| e.share_segments(&c, &ins).and_then(|d| to_value(&d)))
            .transpose(),
    )?;
    let trend = section(
        also(e, s, a, Action::ForecastsRead)?
            .map(|c| {
                use infogap_engine::forecast::{Period, Scope};
                e.record_access(&c, "forecasts.read", vec![], vec![])?;
                forecast_json(s, Scope::Total, Period::Month, 6)
            })
            .transpose(),
    )?;
    Ok(Overview {
        stats,
        active: act.len(),
        churn,
        segments,
        trend,
    })
}

fn band_name(l: Lang, b: &str) -> String {
    match b {
        "low" => l.t("low", "低").into(),
        "medium" => l.t("medium", "中").into(),
        "high" => l.t("high", "高").into(),
        other => other.into(),
    }
}

/// The overview's numbers as rows (section, label, value): the tables, the
/// CSV and the charts all come from these.
fn overview_rows(l: Lang, d: &Overview) -> Vec<(String, String, f64)> {
    let mut rows = Vec::new();
    let st = &d.stats["stats"];
    for (k, en, zh) in [
        ("customers", "Customers", "客户"),
        ("orders", "Orders", "订单"),
        ("revenue", "Revenue", "收入"),
        ("products", "Products", "商品"),
        ("events", "Events", "事件"),
        ("feedback", "Feedback", "反馈"),
    ] {
        if let Some(v) = st[k].as_f64() {
            rows.push((l.t("Totals", "总计").into(), l.t(en, zh).into(), v));
        }
    }
    rows.push((
        l.t("Totals", "总计").into(),
        l.t(
            "Active (ordered in the last 90 days)",
            "活跃（近 90 天有订单）",
        )
        .into(),
        d.active as f64,
    ));
    if let Section::Shown(c) = &d.churn {
        for b in c["bands"].as_array().into_iter().flatten() {
            rows.push((
                l.t("Churn risk", "流失风险").into(),
                band_name(l, b["band"].as_str().unwrap_or("")),
                b["customers"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    if let Section::Shown(sg) = &d.segments {
        for x in sg["segments"].as_array().into_iter().flatten() {
            rows.push((
                l.t("Segment size", "分群人数").into(),
                view::localized(l, x, "name")
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                x["size"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    if let Section::Shown(t) = &d.trend {
        for h in t["history"].as_array().into_iter().flatten() {
            rows.push((
                l.t("Revenue by month", "月度收入").into(),
                h["period"].as_str().unwrap_or("").to_string(),
                h["value"].as_f64().unwrap_or(0.0),
            ));
        }
    }
    rows
}

fn rows_table(l: Lang, caption: &str, rows: &[(String, f64, String)]) -> Markup {
    html! {
        table {
            caption { (caption) }
            thead { tr { th scope="col" { (l.t("Group", "分组")) } th scope="col" class="n" { (l.t("Value", "数值")) } } }
            tbody { @for (k, _, shown) in rows { tr { td { (k) } td class="n" { (shown) } } } }
        }
    }
}

fn bars_of(rows: &[(String, f64, String)]) -> Vec<Bar> {
    rows.iter()
        .map(|(k, v, s)| Bar {
            label: k.clone(),
            value: *v,
            shown: s.clone(),
        })
        .collect()
}

/// The trend's history and forecast as chart points (label: the month).
fn trend_points(t: &Value) -> Vec<Point> {
    let month = |v: &Value| v.as_str().unwrap_or("").get(..7).unwrap_or("").to_string();
    let mut pts: Vec<Point> = t["history"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| Point {
            label: month(&h["period"]),
            value: h["value"].as_f64(),
            band: None,
            forecast: false,
        })
        .collect();
    pts.extend(
        t["forecast"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| Point {
                label: month(&f["period"]),
                value: f["point"].as_f64(),
                band: f["lower"].as_f64().zip(f["upper"].as_f64()),
                forecast: true,
            }),
    );
    pts
}

fn render_overview(cx: &Cx, d: &Overview) -> Markup {
    let l = cx.lang;
    let st = &d.stats["stats"];
    let int = |k: &str| st[k].as_i64().map_or("–".into(), |v| l.int(v));
    html! {
        div class="cards" {
            div class="card" { div class="v" { (int("customers")) } div class="k" { (l.t("Customers", "客户")) } }
            div class="card" { div class="v" { (l.int(d.active as i64)) } div class="k" { (l.t("Active, last 90 days", "近 90 天活跃")) } }
            div class="card" { div class="v" { (int("orders")) } div class="k" { (l.t("Orders", "订单")) } }
            div class="card" { div class="v" { (st["revenue"].as_f64().map_or("–".into(), |v| l.money(v, "USD"))) } div class="k" { (l.t("Revenue", "收入")) } }
            div class="card" { div class="v" { (int("feedback")) } div class="k" { (l.t("Feedback", "反馈")) } }
        }
        p { a href="/dashboard/overview.csv" download { (l.t("Download these figures (CSV)", "下载这些数据（CSV）")) } }
        @match &d.churn {
            Section::Shown(c) => {
                @let rows: Vec<(String, f64, String)> = c["bands"].as_array().into_iter().flatten()
                    .map(|b| { let n = b["customers"].as_f64().unwrap_or(0.0); (band_name(l, b["band"].as_str().unwrap_or("")), n, l.int(n as i64)) }).collect();
                section class="panel" aria-labelledby="h-churn" {
                    h2 id="h-churn" { (l.t("Churn risk", "流失风险分布")) }
                    (chart::bars(l.t("Customers per churn-risk band", "各流失风险等级的客户数"), &bars_of(&rows)))
                    (rows_table(l, l.t("Customers per churn-risk band", "各流失风险等级的客户数"), &rows))
                }
            }
            Section::Unavailable(why) => { section class="panel" { h2 { (l.t("Churn risk", "流失风险分布")) } (unavailable(l, why)) } }
            Section::NotAllowed => {}
        }
        @match &d.segments {
            Section::Shown(sg) => {
                @let rows: Vec<(String, f64, String)> = sg["segments"].as_array().into_iter().flatten()
                    .map(|x| { let n = x["size"].as_f64().unwrap_or(0.0); (view::localized(l, x, "name").as_str().unwrap_or("").to_string(), n, l.int(n as i64)) }).collect();
                section class="panel" aria-labelledby="h-seg" {
                    h2 id="h-seg" { (l.t("Segment sizes", "分群规模")) }
                    (chart::bars(l.t("Customers per segment", "各分群客户数"), &bars_of(&rows)))
                    (rows_table(l, l.t("Customers per segment", "各分群客户数"), &rows))
                }
            }
            Section::Unavailable(why) => { section class="panel" { h2 { (l.t("Segment sizes", "分群规模")) } (unavailable(l, why)) } }
            Section::NotAllowed => {}
        }
        @match &d.trend {
            Section::Shown(t) => {
                @let pts = trend_points(t);
                section class="panel" aria-labelledby="h-trend" {
                    h2 id="h-trend" { (l.t("Revenue by month, with a 6-month forecast", "月度收入及未来 6 个月预测")) }
                    (chart::line(l.t("Revenue by month; dashed: forecast, band: 95% interval", "月度收入；虚线为预测，阴影为 95% 区间"), &pts))
                    table {
                        caption { (l.t("Revenue by month (forecast rows give the 95% interval)", "月度收入（预测行给出 95% 区间）")) }
                        thead { tr { th scope="col" { (l.t("Month", "月份")) } th scope="col" class="n" { (l.t("Revenue", "收入")) } th scope="col" class="n" { (l.t("Interval", "区间")) } } }
                        tbody {
                            @for p in &pts {
                                tr {
                                    td { (p.label) @if p.forecast { " " span class="tag" { (l.t("forecast", "预测")) } } }
                                    td class="n" { (p.value.map_or("–".into(), |v| l.money(v, "USD"))) }
                                    td class="n" { (p.band.map_or(String::new(), |(a, b)| format!("{} – {}", l.money(a, "USD"), l.money(b, "USD")))) }
                                }
                            }
                        }
                    }
                }
            }
            Section::Unavailable(why) => { section class="panel" { h2 { (l.t("Revenue by month", "月度收入")) } (unavailable(l, why)) } }
            Section::NotAllowed => {}
        }
        @if let Some(src) = st["sources"].as_array() {
            section class="panel" aria-labelledby="h-src" {
                h2 id="h-src" { (l.t("Sources", "数据来源")) }
                (view::table(l, &Value::Array(src.clone()), None))
            }
        }
    }
}

async fn overview(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    match staff(&st, &cx, Action::StatsRead, None, overview_data).await {
        // a role without the overview starts at customer search
        Err(PageError::Api(e)) if e.status == axum::http::StatusCode::FORBIDDEN => {
            Redirect::to("/dashboard/customers").into_response()
        }
        Ok((d, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard",
            cx.lang.t("Overview", "概览"),
            render_overview(&cx, &d),
        ),
        Err(e) => error_page(&cx, e),
    }
}

async fn overview_csv(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::StatsRead, None, overview_data).await {
        Ok((d, v)) => {
            let rows: Vec<Vec<String>> = overview_rows(l, &d)
                .into_iter()
                .map(|(a, b, c)| vec![a, b, format!("{c}")])
                .collect();
            csv_response(
                "overview.csv",
                &[
                    l.t("section", "部分"),
                    l.t("item", "项目"),
                    l.t("value", "数值"),
                ],
                &rows,
                &v.actor,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Customer search and profile

fn search_markup(cx: &Cx, csrf: &str, problem: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        @if let Some(p) = problem { p class="error" role="alert" { (p) } }
        form method="post" action="/dashboard/customers" class="panel" role="search" {
            input type="hidden" name="csrf" value=(csrf);
            label for="key" { (l.t("Email, phone, customer number (source:id) or #id", "邮箱、电话、客户编号（来源:编号）或 #编号")) }
            input type="search" id="key" name="key" required autofocus autocomplete="off";
            button type="submit" { (l.t("Find", "查找")) }
        }
        p class="muted" { (l.t("The key you type is sent in the form, never in the address bar.", "您输入的标识通过表单发送，不会出现在地址栏中。")) }
    }
}

async fn search_form(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    match staff(&st, &cx, Action::CustomersLookup, None, |_, _, _| Ok(())).await {
        Ok(((), v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard/customers",
            cx.lang.t("Find a customer", "查找客户"),
            search_markup(&cx, &v.csrf, None),
        ),
        Err(e) => error_page(&cx, e),
    }
}

async fn search(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let key = field(&f, "key").unwrap_or("").trim().to_string();
    let r = staff(
        &st,
        &cx,
        Action::CustomersLookup,
        Some(&f),
        move |e, _, a| match e.share_lookup(a, &key) {
            Ok(x) => Ok(Ok(x.id)),
            Err(EngineError::NotFound(_) | EngineError::Invalid(_)) => Ok(Err(())),
            Err(err) => Err(err),
        },
    )
    .await;
    match r {
        Ok((Ok(id), _)) => Redirect::to(&format!("/dashboard/customers/{id}")).into_response(),
        Ok((Err(()), v)) => {
            let l = cx.lang;
            let mut res = page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/customers",
                l.t("Find a customer", "查找客户"),
                search_markup(
                    &cx,
                    &v.csrf,
                    Some(l.t("No customer has that key.", "没有客户使用该标识。")),
                ),
            );
            *res.status_mut() = axum::http::StatusCode::NOT_FOUND;
            res
        }
        Err(e) => error_page(&cx, e),
    }
}

struct Profile {
    key: String,
    customer: Value,
    timeline: Value,
    churn: Section<Value>,
    recs: Section<Value>,
    gap: Section<Value>,
    ask: Section<infogap_engine::gap::ask::CustomerAsk>,
}

fn profile_data(e: &Engine, s: &AppState, a: &Access, id: i64) -> Result<Profile, EngineError> {
    let c = e.share_customer(a, id)?;
    let key = c.key.clone();
    let customer = to_value(&c)?;
    let timeline = to_value(&e.share_timeline(a, id, None, 50)?)?;
    let ins = s.insights();
    let churn = section(
        also(e, s, a, Action::ChurnRead)?
            .map(|x| e.share_churn(&x, &ins, id).and_then(|v| to_value(&v)))
            .transpose(),
    )?;
    let recs = section(
        also(e, s, a, Action::RecommendationsRead)?
            .map(|x| {
                let opts = infogap_engine::recs::RecommendOptions {
                    k: 10,
                    explain: true,
                    ..Default::default()
                };
                e.share_recommendations(&x, Some(&ins), &*ins.recs(e)?, id, &opts)
                    .and_then(|v| to_value(&v))
            })
            .transpose(),
    )?;
    let gap = section(
        e.gap_customer_at(a, &ins, id)
            .and_then(|v| to_value(&v))
            .map(Some),
    )?;
    let ask = section(e.ask_next_customer(a, &ins, id, 5).map(Some))?;
    Ok(Profile {
        key,
        customer,
        timeline,
        churn,
        recs,
        gap,
        ask,
    })
}

fn render_profile(cx: &Cx, p: &Profile) -> Markup {
    let l = cx.lang;
    let c = &p.customer;
    let part = |k: &str| c.get(k).cloned().unwrap_or(Value::Null);
    html! {
        p class="muted" { (l.t("Sources holding records: ", "持有记录的来源：")) (scalar(l, &part("sources")))
            " · " a href=(format!("/dashboard/customers/{}/merges", c["id"])) { (l.t("Why these records are one customer (merge evidence)", "为何这些记录属于同一客户（合并证据）")) } }
        div class="two" {
            section class="panel" aria-labelledby="h-id" {
                h2 id="h-id" { (l.t("Identities and where they came from", "身份及其来源")) }
                (view::table(l, &part("identities"), None))
            }
            section class="panel" aria-labelledby="h-attr" {
                h2 id="h-attr" { (l.t("Attributes", "属性")) }
                (view::table(l, &part("attributes"), None))
            }
        }
        @match &p.churn {
            Section::Shown(v) => section class="panel" aria-labelledby="h-churn" { h2 id="h-churn" { (l.t("Churn risk and why", "流失风险及原因")) } (view::record(l, v)) },
            Section::Unavailable(w) => section class="panel" { h2 { (l.t("Churn risk and why", "流失风险及原因")) } (unavailable(l, w)) },
            Section::NotAllowed => {}
        }
        @match &p.recs {
            Section::Shown(v) => section class="panel" aria-labelledby="h-recs" { h2 id="h-recs" { (l.t("Recommendations and why", "推荐及原因")) } (view::table(l, v.get("items").unwrap_or(&Value::Null), None)) },
            Section::Unavailable(w) => section class="panel" { h2 { (l.t("Recommendations and why", "推荐及原因")) } (unavailable(l, w)) },
            Section::NotAllowed => {}
        }
        @match &p.gap {
            Section::Shown(v) => section class="panel" aria-labelledby="h-gap" {
                h2 id="h-gap" { (l.t("How well we know this customer", "我们对该客户的了解程度")) }
                p { (l.t("Knowledge score: ", "了解程度得分：")) strong { (scalar(l, v.get("knowledge_score").unwrap_or(&Value::Null))) } }
                (view::table(l, v.get("dimensions").unwrap_or(&Value::Null), Some(l.t("Per dimension", "各维度"))))
                h3 { (l.t("Where departments disagree", "部门间的不一致")) }
                (view::table(l, v.get("conflicts").unwrap_or(&Value::Null), None))
            },
            Section::Unavailable(w) => section class="panel" { h2 { (l.t("How well we know this customer", "我们对该客户的了解程度")) } (unavailable(l, w)) },
            Section::NotAllowed => {}
        }
        @match &p.ask {
            Section::Shown(q) => section class="panel" aria-labelledby="h-ask" {
                h2 id="h-ask" { (l.t("What to ask next", "下一步该问什么")) }
                p class="muted" { (l.t("Unknown fields ranked by how much the answer is expected to sharpen the churn prediction (expected information, nats).", "按回答预计能让流失预测更准确的程度（期望信息量，nats）排列的未知字段。")) }
                @if let Some(w) = &q.withheld {
                    p { (l.t("Not asked: the customer does not allow ", "不提问：客户不允许")) (w) }
                } @else if q.questions.is_empty() {
                    p { (l.t("Nothing left to ask: every askable field is known.", "没有需要再问的：所有可询问的字段均已知。")) }
                } @else {
                    table {
                        thead { tr { th scope="col" { "#" } th scope="col" { (l.t("Field", "字段")) } th scope="col" { (l.t("Question", "问题")) } th scope="col" class="num" { (l.t("Expected gain", "期望增益")) } } }
                        tbody {
                            @for (k, x) in q.questions.iter().enumerate() {
                                tr { td { (k + 1) } td { (x.field) } td { (ask_question(l, &x.field, &x.question)) } td class="num" { (l.num(x.expected_gain, 4)) } }
                            }
                        }
                    }
                }
            },
            Section::Unavailable(w) => section class="panel" { h2 { (l.t("What to ask next", "下一步该问什么")) } (unavailable(l, w)) },
            Section::NotAllowed => {}
        }
        section class="panel" aria-labelledby="h-act" {
            h2 id="h-act" { (l.t("Orders, events, feedback, campaigns, consent", "订单、事件、反馈、营销、同意")) }
            @for (k, en, zh) in [("orders", "Orders", "订单"), ("events", "Events", "事件"), ("feedback", "Feedback", "反馈"), ("campaigns", "Campaigns", "营销活动"), ("consents", "Consent", "同意")] {
                @if !part(k).is_null() { h3 { (l.t(en, zh)) } (view::table(l, &part(k), None)) }
            }
        }
        section class="panel" aria-labelledby="h-tl" {
            h2 id="h-tl" { (l.t("Timeline (newest 50)", "时间线（最近 50 条）")) }
            (view::table(l, p.timeline.get("items").or_else(|| p.timeline.get("rows")).unwrap_or(&p.timeline), None))
        }
        p class="muted" { (l.t("Shown as your role allows: ", "按您的角色显示：")) (scalar(l, c.get("policy").unwrap_or(&Value::Null))) " · " (p.key) }
    }
}

/// An ask-next question in the page's language (the engine words it in
/// English; the field name says what it is about).
fn ask_question(l: Lang, field: &str, english: &str) -> String {
    if l == Lang::En {
        return english.to_string();
    }
    match field.strip_prefix("survey:") {
        Some("survey" | "nps") => "您向朋友推荐我们的可能性有多大（0–10）？".into(),
        Some("review" | "csat") => "您对我们的满意度如何（1–5）？".into(),
        Some(other) => format!("您会给我们打几分（{other}）？"),
        None => format!("可以请问您的{}吗？", field.replace('_', " ")),
    }
}

async fn profile(State(st): State<Arc<AppState>>, cx: Cx, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return error_page(
            &cx,
            PageError::Api(crate::ApiError::bad_request(
                "customer id: expected a whole number",
            )),
        );
    };
    match staff(&st, &cx, Action::CustomersRead, None, move |e, s, a| {
        profile_data(e, s, a, id)
    })
    .await
    {
        Ok((d, v)) => {
            let title = format!("{} {}", cx.lang.t("Customer", "客户"), d.key);
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/customers",
                &title,
                render_profile(&cx, &d),
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Alerts

/// An alert kind in the page's language.
fn alert_kind(l: Lang, kind: &str) -> &'static str {
    match kind {
        "churn_risk" => l.t("Churn risk crossed the threshold", "流失风险超过阈值"),
        "negative_feedback" => l.t(
            "Negative feedback from a valued customer",
            "高价值客户的负面反馈",
        ),
        "segment_change" => l.t("Changed segment", "分群变化"),
        "consent_withdrawn" => l.t("Consent withdrawn", "撤回同意"),
        "refund" => l.t("Refund", "退款"),
        "spend_spike" => l.t("Spending far above usual", "消费远高于平常"),
        _ => l.t("Other", "其他"),
    }
}

async fn alerts(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::AlertsRead, None, |e, s, a| {
        e.share_alerts(a, &s.insights(), None, 200)
    })
    .await
    {
        Ok((al, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/alerts",
            l.t("Alerts", "告警"),
            html! {
                p { (l.t("What the rules ([[rule]] in the config) saw change, newest first; the server evaluates them on every new snapshot.", "规则（配置中的 [[rule]]）发现的变化，最新的在前；服务器在每个新快照上评估规则。")) }
                @if al.alerts.is_empty() {
                    p class="muted" { (l.t("No alerts.", "暂无告警。")) }
                } @else {
                    section class="panel" {
                        table {
                            thead { tr {
                                th scope="col" { (l.t("When", "时间")) }
                                th scope="col" { (l.t("Rule", "规则")) }
                                th scope="col" { (l.t("What", "内容")) }
                                th scope="col" { (l.t("Customer", "客户")) }
                                th scope="col" { (l.t("Details", "详情")) }
                            } }
                            tbody { @for x in &al.alerts { tr {
                                td { (l.when(&x.created_at)) }
                                td { (x.rule) }
                                td { (alert_kind(l, &x.kind)) }
                                td { a href=(format!("/dashboard/customers/{}", x.customer_id)) { (x.key) } }
                                td { (scalar(l, &x.detail)) }
                            } } }
                        }
                    }
                }
                @if al.left_out > 0 {
                    p class="muted" { (l.t("Left out (outside your department, or no profiling consent): ", "未列出（不属于您的部门，或未同意画像分析）：")) (l.int(al.left_out as i64)) }
                }
            },
        ),
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Churn watchlist

async fn churn(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::ChurnRead, None, |e, s, a| {
        e.share_watchlist(a, &s.insights(), 100)
            .and_then(|w| to_value(&w))
    })
    .await
    {
        Ok((w, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard/churn",
            l.t("Churn watchlist", "流失预警名单"),
            html! {
                p { (l.t("The 100 customers at highest risk who allow profiling. ", "允许画像分析的客户中风险最高的 100 位。"))
                    a href="/dashboard/churn.csv" download { (l.t("Download 1,000 (CSV)", "下载前 1,000 位（CSV）")) } }
                section class="panel" { (view::table(l, w.get("customers").unwrap_or(&Value::Null), None)) }
                p class="muted" { (l.t("Left out: ", "未列入：")) (scalar(l, w.get("left_out").unwrap_or(&Value::Null))) }
            },
        ),
        Err(e) => error_page(&cx, e),
    }
}

fn value_rows(v: &Value, l: Lang) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = v.as_array().cloned().unwrap_or_default();
    let mut cols: Vec<String> = Vec::new();
    for r in &rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !cols.contains(k) {
                    cols.push(k.clone());
                }
            }
        }
    }
    let out = rows
        .iter()
        .map(|r| {
            cols.iter()
                .map(|c| match r.get(c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) => n.to_string(),
                    Some(x) => scalar(l, x),
                })
                .collect()
        })
        .collect();
    (cols, out)
}

async fn churn_csv(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    match staff(&st, &cx, Action::ChurnRead, None, |e, s, a| {
        e.share_watchlist(a, &s.insights(), 1000)
            .and_then(|w| to_value(&w))
    })
    .await
    {
        Ok((w, v)) => {
            let (cols, rows) = value_rows(w.get("customers").unwrap_or(&Value::Null), cx.lang);
            let head: Vec<&str> = cols.iter().map(String::as_str).collect();
            csv_response("churn-watchlist.csv", &head, &rows, &v.actor)
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Segments

async fn segments(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::SegmentsRead, None, |e, s, a| {
        let sg = to_value(&e.share_segments(a, &s.insights())?)?;
        let export = also(e, s, a, Action::SegmentsExport)?.is_some();
        Ok((sg, export))
    })
    .await
    {
        Ok(((sg, export), v)) => {
            let segs = sg["segments"].as_array().cloned().unwrap_or_default();
            let bars: Vec<Bar> = segs
                .iter()
                .map(|x| {
                    let n = x["size"].as_f64().unwrap_or(0.0);
                    Bar {
                        label: view::localized(l, x, "name").as_str().unwrap_or("").into(),
                        value: n,
                        shown: l.int(n as i64),
                    }
                })
                .collect();
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/segments",
                l.t("Segments", "客户分群"),
                html! {
                    section class="panel" {
                        (chart::bars(l.t("Customers per segment", "各分群客户数"), &bars))
                        table {
                            caption { (l.t("Segments", "分群")) " · " (scalar(l, &sg["method"])) " · " (scalar(l, &sg["as_of"])) }
                            thead { tr {
                                th scope="col" { (l.t("Segment", "分群")) }
                                th scope="col" { (l.t("What characterizes it", "特征")) }
                                th scope="col" class="n" { (l.t("Customers", "客户")) }
                                th scope="col" class="n" { (l.t("Share", "占比")) }
                                th scope="col" class="n" { (l.t("Revenue share", "收入占比")) }
                                @if export { th scope="col" { (l.t("Members", "成员")) } }
                            } }
                            tbody { @for x in &segs { tr {
                                td { (scalar(l, view::localized(l, x, "name"))) }
                                td { (scalar(l, view::localized(l, x, "description"))) }
                                td class="n" { (scalar(l, &x["size"])) }
                                td class="n" { (x["share"].as_f64().map_or("–".into(), |s| l.pct(s, 1))) }
                                td class="n" { (x["revenue_share"].as_f64().map_or("–".into(), |s| l.pct(s, 1))) }
                                @if export { td { a href=(format!("/dashboard/segments/{}/members.csv", utf8_path(x["name"].as_str().unwrap_or("")))) download { "CSV" } } }
                            } } }
                        }
                        h2 { (l.t("Rules", "规则")) }
                        ul { @for r in view::localized(l, &sg, "rules").as_array().into_iter().flatten() { li { (scalar(l, r)) } } }
                        p class="muted" { (scalar(l, &sg["privacy"])) }
                    }
                },
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

/// A path segment with everything but unreserved characters percent-encoded.
fn utf8_path(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn members_csv(
    State(st): State<Arc<AppState>>,
    cx: Cx,
    Path(name): Path<String>,
) -> Response {
    match staff(&st, &cx, Action::SegmentsExport, None, move |e, s, a| {
        let ins = s.insights();
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let pg = e.share_segment_members(a, &ins, &name, cursor.as_deref(), 1000)?;
            let next = pg.next_cursor.clone();
            all.extend(
                to_value(&pg.members)?
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match next {
                Some(c) if all.len() < 200_000 => cursor = Some(c),
                _ => break,
            }
        }
        Ok(Value::Array(all))
    })
    .await
    {
        Ok((m, v)) => {
            let (cols, rows) = value_rows(&m, cx.lang);
            let head: Vec<&str> = cols.iter().map(String::as_str).collect();
            csv_response("segment-members.csv", &head, &rows, &v.actor)
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Audit trail (the feedback page is `super::feedback`)

async fn audit(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::AuditRead, None, |e, _, a| {
        let f = infogap_store::audit::AuditFilter {
            limit: 100,
            ..Default::default()
        };
        e.audit_records(a, &f).and_then(|p| to_value(&p))
    })
    .await
    {
        Ok((pg, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard/audit",
            l.t("Audit trail", "审计日志"),
            html! {
                p { (l.t("The newest 100 records. Every read of customer data is here, this one included.", "最新 100 条记录。每一次客户数据的读取都记录在此，包括本次查看。")) }
                section class="panel" { (view::table(l, pg.get("records").unwrap_or(&Value::Null), None)) }
            },
        ),
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Lifetime value

async fn clv(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::ClvRead, None, |e, s, a| {
        e.share_clv_distribution(a, &s.insights())
            .and_then(|d| to_value(&d))
    })
    .await
    {
        Ok((d, v)) => {
            let band = |b: &Value| match (b["from"].as_f64(), b["to"].as_f64()) {
                (Some(lo), Some(hi)) => format!("{}–{}", l.num(lo, 0), l.num(hi, 0)),
                (Some(lo), None) => format!("≥ {}", l.num(lo, 0)),
                _ => "–".into(),
            };
            let rows: Vec<(String, f64, String)> = d["bands"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|b| {
                    let n = b["customers"].as_f64().unwrap_or(0.0);
                    (band(b), n, l.int(n as i64))
                })
                .collect();
            let title = l.t(
                "Customers per lifetime-value band",
                "各终身价值区间的客户数",
            );
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/clv",
                l.t("Customer lifetime value", "客户终身价值"),
                html! {
                    div class="cards" {
                        div class="card" { div class="v" { (scalar(l, &d["customers"])) } div class="k" { (l.t("Customers valued", "已估值客户")) } }
                        @if let Some(t) = d["total"].as_f64() { div class="card" { div class="v" { (l.money(t, "USD")) } div class="k" { (l.t("Expected value, all", "预期总价值")) } } }
                        @if let Some(m) = d["median"].as_f64() { div class="card" { div class="v" { (l.money(m, "USD")) } div class="k" { (l.t("Median", "中位数")) } } }
                        @if let Some(m) = d["p90"].as_f64() { div class="card" { div class="v" { (l.money(m, "USD")) } div class="k" { (l.t("90th percentile", "第 90 百分位")) } } }
                    }
                    section class="panel" {
                        p class="muted" { (l.t("Discounted value over the next ", "未来 ")) (scalar(l, &d["horizon_months"])) (l.t(" months (BG/NBD with Gamma-Gamma), customers who allow profiling.", " 个月的折现价值（BG/NBD 与 Gamma-Gamma 模型），仅含允许画像分析的客户。")) }
                        (chart::bars(title, &bars_of(&rows)))
                        (rows_table(l, title, &rows))
                    }
                },
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Demand forecasts

struct ForecastQuery {
    category: Option<String>,
    monthly: bool,
}

fn forecast_query(q: Option<&str>) -> ForecastQuery {
    let mut out = ForecastQuery {
        category: None,
        monthly: false,
    };
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "category" if !v.trim().is_empty() => {
                out.category = Some(v.trim().chars().take(100).collect());
            }
            "by" => out.monthly = v == "month",
            _ => {}
        }
    }
    out
}

fn forecast_data(
    e: &Engine,
    s: &AppState,
    a: &Access,
    q: &ForecastQuery,
) -> Result<(Value, Vec<String>), EngineError> {
    use infogap_engine::forecast::{Period, Scope};
    let ins = s.insights();
    let mut cats: Vec<String> = ins
        .ds
        .products
        .iter()
        .filter_map(|p| p.category.clone())
        .collect();
    cats.sort();
    cats.dedup();
    let scope = match &q.category {
        Some(c) => Scope::Category(c.clone()),
        None => Scope::Total,
    };
    let (period, horizon) = if q.monthly {
        (Period::Month, 6)
    } else {
        (Period::Week, 12)
    };
    e.record_access(a, "forecasts.read", vec![], vec![])?;
    let v = forecast_json(s, scope, period, horizon)?;
    Ok((v, cats))
}

/// A revenue forecast with its 95 % interval as JSON (`scope`, `model`,
/// `history`, `forecast`), computed once per snapshot generation: it
/// depends on the snapshot alone, not on who asks.
fn forecast_json(
    s: &AppState,
    scope: infogap_engine::forecast::Scope,
    period: infogap_engine::forecast::Period,
    horizon: usize,
) -> Result<Value, EngineError> {
    use infogap_engine::forecast::{Measure, forecast_demand};
    let key = format!("forecast:{scope:?}:{}:{horizon}", period.name());
    s.memo(&key, || {
        let ins = s.insights();
        let f = forecast_demand(&ins.ds, &scope, period, Measure::Revenue, horizon, 0.95)?;
        Ok(serde_json::json!({
            "scope": f.series.label,
            "model": f.fit.spec.name(),
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
}

async fn forecasts(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    let fq = forecast_query(q.as_deref());
    let chosen = fq.category.clone();
    let monthly = fq.monthly;
    match staff(&st, &cx, Action::ForecastsRead, None, move |e, s, a| {
        forecast_data(e, s, a, &fq)
    })
    .await
    {
        Ok(((f, cats), v)) => {
            let mut pts = trend_points(&f);
            if !monthly {
                // weekly labels: the whole date
                for (p, h) in pts.iter_mut().zip(
                    f["history"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(f["forecast"].as_array().into_iter().flatten()),
                ) {
                    p.label = h["period"].as_str().unwrap_or("").to_string();
                }
            }
            let csv_href = format!(
                "/dashboard/forecasts.csv?by={}{}",
                if monthly { "month" } else { "week" },
                chosen
                    .as_deref()
                    .map(|c| format!("&category={}", utf8_path(c)))
                    .unwrap_or_default()
            );
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/forecasts",
                l.t("Demand forecasts", "需求预测"),
                html! {
                    form method="get" action="/dashboard/forecasts" class="panel" {
                        label for="category" { (l.t("Product category", "商品品类")) }
                        select id="category" name="category" {
                            option value="" selected[chosen.is_none()] { (l.t("All sales", "全部销售")) }
                            @for c in &cats { option value=(c) selected[chosen.as_deref() == Some(c.as_str())] { (c) } }
                        }
                        label for="by" { (l.t("Period", "周期")) }
                        select id="by" name="by" {
                            option value="week" selected[!monthly] { (l.t("Week (12 ahead)", "周（预测 12 周）")) }
                            option value="month" selected[monthly] { (l.t("Month (6 ahead)", "月（预测 6 个月）")) }
                        }
                        button type="submit" { (l.t("Show", "显示")) }
                    }
                    section class="panel" {
                        h2 { (scalar(l, &f["scope"])) " · " (scalar(l, &f["model"])) }
                        (chart::line(l.t("Revenue; dashed: forecast, band: 95% interval", "收入；虚线为预测，阴影为 95% 区间"), &pts))
                        p { a href=(csv_href) download { (l.t("Download (CSV)", "下载（CSV）")) } }
                        table {
                            caption { (l.t("Revenue per period (forecast rows give the 95% interval)", "各周期收入（预测行给出 95% 区间）")) }
                            thead { tr { th scope="col" { (l.t("Period", "周期")) } th scope="col" class="n" { (l.t("Revenue", "收入")) } th scope="col" class="n" { (l.t("Interval", "区间")) } } }
                            tbody { @for p in &pts { tr {
                                td { (p.label) @if p.forecast { " " span class="tag" { (l.t("forecast", "预测")) } } }
                                td class="n" { (p.value.map_or("–".into(), |x| l.money(x, "USD"))) }
                                td class="n" { (p.band.map_or(String::new(), |(a, b)| format!("{} – {}", l.money(a, "USD"), l.money(b, "USD")))) }
                            } } }
                        }
                    }
                },
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

async fn forecasts_csv(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    let fq = forecast_query(q.as_deref());
    match staff(&st, &cx, Action::ForecastsRead, None, move |e, s, a| {
        forecast_data(e, s, a, &fq)
    })
    .await
    {
        Ok(((f, _), v)) => {
            let mut rows = Vec::new();
            for h in f["history"].as_array().into_iter().flatten() {
                rows.push(vec![
                    h["period"].as_str().unwrap_or("").to_string(),
                    "history".into(),
                    h["value"].to_string(),
                    String::new(),
                    String::new(),
                ]);
            }
            for x in f["forecast"].as_array().into_iter().flatten() {
                rows.push(vec![
                    x["period"].as_str().unwrap_or("").to_string(),
                    "forecast".into(),
                    x["point"].to_string(),
                    x["lower"].to_string(),
                    x["upper"].to_string(),
                ]);
            }
            csv_response(
                "forecast.csv",
                &[
                    l.t("period", "周期"),
                    l.t("kind", "类型"),
                    l.t("revenue", "收入"),
                    l.t("lower_95", "下限_95"),
                    l.t("upper_95", "上限_95"),
                ],
                &rows,
                &v.actor,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// The information gap (computed in the background: it fits models)

fn scope_of(v: &Viewer) -> (String, Option<String>) {
    (v.role.clone(), v.department.clone())
}

async fn gap(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::ModelsTrain, None, |_, _, _| Ok(())).await {
        Ok(((), v)) => {
            let job = st.latest_job("gap", &scope_of(&v));
            let running = job.as_ref().is_some_and(|j| j.status == "running");
            let body = html! {
                @if running {
                    p class="notice" role="status" { (l.t("Computing: the departments' models are being fitted. This page refreshes itself; it takes a few seconds to minutes.", "正在计算各部门的模型。本页会自动刷新，需要几秒到几分钟。")) }
                    meta http-equiv="refresh" content="5";
                }
                form method="post" action="/dashboard/gap" class="panel" {
                    input type="hidden" name="csrf" value=(v.csrf);
                    p { (l.t("What each department knows, what it could decide alone, and what sharing is worth: churn AUC, top-10 recommendation nDCG and next-period spend error with one department's facts versus all of them.", "各部门掌握什么、单独能做出怎样的判断、共享的价值：仅用一个部门的数据与使用全部数据时的流失 AUC、前 10 推荐 nDCG 和下期消费误差。")) }
                    button type="submit" disabled[running] { (l.t("Compute now", "立即计算")) }
                }
                @if let Some(j) = &job {
                    @if let Some(err) = &j.error { p class="error" role="alert" { (err) } }
                    @if let Some(r) = &j.result { (render_gap(l, r)) p class="muted" { (l.t("Computed ", "计算于 ")) (l.when(j.finished_at.as_deref().unwrap_or(""))) } }
                }
            };
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/gap",
                l.t("The information gap", "信息差"),
                body,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

fn render_gap(l: Lang, r: &Value) -> Markup {
    let d = &r["departments"];
    let kinds: Vec<String> = d["kinds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_string))
        .collect();
    let mut all: Vec<Value> = d["departments"].as_array().cloned().unwrap_or_default();
    all.push(d["unified"].clone());
    let auc_rows: Vec<(String, f64, String)> = all
        .iter()
        .map(|x| {
            let a = x["churn_auc"].as_f64().unwrap_or(0.0);
            (x["name"].as_str().unwrap_or("").to_string(), a, l.num(a, 3))
        })
        .collect();
    html! {
        section class="panel" aria-labelledby="h-vis" {
            h2 id="h-vis" { (l.t("Who knows what: share of all customers each department knows, per kind of information", "谁知道什么：各部门对每类信息所了解的客户占比")) }
            table {
                thead { tr { th scope="col" { (l.t("Department", "部门")) } th scope="col" class="n" { (l.t("Customers", "客户")) }
                    @for k in &kinds { th scope="col" class="n" { (view::label(l, k)) } } } }
                tbody { @for x in &all { tr {
                    th scope="row" { (scalar(l, &x["name"])) }
                    td class="n" { (scalar(l, &x["customers"])) }
                    @for k in &kinds { td class="n" { (x["visibility"][k.as_str()].as_f64().map_or("–".into(), |v| l.pct(v, 0))) } }
                } } }
            }
        }
        section class="panel" aria-labelledby="h-val" {
            h2 id="h-val" { (l.t("What sharing is worth", "共享的价值")) }
            (chart::bars(l.t("Churn ROC AUC with each department's facts and with all of them (unified)", "仅用各部门数据与使用全部数据（统一视图）时的流失 ROC AUC"), &bars_of(&auc_rows)))
            table {
                thead { tr { th scope="col" { (l.t("Department", "部门")) } th scope="col" class="n" { (l.t("Churn AUC", "流失 AUC")) } th scope="col" class="n" { "nDCG@10" } th scope="col" class="n" { (l.t("Spend error (MAE)", "消费误差（MAE）")) } } }
                tbody { @for x in &all { tr {
                    th scope="row" { (scalar(l, &x["name"])) }
                    td class="n" { (x["churn_auc"].as_f64().map_or("–".into(), |v| l.num(v, 3))) }
                    td class="n" { (x["ndcg10"].as_f64().map_or("–".into(), |v| l.num(v, 3))) }
                    td class="n" { (x["spend_mae"].as_f64().map_or("–".into(), |v| l.num(v, 2))) }
                } } }
            }
        }
        @if let Some(o) = r.get("overview").filter(|o| !o.is_null()) {
            section class="panel" aria-labelledby="h-know" {
                h2 id="h-know" { (l.t("How well we know our customers", "我们对客户的了解程度")) }
                (view::table(l, o.get("dimensions").unwrap_or(&Value::Null), Some(l.t("Per dimension", "各维度"))))
                (view::table(l, o.get("by_department").unwrap_or(&Value::Null), Some(l.t("Per department", "各部门"))))
                (view::table(l, o.get("by_segment").unwrap_or(&Value::Null), Some(l.t("Per segment", "各分群"))))
            }
        }
    }
}

async fn gap_start(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let r = staff(&st, &cx, Action::ModelsTrain, Some(&f), |_, _, a| {
        Ok(a.principal.clone())
    })
    .await;
    match r {
        Ok((principal, v)) => {
            let scope = scope_of(&v);
            if st
                .latest_job("gap", &scope)
                .is_some_and(|j| j.status == "running")
            {
                return Redirect::to("/dashboard/gap").into_response();
            }
            let st2 = st.clone();
            let started = st.start_job("gap", "departments", &v.actor, Some(scope), move |e| {
                let a = e.authorize(&st2.policy(), &principal, Action::ModelsTrain)?;
                let d = e.gap_departments(
                    &a,
                    &infogap_engine::gap::departments::DepartmentOptions::default(),
                )?;
                let o = e.gap_overview(&a)?;
                Ok(serde_json::json!({"departments": to_value(&d)?, "overview": to_value(&o)?}))
            });
            match started {
                Ok(_) => Redirect::to("/dashboard/gap").into_response(),
                Err(e) => error_page(&cx, PageError::Api(e.into())),
            }
        }
        Err(e) => error_page(&cx, e),
    }
}
