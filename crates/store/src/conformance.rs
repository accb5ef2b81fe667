//! The backend-generic conformance suite: every [`Store`] implementation must
//! pass every function here (the pattern of tantivy's `directory/tests.rs`).
//! A backend's test calls [`run_all`] with a factory of fresh, empty stores.

use infogap_core::dataset::AttrValue;

use crate::*;

fn ok<T>(r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("store error: {e}"),
    }
}

fn sample_batch(source_id: i64) -> WriteBatch {
    let mut b = WriteBatch::default();
    b.identities.push(NewIdentity {
        id: 1,
        namespace: "crm".into(),
        kind: "customer".into(),
        value: "C1".into(),
        customer_id: 1,
        source_id,
        line: 2,
    });
    b.identities.push(NewIdentity {
        id: 2,
        namespace: "email".into(),
        kind: "email".into(),
        value: "a@x.com".into(),
        customer_id: 2,
        source_id,
        line: 2,
    });
    b.links.push(NewLink {
        a: 1,
        b: 2,
        source_id,
        line: 2,
        rule: "same_record",
    });
    b.products.push(ProductRow {
        id: 1,
        key: "P1".into(),
        name: Some("Pen".into()),
        category: Some("office".into()),
        price: Some(2.5),
        attrs: None,
    });
    b.orders.push(OrderRow {
        id: 1,
        namespace: "crm".into(),
        key: "O1".into(),
        identity_id: 1,
        time: Some(100),
        amount: None,
        discount: None,
        file_id: 11,
    });
    b.lines.push(LineRow {
        source_id,
        file_id: 11,
        order_id: 1,
        identity_id: 1,
        product_id: Some(1),
        quantity: 2.0,
        amount: 5.0,
        discount: 0.5,
        time: Some(100),
    });
    b.lines.push(LineRow {
        source_id,
        file_id: 11,
        order_id: 1,
        identity_id: 1,
        product_id: Some(1),
        quantity: 1.0,
        amount: 2.5,
        discount: 0.0,
        time: Some(100),
    });
    b.events.push(EventRow {
        source_id,
        file_id: 13,
        identity_id: 2,
        kind: "rating".into(),
        product_id: Some(1),
        value: Some(4.0),
        channel: Some("web".into()),
        time: Some(90),
    });
    b.feedback.push(FeedbackRow {
        source_id,
        file_id: 14,
        identity_id: 2,
        kind: "ticket".into(),
        score: None,
        text: Some("late".into()),
        channel: None,
        time: Some(95),
    });
    b.campaigns.push(CampaignRow {
        id: 1,
        key: "K1".into(),
        name: Some("Spring".into()),
        kind: None,
        start: Some(0),
        end: Some(1000),
    });
    b.contacts.push(ContactRow {
        source_id,
        file_id: 15,
        identity_id: 1,
        campaign_id: 1,
        kind: "exposure",
        time: Some(50),
    });
    b.contacts.push(ContactRow {
        source_id,
        file_id: 16,
        identity_id: 2,
        campaign_id: 1,
        kind: "redemption",
        time: Some(60),
    });
    b.consents.push(ConsentRow {
        source_id,
        file_id: 17,
        identity_id: 1,
        purpose: "marketing".into(),
        granted: true,
        time: Some(10),
    });
    b.attributes.push(AttributeRow {
        identity_id: 1,
        name: "age_band".into(),
        value: AttrValue::Text("25-34".into()),
        source_id,
        line: 2,
    });
    b
}

/// A fresh store has the schema and is empty.
pub fn empty_store_is_empty(store: &dyn Store) {
    let s = ok(store.stats(true));
    assert_eq!(
        (
            s.customers,
            s.orders,
            s.order_lines,
            s.products,
            s.events,
            s.feedback
        ),
        (0, 0, 0, 0, 0, 0)
    );
    assert_eq!(s.revenue, 0.0);
    assert!(ok(store.dataset()).customers.is_empty());
}

