//! The customer self-service portal: what each department holds about me
//! and why, what is predicted about me in plain words and why I see each
//! recommendation; correct an attribute, choose consent per purpose,
//! download everything, ask for erasure, answer surveys and write reviews
//! and forum posts.
//!
//! Why shaped like this: a customer session is a customer principal, so
//! every call is the engine's self-service use case (the same as `/v1/me…`),
//! and a customer can only ever reach their own data. Writes are forms with
//! the session's CSRF token; after a write the page redirects (303) to a
//! page that shows the result, so a reload never posts twice.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use infogap_core::access::Action;
use infogap_engine::access::Access;
use infogap_engine::{Engine, EngineError};
use maud::{Markup, html};
use serde_json::Value;

use super::i18n::Lang;
use super::view::{self, scalar};
use super::{Area, Cx, PageError, customer, error_page, field, page, parse_form};
use crate::middleware::Actor;
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/portal", get(home))
        .route("/portal/consent", axum::routing::post(consent))
        .route("/portal/correct", axum::routing::post(correct))
        .route("/portal/feedback", get(feedback_form).post(feedback))
        .route("/portal/export", get(export))
        .route("/portal/erase", get(erase_form).post(erase))
}

/// The portal's menu.
pub(super) fn nav(l: Lang) -> Vec<(&'static str, &'static str)> {
    vec![
        ("/portal", l.t("My data", "我的数据")),
        ("/portal/feedback", l.t("Tell us", "意见反馈")),
        ("/portal/erase", l.t("Erase my data", "删除我的数据")),
    ]
}

fn my_id(a: &Access) -> Result<i64, EngineError> {
    a.principal
        .customer
        .ok_or_else(|| EngineError::Forbidden("only a customer has a portal".into()))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, EngineError> {
    serde_json::to_value(v).map_err(|e| EngineError::Invariant(format!("serializing a view: {e}")))
}

/// A part that may be unavailable (no model yet, no consent): the reason
/// is shown instead; internal errors fail the page.
fn optional(r: Result<Value, EngineError>) -> Result<Result<Value, String>, EngineError> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(e @ (EngineError::Store(_) | EngineError::Io { .. } | EngineError::Invariant(_))) => {
            Err(e)
        }
        Err(e) => Ok(Err(e.to_string())),
    }
}

struct Home {
    data: Value,
    consents: Value,
    churn: Result<Value, String>,
    clv: Result<Value, String>,
    recs: Result<Value, String>,
}

fn home_data(e: &Engine, s: &AppState, a: &Access) -> Result<Home, EngineError> {
    let id = my_id(a)?;
    let ins = s.insights();
    Ok(Home {
        data: to_value(&e.share_my_data(a)?)?,
        consents: to_value(&e.share_my_consents(a)?)?,
        churn: optional(e.share_churn(a, &ins, id).and_then(|v| to_value(&v)))?,
        clv: optional(e.share_clv(a, &ins, id).and_then(|v| to_value(&v)))?,
        recs: optional(crate::routes::recommend(e, s, a, id, Some(5)).and_then(|v| to_value(&v)))?,
    })
}

fn notice(l: Lang, q: Option<&str>) -> Option<&'static str> {
    let done = q.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "done")
            .map(|(_, v)| v.into_owned())
    })?;
    Some(match done.as_str() {
        "consent" => l.t("Your consent choice is saved.", "您的同意选择已保存。"),
        "correct" => l.t(
            "Thank you: your correction is recorded. Staff will see it next to what the other department holds.",
            "谢谢：您的更正已记录。员工会看到它与其他部门所持数据并列显示。",
        ),
        "feedback" => l.t("Thank you: your answer is recorded.", "谢谢：您的回答已记录。"),
        "erase" => l.t("Your erasure request is recorded.", "您的删除请求已记录。"),
        _ => return None,
    })
}

