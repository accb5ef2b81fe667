//! The feedback page (`/dashboard/feedback`, its CSV) and
//! `GET /v1/feedback/summary` on the security fixture: the figures of the
//! API on the page in English and Chinese, with the chart, the tables and
//! the download; the protected aggregates of a role that does not see
//! exact figures; the words only for roles that see feedback text; a
//! department key's own sources only.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::fixture::{PLANTED, fixture};
use crate::pages::{http, run, sign_in};

async fn session(c: &reqwest::Client, user: &str) -> String {
    let f = fixture();
    let (name, password, _) = f
        .users
        .iter()
        .find(|u| u.0 == user)
        .unwrap_or_else(|| panic!("no fixture user {user}"));
    sign_in(c, &f.base, name, password).await
}

async fn page(c: &reqwest::Client, session: &str, path: &str, lang: &str) -> (u16, String) {
    let f = fixture();
    let res = c
        .get(format!("{}{path}", f.base))
        .header("cookie", format!("ig_session={session}"))
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn api(c: &reqwest::Client, role: &str, query: &str) -> Value {
    let f = fixture();
    let key = if role == "support-desk" {
        &f.support_dept
    } else {
        f.staff(role)
    };
    let res = c
        .get(format!("{}/v1/feedback/summary?{query}", f.base))
        .bearer_auth(&key.secret)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{role}");
    res.json().await.unwrap()
}

/// The CSV's rows (after the header), split on commas (no field of these
/// figures holds a comma but the topics, which come last).
fn csv_rows(body: &str) -> Vec<Vec<String>> {
    body.trim_start_matches('\u{feff}')
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .map(|x| x.trim_matches('"').to_string())
                .collect()
        })
        .collect()
}

