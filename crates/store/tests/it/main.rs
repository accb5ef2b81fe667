//! Integration tests of infogap-store: the conformance suite on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};

mod crypto;

use infogap_store::{SqliteStore, Store, conformance};

static N: AtomicUsize = AtomicUsize::new(0);

fn fresh_sqlite(dir: &std::path::Path) -> Box<dyn Store> {
    let n = N.fetch_add(1, Ordering::SeqCst);
    match SqliteStore::open(&dir.join(format!("s{n}.db"))) {
        Ok(s) => Box::new(s),
        Err(e) => panic!("open: {e}"),
    }
}

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    conformance::run_all(&move || fresh_sqlite(&path));
}

/// A fresh, empty PostgreSQL store per call (each in its own database,
/// dropped when `dbs` is), or `None` when no server can be had here.
fn fresh_pg(
    dir: &std::path::Path,
    dbs: &std::sync::Mutex<Vec<infogap_store::pgtest::PgDatabase>>,
    test: &str,
) -> Option<Box<dyn Store>> {
    let db = infogap_store::pgtest::database(test)?;
    let n = N.fetch_add(1, Ordering::SeqCst);
    let store = match SqliteStore::open_postgres(&db.url, Some(&dir.join(format!("k{n}.key")))) {
        Ok(s) => s,
        Err(e) => panic!("open {}: {e}", db.url),
    };
    dbs.lock().expect("lock").push(db);
    Some(Box::new(store))
}

#[test]
fn postgres_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dbs = std::sync::Mutex::new(Vec::new());
    if fresh_pg(dir.path(), &dbs, "conformance").is_none() {
        return;
    }
    let path = dir.path().to_path_buf();
    conformance::run_all(&|| match fresh_pg(&path, &dbs, "conformance") {
        Some(s) => s,
        None => panic!("the PostgreSQL server went away"),
    });
}

#[test]
fn reopening_keeps_data_and_migrations_are_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.db");
    {
        let s = SqliteStore::open(&p).expect("open");
        s.save_model("m", &serde_json::json!({}), &serde_json::json!({}), b"x")
            .expect("save");
    }
    let s = SqliteStore::open(&p).expect("reopen");
    assert_eq!(s.load_model("m").expect("load").map(|m| m.version), Some(1));
}

#[test]
fn opening_a_non_database_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("junk.db");
    std::fs::write(&p, vec![b'x'; 4096]).expect("write");
    let err = SqliteStore::open(&p)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("junk.db") || err.contains("database"), "{err}");
}

/// A small deterministic generator (no dependency needed for this).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> i64 {
        (self.next() % n) as i64
    }
    fn money(&mut self) -> f64 {
        // cents, some negative (refunds), as prices are
        (self.below(20_000) - 1_000) as f64 / 100.0
    }
}

fn random_batch(
    rng: &mut Lcg,
    sid: i64,
    file: i64,
    orders: std::ops::Range<i64>,
) -> infogap_store::WriteBatch {
    use infogap_store::*;
    let mut b = WriteBatch::default();
    for o in orders {
        let ident = 1 + rng.below(40);
        let explicit = rng.below(4) == 0;
        b.orders.push(OrderRow {
            id: o,
            namespace: "shop".into(),
            key: format!("O{o}"),
            identity_id: ident,
            time: (rng.below(3) > 0).then(|| 1_600_000_000 + rng.below(30_000_000)),
            amount: explicit.then(|| rng.money()),
            discount: explicit.then(|| rng.money().abs()),
            file_id: file,
        });
        for _ in 0..1 + rng.below(6) {
            b.lines.push(LineRow {
                source_id: sid,
                file_id: file,
                order_id: o,
                identity_id: ident,
                product_id: (rng.below(10) > 0).then(|| 1 + rng.below(30)),
                quantity: 1.0 + rng.below(3) as f64,
                amount: rng.money(),
                discount: rng.money().abs() / 7.0,
                time: (rng.below(5) > 0).then(|| 1_600_000_000 + rng.below(30_000_000)),
            });
        }
    }
    for _ in 0..20 {
        b.events.push(EventRow {
            source_id: sid,
            file_id: file + 1000,
            identity_id: 1 + rng.below(40),
            kind: ["view", "cart", "rating"][rng.below(3) as usize].into(),
            product_id: Some(1 + rng.below(30)),
            value: (rng.below(2) == 0).then(|| rng.below(5) as f64 + 1.0),
            channel: (rng.below(2) == 0).then(|| "web".to_string()),
            time: Some(1_600_000_000 + rng.below(30_000_000)),
        });
        b.feedback.push(FeedbackRow {
            source_id: sid,
            file_id: file + 2000,
            identity_id: 1 + rng.below(40),
            kind: "review".into(),
            score: (rng.below(2) == 0).then(|| rng.below(5) as f64),
            text: Some("送货很快 fast".into()),
            channel: None,
            time: None,
        });
        b.contacts.push(ContactRow {
            source_id: sid,
            file_id: file + 3000,
            identity_id: 1 + rng.below(40),
            campaign_id: 1,
            kind: if rng.below(2) == 0 {
                "exposure"
            } else {
                "redemption"
            },
            time: Some(1_600_000_000 + rng.below(30_000_000)),
        });
    }
    b
}

