//! Erasure and retention in the SQLite store: what erasing a person will
//! touch (the plan), the erasure itself in one transaction (every row of
//! the person deleted, or their orders detached onto an anonymous key, and
//! their identities put on the suppression list), the erasure journal, and
//! deleting facts older than their retention.
//!
//! Deletes bypass the per-file snapshot log, so both raise the store's
//! snapshot floor: every snapshot older than it is rebuilt in full rather
//! than brought up to date by a delta, which could not express a deleted row.

use std::collections::HashSet;

use serde::Serialize;

use crate::crypto::Field;
use crate::sql::RawDb;
use crate::{Result, SqliteStore, StoreError};

/// Rows of one table an erasure or retention pass touches.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct TableCount {
    /// The table.
    pub table: String,
    /// Rows.
    pub rows: u64,
    /// Fields of those rows that held the person's data.
    pub fields: Vec<String>,
    /// `deleted`, or `anonymized` (detached from the person, kept for totals).
    pub action: String,
}

/// Everything an erasure of one customer will touch, and the values a
/// verification pass must not find afterwards.
#[derive(Debug, Clone, Default)]
pub struct ErasurePlan {
    /// The customer.
    pub customer_id: i64,
    /// Per table: rows and fields.
    pub tables: Vec<TableCount>,
    /// (namespace, kind, value) of each identity (for the suppression list).
    pub identities: Vec<(String, String, String)>,
    /// (name, value) of each attribute, the value as the source wrote it.
    pub attributes: Vec<(String, String)>,
    /// Free texts of feedback.
    pub texts: Vec<String>,
    /// The stored ciphertexts of those values.
    pub sealed: Vec<Vec<u8>>,
    /// The blind indexes of the identities.
    pub blind: Vec<String>,
}

/// A row of the erasure journal (never a personal value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErasureRecord {
    /// Id.
    pub id: i64,
    /// The customer (gone once erased).
    pub customer_id: i64,
    /// `requested`, `erasing`, `done`, `rejected`.
    pub status: String,
    /// `delete` or `anonymize`.
    pub mode: String,
    /// When requested.
    pub requested_at: String,
    /// By whom.
    pub requested_by: String,
    /// When finished.
    pub finished_at: Option<String>,
    /// The receipt (JSON), once done.
    pub receipt: Option<String>,
}

/// Fact tables with an `identity_id`, the fields of a person they hold.
const FACT_TABLES: [(&str, &[&str]); 6] = [
    (
        "events",
        &["kind", "product_id", "value", "channel", "time"],
    ),
    ("feedback", &["kind", "score", "text", "channel", "time"]),
    ("campaign_contacts", &["campaign_id", "kind", "time"]),
    ("consents", &["purpose", "granted", "time"]),
    ("attributes", &["name", "value"]),
    (
        "order_lines",
        &["product_id", "quantity", "amount", "discount", "time"],
    ),
];

const MINE: &str = "(SELECT id FROM identities WHERE customer_id = ?1)";

fn count(db: &RawDb<'_>, sql: &str, c: i64) -> Result<u64> {
    let mut st = db.prepare(sql)?;
    st.bind_i64(1, c)?;
    Ok(if st.step()? {
        st.i64(0)?.max(0) as u64
    } else {
        0
    })
}

fn exec1(db: &RawDb<'_>, sql: &str, c: i64) -> Result<()> {
    let mut st = db.prepare(sql)?;
    st.bind_i64(1, c)?;
    while st.step()? {}
    Ok(())
}

impl SqliteStore {
    /// What erasing `customer_id` touches (nothing is changed).
    pub fn erasure_plan(&self, customer_id: i64) -> Result<ErasurePlan> {
        let key = self.data_key();
        self.with_raw(|db| db.read(|| plan_in(db, customer_id, key.as_deref())))
    }

