//! Per-customer features as of a cutoff time, from the store's [`Dataset`].
//!
//! Why one pipeline: churn (and any other per-customer model) must see the
//! same features at training time (cutoff in the past, label after it) and at
//! scoring time (cutoff = now), and must never see the future. Every fact
//! feeds a feature only when its time is **strictly before** the cutoff; facts
//! without a time are left out (they cannot be placed before the cutoff).
//! Labels are computed elsewhere (see `churn`) from facts at or after it.
//!
//! The column set depends only on the catalogue and the customers'
//! attributes, never on the cutoff, so a model trained at one cutoff can
//! score at another (columns are matched by name; a missing one counts as 0).
//! Each column carries a group and a wording template so a model's per-column
//! contributions can be turned into reasons a person can act on.
//!
//! Feedback texts count through their sentiment (see
//! [`infogap_models::text`], English and Chinese): how many texts, how many
//! negative (in total and in the recent window), their share and the mean
//! score (group `sentiment`); [`FeatureOptions::without`] leaves whole
//! families out, so what they add can be measured.
//!
//! Blank handling: a customer with no survey (review, rating) gets the mean
//! of the customers who have one at the same cutoff, and a `has_*` flag says
//! whether it was observed; attributes missing for a customer get all-zero
//! one-hot columns (numeric attributes: the mean). Text attributes with more
//! than 3 × `max_attr_levels` distinct values (ids, free text) or named like
//! personal identifiers (`*name*`, `*mail*`, `*phone*`, `*address*`) are left
//! out; the others keep their `max_attr_levels` most frequent levels.

use std::collections::{BTreeMap, HashMap};

use infogap_core::dataset::{AttrValue, Dataset, IdIndex};
use serde::{Deserialize, Serialize};

/// Seconds per day.
pub const DAY: i64 = 86_400;

/// Options of the pipeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureOptions {
    /// Length of the "recent" window for counts and the trend (days).
    pub recent_days: i64,
    /// How many product categories get a spend-share column.
    pub top_categories: usize,
    /// How many levels of a text attribute get a one-hot column (most frequent first).
    pub max_attr_levels: usize,
    /// Attributes to leave out (e.g. the churn label itself).
    pub exclude_attributes: Vec<String>,
    /// Feature families to leave out: `sentiment` (the texts' sentiment),
    /// `scores` (ticket counts, survey and review scores), `feedback`
    /// (both). For ablations: what a family adds to a model.
    #[serde(default)]
    pub without: Vec<String>,
}

/// The families [`FeatureOptions::without`] takes, and their column groups.
pub const FAMILIES: [(&str, &[&str]); 3] = [
    ("sentiment", &["sentiment"]),
    ("scores", &["tickets", "survey", "review"]),
    ("feedback", &["tickets", "survey", "review", "sentiment"]),
];

/// Checks the names of feature families to leave out.
pub fn check_families(names: &[String]) -> Result<(), String> {
    for n in names {
        if !FAMILIES.iter().any(|(f, _)| f == n) {
            return Err(format!(
                "unknown feature family {n:?}; families: {}",
                FAMILIES.map(|f| f.0).join(", ")
            ));
        }
    }
    Ok(())
}

/// Whether a column group is left out by the families `without`.
fn left_out(group: &str, without: &[String]) -> bool {
    FAMILIES
        .iter()
        .any(|(f, groups)| without.iter().any(|w| w == f) && groups.contains(&group))
}

impl Default for FeatureOptions {
    fn default() -> Self {
        FeatureOptions {
            recent_days: 90,
            top_categories: 8,
            max_attr_levels: 12,
            exclude_attributes: Vec::new(),
            without: Vec::new(),
        }
    }
}

/// One feature column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureColumn {
    /// Column name (`tickets_recent`, `attr:age_band=30-39`, …).
    pub name: String,
    /// Columns of one group are explained together (the levels of one attribute).
    pub group: String,
    /// Wording with `{n}` (integer), `{x}` (one decimal), `{pct}` (percent) or
    /// `{level}` placeholders, e.g. `{n} support tickets in the last 90 days`.
    pub template: String,
}

/// Feature matrix of many customers as of one cutoff.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureTable {
    /// Cutoff (Unix seconds): only facts strictly before it were used.
    pub cutoff: i64,
    /// Customer ids (rows), as in `Dataset.customers[].id`.
    pub customers: Vec<i64>,
    /// Display keys of the customers.
    pub keys: Vec<String>,
    /// The columns.
    pub columns: Vec<FeatureColumn>,
    /// Row-major values, `customers.len() × columns.len()`.
    pub data: Vec<f64>,
}

impl FeatureTable {
    /// Value of customer row `i`, column `j`.
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.columns.len() + j]
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f64] {
        let d = self.columns.len();
        &self.data[i * d..(i + 1) * d]
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// Column names.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }

    /// The rows re-ordered to the given column names (missing columns are 0).
    pub fn aligned(&self, names: &[String]) -> Vec<f64> {
        let idx: Vec<Option<usize>> = names.iter().map(|n| self.column(n)).collect();
        let mut out = Vec::with_capacity(self.customers.len() * names.len());
        for i in 0..self.customers.len() {
            let r = self.row(i);
            out.extend(idx.iter().map(|k| k.map_or(0.0, |k| r[k])));
        }
        out
    }
}

/// `value` rounded to `decimals` places, with a negative zero turned into 0
/// (so `-0.04` renders as `0.0`, never `-0.0`).
fn rounded(value: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    let r = (value * f).round() / f;
    if r == 0.0 { 0.0 } else { r }
}

/// A number for people with `decimals` places, never as a negative zero
/// (`-0.3` with no decimals is `0`, not `-0`).
pub fn fixed(value: f64, decimals: usize) -> String {
    format!("{:.decimals$}", rounded(value, decimals as i32))
}

/// Renders a column's template with a value: `{n}` (integer), `{x}` (one
/// decimal), `{pct}` (percent), `{s}` (plural s when `{n}` is not 1). A value
/// that rounds to zero renders without a sign.
pub fn render(template: &str, value: f64) -> String {
    let n: String = if value.is_finite() {
        format!("{}", rounded(value, 0))
    } else {
        "?".into()
    };
    template
        .replace("{n}", &n)
        .replace("{x}", &format!("{:.1}", rounded(value, 1)))
        .replace("{pct}", &format!("{:.0}%", rounded(value * 100.0, 0)))
        .replace("{s}", if n == "1" { "" } else { "s" })
}