/// The snapshot path (bulk reads, in-memory assembly, refreshes) gives
/// exactly, to the last bit, the data set plain SQL gives, through imports,
/// a replaced file, merges and a split.
#[test]
fn snapshot_equals_plain_sql_to_the_bit() {
    use infogap_core::dataset::AttrValue;
    use infogap_store::snapshot::RawSnapshot;
    use infogap_store::*;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("s.db")).expect("open");
    let mut rng = Lcg(7);
    let mut snap = RawSnapshot::default();
    let check = |snap: &mut RawSnapshot, step: &str| {
        let delta = store.snapshot_delta(snap.generation).expect("delta");
        snap.apply(delta).expect("apply");
        let by_sql = store.dataset_by_sql().expect("sql");
        assert_eq!(
            snap.dataset().expect("assemble"),
            by_sql,
            "{step}: refreshed"
        );
        assert_eq!(store.dataset().expect("dataset"), by_sql, "{step}: rebuilt");
    };
    let mut tx = store.begin().expect("begin");
    let sid = tx
        .upsert_source("shop", "order_lines", "shop")
        .expect("source");
    let mut b = random_batch(&mut rng, sid, 1, 1..200);
    for i in 1..=40 {
        b.identities.push(NewIdentity {
            id: i,
            namespace: "shop".into(),
            kind: "customer".into(),
            value: format!("C{i}"),
            customer_id: i,
            source_id: sid,
            line: i,
        });
        b.attributes.push(AttributeRow {
            identity_id: i,
            name: "tier".into(),
            value: if i % 2 == 0 {
                AttrValue::Int(i)
            } else {
                AttrValue::Text("金".into())
            },
            source_id: sid,
            line: i,
        });
    }
    for p in 1..=30 {
        b.products.push(ProductRow {
            id: p,
            key: format!("P{p}"),
            name: (p % 3 > 0).then(|| format!("product {p}")),
            category: (p % 4 > 0).then(|| format!("c{}", p % 5)),
            price: (p % 2 == 0).then_some(p as f64 * 1.1),
            attrs: None,
        });
    }
    b.campaigns.push(CampaignRow {
        id: 1,
        key: "K".into(),
        name: None,
        kind: Some("mail".into()),
        start: None,
        end: Some(5),
    });
    tx.write(&b).expect("write");
    tx.commit().expect("commit");
    check(&mut snap, "first file");

    let mut tx = store.begin().expect("begin");
    tx.write(&random_batch(&mut rng, sid, 2, 200..400))
        .expect("write");
    tx.commit().expect("commit");
    check(&mut snap, "second file");

    // file 1 replaced by other rows for some of the same orders
    let mut tx = store.begin().expect("begin");
    tx.delete_file_facts(1).expect("delete");
    tx.write(&random_batch(&mut rng, sid, 1, 100..250))
        .expect("write");
    tx.commit().expect("commit");
    check(&mut snap, "replaced file");

    // merges, then a split
    let mut tx = store.begin().expect("begin");
    tx.assign_customers(&[(2, 1), (3, 1), (4, 5)], &[], &[6])
        .expect("merge");
    tx.commit().expect("commit");
    check(&mut snap, "merges");
    let mut tx = store.begin().expect("begin");
    tx.assign_customers(&[(3, 41)], &[41], &[]).expect("split");
    tx.commit().expect("commit");
    check(&mut snap, "split");
}

