//! The self-service portal's use cases and the staff feedback inbox on the
//! demo store: a customer's correction lands as a `self-service` fact with
//! its line beside the department's value and staff see the disagreement;
//! survey answers, reviews and forum posts are validated, land as feedback
//! (a review also as a rating the next snapshot holds) and are counted by
//! the churn features; the inbox shows them per role and per department;
//! a customer's own view never holds another customer's data; every use
//! case leaves its audit record; refused calls leave the store unchanged.

use std::collections::{BTreeSet, HashMap, HashSet};

use infogap_core::access::Action;
use infogap_core::dataset::AttrValue;
use infogap_engine::access::{Access, Principal, PrincipalKind};
use infogap_engine::selfservice::{
    FeedbackInput, FeedbackKind, Inbox, InboxQuery, KIND_NPS, KIND_REVIEW,
};
use infogap_engine::{Engine, EngineError};
use infogap_store::audit::{AuditFilter, AuditRecord};

use crate::{admin, imported};

/// A customer's grant of `action` (their own token).
fn customer(engine: &Engine, id: i64, action: Action) -> Access {
    let p = Principal {
        name: format!("token of #{id}"),
        kind: PrincipalKind::Customer,
        role: "customer".into(),
        customer: Some(id),
        ..Principal::local(None)
    };
    engine
        .authorize(&engine.policy().expect("policy"), &p, action)
        .expect("a customer acts on its own data")
}

