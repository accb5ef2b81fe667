//! The person's export (GDPR Art. 15/20) on the demo store: a merged
//! customer's export holds the facts of every department with provenance,
//! its identities and links, consent history and access log; the zip holds
//! the same rows as the JSON; nobody else's data is in it; and only a
//! whole-person view may make one.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Cursor, Read};

use infogap_core::access::Action;
use infogap_engine::access::{Policy, Principal, PrincipalKind};
use infogap_engine::privacy::export::PersonExport;
use infogap_engine::{Engine, EngineError};

use super::{admin, imported};

/// The customer whose identities come from the most sources (at least 3).
fn merged_customer(engine: &Engine) -> i64 {
    let ds = engine.dataset().expect("dataset");
    let store = engine.store();
    let mut best = (0usize, 0i64);
    for c in &ds.customers {
        let ids = store.customer_identities(c.id).expect("identities");
        let sources: HashSet<i64> = ids.iter().map(|i| i.source_id).collect();
        if sources.len() > best.0 {
            best = (sources.len(), c.id);
        }
    }
    assert!(
        best.0 >= 3,
        "no demo customer has identities from 3 sources (best: {})",
        best.0
    );
    best.1
}

/// Every file of a zip, by name, decompressed.
fn unzip(bytes: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("the zip opens");
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("an entry");
        let mut b = Vec::new();
        f.read_to_end(&mut b).expect("an entry reads");
        out.insert(f.name().expect("a name").to_string(), b);
    }
    out
}

fn csv_rows(bytes: &[u8]) -> (Vec<String>, usize) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    let n = r
        .records()
        .collect::<Result<Vec<_>, _>>()
        .expect("CSV records")
        .len();
    (header, n)
}