    /// Erases `customer_id` in one transaction: deletes (or, with
    /// `anonymize`, detaches their orders onto the store's anonymous key)
    /// every row of the person, adds `suppress` (hash, kind) to the
    /// suppression list, marks erasure `erasure_id` as `erasing` with the
    /// counts, and raises the snapshot floor. Returns the counts.
    pub fn erase_customer(
        &self,
        customer_id: i64,
        erasure_id: i64,
        anonymize: bool,
        suppress: &[(String, String)],
    ) -> Result<Vec<TableCount>> {
        let key = self.data_key();
        self.with_raw(|db| {
            db.exec("PRAGMA secure_delete = ON")?;
            db.exec("BEGIN IMMEDIATE")?;
            let r = (|| {
                let plan = plan_in(db, customer_id, key.as_deref())?;
                let c = customer_id;
                let g = next_generation(db)?;
                // per-file fact counts follow the deletes
                for (t, _) in FACT_TABLES {
                    if t == "attributes" || (anonymize && t == "order_lines") {
                        continue;
                    }
                    uncount(db, t, &format!("identity_id IN {MINE}"), c)?;
                }
                if anonymize {
                    let anon = anonymous_identity(db, key.as_deref(), g)?;
                    let mut st = db.prepare(&format!(
                        "UPDATE orders SET identity_id = ?2, gen = ?3 WHERE identity_id IN {MINE}"
                    ))?;
                    st.bind_i64(1, c)?;
                    st.bind_i64(2, anon)?;
                    st.bind_i64(3, g)?;
                    while st.step()? {}
                    let mut st = db.prepare(&format!(
                        "UPDATE order_lines SET identity_id = ?2 WHERE identity_id IN {MINE}"
                    ))?;
                    st.bind_i64(1, c)?;
                    st.bind_i64(2, anon)?;
                    while st.step()? {}
                } else {
                    exec1(
                        db,
                        &format!("DELETE FROM order_lines WHERE identity_id IN {MINE}"),
                        c,
                    )?;
                    exec1(
                        db,
                        &format!("DELETE FROM orders WHERE identity_id IN {MINE}"),
                        c,
                    )?;
                }
                for (t, _) in FACT_TABLES {
                    if t != "order_lines" {
                        exec1(db, &format!("DELETE FROM {t} WHERE identity_id IN {MINE}"), c)?;
                    }
                }
                exec1(
                    db,
                    &format!("DELETE FROM identity_links WHERE a IN {MINE} OR b IN {MINE}"),
                    c,
                )?;
                exec1(
                    db,
                    "DELETE FROM merge_log WHERE customer_id = ?1 OR other_id = ?1",
                    c,
                )?;
                exec1(db, "DELETE FROM api_keys WHERE customer_id = ?1", c)?;
                exec1(db, "DELETE FROM web_sessions WHERE customer_id = ?1", c)?;
                exec1(db, "DELETE FROM alerts WHERE customer_id = ?1", c)?;
                exec1(db, "DELETE FROM webhook_outbox WHERE customer_id = ?1", c)?;
                exec1(db, "DELETE FROM identities WHERE customer_id = ?1", c)?;
                exec1(db, "DELETE FROM customers WHERE id = ?1", c)?;
                let at = crate::now_rfc3339();
                let mut ins = db.prepare(
                    "INSERT INTO suppressions (hash, kind, erasure_id, at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(hash) DO NOTHING",
                )?;
                for (hash, kind) in suppress {
                    ins.bind_text(1, hash)?;
                    ins.bind_text(2, kind)?;
                    ins.bind_i64(3, erasure_id)?;
                    ins.bind_text(4, &at)?;
                    while ins.step()? {}
                    ins.reset()?;
                }
                let counts: Vec<TableCount> = plan
                    .tables
                    .into_iter()
                    .map(|mut t| {
                        if anonymize && (t.table == "orders" || t.table == "order_lines") {
                            t.action = "anonymized".into();
                        }
                        t
                    })
                    .collect();
                let mut up = db.prepare(
                    "UPDATE erasures SET status = 'erasing', receipt = ?2 WHERE id = ?1",
                )?;
                up.bind_i64(1, erasure_id)?;
                up.bind_text(
                    2,
                    &serde_json::to_string(&counts)
                        .map_err(|e| StoreError::Database(e.to_string()))?,
                )?;
                while up.step()? {}
                raise_floor(db, g)?;
                Ok(counts)
            })();
            finish(db, r)
        })
    }