/// The wording of one column's value for a person, or `None` when that value
/// cannot mean what the column's words say, so it must not be offered as a
/// reason: a buying rhythm of a customer with fewer than two orders (its gap
/// columns are placeholders), a survey score that was imputed because the
/// customer never answered one, an "irregular buying" of 0 days. Zero and
/// negative values get words of their own ("nothing spent in the last 90
/// days", "net refunds of 12.0 …", "order count fell by 2"). `other` reads
/// another column of the same row by name.
pub fn phrase(
    col: &FeatureColumn,
    value: f64,
    other: &dyn Fn(&str) -> Option<f64>,
) -> Option<String> {
    phrase_in(Wording::En, col, value, other)
}

/// The language of a reason's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    /// English (the column templates).
    En,
    /// Simplified Chinese.
    Zh,
}

/// The recent window of a column, read from its English template ("… in
/// the last 90 days" → 90).
fn window_days(template: &str) -> Option<u32> {
    let rest = template.split("last ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// The Chinese template of a column (same placeholders as the English
/// one, plus the window already filled in).
fn zh_template(col: &FeatureColumn) -> String {
    let r = window_days(&col.template).map_or_else(String::new, |d| d.to_string());
    let name = col.name.as_str();
    if let Some(cat) = name.strip_prefix("share:") {
        return format!("{{pct}} 的消费用于 {cat}");
    }
    if let Some(attr) = name.strip_prefix("attr:") {
        return match attr.split_once('=') {
            Some((a, l)) => format!("{a} 为 {l}"),
            None => format!("{attr} 为 {{x}}"),
        };
    }
    match name {
        "recency_days" => "已 {n} 天未购买".into(),
        "frequency" => "共 {n} 笔订单".into(),
        "monetary_total" => "累计消费 {x}".into(),
        "avg_order_value" => "平均订单金额 {x}".into(),
        "tenure_days" => "成为客户已 {n} 天".into(),
        "ipt_mean_days" => "平均每 {n} 天购买一次".into(),
        "ipt_std_days" => "购买不规律（间隔相差 {n} 天）".into(),
        "overdue_ratio" => "距上次购买已是平时间隔的 {x} 倍".into(),
        "orders_recent" => format!("最近 {r} 天 {{n}} 笔订单"),
        "orders_prior" => format!("再之前 {r} 天 {{n}} 笔订单"),
        "order_trend" => format!("订单数变化 {{n}}（最近 {r} 天对比之前 {r} 天）"),
        "spend_recent" => format!("最近 {r} 天消费 {{x}}"),
        "spend_trend" => format!("消费变化 {{x}}（最近 {r} 天对比之前 {r} 天）"),
        "basket_items" => "平均每单 {x} 件商品".into(),
        "category_breadth" => "购买过 {n} 个品类".into(),
        "discount_share" => "{pct} 的标价金额享受了折扣".into(),
        "exposures" => "收到 {n} 次营销活动".into(),
        "exposures_recent" => format!("最近 {r} 天收到 {{n}} 次营销活动"),
        "redemptions" => "参与了 {n} 次营销活动".into(),
        "redemption_rate" => "参与了所收到营销活动的 {pct}".into(),
        "tickets" => "共 {n} 张客服工单或投诉".into(),
        "tickets_recent" => format!("最近 {r} 天 {{n}} 张客服工单"),
        "survey_mean" => "问卷平均得分 {x}".into(),
        "survey_last" => "最近一次问卷得分 {x}".into(),
        "has_survey" => "回答过问卷".into(),
        "review_mean" => "评价平均得分 {x}".into(),
        "review_last" => "最近一次评价得分 {x}".into(),
        "has_review" => "写过评价".into(),
        "rating_mean" => "商品平均评分 {x}".into(),
        "ratings" => "{n} 次商品评分".into(),
        "texts" => "共 {n} 条带文字的反馈或工单".into(),
        "negative_texts" => "共 {n} 条负面反馈或工单".into(),
        "negative_recent" => format!("最近 {r} 天 {{n}} 条负面反馈或工单"),
        "negative_share" => "{pct} 的反馈为负面".into(),
        "sentiment_mean" => "反馈平均情感得分 {x}（-1 到 1）".into(),
        "events" => "共 {n} 次网站/应用事件".into(),
        "events_recent" => format!("最近 {r} 天 {{n}} 次网站/应用事件"),
        "web_recent" => format!("最近 {r} 天 {{n}} 次网站事件"),
        "app_recent" => format!("最近 {r} 天 {{n}} 次应用事件"),
        // a column of a newer build: its English words
        _ => col.template.clone(),
    }
}

/// [`phrase`] in a language: the same cases (what cannot be worded
/// truthfully is `None` in every language), the words of `lang`.
pub fn phrase_in(
    lang: Wording,
    col: &FeatureColumn,
    value: f64,
    other: &dyn Fn(&str) -> Option<f64>,
) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    let zh = lang == Wording::Zh;
    let w = |en: String, zh_text: String| if zh { zh_text } else { en };
    let orders = other("frequency");
    let is_zero = |digits: i32| rounded(value, digits) == 0.0;
    // "… in the last 90 days" of the template, for the zero and negative wordings
    let window = col
        .template
        .split(" in the last ")
        .nth(1)
        .map(|rest| format!("in the last {rest}"))
        .unwrap_or_default();
    let window_zh = window_days(&col.template).map(|d| format!("最近 {d} 天"));
    let change = |what: &str, what_zh: &str, decimals: i32| {
        let v = rounded(value, decimals);
        let amount = if decimals == 0 {
            format!("{}", v.abs())
        } else {
            format!("{:.1}", v.abs())
        };
        let period = col
            .template
            .split(" (")
            .nth(1)
            .map(|p| format!(" ({p}"))
            .unwrap_or_default();
        let period_zh = window_days(&col.template)
            .map(|d| format!("（最近 {d} 天对比之前 {d} 天）"))
            .unwrap_or_default();
        let (en, zh_text) = if v == 0.0 {
            (
                format!("{what} unchanged{period}"),
                format!("{what_zh}不变{period_zh}"),
            )
        } else if v < 0.0 {
            (
                format!("{what} fell by {amount}{period}"),
                format!("{what_zh}减少 {amount}{period_zh}"),
            )
        } else {
            (
                format!("{what} rose by {amount}{period}"),
                format!("{what_zh}增加 {amount}{period_zh}"),
            )
        };
        w(en, zh_text)
    };
    let name = col.name.as_str();
    // flags of observed scores: the scores are imputed when the flag is 0
    let observed = |flag: &str| other(flag).is_none_or(|v| v > 0.5);
    let fixed_words = |en: &str, zh_text: &str| w(en.into(), zh_text.into());
    Some(match name {
        // gap columns hold placeholders until there are two orders (one gap),
        // and a spread until there are three (two gaps)
        "ipt_mean_days" | "overdue_ratio" if orders.is_some_and(|k| k < 2.0) => return None,
        "ipt_std_days" if orders.is_some_and(|k| k < 3.0) => return None,
        "ipt_std_days" if is_zero(0) => fixed_words(
            "orders at very regular intervals (gaps vary by less than a day)",
            "购买间隔非常规律（相差不到一天）",
        ),
        "ipt_std_days" => w(
            render("gaps between orders vary by {n} days", value),
            render("购买间隔相差 {n} 天", value),
        ),
        "frequency" if is_zero(0) => fixed_words("no orders yet", "尚无订单"),
        "avg_order_value" | "basket_items" | "category_breadth"
            if orders.is_some_and(|k| k < 1.0) || is_zero(1) =>
        {
            return None;
        }
        "monetary_total" | "spend_recent" if is_zero(1) => w(
            format!(
                "nothing spent{}",
                if window.is_empty() {
                    " yet".into()
                } else {
                    format!(" {window}")
                }
            ),
            match &window_zh {
                Some(d) => format!("{d}没有消费"),
                None => "尚无消费".into(),
            },
        ),
        "monetary_total" | "spend_recent" if value < 0.0 => w(
            format!(
                "net refunds of {:.1}{}",
                -rounded(value, 1),
                if window.is_empty() {
                    " in total".into()
                } else {
                    format!(" {window}")
                }
            ),
            format!(
                "{}净退款 {:.1}",
                window_zh.as_deref().unwrap_or("累计"),
                -rounded(value, 1)
            ),
        ),
        "orders_recent" | "orders_prior" | "events" | "events_recent" | "web_recent"
        | "app_recent" | "exposures" | "exposures_recent" | "redemptions" | "tickets"
        | "tickets_recent" | "ratings" | "texts" | "negative_texts" | "negative_recent"
            if is_zero(0) =>
        {
            // "{n} web event{s} in the last 90 days" → "no web events in the last 90 days"
            w(
                col.template.replace("{n}", "no").replace("{s}", "s"),
                render(&zh_template(col), 0.0),
            )
        }
        "order_trend" => change("order count", "订单数", 0),
        "spend_trend" => change("spend", "消费", 1),
        "redemption_rate" if other("exposures").is_some_and(|e| e < 1.0) => return None,
        "survey_mean" | "survey_last" if !observed("has_survey") => {
            fixed_words("has not answered a survey", "未回答过问卷")
        }
        "review_mean" | "review_last" if !observed("has_review") => {
            fixed_words("has not written a review", "未写过评价")
        }
        "rating_mean" if other("ratings").is_some_and(|r| r < 1.0) => {
            fixed_words("has not rated a product", "未给商品评过分")
        }
        "negative_share" | "sentiment_mean" if other("texts").is_some_and(|n| n < 1.0) => {
            return None;
        }
        "has_survey" if is_zero(0) => fixed_words("has not answered a survey", "未回答过问卷"),
        "has_review" if is_zero(0) => fixed_words("has not written a review", "未写过评价"),
        "discount_share" if is_zero(2) => fixed_words("used no discounts", "未使用折扣"),
        _ if name.starts_with("share:") && orders.is_some_and(|k| k < 1.0) => return None,
        _ => w(
            render(&col.template, value),
            render(&zh_template(col), value),
        ),
    })
}

#[derive(Default)]
struct Acc {
    orders: Vec<(i64, f64, f64)>, // time, amount, discount
    tickets: Vec<i64>,
    /// Texts: time, sentiment score, negative?
    texts: Vec<(i64, f64, bool)>,
    surveys: Vec<(i64, f64)>,
    reviews: Vec<(i64, f64)>,
    ratings: Vec<f64>,
    events: Vec<(i64, Option<String>)>,
    exposures: Vec<i64>,
    redemptions: Vec<i64>,
    first_seen: Option<i64>,
}

fn is_ticket(kind: &str) -> bool {
    let k = kind.to_ascii_lowercase();
    k.contains("ticket") || k.contains("complaint") || k.contains("support")
}

fn col(name: &str, group: &str, template: &str) -> FeatureColumn {
    FeatureColumn {
        name: name.into(),
        group: group.into(),
        template: template.into(),
    }
}

/// The columns the pipeline produces for this data set (cutoff-independent),
/// without the families `opts.without` leaves out.
pub fn feature_columns(ds: &Dataset, opts: &FeatureOptions) -> Vec<FeatureColumn> {
    let mut c = all_columns(ds, opts);
    c.retain(|c| !left_out(&c.group, &opts.without));
    c
}

/// Every column of this data set, in the order rows are built.
fn all_columns(ds: &Dataset, opts: &FeatureOptions) -> Vec<FeatureColumn> {
    let r = opts.recent_days;
    let mut c = vec![
        col("recency_days", "recency_days", "no purchase for {n} days"),
        col("frequency", "frequency", "{n} order{s} in total"),
        col("monetary_total", "monetary_total", "spent {x} in total"),
        col(
            "avg_order_value",
            "avg_order_value",
            "average order value {x}",
        ),
        col("tenure_days", "tenure_days", "customer for {n} days"),
        col(
            "ipt_mean_days",
            "ipt_mean_days",
            "buys every {n} days on average",
        ),
        col(
            "ipt_std_days",
            "ipt_std_days",
            "irregular buying (gap varies by {n} days)",
        ),
        col(
            "overdue_ratio",
            "overdue_ratio",
            "last purchase {x}× their usual gap ago",
        ),
        col(
            "orders_recent",
            "order_trend",
            &format!("{{n}} order{{s}} in the last {r} days"),
        ),
        col(
            "orders_prior",
            "order_trend",
            &format!("{{n}} order{{s}} in the {r} days before that"),
        ),
        col(
            "order_trend",
            "order_trend",
            &format!("order count changed by {{n}} (last {r} days vs the {r} before)"),
        ),
        col(
            "spend_recent",
            "spend_trend",
            &format!("spent {{x}} in the last {r} days"),
        ),
        col(
            "spend_trend",
            "spend_trend",
            &format!("spend changed by {{x}} (last {r} days vs the {r} before)"),
        ),
        col(
            "basket_items",
            "basket_items",
            "{x} items per order on average",
        ),
        col(
            "category_breadth",
            "category_breadth",
            "bought from {n} categories",
        ),
        col(
            "discount_share",
            "discount_share",
            "{pct} of list value was discounted",
        ),
        col("exposures", "campaigns", "received {n} campaign{s}"),
        col(
            "exposures_recent",
            "campaigns",
            &format!("received {{n}} campaign{{s}} in the last {r} days"),
        ),
        col("redemptions", "redemptions", "redeemed {n} campaign{s}"),
        col(
            "redemption_rate",
            "redemptions",
            "redeemed {pct} of campaigns received",
        ),
        col(
            "tickets",
            "tickets",
            "{n} support ticket{s} or complaint{s} in total",
        ),
        col(
            "tickets_recent",
            "tickets",
            &format!("{{n}} support ticket{{s}} in the last {r} days"),
        ),
        col("survey_mean", "survey", "average survey score {x}"),
        col("survey_last", "survey", "last survey score {x}"),
        col("has_survey", "survey", "answered a survey"),
        col("review_mean", "review", "average review score {x}"),
        col("review_last", "review", "last review score {x}"),
        col("has_review", "review", "wrote a review"),
        col("rating_mean", "rating", "average product rating {x}"),
        col("ratings", "rating", "{n} product rating{s}"),
        col("events", "activity", "{n} web/app event{s} in total"),
        col(
            "events_recent",
            "activity",
            &format!("{{n}} web/app event{{s}} in the last {r} days"),
        ),
        col(
            "web_recent",
            "activity",
            &format!("{{n}} web event{{s}} in the last {r} days"),
        ),
        col(
            "app_recent",
            "activity",
            &format!("{{n}} app event{{s}} in the last {r} days"),
        ),
        col(
            "texts",
            "sentiment",
            "{n} comment{s} or ticket{s} with text",
        ),
        col(
            "negative_texts",
            "sentiment",
            "{n} negative comment{s} or ticket{s} in total",
        ),
        col(
            "negative_recent",
            "sentiment",
            &format!("{{n}} negative comment{{s}} or ticket{{s}} in the last {r} days"),
        ),
        col(
            "negative_share",
            "sentiment",
            "{pct} of their comments and tickets were negative",
        ),
        col(
            "sentiment_mean",
            "sentiment",
            "average sentiment of their comments {x} (-1 to 1)",
        ),
    ];
    for cat in top_categories(ds, opts.top_categories) {
        c.push(col(
            &format!("share:{cat}"),
            &format!("share:{cat}"),
            &format!("{{pct}} of spend on {cat}"),
        ));
    }
    for (name, levels) in attribute_layout(ds, opts) {
        match levels {
            None => c.push(col(
                &format!("attr:{name}"),
                &format!("attr:{name}"),
                &format!("{name} is {{x}}"),
            )),
            Some(lv) => {
                for l in lv {
                    c.push(col(
                        &format!("attr:{name}={l}"),
                        &format!("attr:{name}"),
                        &format!("{name} is {l}"),
                    ));
                }
            }
        }
    }
    c
}

/// Categories by number of catalogue products (then name), at most `k`.
fn top_categories(ds: &Dataset, k: usize) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &ds.products {
        if let Some(c) = p.category.as_deref() {
            *count.entry(c).or_default() += 1;
        }
    }
    let mut v: Vec<(&str, usize)> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    v.into_iter().take(k).map(|(c, _)| c.to_string()).collect()
}

