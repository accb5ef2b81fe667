//! Merge evidence, splits and the system's records as the dashboard gets
//! them, on the demo store: a merged customer's evidence names each link's
//! rule, source and line; a masked role never sees a raw email, in the
//! identities, the links or the merge log (a split of that email logged
//! it); a department sees only the customers its sources know; a split
//! makes one more customer and its unsplit takes it back, both audited;
//! only a role with `customers.merge` splits; import runs and model
//! versions need `models.train` and follow the department.

use std::collections::HashSet;

use infogap_core::access::Action;
use infogap_engine::access::{Access, Principal, PrincipalKind, mask_email};
use infogap_engine::{Engine, EngineError};
use infogap_store::IdentityRecord;
use infogap_store::audit::AuditFilter;

use crate::{admin, imported};

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

fn customers(engine: &Engine) -> i64 {
    engine.store().stats(false).expect("stats").customers
}

fn spec(i: &IdentityRecord) -> String {
    format!("{}:{}", i.namespace, i.value)
}

/// Customers with several identities, with those identities.
fn merged(engine: &Engine) -> Vec<(i64, Vec<IdentityRecord>)> {
    let store = engine.store();
    engine
        .dataset()
        .expect("dataset")
        .customers
        .iter()
        .map(|c| (c.id, store.customer_identities(c.id).expect("identities")))
        .filter(|(_, ids)| ids.len() >= 2)
        .collect()
}

/// Live links of an identity.
fn live_links(engine: &Engine, i: &IdentityRecord) -> usize {
    engine
        .store()
        .links_of(&[i.id])
        .expect("links")
        .iter()
        .filter(|l| !l.suppressed)
        .count()
}

fn actions_about(engine: &Engine, id: i64) -> Vec<(String, Vec<i64>)> {
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
        .into_iter()
        .map(|r| (r.entry.action, r.entry.customers))
        .collect()
}

#[test]
fn merge_evidence_names_rules_and_sources_and_masks_emails_everywhere() {
    let (_fx, engine) = imported(300, 31);
    let sources: HashSet<String> = engine
        .store()
        .sources()
        .expect("sources")
        .into_iter()
        .map(|s| s.name)
        .collect();
    // a merged customer with an email that a link joins to the others
    let (id, email) = merged(&engine)
        .into_iter()
        .find_map(|(id, ids)| {
            // a leaf (one live link): the split leaves the rest as one customer
            let e = ids
                .iter()
                .find(|i| i.kind == "email" && live_links(&engine, i) == 1)?;
            Some((id, e.clone()))
        })
        .expect("a merged customer with a linked email");

    // admin: every identity, each link with its rule, source and line
    let ev = engine
        .share_merges(&admin(Action::CustomersRead), id)
        .expect("evidence");
    assert_eq!(ev.id, id);
    assert_eq!(ev.not_shown, 0);
    assert_eq!(
        ev.identities.len(),
        engine.store().customer_identities(id).expect("ids").len()
    );
    assert!(!ev.links.is_empty(), "a merged customer has links");
    for l in &ev.links {
        assert!(
            ["same_record", "link_table"].contains(&l.rule.as_str()),
            "{l:?}"
        );
        assert!(sources.contains(&l.source), "{l:?}");
        assert!(l.line >= 1, "{l:?}");
        assert!(!l.suppressed && l.other_customer.is_none(), "{l:?}");
    }
    let shown = ev
        .identities
        .iter()
        .find(|i| i.kind == "email")
        .expect("the email");
    assert_eq!(shown.value, email.value);
    assert_eq!(shown.spec.as_deref(), Some(spec(&email).as_str()));
    assert!(shown.active_links > 0);
    assert!(
        actions_about(&engine, id)
            .iter()
            .any(|(a, c)| a == "customers.merges" && c == &vec![id]),
        "the read is audited"
    );

    // analyst (contact masked): the masked email, never the raw one
    let analyst = staff(&engine, "analyst", None, Action::CustomersRead);
    let json =
        serde_json::to_string(&engine.share_merges(&analyst, id).expect("masked")).expect("json");
    assert!(!json.contains(&email.value), "{json}");
    assert!(json.contains(&mask_email(&email.value)), "{json}");
    assert!(
        !json.contains("\"spec\":\"email:"),
        "no spec of a masked value: {json}"
    );

    // split the email off: the merge log names it, the analyst still
    // never sees it, on either customer's evidence
    let rest = engine
        .store()
        .customer_identities(id)
        .expect("ids")
        .into_iter()
        .find(|i| i.id != email.id)
        .expect("another identity");
    let out = engine
        .share_split(&admin(Action::CustomersMerge), id, &spec(&email), true)
        .expect("split");
    assert_eq!(out.from_customer, id);
    let rest_home = engine
        .find_customer(&spec(&rest), None)
        .expect("find")
        .expect("the rest");
    assert_ne!(out.to_customer, rest_home);
    for c in [out.to_customer, rest_home] {
        let ev = engine.share_merges(&analyst, c).expect("after split");
        assert!(
            ev.history.iter().any(|h| h.action == "split"),
            "#{c}: {:?}",
            ev.history
        );
        let json = serde_json::to_string(&ev).expect("json");
        assert!(!json.contains(&email.value), "#{c}: {json}");
    }
    // admin sees the split link, pointing at the email's customer, with its undo
    let ev = engine
        .share_merges(&admin(Action::CustomersRead), rest_home)
        .expect("after split");
    let split_link = ev
        .links
        .iter()
        .find(|l| l.suppressed)
        .expect("a split link");
    assert_eq!(split_link.other_customer, Some(out.to_customer));
    assert_eq!(split_link.undo.as_deref(), Some(spec(&email).as_str()));
    assert!(
        ev.history
            .iter()
            .any(|h| h.action == "split" && h.detail.contains(&email.value)),
        "admin reads the log as written: {:?}",
        ev.history
    );
    assert!(
        ev.history
            .iter()
            .any(|h| h.action == "split" && h.detail.contains(&email.value))
    );
}

