//! Consent by purpose, enforced where the data is used: on the demo store,
//! a change recorded through the engine applies to the very next use
//! (segment exports and member lists: marketing; recommendations:
//! personalization; CLV lists and scores: profiling; analysts' customer
//! rows: analytics) with no retraining and no new snapshot; the modes of
//! `[privacy.consent]` decide for customers without a record; every change
//! is appended to the history; customer tokens change only their own.

use infogap_core::access::Action;
use infogap_core::privacy::{ANALYTICS, MARKETING, PERSONALIZATION, PROFILING};
use infogap_engine::access::{Policy, Principal, PrincipalKind};
use infogap_engine::analytics::{SegmentOptions, export_segment};
use infogap_engine::privacy::consent::{Reason, SELF_SERVICE_SOURCE, STAFF_SOURCE};
use infogap_engine::recs::{RecommendOptions, TrainOptions};
use infogap_engine::share::Insights;
use infogap_engine::{Engine, EngineError};

use crate::{admin, imported};

fn set_privacy(engine: &Engine, json: &str) {
    let mut tx = engine.store().begin().expect("begin");
    tx.set_setting("privacy", json).expect("setting");
    tx.commit().expect("commit");
}

fn change(engine: &Engine, id: i64, purpose: &str, granted: bool) {
    engine
        .share_consent_change(&admin(Action::ConsentsWrite), id, purpose, granted)
        .expect("consent change");
}

fn customer_token(id: i64) -> infogap_engine::access::Access {
    let p = Principal {
        name: format!("token of #{id}"),
        kind: PrincipalKind::Customer,
        role: "customer".into(),
        customer: Some(id),
        ..Principal::local(None)
    };
    Policy::default()
        .authorize(&p, Action::SelfWrite)
        .expect("a customer writes its own")
}

/// Ids of a CSV export (column `id`).
fn exported_ids(path: &std::path::Path) -> Vec<i64> {
    let text = std::fs::read_to_string(path).expect("export");
    text.lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .expect("id column")
                .parse()
                .expect("an id")
        })
        .collect()
}

#[test]
fn withdrawing_marketing_drops_the_person_from_the_next_segment_export_and_member_list() {
    let (fx, engine) = imported(250, 31);
    let ds = engine.dataset().expect("dataset");
    let ins = Insights::new(
        engine.store().generation().expect("generation").generation,
        vec![],
        std::sync::Arc::new(ds.clone()),
    );
    let seg = ins.segments().expect("segments");
    let consents = engine.consents().expect("consents");
    // a segment member who granted marketing (the demo's CRM consents)
    let member = seg
        .customers
        .iter()
        .find(|c| consents.allows(c.id, MARKETING).is_ok())
        .expect("someone granted marketing");
    let (x, segment) = (member.id, member.segment.clone());
    let out = fx.dir.path().join("export.csv");
    let export = admin(Action::SegmentsExport);
    let opts = SegmentOptions::default();

    let before = export_segment(&engine, &export, &ds, &opts, &segment, &out).expect("export");
    assert!(exported_ids(&out).contains(&x));
    // marketing is opt-in: members without a record are left out as not granted
    let members = seg
        .customers
        .iter()
        .filter(|c| c.segment == segment)
        .count();
    assert_eq!(before.written + before.left_out.total(), members);
    assert_eq!(before.written, exported_ids(&out).len());
    let page_before = engine
        .share_segment_members(&export, &ins, &segment, None, 0)
        .expect("members");
    assert!(page_before.members.iter().any(|m| m.id == x));
    assert_eq!(page_before.left_out, before.left_out);

    change(&engine, x, MARKETING, false);

    // the same data set and insights: no new snapshot, no retraining
    let after = export_segment(&engine, &export, &ds, &opts, &segment, &out).expect("export");
    let ids = exported_ids(&out);
    assert!(!ids.contains(&x), "the withdrawn customer is not exported");
    assert_eq!(after.written, before.written - 1);
    assert_eq!(after.left_out.withdrawn, before.left_out.withdrawn + 1);
    assert_eq!(after.left_out.not_granted, before.left_out.not_granted);
    assert!(after.left_out.describe().contains("withdrawn"));
    let page = engine
        .share_segment_members(&export, &ins, &segment, None, 0)
        .expect("members");
    assert!(page.members.iter().all(|m| m.id != x));
    assert_eq!(page.total, page_before.total - 1);
    assert_eq!(page.left_out.withdrawn, page_before.left_out.withdrawn + 1);

    // granting again brings them back
    change(&engine, x, MARKETING, true);
    let again = export_segment(&engine, &export, &ds, &opts, &segment, &out).expect("export");
    assert!(exported_ids(&out).contains(&x));
    assert_eq!(again.written, before.written);
}

