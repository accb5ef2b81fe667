//! The dashboard's pages about identity resolution and the system: a
//! customer's merge evidence with split / undo forms
//! (`/dashboard/customers/{id}/merges`, `POST …/split`), and the import
//! runs and saved model versions (`/dashboard/system`, with a CSV of the
//! runs).
//!
//! Why shaped like this: like every page, these render the engine's answer
//! ([`Engine::share_merges`](infogap_engine::Engine::share_merges),
//! `share_split`, `share_imports_and_models`), which decided what the role
//! sees (department scope, masked contact values in the links and the
//! merge log) and wrote the audit record. The split forms are offered only
//! to a role with `customers.merge` and only for identities whose value the
//! role sees in full (the form names the identity as `NS:VALUE`); the engine
//! checks the right again, and the CSRF token is checked before anything
//! runs. After a split the browser is sent (303) to the merges page of the
//! customer the identity ends up with, with a notice that names no value.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use infogap_core::access::Action;
use infogap_engine::merges::{EvidenceIdentity, EvidenceLink, MergeEvidence, RunsAndModels};
use maud::{Markup, html};
use serde_json::Value;

use super::i18n::Lang;
use super::view::scalar;
use super::{
    Area, Cx, PageError, Viewer, csv_response, error_page, field, page, parse_form, staff,
};
use crate::error::ApiError;
use crate::state::AppState;

/// The routes of these pages (merged into the pages' router).
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard/customers/{id}/merges", get(merges))
        .route("/dashboard/customers/{id}/split", post(split))
        .route("/dashboard/system", get(system))
        .route("/dashboard/system/imports.csv", get(imports_csv))
}

fn bad_id(cx: &Cx) -> Response {
    error_page(
        cx,
        PageError::Api(ApiError::bad_request(
            "customer id: expected a whole number",
        )),
    )
}

fn parse_id(id: &str) -> Option<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0)
}

// ---------------------------------------------------------------------------
// Merge evidence and splits

/// What a finished split or unsplit says on the next page (`?done=…`).
fn notice(l: Lang, q: Option<&str>) -> Option<&'static str> {
    let done = q.and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "done")
            .map(|(_, v)| v.into_owned())
    })?;
    Some(match done.as_str() {
        "split" => l.t(
            "Split done: the identity and the identities it was joined to are separate customers now. The switched-off links are listed below, each with an undo.",
            "拆分完成：该身份与原先关联的身份现已分属不同客户。被关闭的关联列在下方，每条都可撤销。",
        ),
        "unsplit" => l.t(
            "The split is undone: its links are switched on again and the identities are one customer.",
            "拆分已撤销：相关关联已重新启用，这些身份重新属于同一客户。",
        ),
        _ => return None,
    })
}

fn kind_name(l: Lang, k: &str) -> String {
    match k {
        "customer" => l.t("customer id", "客户编号").into(),
        "email" => l.t("email", "邮箱").into(),
        "phone" => l.t("phone", "电话").into(),
        other => other.into(),
    }
}

fn rule_name(l: Lang, r: &str) -> String {
    match r {
        "same_record" => l.t("seen on the same record", "出现在同一条记录中").into(),
        "link_table" => l.t("mapped by a link table", "由关联表映射").into(),
        other => other.into(),
    }
}

fn action_name(l: Lang, a: &str) -> String {
    match a {
        "merge" => l.t("merge", "合并").into(),
        "split" => l.t("split", "拆分").into(),
        "unsplit" => l.t("undo split", "撤销拆分").into(),
        other => other.into(),
    }
}

/// A form that posts a split or an unsplit of one identity.
fn split_form(l: Lang, id: i64, csrf: &str, spec: &str, split: bool) -> Markup {
    let (label, aria) = if split {
        (
            l.t("Split off", "拆分出去"),
            l.t("Split off ", "拆分出去："),
        )
    } else {
        (
            l.t("Undo split", "撤销拆分"),
            l.t("Undo the split of ", "撤销拆分："),
        )
    };
    html! {
        form method="post" action=(format!("/dashboard/customers/{id}/split")) class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="identity" value=(spec);
            input type="hidden" name="action" value=(if split { "split" } else { "unsplit" });
            button type="submit" class=(if split { "danger" } else { "secondary" })
                aria-label=(format!("{aria}{spec}")) { (label) }
        }
    }
}