/// Each attribute: `None` = numeric, `Some(levels)` = one-hot text levels.
fn attribute_layout(ds: &Dataset, opts: &FeatureOptions) -> Vec<(String, Option<Vec<String>>)> {
    let mut by_name: BTreeMap<&str, Vec<&AttrValue>> = BTreeMap::new();
    for c in &ds.customers {
        for (k, v) in &c.attributes {
            if opts.exclude_attributes.iter().any(|e| e == k) {
                continue;
            }
            by_name.entry(k.as_str()).or_default().push(v);
        }
    }
    let mut out = Vec::new();
    for (name, vals) in by_name {
        let numeric = vals.iter().all(|v| v.as_f64().is_some())
            && !vals.iter().all(|v| matches!(v, AttrValue::Bool(_)));
        if numeric {
            out.push((name.to_string(), None));
        } else {
            let mut cnt: BTreeMap<String, usize> = BTreeMap::new();
            for v in &vals {
                *cnt.entry(v.as_text()).or_default() += 1;
            }
            // high-cardinality text (ids, free text) and personal identifiers
            // (names, e-mail, phone, address) are not features
            let lname = name.to_ascii_lowercase();
            let personal = ["name", "email", "mail", "phone", "address", "street"]
                .iter()
                .any(|p| lname.contains(p));
            if personal || cnt.len() > opts.max_attr_levels.max(1) * 3 {
                continue;
            }
            let mut lv: Vec<(String, usize)> = cnt.into_iter().collect();
            lv.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            out.push((
                name.to_string(),
                Some(
                    lv.into_iter()
                        .take(opts.max_attr_levels)
                        .map(|x| x.0)
                        .collect(),
                ),
            ));
        }
    }
    out
}

fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / v.len() as f64;
    (m, var.sqrt())
}

/// Builds features of every customer as of `cutoff` (Unix seconds). Only facts
/// with `time < cutoff` are used.
pub fn build_features(ds: &Dataset, cutoff: i64, opts: &FeatureOptions) -> FeatureTable {
    let columns = all_columns(ds, opts);
    let n = ds.customers.len();
    let index = ds.customer_index();
    let mut acc: Vec<Acc> = (0..n).map(|_| Acc::default()).collect();
    let before = |t: Option<i64>| t.filter(|&t| t < cutoff);
    let seen = |a: &mut Acc, t: i64| a.first_seen = Some(a.first_seen.map_or(t, |f| f.min(t)));
    for o in &ds.orders {
        if let (Some(t), Some(i)) = (before(o.time), index.pos(o.customer)) {
            acc[i].orders.push((t, o.amount, o.discount));
            seen(&mut acc[i], t);
        }
    }
    // the dated lines before the cutoff, grouped by customer (a stable
    // counting sort: each customer's lines keep their store order, so every
    // sum adds in the same order as before)
    let line_customer: Vec<Option<usize>> = ds
        .lines
        .iter()
        .map(|l| before(l.time).and(index.pos(l.customer)))
        .collect();
    let mut line_start = vec![0usize; n + 1];
    for c in line_customer.iter().flatten() {
        line_start[c + 1] += 1;
    }
    for i in 0..n {
        line_start[i + 1] += line_start[i];
    }
    let mut by_customer = vec![0u32; line_start[n]];
    let mut fill = line_start.clone();
    for (li, c) in line_customer.iter().enumerate() {
        if let Some(c) = c {
            by_customer[fill[*c]] = li as u32;
            fill[*c] += 1;
        }
    }
    for f in &ds.feedback {
        if let (Some(t), Some(i)) = (before(f.time), index.pos(f.customer)) {
            let a = &mut acc[i];
            seen(a, t);
            if let Some(text) = f.text.as_deref().filter(|x| !x.trim().is_empty()) {
                let s = infogap_models::text::sentiment(text);
                a.texts.push((
                    t,
                    s.score,
                    s.polarity == infogap_models::text::Polarity::Negative,
                ));
            }
            let k = f.kind.to_ascii_lowercase();
            if is_ticket(&k) {
                a.tickets.push(t);
            } else if let Some(s) = f.score.filter(|s| s.is_finite()) {
                if k.contains("review") {
                    a.reviews.push((t, s));
                } else {
                    a.surveys.push((t, s));
                }
            }
        }
    }
    for e in &ds.events {
        if let (Some(t), Some(i)) = (before(e.time), index.pos(e.customer)) {
            let a = &mut acc[i];
            seen(a, t);
            if e.kind.eq_ignore_ascii_case("rating") {
                if let Some(v) = e.value.filter(|v| v.is_finite()) {
                    a.ratings.push(v);
                }
            } else {
                a.events
                    .push((t, e.channel.as_ref().map(|c| c.to_ascii_lowercase())));
            }
        }
    }
    for x in &ds.exposures {
        if let (Some(t), Some(i)) = (before(x.time), index.pos(x.customer)) {
            acc[i].exposures.push(t);
        }
    }
    for x in &ds.redemptions {
        if let (Some(t), Some(i)) = (before(x.time), index.pos(x.customer)) {
            acc[i].redemptions.push(t);
        }
    }
    // categories as dense indices: one array read per line
    let mut cat_ix: HashMap<&str, usize> = HashMap::new();
    let mut cat_pairs: Vec<(i64, i64)> = Vec::new();
    for p in &ds.products {
        if let Some(c) = p.category.as_deref() {
            let next = cat_ix.len();
            let ix = *cat_ix.entry(c).or_insert(next);
            cat_pairs.push((p.id, ix as i64));
        }
    }
    let product_cat = IdIndex::new(cat_pairs.into_iter());
    let mut cat_spend = vec![0.0f64; cat_ix.len()];
    let mut cat_seen = vec![false; cat_ix.len()];
    let mut touched: Vec<usize> = Vec::new();
    let cats = top_categories(ds, opts.top_categories);
    let top_cat_ix: Vec<Option<usize>> = cats
        .iter()
        .map(|c| cat_ix.get(c.as_str()).copied())
        .collect();
    let attrs = attribute_layout(ds, opts);
    // earliest fact overall (for customers with no order: recency = whole history)
    let horizon_days = {
        let first = ds
            .orders
            .iter()
            .filter_map(|o| before(o.time))
            .min()
            .unwrap_or(cutoff);
        ((cutoff - first) as f64 / DAY as f64).max(1.0)
    };
    let recent = opts.recent_days * DAY;
    let days = |s: i64| s as f64 / DAY as f64;

    // population means for blank scores and numeric attributes
    let mean_of = |f: &dyn Fn(&Acc) -> Option<f64>| {
        let v: Vec<f64> = acc.iter().filter_map(f).collect();
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let survey_fill = mean_of(&|a| {
        mean_std(&a.surveys.iter().map(|s| s.1).collect::<Vec<_>>())
            .0
            .into_some(!a.surveys.is_empty())
    });
    let review_fill = mean_of(&|a| {
        mean_std(&a.reviews.iter().map(|s| s.1).collect::<Vec<_>>())
            .0
            .into_some(!a.reviews.is_empty())
    });
    let rating_fill = mean_of(&|a| mean_std(&a.ratings).0.into_some(!a.ratings.is_empty()));
    let attr_fill: HashMap<&str, f64> = attrs
        .iter()
        .filter(|(_, lv)| lv.is_none())
        .map(|(name, _)| {
            let v: Vec<f64> = ds
                .customers
                .iter()
                .filter_map(|c| c.attributes.get(name).and_then(AttrValue::as_f64))
                .collect();
            (name.as_str(), mean_std(&v).0)
        })
        .collect();

    let d = columns.len();
    let mut data = Vec::with_capacity(n * d);
    for (ci, a) in acc.iter_mut().enumerate() {
        let start = data.len();
        a.orders.sort_by_key(|o| o.0);
        let k = a.orders.len();
        let times: Vec<i64> = a.orders.iter().map(|o| o.0).collect();
        let total: f64 = a.orders.iter().map(|o| o.1).sum();
        let disc: f64 = a.orders.iter().map(|o| o.2).sum();
        let recency = times.last().map_or(horizon_days, |&t| days(cutoff - t));
        let tenure = a.first_seen.map_or(0.0, |t| days(cutoff - t));
        let gaps: Vec<f64> = times.windows(2).map(|w| days(w[1] - w[0])).collect();
        let (ipt_mean, ipt_std) = if gaps.is_empty() {
            (tenure.max(recency), 0.0)
        } else {
            mean_std(&gaps)
        };
        let overdue = recency / ipt_mean.max(1.0);
        let recent_n = times.iter().filter(|&&t| t >= cutoff - recent).count() as f64;
        let prior_n = times
            .iter()
            .filter(|&&t| t >= cutoff - 2 * recent && t < cutoff - recent)
            .count() as f64;
        let spend_recent: f64 = a
            .orders
            .iter()
            .filter(|o| o.0 >= cutoff - recent)
            .map(|o| o.1)
            .sum();
        let spend_prior: f64 = a
            .orders
            .iter()
            .filter(|o| o.0 >= cutoff - 2 * recent && o.0 < cutoff - recent)
            .map(|o| o.1)
            .sum();
        let my_lines = &by_customer[line_start[ci]..line_start[ci + 1]];
        let mut order_ids: Vec<i64> = my_lines
            .iter()
            .map(|&li| ds.lines[li as usize].order)
            .collect();
        order_ids.sort_unstable();
        order_ids.dedup();
        let qty: f64 = my_lines
            .iter()
            .map(|&li| ds.lines[li as usize].quantity)
            .sum();
        let basket = if order_ids.is_empty() {
            0.0
        } else {
            qty / order_ids.len() as f64
        };
        for c in touched.drain(..) {
            cat_spend[c] = 0.0;
            cat_seen[c] = false;
        }
        let mut line_total = 0.0;
        for &li in my_lines {
            let l = &ds.lines[li as usize];
            line_total += l.amount;
            if let Some(c) = l.product.and_then(|p| product_cat.pos(p)) {
                if !cat_seen[c] {
                    cat_seen[c] = true;
                    touched.push(c);
                }
                cat_spend[c] += l.amount;
            }
        }
        let breadth = touched.len() as f64;
        a.tickets.sort_unstable();
        let tickets_recent = a.tickets.iter().filter(|&&t| t >= cutoff - recent).count() as f64;
        a.surveys.sort_by_key(|s| s.0);
        a.reviews.sort_by_key(|s| s.0);
        let sv: Vec<f64> = a.surveys.iter().map(|s| s.1).collect();
        let rv: Vec<f64> = a.reviews.iter().map(|s| s.1).collect();
        let exposures_recent = a
            .exposures
            .iter()
            .filter(|&&t| t >= cutoff - recent)
            .count() as f64;
        let ev_recent: Vec<&Option<String>> = a
            .events
            .iter()
            .filter(|e| e.0 >= cutoff - recent)
            .map(|e| &e.1)
            .collect();
        let web = ev_recent
            .iter()
            .filter(|c| c.as_deref().is_some_and(|c| c.contains("web")))
            .count() as f64;
        let app = ev_recent
            .iter()
            .filter(|c| {
                c.as_deref()
                    .is_some_and(|c| c.contains("app") || c.contains("mobile"))
            })
            .count() as f64;
        let n_exp = a.exposures.len() as f64;
        let n_red = a.redemptions.len() as f64;
        let n_texts = a.texts.len() as f64;
        let n_negative = a.texts.iter().filter(|x| x.2).count() as f64;
        let negative_recent = a
            .texts
            .iter()
            .filter(|x| x.2 && x.0 >= cutoff - recent)
            .count() as f64;
        let sentiment_mean = if a.texts.is_empty() {
            0.0
        } else {
            a.texts.iter().map(|x| x.1).sum::<f64>() / n_texts
        };
        data.extend_from_slice(&[
            recency,
            k as f64,
            total,
            if k > 0 { total / k as f64 } else { 0.0 },
            tenure,
            ipt_mean,
            ipt_std,
            overdue,
            recent_n,
            prior_n,
            recent_n - prior_n,
            spend_recent,
            spend_recent - spend_prior,
            basket,
            breadth,
            if total + disc > 0.0 {
                disc / (total + disc)
            } else {
                0.0
            },
            n_exp,
            exposures_recent,
            n_red,
            if n_exp > 0.0 {
                (n_red / n_exp).min(1.0)
            } else {
                0.0
            },
            a.tickets.len() as f64,
            tickets_recent,
            if sv.is_empty() {
                survey_fill
            } else {
                mean_std(&sv).0
            },
            sv.last().copied().unwrap_or(survey_fill),
            f64::from(u8::from(!sv.is_empty())),
            if rv.is_empty() {
                review_fill
            } else {
                mean_std(&rv).0
            },
            rv.last().copied().unwrap_or(review_fill),
            f64::from(u8::from(!rv.is_empty())),
            if a.ratings.is_empty() {
                rating_fill
            } else {
                mean_std(&a.ratings).0
            },
            a.ratings.len() as f64,
            a.events.len() as f64,
            ev_recent.len() as f64,
            web,
            app,
            n_texts,
            n_negative,
            negative_recent,
            if n_texts > 0.0 {
                n_negative / n_texts
            } else {
                0.0
            },
            sentiment_mean,
        ]);
        for c in &top_cat_ix {
            let s = c.map_or(0.0, |c| cat_spend[c]);
            data.push(if line_total > 0.0 {
                s / line_total
            } else {
                0.0
            });
        }
        let cust = &ds.customers[ci];
        for (name, levels) in &attrs {
            let v = cust.attributes.get(name);
            match levels {
                None => data.push(
                    v.and_then(AttrValue::as_f64)
                        .unwrap_or_else(|| attr_fill.get(name.as_str()).copied().unwrap_or(0.0)),
                ),
                Some(lv) => {
                    let t = v.map(AttrValue::as_text);
                    for l in lv {
                        data.push(f64::from(u8::from(t.as_deref() == Some(l.as_str()))));
                    }
                }
            }
        }
        debug_assert_eq!(data.len() - start, d);
    }
    // the families left out: their columns dropped from every row
    let keep: Vec<bool> = columns
        .iter()
        .map(|c| !left_out(&c.group, &opts.without))
        .collect();
    let (columns, data) = if keep.iter().all(|&k| k) {
        (columns, data)
    } else {
        let data = data
            .chunks(d.max(1))
            .flat_map(|row| row.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| *v))
            .collect();
        let columns = columns
            .into_iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(c, _)| c)
            .collect();
        (columns, data)
    };
    FeatureTable {
        cutoff,
        customers: ds.customers.iter().map(|c| c.id).collect(),
        keys: ds.customers.iter().map(|c| c.key.clone()).collect(),
        columns,
        data,
    }
}