/// A committed batch is readable everywhere; writing it again writes nothing.
pub fn write_read_and_idempotence(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    let written = ok(tx.write(&sample_batch(sid)));
    assert!(written >= 10, "facts written: {written}");
    ok(tx.commit());
    let s = ok(store.stats(true));
    assert_eq!(
        (
            s.orders,
            s.order_lines,
            s.products,
            s.events,
            s.feedback,
            s.campaign_contacts,
            s.consents
        ),
        (1, 2, 1, 1, 1, 2, 1)
    );
    assert!((s.revenue - 7.5).abs() < 1e-9, "revenue {}", s.revenue);
    let ds = ok(store.dataset());
    assert_eq!(ds.lines.len(), 2);
    assert_eq!(ds.orders.len(), 1);
    assert!((ds.orders[0].amount - 7.5).abs() < 1e-9);
    assert_eq!(ds.events[0].value, Some(4.0));
    assert_eq!(ds.redemptions.len(), 1);
    assert_eq!(ds.exposures.len(), 1);
    assert_eq!(ds.products[0].category.as_deref(), Some("office"));
    // replacing the file's facts removes them (and the orders it created)
    let mut tx = ok(store.begin());
    let sid2 = ok(tx.upsert_source("crm", "customers", "crm"));
    assert_eq!(sid, sid2);
    let f1 = ok(tx.upsert_file(sid, "a.csv"));
    assert_eq!(ok(tx.upsert_file(sid, "a.csv")), f1);
    assert_ne!(ok(tx.upsert_file(sid, "b.csv")), f1);
    let deleted = ok(tx.delete_file_facts(11));
    assert_eq!(deleted, 3, "two lines and their order");
    ok(tx.commit());
    let s = ok(store.stats(true));
    assert_eq!((s.orders, s.order_lines, s.events), (0, 0, 1));
}

/// Dropping a transaction without commit leaves the store as it was.
pub fn dropped_transaction_rolls_back(store: &dyn Store) {
    {
        let mut tx = ok(store.begin());
        let sid = ok(tx.upsert_source("crm", "customers", "crm"));
        ok(tx.write(&sample_batch(sid)));
    }
    let s = ok(store.stats(true));
    assert_eq!((s.order_lines, s.products), (0, 0));
    assert!(ok(store.sources()).is_empty());
}

/// Identity graph, reassignment, merge log and lookups.
pub fn identities_and_merges(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    ok(tx.write(&sample_batch(sid)));
    let (ids, links) = ok(tx.identity_graph());
    assert_eq!(ids.len(), 2);
    assert_eq!(links.len(), 1);
    ok(tx.assign_customers(&[(2, 1)], &[], &[]));
    ok(tx.log_merge(&MergeLogEntry {
        at: now_rfc3339(),
        action: "merge".into(),
        customer_id: 1,
        other_id: Some(2),
        detail: "test".into(),
    }));
    ok(tx.set_setting("identity.max_customers_per_key", "5"));
    ok(tx.commit());
    assert_eq!(ok(store.stats(true)).customers, 1);
    assert_eq!(ok(store.customer_identities(1)).len(), 2);
    assert_eq!(ok(store.identities_by_value("a@x.com"))[0].customer_id, 1);
    assert_eq!(ok(store.links_of(&[1])).len(), 1);
    assert_eq!(ok(store.merge_log(2)).len(), 1);
    assert_eq!(
        ok(store.setting("identity.max_customers_per_key")).as_deref(),
        Some("5")
    );
    let f = ok(store.customer_facts(1, None));
    assert_eq!(f.orders.count, 1);
    assert_eq!(f.orders.lines, 2);
    assert_eq!(f.feedback[0].kind, "ticket");
    assert_eq!(f.campaigns[0].received, 1);
    assert_eq!(f.campaigns[0].redeemed, 1);
    assert_eq!(f.consents, vec![("marketing".to_string(), true, Some(10))]);
    // suppress the link (split) and reassign
    let mut tx = ok(store.begin());
    ok(tx.set_links_suppressed(&[links[0].id], true));
    ok(tx.assign_customers(&[(2, 3)], &[3], &[]));
    ok(tx.commit());
    assert!(ok(store.links_of(&[1]))[0].suppressed);
    assert_eq!(ok(store.stats(true)).customers, 2);
}

/// A customer owning only over-shared keys is no person: `stats` does not
/// count it and the analytical snapshot leaves it out, while its facts stay.
pub fn shared_keys_are_not_customers(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    ok(tx.write(&sample_batch(sid)));
    // identity 2 (the email) is over-shared and stays its own customer 2
    ok(tx.assign_customers(&[], &[], &[2]));
    ok(tx.commit());
    let s = ok(store.stats(true));
    assert_eq!((s.customers, s.shared_keys), (1, 1));
    let ds = ok(store.dataset());
    let ids: Vec<i64> = ds.customers.iter().map(|c| c.id).collect();
    assert_eq!(ids, vec![1]);
    assert_eq!(ds.customers[0].key, "crm:C1");
    assert_eq!(ds.orders.len(), 1, "facts are kept");
}