/// Predictions said in words, in the page's language.
fn plain_words(l: Lang, h: &Home) -> Markup {
    html! {
        ul {
            @match &h.churn {
                Ok(c) => {
                    @match (c["band"].as_str(), c["probability"].as_f64()) {
                        (Some(b), Some(p)) => li {
                            (l.t("We estimate the chance that you stop buying from us soon at ", "我们估计您近期停止购买的可能性为 "))
                            strong { (l.pct(p, 0)) }
                            " (" (match b { "high" => l.t("high", "高"), "medium" => l.t("medium", "中"), _ => l.t("low", "低") }) ")"
                            @if let Some(rs) = c["reasons"].as_array().filter(|r| !r.is_empty()) {
                                (l.t(", mainly because of: ", "，主要原因："))
                                (rs.iter().filter_map(|r| if l == Lang::Zh { r["text_zh"].as_str().filter(|t| !t.is_empty()).or(r["text"].as_str()) } else { r["text"].as_str() }).map(plain_reason).collect::<Vec<_>>().join(l.t("; ", "；")))
                            }
                            "."
                        },
                        _ => li { (l.t("We make no churn estimate about you", "我们没有对您做流失预测"))
                            @if c.get("left_out").is_some_and(|x| !x.is_null()) { (l.t(" (you have not allowed profiling)", "（您未允许画像分析）")) } "." },
                    }
                }
                Err(why) => li class="muted" { (l.t("Churn estimate: not available (", "流失预测：暂无（")) (why) (l.t(").", "）。")) },
            }
            @match &h.clv {
                Ok(c) => @if let Some(v) = c["clv"].as_f64() {
                    li { (l.t("We expect you to spend about ", "我们预计您在未来 ")) @if l == Lang::Zh { (scalar(l, &c["horizon_months"])) " 个月内消费约 " strong { (l.money(v, "USD")) } "。" } @else { strong { (l.money(v, "USD")) } " over the next " (scalar(l, &c["horizon_months"])) " months." } }
                },
                Err(why) => li class="muted" { (l.t("Expected spending: not available (", "预期消费：暂无（")) (why) (l.t(").", "）。")) },
            }
        }
    }
}

fn render_home(cx: &Cx, h: &Home, csrf: &str, done: Option<&str>) -> Markup {
    let l = cx.lang;
    let purposes = h.consents["purposes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    html! {
        @if let Some(n) = done { p class="notice" role="status" { (n) } }
        section class="panel" aria-labelledby="h-pred" {
            h2 id="h-pred" { (l.t("What we predict about you", "我们对您的预测")) }
            (plain_words(l, h))
        }
        section class="panel" aria-labelledby="h-recs" {
            h2 id="h-recs" { (l.t("Recommended for you, and why", "为您推荐及原因")) }
            @match &h.recs {
                Ok(r) => {
                    @let items = r["items"].as_array().cloned().unwrap_or_default();
                    @if items.is_empty() { p class="muted" { (l.t("No recommendations.", "暂无推荐。")) } }
                    ul { @for it in &items { li {
                        strong { (product_name(&it["product"])) }
                        @let because: Vec<String> = it["because"].as_array().into_iter().flatten()
                            .map(|b| product_name(&b["product"])).filter(|n| !n.is_empty()).take(3).collect();
                        @if !because.is_empty() { " — " (l.t("because you bought ", "因为您购买过 ")) (because.join(l.t(", ", "、"))) }
                    } } }
                }
                Err(why) => p class="muted" { (why) },
            }
        }
        section class="panel" aria-labelledby="h-held" {
            h2 id="h-held" { (l.t("What each department holds about you, and where it came from", "各部门持有的您的数据及其来源")) }
            (view::record(l, &h.data))
        }
        section class="panel" aria-labelledby="h-fix" {
            h2 id="h-fix" { (l.t("Correct something", "更正数据")) }
            p { (l.t("Your correction is kept beside what the department recorded, with its date; staff see both.", "您的更正会与部门原有记录并列保存并注明日期；员工会同时看到两者。")) }
            form method="post" action="/portal/correct" {
                input type="hidden" name="csrf" value=(csrf);
                label for="attribute" { (l.t("Which item (e.g. region, birth_year)", "哪一项（例如 region、birth_year）")) }
                input type="text" id="attribute" name="attribute" required maxlength="64";
                label for="value" { (l.t("The right value", "正确的值")) }
                input type="text" id="value" name="value" required maxlength="200";
                button type="submit" { (l.t("Send correction", "提交更正")) }
            }
        }
        section class="panel" aria-labelledby="h-consent" {
            h2 id="h-consent" { (l.t("What we may use your data for", "您的数据可用于哪些用途")) }
            table {
                thead { tr { th scope="col" { (l.t("Purpose", "用途")) } th scope="col" { (l.t("Now", "当前")) } th scope="col" { (l.t("Change", "更改")) } } }
                tbody { @for p in &purposes {
                    @let name = p["purpose"].as_str().unwrap_or("");
                    @let allowed = p["allowed"].as_bool().unwrap_or(false);
                    tr {
                        td { (purpose_name(l, name)) }
                        td { @if allowed { (l.t("allowed", "允许")) } @else { (l.t("not allowed", "不允许")) } }
                        td {
                            form method="post" action="/portal/consent" class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                input type="hidden" name="purpose" value=(name);
                                input type="hidden" name="granted" value=(if allowed { "false" } else { "true" });
                                button type="submit" class="secondary" { @if allowed { (l.t("Withdraw", "撤回")) } @else { (l.t("Allow", "允许")) } }
                            }
                        }
                    }
                } }
            }
        }
        section class="panel" aria-labelledby="h-export" {
            h2 id="h-export" { (l.t("Take your data with you", "带走您的数据")) }
            p { a class="button" href="/portal/export" download { (l.t("Download everything (zip of JSON and CSV)", "下载全部数据（JSON 与 CSV 压缩包）")) } }
            p { a href="/portal/erase" { (l.t("Ask us to erase your data", "要求删除您的数据")) } }
        }
    }
}

