//! The snapshot path: figures equal to plain SQL on the store; the cache is
//! derived and disposable; a held snapshot follows merges, splits and
//! imports by reading only what changed.

use std::collections::HashMap;
use std::path::Path;

use infogap_core::config::Config;
use infogap_engine::Engine;
use infogap_engine::analytics::{SegmentOptions, segments};
use infogap_engine::features::{FeatureOptions, build_features};
use infogap_engine::import::{ImportOptions, import};

use crate::imported;

/// Rows of a plain SQL query on the store file, every column as f64 (NULL as NaN).
fn sql(db: &Path, query: &str) -> Vec<Vec<f64>> {
    use sqlx::{Connection, Row};
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("sqlite://{}?mode=ro", db.display());
        let mut c = sqlx::SqliteConnection::connect(&url)
            .await
            .expect("connect");
        let rows = sqlx::query(sqlx::AssertSqlSafe(query.to_string()))
            .fetch_all(&mut c)
            .await
            .expect("query");
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        r.try_get::<Option<i64>, _>(i)
                            .map(|v| v.map(|x| x as f64))
                            .or_else(|_| r.try_get::<Option<f64>, _>(i))
                            .expect("number")
                            .unwrap_or(f64::NAN)
                    })
                    .collect()
            })
            .collect()
    })
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Each order with its customer, time and amount, as the store's own SQL
/// defines them (an order without amount or time takes its lines').
const ORDERS: &str = "SELECT i.customer_id AS c,
        COALESCE(o.time, (SELECT MIN(time) FROM order_lines WHERE order_id = o.id)) AS t,
        COALESCE(o.amount, (SELECT SUM(amount) FROM order_lines WHERE order_id = o.id), 0.0) AS amount
    FROM orders o JOIN identities i ON i.id = o.identity_id";