trait IntoSome {
    fn into_some(self, ok: bool) -> Option<f64>;
}
impl IntoSome for f64 {
    fn into_some(self, ok: bool) -> Option<f64> {
        ok.then_some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use infogap_core::dataset::*;

    const T0: i64 = 1_700_000_000;

    fn small() -> Dataset {
        let mut attrs = BTreeMap::new();
        attrs.insert("age_band".to_string(), AttrValue::Text("30-39".into()));
        let customers = vec![
            CustomerInfo {
                id: 1,
                key: "c:1".into(),
                attributes: attrs,
            },
            CustomerInfo {
                id: 2,
                key: "c:2".into(),
                attributes: BTreeMap::new(),
            },
        ];
        let products = vec![ProductInfo {
            id: 10,
            key: "p10".into(),
            name: None,
            category: Some("Books".into()),
            price: None,
        }];
        let order = |id, c, day: i64, amount| OrderFact {
            id,
            customer: c,
            time: Some(T0 + day * DAY),
            amount,
            discount: 1.0,
        };
        let orders = vec![
            order(100, 1, 0, 10.0),
            order(101, 1, 30, 20.0),
            order(102, 1, 200, 30.0),
            order(103, 2, 5, 5.0),
        ];
        let lines = orders
            .iter()
            .map(|o| LineFact {
                order: o.id,
                customer: o.customer,
                product: Some(10),
                quantity: 2.0,
                amount: o.amount,
                discount: 1.0,
                time: o.time,
            })
            .collect();
        let fb = |c, kind: &str, day: i64, score| FeedbackFact {
            customer: c,
            kind: kind.into(),
            score,
            text: None,
            channel: None,
            time: Some(T0 + day * DAY),
        };
        let feedback = vec![
            fb(1, "ticket", 50, None),
            fb(1, "survey", 60, Some(2.0)),
            fb(1, "ticket", 250, None),
        ];
        let events = vec![EventFact {
            customer: 1,
            kind: "view".into(),
            product: Some(10),
            value: None,
            channel: Some("web".into()),
            time: Some(T0 + 150 * DAY),
        }];
        let campaigns = vec![CampaignInfo {
            id: 7,
            key: "k".into(),
            name: None,
            kind: None,
            start: None,
            end: None,
        }];
        let exposures = vec![CampaignFact {
            customer: 1,
            campaign: 7,
            time: Some(T0 + 40 * DAY),
        }];
        Dataset {
            customers,
            products,
            orders,
            lines,
            events,
            feedback,
            campaigns,
            exposures,
            redemptions: vec![],
        }
    }

    #[test]
    fn values_as_of_cutoff() {
        let ds = small();
        let cutoff = T0 + 220 * DAY;
        let f = build_features(&ds, cutoff, &FeatureOptions::default());
        let v = |name: &str| f.get(0, f.column(name).unwrap());
        assert_eq!(v("frequency"), 3.0);
        assert_eq!(v("recency_days"), 20.0);
        assert_eq!(v("monetary_total"), 60.0);
        assert_eq!(
            v("tickets"),
            1.0,
            "the ticket at day 250 is after the cutoff"
        );
        assert_eq!(v("survey_last"), 2.0);
        assert_eq!(v("orders_recent"), 1.0);
        assert_eq!(v("ipt_mean_days"), 100.0);
        assert_eq!(v("share:Books"), 1.0);
        assert_eq!(v("attr:age_band=30-39"), 1.0);
        assert_eq!(v("exposures"), 1.0);
        assert_eq!(v("web_recent"), 1.0);
        // customer 2 has no survey: filled with the mean of those who have one, flagged
        let c2 = |name: &str| f.get(1, f.column(name).unwrap());
        assert_eq!(c2("survey_mean"), 2.0);
        assert_eq!(c2("has_survey"), 0.0);
        assert_eq!(c2("attr:age_band=30-39"), 0.0);
        assert_eq!(render("{n} support ticket{s}", 3.2), "3 support tickets");
        assert_eq!(render("{n} order{s}", 1.0), "1 order");
        assert_eq!(render("{pct} of spend", 0.25), "25% of spend");
    }

    #[test]
    fn feedback_texts_count_through_their_sentiment() {
        let mut ds = small();
        let text = |c, kind: &str, day: i64, t: &str| FeedbackFact {
            customer: c,
            kind: kind.into(),
            score: None,
            text: Some(t.into()),
            channel: None,
            time: Some(T0 + day * DAY),
        };
        ds.feedback.extend([
            // negative, before the recent window (days 130 to 220)
            text(1, "ticket", 100, "Refund still not received"),
            // negative and recent, in Chinese
            text(1, "ticket", 150, "没有收到退款"),
            text(1, "forum", 160, "Great service, thank you!"),
            // after the cutoff: not seen
            text(1, "ticket", 230, "Item arrived damaged"),
            text(2, "ticket", 140, "Where is my invoice?"),
        ]);
        let cutoff = T0 + 220 * DAY;
        let f = build_features(&ds, cutoff, &FeatureOptions::default());
        let v = |row: usize, name: &str| f.get(row, f.column(name).expect(name));
        assert_eq!(v(0, "texts"), 3.0);
        assert_eq!(v(0, "negative_texts"), 2.0);
        assert_eq!(v(0, "negative_recent"), 1.0);
        assert!((v(0, "negative_share") - 2.0 / 3.0).abs() < 1e-12);
        assert!(v(0, "sentiment_mean") < 0.0, "{}", v(0, "sentiment_mean"));
        assert_eq!((v(1, "texts"), v(1, "negative_texts")), (1.0, 0.0));
        assert_eq!(v(1, "sentiment_mean"), 0.0);
        // worded only when it means something
        let col = |name: &str| f.columns[f.column(name).expect(name)].clone();
        let none = |_: &str| Some(0.0);
        assert_eq!(phrase(&col("negative_share"), 0.0, &none), None);
        assert_eq!(
            phrase(&col("negative_texts"), 0.0, &none).as_deref(),
            Some("no negative comments or tickets in total")
        );
        assert_eq!(
            phrase(&col("negative_recent"), 2.0, &none).as_deref(),
            Some("2 negative comments or tickets in the last 90 days")
        );
        assert_eq!(
            phrase_in(Wording::Zh, &col("negative_recent"), 2.0, &none).as_deref(),
            Some("最近 90 天 2 条负面反馈或工单")
        );

        // families left out: their columns go, every other value stays
        let without = |fam: &str| {
            build_features(
                &ds,
                cutoff,
                &FeatureOptions {
                    without: vec![fam.into()],
                    ..FeatureOptions::default()
                },
            )
        };
        let s = without("sentiment");
        assert_eq!(s.columns.len() + 5, f.columns.len());
        assert!(s.column("negative_texts").is_none() && s.column("tickets").is_some());
        let all = without("feedback");
        for gone in ["tickets", "survey_mean", "has_review", "negative_share"] {
            assert!(all.column(gone).is_none(), "{gone}");
        }
        assert!(all.column("rating_mean").is_some());
        let opts = FeatureOptions {
            without: vec!["sentiment".into()],
            ..FeatureOptions::default()
        };
        assert_eq!(feature_columns(&ds, &opts), s.columns);
        for t in [&s, &all] {
            for name in t.names() {
                for row in 0..2 {
                    assert_eq!(
                        t.get(row, t.column(&name).expect("kept")),
                        v(row, &name),
                        "{name} of row {row}"
                    );
                }
            }
        }
        let scores = without("scores");
        assert!(scores.column("tickets").is_none() && scores.column("negative_texts").is_some());
        assert!(check_families(&["feedback".into(), "sentiment".into()]).is_ok());
        assert!(check_families(&["weather".into()]).is_err());
    }

    #[test]
    fn no_leakage_moving_after_cutoff_facts_changes_nothing() {
        let ds = small();
        let cutoff = T0 + 220 * DAY;
        let base = build_features(&ds, cutoff, &FeatureOptions::default());
        // Move every after-cutoff fact somewhere else after the cutoff, change its
        // values, and add new after-cutoff facts of every kind.
        let mut moved = ds.clone();
        let later = |t: &mut Option<i64>| {
            if let Some(x) = t
                && *x >= cutoff
            {
                *x += 13 * DAY;
            }
        };
        for o in &mut moved.orders {
            if o.time.is_some_and(|t| t >= cutoff) {
                o.amount *= 7.0;
            }
            later(&mut o.time);
        }
        moved.lines.iter_mut().for_each(|l| later(&mut l.time));
        moved.feedback.iter_mut().for_each(|f| later(&mut f.time));
        let mut extra_order = moved.orders[0].clone();
        extra_order.id = 999;
        extra_order.time = Some(cutoff);
        moved.orders.push(extra_order);
        moved.feedback.push(FeedbackFact {
            customer: 2,
            kind: "ticket".into(),
            score: Some(1.0),
            text: None,
            channel: None,
            time: Some(cutoff + 1),
        });
        moved.events.push(EventFact {
            customer: 2,
            kind: "rating".into(),
            product: Some(10),
            value: Some(1.0),
            channel: Some("app".into()),
            time: Some(cutoff + 5),
        });
        moved.exposures.push(CampaignFact {
            customer: 2,
            campaign: 7,
            time: Some(cutoff),
        });
        moved.redemptions.push(CampaignFact {
            customer: 1,
            campaign: 7,
            time: Some(cutoff + DAY),
        });
        let after = build_features(&moved, cutoff, &FeatureOptions::default());
        assert_eq!(base.columns, after.columns);
        assert_eq!(base.data, after.data);
        // ...while moving one of them before the cutoff does change features.
        let mut leaked = moved.clone();
        if let Some(o) = leaked.orders.iter_mut().find(|o| o.id == 999) {
            o.time = Some(cutoff - 1);
        }
        let changed = build_features(&leaked, cutoff, &FeatureOptions::default());
        assert_ne!(base.data, changed.data);
    }

    #[test]
    fn render_never_shows_a_negative_zero() {
        assert_eq!(
            render("spent {x} in the last 90 days", -0.04),
            "spent 0.0 in the last 90 days"
        );
        assert_eq!(render("spent {x}", -0.0), "spent 0.0");
        assert_eq!(render("{n} days", -0.4), "0 days");
        assert_eq!(render("{pct} discounted", -0.001), "0% discounted");
        assert_eq!(render("changed by {x}", -2.36), "changed by -2.4");
    }

    #[test]
    fn phrases_say_only_what_the_value_means() {
        let ds = small();
        let cols = feature_columns(&ds, &FeatureOptions::default());
        let col = |name: &str| cols.iter().find(|c| c.name == name).cloned().unwrap();
        let with = |pairs: &'static [(&'static str, f64)]| {
            move |name: &str| pairs.iter().find(|p| p.0 == name).map(|p| p.1)
        };
        let one_order = with(&[("frequency", 1.0), ("has_survey", 0.0), ("ratings", 0.0)]);
        let regular = with(&[("frequency", 6.0), ("has_survey", 1.0), ("exposures", 0.0)]);
        let say =
            |name: &str, v: f64, other: &dyn Fn(&str) -> Option<f64>| phrase(&col(name), v, other);
        // a one-order customer has no buying rhythm: its gap columns are placeholders
        assert_eq!(say("ipt_std_days", 0.0, &one_order), None);
        assert_eq!(say("ipt_mean_days", 120.0, &one_order), None);
        assert_eq!(say("overdue_ratio", 1.0, &one_order), None);
        // a spread of 0 days is regular, not "irregular"
        assert_eq!(
            say("ipt_std_days", 0.2, &regular).as_deref(),
            Some("orders at very regular intervals (gaps vary by less than a day)")
        );
        assert_eq!(
            say("ipt_std_days", 12.4, &regular).as_deref(),
            Some("gaps between orders vary by 12 days")
        );
        // zero, tiny negative and negative spend
        assert_eq!(
            say("spend_recent", -0.01, &regular).as_deref(),
            Some("nothing spent in the last 90 days")
        );
        assert_eq!(
            say("spend_recent", -12.34, &regular).as_deref(),
            Some("net refunds of 12.3 in the last 90 days")
        );
        assert_eq!(
            say("monetary_total", 0.0, &one_order).as_deref(),
            Some("nothing spent yet")
        );
        assert_eq!(
            say("orders_recent", 0.0, &regular).as_deref(),
            Some("no orders in the last 90 days")
        );
        assert_eq!(
            say("tickets", 0.0, &regular).as_deref(),
            Some("no support tickets or complaints in total")
        );
        assert_eq!(
            say("order_trend", -2.0, &regular).as_deref(),
            Some("order count fell by 2 (last 90 days vs the 90 before)")
        );
        assert_eq!(
            say("spend_trend", 0.02, &regular).as_deref(),
            Some("spend unchanged (last 90 days vs the 90 before)")
        );
        // imputed scores are not the customer's: say that none was given
        assert_eq!(
            say("survey_mean", 3.4, &one_order).as_deref(),
            Some("has not answered a survey")
        );
        assert_eq!(
            say("survey_mean", 3.4, &regular).as_deref(),
            Some("average survey score 3.4")
        );
        assert_eq!(
            say("rating_mean", 4.1, &one_order).as_deref(),
            Some("has not rated a product")
        );
        // a redemption rate of no campaigns means nothing
        assert_eq!(say("redemption_rate", 0.0, &regular), None);
        assert_eq!(
            say("avg_order_value", 0.0, &with(&[("frequency", 0.0)])),
            None
        );
        assert_eq!(say("spend_recent", f64::NAN, &regular), None);
    }

    #[test]
    fn chinese_phrases_follow_the_same_cases() {
        let ds = small();
        let cols = feature_columns(&ds, &FeatureOptions::default());
        let col = |name: &str| cols.iter().find(|c| c.name == name).cloned().unwrap();
        let regular = |name: &str| match name {
            "frequency" => Some(6.0),
            "has_survey" => Some(1.0),
            _ => None,
        };
        let one_order = |name: &str| match name {
            "frequency" => Some(1.0),
            "has_survey" => Some(0.0),
            _ => None,
        };
        let zh = |name: &str, v: f64, o: &dyn Fn(&str) -> Option<f64>| {
            phrase_in(Wording::Zh, &col(name), v, o)
        };
        // what cannot be worded in English cannot be worded in Chinese
        for (name, v) in [
            ("ipt_mean_days", 30.0),
            ("overdue_ratio", 2.0),
            ("ipt_std_days", 4.0),
        ] {
            assert_eq!(phrase(&col(name), v, &one_order), None);
            assert_eq!(zh(name, v, &one_order), None, "{name}");
        }
        assert_eq!(
            zh("tickets_recent", 3.0, &regular).as_deref(),
            Some("最近 90 天 3 张客服工单")
        );
        assert_eq!(
            zh("recency_days", 41.6, &regular).as_deref(),
            Some("已 42 天未购买")
        );
        assert_eq!(
            zh("spend_recent", -12.34, &regular).as_deref(),
            Some("最近 90 天净退款 12.3")
        );
        assert_eq!(
            zh("order_trend", -2.0, &regular).as_deref(),
            Some("订单数减少 2（最近 90 天对比之前 90 天）")
        );
        assert_eq!(
            zh("survey_mean", 6.0, &one_order).as_deref(),
            Some("未回答过问卷")
        );
        // every column of the pipeline has Chinese words (no English left)
        for c in &cols {
            if let Some(t) = phrase_in(Wording::Zh, c, 3.0, &regular) {
                let ascii_words = t
                    .split(|ch: char| !ch.is_ascii_alphabetic())
                    .filter(|w| w.len() > 3)
                    .filter(|w| !c.name.to_lowercase().contains(&w.to_lowercase()))
                    .count();
                assert_eq!(ascii_words, 0, "{}: {t}", c.name);
            }
        }
    }
}