#[test]
fn a_merged_customers_export_holds_every_department_with_provenance() {
    let (_fx, engine) = imported(200, 23);
    let id = merged_customer(&engine);
    let store = engine.store();

    // a staff read before the export: it must be in the access log
    engine
        .share_customer(&admin(Action::CustomersRead), id)
        .expect("customer read");
    let ex = engine
        .privacy_export(&admin(Action::PrivacyExport), None, id)
        .expect("export");
    assert_eq!(ex.customer_id, id);

    // identities: every one of the store's, with source and line
    let idents = store.customer_identities(id).expect("identities");
    assert_eq!(ex.identities.len(), idents.len());
    let ident_sources: BTreeSet<&str> = ex.identities.iter().map(|i| i.source.as_str()).collect();
    assert!(ident_sources.len() >= 3, "{ident_sources:?}");
    for i in &ex.identities {
        assert!(!i.source.is_empty() && i.line > 0, "{i:?}");
        assert!(idents.iter().any(|s| s.id == i.id && s.value == i.value));
    }
    // links: every identity but a lone one is joined by a link that names it
    assert!(!ex.links.is_empty());
    for i in &ex.identities {
        assert!(
            ex.links
                .iter()
                .any(|l| (l.a == i.id || l.b == i.id) && !l.source.is_empty() && l.line > 0),
            "identity {} ({}) has no link in the export",
            i.id,
            i.kind
        );
    }

    // facts: the same numbers as the store's own summary, every row with
    // its source and file (or line)
    let sum = store.customer_facts(id, None).expect("facts");
    let f = &ex.facts;
    assert_eq!(f.orders.len() as i64, sum.orders.count);
    assert_eq!(f.order_lines.len() as i64, sum.orders.lines);
    assert_eq!(
        f.events.len() as i64,
        sum.events.iter().map(|e| e.1).sum::<i64>()
    );
    assert_eq!(
        f.feedback.len() as i64,
        sum.feedback.iter().map(|x| x.count).sum::<i64>()
    );
    assert_eq!(
        f.campaigns.len() as i64,
        sum.campaigns
            .iter()
            .map(|c| c.received + c.redeemed)
            .sum::<i64>()
    );
    assert_eq!(f.attributes.len(), sum.attributes.len());
    let mut fact_sources: BTreeSet<String> = BTreeSet::new();
    for (src, file) in f
        .order_lines
        .iter()
        .map(|x| (&x.source, &x.file))
        .chain(f.events.iter().map(|x| (&x.source, &x.file)))
        .chain(f.feedback.iter().map(|x| (&x.source, &x.file)))
        .chain(f.campaigns.iter().map(|x| (&x.source, &x.file)))
        .chain(ex.consent_history.iter().map(|x| (&x.source, &x.file)))
    {
        assert!(!src.is_empty(), "a fact without a source");
        assert!(!file.is_empty(), "{src}: a fact without its file");
        fact_sources.insert(src.clone());
    }
    for o in &f.orders {
        assert!(!o.source.is_empty() && o.file.is_some(), "{o:?}");
    }
    for a in &f.attributes {
        assert!(
            !a.source.is_empty() && a.line > 0 && a.value.is_some(),
            "{a:?}"
        );
        fact_sources.insert(a.source.clone());
    }
    // every department that holds a dated fact of this person is in the
    // export (the timeline is the store's independent account of them)
    let timeline = store
        .customer_timeline(id, None, None, 100_000)
        .expect("timeline");
    let timeline_sources: BTreeSet<String> = timeline.iter().map(|r| r.source.clone()).collect();
    for s in &timeline_sources {
        assert!(
            fact_sources.contains(s),
            "department {s} holds facts of #{id} that the export lacks"
        );
    }
    assert!(fact_sources.len() >= 3, "facts from only {fact_sources:?}");
    assert!(ex.person.sources.len() >= 3, "{:?}", ex.person.sources);
    // feedback text comes through (the demo's surveys and tickets have some)
    if !f.feedback.is_empty() {
        assert!(
            f.feedback.iter().any(|x| x.text.is_some()),
            "{:?}",
            f.feedback
        );
    }

    // consent history: the store's rows, oldest first
    let history = store.consent_history(id).expect("history");
    assert_eq!(ex.consent_history.len(), history.len());
    for (a, b) in ex.consent_history.iter().zip(&history) {
        assert_eq!(
            (&a.purpose, a.granted, &a.source),
            (&b.purpose, b.granted, &b.source)
        );
    }

    // access log: the earlier read and the export itself
    let actions: Vec<&str> = ex.access_log.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"customers.read"), "{actions:?}");
    assert!(actions.contains(&"privacy.export"), "{actions:?}");
    assert!(ex.access_log.windows(2).all(|w| w[0].seq < w[1].seq));

    // no model trained on this store: said so, not an error
    assert!(!ex.derived.churn.available);
    assert!(
        ex.derived
            .churn
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("train")),
        "{:?}",
        ex.derived.churn.reason
    );
    assert!(!ex.derived.recommendations.available);

    // the zip: JSON plus one CSV per table with the same rows
    let zip = ex
        .to_zip(Cursor::new(Vec::new()))
        .expect("zip")
        .into_inner();
    let files = unzip(&zip);
    let json: serde_json::Value =
        serde_json::from_slice(&files["export.json"]).expect("export.json is JSON");
    assert_eq!(json["customer_id"], id);
    let readme = String::from_utf8(files["README.txt"].clone()).expect("UTF-8");
    assert!(readme.contains("identities.csv") && readme.contains("身份标识"));
    let arrays = [
        ("identities.csv", &json["identities"]),
        ("links.csv", &json["links"]),
        ("merge_history.csv", &json["merge_history"]),
        ("orders.csv", &json["facts"]["orders"]),
        ("order_lines.csv", &json["facts"]["order_lines"]),
        ("events.csv", &json["facts"]["events"]),
        ("feedback.csv", &json["facts"]["feedback"]),
        ("campaigns.csv", &json["facts"]["campaigns"]),
        ("attributes.csv", &json["facts"]["attributes"]),
        ("consents.csv", &json["consent_history"]),
        ("derived.csv", &json["derived"]["table"]),
        ("access_log.csv", &json["access_log"]),
    ];
    assert_eq!(files.len(), arrays.len() + 2, "{:?}", files.keys());
    for (name, arr) in arrays {
        let n = arr
            .as_array()
            .unwrap_or_else(|| panic!("{name}: no JSON array"))
            .len();
        let (header, rows) = csv_rows(&files[name]);
        assert_eq!(rows, n, "{name}: CSV rows vs JSON");
        assert_eq!(json["counts"][name], n, "{name}: counts");
        assert!(!header.is_empty(), "{name}: a header");
        if [
            "order_lines.csv",
            "events.csv",
            "feedback.csv",
            "campaigns.csv",
        ]
        .contains(&name)
        {
            assert!(header.contains(&"source".to_string()) && header.contains(&"file".to_string()));
        }
        if ["identities.csv", "attributes.csv", "links.csv"].contains(&name) {
            assert!(header.contains(&"source".to_string()) && header.contains(&"line".to_string()));
        }
    }
    assert!(
        json["facts"]["order_lines"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );

    // nobody else's key is anywhere in the zip
    let text: String = files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let own: HashSet<String> = idents.iter().map(|i| i.value.clone()).collect();
    let ds = engine.dataset().expect("dataset");
    let mut checked = 0;
    for c in ds.customers.iter().filter(|c| c.id != id) {
        for i in store.customer_identities(c.id).expect("identities") {
            if i.kind == "email" && !own.contains(&i.value) {
                checked += 1;
                assert!(
                    !text.contains(&i.value),
                    "customer #{}'s email is in #{id}'s export",
                    c.id
                );
            }
        }
    }
    assert!(checked > 100, "{checked} other emails checked");
}