#[test]
fn withdrawing_personalization_gives_the_labelled_popular_list_until_granted_again() {
    let (_fx, engine) = imported(250, 32);
    let train = TrainOptions {
        algo: "item-knn".into(),
        params: Vec::new(),
        signals: Default::default(),
        seed: 0,
        k: 10,
        progress: false,
    };
    infogap_engine::recs::train(&engine, &train).expect("train");
    let version = engine
        .load_model("recs")
        .expect("load")
        .expect("a model")
        .version;
    let ins = Insights::current(&engine).expect("insights");
    let loaded = ins.recs(&engine).expect("recs");
    let opts = RecommendOptions {
        k: 5,
        explain: true,
        ..Default::default()
    };
    let read = admin(Action::RecommendationsRead);
    // a customer with history (a personal answer)
    let x = (0..loaded.saved.histories.n_rows)
        .filter(|&r| loaded.saved.histories.row_len(r) >= 3)
        .find_map(|r| loaded.saved.users.id(r as u32)?.parse::<i64>().ok())
        .expect("a customer with history");
    let personal = engine
        .share_recommendations(&read, Some(&ins), &loaded, x, &opts)
        .expect("recs");
    assert!(personal.answer.personalized);
    assert_eq!(personal.answer.basis, "history");
    assert!(personal.answer.reason.is_none());

    change(&engine, x, PERSONALIZATION, false);
    // same insights (their answer cache holds the personal list): the
    // consent is read before it
    let popular = engine
        .share_recommendations(&read, Some(&ins), &loaded, x, &opts)
        .expect("recs");
    assert!(!popular.answer.personalized);
    assert_eq!(popular.answer.basis, "popular");
    assert_eq!(
        popular.answer.reason.as_deref(),
        Some("consent personalization withdrawn")
    );
    assert_eq!(popular.answer.history_items, 0);
    let want: Vec<u32> = loaded
        .saved
        .model
        .recommend(None, &[], 5, &Default::default())
        .items
        .iter()
        .map(|i| i.item)
        .collect();
    let got: Vec<String> = popular
        .answer
        .items
        .iter()
        .map(|i| i.product.key.clone())
        .collect();
    let want: Vec<String> = want
        .iter()
        .map(|&i| loaded.saved.products[i as usize].key.clone())
        .collect();
    assert_eq!(got, want, "the most popular products, nothing personal");
    assert!(
        popular
            .answer
            .items
            .iter()
            .all(|i| i.because.as_ref().is_none_or(|b| b.is_empty())),
        "no explanation by the customer's own items"
    );
    let serialized = serde_json::to_value(&popular).expect("json");
    assert_eq!(serialized["personalized"], false);
    assert_eq!(serialized["basis"], "popular");

    change(&engine, x, PERSONALIZATION, true);
    let back = engine
        .share_recommendations(&read, Some(&ins), &loaded, x, &opts)
        .expect("recs");
    assert!(back.answer.personalized);
    let keys = |a: &infogap_engine::share::SharedRecs| -> Vec<String> {
        a.answer
            .items
            .iter()
            .map(|i| i.product.key.clone())
            .collect()
    };
    assert_eq!(keys(&back), keys(&personal));
    // no retraining happened in between
    assert_eq!(
        engine
            .load_model("recs")
            .expect("load")
            .expect("a model")
            .version,
        version
    );

    // `recommend --all` reports who got the popular list and why
    change(&engine, x, PERSONALIZATION, false);
    let out = _fx.dir.path().join("all.csv");
    let rep = infogap_engine::recs::recommend_all(&engine, &read, &opts, &out, false).expect("all");
    assert_eq!(rep.popular_for_consent.withdrawn, 1);
    assert_eq!(rep.popular_for_consent.not_granted, 0);
    let text = std::fs::read_to_string(&out).expect("csv");
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.split(',').nth(1) == Some(x.to_string().as_str()))
        .collect();
    assert_eq!(rows.len(), 5);
    assert!(
        rows.iter().all(|l| l.ends_with(",popular-consent")),
        "{rows:?}"
    );
}