/// Models are versioned per kind and round-trip.
pub fn models_round_trip(store: &dyn Store) {
    assert!(ok(store.load_model("recs")).is_none());
    let p = serde_json::json!({"k": 10});
    let m1 = ok(store.save_model("recs", &p, &serde_json::json!({}), b"one"));
    let m2 = ok(store.save_model("recs", &p, &serde_json::json!({"ndcg": 0.5}), b"two"));
    assert_eq!((m1.version, m2.version), (1, 2));
    let got = ok(store.load_model("recs")).map(|m| (m.version, m.blob, m.metrics));
    assert_eq!(
        got,
        Some((2, b"two".to_vec(), serde_json::json!({"ndcg": 0.5})))
    );
    assert!(ok(store.load_model("churn")).is_none());
    let times = ok(store.model_times());
    assert_eq!(times.len(), 1);
    assert_eq!((times[0].0.as_str(), times[0].1), ("recs", 2));
    assert_eq!(times[0].2, m2.created_at, "the newest version's time");
}

/// Import runs are recorded and listed newest first.
pub fn import_runs_recorded(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("sales", "order_lines", "crm"));
    for (i, status) in ["ok", "unchanged"].iter().enumerate() {
        ok(tx.record_import(&ImportRun {
            source: "sales".into(),
            file: "a.csv".into(),
            file_hash: format!("h{i}"),
            config_hash: "c".into(),
            rows_read: 10,
            rows_written: 10,
            rows_rejected: 0,
            status: (*status).into(),
            started_at: now_rfc3339(),
            finished_at: now_rfc3339(),
            seconds: 0.1,
        }));
    }
    assert_eq!(
        ok(tx.last_import(sid, "a.csv")),
        Some(("h1".to_string(), "c".to_string()))
    );
    assert_eq!(ok(tx.last_import(sid, "b.csv")), None);
    ok(tx.commit());
    let runs = ok(store.import_runs());
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].status, "unchanged");
}

fn full_snapshot(store: &dyn Store) -> crate::snapshot::RawSnapshot {
    let mut s = crate::snapshot::RawSnapshot::default();
    ok(s.apply(ok(store.snapshot_delta(0))));
    s
}

/// Brings `snap` up to date with a delta; checks it against a full rebuild
/// and returns the delta's size (rows read, per-file changes).
fn refresh_and_check(
    store: &dyn Store,
    snap: &mut crate::snapshot::RawSnapshot,
    step: &str,
) -> (usize, usize) {
    let delta = ok(store.snapshot_delta(snap.generation));
    assert!(!delta.full, "{step}: an incremental delta was expected");
    let size = (delta.rows(), delta.files.len());
    ok(snap.apply(delta));
    let full = full_snapshot(store);
    assert_eq!(
        *snap, full,
        "{step}: refreshed snapshot differs from a rebuild"
    );
    assert_eq!(
        ok(snap.dataset()),
        ok(store.dataset()),
        "{step}: data sets differ"
    );
    size
}

