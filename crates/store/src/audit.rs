//! The audit trail: who read, searched, exported or changed customer data,
//! append-only and hash-chained.
//!
//! Each record carries the SHA-256 of its own canonical form and of the
//! record before it, so an edited, inserted or deleted record breaks the
//! chain at a place [`AuditLog::verify`] can name. The head (last sequence
//! number and hash) is also kept apart, so cutting records off the end is
//! caught too; an attacker who rewrites the whole file consistently is not
//! (anchor the head elsewhere: `infogap audit verify --json` prints it).
//!
//! For SQLite the trail is its own database beside the store (`<db>.audit`):
//! its group commits never wait behind an import's long write transaction,
//! so reads keep being answered while a file imports. Writers from several
//! processes (a server and a CLI) take SQLite's write lock and extend one
//! chain. On PostgreSQL the trail's tables live in the store's database and
//! its writers take an advisory lock of their own ([`AUDIT_LOCK`]), not the
//! store's write lock, for the same reason: several servers extend one
//! chain, and none waits for an import.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Runtime;

use crate::sql::{RawDb, Row, get, query};
use crate::sqlite::Backend;
use crate::{Result, StoreError};

/// The advisory lock the trail's writers take on PostgreSQL ("audit").
pub const AUDIT_LOCK: i64 = 0x0061_7564_6974;

/// The hash before the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The audit database beside a store file.
pub fn audit_path(store: &Path) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(".audit");
    PathBuf::from(s)
}

/// What happened, before it is sequenced and chained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// When (Unix microseconds).
    pub time_us: i64,
    /// Who: the key's, token's or user's name (`local` for the CLI).
    pub actor: String,
    /// `admin`, `key`, `customer`, `source`, `cli`.
    pub actor_kind: String,
    /// The role acted under.
    pub role: String,
    /// What: `customer.read`, `segment.export`, `audit.read`, …
    pub action: String,
    /// Which customers' data (store ids).
    pub customers: Vec<i64>,
    /// Which field classes were returned (visible or masked).
    pub fields: Vec<String>,
    /// From where: the client address, or `cli`.
    pub origin: String,
    /// The request id (HTTP) if any.
    pub request_id: Option<String>,
    /// Outcome and extra words (`ok`, `denied: …`), never PII.
    pub detail: String,
}

/// A sequenced, chained record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Sequence number, from 1, without gaps.
    pub seq: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The person it was about was erased: their id and name are gone
    /// from it (the chain still verifies through its subject commitment).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    /// SHA-256 over a random salt, the actor and the customers: the chain
    /// covers this instead of the two, so they can be redacted (`None`:
    /// a record written before redaction existed, chained over them).
    #[serde(skip)]
    pub subject_commit: Option<String>,
    #[serde(skip)]
    subject_salt: Option<String>,
    /// Hash of the record before (hex).
    pub prev_hash: String,
    /// Hash of this record (hex).
    pub hash: String,
}

/// The subject commitment of a record: SHA-256 over its salt, actor and
/// customers. Redacting the two drops the salt and keeps the commitment.
pub fn subject_commit(salt: &str, actor: &str, customers: &[i64]) -> String {
    let canon = serde_json::json!([salt, actor, customers]);
    let mut h = Sha256::new();
    h.update(canon.to_string().as_bytes());
    hex(&h.finalize())
}

/// The hash of a record whose subject (actor, customers) is committed to
/// by `commit`: SHA-256 over a canonical JSON array of its other fields,
/// the commitment and the previous hash.
pub fn record_hash_committed(seq: i64, e: &AuditEntry, commit: &str, prev_hash: &str) -> String {
    let canon = serde_json::json!([
        seq,
        e.time_us,
        "subject",
        commit,
        e.actor_kind,
        e.role,
        e.action,
        e.fields,
        e.origin,
        e.request_id,
        e.detail,
        prev_hash
    ]);
    let mut h = Sha256::new();
    h.update(canon.to_string().as_bytes());
    hex(&h.finalize())
}

