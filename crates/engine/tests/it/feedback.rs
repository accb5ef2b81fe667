//! The feedback summary on the demo store, against what the generator
//! plants: 0–10 surveys and 1–5 reviews counted apart, a complaint written
//! for every survey of 4 or less and every review of 2 or less (a quarter
//! of the people write in Chinese), tickets about delivery, damage,
//! refunds, support and sizes; and what other roles get: no group,
//! period, score or topic behind fewer than `min_group_size` people, no
//! words unless they see feedback text, nothing under differential
//! privacy.

use std::collections::{BTreeSet, HashSet};

use infogap_core::access::Action;
use infogap_core::config::Config;
use infogap_core::privacy::ANALYTICS;
use infogap_engine::access::{Access, Principal, PrincipalKind};
use infogap_engine::feedback::{FeedbackQuery, FeedbackSummary, GroupBy, Period, Scale};
use infogap_engine::import::{ImportOptions, import};
use infogap_engine::privacy::aggregate::OTHER;
use infogap_engine::selfservice::InboxQuery;
use infogap_engine::share::Insights;
use infogap_engine::{Engine, EngineError};
use infogap_models::text::Topic;
use infogap_store::audit::AuditFilter;

use crate::{admin, imported};

/// The demo store imported with `privacy` appended to its `[privacy]` section.
fn store_with(n: usize, privacy: &str) -> (infogap_testkit::DemoFixture, Engine) {
    let fx = infogap_testkit::demo(n, 21);
    let mut text = std::fs::read_to_string(&fx.config).expect("config");
    text.push_str("\n[privacy]\n");
    text.push_str(privacy);
    text.push('\n');
    std::fs::write(&fx.config, text).expect("write config");
    let engine = Engine::open(&fx.dir.path().join("store.db")).expect("open");
    let config = Config::load(&fx.config).expect("config");
    import(&engine, &config, &ImportOptions::default()).expect("import");
    (fx, engine)
}

fn as_role(engine: &Engine, role: &str, department: Option<&str>, action: Action) -> Access {
    let p = Principal {
        name: format!("{role} key"),
        kind: PrincipalKind::Key,
        department: department.map(str::to_string),
        ..Principal::local(Some(role))
    };
    engine
        .authorize(&engine.policy().expect("policy"), &p, action)
        .expect("allowed")
}

fn summary(engine: &Engine, a: &Access, ins: &Insights, by: GroupBy) -> FeedbackSummary {
    engine
        .share_feedback_summary(
            a,
            ins,
            &FeedbackQuery {
                period: Period::Month,
                by,
            },
        )
        .expect("summary")
}