/// A churn reason without its log-odds figure (`… (+0.21)`): the figure
/// means something to an analyst, not to the person it is about.
fn plain_reason(t: &str) -> &str {
    match t.rfind(" (") {
        Some(i) if t.ends_with(')') => &t[..i],
        _ => t,
    }
}

/// A product as a person reads it: its name, else its catalogue key.
fn product_name(p: &Value) -> String {
    p["name"]
        .as_str()
        .or_else(|| p["key"].as_str())
        .or_else(|| p.as_str())
        .unwrap_or("")
        .to_string()
}

fn purpose_name(l: Lang, p: &str) -> String {
    match p {
        "marketing" => l
            .t("Marketing messages and offers", "营销信息与优惠")
            .into(),
        "profiling" => l
            .t(
                "Predictions about you (profiling)",
                "对您的预测（画像分析）",
            )
            .into(),
        "analytics" => l.t("Statistics", "统计分析").into(),
        "recommendations" => l.t("Personal recommendations", "个性化推荐").into(),
        other => other.into(),
    }
}

async fn home(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match customer(&st, &cx, Action::SelfRead, None, home_data).await {
        Ok((h, v)) => {
            let body = render_home(&cx, &h, &v.csrf, notice(l, q.as_deref()));
            page(
                &cx,
                Area::Portal,
                &v,
                "/portal",
                l.t("Your data", "您的数据"),
                body,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

async fn consent(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let purpose = field(&f, "purpose").unwrap_or("").to_string();
    let granted = match field(&f, "granted") {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return error_page(
                &cx,
                PageError::Api(crate::ApiError::bad_request(
                    "granted: expected true or false",
                )),
            );
        }
    };
    match customer(&st, &cx, Action::SelfWrite, Some(&f), move |e, _, a| {
        e.share_my_consent_change(a, &purpose, granted).map(|_| ())
    })
    .await
    {
        Ok(((), _)) => Redirect::to("/portal?done=consent").into_response(),
        Err(e) => error_page(&cx, e),
    }
}

async fn correct(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let attribute = field(&f, "attribute").unwrap_or("").trim().to_string();
    let value = field(&f, "value").unwrap_or("").to_string();
    match customer(&st, &cx, Action::SelfWrite, Some(&f), move |e, _, a| {
        e.submit_correction(a, &attribute, &value).map(|_| ())
    })
    .await
    {
        Ok(((), _)) => Redirect::to("/portal?done=correct").into_response(),
        Err(e) => error_page(&cx, e),
    }
}

fn feedback_markup(cx: &Cx, csrf: &str, done: Option<&str>) -> Markup {
    let l = cx.lang;
    html! {
        @if let Some(n) = done { p class="notice" role="status" { (n) } }
        form method="post" action="/portal/feedback" class="panel" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="kind" value="nps";
            fieldset {
                legend { (l.t("How likely are you to recommend us to a friend? (0 = not at all, 10 = extremely)", "您向朋友推荐我们的可能性有多大？（0 = 完全不会，10 = 非常可能）")) }
                div class="scale" { @for i in 0..=10 { label { input type="radio" name="score" value=(i) required; (i) } } }
            }
            label for="nps-text" { (l.t("Why? (optional)", "原因（可选）")) }
            textarea id="nps-text" name="text" maxlength="5000" {}
            button type="submit" { (l.t("Send", "提交")) }
        }
        form method="post" action="/portal/feedback" class="panel" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="kind" value="csat";
            fieldset {
                legend { (l.t("How satisfied are you with our service? (1 = very unsatisfied, 5 = very satisfied)", "您对我们的服务满意吗？（1 = 非常不满意，5 = 非常满意）")) }
                div class="scale" { @for i in 1..=5 { label { input type="radio" name="score" value=(i) required; (i) } } }
            }
            label for="csat-text" { (l.t("Anything to add? (optional)", "补充说明（可选）")) }
            textarea id="csat-text" name="text" maxlength="5000" {}
            button type="submit" { (l.t("Send", "提交")) }
        }
        form method="post" action="/portal/feedback" class="panel" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="kind" value="review";
            h2 { (l.t("Review a product", "评价商品")) }
            label for="product" { (l.t("Product number", "商品编号")) }
            input type="text" id="product" name="product" required maxlength="100";
            fieldset {
                legend { (l.t("Stars (1–5)", "星级（1–5）")) }
                div class="scale" { @for i in 1..=5 { label { input type="radio" name="score" value=(i) required; (i) } } }
            }
            label for="review-text" { (l.t("Your review (optional)", "您的评价（可选）")) }
            textarea id="review-text" name="text" maxlength="5000" {}
            button type="submit" { (l.t("Publish review", "发表评价")) }
        }
        form method="post" action="/portal/feedback" class="panel" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="kind" value="forum";
            h2 { (l.t("Forum: ideas and questions", "论坛：建议与问题")) }
            label for="forum-text" { (l.t("Your post", "您的帖子")) }
            textarea id="forum-text" name="text" required maxlength="5000" {}
            button type="submit" { (l.t("Post", "发布")) }
        }
    }
}