/// A store written before generations existed (schema 1) is upgraded in
/// place and its snapshot is complete.
#[test]
fn a_version_1_store_gets_generations_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("old.db");
    drop(SqliteStore::open_at_version(&p, 1).expect("open at version 1"));
    // rows as infogap 0.1 wrote them, through plain SQL
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        use sqlx::Connection;
        let url = format!("sqlite://{}", p.display());
        let mut c = sqlx::SqliteConnection::connect(&url).await.expect("connect");
        sqlx::raw_sql(
            "INSERT INTO sources (id, name, kind, namespace) VALUES (1, 'shop', 'order_lines', 'shop');
             INSERT INTO customers (id, created_at) VALUES (1, 'x'), (2, 'x');
             INSERT INTO identities (id, namespace, kind, value, customer_id, source_id, line) VALUES
               (1, 'shop', 'customer', 'C1', 1, 1, 2), (2, 'shop', 'customer', 'C2', 2, 1, 3);
             INSERT INTO products (id, key, name, category, price) VALUES (1, 'P1', 'pen', 'office', 1.5);
             INSERT INTO orders (id, namespace, key, identity_id, time, amount, discount, file_id) VALUES
               (1, 'shop', 'O1', 1, NULL, NULL, NULL, 1), (2, 'shop', 'O2', 2, 100, 9.5, 0.5, 1);
             INSERT INTO order_lines (source_id, file_id, order_id, identity_id, product_id, quantity, amount, discount, time) VALUES
               (1, 1, 1, 1, 1, 1, 0.1, 0, 50), (1, 1, 1, 1, NULL, 2, 0.2, 0.05, 40), (1, 1, 2, 2, 1, 1, 9.5, 0.5, 100);
             INSERT INTO attributes (identity_id, name, value, source_id, line) VALUES (1, 'tier', '\"gold\"', 1, 2);",
        )
        .execute(&mut c)
        .await
        .expect("insert");
    });
    let store = SqliteStore::open(&p).expect("reopen upgrades");
    let want = store.dataset_by_sql().expect("sql");
    assert_eq!(want.lines.len(), 3);
    assert_eq!(store.dataset().expect("dataset"), want);
    assert_eq!(store.generation().expect("generation").generation, 1);
    // and the first write after the upgrade is seen by a refresh
    let mut snap = infogap_store::snapshot::RawSnapshot::default();
    snap.apply(store.snapshot_delta(0).expect("full"))
        .expect("apply");
    let mut tx = store.begin().expect("begin");
    tx.assign_customers(&[(2, 1)], &[], &[]).expect("merge");
    tx.commit().expect("commit");
    let d = store.snapshot_delta(snap.generation).expect("delta");
    assert!(!d.full);
    snap.apply(d).expect("apply");
    assert_eq!(
        snap.dataset().expect("assemble"),
        store.dataset_by_sql().expect("sql")
    );
}

/// The audit trail on PostgreSQL: two handles (two servers) appending at
/// once extend one chain; filters, redaction and verification work there.
#[test]
fn postgres_audit_trail_is_one_chain_across_writers() {
    use infogap_store::audit::{AuditEntry, AuditFilter, AuditLog};
    let Some(db) = infogap_store::pgtest::database("audit trail") else {
        return;
    };
    let entry = |actor: &str, customers: Vec<i64>| AuditEntry {
        time_us: 1,
        actor: actor.into(),
        actor_kind: "key".into(),
        role: "analyst".into(),
        action: "customer.read".into(),
        customers,
        fields: vec!["contact".into()],
        origin: "127.0.0.1".into(),
        request_id: None,
        detail: "ok".into(),
    };
    let a = std::sync::Arc::new(AuditLog::open_postgres(&db.url).expect("open a"));
    let b = std::sync::Arc::new(AuditLog::open_postgres(&db.url).expect("open b"));
    let threads: Vec<_> = [(a.clone(), "a"), (b.clone(), "b")]
        .into_iter()
        .map(|(log, name)| {
            std::thread::spawn(move || {
                for i in 0..50i64 {
                    log.append(&[entry(name, vec![i % 7]), entry(name, vec![100])])
                        .expect("append");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer");
    }
    let check = a.verify().expect("verify");
    assert!(check.intact(), "{check:?}");
    assert_eq!(check.entries, 200);
    assert_eq!(check.head_seq, 200);
    let of3 = |log: &AuditLog| {
        log.records(&AuditFilter {
            customer: Some(3),
            limit: 1000,
            ..Default::default()
        })
        .expect("records")
    };
    // i % 7 == 3 for 7 values of i below 50, from each writer
    assert_eq!(of3(&b).len(), 14);
    let red = a.redact_customer(3).expect("redact");
    assert_eq!(red.records, 14);
    assert!(b.verify().expect("verify").intact());
    assert!(of3(&b).is_empty());
    // an edited record is named
    drop((a, b));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&db.url).await.expect("connect");
        sqlx::raw_sql("UPDATE audit_log SET detail = 'forged' WHERE seq = 17")
            .execute(&mut c)
            .await
            .expect("forge");
    });
    let check = AuditLog::open_postgres(&db.url)
        .expect("reopen")
        .verify()
        .expect("verify");
    assert_eq!(check.first_bad, Some(17), "{check:?}");
}