#[test]
fn only_a_whole_person_view_may_export() {
    let (_fx, engine) = imported(120, 5);
    let id = merged_customer(&engine);
    let policy = Policy::default();
    let key = |role: &str, dept: Option<&str>| Principal {
        name: format!("{role}-key"),
        kind: PrincipalKind::Key,
        role: role.into(),
        department: dept.map(str::to_string),
        customer: None,
        source: None,
        origin: "test".into(),
        request_id: None,
    };
    // roles without the action
    for role in ["analyst", "marketing", "sales", "support"] {
        let r = engine.authorize(&policy, &key(role, None), Action::PrivacyExport);
        assert!(matches!(r, Err(EngineError::Forbidden(_))), "{role}");
    }
    // an admin key limited to a department: the export is not a staff report
    let dept = engine
        .authorize(
            &policy,
            &key("admin", Some("support")),
            Action::PrivacyExport,
        )
        .expect("an admin department key is authorized for the action");
    match engine.privacy_export(&dept, None, id) {
        Err(EngineError::Forbidden(m)) => assert!(m.contains("department"), "{m}"),
        other => panic!("a department key exported: {other:?}"),
    }

    // the person's own token: their own data, and only theirs
    let other = engine
        .dataset()
        .expect("dataset")
        .customers
        .iter()
        .map(|c| c.id)
        .find(|c| *c != id)
        .expect("another customer");
    let token = |c: i64| Principal {
        name: format!("customer #{c}"),
        kind: PrincipalKind::Customer,
        role: "customer".into(),
        department: None,
        customer: Some(c),
        source: None,
        origin: "test".into(),
        request_id: None,
    };
    let me = engine
        .authorize(&policy, &token(id), Action::SelfRead)
        .expect("self read");
    let ex: PersonExport = engine.privacy_export(&me, None, id).expect("own export");
    assert_eq!(ex.customer_id, id);
    assert_eq!(ex.requested_by.kind, "customer");
    assert!(matches!(
        engine.privacy_export(&me, None, other),
        Err(EngineError::Forbidden(_))
    ));
    // an unknown customer
    assert!(matches!(
        engine.privacy_export(&admin(Action::PrivacyExport), None, 9_999_999),
        Err(EngineError::NotFound(_))
    ));
}
