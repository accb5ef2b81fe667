//! Rendering an engine answer (already shaped by the policy) as HTML: lists
//! of records as tables, records as definition lists, with the field names
//! the API uses translated for the page.
//!
//! Why generic: the pages must show exactly what the API shows a role, no
//! more and no less; rendering the same serialized answer guarantees it,
//! and a field added to an answer appears on the page without a second
//! place to forget.

use maud::{Markup, html};
use serde_json::Value;

use super::i18n::Lang;

/// The page's name for a JSON field.
pub fn label(l: Lang, k: &str) -> String {
    let zh = match k {
        "id" => "编号",
        "key" => "标识",
        "name" => "名称",
        "kind" => "类型",
        "namespace" => "命名空间",
        "value" => "值",
        "source" => "来源",
        "sources" => "来源",
        "file" => "文件",
        "line" => "行",
        "class" => "字段类别",
        "count" => "数量",
        "first" | "first_seen" | "first_order" => "首次",
        "last" | "last_seen" | "last_order" => "最近",
        "orders" => "订单",
        "revenue" => "收入",
        "amount" => "金额",
        "spend" => "消费",
        "time" => "时间",
        "date" => "日期",
        "score" => "评分",
        "mean_score" => "平均分",
        "text" => "内容",
        "channel" => "渠道",
        "purpose" => "用途",
        "granted" => "同意",
        "probability" => "概率",
        "band" => "等级",
        "reasons" => "原因",
        "size" => "人数",
        "share" => "占比",
        "revenue_share" => "收入占比",
        "customers" => "客户",
        "product" => "商品",
        "category" => "品类",
        "because" => "推荐原因",
        "events" => "事件",
        "feedback" => "反馈",
        "campaigns" => "营销活动",
        "consents" => "同意记录",
        "attributes" => "属性",
        "identities" => "身份",
        "segment" => "分群",
        "level" => "程度",
        "facts" => "事实数",
        "newest" => "最新",
        "age_days" => "距今天数",
        "missing" => "缺失",
        "dimension" => "维度",
        "department" => "部门",
        "action" => "操作",
        "actor" => "操作者",
        "role" => "角色",
        "origin" => "来源地址",
        "detail" => "结果",
        "fields" => "字段",
        "seq" => "序号",
        "status" => "状态",
        "exposed" => "曝光",
        "redeemed" => "使用",
        "total" => "合计",
        "rank" => "排名",
        "item" => "商品",
        "title" => "标题",
        "type" => "类型",
        "recorded" => "已记录",
        "values" => "取值",
        _ => "",
    };
    match l {
        Lang::Zh if !zh.is_empty() => zh.to_string(),
        _ => k.replace('_', " "),
    }
}

/// A scalar as text (`–` for null).
pub fn scalar(l: Lang, v: &Value) -> String {
    match v {
        Value::Null => "–".into(),
        Value::Bool(b) => if *b {
            l.t("yes", "是")
        } else {
            l.t("no", "否")
        }
        .into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                l.int(i)
            } else if let Some(f) = n.as_f64() {
                if f.abs() < 1.0 {
                    l.num(f, 3)
                } else {
                    l.num(f, 2)
                }
            } else {
                n.to_string()
            }
        }
        Value::String(s) => {
            // dates and times in the page's language
            if s.len() >= 10
                && s.as_bytes().get(4) == Some(&b'-')
                && s.as_bytes().get(7) == Some(&b'-')
                && s[..4].bytes().all(|b| b.is_ascii_digit())
            {
                l.when(s)
            } else {
                s.clone()
            }
        }
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::Object(_) | Value::Array(_) => compact(l, x),
                _ => scalar(l, x),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Value::Object(_) => compact(l, v),
    }
}

/// A key `k_zh` is the Simplified Chinese of key `k` (engine-worded text
/// such as churn reasons): shown instead of `k` on Chinese pages, never as
/// a column of its own.
fn is_translation(k: &str) -> bool {
    k.ends_with("_zh")
}