/// Every write moves the generation; a snapshot refreshed from the delta
/// since its generation equals one rebuilt from scratch, through new files,
/// a replaced file, an order fed by two files, merges, splits, attribute and
/// product changes; each delta carries only what changed.
pub fn snapshot_deltas_track_every_change(store: &dyn Store) {
    let g0 = ok(store.generation());
    let mut snap = full_snapshot(store);
    assert_eq!(snap.generation, g0.generation);
    assert_eq!(snap.store_id, g0.store_id);
    assert!(!g0.store_id.is_empty());

    // 1. a first import
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    ok(tx.write(&sample_batch(sid)));
    ok(tx.commit());
    assert!(ok(store.generation()).generation > g0.generation);
    let (rows, files) = refresh_and_check(store, &mut snap, "first import");
    assert!(rows >= 10 && files >= 5, "rows {rows}, files {files}");

    // 2. file 11 replaced: new lines for order 1, at other amounts
    let mut tx = ok(store.begin());
    ok(tx.delete_file_facts(11));
    let mut b = WriteBatch::default();
    b.orders.push(OrderRow {
        id: 1,
        namespace: "crm".into(),
        key: "O1".into(),
        identity_id: 1,
        time: None,
        amount: None,
        discount: None,
        file_id: 11,
    });
    for (i, amount) in [0.1, 0.2, 0.7, 1e-3].iter().enumerate() {
        b.lines.push(LineRow {
            source_id: sid,
            file_id: 11,
            order_id: 1,
            identity_id: 1,
            product_id: Some(1),
            quantity: 1.0,
            amount: *amount,
            discount: 0.0,
            time: Some(200 + i as i64),
        });
    }
    ok(tx.write(&b));
    ok(tx.commit());
    let (_, files) = refresh_and_check(store, &mut snap, "replaced file");
    assert_eq!(files, 4, "one change per fact table of the replaced file");
    let ds = ok(store.dataset());
    assert_eq!(ds.lines.len(), 4);
    // the order went with its file and came back without a time: its
    // time and totals now come from its new lines
    assert_eq!(ds.orders[0].time, Some(200));
    assert_eq!(ds.orders[0].amount, 0.1 + 0.2 + 0.7 + 1e-3);

    // 3. a new file adds lines to the same order
    let mut tx = ok(store.begin());
    let mut b = WriteBatch::default();
    b.lines.push(LineRow {
        source_id: sid,
        file_id: 20,
        order_id: 1,
        identity_id: 2,
        product_id: None,
        quantity: 1.0,
        amount: 5.0,
        discount: 0.5,
        time: Some(50),
    });
    ok(tx.write(&b));
    ok(tx.commit());
    let (rows, files) = refresh_and_check(store, &mut snap, "added file");
    assert_eq!((rows, files), (1, 1), "only the new line is read");

    // 4. a merge moves identity 2 (and its facts) to customer 1
    let mut tx = ok(store.begin());
    ok(tx.assign_customers(&[(2, 1)], &[], &[]));
    ok(tx.commit());
    let (rows, files) = refresh_and_check(store, &mut snap, "merge");
    assert_eq!(
        (rows, files),
        (1, 0),
        "a merge reads one identity, no facts"
    );
    assert!(ok(snap.dataset()).lines.iter().all(|l| l.customer == 1));

    // 5. a split moves it back out, to a new customer 3
    let mut tx = ok(store.begin());
    let (_, links) = ok(tx.identity_graph());
    ok(tx.set_links_suppressed(&[links[0].id], true));
    ok(tx.assign_customers(&[(2, 3)], &[3], &[]));
    ok(tx.commit());
    refresh_and_check(store, &mut snap, "split");
    let ds = ok(snap.dataset());
    assert!(ds.lines.iter().any(|l| l.customer == 3));
    assert_eq!(ds.customers.len(), 2);

    // 6. an attribute and a product change
    let mut tx = ok(store.begin());
    let mut b = WriteBatch::default();
    b.attributes.push(AttributeRow {
        identity_id: 1,
        name: "age_band".into(),
        value: AttrValue::Text("35-44".into()),
        source_id: sid,
        line: 3,
    });
    b.products.push(ProductRow {
        id: 1,
        key: "P1".into(),
        name: None,
        category: None,
        price: Some(3.0),
        attrs: None,
    });
    ok(tx.write(&b));
    ok(tx.commit());
    let (rows, _) = refresh_and_check(store, &mut snap, "attribute and price");
    assert_eq!(rows, 2);
    let ds = ok(snap.dataset());
    assert_eq!(ds.products[0].price, Some(3.0));
    assert_eq!(
        ds.customers[0].attributes.get("age_band"),
        Some(&AttrValue::Text("35-44".into()))
    );

    // 7. replaced files that now have no rows: their facts go
    let mut tx = ok(store.begin());
    ok(tx.delete_file_facts(11));
    ok(tx.delete_file_facts(20));
    ok(tx.commit());
    refresh_and_check(store, &mut snap, "emptied files");
    let ds = ok(snap.dataset());
    assert!(ds.lines.is_empty());
    assert!(ds.orders.iter().all(|o| o.amount == 0.0));

    // 8. a rolled-back transaction changes nothing
    let g = ok(store.generation());
    {
        let mut tx = ok(store.begin());
        ok(tx.delete_file_facts(13));
    }
    assert_eq!(ok(store.generation()), g);

    // 9. a snapshot "from the future" (a restored backup) gets everything
    let d = ok(store.snapshot_delta(g.generation + 5));
    assert!(d.full);
}

