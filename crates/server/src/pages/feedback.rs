//! The dashboard's feedback page (`/dashboard/feedback`, its CSV
//! `/dashboard/feedback.csv`): NPS and CSAT per period as a line chart and
//! a table, the sentiment of the texts, the top topics, the figures per
//! segment or department, and below them the newest feedback with each
//! text's sentiment and topics (the inbox, for roles that read customers).
//!
//! Why its own module: the page renders one engine answer,
//! [`Engine::share_feedback_summary`] (the same as `GET
//! /v1/feedback/summary`), so it shows a role exactly the protected
//! figures the API gives it; the period and grouping are a plain GET form,
//! so the page works without JavaScript.

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::get;
use infogap_core::access::Action;
use infogap_engine::access::{Access, PrincipalKind};
use infogap_engine::feedback::{
    FeedbackQuery, FeedbackSummary, Figures, GroupBy, GroupFigures, Period, Scale, TopicFigures,
};
use infogap_engine::privacy::aggregate::OTHER;
use infogap_engine::selfservice::{Inbox, InboxQuery};
use infogap_engine::{Engine, EngineError};
use infogap_models::text::{Polarity, Topic};
use maud::{Markup, html};

use super::chart::{self, Bar, Series};
use super::dashboard::also;
use super::i18n::Lang;
use super::{Area, Cx, csv_response, error_page, page, staff};
use crate::state::AppState;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/dashboard/feedback", get(feedback))
        .route("/dashboard/feedback.csv", get(feedback_csv))
}

/// `period` and `by` of the page's address (the engine's defaults when
/// left out; anything else is refused).
fn query_of(raw: Option<&str>) -> Result<FeedbackQuery, EngineError> {
    let mut q = FeedbackQuery::default();
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "period" => q.period = Period::parse(&v)?,
            "by" => q.by = GroupBy::parse(&v)?,
            _ => {}
        }
    }
    Ok(q)
}

fn period_code(p: Period) -> &'static str {
    match p {
        Period::Week => "week",
        Period::Month => "month",
    }
}

fn by_code(b: GroupBy) -> &'static str {
    match b {
        GroupBy::Segment => "segment",
        GroupBy::Department => "department",
    }
}

struct Data {
    q: FeedbackQuery,
    s: FeedbackSummary,
    /// The newest feedback, for roles that read customers.
    inbox: Option<Inbox>,
}

fn data(
    e: &Engine,
    st: &AppState,
    a: &Access,
    raw: Option<&str>,
    with_inbox: bool,
) -> Result<Data, EngineError> {
    let q = query_of(raw)?;
    let s = e.share_feedback_summary(a, &st.insights(), &q)?;
    let inbox = match also(e, st, a, Action::CustomersRead)? {
        Some(x) if with_inbox && x.principal.kind != PrincipalKind::Customer => {
            Some(e.share_feedback_inbox(
                &x,
                &InboxQuery {
                    limit: 50,
                    ..InboxQuery::default()
                },
            )?)
        }
        _ => None,
    };
    Ok(Data { q, s, inbox })
}

fn topic_name(l: Lang, t: Topic) -> &'static str {
    l.t(t.name(), t.name_zh())
}

fn group_name(l: Lang, g: &GroupFigures) -> String {
    match (l, &g.group_zh) {
        (Lang::Zh, Some(z)) => z.clone(),
        (Lang::Zh, None) if g.group == OTHER => "其他（小组合并）".into(),
        _ => g.group.clone(),
    }
}

fn polarity_name(l: Lang, p: Polarity) -> &'static str {
    match p {
        Polarity::Negative => l.t("negative", "负面"),
        Polarity::Neutral => l.t("neutral", "中性"),
        Polarity::Positive => l.t("positive", "正面"),
    }
}