#[test]
fn scales_apart_and_the_planted_comments_read_as_written() {
    let (_fx, engine) = imported(300, 5);
    let ins = Insights::current(&engine).expect("insights");
    let s = summary(
        &engine,
        &admin(Action::FeedbackRead),
        &ins,
        GroupBy::Department,
    );
    assert!(s.privacy.exact);

    // what the store holds, counted here from the data set
    let consents = engine.consents().expect("consents");
    let counted: Vec<_> = ins
        .ds
        .feedback
        .iter()
        .filter(|f| consents.allows(f.customer, ANALYTICS).is_ok())
        .collect();
    let surveys: Vec<f64> = counted
        .iter()
        .filter(|f| f.kind == "survey")
        .filter_map(|f| f.score)
        .collect();
    let reviews: Vec<f64> = counted
        .iter()
        .filter(|f| f.kind == "review")
        .filter_map(|f| f.score)
        .collect();
    assert!(surveys.len() > 50 && reviews.len() > 30);
    let nps = s.overall.nps.as_ref().expect("nps");
    assert_eq!(
        nps.answers,
        surveys.len(),
        "every 0–10 survey, nothing else"
    );
    assert_eq!(nps.promoters, surveys.iter().filter(|&&x| x >= 9.0).count());
    assert_eq!(
        nps.detractors,
        surveys.iter().filter(|&&x| x <= 6.0).count()
    );
    let csat = s.overall.csat.as_ref().expect("csat");
    assert_eq!(
        csat.answers,
        reviews.len(),
        "every 1–5 review, nothing else"
    );
    assert_eq!(
        csat.satisfied,
        reviews.iter().filter(|&&x| x >= 4.0).count()
    );
    let scale = |k: &str| {
        s.scales
            .iter()
            .find(|x| x.kind == k)
            .map(|x| (x.scale, x.decided))
    };
    assert_eq!(scale("survey"), Some((Some(Scale::Nps), "inferred")));
    assert_eq!(scale("review"), Some((Some(Scale::Csat), "named")));
    assert_eq!(scale("ticket"), Some((None, "none")));

    // the generator writes a complaint for a survey of 4 or less and a
    // review of 2 or less, "All good" (or 一切都好) otherwise
    let group = |label: &str| {
        s.groups
            .iter()
            .find(|g| g.group == label)
            .unwrap_or_else(|| panic!("no group {label}: {:?}", s.groups))
    };
    let sv = group("surveys/survey")
        .figures
        .sentiment
        .clone()
        .expect("sentiment");
    assert_eq!(sv.negative, surveys.iter().filter(|&&x| x <= 4.0).count());
    assert_eq!(sv.positive, surveys.iter().filter(|&&x| x > 4.0).count());
    assert_eq!(sv.neutral, 0);
    let rv = group("surveys/review")
        .figures
        .sentiment
        .clone()
        .expect("sentiment");
    assert_eq!(rv.negative, reviews.iter().filter(|&&x| x <= 2.0).count());
    assert_eq!(rv.positive, reviews.iter().filter(|&&x| x > 2.0).count());
    // the review group has no NPS, the survey group no CSAT
    assert!(group("surveys/review").figures.nps.is_none());
    assert!(group("surveys/survey").figures.csat.is_none());

    // tickets: complaints and questions about what the generator writes
    let tickets = &group("support/ticket").figures;
    assert!(tickets.nps.is_none() && tickets.csat.is_none());
    let ts = tickets.sentiment.as_ref().expect("sentiment");
    assert!(ts.negative > 0 && ts.neutral > 0, "{ts:?}");
    let overall_topics: BTreeSet<Topic> = s.overall.topics.iter().map(|t| t.topic).collect();
    for t in [
        Topic::Delivery,
        Topic::Quality,
        Topic::Billing,
        Topic::Support,
        Topic::Fit,
        Topic::Accuracy,
    ] {
        assert!(overall_topics.contains(&t), "{t:?} in {overall_topics:?}");
    }
    assert!(!overall_topics.contains(&Topic::Price) && !overall_topics.contains(&Topic::Website));
    let damage = s
        .overall
        .topics
        .iter()
        .find(|t| t.topic == Topic::Quality)
        .expect("quality");
    assert_eq!(
        damage.negative, damage.texts,
        "every damage text is a complaint"
    );

    // a quarter of the people write in Chinese
    let zh = s.languages.get("zh").copied().unwrap_or(0) as f64;
    let en = s.languages.get("en").copied().unwrap_or(0) as f64;
    assert!((0.12..0.4).contains(&(zh / (zh + en))), "{:?}", s.languages);
    let words: HashSet<&str> = s
        .keywords
        .as_ref()
        .expect("admin sees words")
        .iter()
        .map(|k| k.word.as_str())
        .collect();
    assert!(
        words.contains("delivery") || words.contains("refund"),
        "{words:?}"
    );

    // the trend: every month from the first to the last, the dated items
    let dated = counted.iter().filter(|f| f.time.is_some()).count();
    let in_trend: usize = s
        .trend
        .iter()
        .map(|p| p.figures.as_ref().map_or(0, |f| f.feedback))
        .sum();
    assert_eq!(in_trend, dated);
    let labels: Vec<&str> = s.trend.iter().map(|p| p.period.as_str()).collect();
    let mut sorted = labels.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(labels, sorted, "ascending, each month once");
    assert!(labels.len() >= 12, "{labels:?}");
    let change = s.change.as_ref().expect("a change");
    assert!(change.from < change.to);

    // weeks: the same items, more periods
    let w = engine
        .share_feedback_summary(
            &admin(Action::FeedbackRead),
            &ins,
            &FeedbackQuery {
                period: Period::Week,
                by: GroupBy::Segment,
            },
        )
        .expect("weekly");
    assert!(w.trend.len() > 4 * labels.len() - 8);
    assert!(w.trend[0].period.contains("-W"));
    assert_eq!(w.overall.nps, s.overall.nps);
    let in_segments: usize = w.groups.iter().map(|g| g.figures.feedback).sum();
    assert_eq!(in_segments, s.overall.feedback, "each item in one segment");

    // audited as an aggregate: no customer named
    let recs = engine
        .audit_records(
            &admin(Action::AuditRead),
            &AuditFilter {
                limit: 20,
                ..Default::default()
            },
        )
        .expect("audit")
        .records;
    let r = recs
        .iter()
        .find(|r| r.entry.action == "feedback.summary")
        .expect("an audit record");
    assert!(r.entry.customers.is_empty());
}