/// The hash of a record of the first format: SHA-256 over a canonical JSON
/// array of its fields and the previous hash.
pub fn record_hash(seq: i64, e: &AuditEntry, prev_hash: &str) -> String {
    let canon = serde_json::json!([
        seq,
        e.time_us,
        e.actor,
        e.actor_kind,
        e.role,
        e.action,
        e.customers,
        e.fields,
        e.origin,
        e.request_id,
        e.detail,
        prev_hash
    ]);
    let mut h = Sha256::new();
    h.update(canon.to_string().as_bytes());
    hex(&h.finalize())
}

/// Bytes as lowercase hex (hashes, key ids).
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Which records to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only records about this customer.
    pub customer: Option<i64>,
    /// Only records by this actor.
    pub actor: Option<String>,
    /// Only records older than this sequence number (a page cursor).
    pub before: Option<i64>,
    /// At most this many (0: all).
    pub limit: usize,
}

/// The outcome of checking the chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainCheck {
    /// Records read.
    pub entries: i64,
    /// Last sequence number.
    pub head_seq: i64,
    /// Last hash (anchor it elsewhere to catch a consistent rewrite).
    pub head_hash: String,
    /// The first record that is altered, missing or out of place, if any.
    pub first_bad: Option<i64>,
    /// Why, if broken.
    pub reason: Option<String>,
}