fn topics_line(l: Lang, topics: &[TopicFigures]) -> String {
    topics
        .iter()
        .map(|t| format!("{} {}", topic_name(l, t.topic), l.int(t.texts as i64)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The cells of one row of figures: feedback, customers, NPS (answers),
/// CSAT (answers), negative share, top topics.
fn cells(l: Lang, f: &Figures) -> [String; 6] {
    [
        l.int(f.feedback as i64),
        l.int(f.customers as i64),
        f.nps.as_ref().map_or("–".into(), |n| {
            format!("{} ({})", l.num(n.score, 1), l.int(n.answers as i64))
        }),
        f.csat.as_ref().map_or("–".into(), |c| {
            format!("{}% ({})", l.num(c.percent, 1), l.int(c.answers as i64))
        }),
        f.sentiment
            .as_ref()
            .map_or("–".into(), |s| l.pct(s.negative_share, 0)),
        topics_line(l, &f.topics),
    ]
}

fn head(l: Lang, first: &str) -> Markup {
    html! {
        thead { tr {
            th scope="col" { (first) }
            th scope="col" class="n" { (l.t("Feedback", "反馈数")) }
            th scope="col" class="n" { (l.t("Customers", "客户数")) }
            th scope="col" class="n" { (l.t("NPS (answers)", "NPS（回答数）")) }
            th scope="col" class="n" { (l.t("CSAT (answers)", "CSAT（回答数）")) }
            th scope="col" class="n" { (l.t("Negative texts", "负面文本占比")) }
            th scope="col" { (l.t("Top topics", "主要话题")) }
        } }
    }
}

fn row(label: &str, c: &[String; 6]) -> Markup {
    html! {
        tr {
            td { (label) }
            td class="n" { (c[0]) } td class="n" { (c[1]) } td class="n" { (c[2]) }
            td class="n" { (c[3]) } td class="n" { (c[4]) } td { (c[5]) }
        }
    }
}

fn render(cx: &Cx, d: &Data) -> Markup {
    let l = cx.lang;
    let s = &d.s;
    let o = &s.overall;
    let qs = format!("period={}&by={}", period_code(d.q.period), by_code(d.q.by));
    let labels: Vec<String> = s.trend.iter().map(|p| p.period.clone()).collect();
    let nps_line = Series {
        name: "NPS".into(),
        values: s
            .trend
            .iter()
            .map(|p| {
                p.figures
                    .as_ref()
                    .and_then(|f| f.nps.as_ref())
                    .map(|n| n.score)
            })
            .collect(),
    };
    let csat_line = Series {
        name: l.t("CSAT %", "CSAT %").into(),
        values: s
            .trend
            .iter()
            .map(|p| {
                p.figures
                    .as_ref()
                    .and_then(|f| f.csat.as_ref())
                    .map(|c| c.percent)
            })
            .collect(),
    };
    let sentiment_bars: Vec<Bar> = o
        .sentiment
        .as_ref()
        .map(|x| {
            [
                (Polarity::Negative, x.negative),
                (Polarity::Neutral, x.neutral),
                (Polarity::Positive, x.positive),
            ]
            .into_iter()
            .map(|(p, n)| Bar {
                label: polarity_name(l, p).into(),
                value: n as f64,
                shown: l.int(n as i64),
            })
            .collect()
        })
        .unwrap_or_default();
    let topic_bars: Vec<Bar> = o
        .topics
        .iter()
        .map(|t| Bar {
            label: topic_name(l, t.topic).into(),
            value: t.texts as f64,
            shown: l.int(t.texts as i64),
        })
        .collect();
    let by_label = match d.q.by {
        GroupBy::Segment => l.t("Segment", "分群"),
        GroupBy::Department => l.t("Department (source/kind)", "部门（来源/类型）"),
    };
    html! {
        p { (l.t("NPS counts the 0–10 answers (promoters 9–10 minus detractors 0–6, from −100 to 100); CSAT is the share of the 1–5 answers that are 4 or 5. The two scales are never mixed. Sentiment and topics come from the texts of surveys, reviews, tickets and forum posts, in English and Chinese.", "NPS 统计 0–10 分的回答（推荐者 9–10 分减去贬损者 0–6 分，范围 −100 到 100）；CSAT 是 1–5 分回答中 4 分或 5 分所占的比例。两种量表从不混合计算。情感和话题来自问卷、评价、工单和论坛帖子的文字，支持英文和中文。")) }
        form method="get" action="/dashboard/feedback" class="panel" {
            label for="period" { (l.t("Period", "周期")) }
            select id="period" name="period" {
                option value="month" selected[d.q.period == Period::Month] { (l.t("Month", "月")) }
                option value="week" selected[d.q.period == Period::Week] { (l.t("Week", "周")) }
            }
            label for="by" { (l.t("Group by", "分组")) }
            select id="by" name="by" {
                option value="department" selected[d.q.by == GroupBy::Department] { (l.t("Department", "部门")) }
                option value="segment" selected[d.q.by == GroupBy::Segment] { (l.t("Segment", "分群")) }
            }
            button type="submit" { (l.t("Show", "显示")) }
            " "
            a href=(format!("/dashboard/feedback.csv?{qs}")) download { (l.t("Download the figures (CSV)", "下载数据（CSV）")) }
        }
        div class="cards" {
            div class="card" { div class="k" { "NPS" } div class="v" { (o.nps.as_ref().map_or("–".into(), |n| l.num(n.score, 1))) }
                div class="k" { (o.nps.as_ref().map_or(String::new(), |n| format!("{} {}", l.int(n.answers as i64), l.t("answers", "个回答")))) } }
            div class="card" { div class="k" { "CSAT" } div class="v" { (o.csat.as_ref().map_or("–".into(), |c| format!("{}%", l.num(c.percent, 1)))) }
                div class="k" { (o.csat.as_ref().map_or(String::new(), |c| format!("{} {}", l.int(c.answers as i64), l.t("answers", "个回答")))) } }
            div class="card" { div class="k" { (l.t("Negative texts", "负面文本")) } div class="v" { (o.sentiment.as_ref().map_or("–".into(), |x| l.pct(x.negative_share, 0))) }
                div class="k" { (o.sentiment.as_ref().map_or(String::new(), |x| format!("{} {}", l.int(x.texts as i64), l.t("texts", "条文本")))) } }
            @if let Some(c) = &s.change {
                div class="card" { div class="k" { (l.t("Change ", "变化 ")) (c.from) " → " (c.to) }
                    div class="v" { "NPS " (c.nps.map_or("–".into(), |x| format!("{:+.1}", x))) }
                    div class="k" { "CSAT " (c.csat.map_or("–".into(), |x| format!("{:+.1}", x))) " · " (l.t("negative", "负面")) " " (c.negative_share.map_or("–".into(), |x| format!("{:+.0}%", 100.0 * x))) }
                    div class="k" { (l.t("– : fewer than 10 answers in a period", "–：某一周期回答少于 10 个")) } }
            }
        }
        section class="panel" aria-labelledby="h-trend" {
            h2 id="h-trend" { (l.t("NPS and CSAT by period", "各周期的 NPS 与 CSAT")) }
            @if labels.is_empty() {
                p class="muted" { (l.t("No dated feedback.", "没有带日期的反馈。")) }
            } @else {
                (chart::lines(l.t("NPS (−100 to 100) and CSAT (% satisfied) by period; gaps: too few answers", "各周期 NPS（−100 到 100）与 CSAT（满意比例 %）；断开处：回答太少"), &labels, &[nps_line, csat_line], -100.0, 100.0))
                table {
                    caption { (l.t("Per period (blank: too few people for your role)", "各周期（空白：人数太少，按您的角色不显示）")) }
                    (head(l, l.t("Period", "周期")))
                    tbody {
                        @for p in &s.trend {
                            @match &p.figures {
                                Some(f) => (row(&p.period, &cells(l, f))),
                                None => tr { td { (p.period) } td class="muted" colspan="6" { "–" } },
                            }
                        }
                    }
                }
            }
        }
        div class="two" {
            section class="panel" aria-labelledby="h-sent" {
                h2 id="h-sent" { (l.t("Sentiment of the texts", "文本情感分布")) }
                @if let Some(x) = &o.sentiment {
                    (chart::bars(l.t("Texts by sentiment", "各情感的文本数"), &sentiment_bars))
                    table {
                        thead { tr { th scope="col" { (l.t("Sentiment", "情感")) } th scope="col" class="n" { (l.t("Texts", "文本数")) } } }
                        tbody {
                            tr { td { (polarity_name(l, Polarity::Negative)) } td class="n" { (l.int(x.negative as i64)) } }
                            tr { td { (polarity_name(l, Polarity::Neutral)) } td class="n" { (l.int(x.neutral as i64)) } }
                            tr { td { (polarity_name(l, Polarity::Positive)) } td class="n" { (l.int(x.positive as i64)) } }
                            tr { td { (l.t("Mean score (−1 to 1)", "平均得分（−1 到 1）")) } td class="n" { (l.num(x.mean, 2)) } }
                        }
                    }
                } @else {
                    p class="muted" { (l.t("No texts (or too few people for your role).", "没有文本（或人数太少，按您的角色不显示）。")) }
                }
            }
            section class="panel" aria-labelledby="h-topics" {
                h2 id="h-topics" { (l.t("Top topics", "主要话题")) }
                @if o.topics.is_empty() {
                    p class="muted" { (l.t("No topic found.", "未发现话题。")) }
                } @else {
                    (chart::bars(l.t("Texts per topic", "各话题的文本数"), &topic_bars))
                    table {
                        thead { tr {
                            th scope="col" { (l.t("Topic", "话题")) }
                            th scope="col" class="n" { (l.t("Texts", "文本数")) }
                            th scope="col" class="n" { (l.t("Customers", "客户数")) }
                            th scope="col" class="n" { (l.t("Negative", "负面占比")) }
                        } }
                        tbody { @for t in &o.topics { tr {
                            td { (topic_name(l, t.topic)) }
                            td class="n" { (l.int(t.texts as i64)) }
                            td class="n" { (l.int(t.customers as i64)) }
                            td class="n" { (l.pct(t.negative_share, 0)) }
                        } } }
                    }
                }
            }
        }
        section class="panel" aria-labelledby="h-groups" {
            h2 id="h-groups" { (by_label) }
            table {
                (head(l, by_label))
                tbody {
                    (row(l.t("All", "全部"), &cells(l, o)))
                    @for g in &s.groups { (row(&group_name(l, g), &cells(l, &g.figures))) }
                }
            }
        }
        @if let Some(k) = &s.keywords {
            section class="panel" aria-labelledby="h-words" {
                h2 id="h-words" { (l.t("Most used words", "最常用的词")) }
                @if k.is_empty() {
                    p class="muted" { (l.t("None.", "无。")) }
                } @else {
                    p { @for (i, w) in k.iter().enumerate() {
                        @if i > 0 { " · " }
                        span class="tag" { (w.word) } " " (l.int(w.texts as i64))
                    } }
                }
            }
        }
        section class="panel" aria-labelledby="h-how" {
            h2 id="h-how" { (l.t("How the figures were made", "数据说明")) }
            table {
                thead { tr {
                    th scope="col" { (l.t("Kind", "类型")) }
                    th scope="col" { (l.t("Scale", "量表")) }
                    th scope="col" { (l.t("Decided by", "判断依据")) }
                    th scope="col" class="n" { (l.t("Items", "条数")) }
                    th scope="col" class="n" { (l.t("Out of scale", "超出量表")) }
                } }
                tbody { @for k in &s.scales { tr {
                    td { (k.kind) }
                    td { (match k.scale { Some(Scale::Nps) => l.t("NPS (0–10)", "NPS（0–10）"), Some(Scale::Csat) => l.t("CSAT (1–5)", "CSAT（1–5）"), None => l.t("no score (texts only)", "无评分（仅文本）") }) }
                    td { (match k.decided { "named" => l.t("its name", "类型名称"), "inferred" => l.t("its scores", "评分范围"), _ => "–" }) }
                    td class="n" { (l.int(k.items as i64)) }
                    td class="n" { (l.int(k.out_of_scale as i64)) }
                } } }
            }
            p class="muted" { (l.t("Privacy: ", "隐私保护：")) (s.privacy.note) }
            @if s.left_out.total() > 0 {
                p class="muted" { (l.t("Not counted (no analytics consent): ", "未计入（未同意统计分析）：")) (l.int(s.left_out.total() as i64)) }
            }
            p class="muted" { (l.t("Sentiment and topics are read from word lists (English, and Chinese segmented with jieba): negations such as “not received” or “没有收到” count against, sarcasm and words outside the lists are not understood.", "情感和话题依据词表判断（英文；中文用 jieba 分词）：“not received”“没有收到”等否定按负面计算；反讽和词表以外的词无法识别。")) }
        }
        @if let Some(inbox) = &d.inbox {
            section class="panel" aria-labelledby="h-inbox" {
                h2 id="h-inbox" { (l.t("Newest feedback", "最新反馈")) }
                @if inbox.items.is_empty() {
                    p class="muted" { (l.t("None.", "无。")) }
                } @else {
                    table {
                        thead { tr {
                            th scope="col" { (l.t("When", "时间")) }
                            th scope="col" { (l.t("Customer", "客户")) }
                            th scope="col" { (l.t("Kind", "类型")) }
                            th scope="col" class="n" { (l.t("Score", "评分")) }
                            th scope="col" { (l.t("Text", "内容")) }
                            th scope="col" { (l.t("Sentiment", "情感")) }
                            th scope="col" { (l.t("Topics", "话题")) }
                            th scope="col" { (l.t("Source", "来源")) }
                        } }
                        tbody { @for i in &inbox.items { tr {
                            td { (i.time.as_deref().map_or("–".into(), |t| l.when(t))) }
                            td { (i.key) }
                            td { (i.kind) }
                            td class="n" { (i.score.map_or("–".into(), |x| l.num(x, 0))) }
                            td { (i.text.as_deref().unwrap_or("–")) }
                            td { (i.analysis.as_ref().map_or("–", |a| polarity_name(l, a.polarity))) }
                            td { (i.analysis.as_ref().map_or(String::new(), |a| a.topics.iter().map(|t| topic_name(l, *t)).collect::<Vec<_>>().join(", "))) }
                            td { (i.source) }
                        } } }
                    }
                }
            }
        }
    }
}

async fn feedback(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::FeedbackRead, None, move |e, s, a| {
        data(e, s, a, q.as_deref(), true)
    })
    .await
    {
        Ok((d, v)) => page(
            &cx,
            Area::Dashboard,
            &v,
            "/dashboard/feedback",
            l.t("Feedback", "客户反馈"),
            render(&cx, &d),
        ),
        Err(e) => error_page(&cx, e),
    }
}

/// The figures as rows: overall, each group, each period, each topic.
fn csv_rows(l: Lang, d: &Data) -> Vec<Vec<String>> {
    let num = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.2}"));
    let figures = |section: &str, label: &str, f: Option<&Figures>| -> Vec<String> {
        let Some(f) = f else {
            // withheld for the role: the row is there, its cells empty
            let mut r = vec![String::new(); 14];
            r[0] = section.into();
            r[1] = label.into();
            return r;
        };
        let s = f.sentiment.as_ref();
        vec![
            section.into(),
            label.into(),
            f.feedback.to_string(),
            f.customers.to_string(),
            num(f.nps.as_ref().map(|n| n.score)),
            f.nps
                .as_ref()
                .map_or(String::new(), |n| n.answers.to_string()),
            num(f.csat.as_ref().map(|c| c.percent)),
            f.csat
                .as_ref()
                .map_or(String::new(), |c| c.answers.to_string()),
            s.map_or(String::new(), |x| x.texts.to_string()),
            s.map_or(String::new(), |x| x.negative.to_string()),
            s.map_or(String::new(), |x| x.neutral.to_string()),
            s.map_or(String::new(), |x| x.positive.to_string()),
            num(s.map(|x| x.negative_share)),
            topics_line(l, &f.topics),
        ]
    };
    let s = &d.s;
    let mut rows = vec![figures(
        l.t("overall", "全部"),
        l.t("all", "全部"),
        Some(&s.overall),
    )];
    let group = match d.q.by {
        GroupBy::Segment => l.t("segment", "分群"),
        GroupBy::Department => l.t("department", "部门"),
    };
    for g in &s.groups {
        rows.push(figures(group, &group_name(l, g), Some(&g.figures)));
    }
    let period = l.t("period", "周期");
    for p in &s.trend {
        rows.push(figures(period, &p.period, p.figures.as_ref()));
    }
    for t in &s.overall.topics {
        let mut r = vec![String::new(); 14];
        r[0] = l.t("topic", "话题").into();
        r[1] = topic_name(l, t.topic).into();
        r[3] = t.customers.to_string();
        r[8] = t.texts.to_string();
        r[9] = t.negative.to_string();
        r[12] = format!("{:.2}", t.negative_share);
        rows.push(r);
    }
    rows
}

async fn feedback_csv(State(st): State<Arc<AppState>>, cx: Cx, RawQuery(q): RawQuery) -> Response {
    let l = cx.lang;
    match staff(&st, &cx, Action::FeedbackRead, None, move |e, s, a| {
        data(e, s, a, q.as_deref(), false)
    })
    .await
    {
        Ok((d, v)) => csv_response(
            "feedback.csv",
            &[
                l.t("section", "部分"),
                l.t("label", "名称"),
                l.t("feedback", "反馈数"),
                l.t("customers", "客户数"),
                "nps",
                l.t("nps_answers", "nps_回答数"),
                l.t("csat_percent", "csat_百分比"),
                l.t("csat_answers", "csat_回答数"),
                l.t("texts", "文本数"),
                l.t("negative", "负面"),
                l.t("neutral", "中性"),
                l.t("positive", "正面"),
                l.t("negative_share", "负面占比"),
                l.t("top_topics", "主要话题"),
            ],
            &csv_rows(l, &d),
            &v.actor,
        ),
        Err(e) => error_page(&cx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_takes_period_and_grouping_and_refuses_others() {
        let q = query_of(Some("period=week&by=segment")).expect("valid");
        assert_eq!((q.period, q.by), (Period::Week, GroupBy::Segment));
        assert_eq!(query_of(None).expect("defaults"), FeedbackQuery::default());
        assert!(matches!(
            query_of(Some("period=fortnight")),
            Err(EngineError::Invalid(_))
        ));
        assert!(matches!(
            query_of(Some("by=weather")),
            Err(EngineError::Invalid(_))
        ));
    }
}
