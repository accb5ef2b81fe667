//! The dashboard's webhooks page (`/dashboard/webhooks`, admins:
//! `webhooks.manage`): the webhooks in use, how many messages are in each
//! state, and the dead letters with a replay button each (`POST
//! /dashboard/webhooks/replay`, CSRF-checked).
//!
//! Why here and not only in the CLI and the API: the people who notice that
//! a receiver was down are often not at a terminal. The engine
//! (`list_webhooks`, `webhook_messages`, `replay_webhook_message`) decides
//! and audits; adding a webhook stays in the CLI and the API, where the
//! signing secret is shown once to whoever set up the receiver.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use infogap_core::access::Action;
use infogap_engine::webhooks::{MessageList, WebhookView};
use maud::{Markup, html};

use super::i18n::Lang;
use super::{Area, Cx, PageError, Viewer, error_page, field, page, parse_form, staff};
use crate::error::ApiError;
use crate::state::AppState;

/// The routes of this page (merged into the pages' router).
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard/webhooks", get(webhooks))
        .route("/dashboard/webhooks/replay", post(replay))
}

fn state_name(l: Lang, s: &str) -> String {
    match s {
        "pending" => l.t("waiting", "待发送").into(),
        "delivered" => l.t("delivered", "已送达").into(),
        "dead" => l.t("dead letters", "死信").into(),
        "dropped" => l
            .t("dropped (webhook removed)", "已丢弃（Webhook 已删除）")
            .into(),
        other => other.into(),
    }
}

fn render(l: Lang, hooks: &[WebhookView], dead: &MessageList, v: &Viewer, done: bool) -> Markup {
    html! {
        @if done {
            p class="notice" role="status" { (l.t("The message is queued again; the server sends it now.", "该消息已重新排队，服务器正在发送。")) }
        }
        p { (l.t("Alerts and sign-in links go to these URLs, signed (Standard Webhooks) and retried with backoff; after the last try a message waits here. Add a webhook with ", "告警和登录链接会签名（Standard Webhooks）后发送到这些地址，失败时按退避重试；最后一次失败后消息留在此处。添加 Webhook：")) code { "infogap webhooks add --url URL --events churn.high --role marketing" } (l.t(" (the signing secret is printed once).", "（签名密钥只显示一次）。")) }
        section class="panel" {
            h2 { (l.t("Webhooks", "Webhook")) }
            @if hooks.is_empty() {
                p class="muted" { (l.t("No webhooks.", "暂无 Webhook。")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { "URL" }
                        th scope="col" { (l.t("Events", "事件")) }
                        th scope="col" { (l.t("Role", "角色")) }
                        th scope="col" { (l.t("Department", "部门")) }
                        th scope="col" { (l.t("Added", "添加时间")) }
                    } }
                    tbody { @for w in hooks { tr {
                        td { (w.id) }
                        td { code { (w.url) } }
                        td { (w.events.join(", ")) }
                        td { (w.role) }
                        td { (w.department.as_deref().unwrap_or("—")) }
                        td { (l.when(&w.created_at)) }
                    } } }
                }
            }
        }
        section class="panel" {
            h2 { (l.t("Messages", "消息")) }
            @if dead.counts.is_empty() {
                p class="muted" { (l.t("None yet.", "暂无。")) }
            } @else {
                table {
                    thead { tr { th scope="col" { (l.t("State", "状态")) } th scope="col" class="num" { (l.t("Messages", "消息数")) } } }
                    tbody { @for (s, n) in &dead.counts { tr {
                        td { (state_name(l, s)) }
                        td class="num" { (l.int(*n as i64)) }
                    } } }
                }
            }
        }
        section class="panel" {
            h2 { (l.t("Dead letters", "死信")) }
            @if dead.messages.is_empty() {
                p class="muted" { (l.t("No dead letters.", "暂无死信。")) }
            } @else {
                table {
                    thead { tr {
                        th scope="col" { "#" }
                        th scope="col" { (l.t("Event", "事件")) }
                        th scope="col" { "Webhook" }
                        th scope="col" class="num" { (l.t("Tries", "尝试次数")) }
                        th scope="col" { (l.t("Last answer", "最后响应")) }
                        th scope="col" { (l.t("Written", "生成时间")) }
                        th scope="col" { (l.t("Replay", "重新发送")) }
                    } }
                    tbody { @for m in &dead.messages { tr {
                        td { (m.id) }
                        td { (m.event) }
                        td { "#" (m.webhook_id) }
                        td class="num" { (m.attempts) }
                        td { (m.last_status.map(|s| format!("HTTP {s}")).or_else(|| m.last_error.clone()).unwrap_or_default()) }
                        td { (l.when(&m.created_at)) }
                        td {
                            form method="post" action="/dashboard/webhooks/replay" class="inline" {
                                input type="hidden" name="csrf" value=(v.csrf);
                                input type="hidden" name="id" value=(m.id);
                                button type="submit" class="secondary"
                                    aria-label=(format!("{}{}", l.t("Replay message ", "重新发送消息 "), m.id)) { (l.t("Replay", "重新发送")) }
                            }
                        }
                    } } }
                }
            }
        }
    }
}

async fn webhooks(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::WebhooksManage, None, |e, _, a| {
        Ok((
            e.list_webhooks(a)?,
            e.webhook_messages(a, Some("dead"), None, 200)?,
        ))
    })
    .await
    {
        Ok(((hooks, dead), v)) => {
            let done = q.as_deref() == Some("done=replayed");
            let body = render(l, &hooks, &dead, &v, done);
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/webhooks",
                l.t("Webhooks", "Webhook 推送"),
                body,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

async fn replay(State(st): State<Arc<AppState>>, cx: Cx, body: Bytes) -> Response {
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let Some(id) = field(&f, "id").and_then(|s| s.trim().parse::<i64>().ok()) else {
        return error_page(
            &cx,
            PageError::Api(ApiError::bad_request("id: expected a message number")),
        );
    };
    match staff(
        &st,
        &cx,
        Action::WebhooksManage,
        Some(&f),
        move |e, _, a| e.replay_webhook_message(a, id),
    )
    .await
    {
        Ok(((), _)) => Redirect::to("/dashboard/webhooks?done=replayed").into_response(),
        Err(e) => error_page(&cx, e),
    }
}