impl ChainCheck {
    /// True when nothing is wrong.
    pub fn intact(&self) -> bool {
        self.first_bad.is_none()
    }
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    seq         INTEGER PRIMARY KEY,
    time_us     INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    actor_kind  TEXT NOT NULL,
    role        TEXT NOT NULL,
    action      TEXT NOT NULL,
    customers   TEXT NOT NULL,
    fields      TEXT NOT NULL,
    origin      TEXT NOT NULL,
    request_id  TEXT,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_subjects (
    customer_id INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    PRIMARY KEY (customer_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_actor ON audit_log(actor, seq);
CREATE TABLE IF NOT EXISTS audit_redactions (
    customer_id INTEGER PRIMARY KEY,
    records     INTEGER NOT NULL,
    at_us       INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seq         INTEGER NOT NULL,
    hash        TEXT NOT NULL
);
";

/// The same tables in PostgreSQL's dialect.
const SCHEMA_PG: &str = "
CREATE TABLE IF NOT EXISTS audit_log (
    seq            BIGINT PRIMARY KEY,
    time_us        BIGINT NOT NULL,
    actor          TEXT COLLATE \"C\" NOT NULL,
    actor_kind     TEXT COLLATE \"C\" NOT NULL,
    role           TEXT COLLATE \"C\" NOT NULL,
    action         TEXT COLLATE \"C\" NOT NULL,
    customers      TEXT COLLATE \"C\" NOT NULL,
    fields         TEXT COLLATE \"C\" NOT NULL,
    origin         TEXT COLLATE \"C\" NOT NULL,
    request_id     TEXT COLLATE \"C\",
    detail         TEXT COLLATE \"C\" NOT NULL,
    prev_hash      TEXT COLLATE \"C\" NOT NULL,
    hash           TEXT COLLATE \"C\" NOT NULL,
    subject_commit TEXT COLLATE \"C\",
    subject_salt   TEXT COLLATE \"C\",
    redacted       BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS audit_subjects (
    customer_id BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    PRIMARY KEY (customer_id, seq)
);
CREATE INDEX IF NOT EXISTS audit_actor ON audit_log(actor, seq);
CREATE TABLE IF NOT EXISTS audit_redactions (
    customer_id BIGINT PRIMARY KEY,
    records     BIGINT NOT NULL,
    at_us       BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit_head (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    seq         BIGINT NOT NULL,
    hash        TEXT COLLATE \"C\" NOT NULL
);
";

/// The audit trail of a store.
pub struct AuditLog {
    rt: Runtime,
    conn: Backend,
    /// The database file (SQLite), or the server's URL without password.
    path: PathBuf,
}

impl Drop for AuditLog {
    /// A pool is closed from inside its runtime.
    fn drop(&mut self) {
        if let Backend::Pg(pool) = &self.conn {
            self.rt.block_on(pool.close());
        }
    }
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating if `create`) the audit database at `path`.
    pub fn open(path: &Path, create: bool) -> Result<AuditLog> {
        if !create && !path.exists() {
            return Err(StoreError::Open {
                path: path.display().to_string(),
                reason: "no audit trail here".into(),
            });
        }
        Self::connect(path, create)
    }

    /// An audit trail in memory (stores without a file: tests).
    pub fn in_memory() -> Result<AuditLog> {
        Self::connect(Path::new(":memory:"), true)
    }

    fn connect(path: &Path, create: bool) -> Result<AuditLog> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let setup = if path == Path::new(":memory:") {
            ""
        } else {
            crate::sqlite::WAL_SETUP
        };
        let conn = crate::raw::LiteConn::open(path, create, setup)?;
        {
            let db = RawDb::Lite(conn.db());
            db.exec_batch(SCHEMA).map_err(|e| open_err(e.to_string()))?;
            // records with a redactable subject (a trail written before has
            // none; its records keep verifying the first way)
            let cols = db
                .fetch(&query("SELECT name FROM pragma_table_info('audit_log')"))
                .map_err(|e| open_err(e.to_string()))?;
            let has = cols
                .iter()
                .any(|r| get::<String>(r, 0).is_ok_and(|n| n == "subject_commit"));
            if !has {
                db.exec_batch(
                    "ALTER TABLE audit_log ADD COLUMN subject_commit TEXT;
                     ALTER TABLE audit_log ADD COLUMN subject_salt TEXT;
                     ALTER TABLE audit_log ADD COLUMN redacted INTEGER NOT NULL DEFAULT 0;",
                )
                .map_err(|e| open_err(e.to_string()))?;
            }
        }
        Ok(AuditLog {
            rt,
            conn: Backend::Lite(Mutex::new(Some(conn))),
            path: path.to_path_buf(),
        })
    }

    /// Opens (creating its tables if needed) the trail in the PostgreSQL
    /// database at `url`, beside the store's tables.
    pub fn open_postgres(url: &str) -> Result<AuditLog> {
        let shown = crate::sqlite::redact_url(url);
        let open_err = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        let (rt, pool) = crate::sqlite::pg_pool(url, "infogap-audit", 4)?;
        let log = AuditLog {
            rt,
            conn: Backend::Pg(pool),
            path: PathBuf::from(&shown),
        };
        // two processes may create the tables at once: one at a time
        log.with_raw(|db| db.immediate_keyed(AUDIT_LOCK, || db.exec_batch(SCHEMA_PG)))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(log)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends entries in one transaction (a group commit) and returns
    /// their sequence numbers. When this returns, they are durable against
    /// a crash of the process.
    pub fn append(&self, entries: &[AuditEntry]) -> Result<Vec<i64>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        // through the C API with one prepared statement per table: through
        // sqlx every statement was two hand-offs to its worker thread,
        // which made the trail the server's bottleneck
        self.with_raw(|db| db.immediate_keyed(AUDIT_LOCK, || append_in(db, entries)))
    }

    fn with_raw<T>(&self, f: impl FnOnce(&RawDb<'_>) -> Result<T>) -> Result<T> {
        self.conn.hold(&self.rt)?.raw(&self.rt, f)
    }

    /// Sets this connection's automatic checkpoint (WAL pages; 0: never).
    /// A server's writer turns it off and lets [`AuditLog::checkpoint`] run
    /// on another connection, so no request waits for a checkpoint.
    pub fn set_autocheckpoint(&self, pages: u32) -> Result<()> {
        self.with_raw(|db| db.exec(&format!("PRAGMA wal_autocheckpoint = {pages}")))
    }

    /// Copies what the WAL holds into the database without blocking
    /// writers (`PRAGMA wal_checkpoint(PASSIVE)`).
    pub fn checkpoint(&self) -> Result<()> {
        self.with_raw(|db| db.exec("PRAGMA wal_checkpoint(PASSIVE)"))
    }

    /// Copies the trail, consistently, into a new file `out` (`VACUUM
    /// INTO`); returns how many records it holds.
    pub fn backup_into(&self, out: &Path) -> Result<i64> {
        let target = out.display().to_string();
        self.with_raw(|db| {
            if db.is_pg() {
                return Err(StoreError::Database(
                    "the trail of a PostgreSQL store is backed up with its database (pg_dump)"
                        .into(),
                ));
            }
            db.execute(&query("VACUUM INTO ?").bind(target))?;
            let rows = db.fetch(&query("SELECT COUNT(*) FROM audit_log"))?;
            rows.first()
                .map(|r| get(r, 0))
                .transpose()
                .map(|n| n.unwrap_or(0))
        })
    }

    /// Records matching the filter, newest first.
    pub fn records(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>> {
        let mut sql = String::from(
            "SELECT l.seq, l.time_us, l.actor, l.actor_kind, l.role, l.action, l.customers, l.fields, l.origin, l.request_id, l.detail, l.prev_hash, l.hash, l.subject_commit, l.subject_salt, l.redacted FROM audit_log l",
        );
        let mut conds: Vec<&str> = Vec::new();
        if f.customer.is_some() {
            sql.push_str(" JOIN audit_subjects s ON s.seq = l.seq");
            conds.push("s.customer_id = ?1");
        }
        if f.actor.is_some() {
            conds.push("l.actor = ?2");
        }
        if f.before.is_some() {
            conds.push("l.seq < ?3");
        }
        if !conds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&conds.join(" AND "));
        }
        sql.push_str(" ORDER BY l.seq DESC");
        if f.limit > 0 {
            sql.push_str(&format!(" LIMIT {}", f.limit));
        }
        let q = query(sql)
            .bind(f.customer.unwrap_or(0))
            .bind(f.actor.clone().unwrap_or_default())
            .bind(f.before.unwrap_or(0));
        let rows = self.with_raw(|db| db.fetch(&q))?;
        rows.iter().map(row_record).collect()
    }

    /// Checks the whole chain: consecutive sequence numbers, each record's
    /// hash, each link to the record before, and the kept head.
    pub fn verify(&self) -> Result<ChainCheck> {
        let (head, rows) = self.with_raw(|db| {
            db.read(|| {
                let head = db.fetch(&query("SELECT seq, hash FROM audit_head WHERE id = 1"))?;
                let rows = db.fetch(&query(
                    "SELECT seq, time_us, actor, actor_kind, role, action, customers, fields, origin, request_id, detail, prev_hash, hash, subject_commit, subject_salt, redacted FROM audit_log ORDER BY seq",
                ))?;
                Ok((head, rows))
            })
        })?;
        {
            {
                let mut check = ChainCheck {
                    entries: rows.len() as i64,
                    head_seq: 0,
                    head_hash: GENESIS.to_string(),
                    first_bad: None,
                    reason: None,
                };
                let mut prev = GENESIS.to_string();
                let mut expect = 1;
                for r in &rows {
                    let rec = match row_record(r) {
                        Ok(rec) => rec,
                        Err(e) => {
                            let seq = get::<i64>(r, 0).unwrap_or(expect);
                            check.first_bad = Some(seq);
                            check.reason = Some(format!("record {seq} is unreadable: {e}"));
                            return Ok(check);
                        }
                    };
                    if rec.seq != expect {
                        check.first_bad = Some(expect);
                        check.reason = Some(format!(
                            "record {expect} is missing (the next record is {})",
                            rec.seq
                        ));
                        return Ok(check);
                    }
                    if rec.prev_hash != prev {
                        check.first_bad = Some(rec.seq);
                        check.reason = Some(format!(
                            "record {} does not link to the record before it",
                            rec.seq
                        ));
                        return Ok(check);
                    }
                    let hash = match (&rec.subject_commit, &rec.subject_salt) {
                        (Some(commit), salt) => {
                            if let Some(salt) = salt
                                && subject_commit(salt, &rec.entry.actor, &rec.entry.customers)
                                    != *commit
                            {
                                check.first_bad = Some(rec.seq);
                                check.reason = Some(format!(
                                    "record {} was altered (its actor or customers do not match their commitment)",
                                    rec.seq
                                ));
                                return Ok(check);
                            }
                            record_hash_committed(rec.seq, &rec.entry, commit, &prev)
                        }
                        (None, _) => record_hash(rec.seq, &rec.entry, &prev),
                    };
                    if hash != rec.hash {
                        check.first_bad = Some(rec.seq);
                        check.reason = Some(format!(
                            "record {} was altered (its hash does not match its content)",
                            rec.seq
                        ));
                        return Ok(check);
                    }
                    prev = rec.hash;
                    expect += 1;
                }
                check.head_seq = expect - 1;
                check.head_hash = prev.clone();
                let (hseq, hhash) = match head.first() {
                    Some(h) => (get::<i64>(h, 0)?, get::<String>(h, 1)?),
                    None => (0, GENESIS.to_string()),
                };
                if hseq != check.head_seq || hhash != check.head_hash {
                    check.first_bad = Some(check.head_seq + 1);
                    check.reason = Some(if hseq > check.head_seq {
                        format!(
                            "records {} to {hseq} are missing (cut off the end)",
                            check.head_seq + 1
                        )
                    } else {
                        "the kept head does not match the last record".to_string()
                    });
                }
                Ok(check)
            }
        }
    }
}

/// What redacting a person from the trail changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Redaction {
    /// Records that named the person, now without them.
    pub records: u64,
    /// Records written before redaction existed: chained over their
    /// subject, so they cannot be redacted without breaking the chain.
    pub not_redactable: u64,
}

impl AuditLog {
    /// Removes an erased customer from every record about them: their id
    /// leaves `customers`, their token's name (`customer #ID`) becomes
    /// `[erased]`, and the index of records by customer forgets them. The
    /// chain still verifies: it covers each record's subject commitment,
    /// not the subject itself. Old values are zeroed in the file
    /// (`secure_delete`) and the WAL is truncated.
    pub fn redact_customer(&self, customer: i64) -> Result<Redaction> {
        let name = format!("customer #{customer}");
        self.with_raw(|db| {
            db.exec("PRAGMA secure_delete = ON")?;
            db.begin_keyed(AUDIT_LOCK)?;
            let r = (|| {
                let mut out = Redaction::default();
                let mut rows = Vec::new();
                {
                    let mut st = db.prepare(
                        "SELECT l.seq, l.actor, l.customers, l.subject_commit IS NOT NULL FROM audit_log l
                         JOIN audit_subjects s ON s.seq = l.seq WHERE s.customer_id = ?1
                         UNION SELECT seq, actor, customers, subject_commit IS NOT NULL FROM audit_log WHERE actor = ?2",
                    )?;
                    st.bind_i64(1, customer)?;
                    st.bind_text(2, &name)?;
                    while st.step()? {
                        rows.push((st.i64(0)?, st.text(1)?, st.text(2)?, st.i64(3)? != 0));
                    }
                }
                let mut up = db.prepare(
                    "UPDATE audit_log SET actor = ?1, customers = ?2, subject_salt = NULL, redacted = 1 WHERE seq = ?3",
                )?;
                for (seq, actor, customers, committed) in rows {
                    if !committed {
                        out.not_redactable += 1;
                        continue;
                    }
                    let list: Vec<i64> = serde_json::from_str(&customers)
                        .map_err(|e| StoreError::Corrupt(format!("audit trail customers: {e}")))?;
                    let kept: Vec<i64> = list.into_iter().filter(|c| *c != customer).collect();
                    let actor = if actor == name { "[erased]".to_string() } else { actor };
                    up.bind_text(1, &actor)?;
                    up.bind_text(
                        2,
                        &serde_json::to_string(&kept)
                            .map_err(|e| StoreError::Database(e.to_string()))?,
                    )?;
                    up.bind_i64(3, seq)?;
                    while up.step()? {}
                    up.reset()?;
                    out.records += 1;
                }
                let mut del = db.prepare("DELETE FROM audit_subjects WHERE customer_id = ?1")?;
                del.bind_i64(1, customer)?;
                while del.step()? {}
                let mut ins = db.prepare(
                    "INSERT INTO audit_redactions (customer_id, records, at_us) VALUES (?1, ?2, ?3)
                     ON CONFLICT(customer_id) DO UPDATE SET records = audit_redactions.records + ?2, at_us = ?3",
                )?;
                ins.bind_i64(1, customer)?;
                ins.bind_i64(2, out.records as i64)?;
                ins.bind_i64(3, chrono::Utc::now().timestamp_micros())?;
                while ins.step()? {}
                Ok(out)
            })();
            match r {
                Ok(v) => {
                    db.exec("COMMIT")?;
                    // the old values out of the WAL (best effort: a reader
                    // of another process may hold it; its next checkpoint does)
                    let _ = db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
                    Ok(v)
                }
                Err(e) => {
                    let _ = db.exec("ROLLBACK");
                    Err(e)
                }
            }
        })
    }
}

/// Appends inside the caller's write transaction.
fn append_in(db: &RawDb<'_>, entries: &[AuditEntry]) -> Result<Vec<i64>> {
    let (mut seq, mut prev) = {
        let mut st = db.prepare("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?;
        if st.step()? {
            (st.i64(0)?, st.text(1)?)
        } else {
            (0, GENESIS.to_string())
        }
    };
    let mut ins = db.prepare(
        "INSERT INTO audit_log (seq, time_us, actor, actor_kind, role, action, customers, fields, origin, request_id, detail, prev_hash, hash, subject_commit, subject_salt)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    let mut sub = db.prepare(
        "INSERT INTO audit_subjects (customer_id, seq) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
    )?;
    let mut seqs = Vec::with_capacity(entries.len());
    for e in entries {
        seq += 1;
        let salt = {
            let mut b = [0u8; 16];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut b);
            hex(&b)
        };
        let commit = subject_commit(&salt, &e.actor, &e.customers);
        let hash = record_hash_committed(seq, e, &commit, &prev);
        let customers = serde_json::to_string(&e.customers)
            .map_err(|err| StoreError::Database(format!("audit trail: {err}")))?;
        let fields = serde_json::to_string(&e.fields)
            .map_err(|err| StoreError::Database(format!("audit trail: {err}")))?;
        ins.bind_i64(1, seq)?;
        ins.bind_i64(2, e.time_us)?;
        ins.bind_text(3, &e.actor)?;
        ins.bind_text(4, &e.actor_kind)?;
        ins.bind_text(5, &e.role)?;
        ins.bind_text(6, &e.action)?;
        ins.bind_text(7, &customers)?;
        ins.bind_text(8, &fields)?;
        ins.bind_text(9, &e.origin)?;
        ins.bind_opt_text(10, e.request_id.as_deref())?;
        ins.bind_text(11, &e.detail)?;
        ins.bind_text(12, &prev)?;
        ins.bind_text(13, &hash)?;
        ins.bind_text(14, &commit)?;
        ins.bind_text(15, &salt)?;
        while ins.step()? {}
        ins.reset()?;
        for c in &e.customers {
            sub.bind_i64(1, *c)?;
            sub.bind_i64(2, seq)?;
            while sub.step()? {}
            sub.reset()?;
        }
        seqs.push(seq);
        prev = hash;
    }
    let mut head = db.prepare(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT(id) DO UPDATE SET seq = ?1, hash = ?2",
    )?;
    head.bind_i64(1, seq)?;
    head.bind_text(2, &prev)?;
    while head.step()? {}
    Ok(seqs)
}

fn row_record(r: &Row) -> Result<AuditRecord> {
    let customers: String = get(r, 6)?;
    let fields: String = get(r, 7)?;
    Ok(AuditRecord {
        seq: get(r, 0)?,
        entry: AuditEntry {
            time_us: get(r, 1)?,
            actor: get(r, 2)?,
            actor_kind: get(r, 3)?,
            role: get(r, 4)?,
            action: get(r, 5)?,
            customers: serde_json::from_str(&customers)
                .map_err(|e| StoreError::Corrupt(format!("audit trail customers: {e}")))?,
            fields: serde_json::from_str(&fields)
                .map_err(|e| StoreError::Corrupt(format!("audit trail fields: {e}")))?,
            origin: get(r, 8)?,
            request_id: get(r, 9)?,
            detail: get(r, 10)?,
        },
        prev_hash: get(r, 11)?,
        hash: get(r, 12)?,
        subject_commit: get(r, 13)?,
        subject_salt: get(r, 14)?,
        redacted: get::<i64>(r, 15)? != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(actor: &str, customers: Vec<i64>) -> AuditEntry {
        AuditEntry {
            time_us: 1,
            actor: actor.into(),
            actor_kind: "key".into(),
            role: "analyst".into(),
            action: "customer.read".into(),
            customers,
            fields: vec!["contact".into()],
            origin: "127.0.0.1".into(),
            request_id: Some("r1".into()),
            detail: "ok".into(),
        }
    }

    #[test]
    fn chain_verifies_and_names_the_altered_record() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let p = dir.path().join("s.db.audit");
        let log = AuditLog::open(&p, true)?;
        log.append(&[entry("a", vec![1]), entry("b", vec![2, 3])])?;
        log.append(&[entry("c", vec![3])])?;
        let c = log.verify()?;
        assert!(c.intact(), "{c:?}");
        assert_eq!(c.entries, 3);
        let by3 = log.records(&AuditFilter {
            customer: Some(3),
            ..Default::default()
        })?;
        assert_eq!(by3.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 2]);
        let by_a = log.records(&AuditFilter {
            actor: Some("a".into()),
            ..Default::default()
        })?;
        assert_eq!(by_a.len(), 1);
        // alter record 2 by hand
        log.with_raw(|db| db.exec("UPDATE audit_log SET actor = 'mallory' WHERE seq = 2"))?;
        let c = log.verify()?;
        assert_eq!(c.first_bad, Some(2), "{c:?}");
        Ok(())
    }

    #[test]
    fn redacting_a_person_keeps_the_chain_valid() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let p = dir.path().join("s.db.audit");
        let log = AuditLog::open(&p, true)?;
        log.append(&[entry("customer #7", vec![7]), entry("staff", vec![7, 8])])?;
        log.append(&[entry("staff", vec![8])])?;
        let r = log.redact_customer(7)?;
        assert_eq!(
            r,
            Redaction {
                records: 2,
                not_redactable: 0
            }
        );
        let c = log.verify()?;
        assert!(c.intact(), "{c:?}");
        let all = log.records(&AuditFilter::default())?;
        assert!(all.iter().all(|x| !x.entry.customers.contains(&7)));
        assert!(all.iter().all(|x| x.entry.actor != "customer #7"));
        assert_eq!(all.iter().filter(|x| x.redacted).count(), 2);
        assert!(
            log.records(&AuditFilter {
                customer: Some(7),
                ..Default::default()
            })?
            .is_empty()
        );
        assert_eq!(
            log.records(&AuditFilter {
                customer: Some(8),
                ..Default::default()
            })?
            .len(),
            2
        );
        drop(log);
        let bytes = std::fs::read(&p).map_err(|e| StoreError::Database(e.to_string()))?;
        assert!(
            !bytes.windows(11).any(|w| w == b"customer #7"),
            "the name is gone from the file"
        );
        // an unredacted record's subject is still protected by its commitment
        let log = AuditLog::open(&p, false)?;
        log.with_raw(|db| db.exec("UPDATE audit_log SET customers = '[9]' WHERE seq = 3"))?;
        assert_eq!(log.verify()?.first_bad, Some(3));
        Ok(())
    }

    #[test]
    fn a_deleted_record_or_cut_tail_is_named() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Database(e.to_string()))?;
        let p = dir.path().join("s.db.audit");
        let log = AuditLog::open(&p, true)?;
        for i in 0..5 {
            log.append(&[entry(&format!("x{i}"), vec![i])])?;
        }
        let exec = |sql: &str| -> Result<()> { log.with_raw(|db| db.exec(sql)) };
        exec("DELETE FROM audit_log WHERE seq = 5")?;
        let c = log.verify()?;
        assert_eq!(c.first_bad, Some(5), "{c:?}");
        exec("DELETE FROM audit_log WHERE seq = 3")?;
        let c = log.verify()?;
        assert_eq!(c.first_bad, Some(3), "{c:?}");
        Ok(())
    }
}