#[test]
fn other_roles_see_no_figure_behind_fewer_than_the_minimum() {
    let min = 20;
    let (_fx, engine) = store_with(300, &format!("min_group_size = {min}"));
    let ins = Insights::current(&engine).expect("insights");
    let exact = summary(
        &engine,
        &admin(Action::FeedbackRead),
        &ins,
        GroupBy::Segment,
    );
    let small: Vec<&str> = exact
        .groups
        .iter()
        .filter(|g| g.figures.customers < min)
        .map(|g| g.group.as_str())
        .collect();
    assert!(
        !small.is_empty(),
        "the demo must have small segments for this test"
    );
    for role in ["marketing", "sales", "support"] {
        let a = as_role(&engine, role, None, Action::FeedbackRead);
        let s = summary(&engine, &a, &ins, GroupBy::Segment);
        assert!(!s.privacy.exact, "{role}");
        assert_eq!(s.privacy.min_group_size, Some(min));
        let mut merged = s.privacy.merged.clone();
        merged.sort();
        let mut want: Vec<String> = small.iter().map(|x| x.to_string()).collect();
        want.sort();
        assert_eq!(merged, want, "{role}: the small segments are merged");
        for g in &s.groups {
            assert!(
                !small.contains(&g.group.as_str()),
                "{role}: {} shown",
                g.group
            );
            assert!(g.figures.customers >= min, "{role}: {}", g.group);
            for t in &g.figures.topics {
                assert!(
                    t.customers >= min,
                    "{role}: topic {:?} of {}",
                    t.topic,
                    g.group
                );
            }
        }
        if let Some(other) = s.groups.iter().find(|g| g.group == OTHER) {
            let merged_items: usize = exact
                .groups
                .iter()
                .filter(|g| small.contains(&g.group.as_str()))
                .map(|g| g.figures.feedback)
                .sum();
            assert_eq!(other.figures.feedback, merged_items);
        }
        for p in &s.trend {
            if let Some(f) = &p.figures {
                assert!(f.customers >= min, "{role}: period {}", p.period);
            }
            let e = exact
                .trend
                .iter()
                .find(|x| x.period == p.period)
                .expect("same periods");
            let people = e.figures.as_ref().map_or(0, |f| f.customers);
            assert_eq!(p.figures.is_some(), people >= min, "{role}: {}", p.period);
        }
        // the whole store is far above the minimum: the same figures
        assert_eq!(s.overall.nps, exact.overall.nps, "{role}");
        assert_eq!(s.overall.csat, exact.overall.csat, "{role}");
        // words: only where feedback text is visible, each of enough people
        match role {
            "support" => {
                let k = s.keywords.as_ref().expect("support sees words");
                assert!(!k.is_empty());
                assert!(k.iter().all(|w| w.customers >= min), "{k:?}");
            }
            _ => assert!(s.keywords.is_none(), "{role} sees words"),
        }
    }
    // the analyst: exact groups and scores, but no words, and what the
    // texts say only where enough people wrote them (feedback text hidden)
    let an = summary(
        &engine,
        &as_role(&engine, "analyst", None, Action::FeedbackRead),
        &ins,
        GroupBy::Segment,
    );
    assert!(an.privacy.exact && an.keywords.is_none());
    assert_eq!(an.groups.len(), exact.groups.len());
    let mut withheld = 0;
    for (g, e) in an.groups.iter().zip(&exact.groups) {
        assert_eq!(g.group, e.group);
        assert_eq!(
            (&g.figures.nps, &g.figures.csat),
            (&e.figures.nps, &e.figures.csat)
        );
        for t in &g.figures.topics {
            assert!(
                t.customers >= min,
                "analyst: topic {:?} of {}",
                t.topic,
                g.group
            );
        }
        if e.figures.sentiment.is_some() && g.figures.sentiment.is_none() {
            withheld += 1;
        }
    }
    assert!(
        withheld > 0,
        "a small segment's sentiment is withheld from the analyst"
    );

    // a support desk key: only its sources' feedback (tickets)
    let desk = summary(
        &engine,
        &as_role(&engine, "support", Some("support"), Action::FeedbackRead),
        &ins,
        GroupBy::Department,
    );
    let groups: Vec<&str> = desk.groups.iter().map(|g| g.group.as_str()).collect();
    assert_eq!(groups, vec!["support/ticket"]);
    assert!(desk.overall.nps.is_none() && desk.overall.csat.is_none());

    // who may not
    let customer = Principal {
        name: "token".into(),
        kind: PrincipalKind::Customer,
        role: "customer".into(),
        customer: Some(ins.ds.customers[0].id),
        ..Principal::local(None)
    };
    assert!(matches!(
        engine.authorize(
            &engine.policy().expect("policy"),
            &customer,
            Action::FeedbackRead
        ),
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        engine.share_feedback_summary(&admin(Action::StatsRead), &ins, &FeedbackQuery::default()),
        Err(EngineError::Forbidden(_))
    ));
}