#[test]
fn the_configured_mode_decides_for_customers_without_a_record() {
    let (_fx, engine) = imported(200, 33);
    let ds = engine.dataset().expect("dataset");
    // someone with no consent row at all (the demo records only CRM customers)
    let x = ds
        .customers
        .iter()
        .map(|c| c.id)
        .find(|&id| {
            engine
                .store()
                .consent_history(id)
                .expect("history")
                .is_empty()
        })
        .expect("a customer without records");
    // defaults: marketing opt-in, the others opt-out
    assert_eq!(
        engine.consent_allows(x, MARKETING).expect("allows"),
        Err(Reason::NotGranted)
    );
    assert_eq!(
        engine.consent_allows(x, PERSONALIZATION).expect("allows"),
        Ok(())
    );
    assert_eq!(engine.consent_allows(x, PROFILING).expect("allows"), Ok(()));

    set_privacy(
        &engine,
        r#"{"consent":{"marketing":"opt-out","personalization":"opt-in"}}"#,
    );
    assert_eq!(engine.consent_allows(x, MARKETING).expect("allows"), Ok(()));
    assert_eq!(
        engine.consent_allows(x, PERSONALIZATION).expect("allows"),
        Err(Reason::NotGranted)
    );
    let all = engine.consents().expect("consents");
    assert_eq!(all.allows(x, MARKETING), Ok(()));
    assert_eq!(all.allows(x, PERSONALIZATION), Err(Reason::NotGranted));
    let view = engine
        .share_consents(&admin(Action::ConsentsRead), x)
        .expect("view");
    let p = view
        .purposes
        .iter()
        .find(|p| p.purpose == PERSONALIZATION)
        .expect("personalization");
    assert_eq!(p.mode.as_str(), "opt-in");
    assert!(!p.allowed && p.granted.is_none() && p.source.is_none());
    // a grant overrides the opt-in default
    change(&engine, x, PERSONALIZATION, true);
    assert_eq!(
        engine.consent_allows(x, PERSONALIZATION).expect("allows"),
        Ok(())
    );
}

#[test]
fn the_history_keeps_every_change_in_order_and_survives_reimports() {
    let (fx, engine) = imported(150, 34);
    let ds = engine.dataset().expect("dataset");
    let x = ds.customers[0].id;
    let before = engine.store().consent_history(x).expect("history");
    change(&engine, x, MARKETING, false);
    change(&engine, x, MARKETING, true);
    change(&engine, x, PROFILING, false);
    let h = engine.store().consent_history(x).expect("history");
    assert_eq!(h.len(), before.len() + 3, "appended, never rewritten");
    let added: Vec<(&str, bool, &str, &str)> = h[h.len() - 3..]
        .iter()
        .map(|r| {
            (
                r.purpose.as_str(),
                r.granted,
                r.source.as_str(),
                r.file.as_str(),
            )
        })
        .collect();
    assert_eq!(
        added,
        vec![
            (MARKETING, false, STAFF_SOURCE, "consent-changes"),
            (MARKETING, true, STAFF_SOURCE, "consent-changes"),
            (PROFILING, false, STAFF_SOURCE, "consent-changes"),
        ]
    );
    assert!(h.windows(2).all(|w| w[0].time <= w[1].time));
    let view = engine
        .share_consents(&admin(Action::ConsentsRead), x)
        .expect("view");
    assert_eq!(view.history.len(), h.len());
    let m = view
        .purposes
        .iter()
        .find(|p| p.purpose == MARKETING)
        .expect("m");
    assert!(m.allowed && m.source.as_deref() == Some(STAFF_SOURCE) && m.since.is_some());
    let p = view
        .purposes
        .iter()
        .find(|p| p.purpose == PROFILING)
        .expect("p");
    assert_eq!(p.reason, Some(Reason::Withdrawn));

    // re-importing a changed department consent file replaces that file's
    // rows only: the recorded changes stay
    let consents = fx.config.parent().expect("dir").join("crm/consents.csv");
    let text = std::fs::read_to_string(&consents).expect("read");
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&consents, lines.join("\n") + "\n").expect("write");
    let config = infogap_core::config::Config::load(&fx.config).expect("config");
    infogap_engine::import::import(&engine, &config, &Default::default()).expect("reimport");
    let after = engine.store().consent_history(x).expect("history");
    let staff = after.iter().filter(|r| r.source == STAFF_SOURCE).count();
    assert_eq!(staff, 3);
    assert_eq!(
        engine.consent_allows(x, PROFILING).expect("allows"),
        Err(Reason::Withdrawn)
    );
    // the store still loads its snapshot after the consent writes
    assert_eq!(
        engine.dataset().expect("dataset").customers.len(),
        ds.customers.len()
    );
}