#[test]
fn the_page_shows_the_api_figures_in_both_languages_with_a_csv() {
    run(async {
        let c = http();
        let s = session(&c, "admin-user").await;
        let q = "period=month&by=department";
        let v = api(&c, "admin", q).await;
        let nps = v["overall"]["nps"]["score"].as_f64().expect("an NPS");
        let csat = v["overall"]["csat"]["percent"].as_f64().expect("a CSAT");
        assert_eq!(v["privacy"]["exact"], true);
        assert!(
            v["languages"]["zh"].as_u64().unwrap_or(0) > 0,
            "{}",
            v["languages"]
        );

        let (status, en) = page(&c, &s, &format!("/dashboard/feedback?{q}"), "en").await;
        assert_eq!(status, 200, "{en}");
        for want in [
            "NPS and CSAT by period",
            "class=\"line s0\"",
            "class=\"line s1\"",
            "Sentiment of the texts",
            "Refunds and billing",
            "support/ticket",
            "Newest feedback",
            "Most used words",
            "href=\"/dashboard/feedback.csv?period=month&amp;by=department\"",
        ] {
            assert!(en.contains(want), "English page lacks {want}");
        }
        assert!(
            en.contains(&format!(">{nps:.1}<")),
            "NPS {nps:.1} on the page"
        );
        assert!(
            en.contains(&format!(">{csat:.1}%<")),
            "CSAT {csat:.1} on the page"
        );
        // the newest feedback with its texts (admin sees them) and notes
        let inbox = &en[en.find("Newest feedback").expect("the inbox")..];
        assert!(
            [
                "All good",
                "一切都好",
                "Delivery was late again",
                "Where is my invoice?",
                "快递又延迟了"
            ]
            .iter()
            .any(|t| inbox.contains(t)),
            "demo texts in the inbox"
        );
        assert!(
            inbox.contains("<td>negative</td>") || inbox.contains("<td>positive</td>"),
            "each text's sentiment"
        );
        assert!(!en.contains("物流配送"));

        let (status, zh) = page(&c, &s, &format!("/dashboard/feedback?{q}"), "zh-CN").await;
        assert_eq!(status, 200);
        for want in [
            "各周期的 NPS 与 CSAT",
            "退款与账单",
            "文本情感分布",
            "最新反馈",
            "负面",
        ] {
            assert!(zh.contains(want), "Chinese page lacks {want}");
        }
        assert!(!zh.contains("Refunds and billing"));

        // the download: the API's figures, one row per group, period and topic
        let f = fixture();
        let res = c
            .get(format!("{}/dashboard/feedback.csv?{q}", f.base))
            .header("cookie", format!("ig_session={s}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
        let body = res.text().await.unwrap();
        assert!(body.starts_with('\u{feff}'));
        assert!(body.contains("section,label,feedback,customers,nps"));
        let rows = csv_rows(&body);
        let n = |k: &str| v[k].as_array().map_or(0, Vec::len);
        let topics = v["overall"]["topics"].as_array().map_or(0, Vec::len);
        assert_eq!(rows.len(), 1 + n("groups") + n("trend") + topics);
        assert_eq!(rows[0][2], v["overall"]["feedback"].to_string());
        assert_eq!(rows[0][4], format!("{nps:.2}"));
        let tickets = rows
            .iter()
            .find(|r| r[0] == "department" && r[1] == "support/ticket")
            .expect("a ticket row");
        assert!(tickets[4].is_empty(), "tickets have no NPS: {tickets:?}");
        let res = c
            .get(format!("{}/dashboard/feedback.csv?{q}", f.base))
            .header("cookie", format!("ig_session={s}"))
            .header("accept-language", "zh-CN")
            .send()
            .await
            .unwrap();
        assert!(res.text().await.unwrap().contains("部分,名称,反馈数"));

        // a bad period is the user's error
        let (status, _) = page(&c, &s, "/dashboard/feedback?period=fortnight", "en").await;
        assert_eq!(status, 400);
        let res = c
            .get(format!("{}/v1/feedback/summary?by=weather", f.base))
            .bearer_auth(&f.staff("admin").secret)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
    });
}

#[test]
fn other_roles_get_protected_aggregates_and_no_words() {
    run(async {
        let c = http();
        let q = "period=week&by=segment";
        let exact = api(&c, "admin", q).await;
        let min = {
            let m = api(&c, "marketing", q).await;
            assert_eq!(m["privacy"]["exact"], false);
            m["privacy"]["min_group_size"].as_u64().expect("a minimum") as usize
        };
        let shown = |v: &Value| -> BTreeSet<String> {
            v["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["group"].as_str().unwrap().to_string())
                .collect()
        };
        let big: BTreeSet<String> = exact["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| g["figures"]["customers"].as_u64().unwrap() as usize >= min)
            .map(|g| g["group"].as_str().unwrap().to_string())
            .collect();
        for role in ["marketing", "sales", "support"] {
            let v = api(&c, role, q).await;
            let mut named = shown(&v);
            named.remove("Other (small groups)");
            assert_eq!(named, big, "{role}: the segments of at least {min} people");
            for g in v["groups"].as_array().unwrap() {
                assert!(g["figures"]["customers"].as_u64().unwrap() as usize >= min);
            }
            for p in v["trend"].as_array().unwrap() {
                if let Some(n) = p["figures"]["customers"].as_u64() {
                    assert!(n as usize >= min, "{role}: {}", p["period"]);
                }
            }
            for t in v["overall"]["topics"].as_array().unwrap() {
                assert!(t["customers"].as_u64().unwrap() as usize >= min);
            }
            assert_eq!(v["overall"]["nps"], exact["overall"]["nps"], "{role}");
            // words: support sees feedback text, marketing and sales do not
            match role {
                "support" => assert!(v["keywords"].is_array()),
                _ => assert!(v["keywords"].is_null(), "{role}: {}", v["keywords"]),
            }
        }
        // the marketing user's page: the protected figures, no words
        let s = session(&c, "marketing-user").await;
        let (status, html) = page(&c, &s, &format!("/dashboard/feedback?{q}"), "en").await;
        assert_eq!(status, 200);
        assert!(html.contains("NPS and CSAT by period"));
        assert!(!html.contains("Most used words"));
        assert!(!html.contains(PLANTED.ticket_text) && !html.contains(PLANTED.survey_text));
        assert!(html.contains("figures of fewer are withheld"), "the note");
        // its download: blank periods as rows of empty cells, every group of
        // at least the minimum
        let f = fixture();
        let res = c
            .get(format!("{}/dashboard/feedback.csv?{q}", f.base))
            .header("cookie", format!("ig_session={s}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let m = api(&c, "marketing", q).await;
        let rows = csv_rows(&res.text().await.unwrap());
        assert!(rows.iter().all(|r| r.len() == 14), "{rows:?}");
        let blank = m["trend"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["figures"].is_null())
            .count();
        assert!(blank > 0, "some weeks have too few people for marketing");
        assert_eq!(
            rows.iter()
                .filter(|r| r[0] == "period" && r[2].is_empty())
                .count(),
            blank
        );
        for r in rows.iter().filter(|r| r[0] == "segment") {
            assert!(r[3].parse::<usize>().unwrap() >= min, "{r:?}");
        }

        // a support desk key: only the desk's tickets
        let desk = api(&c, "support-desk", "by=department").await;
        let groups: Vec<&str> = desk["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["group"].as_str().unwrap())
            .collect();
        assert_eq!(groups, vec!["support/ticket"]);
        assert!(desk["overall"]["nps"].is_null());
    });
}