#[test]
fn departments_splits_and_system_records_follow_the_policy() {
    let (_fx, engine) = imported(300, 32);

    // a department sees only the customers its sources know
    let service = staff(&engine, "support", Some("service"), Action::CustomersRead);
    let known = engine
        .department_customers(&service)
        .expect("scope")
        .expect("a department");
    let all: Vec<i64> = engine
        .dataset()
        .expect("dataset")
        .customers
        .iter()
        .map(|c| c.id)
        .collect();
    let outside = *all
        .iter()
        .find(|c| !known.contains(c))
        .expect("a customer outside the service department");
    let inside = *all
        .iter()
        .find(|c| known.contains(c))
        .expect("a service customer");
    assert!(matches!(
        engine.share_merges(&service, outside),
        Err(EngineError::Forbidden(_))
    ));
    let ev = engine.share_merges(&service, inside).expect("its own");
    let theirs = ["support", "surveys", "preferences"];
    assert!(
        ev.identities
            .iter()
            .all(|i| theirs.contains(&i.source.as_str())),
        "{:?}",
        ev.identities
    );

    // a leaf identity (one live link) of a merged customer: its split
    // makes exactly one more customer, and the unsplit takes it back
    let (id, leaf) = merged(&engine)
        .into_iter()
        .find_map(|(id, ids)| {
            let leaf = ids.iter().find(|i| {
                let links = engine.store().links_of(&[i.id]).expect("links");
                links.len() == 1 && !links[0].suppressed
            })?;
            Some((id, leaf.clone()))
        })
        .expect("a merged customer with a leaf identity");
    let n0 = customers(&engine);
    let n_ids = engine.store().customer_identities(id).expect("ids").len();

    // refused: a role without customers.merge, a read grant, a bad spec
    let policy = engine.policy().expect("policy");
    for role in ["analyst", "marketing", "sales", "support"] {
        let p = Principal {
            name: format!("{role} key"),
            kind: PrincipalKind::Key,
            ..Principal::local(Some(role))
        };
        assert!(
            matches!(
                engine.authorize(&policy, &p, Action::CustomersMerge),
                Err(EngineError::Forbidden(_))
            ),
            "{role} may not split"
        );
    }
    let reader = staff(&engine, "analyst", None, Action::CustomersRead);
    assert!(matches!(
        engine.share_split(&reader, id, &spec(&leaf), true),
        Err(EngineError::Forbidden(_))
    ));
    let merge = admin(Action::CustomersMerge);
    for bad in ["", "no-colon", "email:nobody.here@example.invalid"] {
        match engine.share_split(&merge, id, bad, true) {
            Err(EngineError::Invalid(m) | EngineError::NotFound(m)) => {
                assert!(m.starts_with("identity:"), "{m}");
                assert!(!m.contains("nobody.here"), "no echo: {m}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // an identity of another customer is not split off this one
    let (other, other_ident) = merged(&engine)
        .into_iter()
        .find(|(c, _)| *c != id)
        .map(|(c, ids)| (c, ids[0].clone()))
        .expect("another merged customer");
    assert_ne!(other, id);
    assert!(matches!(
        engine.share_split(&merge, id, &spec(&other_ident), true),
        Err(EngineError::Invalid(_))
    ));
    assert_eq!(customers(&engine), n0, "refusals change nothing");

    let rest = engine
        .store()
        .customer_identities(id)
        .expect("ids")
        .into_iter()
        .find(|i| i.id != leaf.id)
        .expect("another identity");
    let out = engine
        .share_split(&merge, id, &spec(&leaf), true)
        .expect("split");
    assert_eq!(customers(&engine), n0 + 1);
    assert_eq!((out.from_customer, out.links_changed), (id, 1));
    let find = |i: &IdentityRecord| {
        engine
            .find_customer(&spec(i), None)
            .expect("find")
            .expect("an identity's customer")
    };
    // the leaf and the rest are two customers now, one of them the old id
    let (new, rest_home) = (out.to_customer, find(&rest));
    assert_eq!(find(&leaf), new);
    assert_ne!(new, rest_home);
    assert!(new == id || rest_home == id, "{new} {rest_home} {id}");
    let both = {
        let mut v = vec![new, rest_home];
        v.sort();
        v
    };
    assert!(
        actions_about(&engine, id)
            .iter()
            .any(|(a, c)| a == "customers.split" && c == &both),
        "the split is audited with both customers: {:?}",
        actions_about(&engine, id)
    );
    // splitting it again: nothing live left to switch off
    assert!(matches!(
        engine.share_split(&merge, new, &spec(&leaf), true),
        Err(EngineError::Invalid(_))
    ));
    // an identity of a customer it was never split from is not rejoined there
    assert!(matches!(
        engine.share_split(&merge, other, &spec(&leaf), false),
        Err(EngineError::Invalid(_))
    ));

    // undone from the page of the customer that kept the others
    let back = engine
        .share_split(&merge, rest_home, &spec(&leaf), false)
        .expect("unsplit");
    assert_eq!(customers(&engine), n0);
    assert_eq!(back.from_customer, new);
    let home = find(&leaf);
    assert_eq!(back.to_customer, home);
    assert_eq!(find(&rest), home);
    assert_eq!(
        engine.store().customer_identities(home).expect("ids").len(),
        n_ids,
        "every identity is one customer again"
    );
    assert!(
        actions_about(&engine, home)
            .iter()
            .any(|(a, c)| a == "customers.unsplit" && c.contains(&home)),
        "the unsplit is audited"
    );
    assert!(matches!(
        engine.share_split(&merge, home, &spec(&leaf), false),
        Err(EngineError::Invalid(_))
    ));

    // import runs and model versions: models.train only
    engine
        .save_model(
            "churn",
            &serde_json::json!({"model": "logreg", "folds": 3}),
            &serde_json::json!({"auc": 0.71, "report": {"per_fold": [1, 2]}}),
            b"v1",
        )
        .expect("save");
    engine
        .save_model(
            "churn",
            &serde_json::json!({"model": "logreg"}),
            &serde_json::json!({"auc": 0.74}),
            b"v2",
        )
        .expect("save");
    let sys = engine
        .share_imports_and_models(&admin(Action::ModelsTrain))
        .expect("system");
    let runs = engine.store().import_runs().expect("runs");
    assert_eq!(sys.imports_total, runs.len());
    assert!(!sys.imports.is_empty());
    assert!(
        sys.imports
            .iter()
            .all(|r| !r.file.is_empty() && !r.file.contains('/') && r.file_sha256.len() == 12),
        "{:?}",
        sys.imports
    );
    let churn = sys
        .models
        .iter()
        .find(|m| m.kind == "churn")
        .expect("churn");
    assert_eq!((churn.version, churn.versions.clone()), (2, vec![1, 2]));
    assert_eq!(churn.metrics.get("auc"), Some(&serde_json::json!(0.74)));
    assert!(churn.created_at.is_some());
    let v1 = engine
        .store()
        .load_model_version("churn", 1)
        .expect("load")
        .expect("v1");
    assert!(v1.metrics.get("report").is_some());
    // a department's analyst: its sources' runs only
    let dept = staff(&engine, "analyst", Some("service"), Action::ModelsTrain);
    let mine = engine.share_imports_and_models(&dept).expect("dept");
    assert!(!mine.imports.is_empty() && mine.imports.len() < sys.imports.len());
    assert!(
        mine.imports
            .iter()
            .all(|r| theirs.contains(&r.source.as_str()))
    );
    // a read grant is not models.train
    assert!(matches!(
        engine.share_imports_and_models(&reader),
        Err(EngineError::Forbidden(_))
    ));
}