/// Consent rows are the history (oldest first, rows without a time
/// first); the latest per customer and purpose is by time, ties by the
/// higher row id, over all the customer's identities.
pub fn consent_history_and_latest(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    ok(tx.write(&sample_batch(sid)));
    let row = |identity_id: i64, purpose: &str, granted: bool, time: Option<i64>| ConsentRow {
        source_id: sid,
        file_id: 18,
        identity_id,
        purpose: purpose.into(),
        granted,
        time,
    };
    let b = WriteBatch {
        consents: vec![
            row(1, "marketing", false, Some(20)),
            row(1, "profiling", true, None),
            row(2, "marketing", false, Some(5)),
            row(1, "analytics", true, Some(30)),
            row(1, "analytics", false, Some(30)),
        ],
        ..Default::default()
    };
    ok(tx.write(&b));
    ok(tx.commit());
    let h = ok(store.consent_history(1));
    let got: Vec<(&str, bool, Option<i64>)> = h
        .iter()
        .map(|r| (r.purpose.as_str(), r.granted, r.time))
        .collect();
    assert_eq!(
        got,
        vec![
            ("profiling", true, None),
            ("marketing", true, Some(10)),
            ("marketing", false, Some(20)),
            ("analytics", true, Some(30)),
            ("analytics", false, Some(30)),
        ]
    );
    assert!(h.iter().all(|r| r.source == "crm"));
    let latest: Vec<(i64, String, bool)> = ok(store.latest_consents())
        .into_iter()
        .map(|l| (l.customer_id, l.purpose, l.granted))
        .collect();
    assert_eq!(
        latest,
        vec![
            (1, "analytics".to_string(), false),
            (1, "marketing".to_string(), false),
            (1, "profiling".to_string(), true),
            (2, "marketing".to_string(), false),
        ]
    );
    assert!(ok(store.consent_history(99)).is_empty());
}

fn user(name: &str, hash: Option<&str>) -> UserRecord {
    UserRecord {
        name: name.into(),
        role: "analyst".into(),
        department: Some("sales".into()),
        password_hash: hash.map(str::to_string),
        created_at: 100,
        disabled_at: None,
    }
}

fn web_session(id: &str, kind: &str, user: Option<&str>, customer: Option<i64>) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        kind: kind.into(),
        user_name: user.map(str::to_string),
        customer_id: customer,
        secret_hash: vec![7; 32],
        created_at: 100,
        expires_at: 200,
        revoked_at: None,
    }
}

/// Web users: created once per name (a second create of the name writes
/// nothing), read back as written, listed by name; the password hash is
/// set on the named user only; disabling happens once.
pub fn users_round_trip(store: &dyn Store) {
    assert!(ok(store.users()).is_empty());
    assert_eq!(ok(store.user("ann")), None);
    let ann = user("ann", None);
    assert!(ok(store.create_user(&ann)));
    let mut other = user("ann", Some("$argon2id$x"));
    other.role = "admin".into();
    assert!(!ok(store.create_user(&other)), "a second user named ann");
    assert_eq!(ok(store.user("ann")), Some(ann.clone()));
    let mut bob = user("bob", Some("$argon2id$v=19$bob"));
    bob.department = None;
    assert!(ok(store.create_user(&bob)));
    let names: Vec<String> = ok(store.users()).into_iter().map(|u| u.name).collect();
    assert_eq!(names, vec!["ann".to_string(), "bob".to_string()]);
    assert!(ok(store.set_user_password("ann", "$argon2id$v=19$ann")));
    assert!(!ok(store.set_user_password("nobody", "$argon2id$v=19$x")));
    assert_eq!(
        ok(store.user("ann")).and_then(|u| u.password_hash),
        Some("$argon2id$v=19$ann".to_string())
    );
    assert_eq!(ok(store.user("bob")), Some(bob));
    assert!(ok(store.disable_user("ann", 150)));
    assert!(!ok(store.disable_user("ann", 160)), "disabled twice");
    assert!(!ok(store.disable_user("nobody", 160)));
    assert_eq!(ok(store.user("ann")).and_then(|u| u.disabled_at), Some(150));
    assert_eq!(ok(store.user("bob")).and_then(|u| u.disabled_at), None);
}