#[test]
fn under_differential_privacy_only_exact_roles_get_figures() {
    let (_fx, engine) = store_with(150, "dp_epsilon = 1.0");
    let ins = Insights::current(&engine).expect("insights");
    let m = as_role(&engine, "marketing", None, Action::FeedbackRead);
    match engine.share_feedback_summary(&m, &ins, &FeedbackQuery::default()) {
        Err(EngineError::Forbidden(msg)) => assert!(msg.contains("differential privacy"), "{msg}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let a = summary(
        &engine,
        &admin(Action::FeedbackRead),
        &ins,
        GroupBy::Department,
    );
    assert!(a.overall.feedback > 0);
}

#[test]
fn the_inbox_notes_sentiment_beside_texts_it_shows() {
    let (_fx, engine) = imported(150, 5);
    let q = InboxQuery {
        kind: Some("ticket".into()),
        limit: 200,
        ..Default::default()
    };
    let page = engine
        .share_feedback_inbox(&admin(Action::CustomersRead), &q)
        .expect("inbox");
    let noted: Vec<_> = page
        .items
        .iter()
        .filter_map(|i| i.text.as_ref().zip(i.analysis.as_ref()))
        .collect();
    assert!(!noted.is_empty());
    for (text, note) in &noted {
        let expect = infogap_models::text::analyze(text);
        assert_eq!(note.polarity, expect.sentiment.polarity, "{text}");
        assert_eq!(note.topics, expect.topics, "{text}");
    }
    assert!(
        noted
            .iter()
            .any(|(_, n)| n.lang == infogap_models::text::TextLang::Zh)
    );
    // the analyst does not see texts, nor what they say
    let an = engine
        .share_feedback_inbox(
            &as_role(&engine, "analyst", None, Action::CustomersRead),
            &q,
        )
        .expect("inbox");
    assert!(
        an.items
            .iter()
            .all(|i| i.text.is_none() && i.analysis.is_none())
    );
}