async fn feedback_form(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match customer(&st, &cx, Action::SelfRead, None, |_, _, a| {
        my_id(a).map(|_| ())
    })
    .await
    {
        Ok(((), v)) => page(
            &cx,
            Area::Portal,
            &v,
            "/portal/feedback",
            l.t("Tell us what you think", "告诉我们您的想法"),
            feedback_markup(&cx, &v.csrf, notice(l, q.as_deref())),
        ),
        Err(e) => error_page(&cx, e),
    }
}

async fn feedback(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    use infogap_engine::selfservice::{FeedbackInput, FeedbackKind};
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let kind = match field(&f, "kind") {
        Some("nps") => FeedbackKind::Nps,
        Some("csat") => FeedbackKind::Csat,
        Some("review") => FeedbackKind::Review,
        Some("forum") => FeedbackKind::Forum,
        _ => {
            return error_page(
                &cx,
                PageError::Api(crate::ApiError::bad_request(
                    "kind: expected nps, csat, review or forum",
                )),
            );
        }
    };
    let score = match field(&f, "score").map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<f64>() {
            Ok(x) => Some(x),
            Err(_) => {
                return error_page(
                    &cx,
                    PageError::Api(crate::ApiError::bad_request("score: expected a number")),
                );
            }
        },
    };
    let input = FeedbackInput {
        kind,
        score,
        text: field(&f, "text")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
        product: field(&f, "product")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string),
    };
    match customer(&st, &cx, Action::SelfWrite, Some(&f), move |e, _, a| {
        e.submit_feedback(a, &input).map(|_| ())
    })
    .await
    {
        Ok(((), _)) => Redirect::to("/portal/feedback?done=feedback").into_response(),
        Err(e) => error_page(&cx, e),
    }
}