/// Web sessions and links: read back as written; revoking is true only
/// the first time (a one-time link is redeemed once); revoking all of a
/// user's or a customer's touches only theirs and only the live ones.
pub fn web_sessions_round_trip(store: &dyn Store) {
    assert_eq!(ok(store.session("s1")), None);
    let s1 = web_session("s1", "staff", Some("ann"), None);
    ok(store.create_session(&s1));
    ok(store.create_session(&web_session("s2", "setup", Some("ann"), None)));
    ok(store.create_session(&web_session("s3", "staff", Some("bob"), None)));
    ok(store.create_session(&web_session("c1", "link", None, Some(7))));
    ok(store.create_session(&web_session("c2", "customer", None, Some(7))));
    ok(store.create_session(&web_session("c3", "customer", None, Some(8))));
    assert_eq!(ok(store.session("s1")), Some(s1));
    assert!(
        store
            .create_session(&web_session("s1", "staff", Some("bob"), None))
            .is_err(),
        "ids are unique"
    );
    assert!(
        store
            .create_session(&web_session("x1", "api", None, None))
            .is_err(),
        "an unknown kind is refused"
    );
    assert!(ok(store.revoke_session("c1", 150)));
    assert!(
        !ok(store.revoke_session("c1", 151)),
        "a link redeemed twice"
    );
    assert!(!ok(store.revoke_session("nope", 151)));
    assert_eq!(
        ok(store.session("c1")).and_then(|s| s.revoked_at),
        Some(150)
    );
    // s2 is already revoked before the user's sessions are
    assert!(ok(store.revoke_session("s2", 155)));
    assert_eq!(ok(store.revoke_sessions_of_user("ann", 160)), 1);
    assert_eq!(ok(store.revoke_sessions_of_user("ann", 161)), 0);
    assert_eq!(
        ok(store.session("s1")).and_then(|s| s.revoked_at),
        Some(160)
    );
    assert_eq!(
        ok(store.session("s2")).and_then(|s| s.revoked_at),
        Some(155)
    );
    assert_eq!(ok(store.session("s3")).and_then(|s| s.revoked_at), None);
    assert_eq!(ok(store.revoke_sessions_of_customer(7, 170)), 1);
    assert_eq!(
        ok(store.session("c2")).and_then(|s| s.revoked_at),
        Some(170)
    );
    assert_eq!(ok(store.session("c3")).and_then(|s| s.revoked_at), None);
    assert_eq!(ok(store.revoke_sessions_of_customer(99, 170)), 0);
}

/// A customer's sessions and links go with their erasure; another
/// customer's stay.
pub fn erasure_deletes_web_sessions(store: &dyn Store) {
    let mut tx = ok(store.begin());
    let sid = ok(tx.upsert_source("crm", "customers", "crm"));
    ok(tx.write(&sample_batch(sid)));
    ok(tx.commit());
    ok(store.create_session(&web_session("l1", "link", None, Some(1))));
    ok(store.create_session(&web_session("w1", "customer", None, Some(1))));
    ok(store.create_session(&web_session("w2", "customer", None, Some(2))));
    let plan = ok(store.erasure_plan(1));
    let rows = plan
        .tables
        .iter()
        .find(|t| t.table == "web_sessions")
        .map(|t| t.rows);
    assert_eq!(rows, Some(2), "the plan counts the customer's sessions");
    let e = ok(store.create_erasure(1, "planned", "delete", "test"));
    ok(store.erase_customer(1, e, false, &[]));
    assert_eq!(ok(store.session("l1")), None);
    assert_eq!(ok(store.session("w1")), None);
    assert!(ok(store.session("w2")).is_some());
}