#[test]
fn rfm_churn_features_and_clv_inputs_equal_plain_sql_on_the_demo_store() {
    let (fx, engine) = imported(300, 21);
    let db = fx.dir.path().join("store.db");
    let ds = engine.dataset().expect("dataset");
    assert!(engine.cache_path().is_some_and(|p| p.exists()));

    // RFM: as of the latest fact, per customer with orders
    let as_of = sql(
        &db,
        "SELECT MAX(t) FROM (SELECT time AS t FROM orders UNION ALL SELECT time FROM order_lines
         UNION ALL SELECT time FROM events UNION ALL SELECT time FROM feedback)",
    )[0][0];
    let want: HashMap<i64, (f64, f64, f64)> = sql(
        &db,
        &format!("SELECT c, COUNT(*), SUM(amount), MAX(t) FROM ({ORDERS}) GROUP BY c"),
    )
    .into_iter()
    .map(|r| (r[0] as i64, (r[1], r[2], (as_of - r[3]) / 86_400.0)))
    .collect();
    let (_, customers) = segments(&ds, &SegmentOptions::default()).expect("segments");
    let mut compared = 0;
    for c in &customers {
        match want.get(&c.id) {
            Some((f, m, r)) => {
                assert_eq!(c.frequency as f64, *f, "frequency of {}", c.id);
                assert!(
                    close(c.monetary, *m),
                    "monetary of {}: {} vs {m}",
                    c.id,
                    c.monetary
                );
                let rec = c.recency_days.expect("recency");
                assert!(close(rec, r.max(0.0)), "recency of {}: {rec} vs {r}", c.id);
                compared += 1;
            }
            None => assert_eq!(c.frequency, 0, "customer {} has no orders in SQL", c.id),
        }
    }
    assert!(compared > 200, "compared {compared} customers");

    // churn features at a cutoff: orders, spend, days since the last order
    let cutoff = as_of as i64 - 90 * 86_400;
    let ft = build_features(&ds, cutoff, &FeatureOptions::default());
    let col = |name: &str| {
        ft.columns
            .iter()
            .position(|c| c.name == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (jf, jm, jr) = (col("frequency"), col("monetary_total"), col("recency_days"));
    let before: HashMap<i64, (f64, f64, f64)> = sql(
        &db,
        &format!(
            "SELECT c, COUNT(*), SUM(amount), MAX(t) FROM ({ORDERS}) WHERE t < {cutoff} GROUP BY c"
        ),
    )
    .into_iter()
    .map(|r| (r[0] as i64, (r[1], r[2], (cutoff as f64 - r[3]) / 86_400.0)))
    .collect();
    let mut compared = 0;
    for (i, id) in ft.customers.iter().enumerate() {
        if let Some((f, m, r)) = before.get(id) {
            assert_eq!(ft.get(i, jf), *f, "frequency of {id}");
            assert!(
                close(ft.get(i, jm), *m),
                "spend of {id}: {} vs {m}",
                ft.get(i, jm)
            );
            assert!(
                close(ft.get(i, jr), *r),
                "recency of {id}: {} vs {r}",
                ft.get(i, jr)
            );
            compared += 1;
        } else {
            assert_eq!(
                ft.get(i, jf),
                0.0,
                "customer {id} has no orders before the cutoff"
            );
        }
    }
    assert!(compared > 100, "compared {compared} customers");

    // CLV inputs: every dated order as (customer, day, amount)
    let (tx, ids, skipped) = infogap_engine::clv::transactions(&ds);
    let mut got: Vec<(i64, i64, u64)> = tx
        .iter()
        .map(|t| (ids[t.customer], t.day, (t.amount * 100.0).round() as u64))
        .collect();
    let mut want: Vec<(i64, i64, u64)> = sql(
        &db,
        &format!("SELECT c, t, amount FROM ({ORDERS}) WHERE t IS NOT NULL"),
    )
    .into_iter()
    .map(|r| {
        (
            r[0] as i64,
            (r[1] as i64).div_euclid(86_400),
            (r[2] * 100.0).round() as u64,
        )
    })
    .collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    let undated = sql(
        &db,
        &format!("SELECT COUNT(*) FROM ({ORDERS}) WHERE t IS NULL"),
    )[0][0];
    assert_eq!(skipped as f64, undated);
}

#[test]
fn the_cache_is_derived_and_disposable() {
    let (fx, engine) = imported(120, 4);
    let want = engine.dataset().expect("dataset");
    let cache = engine.cache_path().expect("a cache path").clone();
    let good = std::fs::read(&cache).expect("the import wrote the cache");

    // deleted: rebuilt silently, same data
    std::fs::remove_file(&cache).expect("rm");
    let r = engine.snapshot().expect("rebuild").1;
    assert!(r.rebuilt.is_none() && r.cache_bytes_written > 0 && r.rows_read > 0);
    assert_eq!(engine.dataset().expect("dataset"), want);

    // current: nothing is read from the store, and the import's cheap check
    // (the header) agrees
    let r = engine.update_cache().expect("current");
    assert_eq!((r.rows_read, r.cache_bytes_written), (0, 0));
    let r = engine.snapshot().expect("current").1;
    assert_eq!((r.rows_read, r.cache_bytes_written), (0, 0));

    // damaged in the middle: detected, rebuilt, and the reason given
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x55;
    std::fs::write(&cache, &bad).expect("write");
    let r = engine.snapshot().expect("rebuild").1;
    let why = r.rebuilt.expect("a reason");
    assert!(why.contains("checksum") || why.contains("section"), "{why}");
    assert_eq!(engine.dataset().expect("dataset"), want);

    // truncated, or not a cache at all
    std::fs::write(&cache, &good[..good.len() / 3]).expect("write");
    assert!(engine.snapshot().expect("rebuild").1.rebuilt.is_some());
    std::fs::write(&cache, b"hello").expect("write");
    let why = engine
        .snapshot()
        .expect("rebuild")
        .1
        .rebuilt
        .expect("reason");
    assert!(why.contains("snapshot cache"), "{why}");

    // another store's cache: never used
    let (_fx2, other) = imported(60, 5);
    let foreign = std::fs::read(other.cache_path().expect("path")).expect("other cache");
    std::fs::write(&cache, foreign).expect("write");
    let why = engine
        .snapshot()
        .expect("rebuild")
        .1
        .rebuilt
        .expect("reason");
    // (its personal sections are sealed with the other store's key, which
    // is found first; a cache of another store with the same key would be
    // refused by its store id)
    assert!(
        why.contains("another store") || why.contains("not sealed with this store's key"),
        "{why}"
    );
    assert_eq!(engine.dataset().expect("dataset"), want);
    drop(fx);
}

#[test]
fn a_held_snapshot_follows_splits_and_imports_reading_only_what_changed() {
    let (fx, engine) = imported(150, 8);
    let db = fx.dir.path().join("store.db");
    let (mut held, _) = engine.snapshot().expect("snapshot");
    let g0 = held.generation();

    // nothing changed: one small read
    let r = engine.refresh(&mut held).expect("refresh");
    assert_eq!((r.generation, r.rows_read), (g0, 0));

    // another handle on the store splits a customer with several identities
    let writer = Engine::open(&db).expect("second handle");
    let store = writer.store();
    let (cust, ident) = held
        .dataset()
        .customers
        .iter()
        .find_map(|c| {
            let ids = store.customer_identities(c.id).expect("identities");
            let other = ids
                .iter()
                .find(|i| format!("{}:{}", i.namespace, i.value) != c.key)?;
            Some((
                c.key.clone(),
                format!("{}:{}", other.namespace, other.value),
            ))
        })
        .expect("a merged customer");
    let n0 = held.dataset().customers.len();
    infogap_engine::report::split(&writer, &cust, None, &ident).expect("split");
    let r = engine.refresh(&mut held).expect("refresh");
    assert!(r.generation > g0);
    assert_eq!(r.file_changes, 0, "a split reads no facts");
    assert!(r.rows_read <= 10, "a split read {} rows", r.rows_read);
    assert!(
        held.dataset().customers.len() > n0,
        "the split made a customer"
    );
    assert_eq!(*held.dataset(), writer.dataset().expect("fresh"));

    // a changed file: only that file is read again
    crate::drop_last_sales_line(&fx);
    let config = Config::load(&fx.config).expect("config");
    import(&writer, &config, &ImportOptions::default()).expect("reimport");
    let before_lines = held.dataset().lines.len();
    let d = writer
        .store()
        .snapshot_delta(held.generation())
        .expect("delta");
    let files: std::collections::BTreeSet<i64> = d.files.iter().map(|f| f.file_id).collect();
    assert_eq!(files.len(), 1, "only the sales file changed: {files:?}");
    assert!(d.products.is_empty() && d.campaigns.is_empty() && d.attributes.is_empty());
    let r = engine.refresh(&mut held).expect("refresh");
    let ds = held.dataset();
    assert_eq!(ds.lines.len(), before_lines - 1);
    // the file's lines, and its orders (removed with it, then back)
    assert!(
        r.rows_read <= ds.lines.len() + 2 * ds.orders.len() + 10,
        "read {} rows: {r:?}",
        r.rows_read
    );
    assert_eq!(*held.dataset(), writer.dataset().expect("fresh"));
}

/// The Complete Journey: the cached snapshot equals plain SQL's data set to
/// the bit (1.47M order lines, 155,848 orders summed from their lines), and
/// the store's figures are the documented ones.
#[test]
#[ignore = "real data: ../shared/data"]
fn complete_journey_snapshot_equals_plain_sql() {
    let (dir, engine) = crate::truthful::complete_journey();
    let db = dir.path().join("cj.db");
    let ds = engine.dataset().expect("from the cache");
    let by_sql = infogap_store::SqliteStore::open(&db)
        .expect("open")
        .dataset_by_sql()
        .expect("sql");
    assert_eq!(ds.lines.len(), 1_469_307);
    assert_eq!(ds.orders.len(), 155_848);
    assert_eq!(ds.customers.len(), 2_469);
    assert!(ds == by_sql, "the cached snapshot differs from plain SQL");
    let s = infogap_engine::report::stats(&engine).expect("stats");
    assert_eq!(s.revenue, 4_596_039.58);
    let h = ds
        .customers
        .iter()
        .find(|c| c.key == "household:1023")
        .expect("household 1023");
    let mine: Vec<_> = ds.orders.iter().filter(|o| o.customer == h.id).collect();
    assert_eq!(mine.len(), 375);
    let spend: f64 = mine.iter().map(|o| o.amount).sum();
    assert!((spend - 24_879.75).abs() < 0.005, "{spend}");
}