fn identity_actions(l: Lang, ev: &MergeEvidence, i: &EvidenceIdentity, csrf: &str) -> Markup {
    let Some(spec) = &i.spec else {
        return html! { span class="muted" { (l.t("value masked: use the command line", "值已遮蔽：请使用命令行")) } };
    };
    let can_split = i.active_links > 0 && ev.identities.len() + ev.not_shown >= 2;
    html! {
        @if can_split { (split_form(l, ev.id, csrf, spec, true)) }
        @if i.split_links > 0 { " " (split_form(l, ev.id, csrf, spec, false)) }
    }
}

fn link_row(l: Lang, ev: &MergeEvidence, k: &EvidenceLink, can: bool, csrf: &str) -> Markup {
    html! {
        tr {
            td { (k.a) }
            td {
                (k.b)
                @if let Some(o) = k.other_customer {
                    " " a href=(format!("/dashboard/customers/{o}/merges")) { (l.t("evidence", "证据")) }
                }
            }
            td { (rule_name(l, &k.rule)) }
            td { (k.source) }
            td class="n" { (l.int(k.line)) }
            td {
                @if k.suppressed { span class="tag" { (l.t("switched off by a split", "已因拆分而关闭")) } }
                @else { (l.t("live", "有效")) }
            }
            @if can {
                td { @if let Some(u) = &k.undo { (split_form(l, ev.id, csrf, u, false)) } }
            }
        }
    }
}