    /// Starts an erasure in the journal; returns its id.
    pub fn create_erasure(
        &self,
        customer_id: i64,
        status: &str,
        mode: &str,
        requested_by: &str,
    ) -> Result<i64> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "INSERT INTO erasures (customer_id, status, mode, requested_at, requested_by) VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
            )?;
            st.bind_i64(1, customer_id)?;
            st.bind_text(2, status)?;
            st.bind_text(3, mode)?;
            st.bind_text(4, &crate::now_rfc3339())?;
            st.bind_text(5, requested_by)?;
            if st.step()? {
                st.i64(0)
            } else {
                Err(StoreError::Database("no erasure id".into()))
            }
        })
    }

    /// Sets an erasure's status (and receipt).
    pub fn set_erasure(&self, id: i64, status: &str, receipt: Option<&str>) -> Result<()> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "UPDATE erasures SET status = ?2, receipt = COALESCE(?3, receipt),
                    finished_at = CASE WHEN ?2 IN ('done', 'rejected') THEN ?4 ELSE finished_at END
                 WHERE id = ?1",
            )?;
            st.bind_i64(1, id)?;
            st.bind_text(2, status)?;
            st.bind_opt_text(3, receipt)?;
            st.bind_text(4, &crate::now_rfc3339())?;
            while st.step()? {}
            Ok(())
        })
    }

    /// The erasure journal (newest first), optionally of one status.
    pub fn erasures(&self, status: Option<&str>) -> Result<Vec<ErasureRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT id, customer_id, status, mode, requested_at, requested_by, finished_at, receipt
                 FROM erasures WHERE ?1 IS NULL OR status = ?1 ORDER BY id DESC",
            )?;
            st.bind_opt_text(1, status)?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(ErasureRecord {
                    id: st.i64(0)?,
                    customer_id: st.i64(1)?,
                    status: st.text(2)?,
                    mode: st.text(3)?,
                    requested_at: st.text(4)?,
                    requested_by: st.text(5)?,
                    finished_at: st.opt_text(6)?,
                    receipt: st.opt_text(7)?,
                });
            }
            Ok(out)
        })
    }

    /// The suppression hashes of erased identities.
    pub fn suppressions(&self) -> Result<HashSet<String>> {
        self.with_raw(|db| {
            let mut st = db.prepare("SELECT hash FROM suppressions")?;
            let mut out = HashSet::new();
            while st.step()? {
                out.insert(st.text(0)?);
            }
            Ok(out)
        })
    }

    /// Deletes the facts of `kind` (`orders`, `events`, `feedback`,
    /// `campaigns`, `consents`) older than `cutoff` (Unix seconds); with
    /// `dry_run`, only counts them. Facts without a time are kept.
    pub fn retain(&self, kind: &str, cutoff: i64, dry_run: bool) -> Result<Vec<TableCount>> {
        let tables: Vec<(&str, String)> = match kind {
            "events" => vec![("events", "time < ?1".into())],
            "feedback" => vec![("feedback", "time < ?1".into())],
            "campaigns" => vec![("campaign_contacts", "time < ?1".into())],
            "consents" => vec![("consents", "time < ?1".into())],
            "orders" => vec![
                (
                    "order_lines",
                    "order_id IN (SELECT id FROM orders WHERE COALESCE(time, (SELECT MIN(time) FROM order_lines l WHERE l.order_id = orders.id)) < ?1)".into(),
                ),
                (
                    "orders",
                    "COALESCE(time, (SELECT MIN(time) FROM order_lines l WHERE l.order_id = orders.id)) < ?1".into(),
                ),
            ],
            other => {
                return Err(StoreError::Corrupt(format!(
                    "retention of unknown fact kind {other:?}"
                )));
            }
        };
        self.with_raw(|db| {
            if !dry_run {
                db.exec("PRAGMA secure_delete = ON")?;
            }
            db.exec("BEGIN IMMEDIATE")?;
            let r = (|| {
                let mut out = Vec::new();
                // counted first: the orders' own condition needs their lines
                for (t, cond) in &tables {
                    out.push(TableCount {
                        table: (*t).to_string(),
                        rows: count(
                            db,
                            &format!("SELECT COUNT(*) FROM {t} WHERE {cond}"),
                            cutoff,
                        )?,
                        fields: vec!["*".into()],
                        action: if dry_run { "would delete" } else { "deleted" }.into(),
                    });
                }
                if dry_run {
                    return Ok(out);
                }
                let g = next_generation(db)?;
                for (t, cond) in &tables {
                    if *t != "orders" {
                        uncount(db, t, cond, cutoff)?;
                    }
                    exec1(db, &format!("DELETE FROM {t} WHERE {cond}"), cutoff)?;
                }
                raise_floor(db, g)?;
                Ok(out)
            })();
            finish(db, r)
        })
    }
}