#[test]
fn an_unknown_purpose_is_refused_by_name_and_records_nothing() {
    let (_fx, engine) = imported(120, 35);
    let x = engine.dataset().expect("dataset").customers[0].id;
    let before = engine.store().consent_history(x).expect("history").len();
    let e = engine
        .share_consent_change(&admin(Action::ConsentsWrite), x, "telepathy", false)
        .expect_err("unknown purpose");
    assert!(matches!(e, EngineError::Invalid(_)), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("telepathy"), "{msg}");
    for p in [PERSONALIZATION, PROFILING, MARKETING, ANALYTICS] {
        assert!(msg.contains(p), "{msg}");
    }
    assert_eq!(
        engine.store().consent_history(x).expect("history").len(),
        before
    );
    // a purpose the config adds is known
    set_privacy(&engine, r#"{"consent":{"surveys":"opt-in"}}"#);
    change(&engine, x, "surveys", true);
    assert_eq!(engine.consent_allows(x, "surveys").expect("allows"), Ok(()));
}

#[test]
fn a_customer_token_changes_only_its_own_consent() {
    let (_fx, engine) = imported(120, 36);
    let ds = engine.dataset().expect("dataset");
    let (me, other) = (ds.customers[0].id, ds.customers[1].id);
    let tok = customer_token(me);
    let e = engine
        .share_consent_change(&tok, other, MARKETING, true)
        .expect_err("another customer");
    assert!(matches!(e, EngineError::Forbidden(_)), "{e:?}");
    assert!(
        engine
            .store()
            .consent_history(other)
            .expect("history")
            .iter()
            .all(|r| r.source != SELF_SERVICE_SOURCE)
    );
    let view = engine
        .share_my_consent_change(&tok, MARKETING, true)
        .expect("own change");
    assert_eq!(view.customer, me);
    let last = view.history.last().expect("a record");
    assert_eq!(
        (last.purpose.as_str(), last.granted, last.source.as_str()),
        (MARKETING, true, SELF_SERVICE_SOURCE)
    );
    assert_eq!(
        engine.consent_allows(me, MARKETING).expect("allows"),
        Ok(())
    );
    // a staff principal without consents.write may not
    let analyst = Principal::local(Some("analyst"));
    assert!(
        Policy::default()
            .authorize(&analyst, Action::ConsentsWrite)
            .is_err()
    );
}

#[test]
fn profiling_and_analytics_leave_people_out_of_scores_and_analyst_rows() {
    let (_fx, engine) = imported(250, 37);
    infogap_engine::clv::train(&engine, None, infogap_models::clv::TimeUnit::Week).expect("clv");
    let read = admin(Action::ClvRead);
    let before = infogap_engine::clv::rank(&engine, &read, usize::MAX, 12, 0.01).expect("rank");
    let x = before.top[0].customer_id;
    change(&engine, x, PROFILING, false);
    let after = infogap_engine::clv::rank(&engine, &read, usize::MAX, 12, 0.01).expect("rank");
    assert!(after.top.iter().all(|c| c.customer_id != x));
    assert_eq!(after.top.len(), before.top.len() - 1);
    assert_eq!(after.left_out.withdrawn, before.left_out.withdrawn + 1);
    // the top N is still N long
    let top5 = infogap_engine::clv::rank(&engine, &read, 5, 12, 0.01).expect("rank");
    assert_eq!(top5.top.len(), 5);
    // one customer's value: none, and why
    let ins = Insights::current(&engine).expect("insights");
    let one = engine.share_clv(&read, &ins, x).expect("clv");
    assert!(one.clv.is_none() && one.rank.is_none() && one.band.is_none());
    assert_eq!(
        one.left_out.as_ref().map(|w| w.describe()),
        Some("consent profiling withdrawn".to_string())
    );

    // analysts' per-person rows omit whoever withdrew analytics
    let ds = engine.dataset().expect("dataset");
    let (_, mut rows) =
        infogap_engine::analytics::segments(&ds, &SegmentOptions::default()).expect("segments");
    let n = rows.len();
    let y = rows[0].id;
    change(&engine, y, ANALYTICS, false);
    let left = infogap_engine::share::share_segment_rows(
        &engine,
        &admin(Action::SegmentsExport),
        &mut rows,
    )
    .expect("rows");
    assert_eq!((left.withdrawn, left.not_granted), (1, 0));
    assert_eq!(rows.len(), n - 1);
    assert!(rows.iter().all(|r| r.id != y));
}