fn render_merges(cx: &Cx, ev: &MergeEvidence, v: &Viewer, done: Option<&str>) -> Markup {
    let l = cx.lang;
    let can = v.actions.contains(&Action::CustomersMerge);
    let csrf = v.csrf.as_str();
    html! {
        @if let Some(n) = done { p class="notice" role="status" { (n) } }
        p {
            a href=(format!("/dashboard/customers/{}", ev.id)) { (l.t("Back to the customer's profile", "返回客户档案")) }
        }
        p class="muted" { (l.t(
            "Records from different departments become one customer when a link joins their keys: two keys seen on the same record, or mapped by a link table. Every link below names the record that is its evidence.",
            "当一条关联把不同部门记录的标识连在一起时（两个标识出现在同一条记录中，或由关联表映射），这些记录就合并为同一客户。下面每条关联都注明了作为证据的记录。",
        )) }
        section class="panel" aria-labelledby="h-ids" {
            h2 id="h-ids" { (l.t("Identities", "身份")) }
            @if ev.identities.is_empty() {
                p class="muted" { (l.t("None you may see.", "没有您可查看的身份。")) }
            } @else {
                table {
                    caption { (l.t("Keys this customer is known by, with the record that brought each", "该客户的各个标识，以及带来每个标识的记录")) }
                    thead { tr {
                        th scope="col" { (l.t("Identity", "身份")) }
                        th scope="col" { (l.t("Kind", "类型")) }
                        th scope="col" { (l.t("Source", "来源")) }
                        th scope="col" class="n" { (l.t("Line", "行")) }
                        th scope="col" class="n" { (l.t("Live links", "有效关联")) }
                        th scope="col" class="n" { (l.t("Split links", "已拆分关联")) }
                        @if can { th scope="col" { (l.t("Change", "操作")) } }
                    } }
                    tbody { @for i in &ev.identities { tr {
                        td { (i.namespace) ":" (i.value) }
                        td { (kind_name(l, &i.kind)) }
                        td { (i.source) }
                        td class="n" { (l.int(i.line)) }
                        td class="n" { (l.int(i.active_links as i64)) }
                        td class="n" { (l.int(i.split_links as i64)) }
                        @if can { td { (identity_actions(l, ev, i, csrf)) } }
                    } } }
                }
            }
            @if ev.not_shown > 0 {
                p class="muted" {
                    (l.t("Identities not shown (another department's, or of a class your role does not see): ", "未显示的身份（属于其他部门，或您的角色无权查看的类别）："))
                    (l.int(ev.not_shown as i64))
                }
            }
        }
        section class="panel" aria-labelledby="h-links" {
            h2 id="h-links" { (l.t("Links: the evidence", "关联：合并的证据")) }
            @if ev.links.is_empty() {
                p class="muted" { (l.t("No links: this customer has a single key.", "没有关联：该客户只有一个标识。")) }
            } @else {
                table {
                    caption { (l.t("Each link joins two keys; a split switches it off without deleting it", "每条关联连接两个标识；拆分只会关闭关联而不会删除")) }
                    thead { tr {
                        th scope="col" { (l.t("Identity", "身份")) }
                        th scope="col" { (l.t("Linked to", "关联到")) }
                        th scope="col" { (l.t("Rule", "规则")) }
                        th scope="col" { (l.t("Source of the evidence", "证据来源")) }
                        th scope="col" class="n" { (l.t("Line", "行")) }
                        th scope="col" { (l.t("Status", "状态")) }
                        @if can { th scope="col" { (l.t("Change", "操作")) } }
                    } }
                    tbody { @for k in &ev.links { (link_row(l, ev, k, can, csrf)) } }
                }
            }
        }
        section class="panel" aria-labelledby="h-hist" {
            h2 id="h-hist" { (l.t("History", "历史记录")) }
            @if ev.history.is_empty() {
                p class="muted" { (l.t("No merges or splits were logged for this customer.", "该客户没有合并或拆分记录。")) }
            } @else {
                table {
                    caption { (l.t("Merges, splits and undos from the merge log, oldest first", "合并日志中的合并、拆分与撤销，按时间先后排列")) }
                    thead { tr {
                        th scope="col" { (l.t("When", "时间")) }
                        th scope="col" { (l.t("What", "操作")) }
                        th scope="col" { (l.t("Customer", "客户")) }
                        th scope="col" { (l.t("Other customer", "另一客户")) }
                        th scope="col" { (l.t("Detail", "详情")) }
                    } }
                    tbody { @for h in &ev.history { tr {
                        td { (l.when(&h.at)) }
                        td { (action_name(l, &h.action)) }
                        td { "#" (h.customer_id) }
                        td { @if let Some(o) = h.other_id { "#" (o) } @else { "–" } }
                        td { (h.detail) }
                    } } }
                }
            }
        }
        @if can {
            p class="muted" { (l.t(
                "Splitting switches off every live link of the identity: it and its facts become a customer of their own. Undo restores the links. Both are recorded in the merge log and the audit trail.",
                "拆分会关闭该身份的所有有效关联：该身份及其数据成为独立客户。撤销会恢复这些关联。两种操作都会记入合并日志和审计日志。",
            )) }
        }
        p class="muted" { (l.t("Shown as your role allows: ", "按您的角色显示：")) (ev.policy.role)
            @if let Some(d) = &ev.policy.department { " · " (d) } }
    }
}