/// The intake journal: duplicates by (source, message id) are not
/// written, pending rows come back in order with their bodies, marking
/// them done commits with the transaction (and not when it is dropped),
/// and the counts follow.
pub fn intake_journal(store: &dyn Store) {
    let m = |id: &'static str, body: &'static str| IntakeIn {
        message_id: id,
        kind: "track",
        body,
    };
    let first = ok(store.intake_append("web", 100, &[m("a", "{\"n\":1}"), m("b", "{\"n\":2}")]));
    assert_eq!(first, vec![true, true]);
    // a resent message and a new one; the same id from another source is new
    let again = ok(store.intake_append("web", 101, &[m("a", "{\"n\":9}"), m("c", "{\"n\":3}")]));
    assert_eq!(again, vec![false, true]);
    assert_eq!(
        ok(store.intake_append("app", 102, &[m("a", "{}")])),
        vec![true]
    );
    let pending = ok(store.intake_pending(10));
    let ids: Vec<(&str, &str)> = pending
        .iter()
        .map(|p| (p.source.as_str(), p.message_id.as_str()))
        .collect();
    assert_eq!(
        ids,
        vec![("web", "a"), ("web", "b"), ("web", "c"), ("app", "a")]
    );
    assert_eq!(
        pending[0].body, "{\"n\":1}",
        "the first body is kept, not the duplicate's"
    );
    assert!(pending.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(ok(store.intake_pending(2)).len(), 2);
    // a dropped transaction marks nothing
    {
        let mut tx = ok(store.begin());
        ok(tx.intake_done(&[IntakeDone {
            seq: pending[0].seq,
            state: "applied",
            note: None,
        }]));
    }
    assert_eq!(ok(store.intake_counts()).pending, 4);
    let mut tx = ok(store.begin());
    let seqs: Vec<i64> = pending.iter().map(|p| p.seq).collect();
    assert_eq!(ok(tx.intake_still_pending(&seqs)), 4);
    ok(tx.intake_done(&[
        IntakeDone {
            seq: pending[0].seq,
            state: "applied",
            note: None,
        },
        IntakeDone {
            seq: pending[1].seq,
            state: "suppressed",
            note: None,
        },
        IntakeDone {
            seq: pending[2].seq,
            state: "rejected",
            note: Some("bad value".into()),
        },
    ]));
    ok(tx.commit());
    let c = ok(store.intake_counts());
    assert_eq!(
        (c.pending, c.applied, c.suppressed, c.rejected, c.no_consent),
        (1, 1, 1, 1, 0)
    );
    let mut tx = ok(store.begin());
    assert_eq!(ok(tx.intake_still_pending(&seqs)), 1);
    drop(tx);
    let left = ok(store.intake_pending(10));
    assert_eq!(left.len(), 1);
    assert_eq!(
        (left[0].source.as_str(), left[0].message_id.as_str()),
        ("app", "a")
    );
    // a done message still catches its duplicate
    assert_eq!(
        ok(store.intake_append("web", 103, &[m("a", "{}")])),
        vec![false]
    );
}

/// Alerts: a repeat of (rule, customer, generation) is not stored twice,
/// the baseline is stored with them, the snapshot generation does not
/// move, and they list newest first.
pub fn alerts_round_trip(store: &dyn Store) {
    let a = |rule: &str, customer: i64, generation: i64| NewAlertRow {
        rule: rule.into(),
        kind: "churn_risk".into(),
        customer_id: customer,
        generation,
        detail: "{\"probability\":0.9}".into(),
    };
    let g0 = ok(store.generation()).generation;
    assert_eq!(
        ok(store.record_alerts(&[a("r", 1, 5), a("r", 2, 5), a("r", 1, 5)], "b1")),
        2
    );
    assert_eq!(
        ok(store.record_alerts(&[a("r", 1, 5), a("r", 1, 6)], "b2")),
        1
    );
    assert_eq!(ok(store.setting("alerts.baseline")).as_deref(), Some("b2"));
    assert_eq!(
        ok(store.generation()).generation,
        g0,
        "alerts are not facts"
    );
    let all = ok(store.alerts(None, 10));
    let got: Vec<(i64, i64)> = all.iter().map(|x| (x.customer_id, x.generation)).collect();
    assert_eq!(got, vec![(1, 6), (2, 5), (1, 5)]);
    let after: Vec<i64> = ok(store.alerts_after(all[2].id, 10))
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(after, vec![all[1].id, all[0].id], "oldest first");
    let older = ok(store.alerts(Some(all[0].id), 1));
    assert_eq!(older.len(), 1);
    assert_eq!(older[0].id, all[1].id);
    assert_eq!(older[0].detail, "{\"probability\":0.9}");
}

/// Webhooks and the outbox: a webhook takes only alerts raised after it
/// was added; the alert cursor moves once (a second process's enqueue from
/// the same cursor writes nothing); a claim leases messages (not claimed
/// again before the lease runs out) and counts the try; outcomes deliver,
/// reschedule or kill; a try never answered after the last attempt is
/// dead; dead messages replay; removal drops what is left.
pub fn webhook_outbox(store: &dyn Store) {
    let a = |customer: i64| NewAlertRow {
        rule: "r".into(),
        kind: "churn_risk".into(),
        customer_id: customer,
        generation: 1,
        detail: "{}".into(),
    };
    ok(store.record_alerts(&[a(1)], "b"));
    let id = ok(store.create_webhook(&NewWebhook {
        url: "http://127.0.0.1:9/hook".into(),
        events: vec!["churn.high".into(), "feedback.negative".into()],
        role: "marketing".into(),
        department: None,
        salt: vec![7; 16],
        created_by: "local".into(),
        created_at: 1,
    }));
    let hooks = ok(store.webhooks());
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].events, vec!["churn.high", "feedback.negative"]);
    assert_eq!(hooks[0].salt, vec![7; 16]);
    let from = hooks[0].alerts_from;
    assert!(
        from >= 1,
        "the alert raised before the webhook is behind its cursor"
    );
    let m = |n: i64, customer: i64| OutboxIn {
        msg_id: format!("msg_{n}"),
        webhook_id: id,
        event: "churn.high".into(),
        customer_id: Some(customer),
        alert_id: Some(n),
        body: format!("{{\"n\":{n}}}"),
    };
    assert_eq!(
        ok(store.outbox_enqueue(Some((id, from, from + 2)), &[m(1, 10), m(2, 20)], 1_000)),
        Some(2)
    );
    // a second enqueue from the same cursor (another process) writes nothing
    assert_eq!(
        ok(store.outbox_enqueue(Some((id, from, from + 2)), &[m(3, 30)], 1_000)),
        None
    );
    // a message id seen before is skipped
    assert_eq!(ok(store.outbox_enqueue(None, &[m(1, 10)], 1_000)), Some(0));
    let claimed = ok(store.outbox_claim(1_000, 500, 2, 10));
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].body.as_deref(), Some("{\"n\":1}"));
    assert!(claimed.iter().all(|c| c.attempts == 1));
    assert!(
        ok(store.outbox_claim(1_200, 500, 2, 10)).is_empty(),
        "leased"
    );
    ok(store.outbox_done(&[
        OutboxOutcome {
            id: claimed[0].id,
            delivered: true,
            status: Some(204),
            error: None,
            retry_at: None,
        },
        OutboxOutcome {
            id: claimed[1].id,
            delivered: false,
            status: Some(500),
            error: Some("HTTP 500".into()),
            retry_at: Some(1_300),
        },
    ]));
    let again = ok(store.outbox_claim(1_300, 500, 2, 10));
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (claimed[1].id, 2));
    // the server stops during the last try: dead when the lease runs out
    assert!(ok(store.outbox_claim(1_900, 500, 2, 10)).is_empty());
    let dead = ok(store.outbox(Some("dead"), None, 10));
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_status, Some(500));
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("stopped"))
    );
    let counts = ok(store.outbox_counts());
    assert_eq!(counts.get("delivered"), Some(&1));
    assert!(!ok(store.outbox_replay(claimed[0].id, 2_000)), "not dead");
    assert!(ok(store.outbox_replay(dead[0].id, 2_000)));
    let replayed = ok(store.outbox_claim(2_000, 500, 2, 10));
    assert_eq!((replayed.len(), replayed[0].attempts), (1, 1));
    assert_eq!(replayed[0].body.as_deref(), Some("{\"n\":2}"));
    assert!(ok(store.remove_webhook(id, 5)));
    assert!(!ok(store.remove_webhook(id, 6)));
    let counts = ok(store.outbox_counts());
    assert_eq!(counts.get("dropped"), Some(&1));
    assert_eq!(
        ok(store.outbox_enqueue(None, &[m(9, 90)], 3_000)),
        Some(0),
        "nothing is queued for a removed webhook"
    );
}

/// Runs the whole suite, each case on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    consent_history_and_latest(make().as_ref());
    empty_store_is_empty(make().as_ref());
    write_read_and_idempotence(make().as_ref());
    dropped_transaction_rolls_back(make().as_ref());
    identities_and_merges(make().as_ref());
    shared_keys_are_not_customers(make().as_ref());
    models_round_trip(make().as_ref());
    import_runs_recorded(make().as_ref());
    snapshot_deltas_track_every_change(make().as_ref());
    users_round_trip(make().as_ref());
    web_sessions_round_trip(make().as_ref());
    erasure_deletes_web_sessions(make().as_ref());
    intake_journal(make().as_ref());
    alerts_round_trip(make().as_ref());
    webhook_outbox(make().as_ref());
}