async fn export(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    match customer(&st, &cx, Action::SelfRead, None, |e, s, a| {
        let id = my_id(a)?;
        let ins = s.insights();
        let ex = e.privacy_export(a, Some(&ins), id)?;
        Ok(ex.to_zip(std::io::Cursor::new(Vec::new()))?.into_inner())
    })
    .await
    {
        Ok((bytes, v)) => {
            let mut res = (
                [
                    (header::CONTENT_TYPE, "application/zip"),
                    (
                        header::CONTENT_DISPOSITION,
                        "attachment; filename=\"my-data.zip\"",
                    ),
                ],
                bytes,
            )
                .into_response();
            res.extensions_mut().insert(Actor(v.actor));
            res
        }
        Err(e) => error_page(&cx, e),
    }
}

async fn erase_form(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match customer(&st, &cx, Action::SelfRead, None, |_, _, a| {
        my_id(a).map(|_| ())
    })
    .await
    {
        Ok(((), v)) => page(
            &cx,
            Area::Portal,
            &v,
            "/portal/erase",
            l.t("Erase my data", "删除我的数据"),
            html! {
                @if let Some(n) = notice(l, q.as_deref()) { p class="notice" role="status" { (n) } }
                p { (l.t("We will delete what every department holds about you, and keep only a record that we did (no personal value). Depending on our settings this happens at once or after a member of staff confirms it. You may want to download your data first.", "我们将删除各部门持有的关于您的全部数据，只保留一条不含个人信息的删除记录。根据我们的设置，删除会立即执行，或在员工确认后执行。您可以先下载您的数据。")) }
                form method="post" action="/portal/erase" class="panel" {
                    input type="hidden" name="csrf" value=(v.csrf);
                    label { input type="checkbox" name="confirm" value="yes" required; " " (l.t("Yes, erase my data", "是的，删除我的数据")) }
                    button type="submit" class="danger" { (l.t("Erase my data", "删除我的数据")) }
                }
            },
        ),
        Err(e) => error_page(&cx, e),
    }
}

async fn erase(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let l = cx.lang;
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    if field(&f, "confirm") != Some("yes") {
        return error_page(
            &cx,
            PageError::Api(crate::ApiError::bad_request(l.t(
                "confirm: tick the box to confirm the erasure",
                "confirm：请勾选以确认删除",
            ))),
        );
    }
    match customer(&st, &cx, Action::SelfWrite, Some(&f), |e, _, a| {
        e.request_erasure(a)
    })
    .await
    {
        Ok((r, v)) => {
            let done = r.status == "done";
            let mut res = super::html_response(
                axum::http::StatusCode::OK,
                super::shell(
                    &cx,
                    Area::Public,
                    None,
                    "/portal/erase",
                    l.t("Erasure", "删除"),
                    html! {
                        p class="notice" role="status" {
                            @if done { (l.t("Your data has been erased. This session has ended.", "您的数据已删除。本次会话已结束。")) }
                            @else { (l.t("Your request is recorded; a member of staff will carry it out. You will not need to ask again.", "您的请求已记录，员工将执行删除，您无需再次申请。")) }
                        }
                        p class="muted" { (l.t("Reference: ", "编号：")) (scalar(l, &serde_json::json!(r.erasure_id))) }
                    },
                ),
                Some(v.actor),
            );
            if done {
                res.headers_mut().append(
                    header::SET_COOKIE,
                    cx.set_cookie(super::SESSION_COOKIE, "", Some(0)),
                );
            }
            res
        }
        Err(e) => error_page(&cx, e),
    }
}