async fn merges(
    State(st): State<Arc<AppState>>,
    cx: Cx,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id(&cx);
    };
    match staff(&st, &cx, Action::CustomersRead, None, move |e, _, a| {
        e.share_merges(a, id)
    })
    .await
    {
        Ok((ev, v)) => {
            let l = cx.lang;
            let title = format!(
                "{} #{}",
                l.t("Merge evidence of customer", "合并证据：客户"),
                ev.id
            );
            page(
                &cx,
                Area::Dashboard,
                &v,
                "/dashboard/customers",
                &title,
                render_merges(&cx, &ev, &v, notice(l, q.as_deref())),
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

async fn split(
    State(st): State<Arc<AppState>>,
    cx: Cx,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(id) = parse_id(&id) else {
        return bad_id(&cx);
    };
    let f = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_page(&cx, PageError::Api(e)),
    };
    let identity = field(&f, "identity").unwrap_or("").trim().to_string();
    let split = match field(&f, "action") {
        Some("split") => true,
        Some("unsplit") => false,
        _ => {
            return error_page(
                &cx,
                PageError::Api(ApiError::bad_request("action: expected split or unsplit")),
            );
        }
    };
    match staff(
        &st,
        &cx,
        Action::CustomersMerge,
        Some(&f),
        move |e, _, a| e.share_split(a, id, &identity, split),
    )
    .await
    {
        Ok((out, _)) => Redirect::to(&format!(
            "/dashboard/customers/{}/merges?done={}",
            out.to_customer,
            if split { "split" } else { "unsplit" }
        ))
        .into_response(),
        Err(e) => error_page(&cx, e),
    }
}

// ---------------------------------------------------------------------------
// Import runs and model versions

fn status_name(l: Lang, s: &str) -> String {
    match s {
        "ok" => l.t("imported", "已导入").into(),
        "unchanged" => l.t("unchanged, skipped", "未变化，已跳过").into(),
        "failed" => l.t("failed", "失败").into(),
        other => other.into(),
    }
}

fn model_name(l: Lang, k: &str) -> String {
    match k {
        "recs" => l.t("Recommendations", "推荐").into(),
        "churn" => l.t("Churn risk", "流失风险").into(),
        "clv" => l.t("Lifetime value", "客户终身价值").into(),
        "amount" => l.t("Order amount", "订单金额").into(),
        other => other.into(),
    }
}

fn pairs(l: Lang, m: &std::collections::BTreeMap<String, Value>) -> String {
    if m.is_empty() {
        return "–".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}: {}", scalar(l, v)))
        .collect::<Vec<_>>()
        .join("; ")
}

fn render_system(cx: &Cx, d: &RunsAndModels) -> Markup {
    let l = cx.lang;
    html! {
        section class="panel" aria-labelledby="h-models" {
            h2 id="h-models" { (l.t("Saved models", "已保存的模型")) }
            @if d.models.is_empty() {
                p class="muted" { (l.t("No model is saved yet: train one (`infogap train …`).", "尚未保存任何模型：请先训练（`infogap train …`）。")) }
            } @else {
                table {
                    caption { (l.t("The newest version of each kind is the one in use", "每类模型的最新版本即当前使用的版本")) }
                    thead { tr {
                        th scope="col" { (l.t("Model", "模型")) }
                        th scope="col" class="n" { (l.t("In use", "使用中")) }
                        th scope="col" { (l.t("Versions kept", "保留的版本")) }
                        th scope="col" { (l.t("Saved", "保存时间")) }
                        th scope="col" { (l.t("Metrics", "指标")) }
                        th scope="col" { (l.t("Parameters", "参数")) }
                    } }
                    tbody { @for m in &d.models { tr {
                        td { (model_name(l, &m.kind)) " " span class="muted" { "(" (m.kind) ")" } }
                        td class="n" { "v" (m.version) }
                        td { (m.versions.iter().map(|x| format!("v{x}")).collect::<Vec<_>>().join(", ")) }
                        td { (m.created_at.as_deref().map_or("–".into(), |t| l.when(t))) }
                        td { (pairs(l, &m.metrics)) }
                        td { (pairs(l, &m.params)) }
                    } } }
                }
            }
        }
        section class="panel" aria-labelledby="h-imports" {
            h2 id="h-imports" { (l.t("Import runs", "导入记录")) }
            p {
                (l.t("Newest first; ", "最新在前；")) (l.int(d.imports.len() as i64)) (l.t(" of ", " / 共 ")) (l.int(d.imports_total as i64)) (l.t(" runs shown. ", " 次。"))
                a href="/dashboard/system/imports.csv" download { (l.t("Download (CSV)", "下载（CSV）")) }
            }
            @if d.imports.is_empty() {
                p class="muted" { (l.t("Nothing was imported yet.", "尚未导入任何数据。")) }
            } @else {
                table {
                    caption { (l.t("One row per file and import; rows are counted, never shown", "每个文件每次导入一行；只统计行数，不显示内容")) }
                    thead { tr {
                        th scope="col" { (l.t("Started", "开始时间")) }
                        th scope="col" { (l.t("Source", "来源")) }
                        th scope="col" { (l.t("File", "文件")) }
                        th scope="col" class="n" { (l.t("Rows read", "读取行数")) }
                        th scope="col" class="n" { (l.t("Written", "写入行数")) }
                        th scope="col" class="n" { (l.t("Rejected", "拒绝行数")) }
                        th scope="col" { (l.t("Status", "状态")) }
                        th scope="col" class="n" { (l.t("Seconds", "秒")) }
                        th scope="col" { "SHA-256" }
                    } }
                    tbody { @for r in &d.imports { tr {
                        td { (l.when(&r.started_at)) }
                        td { (r.source) }
                        td { (r.file) }
                        td class="n" { (l.int(r.rows_read)) }
                        td class="n" { (l.int(r.rows_written)) }
                        td class="n" { (l.int(r.rows_rejected)) }
                        td { @if r.status == "failed" { span class="error" { (status_name(l, &r.status)) } } @else { (status_name(l, &r.status)) } }
                        td class="n" { (l.num(r.seconds, 2)) }
                        td { code { (r.file_sha256) } }
                    } } }
                }
            }
        }
    }
}

async fn system(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    match staff(&st, &cx, Action::ModelsTrain, None, |e, _, a| {
        e.share_imports_and_models(a)
    })
    .await
    {
        Ok((d, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard/system",
            cx.lang.t("Imports and models", "导入与模型"),
            render_system(&cx, &d),
        ),
        Err(e) => error_page(&cx, e),
    }
}

async fn imports_csv(State(st): State<Arc<AppState>>, cx: Cx) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::ModelsTrain, None, |e, _, a| {
        e.share_imports_and_models(a)
    })
    .await
    {
        Ok((d, v)) => {
            let rows: Vec<Vec<String>> = d
                .imports
                .iter()
                .map(|r| {
                    vec![
                        r.started_at.clone(),
                        r.finished_at.clone(),
                        r.source.clone(),
                        r.file.clone(),
                        r.rows_read.to_string(),
                        r.rows_written.to_string(),
                        r.rows_rejected.to_string(),
                        r.status.clone(),
                        format!("{:.3}", r.seconds),
                        r.file_sha256.clone(),
                    ]
                })
                .collect();
            csv_response(
                "import-runs.csv",
                &[
                    l.t("started_at", "开始时间"),
                    l.t("finished_at", "结束时间"),
                    l.t("source", "来源"),
                    l.t("file", "文件"),
                    l.t("rows_read", "读取行数"),
                    l.t("rows_written", "写入行数"),
                    l.t("rows_rejected", "拒绝行数"),
                    l.t("status", "状态"),
                    l.t("seconds", "秒"),
                    "sha256",
                ],
                &rows,
                &v.actor,
            )
        }
        Err(e) => error_page(&cx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_name_no_value_and_ignore_the_unknown() {
        assert!(notice(Lang::En, Some("done=split")).is_some_and(|n| n.starts_with("Split done")));
        assert!(notice(Lang::Zh, Some("done=unsplit")).is_some_and(|n| n.contains("撤销")));
        assert_eq!(notice(Lang::En, Some("done=<script>")), None);
        assert_eq!(notice(Lang::En, None), None);
    }

    #[test]
    fn ids_are_positive_whole_numbers() {
        assert_eq!(parse_id("42"), Some(42));
        assert_eq!(parse_id("0"), None);
        assert_eq!(parse_id("-3"), None);
        assert_eq!(parse_id("ann@example.com"), None);
    }

    #[test]
    fn split_forms_carry_the_token_and_the_action() {
        let h = split_form(Lang::En, 7, "tok", "web:W1", true).into_string();
        assert!(h.contains("action=\"/dashboard/customers/7/split\""), "{h}");
        assert!(h.contains("name=\"csrf\" value=\"tok\""), "{h}");
        assert!(h.contains("name=\"action\" value=\"split\""), "{h}");
        let u = split_form(Lang::Zh, 7, "tok", "web:W1", false).into_string();
        assert!(
            u.contains("value=\"unsplit\"") && u.contains("撤销拆分"),
            "{u}"
        );
    }
}