/// A staff grant of `action` under a role, optionally limited to a department.
fn staff(engine: &Engine, role: &str, department: Option<&str>, action: Action) -> Access {
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

fn generation(engine: &Engine) -> i64 {
    engine.store().generation().expect("generation").generation
}

fn invalid_on<T: std::fmt::Debug>(r: Result<T, EngineError>, field: &str) -> String {
    match r {
        Err(EngineError::Invalid(m)) => {
            assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
            m
        }
        other => panic!("expected Invalid on {field}, got {other:?}"),
    }
}

fn audit_of(engine: &Engine, id: i64) -> Vec<AuditRecord> {
    engine
        .audit_records(
            &admin(Action::AuditRead),
            &AuditFilter {
                customer: Some(id),
                limit: 1000,
                ..Default::default()
            },
        )
        .expect("audit")
        .records
}

/// Customers whose `attribute` only the CRM holds, with its value.
fn crm_only(engine: &Engine, attribute: &str) -> Vec<(i64, AttrValue)> {
    let prov = engine.store().provenance().expect("provenance");
    let crm = engine
        .store()
        .sources()
        .expect("sources")
        .into_iter()
        .find(|s| s.name == "crm")
        .expect("crm")
        .id;
    let mut by: HashMap<i64, Vec<(i64, AttrValue)>> = HashMap::new();
    for a in prov.attributes.iter().filter(|a| a.name == attribute) {
        by.entry(a.customer_id)
            .or_default()
            .push((a.source_id, a.value.clone()));
    }
    let mut out: Vec<(i64, AttrValue)> = by
        .into_iter()
        .filter(|(_, v)| v.len() == 1 && v[0].0 == crm)
        .map(|(c, mut v)| (c, v.remove(0).1))
        .collect();
    out.sort_by_key(|x| x.0);
    out
}

fn nps(score: f64, text: &str) -> FeedbackInput {
    FeedbackInput {
        kind: FeedbackKind::Nps,
        score: Some(score),
        text: Some(text.into()),
        product: None,
    }
}

/// Every page of the inbox (following the cursor).
fn all_pages(engine: &Engine, a: &Access, mut q: InboxQuery) -> (Vec<Inbox>, usize) {
    let mut pages = Vec::new();
    let mut items = 0;
    loop {
        let page = engine.share_feedback_inbox(a, &q).expect("inbox");
        items += page.items.len();
        let next = page.next_cursor.clone();
        pages.push(page);
        match next {
            Some(c) => q.before = Some(c),
            None => return (pages, items),
        }
    }
}

#[test]
fn a_correction_lands_beside_the_crm_value_and_staff_see_the_conflict() {
    let (_fx, engine) = imported(300, 21);
    let candidates = crm_only(&engine, "age_band");
    let (x, crm_value) = candidates.first().cloned().expect("a CRM-only age band");
    let (y, _) = candidates.get(1).cloned().expect("a second one");
    // another band the store knows, different from the CRM's
    let prov = engine.store().provenance().expect("provenance");
    let new_value = prov
        .attributes
        .iter()
        .filter(|a| a.name == "age_band" && a.value != crm_value)
        .map(|a| a.value.as_text())
        .next()
        .expect("another band");
    let attrs_before = prov.attributes.len();
    let gen_before = generation(&engine);
    let me = customer(&engine, x, Action::SelfWrite);

    // refused: unknown attribute, empty or long value, the record-time
    // attribute, a staff principal, a customer's read grant
    let m = invalid_on(
        engine.submit_correction(&me, "shoe_size", "42"),
        "attribute",
    );
    assert!(m.contains("shoe_size"), "{m}");
    invalid_on(engine.submit_correction(&me, "age_band", "   "), "value");
    invalid_on(
        engine.submit_correction(&me, "age_band", &"x".repeat(201)),
        "value",
    );
    invalid_on(
        engine.submit_correction(&me, "first_seen", "2020-01-01"),
        "attribute",
    );
    assert!(matches!(
        engine.submit_correction(&admin(Action::CustomersRead), "age_band", &new_value),
        Err(EngineError::Forbidden(_))
    ));
    assert!(matches!(
        engine.submit_correction(
            &customer(&engine, x, Action::SelfRead),
            "age_band",
            &new_value
        ),
        Err(EngineError::Forbidden(_))
    ));
    assert_eq!(generation(&engine), gen_before, "refusals write nothing");
    assert_eq!(
        engine
            .store()
            .provenance()
            .expect("provenance")
            .attributes
            .len(),
        attrs_before
    );

    // the correction: the first line of the self-service source
    let c = engine
        .submit_correction(&me, " age_band ", &format!(" {new_value} "))
        .expect("correction");
    assert_eq!(c.customer, x);
    assert_eq!(c.attribute, "age_band");
    assert_eq!(c.value.as_text(), new_value);
    assert_eq!((c.source.as_str(), c.line), ("self-service", 1));
    assert!(c.changed && c.conflict, "{c:?}");
    assert_eq!(c.others.len(), 1);
    assert_eq!(c.others[0].source, "crm");
    assert_eq!(c.others[0].value.as_ref(), Some(&crm_value));
    assert_eq!(
        generation(&engine),
        gen_before + 1,
        "one write, one generation"
    );

    // both values are in the store, each with its source
    let facts = engine.store().customer_facts(x, None).expect("facts");
    let bands: BTreeSet<(String, String)> = facts
        .attributes
        .iter()
        .filter(|(n, _, _)| n == "age_band")
        .map(|(_, v, s)| (v.as_text(), s.clone()))
        .collect();
    assert_eq!(
        bands,
        BTreeSet::from([
            (crm_value.as_text(), "crm".to_string()),
            (new_value.clone(), "self-service".to_string()),
        ])
    );
    let rows = engine.store().person_rows(x).expect("rows");
    assert!(
        rows.attributes
            .iter()
            .any(|r| r.name == "age_band" && r.source == "self-service" && r.line == 1)
    );

    // the per-source counter: another customer's correction is line 2;
    // the same value again writes nothing
    let other = engine
        .submit_correction(
            &customer(&engine, y, Action::SelfWrite),
            "region",
            "Atlantis",
        )
        .expect("correction");
    assert_eq!(other.line, 2);
    let at = generation(&engine);
    let again = engine
        .submit_correction(&me, "age_band", &new_value)
        .expect("same again");
    assert!(!again.changed && again.line == 1 && again.conflict);
    assert_eq!(generation(&engine), at);

    // staff see the disagreement with both sources, and self-service as a department
    let g = engine
        .gap_customer(&admin(Action::CustomersRead), x)
        .expect("gap");
    let conflict = g
        .conflicts
        .iter()
        .find(|c| c.attribute == "age_band")
        .expect("age_band conflict");
    let by_value: HashMap<Option<String>, Vec<String>> = conflict
        .values
        .iter()
        .map(|v| (v.value.clone(), v.sources.clone()))
        .collect();
    assert_eq!(
        by_value.get(&Some(new_value.clone())),
        Some(&vec!["self-service".to_string()])
    );
    assert_eq!(
        by_value.get(&Some(crm_value.as_text())),
        Some(&vec!["crm".to_string()])
    );
    let dept = g
        .departments
        .iter()
        .find(|d| d.name == "self-service")
        .expect("self-service department");
    assert!(dept.knows, "{dept:?}");
    assert!(g.departments.iter().any(|d| d.name == "crm"));

    // audited: the attribute's name, never the value
    let recs: Vec<AuditRecord> = audit_of(&engine, x)
        .into_iter()
        .filter(|r| r.entry.action == "self.correct")
        .collect();
    assert_eq!(recs.len(), 2, "{recs:?}");
    for r in &recs {
        assert_eq!(r.entry.fields, vec!["age_band".to_string()]);
        assert_eq!(r.entry.actor_kind, "customer");
        assert_eq!(r.entry.customers, vec![x]);
        let json = serde_json::to_string(r).expect("json");
        assert!(!json.contains(&new_value), "{json}");
    }
}

#[test]
fn feedback_is_validated_lands_in_the_inbox_per_role_and_feeds_the_models() {
    let (_fx, engine) = imported(300, 22);
    let (mut snap, _) = engine.snapshot().expect("snapshot");
    let ds = snap.dataset();
    let x = ds
        .customers
        .iter()
        .find(|c| c.key.starts_with("crm:"))
        .expect("a CRM customer")
        .id;
    let product = ds.products[0].clone();
    let me = customer(&engine, x, Action::SelfWrite);
    let gen_before = generation(&engine);
    let feedback_before = engine.store().stats(false).expect("stats").feedback;

    invalid_on(engine.submit_feedback(&me, &nps(11.0, "too high")), "score");
    invalid_on(
        engine.submit_feedback(
            &me,
            &FeedbackInput {
                kind: FeedbackKind::Csat,
                score: Some(0.0),
                text: None,
                product: None,
            },
        ),
        "score",
    );
    let m = invalid_on(
        engine.submit_feedback(
            &me,
            &FeedbackInput {
                kind: FeedbackKind::Review,
                score: Some(4.0),
                text: None,
                product: Some("NO-SUCH-SKU".into()),
            },
        ),
        "product",
    );
    assert!(m.contains("catalogue"), "{m}");
    invalid_on(
        engine.submit_feedback(
            &me,
            &FeedbackInput {
                kind: FeedbackKind::Forum,
                score: None,
                text: None,
                product: None,
            },
        ),
        "text",
    );
    assert!(matches!(
        engine.submit_feedback(&admin(Action::CustomersRead), &nps(9.0, "staff")),
        Err(EngineError::Forbidden(_))
    ));
    assert_eq!(generation(&engine), gen_before, "refusals write nothing");
    assert_eq!(
        engine.store().stats(false).expect("stats").feedback,
        feedback_before
    );

    // a valid NPS answer
    let text = "The portal made it easy, marker 7Q";
    let r = engine.submit_feedback(&me, &nps(9.0, text)).expect("nps");
    assert_eq!(
        (
            r.kind.as_str(),
            r.score,
            r.source.as_str(),
            r.channel.as_str()
        ),
        (KIND_NPS, Some(9.0), "self-service", "portal")
    );
    assert!(!r.rating_event);
    assert_eq!(generation(&engine), gen_before + 1);

    let q = InboxQuery {
        kind: Some(KIND_NPS.into()),
        ..Default::default()
    };
    let find = |inbox: &Inbox, id: Option<i64>| {
        inbox
            .items
            .iter()
            .find(|i| i.source == "self-service" && id.is_none_or(|id| i.id == id))
            .cloned()
    };
    let adm = engine
        .share_feedback_inbox(&staff(&engine, "admin", None, Action::CustomersRead), &q)
        .expect("admin inbox");
    let item = find(&adm, None).expect("the answer is in the admin's inbox");
    assert_eq!(item.customer, x);
    assert_eq!(
        (item.kind.as_str(), item.score, item.text.as_deref()),
        (KIND_NPS, Some(9.0), Some(text))
    );
    assert_eq!(item.channel.as_deref(), Some("portal"));
    assert!(adm.items.iter().all(|i| i.kind == KIND_NPS));
    assert_eq!(adm.summary.nps_answers, adm.summary.count);
    assert!(
        adm.summary
            .nps
            .is_some_and(|n| (-100.0..=100.0).contains(&n))
    );
    let sup = engine
        .share_feedback_inbox(&staff(&engine, "support", None, Action::CustomersRead), &q)
        .expect("support inbox");
    assert_eq!(
        find(&sup, Some(item.id)).expect("support").text.as_deref(),
        Some(text)
    );
    let ana = engine
        .share_feedback_inbox(&staff(&engine, "analyst", None, Action::CustomersRead), &q)
        .expect("analyst inbox");
    let seen = find(&ana, Some(item.id)).expect("analyst");
    assert_eq!((seen.text, seen.score), (None, Some(9.0)), "text hidden");
    assert!(ana.pseudonymized && seen.customer == 0 && !seen.key.contains("crm:"));
    let sales = engine
        .share_feedback_inbox(&staff(&engine, "sales", None, Action::CustomersRead), &q)
        .expect("sales inbox");
    assert_eq!(
        find(&sales, Some(item.id)).expect("sales").text,
        Some(format!("[redacted: {} characters]", text.chars().count()))
    );
    // a score filter that excludes it
    let low = engine
        .share_feedback_inbox(
            &staff(&engine, "admin", None, Action::CustomersRead),
            &InboxQuery {
                max_score: Some(6.0),
                ..q.clone()
            },
        )
        .expect("low scores");
    assert!(find(&low, Some(item.id)).is_none());
    assert!(low.items.iter().all(|i| i.score.is_some_and(|s| s <= 6.0)));
    invalid_on(
        engine.share_feedback_inbox(
            &staff(&engine, "admin", None, Action::CustomersRead),
            &InboxQuery {
                limit: 0,
                ..Default::default()
            },
        ),
        "limit",
    );
    assert!(matches!(
        engine.share_feedback_inbox(&customer(&engine, x, Action::SelfRead), &q),
        Err(EngineError::Forbidden(_))
    ));

    // a review: feedback and a rating event the next snapshot holds
    let ratings_before = ds.events.iter().filter(|e| e.kind == "rating").count();
    let r = engine
        .submit_feedback(
            &me,
            &FeedbackInput {
                kind: FeedbackKind::Review,
                score: Some(4.0),
                text: None,
                product: Some(product.key.clone()),
            },
        )
        .expect("review");
    assert!(r.rating_event && r.kind == KIND_REVIEW);
    let report = engine.refresh(&mut snap).expect("refresh");
    assert_eq!(report.generation, generation(&engine));
    let ds = snap.dataset();
    assert_eq!(
        ds.events.iter().filter(|e| e.kind == "rating").count(),
        ratings_before + 1
    );
    assert!(ds.events.iter().any(|e| e.kind == "rating"
        && e.customer == x
        && e.product == Some(product.id)
        && e.value == Some(4.0)
        && e.channel.as_deref() == Some("portal")));
    assert!(
        ds.feedback
            .iter()
            .any(|f| f.customer == x && f.kind == KIND_REVIEW && f.score == Some(4.0))
    );
    // the churn features count both answers as the newest survey and review
    let cutoff = chrono::Utc::now().timestamp() + 86_400;
    let t = infogap_engine::features::build_features(
        &ds,
        cutoff,
        &infogap_engine::features::FeatureOptions::default(),
    );
    let row = t.customers.iter().position(|&c| c == x).expect("row");
    let col = |name: &str| {
        t.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    assert_eq!(t.get(row, col("survey_last")), 9.0);
    assert_eq!(t.get(row, col("review_last")), 4.0);

    // audited: the kind, never the text
    let recs = audit_of(&engine, x);
    let fb: Vec<&AuditRecord> = recs
        .iter()
        .filter(|r| r.entry.action == "self.feedback")
        .collect();
    assert_eq!(fb.len(), 2);
    assert!(fb.iter().any(|r| r.entry.detail.contains(KIND_NPS)));
    assert!(fb.iter().any(|r| r.entry.detail.contains(KIND_REVIEW)));
    for r in &recs {
        assert!(
            !serde_json::to_string(r)
                .expect("json")
                .contains("marker 7Q"),
            "{r:?}"
        );
    }
    let reads: Vec<&AuditRecord> = recs
        .iter()
        .filter(|r| r.entry.action == "feedback.read")
        .collect();
    assert!(
        reads.len() >= 4,
        "admin, support, analyst, sales: {reads:?}"
    );
    let analyst = reads
        .iter()
        .find(|r| r.entry.role == "analyst")
        .expect("analyst read");
    assert!(!analyst.entry.fields.contains(&"feedback_text".to_string()));
    assert!(
        analyst.entry.customers.contains(&x),
        "the real id is audited"
    );
}

#[test]
fn my_data_holds_only_my_own_values_by_department_with_provenance() {
    let (_fx, engine) = imported(250, 23);
    let candidates = crm_only(&engine, "region");
    let (a_id, _) = candidates.first().cloned().expect("A");
    let (b_id, _) = candidates.get(1).cloned().expect("B");
    // distinctive values planted for B
    let b_value = "Zanzibar-B-7781";
    let b_text = "B secret forum words 3345";
    engine
        .submit_correction(
            &customer(&engine, b_id, Action::SelfWrite),
            "region",
            b_value,
        )
        .expect("B corrects");
    engine
        .submit_feedback(
            &customer(&engine, b_id, Action::SelfWrite),
            &FeedbackInput {
                kind: FeedbackKind::Forum,
                score: None,
                text: Some(b_text.into()),
                product: None,
            },
        )
        .expect("B posts");
    // and A's own
    let a_value = "Avalon-A-5512";
    engine
        .submit_correction(
            &customer(&engine, a_id, Action::SelfWrite),
            "region",
            a_value,
        )
        .expect("A corrects");
    engine
        .submit_feedback(&customer(&engine, a_id, Action::SelfWrite), &nps(8.0, "ok"))
        .expect("A answers");

    let mine = engine
        .share_my_data(&customer(&engine, a_id, Action::SelfRead))
        .expect("my data");
    let json = serde_json::to_string(&mine).expect("json");
    assert!(
        !json.contains(b_value) && !json.contains(b_text),
        "B's values leak"
    );
    for i in engine.store().customer_identities(b_id).expect("B's keys") {
        if i.kind == "email" || i.kind == "phone" {
            assert!(!json.contains(&i.value), "B's {} leaks", i.kind);
        }
    }
    assert_eq!(mine.customer, a_id);
    assert!(json.contains(a_value));

    // the configured departments, and self-service as its own
    assert!(mine.grouping.contains("[[department]]"));
    let dept = |n: &str| {
        mine.departments
            .iter()
            .find(|d| d.name == n)
            .unwrap_or_else(|| panic!("no department {n}: {json}"))
    };
    let own = dept("self-service");
    let region = own
        .attributes
        .iter()
        .find(|x| x.name == "region")
        .expect("A's correction");
    assert_eq!(region.value, Some(AttrValue::Text(a_value.into())));
    assert_eq!(region.source, "self-service");
    assert!(region.line >= 1);
    let fb = own
        .holdings
        .iter()
        .find(|h| h.kind == "feedback")
        .expect("feedback holding");
    assert_eq!(fb.count, 1);
    assert_eq!(fb.from[0].file.as_deref(), Some("portal-feedback"));
    assert!(fb.first.is_some() && fb.first == fb.last);
    // the CRM's attributes with file and line; its identity with its value
    let crm = dept("crm");
    let crm_region = crm
        .attributes
        .iter()
        .find(|x| x.name == "region" && x.source == "crm")
        .expect("the CRM's region");
    assert!(crm_region.line >= 1 && crm_region.value.is_some());
    assert!(
        crm_region
            .file
            .as_deref()
            .is_some_and(|f| f.ends_with("customers.csv")),
        "{crm_region:?}"
    );
    let a_keys: HashSet<String> = engine
        .store()
        .customer_identities(a_id)
        .expect("A's keys")
        .into_iter()
        .map(|i| i.value)
        .collect();
    let listed: Vec<&str> = mine
        .departments
        .iter()
        .flat_map(|d| d.identities.iter().map(|i| i.value.as_str()))
        .collect();
    assert!(!listed.is_empty() && listed.iter().all(|v| a_keys.contains(*v)));
    assert!(
        crm.holdings
            .iter()
            .any(|h| h.kind == "identities" && h.count >= 1)
    );

    // only the customer, for themselves; audited as a self read
    assert!(matches!(
        engine.share_my_data(&admin(Action::CustomersRead)),
        Err(EngineError::Forbidden(_))
    ));
    let reads: Vec<AuditRecord> = audit_of(&engine, a_id)
        .into_iter()
        .filter(|r| r.entry.action == "self.read")
        .collect();
    assert_eq!(reads.len(), 1);
    assert_eq!(reads[0].entry.customers, vec![a_id]);
    assert!(reads[0].entry.fields.contains(&"contact".to_string()));
}

#[test]
fn a_department_inbox_holds_only_its_sources_feedback() {
    let (_fx, engine) = imported(300, 24);
    let x = engine
        .dataset()
        .expect("dataset")
        .customers
        .iter()
        .find(|c| c.key.starts_with("crm:"))
        .expect("a CRM customer")
        .id;
    engine
        .submit_feedback(&customer(&engine, x, Action::SelfWrite), &nps(3.0, "slow"))
        .expect("nps");
    let q = InboxQuery {
        limit: 37,
        ..Default::default()
    };

    // the whole store, page by page: newest first, no duplicates, all counted
    let admin_key = staff(&engine, "admin", None, Action::CustomersRead);
    let (pages, n) = all_pages(&engine, &admin_key, q.clone());
    assert!(pages.len() > 1, "several pages");
    assert_eq!(n, pages[0].summary.count);
    let items: Vec<_> = pages.iter().flat_map(|p| p.items.iter()).collect();
    let ids: HashSet<i64> = items.iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), n);
    assert!(
        items
            .windows(2)
            .all(|w| w[0].time.as_deref().unwrap_or("") >= w[1].time.as_deref().unwrap_or(""))
    );
    let all_sources: BTreeSet<&str> = items.iter().map(|i| i.source.as_str()).collect();
    assert!(all_sources.contains("self-service") && all_sources.contains("support"));

    // the service department: its sources only (support, surveys, preferences)
    let service = staff(&engine, "support", Some("service"), Action::CustomersRead);
    let (pages, n) = all_pages(&engine, &service, q);
    let mine: Vec<_> = pages.iter().flat_map(|p| p.items.iter()).collect();
    assert!(n > 0 && n < ids.len());
    let allowed = ["support", "surveys", "preferences"];
    assert!(
        mine.iter().all(|i| allowed.contains(&i.source.as_str())),
        "{:?}",
        mine.iter().map(|i| &i.source).collect::<BTreeSet<_>>()
    );
    let expected = items
        .iter()
        .filter(|i| allowed.contains(&i.source.as_str()))
        .count();
    assert_eq!(n, expected, "every one of its sources' items, no other");
    // audited with exactly the customers it was shown
    let shown: BTreeSet<i64> = mine.iter().map(|i| i.customer).collect();
    let audited: BTreeSet<i64> = engine
        .audit_records(
            &admin(Action::AuditRead),
            &AuditFilter {
                actor: Some("support key".into()),
                limit: 1000,
                ..Default::default()
            },
        )
        .expect("audit")
        .records
        .iter()
        .filter(|r| r.entry.action == "feedback.read")
        .flat_map(|r| r.entry.customers.clone())
        .collect();
    assert_eq!(audited, shown);
}