fn finish<T>(db: &RawDb<'_>, r: Result<T>) -> Result<T> {
    match r {
        Ok(v) => {
            db.exec("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = db.exec("ROLLBACK");
            Err(e)
        }
    }
}

/// Takes the rows of `table` matching `cond` (with `?1` = `arg`), about to
/// be deleted, off the per-file counts `stats` reads.
fn uncount(db: &RawDb<'_>, table: &str, cond: &str, arg: i64) -> Result<()> {
    let mut st = db.prepare(&format!(
        "SELECT file_id, COUNT(*) FROM {table} WHERE {cond} GROUP BY file_id"
    ))?;
    st.bind_i64(1, arg)?;
    let mut per = Vec::new();
    while st.step()? {
        per.push((st.i64(0)?, st.i64(1)?));
    }
    let mut up = db
        .prepare("UPDATE file_rows SET rows = CASE WHEN rows > ?1 THEN rows - ?1 ELSE 0 END WHERE file_id = ?2 AND tbl = ?3")?;
    for (file, n) in per {
        up.bind_i64(1, n)?;
        up.bind_i64(2, file)?;
        up.bind_text(3, table)?;
        while up.step()? {}
        up.reset()?;
    }
    Ok(())
}

fn next_generation(db: &RawDb<'_>) -> Result<i64> {
    let mut st = db.prepare(
        "UPDATE store_meta SET generation = generation + 1 WHERE id = 1 RETURNING generation",
    )?;
    if st.step()? {
        st.i64(0)
    } else {
        Err(StoreError::Corrupt("store_meta has no row".into()))
    }
}

/// Snapshots older than generation `g` are rebuilt in full.
fn raise_floor(db: &RawDb<'_>, g: i64) -> Result<()> {
    let mut st = db.prepare(
        "INSERT INTO settings (key, value) VALUES ('snapshot.floor', ?1) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
    )?;
    st.bind_text(1, &g.to_string())?;
    while st.step()? {}
    Ok(())
}

/// The store's anonymous key: an over-shared identity (never a person:
/// analytics per customer skip it, totals keep its facts).
fn anonymous_identity(db: &RawDb<'_>, key: Option<&crate::crypto::DataKey>, g: i64) -> Result<i64> {
    const VALUE: &str = "erased";
    let stored = key.map_or_else(|| VALUE.to_string(), |k| k.blind(VALUE));
    let mut st = db.prepare(
        "SELECT id FROM identities WHERE namespace = '_erased' AND kind = 'customer' AND value = ?1",
    )?;
    st.bind_text(1, &stored)?;
    if st.step()? {
        return st.i64(0);
    }
    drop(st);
    let mut st = db.prepare(
        "SELECT COALESCE(MAX(id), 0) + 1, (SELECT COALESCE(MAX(id), 0) + 1 FROM customers), (SELECT MIN(id) FROM sources) FROM identities",
    )?;
    st.step()?;
    let (id, cust, source) = (st.i64(0)?, st.i64(1)?, st.opt_i64(2)?.unwrap_or(0));
    drop(st);
    let mut ins = db.prepare("INSERT INTO customers (id, created_at) VALUES (?1, ?2)")?;
    ins.bind_i64(1, cust)?;
    ins.bind_text(2, &crate::now_rfc3339())?;
    while ins.step()? {}
    let mut ins = db.prepare(
        "INSERT INTO identities (id, namespace, kind, value, secret, customer_id, source_id, line, shared, gen)
         VALUES (?1, '_erased', 'customer', ?2, ?3, ?4, ?5, 0, 1, ?6)",
    )?;
    ins.bind_i64(1, id)?;
    ins.bind_text(2, &stored)?;
    match key {
        Some(k) => ins.bind_blob(3, &k.seal(Field::Identity, VALUE.as_bytes()))?,
        None => ins.bind_null(3)?,
    }
    ins.bind_i64(4, cust)?;
    ins.bind_i64(5, source)?;
    ins.bind_i64(6, g)?;
    while ins.step()? {}
    Ok(id)
}

fn plan_in(db: &RawDb<'_>, c: i64, key: Option<&crate::crypto::DataKey>) -> Result<ErasurePlan> {
    let mut p = ErasurePlan {
        customer_id: c,
        ..ErasurePlan::default()
    };
    let open =
        |field: Field, secret: Option<Vec<u8>>, clear: Option<String>| -> Result<Option<String>> {
            match (secret, key) {
                (Some(s), Some(k)) => k.open_text(field, &s).map(Some),
                (Some(_), None) => Err(StoreError::Corrupt(
                    "an encrypted value, and no data key".into(),
                )),
                (None, _) => Ok(clear),
            }
        };
    {
        let mut st = db.prepare(
            "SELECT namespace, kind, value, secret FROM identities WHERE customer_id = ?1 ORDER BY id",
        )?;
        st.bind_i64(1, c)?;
        while st.step()? {
            let ns = st.text(0)?;
            let kind = st.text(1)?;
            let stored = st.text(2)?;
            let secret = st.opt_blob(3)?;
            if let Some(s) = &secret {
                p.sealed.push(s.clone());
                p.blind.push(stored.clone());
            }
            let v = open(Field::Identity, secret, Some(stored))?.unwrap_or_default();
            p.identities.push((ns, kind, v));
        }
    }
    {
        let mut st = db.prepare(&format!(
            "SELECT value, secret, name FROM attributes WHERE identity_id IN {MINE}"
        ))?;
        st.bind_i64(1, c)?;
        while st.step()? {
            let secret = st.opt_blob(1)?;
            if let Some(s) = &secret {
                p.sealed.push(s.clone());
            }
            let name = st.text(2)?;
            let json = open(Field::Attribute, secret, st.opt_text(0)?)?.unwrap_or_default();
            // the value as it was written in the source, not as JSON
            let v = match serde_json::from_str::<serde_json::Value>(&json) {
                Ok(serde_json::Value::String(s)) => s,
                _ => json,
            };
            p.attributes.push((name, v));
        }
    }
    {
        let mut st = db.prepare(&format!(
            "SELECT text, secret FROM feedback WHERE identity_id IN {MINE} AND (text IS NOT NULL OR secret IS NOT NULL)"
        ))?;
        st.bind_i64(1, c)?;
        while st.step()? {
            let secret = st.opt_blob(1)?;
            if let Some(s) = &secret {
                p.sealed.push(s.clone());
            }
            if let Some(t) = open(Field::FeedbackText, secret, st.opt_text(0)?)? {
                p.texts.push(t);
            }
        }
    }
    let t = |table: &str, rows: u64, fields: &[&str]| TableCount {
        table: table.to_string(),
        rows,
        fields: fields.iter().map(|s| s.to_string()).collect(),
        action: "deleted".into(),
    };
    p.tables.push(t(
        "identities",
        count(
            db,
            "SELECT COUNT(*) FROM identities WHERE customer_id = ?1",
            c,
        )?,
        &["namespace", "kind", "value", "secret"],
    ));
    p.tables.push(t(
        "identity_links",
        count(
            db,
            &format!("SELECT COUNT(*) FROM identity_links WHERE a IN {MINE} OR b IN {MINE}"),
            c,
        )?,
        &["a", "b", "rule", "line"],
    ));
    p.tables.push(t(
        "customers",
        count(db, "SELECT COUNT(*) FROM customers WHERE id = ?1", c)?,
        &["id", "created_at"],
    ));
    p.tables.push(t(
        "merge_log",
        count(
            db,
            "SELECT COUNT(*) FROM merge_log WHERE customer_id = ?1 OR other_id = ?1",
            c,
        )?,
        &["customer_id", "other_id", "detail"],
    ));
    p.tables.push(t(
        "orders",
        count(
            db,
            &format!("SELECT COUNT(*) FROM orders WHERE identity_id IN {MINE}"),
            c,
        )?,
        &["identity_id", "key", "time", "amount", "discount"],
    ));
    for (table, fields) in FACT_TABLES {
        p.tables.push(t(
            table,
            count(
                db,
                &format!("SELECT COUNT(*) FROM {table} WHERE identity_id IN {MINE}"),
                c,
            )?,
            fields,
        ));
    }
    p.tables.push(t(
        "api_keys",
        count(
            db,
            "SELECT COUNT(*) FROM api_keys WHERE customer_id = ?1",
            c,
        )?,
        &["customer_id", "name", "secret_hash"],
    ));
    p.tables.push(t(
        "web_sessions",
        count(
            db,
            "SELECT COUNT(*) FROM web_sessions WHERE customer_id = ?1",
            c,
        )?,
        &["customer_id", "secret_hash"],
    ));
    p.tables.push(t(
        "alerts",
        count(db, "SELECT COUNT(*) FROM alerts WHERE customer_id = ?1", c)?,
        &["customer_id", "detail"],
    ));
    p.tables.push(t(
        "webhook_outbox",
        count(
            db,
            "SELECT COUNT(*) FROM webhook_outbox WHERE customer_id = ?1",
            c,
        )?,
        &["customer_id", "body", "secret"],
    ));
    Ok(p)
}