/// The value of `k` in the page's language.
fn pick<'a>(l: Lang, m: &'a serde_json::Map<String, Value>, k: &str) -> &'a Value {
    let base = m.get(k).unwrap_or(&Value::Null);
    if l == Lang::Zh {
        let zh = m.get(&format!("{k}_zh"));
        let empty = match zh {
            None | Some(Value::Null) => true,
            Some(Value::String(z)) => z.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            Some(_) => false,
        };
        if !empty && let Some(z) = zh {
            return z;
        }
    }
    base
}

/// Field `k` of a record in the page's language (its `k_zh` on Chinese
/// pages when the engine worded one).
pub fn localized<'a>(l: Lang, v: &'a Value, k: &str) -> &'a Value {
    match v {
        Value::Object(m) => pick(l, m, k),
        _ => &Value::Null,
    }
}

fn compact(l: Lang, v: &Value) -> String {
    match v {
        // a worded item (a reason): its words
        Value::Object(m) if m.get("text").is_some_and(Value::is_string) => {
            pick(l, m, "text").as_str().unwrap_or("").to_string()
        }
        Value::Object(m) => m
            .iter()
            .filter(|(k, x)| !x.is_null() && !is_translation(k))
            .map(|(k, x)| match x {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    }
}

/// An array of records as a table (columns: every key, in first-seen
/// order); anything else as [`record`] or text.
pub fn table(l: Lang, v: &Value, caption: Option<&str>) -> Markup {
    let Value::Array(rows) = v else {
        return record(l, v);
    };
    if rows.is_empty() {
        return html! { p class="muted" { (l.t("None.", "无。")) } };
    }
    if !rows.iter().all(Value::is_object) {
        return html! { p { (scalar(l, v)) } };
    }
    let mut cols: Vec<&str> = Vec::new();
    for r in rows {
        if let Value::Object(m) = r {
            for k in m.keys() {
                if !cols.contains(&k.as_str()) && !is_translation(k) {
                    cols.push(k);
                }
            }
        }
    }
    html! {
        table {
            @if let Some(c) = caption { caption { (c) } }
            thead { tr { @for c in &cols { th scope="col" { (label(l, c)) } } } }
            tbody {
                @for r in rows {
                    tr {
                        @for c in &cols {
                            @let x = match r { Value::Object(m) => pick(l, m, c), _ => &Value::Null };
                            td class=[x.is_number().then_some("n")] { (scalar(l, x)) }
                        }
                    }
                }
            }
        }
    }
}

/// A record as a definition list; nested lists become tables.
pub fn record(l: Lang, v: &Value) -> Markup {
    match v {
        Value::Object(m) => html! {
            dl {
                @for (k, x) in m.iter().filter(|(k, _)| !is_translation(k)).map(|(k, _)| (k, pick(l, m, k))) {
                    @if !x.is_null() {
                        dt { (label(l, k)) }
                        dd {
                            @match x {
                                Value::Array(a) if a.iter().any(Value::is_object) => (table(l, x, None)),
                                Value::Object(_) => (record(l, x)),
                                _ => (scalar(l, x)),
                            }
                        }
                    }
                }
            }
        },
        other => html! { p { (scalar(l, other)) } },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_take_every_column_and_escape() {
        let v = serde_json::json!([{"a": 1, "b": "<x>"}, {"c": true}]);
        let h = table(Lang::En, &v, Some("cap")).into_string();
        assert!(h.contains("<th scope=\"col\">a</th>"));
        assert!(h.contains("<th scope=\"col\">c</th>"));
        assert!(h.contains("&lt;x&gt;"));
        assert!(h.contains(">yes<"));
        let z = table(Lang::Zh, &serde_json::json!([{"source": "crm"}]), None).into_string();
        assert!(z.contains("来源"));
    }

    #[test]
    fn scalars_follow_the_language() {
        assert_eq!(scalar(Lang::En, &serde_json::json!(1234)), "1,234");
        assert_eq!(
            scalar(Lang::Zh, &serde_json::json!("2026-12-06")),
            "2026年12月6日"
        );
        assert_eq!(scalar(Lang::En, &serde_json::json!(0.25)), "0.250");
    }
}
