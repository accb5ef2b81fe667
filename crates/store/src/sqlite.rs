//! The SQL store: the embedded SQLite file (the default) or a PostgreSQL
//! server, one implementation of [`Store`] over the statement API of
//! [`crate::sql`].
//!
//! SQLite: one connection, guarded by a mutex, driven by a private
//! current-thread tokio runtime: callers see a synchronous API. The
//! database runs in WAL mode with `synchronous = NORMAL`; writers take the
//! lock up front with `BEGIN IMMEDIATE`.
//!
//! PostgreSQL: a small pool of connections on a private runtime, so the
//! readers of one process (a server's requests) run side by side, while
//! writers of every process queue on one advisory lock as SQLite's writers
//! queue on its file lock. Several processes (servers, the CLI) share one
//! database; each store id, generation counter, audit chain and outbox is
//! the database's, not the process's.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use infogap_core::dataset::{
    AttrValue, CampaignFact, CampaignInfo, CustomerInfo, Dataset, EventFact, FeedbackFact,
    LineFact, OrderFact, ProductInfo,
};
use tokio::runtime::Runtime;

use crate::raw::LiteConn;

use crate::crypto::{DataKey, Field};
use crate::keyed::load_checked;
use crate::migrate::{Migration, checksum, latest};
use crate::snapshot::*;
use crate::sql::{PgConn, PgDb, Q, RawDb, Row, Stmt, get, query};
use crate::*;

fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

/// The store's database connection(s).
pub(crate) enum Backend {
    /// `None` only while being dropped (the connection is closed cleanly).
    Lite(Mutex<Option<LiteConn>>),
    Pg(sqlx::PgPool),
}

/// The SQL store (SQLite or PostgreSQL; the name is historical).
pub struct SqliteStore {
    pub(crate) rt: Runtime,
    conn: Backend,
    /// The data key (`None` only for a store opened at a schema version
    /// before encryption, as tests of upgrades do): personal values are
    /// sealed with it on write and opened on read.
    pub(crate) key: std::sync::RwLock<Option<Arc<DataKey>>>,
    /// Where the key file is.
    pub(crate) key_path: Option<PathBuf>,
    /// Set when this open generated the key file (the caller warns).
    pub(crate) key_generated: bool,
}

impl Backend {
    /// A connection (SQLite: the one, waiting for its mutex; PostgreSQL:
    /// one from the pool), held until the guard is dropped.
    pub(crate) fn hold<'a>(&'a self, rt: &'a Runtime) -> Result<Held<'a>> {
        Ok(match self {
            Backend::Lite(m) => Held::Lite(match m.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            }),
            Backend::Pg(pool) => Held::Pg(
                RefCell::new(Some(rt.block_on(pool.acquire()).map_err(db_err)?)),
                rt,
            ),
        })
    }
}

/// A connection held for a while (a call, or a whole transaction).
pub(crate) enum Held<'a> {
    Lite(MutexGuard<'a, Option<LiteConn>>),
    /// `None` only while being dropped.
    Pg(RefCell<Option<PgConn>>, &'a Runtime),
}

impl Drop for Held<'_> {
    /// A pooled connection goes back to its pool from inside the runtime.
    fn drop(&mut self) {
        if let Held::Pg(c, rt) = self {
            let conn = c.get_mut().take();
            let _in = rt.enter();
            drop(conn);
        }
    }
}

impl Held<'_> {
    /// Runs `f` on this connection through the statement API.
    pub(crate) fn raw<T>(
        &mut self,
        rt: &Runtime,
        f: impl FnOnce(&RawDb<'_>) -> Result<T>,
    ) -> Result<T> {
        match self {
            Held::Lite(g) => {
                let Some(conn) = g.as_ref() else {
                    // the connection is taken only in `Drop`, when no borrow is left
                    return Err(StoreError::Database(
                        "the store's connection is used after drop".into(),
                    ));
                };
                let db = RawDb::Lite(conn.db());
                f(&db)
            }
            Held::Pg(c, _) => {
                let db = RawDb::Pg(PgDb::new(c, rt));
                f(&db)
            }
        }
    }
}

impl Drop for SqliteStore {
    /// Closes the connection and waits for it: the last connection to close
    /// checkpoints the WAL and removes it. A process that just exits leaves
    /// the WAL behind, and every later process then reads all of it to
    /// recover (97 MB after importing The Complete Journey: 30 ms per command).
    fn drop(&mut self) {
        match &mut self.conn {
            Backend::Lite(m) => {
                let conn = match m.get_mut() {
                    Ok(c) => c.take(),
                    Err(poisoned) => poisoned.into_inner().take(),
                };
                drop(conn);
            }
            Backend::Pg(pool) => self.rt.block_on(pool.close()),
        }
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// How every database file of a store is set up on open: WAL,
/// `synchronous = NORMAL` (a committed transaction is in the WAL file,
/// which survives a crash of the process; only a power loss can take the
/// last ones); with a 30 s wait for another writer's lock.
pub(crate) const WAL_SETUP: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// A runtime of one thread and a pool of at most `max` connections to
/// the PostgreSQL database at `url`.
pub(crate) fn pg_pool(url: &str, thread: &str, max: u32) -> Result<(Runtime, sqlx::PgPool)> {
    let open_err = |reason: String| StoreError::Open {
        path: redact_url(url),
        reason,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(thread)
        .enable_all()
        .build()
        .map_err(|e| open_err(e.to_string()))?;
    let opts: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| open_err(e.to_string()))?;
    let pool = rt
        .block_on(
            sqlx::postgres::PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts),
        )
        .map_err(|e| open_err(e.to_string()))?;
    Ok((rt, pool))
}

/// A PostgreSQL URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let cred = &url[s + 3..at];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &cred[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl SqliteStore {
    /// Opens or creates the store at `path` and applies pending migrations;
    /// the data key is the one the store remembers, else `<path>.key`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with_key(path, None)
    }

    /// Opens or creates the store with the data key in `key_file` (when
    /// given: `INFOGAP_KEY_FILE` or `[privacy] key_file`; else the file the
    /// store remembers, else `<path>.key`). A store without a key gets a
    /// new key file there ([`SqliteStore::key_generated`]). A key file that
    /// is missing or not this store's key is an error naming the file, and
    /// nothing is written.
    pub fn open_with_key(path: &Path, key_file: Option<&Path>) -> Result<SqliteStore> {
        Self::open_inner(path, latest(), Some(key_file))
    }

    /// Opens the store applying migrations up to `version` only: how tests
    /// build a store as an older infogap wrote it. A store at an older
    /// version works only for reading what that version had.
    #[doc(hidden)]
    pub fn open_at_version(path: &Path, version: i64) -> Result<SqliteStore> {
        Self::open_inner(path, version, None)
    }

    /// Opens (creating the schema if needed) the store in the PostgreSQL
    /// database at `url`, with the data key in `key_file`: given, or the
    /// one the store remembers. A new store without either is refused (a
    /// server database has no file beside it to put a new key in).
    pub fn open_postgres(url: &str, key_file: Option<&Path>) -> Result<SqliteStore> {
        let shown = redact_url(url);
        let open_err = |reason: String| StoreError::Open {
            path: shown.clone(),
            reason,
        };
        let (rt, pool) = pg_pool(url, "infogap-pg", 8)?;
        let mut store = SqliteStore {
            rt,
            conn: Backend::Pg(pool),
            key: std::sync::RwLock::new(None),
            key_path: None,
            key_generated: false,
        };
        // an encrypted store refuses a wrong key before any migration writes
        let known = store.stored_key_id()?;
        if let Some((id, remembered)) = &known {
            let kp = key_file
                .map(Path::to_path_buf)
                .or_else(|| remembered.clone())
                .ok_or_else(|| {
                    open_err("this store's data key file is not known here: set INFOGAP_KEY_FILE or [privacy] key_file".into())
                })?;
            let k = load_checked(&kp, id)?;
            store.install_key(k, kp);
        }
        store.migrate(latest())?;
        if store.data_key().is_none() {
            let explicit = key_file.ok_or_else(|| {
                open_err("a new PostgreSQL store needs a data key file: set INFOGAP_KEY_FILE or [privacy] key_file (the file is created there when missing)".into())
            })?;
            store.establish_key(explicit, Some(explicit))?;
        }
        Ok(store)
    }

    /// Whether the store lives in PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.conn, Backend::Pg(_))
    }

    /// Opens the store; `key`: `Some(file)` sets up encryption (see
    /// [`SqliteStore::open_with_key`]), `None` leaves it off.
    fn open_inner(path: &Path, version: i64, key: Option<Option<&Path>>) -> Result<SqliteStore> {
        let open_err = |reason: String| StoreError::Open {
            path: crate::shown_location(path),
            reason,
        };
        if crate::postgres_url(path).is_some() {
            // never a file named after a URL (nor its directories)
            return Err(open_err(
                "a PostgreSQL URL, where a SQLite file was expected (this command works on SQLite stores)".into(),
            ));
        }
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.exists()
        {
            std::fs::create_dir_all(parent).map_err(|e| open_err(e.to_string()))?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let conn = LiteConn::open(
            path,
            true,
            &format!(
                "{WAL_SETUP}
                 PRAGMA cache_size = -65536;
                 PRAGMA temp_store = memory;
                 -- reads through a memory map: a 50 MB model blob is 12,800
                 -- overflow pages, each otherwise its own pread
                 PRAGMA mmap_size = 1073741824;
                 PRAGMA foreign_keys = OFF;"
            ),
        )?;
        let mut store = SqliteStore {
            rt,
            conn: Backend::Lite(Mutex::new(Some(conn))),
            key: std::sync::RwLock::new(None),
            key_path: None,
            key_generated: false,
        };
        if let Some(explicit) = key {
            // an encrypted store refuses a wrong key before any migration writes
            if let Some((id, remembered)) = store.stored_key_id()? {
                let kp = explicit
                    .map(Path::to_path_buf)
                    .or(remembered)
                    .unwrap_or_else(|| crate::crypto::default_key_path(path));
                let k = load_checked(&kp, &id)?;
                store.install_key(k, kp);
            }
            store.migrate(version)?;
            if store.data_key().is_none() {
                let kp = explicit
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| crate::crypto::default_key_path(path));
                store.establish_key(&kp, explicit)?;
            }
        } else {
            store.migrate(version)?;
        }
        Ok(store)
    }

    /// The connection, held until the guard is dropped.
    pub(crate) fn lock(&self) -> Result<Held<'_>> {
        self.conn.hold(&self.rt)
    }

    /// The migrations of this store's backend.
    fn migrations(&self) -> &'static [Migration] {
        match self.conn {
            Backend::Lite(_) => crate::migrate::MIGRATIONS,
            Backend::Pg(_) => crate::migrate::MIGRATIONS_PG,
        }
    }

    fn migrate(&self, up_to: i64) -> Result<()> {
        let migrations = self.migrations();
        let pending = |db: &RawDb<'_>, create: bool| -> Result<Vec<&'static Migration>> {
            if create {
                db.exec(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL)",
                )?;
            }
            let mut applied: HashMap<i64, String> = HashMap::new();
            for r in db.fetch(&query("SELECT version, checksum FROM schema_migrations"))? {
                applied.insert(get(&r, 0)?, get(&r, 1)?);
            }
            if let Some(max) = applied.keys().max()
                && *max > latest()
            {
                return Err(StoreError::TooNew {
                    found: *max,
                    supported: latest(),
                });
            }
            let mut out = Vec::new();
            for m in migrations.iter().filter(|m| m.version <= up_to) {
                match applied.get(&m.version) {
                    Some(sum) if *sum != checksum(m.sql) => {
                        return Err(StoreError::Corrupt(format!(
                            "migration {} ({}) was changed after it was applied",
                            m.version, m.name
                        )));
                    }
                    Some(_) => {}
                    None => out.push(m),
                }
            }
            Ok(out)
        };
        self.with_raw(|db| {
            // an up-to-date store is only read: opening it never waits for
            // a writer (an import holds the write lock for a whole file)
            if db.table_exists("schema_migrations")? && pending(db, false)?.is_empty() {
                return Ok(());
            }
            // several processes may open a new store at once: one migrates,
            // the others find it done
            db.immediate(|| {
                for m in pending(db, true)? {
                    db.exec_batch(m.sql)?;
                    db.execute(
                        &query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)")
                            .bind(m.version)
                            .bind(m.name)
                            .bind(checksum(m.sql))
                            .bind(now_rfc3339()),
                    )?;
                }
                Ok(())
            })
        })
    }

    /// Runs `f` on a connection through the statement API.
    pub(crate) fn with_raw<T>(&self, f: impl FnOnce(&RawDb<'_>) -> Result<T>) -> Result<T> {
        self.lock()?.raw(&self.rt, f)
    }

    fn fetch_all(&self, q: Q) -> Result<Vec<Row>> {
        self.with_raw(|db| db.fetch(&q))
    }

    /// Runs `q` for its effect: the rows it changed.
    fn execute(&self, q: Q) -> Result<u64> {
        self.with_raw(|db| db.execute(&q))
    }

    /// Runs `q` and hands each row to `f` as it is read (on SQLite, the
    /// rows are never all in memory at once).
    fn each_row(&self, q: Q, mut f: impl FnMut(&Row) -> Result<()>) -> Result<()> {
        self.with_raw(|db| {
            let mut st = db.prepare(&q.sql)?;
            for (i, v) in q.args.iter().enumerate() {
                st.bind(i as std::ffi::c_int + 1, v)?;
            }
            while st.step()? {
                f(&st.values()?)?;
            }
            Ok(())
        })
    }

    fn fetch_i64(&self, sql: &'static str) -> Result<i64> {
        let rows = self.fetch_all(query(sql))?;
        rows.first()
            .map(|r| get::<i64>(r, 0))
            .transpose()
            .map(|v| v.unwrap_or(0))
    }
}

fn attr_from_json(text: &str) -> Result<AttrValue> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("attribute value {text:?}: {e}")))
}

/// A personal value as stored: its ciphertext when it has one, else the
/// plaintext column.
fn unseal(
    key: Option<&DataKey>,
    field: Field,
    secret: Option<Vec<u8>>,
    clear: Option<String>,
) -> Result<Option<String>> {
    match (secret, key) {
        (Some(s), Some(k)) => k.open_text(field, &s).map(Some),
        (Some(_), None) => Err(StoreError::Corrupt(
            "an encrypted value, and no data key to open it".into(),
        )),
        (None, _) => Ok(clear),
    }
}

fn identity_from_row(r: &Row, key: Option<&DataKey>) -> Result<IdentityRecord> {
    Ok(IdentityRecord {
        id: get(r, 0)?,
        namespace: get(r, 1)?,
        kind: get(r, 2)?,
        value: unseal(key, Field::Identity, get(r, 7)?, get(r, 3)?)?.unwrap_or_default(),
        customer_id: get(r, 4)?,
        source_id: get(r, 5)?,
        line: get(r, 6)?,
    })
}

fn link_from_row(r: &Row) -> Result<LinkRecord> {
    Ok(LinkRecord {
        id: get(r, 0)?,
        a: get(r, 1)?,
        b: get(r, 2)?,
        source_id: get(r, 3)?,
        line: get(r, 4)?,
        rule: get(r, 5)?,
        suppressed: get::<i64>(r, 6)? != 0,
    })
}

const IDENTITY_COLS: &str = "id, namespace, kind, value, customer_id, source_id, line, secret";
const LINK_COLS: &str = "id, a, b, source_id, line, rule, suppressed";

/// A row with its text column as stored (plaintext, or `None` when sealed)
/// and its ciphertext.
type Sealed<'a, T> = (&'a T, Option<String>, Option<Vec<u8>>);

/// A model blob as stored: opened with the key when it is sealed.
pub(crate) fn open_model(key: Option<&DataKey>, sealed: bool, stored: Vec<u8>) -> Result<Vec<u8>> {
    match (sealed, key) {
        (false, _) => Ok(stored),
        (true, Some(k)) => k.open(Field::Model, &stored),
        (true, None) => Err(StoreError::Corrupt(
            "a sealed model, and no data key to open it".into(),
        )),
    }
}

/// The positions, among the inserted columns of `head`, of the columns
/// named by the `ON CONFLICT(…)` of `tail`.
fn conflict_columns(head: &str, tail: &str) -> Vec<usize> {
    let list = |s: &str| -> Vec<String> {
        s.split(',')
            .map(|c| c.trim().trim_matches('"').to_string())
            .collect()
    };
    let inserted = match (head.find('('), head.find(')')) {
        (Some(a), Some(b)) if a < b => list(&head[a + 1..b]),
        _ => return Vec::new(),
    };
    let named = match tail.find("ON CONFLICT(") {
        Some(a) => match tail[a..].find(')') {
            Some(b) => list(&tail[a + 12..a + b]),
            None => return Vec::new(),
        },
        None => return Vec::new(),
    };
    named
        .iter()
        .filter_map(|n| inserted.iter().position(|c| c == n))
        .collect()
}

/// Rows per multi-row INSERT (kept well under SQLite's 32766 bound parameters).
const CHUNK: usize = 400;

/// A write transaction on the store.
pub struct SqliteTx<'a> {
    conn: Held<'a>,
    rt: &'a Runtime,
    open: bool,
    /// The store generation this transaction writes.
    generation: i64,
    /// Per fact table, the ids of the rows this transaction inserted: from
    /// the smallest to the largest (ids can be reused after a delete, so a
    /// "largest id before" would miss them).
    written: HashMap<&'static str, (i64, i64)>,
    /// Files whose facts this transaction touched: replaced (their earlier
    /// rows deleted) or only added to, and the tables written.
    files: BTreeMap<i64, (bool, BTreeSet<&'static str>)>,
    /// Rows this transaction added per (file, table), with the source.
    added: BTreeMap<(i64, &'static str), (i64, i64)>,
    /// The data key personal values are sealed with.
    key: Option<Arc<DataKey>>,
}

/// The fact tables that arrive by file, as named in `snapshot_log`.
pub(crate) const FACT_TABLES: [&str; 4] =
    ["order_lines", "events", "feedback", "campaign_contacts"];

impl SqliteTx<'_> {
    /// Runs `f` on this transaction's connection.
    fn with_raw<T>(&mut self, f: impl FnOnce(&RawDb<'_>) -> Result<T>) -> Result<T> {
        self.conn.raw(self.rt, f)
    }

    /// Notes that `table` gets rows of the given (source, file) pairs.
    fn touch(&mut self, table: &'static str, rows: impl Iterator<Item = (i64, i64)>) {
        // a batch is almost always one file: count runs, not rows
        let mut run: Option<((i64, i64), i64)> = None;
        let flush = |tx: &mut Self, key: (i64, i64), n: i64| {
            let (source, file) = key;
            if table != "consents" {
                tx.files.entry(file).or_default().1.insert(table);
            }
            tx.added.entry((file, table)).or_insert((source, 0)).1 += n;
        };
        for key in rows {
            match &mut run {
                Some((k, n)) if *k == key => *n += 1,
                _ => {
                    if let Some((k, n)) = run.take() {
                        flush(self, k, n);
                    }
                    run = Some((key, 1));
                }
            }
        }
        if let Some((k, n)) = run {
            flush(self, k, n);
        }
    }

    fn exec(&mut self, q: Q) -> Result<u64> {
        self.with_raw(|db| db.execute(&q))
    }

    fn fetch(&mut self, q: Q) -> Result<Vec<Row>> {
        self.with_raw(|db| db.fetch(&q))
    }

    /// Multi-row insert: `head` is `INSERT … (cols) VALUES`, `tail` the
    /// conflict clause. One prepared statement serves every full chunk.
    fn insert_many<T>(
        &mut self,
        head: &str,
        cols: usize,
        tail: &str,
        rows: &[T],
        bind: impl Fn(Q, &T) -> Q,
    ) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        // fact rows take consecutive new ids within one statement (the
        // writer holds the lock): their range goes to the snapshot log
        let fact = FACT_TABLES
            .iter()
            .copied()
            .find(|t| head.starts_with(&format!("INSERT INTO {t} (")));
        let (written, range) = self.with_raw(|db| {
            let one = format!("({})", vec!["?"; cols].join(","));
            let sql = |n: usize| {
                let returning = if fact.is_some() && db.is_pg() {
                    " RETURNING id"
                } else {
                    ""
                };
                format!(
                    "{head} {} {tail}{returning}",
                    vec![one.as_str(); n].join(",")
                )
            };
            let mut full: Option<Stmt<'_>> = None;
            let mut written = 0u64;
            let mut range: Option<(i64, i64)> = None;
            // PostgreSQL refuses an upsert that changes one row twice, which
            // SQLite does in order: such a chunk runs as several statements,
            // split before each repeated key
            let keys = if db.is_pg() && tail.contains("DO UPDATE") {
                conflict_columns(head, tail)
            } else {
                Vec::new()
            };
            let mut parts: Vec<(Vec<crate::sql::Val>, usize)> = Vec::new();
            for chunk in rows.chunks(CHUNK) {
                let q = chunk.iter().fold(query(""), &bind);
                if keys.is_empty() {
                    parts.push((q.args, chunk.len()));
                    continue;
                }
                let mut seen = HashSet::new();
                let mut part: (Vec<crate::sql::Val>, usize) = (Vec::new(), 0);
                for row in q.args.chunks(cols) {
                    let key = format!("{:?}", keys.iter().map(|&k| &row[k]).collect::<Vec<_>>());
                    if !seen.insert(key.clone()) {
                        parts.push(std::mem::take(&mut part));
                        seen.clear();
                        seen.insert(key);
                    }
                    part.0.extend_from_slice(row);
                    part.1 += 1;
                }
                parts.push(part);
            }
            for (args, nrows) in parts {
                let mut part;
                let st = if nrows == CHUNK {
                    match &mut full {
                        Some(st) => {
                            st.reset()?;
                            st
                        }
                        None => full.insert(db.prepare(&sql(CHUNK))?),
                    }
                } else {
                    part = db.prepare(&sql(nrows))?;
                    &mut part
                };
                for (i, v) in args.iter().enumerate() {
                    st.bind(i as std::ffi::c_int + 1, v)?;
                }
                let mut ids: Option<(i64, i64)> = None;
                while st.step()? {
                    let id = st.i64(0)?;
                    ids = Some(ids.map_or((id, id), |(lo, hi)| (lo.min(id), hi.max(id))));
                }
                let n = st.changed();
                written += n;
                if n > 0 && fact.is_some() {
                    let (first, last) = match (ids, &*st) {
                        (Some(r), _) => r,
                        (None, Stmt::Lite(lite)) => {
                            let last = lite.last_insert_rowid();
                            (last - n as i64 + 1, last)
                        }
                        (None, Stmt::Pg(_)) => {
                            return Err(StoreError::Database("an insert returned no ids".into()));
                        }
                    };
                    range =
                        Some(range.map_or((first, last), |(lo, hi)| (lo.min(first), hi.max(last))));
                }
            }
            Ok((written, range))
        })?;
        if let (Some(table), Some((first, last))) = (fact, range) {
            let r = self.written.entry(table).or_insert((first, last));
            *r = (r.0.min(first), r.1.max(last));
        }
        Ok(written)
    }
}

impl Drop for SqliteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.with_raw(|db| db.exec("ROLLBACK"));
        }
    }
}

impl StoreTx for SqliteTx<'_> {
    fn upsert_source(&mut self, name: &str, kind: &str, namespace: &str) -> Result<i64> {
        self.exec(
            query(
                "INSERT INTO sources (name, kind, namespace) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, namespace = excluded.namespace",
            )
            .bind(name.to_string())
            .bind(kind.to_string())
            .bind(namespace.to_string()),
        )?;
        let rows =
            self.fetch(query("SELECT id FROM sources WHERE name = ?").bind(name.to_string()))?;
        rows.first()
            .map(|r| get(r, 0))
            .transpose()?
            .ok_or_else(|| StoreError::Database("source vanished after insert".into()))
    }

    fn upsert_file(&mut self, source_id: i64, path: &str) -> Result<i64> {
        self.exec(
            query("INSERT INTO files (source_id, path) VALUES (?, ?) ON CONFLICT DO NOTHING")
                .bind(source_id)
                .bind(path.to_string()),
        )?;
        let rows = self.fetch(
            query("SELECT id FROM files WHERE source_id = ? AND path = ?")
                .bind(source_id)
                .bind(path.to_string()),
        )?;
        rows.first()
            .map(|r| get(r, 0))
            .transpose()?
            .ok_or_else(|| StoreError::Database("file vanished after insert".into()))
    }

    fn delete_file_facts(&mut self, file_id: i64) -> Result<u64> {
        let entry = self.files.entry(file_id).or_default();
        entry.0 = true;
        entry.1.extend(FACT_TABLES);
        self.added.retain(|(f, _), _| *f != file_id);
        self.exec(query("DELETE FROM file_rows WHERE file_id = ?").bind(file_id))?;
        let mut n = 0;
        for table in [
            "order_lines",
            "events",
            "feedback",
            "campaign_contacts",
            "consents",
        ] {
            n +=
                self.exec(query(format!("DELETE FROM {table} WHERE file_id = ?")).bind(file_id))?;
        }
        self.exec(
            query("INSERT INTO snapshot_tombstones (gen, tbl, row_id) SELECT ?, 'orders', id FROM orders WHERE file_id = ? AND id NOT IN (SELECT order_id FROM order_lines)")
                .bind(self.generation)
                .bind(file_id),
        )?;
        n += self.exec(
            query("DELETE FROM orders WHERE file_id = ? AND id NOT IN (SELECT order_id FROM order_lines)").bind(file_id),
        )?;
        self.exec(
            query("UPDATE orders SET amount = NULL, discount = NULL, gen = ? WHERE file_id = ?")
                .bind(self.generation)
                .bind(file_id),
        )?;
        Ok(n)
    }

    fn last_import(&mut self, source_id: i64, path: &str) -> Result<Option<(String, String)>> {
        let rows = self.fetch(
            query(
                "SELECT file_hash, config_hash FROM import_runs WHERE source_id = ? AND file = ? AND status IN ('ok', 'unchanged') ORDER BY id DESC LIMIT 1",
            )
            .bind(source_id)
            .bind(path.to_string()),
        )?;
        rows.first()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .transpose()
    }

    fn max_ids(&mut self) -> Result<MaxIds> {
        let rows = self.fetch(query(
            "SELECT (SELECT COALESCE(MAX(id),0) FROM customers), (SELECT COALESCE(MAX(id),0) FROM identities), (SELECT COALESCE(MAX(id),0) FROM products), (SELECT COALESCE(MAX(id),0) FROM orders), (SELECT COALESCE(MAX(id),0) FROM campaigns)",
        ))?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Database("no row".into()))?;
        Ok(MaxIds {
            customer: get(r, 0)?,
            identity: get(r, 1)?,
            product: get(r, 2)?,
            order: get(r, 3)?,
            campaign: get(r, 4)?,
        })
    }

    fn key_maps(&mut self) -> Result<KeyMaps> {
        // bulk reads through the C API: every identity, product and campaign
        // key of the store, read once per imported file
        let key = self.key.clone();
        self.with_raw(|db| {
            let mut maps = KeyMaps::default();
            let mut st = db.prepare(
                "SELECT namespace, kind, value, id, customer_id, secret FROM identities",
            )?;
            while st.step()? {
                let value = unseal(
                    key.as_deref(),
                    Field::Identity,
                    st.opt_blob(5)?,
                    st.opt_text(2)?,
                )?
                .unwrap_or_default();
                maps.identities
                    .insert((st.text(0)?, st.text(1)?, value), (st.i64(3)?, st.i64(4)?));
            }
            let mut st = db.prepare("SELECT key, id FROM products")?;
            while st.step()? {
                maps.products.insert(st.text(0)?, st.i64(1)?);
            }
            let mut st = db.prepare("SELECT key, id FROM campaigns")?;
            while st.step()? {
                maps.campaigns.insert(st.text(0)?, st.i64(1)?);
            }
            Ok(maps)
        })
    }

    fn order_keys(&mut self, namespace: &str) -> Result<HashMap<String, i64>> {
        // every order key of the namespace: 15M on a store 100 times The
        // Complete Journey, where sqlx's rows took 45 s per imported file
        self.with_raw(|db| {
            let mut m = HashMap::new();
            let mut st = db.prepare("SELECT key, id FROM orders WHERE namespace = ?1")?;
            st.bind_text(1, namespace)?;
            while st.step()? {
                m.insert(st.text(0)?, st.i64(1)?);
            }
            Ok(m)
        })
    }

    fn write(&mut self, b: &WriteBatch) -> Result<u64> {
        let mut facts = 0;
        let g = self.generation;
        self.touch(
            "order_lines",
            b.lines.iter().map(|r| (r.source_id, r.file_id)),
        );
        self.touch("events", b.events.iter().map(|r| (r.source_id, r.file_id)));
        self.touch(
            "feedback",
            b.feedback.iter().map(|r| (r.source_id, r.file_id)),
        );
        self.touch(
            "campaign_contacts",
            b.contacts.iter().map(|r| (r.source_id, r.file_id)),
        );
        self.touch(
            "consents",
            b.consents.iter().map(|r| (r.source_id, r.file_id)),
        );
        // personal values sealed; identities keep a blind index for lookups
        let key = self.key.clone();
        let sealed_ids: Vec<(&NewIdentity, String, Option<Vec<u8>>)> = b
            .identities
            .iter()
            .map(|r| match &key {
                Some(k) => (
                    r,
                    k.blind(&r.value),
                    Some(k.seal(Field::Identity, r.value.as_bytes())),
                ),
                None => (r, r.value.clone(), None),
            })
            .collect();
        self.insert_many(
            "INSERT INTO identities (id, namespace, kind, value, secret, customer_id, source_id, line, gen) VALUES",
            9,
            "ON CONFLICT DO NOTHING",
            &sealed_ids,
            |q, (r, value, secret)| {
                q.bind(r.id)
                    .bind(r.namespace.clone())
                    .bind(r.kind.clone())
                    .bind(value.clone())
                    .bind(secret.clone())
                    .bind(r.customer_id)
                    .bind(r.source_id)
                    .bind(r.line)
                    .bind(g)
            },
        )?;
        if !b.identities.is_empty() {
            // every provisional customer id gets its row; resolution reassigns later
            let mut cust: Vec<i64> = b.identities.iter().map(|i| i.customer_id).collect();
            cust.sort_unstable();
            cust.dedup();
            let now = now_rfc3339();
            self.insert_many(
                "INSERT INTO customers (id, created_at) VALUES",
                2,
                "ON CONFLICT DO NOTHING",
                &cust,
                |q, c| q.bind(*c).bind(now.clone()),
            )?;
        }
        self.insert_many(
            "INSERT INTO identity_links (a, b, source_id, line, rule) VALUES",
            5,
            "ON CONFLICT DO NOTHING",
            &b.links,
            |q, r| {
                q.bind(r.a)
                    .bind(r.b)
                    .bind(r.source_id)
                    .bind(r.line)
                    .bind(r.rule)
            },
        )?;
        let count = |tx: &mut Self, table: &'static str| -> Result<i64> {
            let r = tx.fetch(query(format!("SELECT COUNT(*) FROM {table}")))?;
            r.first()
                .map(|r| get(r, 0))
                .transpose()
                .map(|v| v.unwrap_or(0))
        };
        let products_before = if b.products.is_empty() {
            0
        } else {
            count(self, "products")?
        };
        let campaigns_before = if b.campaigns.is_empty() {
            0
        } else {
            count(self, "campaigns")?
        };
        self.insert_many(
            "INSERT INTO products (id, key, name, category, price, attrs, gen) VALUES",
            7,
            "ON CONFLICT(id) DO UPDATE SET name = COALESCE(excluded.name, products.name), category = COALESCE(excluded.category, products.category), price = COALESCE(excluded.price, products.price), attrs = COALESCE(excluded.attrs, products.attrs), gen = excluded.gen WHERE COALESCE(excluded.name, products.name) IS DISTINCT FROM products.name OR COALESCE(excluded.category, products.category) IS DISTINCT FROM products.category OR COALESCE(excluded.price, products.price) IS DISTINCT FROM products.price OR COALESCE(excluded.attrs, products.attrs) IS DISTINCT FROM products.attrs",
            &b.products,
            |q, r| {
                q.bind(r.id)
                    .bind(r.key.clone())
                    .bind(r.name.clone())
                    .bind(r.category.clone())
                    .bind(r.price)
                    .bind(r.attrs.clone())
                    .bind(g)
            },
        )?;
        self.insert_many(
            "INSERT INTO campaigns (id, key, name, kind, start, \"end\", gen) VALUES",
            7,
            "ON CONFLICT(id) DO UPDATE SET name = COALESCE(excluded.name, campaigns.name), kind = COALESCE(excluded.kind, campaigns.kind), start = COALESCE(excluded.start, campaigns.start), \"end\" = COALESCE(excluded.\"end\", campaigns.\"end\"), gen = excluded.gen WHERE COALESCE(excluded.name, campaigns.name) IS DISTINCT FROM campaigns.name OR COALESCE(excluded.kind, campaigns.kind) IS DISTINCT FROM campaigns.kind OR COALESCE(excluded.start, campaigns.start) IS DISTINCT FROM campaigns.start OR COALESCE(excluded.\"end\", campaigns.\"end\") IS DISTINCT FROM campaigns.\"end\"",
            &b.campaigns,
            |q, r| q.bind(r.id).bind(r.key.clone()).bind(r.name.clone()).bind(r.kind.clone()).bind(r.start).bind(r.end).bind(g),
        )?;
        if !b.products.is_empty() {
            facts += (count(self, "products")? - products_before).max(0) as u64;
        }
        if !b.campaigns.is_empty() {
            facts += (count(self, "campaigns")? - campaigns_before).max(0) as u64;
        }
        // New orders count as written records; updates of existing orders do not.
        let before = if b.orders.is_empty() {
            0
        } else {
            count(self, "orders")?
        };
        self.insert_many(
            "INSERT INTO orders (id, namespace, key, identity_id, time, amount, discount, file_id, gen) VALUES",
            9,
            "ON CONFLICT(id) DO UPDATE SET time = COALESCE(orders.time, excluded.time), amount = COALESCE(excluded.amount, orders.amount), discount = COALESCE(excluded.discount, orders.discount), gen = excluded.gen WHERE COALESCE(orders.time, excluded.time) IS DISTINCT FROM orders.time OR COALESCE(excluded.amount, orders.amount) IS DISTINCT FROM orders.amount OR COALESCE(excluded.discount, orders.discount) IS DISTINCT FROM orders.discount",
            &b.orders,
            |q, r| {
                q.bind(r.id)
                    .bind(r.namespace.clone())
                    .bind(r.key.clone())
                    .bind(r.identity_id)
                    .bind(r.time)
                    .bind(r.amount)
                    .bind(r.discount)
                    .bind(r.file_id)
                    .bind(g)
            },
        )?;
        if !b.orders.is_empty() {
            facts += (count(self, "orders")? - before).max(0) as u64;
        }
        facts += self.insert_many(
            "INSERT INTO order_lines (source_id, file_id, order_id, identity_id, product_id, quantity, amount, discount, time) VALUES",
            9,
            "ON CONFLICT DO NOTHING",
            &b.lines,
            |q, r| {
                q.bind(r.source_id)
                    .bind(r.file_id)
                    .bind(r.order_id)
                    .bind(r.identity_id)
                    .bind(r.product_id)
                    .bind(r.quantity)
                    .bind(r.amount)
                    .bind(r.discount)
                    .bind(r.time)
            },
        )?;
        facts += self.insert_many(
            "INSERT INTO events (source_id, file_id, identity_id, kind, product_id, value, channel, time) VALUES",
            8,
            "ON CONFLICT DO NOTHING",
            &b.events,
            |q, r| {
                q.bind(r.source_id)
                    .bind(r.file_id)
                    .bind(r.identity_id)
                    .bind(r.kind.clone())
                    .bind(r.product_id)
                    .bind(r.value)
                    .bind(r.channel.clone())
                    .bind(r.time)
            },
        )?;
        let sealed_fb: Vec<Sealed<'_, FeedbackRow>> = b
            .feedback
            .iter()
            .map(|r| match (&key, &r.text) {
                (Some(k), Some(t)) => (r, None, Some(k.seal(Field::FeedbackText, t.as_bytes()))),
                _ => (r, r.text.clone(), None),
            })
            .collect();
        facts += self.insert_many(
            "INSERT INTO feedback (source_id, file_id, identity_id, kind, score, text, secret, channel, time) VALUES",
            9,
            "ON CONFLICT DO NOTHING",
            &sealed_fb,
            |q, (r, text, secret)| {
                q.bind(r.source_id)
                    .bind(r.file_id)
                    .bind(r.identity_id)
                    .bind(r.kind.clone())
                    .bind(r.score)
                    .bind(text.clone())
                    .bind(secret.clone())
                    .bind(r.channel.clone())
                    .bind(r.time)
            },
        )?;
        facts += self.insert_many(
            "INSERT INTO campaign_contacts (source_id, file_id, identity_id, campaign_id, kind, time) VALUES",
            6,
            "ON CONFLICT DO NOTHING",
            &b.contacts,
            |q, r| q.bind(r.source_id).bind(r.file_id).bind(r.identity_id).bind(r.campaign_id).bind(r.kind).bind(r.time),
        )?;
        facts += self.insert_many(
            "INSERT INTO consents (source_id, file_id, identity_id, purpose, granted, time) VALUES",
            6,
            "ON CONFLICT DO NOTHING",
            &b.consents,
            |q, r| {
                q.bind(r.source_id)
                    .bind(r.file_id)
                    .bind(r.identity_id)
                    .bind(r.purpose.clone())
                    .bind(i64::from(r.granted))
                    .bind(r.time)
            },
        )?;
        facts += self.insert_many(
            "INSERT INTO campaign_products (campaign_id, product_id, coupon, source_id) VALUES",
            4,
            "ON CONFLICT DO NOTHING",
            &b.coupons,
            |q, r| {
                q.bind(r.campaign_id)
                    .bind(r.product_id)
                    .bind(r.coupon.clone())
                    .bind(r.source_id)
            },
        )?;
        let mut attr_rows = Vec::with_capacity(b.attributes.len());
        for a in &b.attributes {
            let v =
                serde_json::to_string(&a.value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            attr_rows.push(match &key {
                Some(k) => {
                    let digest = k.row_digest(a.identity_id, &a.name, &v);
                    (
                        a,
                        String::new(),
                        Some(k.seal(Field::Attribute, v.as_bytes())),
                        Some(digest),
                    )
                }
                None => (a, v, None, None),
            });
        }
        // an unchanged value (same digest) is not rewritten: its generation stays
        facts += self.insert_many(
            "INSERT INTO attributes (identity_id, name, value, secret, digest, source_id, line, gen) VALUES",
            8,
            "ON CONFLICT(identity_id, name, source_id) DO UPDATE SET value = excluded.value, secret = excluded.secret, digest = excluded.digest, line = excluded.line, gen = excluded.gen WHERE attributes.value <> excluded.value OR attributes.digest IS DISTINCT FROM excluded.digest",
            &attr_rows,
            |q, (a, v, secret, digest)| q.bind(a.identity_id).bind(a.name.clone()).bind(v.clone()).bind(secret.clone()).bind(digest.clone()).bind(a.source_id).bind(a.line).bind(g),
        )?;
        Ok(facts)
    }

    fn identity_graph(&mut self) -> Result<(Vec<IdentityRecord>, Vec<LinkRecord>)> {
        let key = self.key.clone();
        let ids = self
            .fetch(query(format!(
                "SELECT {IDENTITY_COLS} FROM identities ORDER BY id"
            )))?
            .iter()
            .map(|r| identity_from_row(r, key.as_deref()))
            .collect::<Result<Vec<_>>>()?;
        let links = self
            .fetch(query(format!(
                "SELECT {LINK_COLS} FROM identity_links ORDER BY id"
            )))?
            .iter()
            .map(link_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok((ids, links))
    }

    fn assign_customers(
        &mut self,
        changes: &[(i64, i64)],
        new_customers: &[i64],
        shared: &[i64],
    ) -> Result<()> {
        let g = self.generation;
        self.exec(query("UPDATE identities SET shared = 0, gen = ? WHERE shared <> 0").bind(g))?;
        for id in shared {
            self.exec(
                query("UPDATE identities SET shared = 1, gen = ? WHERE id = ?")
                    .bind(g)
                    .bind(*id),
            )?;
        }
        let now = now_rfc3339();
        self.insert_many(
            "INSERT INTO customers (id, created_at) VALUES",
            2,
            "ON CONFLICT DO NOTHING",
            new_customers,
            |q, c| q.bind(*c).bind(now.clone()),
        )?;
        for (identity, customer) in changes {
            self.exec(
                query("UPDATE identities SET customer_id = ?, gen = ? WHERE id = ?")
                    .bind(*customer)
                    .bind(g)
                    .bind(*identity),
            )?;
        }
        // customers left without identities are gone (merged away)
        self.exec(query(
            "DELETE FROM customers WHERE id NOT IN (SELECT customer_id FROM identities)",
        ))?;
        Ok(())
    }

    fn set_links_suppressed(&mut self, link_ids: &[i64], suppressed: bool) -> Result<()> {
        for id in link_ids {
            self.exec(
                query("UPDATE identity_links SET suppressed = ? WHERE id = ?")
                    .bind(i64::from(suppressed))
                    .bind(*id),
            )?;
        }
        Ok(())
    }

    fn log_merge(&mut self, e: &MergeLogEntry) -> Result<()> {
        self.exec(
            query("INSERT INTO merge_log (at, action, customer_id, other_id, detail) VALUES (?, ?, ?, ?, ?)")
                .bind(e.at.clone())
                .bind(e.action.clone())
                .bind(e.customer_id)
                .bind(e.other_id)
                .bind(e.detail.clone()),
        )?;
        Ok(())
    }

    fn record_import(&mut self, r: &ImportRun) -> Result<()> {
        self.exec(
            query(
                "INSERT INTO import_runs (source_id, file, file_hash, config_hash, rows_read, rows_written, rows_rejected, status, started_at, finished_at, seconds) VALUES ((SELECT id FROM sources WHERE name = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(r.source.clone())
            .bind(r.file.clone())
            .bind(r.file_hash.clone())
            .bind(r.config_hash.clone())
            .bind(r.rows_read)
            .bind(r.rows_written)
            .bind(r.rows_rejected)
            .bind(r.status.clone())
            .bind(r.started_at.clone())
            .bind(r.finished_at.clone())
            .bind(r.seconds),
        )?;
        Ok(())
    }

    fn set_setting(&mut self, key: &str, value: &str) -> Result<()> {
        self.exec(
            query("INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                .bind(key.to_string())
                .bind(value.to_string()),
        )?;
        Ok(())
    }

    fn intake_done(&mut self, done: &[IntakeDone]) -> Result<()> {
        let at = chrono::Utc::now().timestamp();
        self.with_raw(|db| {
            let mut st = db.prepare(
                "UPDATE intake SET state = ?1, note = ?2, done_at = ?3, body = NULL, secret = NULL
                 WHERE seq = ?4 AND state = 'pending'",
            )?;
            for d in done {
                st.bind_text(1, d.state)?;
                st.bind_opt_text(2, d.note.as_deref())?;
                st.bind_i64(3, at)?;
                st.bind_i64(4, d.seq)?;
                st.step()?;
                st.reset()?;
            }
            Ok(())
        })
    }

    fn intake_still_pending(&mut self, seqs: &[i64]) -> Result<usize> {
        self.with_raw(|db| {
            let mut st = db.prepare("SELECT state = 'pending' FROM intake WHERE seq = ?1")?;
            let mut n = 0;
            for &seq in seqs {
                st.bind_i64(1, seq)?;
                if st.step()? && st.i64(0)? == 1 {
                    n += 1;
                }
                st.reset()?;
            }
            Ok(n)
        })
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        // rows per file and table, for per-source counts
        for ((file, table), (source, n)) in std::mem::take(&mut self.added) {
            self.exec(
                query("INSERT INTO file_rows (source_id, file_id, tbl, rows) VALUES (?, ?, ?, ?) ON CONFLICT(file_id, tbl) DO UPDATE SET rows = file_rows.rows + excluded.rows")
                    .bind(source)
                    .bind(file)
                    .bind(table)
                    .bind(n),
            )?;
        }
        // the snapshot log: per touched file and table, the id range written
        let files = std::mem::take(&mut self.files);
        for (file, (replace, tables)) in files {
            for table in tables {
                let (lo, hi) = match self.written.get(table) {
                    Some((first, last)) => (first - 1, *last),
                    None => (0, 0),
                };
                let g = self.generation;
                self.exec(
                    query("INSERT INTO snapshot_log (gen, file_id, tbl, replace, lo, hi) VALUES (?, ?, ?, ?, ?, ?)")
                        .bind(g)
                        .bind(file)
                        .bind(table)
                        .bind(i64::from(replace))
                        .bind(lo)
                        .bind(hi),
                )?;
            }
        }
        self.with_raw(|db| db.exec("COMMIT"))?;
        self.open = false;
        Ok(())
    }
}

impl Store for SqliteStore {
    fn begin(&self) -> Result<Box<dyn StoreTx + '_>> {
        let mut conn = self.lock()?;
        conn.raw(&self.rt, |db| db.exec("BEGIN IMMEDIATE"))?;
        let mut tx = SqliteTx {
            conn,
            rt: &self.rt,
            open: true,
            generation: 0,
            written: HashMap::new(),
            added: BTreeMap::new(),
            files: BTreeMap::new(),
            key: self.data_key(),
        };
        // every write transaction takes the next generation (rolled back with it)
        let rows = tx.fetch(query(
            "UPDATE store_meta SET generation = generation + 1 WHERE id = 1 RETURNING generation",
        ))?;
        tx.generation = rows
            .first()
            .map(|r| get(r, 0))
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("store_meta has no row".into()))?;
        Ok(Box::new(tx))
    }

    fn stats(&self, revenue: bool) -> Result<Stats> {
        let rows = self.fetch_all(query(
            "SELECT (SELECT COUNT(DISTINCT customer_id) FROM identities WHERE shared = 0), (SELECT COUNT(*) FROM identities), (SELECT COUNT(*) FROM orders), (SELECT COUNT(*) FROM order_lines), (SELECT COUNT(*) FROM products), (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM feedback), (SELECT COUNT(*) FROM campaigns), (SELECT COUNT(*) FROM campaign_contacts), (SELECT COUNT(*) FROM consents), (SELECT COUNT(*) FROM identities WHERE shared <> 0)",
        ))?;
        let r = rows
            .first()
            .ok_or_else(|| StoreError::Database("no row".into()))?;
        let revenue: f64 = if revenue {
            let revenue_rows = self.fetch_all(query(
                "SELECT COALESCE((SELECT SUM(amount) FROM order_lines WHERE order_id NOT IN (SELECT id FROM orders WHERE amount IS NOT NULL)), 0.0) + COALESCE((SELECT SUM(amount) FROM orders WHERE amount IS NOT NULL), 0.0)",
            ))?;
            revenue_rows
                .first()
                .map(|r| get(r, 0))
                .transpose()?
                .unwrap_or(0.0)
        } else {
            f64::NAN
        };
        let mut sources = Vec::new();
        for s in self.fetch_all(query(
            "SELECT s.name, s.kind, s.namespace,
                (SELECT COALESCE(SUM(rows), 0) FROM file_rows WHERE source_id = s.id),
                r.file, r.finished_at, r.status, (SELECT COUNT(*) FROM identities WHERE source_id = s.id)
             FROM sources s LEFT JOIN import_runs r ON r.id = (SELECT MAX(id) FROM import_runs WHERE source_id = s.id)
             ORDER BY s.id",
        ))? {
            let facts: i64 = get(&s, 3)?;
            let idents: i64 = get(&s, 7)?;
            let kind: String = get(&s, 1)?;
            // sources without fact rows (customers, products, campaigns, orders) count what they brought
            let rows = if facts > 0 { facts } else { idents };
            sources.push(SourceStats {
                name: get(&s, 0)?,
                kind,
                namespace: get(&s, 2)?,
                rows,
                last_file: get(&s, 4)?,
                last_import: get(&s, 5)?,
                last_status: get(&s, 6)?,
            });
        }
        Ok(Stats {
            customers: get(r, 0)?,
            identities: get(r, 1)?,
            orders: get(r, 2)?,
            order_lines: get(r, 3)?,
            products: get(r, 4)?,
            events: get(r, 5)?,
            feedback: get(r, 6)?,
            campaigns: get(r, 7)?,
            campaign_contacts: get(r, 8)?,
            consents: get(r, 9)?,
            shared_keys: get(r, 10)?,
            revenue: (revenue * 100.0).round() / 100.0,
            sources,
        })
    }

    fn dataset(&self) -> Result<Dataset> {
        let mut snap = RawSnapshot::default();
        snap.apply(self.snapshot_delta(0)?)?;
        snap.dataset()
    }

    fn generation(&self) -> Result<Generation> {
        self.with_raw(read_generation)
    }

    fn snapshot_delta(&self, since: i64) -> Result<SnapshotDelta> {
        let key = self.data_key();
        self.with_raw(|db| db.read(|| read_delta(db, since, key.as_deref())))
    }

    fn sources(&self) -> Result<Vec<SourceRecord>> {
        self.fetch_all(query(
            "SELECT id, name, kind, namespace FROM sources ORDER BY id",
        ))?
        .iter()
        .map(|r| {
            Ok(SourceRecord {
                id: get(r, 0)?,
                name: get(r, 1)?,
                kind: get(r, 2)?,
                namespace: get(r, 3)?,
            })
        })
        .collect()
    }

    fn identities_by_value(&self, value: &str) -> Result<Vec<IdentityRecord>> {
        let key = self.data_key();
        // looked up by blind index: the value itself is never in the file
        let value = match &key {
            Some(k) => k.blind(value),
            None => value.to_string(),
        };
        self.fetch_all(
            query(format!(
                "SELECT {IDENTITY_COLS} FROM identities WHERE value = ? ORDER BY id"
            ))
            .bind(value.to_string()),
        )?
        .iter()
        .map(|r| identity_from_row(r, key.as_deref()))
        .collect()
    }

    fn identity(&self, id: i64) -> Result<Option<IdentityRecord>> {
        let key = self.data_key();
        self.fetch_all(
            query(format!(
                "SELECT {IDENTITY_COLS} FROM identities WHERE id = ?"
            ))
            .bind(id),
        )?
        .first()
        .map(|r| identity_from_row(r, key.as_deref()))
        .transpose()
    }

    fn customer_identities(&self, customer_id: i64) -> Result<Vec<IdentityRecord>> {
        let key = self.data_key();
        self.fetch_all(
            query(format!(
                "SELECT {IDENTITY_COLS} FROM identities WHERE customer_id = ? ORDER BY id"
            ))
            .bind(customer_id),
        )?
        .iter()
        .map(|r| identity_from_row(r, key.as_deref()))
        .collect()
    }

    fn links_of(&self, identity_ids: &[i64]) -> Result<Vec<LinkRecord>> {
        let mut out = Vec::new();
        for chunk in identity_ids.chunks(400) {
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!(
                "SELECT {LINK_COLS} FROM identity_links WHERE a IN ({marks}) OR b IN ({marks}) ORDER BY id"
            );
            let mut q = query(sql);
            for id in chunk.iter().chain(chunk.iter()) {
                q = q.bind(*id);
            }
            for r in self.fetch_all(q)? {
                let l = link_from_row(&r)?;
                if !out.iter().any(|o: &LinkRecord| o.id == l.id) {
                    out.push(l);
                }
            }
        }
        Ok(out)
    }

    fn customer_facts(&self, c: i64, sources: Option<&[i64]>) -> Result<CustomerFacts> {
        let key = self.data_key();
        // a department's view: only facts its sources brought (ids are
        // integers formatted here, never text from a request)
        let (src, osrc) = match sources {
            None => (String::new(), String::new()),
            Some(ids) => {
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                (
                    format!(" AND source_id IN ({list})"),
                    format!(
                        " AND (o.file_id IN (SELECT id FROM files WHERE source_id IN ({list})) OR (o.file_id IS NULL AND o.identity_id IN (SELECT id FROM identities WHERE source_id IN ({list}))))"
                    ),
                )
            }
        };
        let o = self.fetch_all(
            query(format!(
                "WITH mine AS (SELECT id FROM identities WHERE customer_id = ?1),
                      ords AS (SELECT o.id, COALESCE(o.time, (SELECT MIN(time) FROM order_lines WHERE order_id = o.id)) AS t,
                                      COALESCE(o.amount, (SELECT SUM(amount) FROM order_lines WHERE order_id = o.id), 0.0) AS amt,
                                      COALESCE(o.discount, (SELECT SUM(discount) FROM order_lines WHERE order_id = o.id), 0.0) AS disc
                               FROM orders o WHERE o.identity_id IN (SELECT id FROM mine){osrc})
                 SELECT COUNT(*), COALESCE(SUM(amt), 0.0), MIN(t), MAX(t), COALESCE(SUM(disc), 0.0),
                        (SELECT COUNT(*) FROM order_lines WHERE order_id IN (SELECT id FROM ords){src})
                 FROM ords"
            ))
            .bind(c),
        )?;
        let orow = o
            .first()
            .ok_or_else(|| StoreError::Database("no row".into()))?;
        let orders = OrderSummary {
            count: get(orow, 0)?,
            revenue: (get::<f64>(orow, 1)? * 100.0).round() / 100.0,
            first: get(orow, 2)?,
            last: get(orow, 3)?,
            discount: (get::<f64>(orow, 4)? * 100.0).round() / 100.0,
            lines: get(orow, 5)?,
        };
        let events = self
            .fetch_all(
                query(
                    format!("SELECT kind, COUNT(*) FROM events WHERE identity_id IN (SELECT id FROM identities WHERE customer_id = ?){src} GROUP BY kind ORDER BY COUNT(*) DESC, kind"),
                )
                .bind(c),
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get(r, 1)?)))
            .collect::<Result<Vec<(String, i64)>>>()?;
        let feedback = self
            .fetch_all(
                query(
                    format!("WITH f AS (SELECT * FROM feedback WHERE identity_id IN (SELECT id FROM identities WHERE customer_id = ?){src})
                     SELECT kind, COUNT(*), AVG(score),
                        (SELECT score FROM f f2 WHERE f2.kind = f.kind ORDER BY time DESC NULLS LAST, id DESC LIMIT 1),
                        (SELECT text FROM f f2 WHERE f2.kind = f.kind AND (text IS NOT NULL OR secret IS NOT NULL) ORDER BY time DESC NULLS LAST, id DESC LIMIT 1),
                        (SELECT secret FROM f f2 WHERE f2.kind = f.kind AND (text IS NOT NULL OR secret IS NOT NULL) ORDER BY time DESC NULLS LAST, id DESC LIMIT 1)
                     FROM f GROUP BY kind ORDER BY kind"),
                )
                .bind(c),
            )?
            .iter()
            .map(|r| {
                Ok(FeedbackSummary {
                    kind: get(r, 0)?,
                    count: get(r, 1)?,
                    mean_score: get(r, 2)?,
                    last_score: get(r, 3)?,
                    last_text: unseal(key.as_deref(), Field::FeedbackText, get(r, 5)?, get(r, 4)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let campaigns = self
            .fetch_all(
                query(
                    format!("SELECT k.key, k.name, SUM(CASE WHEN c.kind = 'exposure' THEN 1 ELSE 0 END), SUM(CASE WHEN c.kind = 'redemption' THEN 1 ELSE 0 END) FROM campaign_contacts c JOIN campaigns k ON k.id = c.campaign_id
                     WHERE c.identity_id IN (SELECT id FROM identities WHERE customer_id = ?){csrc} GROUP BY k.id ORDER BY k.key", csrc = src.replace("source_id", "c.source_id")),
                )
                .bind(c),
            )?
            .iter()
            .map(|r| Ok(CampaignSummary { campaign: get(r, 0)?, name: get(r, 1)?, received: get(r, 2)?, redeemed: get(r, 3)? }))
            .collect::<Result<Vec<_>>>()?;
        let attributes = self
            .fetch_all(
                query(
                    format!("SELECT a.name, a.value, s.name, a.secret FROM attributes a JOIN sources s ON s.id = a.source_id
                     WHERE a.identity_id IN (SELECT id FROM identities WHERE customer_id = ?){asrc} ORDER BY a.name, s.name", asrc = src.replace("source_id", "a.source_id")),
                )
                .bind(c),
            )?
            .iter()
            .map(|r| {
                let v = unseal(key.as_deref(), Field::Attribute, get(r, 3)?, get(r, 1)?)?
                    .unwrap_or_default();
                Ok((get(r, 0)?, attr_from_json(&v)?, get(r, 2)?))
            })
            .collect::<Result<Vec<_>>>()?;
        let consents = self
            .fetch_all(
                query(
                    format!("SELECT purpose, granted, time FROM consents c WHERE identity_id IN (SELECT id FROM identities WHERE customer_id = ?1){csrc}
                     AND id = (SELECT id FROM consents c2 WHERE c2.purpose = c.purpose AND c2.identity_id IN (SELECT id FROM identities WHERE customer_id = ?1){c2src} ORDER BY time DESC NULLS LAST, id DESC LIMIT 1)
                     ORDER BY purpose", csrc = src.replace("source_id", "c.source_id"), c2src = src.replace("source_id", "c2.source_id")),
                )
                .bind(c),
            )?
            .iter()
            .map(|r| Ok((get(r, 0)?, get::<i64>(r, 1)? != 0, get(r, 2)?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(CustomerFacts {
            orders,
            events,
            feedback,
            campaigns,
            attributes,
            consents,
        })
    }

    fn merge_log(&self, customer_id: i64) -> Result<Vec<MergeLogEntry>> {
        self.fetch_all(
            query(
                "SELECT at, action, customer_id, other_id, detail FROM merge_log WHERE customer_id = ?1 OR other_id = ?1 ORDER BY id",
            )
            .bind(customer_id),
        )?
        .iter()
        .map(|r| {
            Ok(MergeLogEntry {
                at: get(r, 0)?,
                action: get(r, 1)?,
                customer_id: get(r, 2)?,
                other_id: get(r, 3)?,
                detail: get(r, 4)?,
            })
        })
        .collect()
    }

    fn import_runs(&self) -> Result<Vec<ImportRun>> {
        self.fetch_all(query(
            "SELECT s.name, r.file, r.file_hash, r.config_hash, r.rows_read, r.rows_written, r.rows_rejected, r.status, r.started_at, r.finished_at, r.seconds
             FROM import_runs r JOIN sources s ON s.id = r.source_id ORDER BY r.id DESC",
        ))?
        .iter()
        .map(|r| {
            Ok(ImportRun {
                source: get(r, 0)?,
                file: get(r, 1)?,
                file_hash: get(r, 2)?,
                config_hash: get(r, 3)?,
                rows_read: get(r, 4)?,
                rows_written: get(r, 5)?,
                rows_rejected: get(r, 6)?,
                status: get(r, 7)?,
                started_at: get(r, 8)?,
                finished_at: get(r, 9)?,
                seconds: get(r, 10)?,
            })
        })
        .collect()
    }

    fn setting(&self, key: &str) -> Result<Option<String>> {
        self.fetch_all(query("SELECT value FROM settings WHERE key = ?").bind(key.to_string()))?
            .first()
            .map(|r| get(r, 0))
            .transpose()
    }

    fn save_model(
        &self,
        kind: &str,
        params: &serde_json::Value,
        metrics: &serde_json::Value,
        blob: &[u8],
    ) -> Result<SavedModel> {
        let created_at = now_rfc3339();
        // sealed whole: a recommender's blob holds customers' keys and histories
        let key = self.data_key();
        let stored = match &key {
            Some(k) => k.seal(Field::Model, blob),
            None => blob.to_vec(),
        };
        let sealed = i64::from(key.is_some());
        let version: i64 = self.with_raw(|db| {
            db.immediate(|| {
                let rows = db.fetch(
                    &query("SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE kind = ?")
                        .bind(kind),
                )?;
                let v: i64 = rows.first().map(|r| get(r, 0)).transpose()?.unwrap_or(1);
                db.execute(
                    &query("INSERT INTO models (kind, version, created_at, params, metrics, blob, sealed) VALUES (?, ?, ?, ?, ?, ?, ?)")
                        .bind(kind)
                        .bind(v)
                        .bind(created_at.clone())
                        .bind(params.to_string())
                        .bind(metrics.to_string())
                        .bind(stored)
                        .bind(sealed),
                )?;
                Ok(v)
            })
        })?;
        Ok(SavedModel {
            kind: kind.to_string(),
            version,
            created_at,
            params: params.clone(),
            metrics: metrics.clone(),
            blob: blob.to_vec(),
        })
    }

    fn load_model(&self, kind: &str) -> Result<Option<SavedModel>> {
        // through the raw handle: a model blob is tens of megabytes, which
        // sqlx would copy twice on its way from its worker thread
        let key = self.data_key();
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT kind, version, created_at, params, metrics, blob, sealed FROM models WHERE kind = ?1 ORDER BY version DESC LIMIT 1",
            )?;
            st.bind_text(1, kind)?;
            if !st.step()? {
                return Ok(None);
            }
            let stored = st.blob(5)?;
            let blob = open_model(key.as_deref(), st.i64(6)? != 0, stored)?;
            Ok(Some(SavedModel {
                kind: st.text(0)?,
                version: st.i64(1)?,
                created_at: st.text(2)?,
                params: serde_json::from_str(&st.text(3)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                metrics: serde_json::from_str(&st.text(4)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                blob,
            }))
        })
    }

    fn create_key(&self, k: &KeyRecord) -> Result<()> {
        self.execute(
                query(
                    "INSERT INTO api_keys (id, kind, name, role, department, source, customer_id, secret_hash, created_at, expires_at, revoked_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(k.id.clone())
                .bind(k.kind.clone())
                .bind(k.name.clone())
                .bind(k.role.clone())
                .bind(k.department.clone())
                .bind(k.source.clone())
                .bind(k.customer_id)
                .bind(k.secret_hash.clone())
                .bind(k.created_at)
                .bind(k.expires_at)
                .bind(k.revoked_at)

        )?;
        Ok(())
    }

    fn key(&self, id: &str) -> Result<Option<KeyRecord>> {
        // through the raw handle: this runs on every authenticated request
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT id, kind, name, role, department, source, customer_id, secret_hash, created_at, expires_at, revoked_at FROM api_keys WHERE id = ?1",
            )?;
            st.bind_text(1, id)?;
            if !st.step()? {
                return Ok(None);
            }
            Ok(Some(key_from_stmt(&st)?))
        })
    }

    fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT id, kind, name, role, department, source, customer_id, secret_hash, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at, id",
            )?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(key_from_stmt(&st)?);
            }
            Ok(out)
        })
    }

    fn data_key(&self) -> Option<Arc<DataKey>> {
        SqliteStore::data_key(self)
    }

    fn rotate_key(&mut self) -> Result<crate::RotateReport> {
        SqliteStore::rotate_key(self)
    }

    fn vacuum(&self) -> Result<()> {
        SqliteStore::vacuum(self)
    }

    fn erasure_plan(&self, customer_id: i64) -> Result<crate::ErasurePlan> {
        SqliteStore::erasure_plan(self, customer_id)
    }

    fn erase_customer(
        &self,
        customer_id: i64,
        erasure_id: i64,
        anonymize: bool,
        suppress: &[(String, String)],
    ) -> Result<Vec<crate::TableCount>> {
        SqliteStore::erase_customer(self, customer_id, erasure_id, anonymize, suppress)
    }

    fn create_erasure(
        &self,
        customer_id: i64,
        status: &str,
        mode: &str,
        requested_by: &str,
    ) -> Result<i64> {
        SqliteStore::create_erasure(self, customer_id, status, mode, requested_by)
    }

    fn set_erasure(&self, id: i64, status: &str, receipt: Option<&str>) -> Result<()> {
        SqliteStore::set_erasure(self, id, status, receipt)
    }

    fn erasures(&self, status: Option<&str>) -> Result<Vec<crate::ErasureRecord>> {
        SqliteStore::erasures(self, status)
    }

    fn suppressions(&self) -> Result<HashSet<String>> {
        SqliteStore::suppressions(self)
    }

    fn intake_append(
        &self,
        source: &str,
        received_at: i64,
        messages: &[IntakeIn<'_>],
    ) -> Result<Vec<bool>> {
        let key = self.data_key();
        // sealed before the write lock is taken
        let sealed: Vec<Option<Vec<u8>>> = messages
            .iter()
            .map(|m| {
                key.as_ref()
                    .map(|k| k.seal(Field::Intake, m.body.as_bytes()))
            })
            .collect();
        self.with_raw(|db| {
            db.immediate(|| -> Result<Vec<bool>> {
                let mut st = db.prepare(
                    "INSERT INTO intake (source, message_id, kind, received_at, body, secret)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (source, message_id) DO NOTHING RETURNING seq",
                )?;
                let mut out = Vec::with_capacity(messages.len());
                for (m, sealed) in messages.iter().zip(&sealed) {
                    st.bind_text(1, source)?;
                    st.bind_text(2, m.message_id)?;
                    st.bind_text(3, m.kind)?;
                    st.bind_i64(4, received_at)?;
                    match sealed {
                        Some(b) => {
                            st.bind_null(5)?;
                            st.bind_blob(6, b)?;
                        }
                        None => {
                            st.bind_text(5, m.body)?;
                            st.bind_null(6)?;
                        }
                    }
                    let inserted = st.step()?;
                    st.reset()?;
                    out.push(inserted);
                }
                Ok(out)
            })
        })
    }

    fn record_alerts(&self, alerts: &[NewAlertRow], baseline: &str) -> Result<u64> {
        let at = chrono::Utc::now().timestamp();
        self.with_raw(|db| {
            db.immediate(|| -> Result<u64> {
                let mut st = db.prepare(
                    "INSERT INTO alerts (rule, kind, customer_id, generation, created_at, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (rule, customer_id, generation) DO NOTHING RETURNING id",
                )?;
                let mut n = 0;
                for a in alerts {
                    st.bind_text(1, &a.rule)?;
                    st.bind_text(2, &a.kind)?;
                    st.bind_i64(3, a.customer_id)?;
                    st.bind_i64(4, a.generation)?;
                    st.bind_i64(5, at)?;
                    st.bind_text(6, &a.detail)?;
                    if st.step()? {
                        n += 1;
                    }
                    st.reset()?;
                }
                let mut set = db.prepare(
                    "INSERT INTO settings (key, value) VALUES ('alerts.baseline', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?;
                set.bind_text(1, baseline)?;
                set.step()?;
                Ok(n)
            })
        })
    }

    fn alerts(&self, before: Option<i64>, limit: usize) -> Result<Vec<AlertRecord>> {
        self.alerts_where(
            "id < ?1 ORDER BY id DESC",
            before.unwrap_or(i64::MAX),
            limit,
        )
    }

    fn alerts_after(&self, after: i64, limit: usize) -> Result<Vec<AlertRecord>> {
        self.alerts_where("id > ?1 ORDER BY id", after, limit)
    }

    fn create_webhook(&self, webhook: &NewWebhook) -> Result<i64> {
        self.create_webhook_impl(webhook)
    }

    fn webhooks(&self) -> Result<Vec<WebhookRecord>> {
        self.webhooks_impl()
    }

    fn remove_webhook(&self, id: i64, at: i64) -> Result<bool> {
        self.remove_webhook_impl(id, at)
    }

    fn outbox_enqueue(
        &self,
        cursor: Option<(i64, i64, i64)>,
        rows: &[OutboxIn],
        now_ms: i64,
    ) -> Result<Option<usize>> {
        self.outbox_enqueue_impl(cursor, rows, now_ms)
    }

    fn outbox_claim(
        &self,
        now_ms: i64,
        lease_ms: i64,
        max_attempts: i64,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        self.outbox_claim_impl(now_ms, lease_ms, max_attempts, limit)
    }

    fn outbox_done(&self, outcomes: &[OutboxOutcome]) -> Result<()> {
        self.outbox_done_impl(outcomes)
    }

    fn outbox(
        &self,
        state: Option<&str>,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<OutboxRecord>> {
        self.outbox_impl(state, before, limit)
    }

    fn outbox_replay(&self, id: i64, now_ms: i64) -> Result<bool> {
        self.outbox_replay_impl(id, now_ms)
    }

    fn outbox_counts(&self) -> Result<BTreeMap<String, u64>> {
        self.outbox_counts_impl()
    }

    fn intake_pending(&self, limit: usize) -> Result<Vec<IntakeRecord>> {
        let key = self.data_key();
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT seq, source, message_id, kind, received_at, body, secret FROM intake
                 WHERE state = 'pending' ORDER BY seq LIMIT ?1",
            )?;
            st.bind_i64(1, i64::try_from(limit).unwrap_or(i64::MAX))?;
            let mut out = Vec::new();
            while st.step()? {
                let body = match (st.opt_blob(6)?, st.opt_text(5)?) {
                    (Some(sealed), _) => match &key {
                        Some(k) => k.open_text(Field::Intake, &sealed)?,
                        None => {
                            return Err(StoreError::Corrupt(
                                "a sealed intake message without a key to open it".into(),
                            ));
                        }
                    },
                    (None, Some(b)) => b,
                    (None, None) => String::new(),
                };
                out.push(IntakeRecord {
                    seq: st.i64(0)?,
                    source: st.text(1)?,
                    message_id: st.text(2)?,
                    kind: st.text(3)?,
                    received_at: st.i64(4)?,
                    body,
                });
            }
            Ok(out)
        })
    }

    fn intake_counts(&self) -> Result<IntakeCounts> {
        self.with_raw(|db| {
            let mut st = db.prepare("SELECT state, COUNT(*) FROM intake GROUP BY state")?;
            let mut c = IntakeCounts::default();
            while st.step()? {
                let n = u64::try_from(st.i64(1)?).unwrap_or(0);
                match st.text(0)?.as_str() {
                    "pending" => c.pending = n,
                    "applied" => c.applied = n,
                    "suppressed" => c.suppressed = n,
                    "no_consent" => c.no_consent = n,
                    _ => c.rejected += n,
                }
            }
            Ok(c)
        })
    }

    fn retain(&self, kind: &str, cutoff: i64, dry_run: bool) -> Result<Vec<crate::TableCount>> {
        SqliteStore::retain(self, kind, cutoff, dry_run)
    }

    fn revoke_key(&self, id: &str, at: i64) -> Result<bool> {
        let done = self.execute(
            query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id.to_string()),
        )?;
        Ok(done == 1)
    }

    fn create_user(&self, u: &UserRecord) -> Result<bool> {
        let done = self.execute(
            query(
                "INSERT INTO users (name, role, department, password_hash, created_at, disabled_at)
                     VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
            )
            .bind(u.name.clone())
            .bind(u.role.clone())
            .bind(u.department.clone())
            .bind(u.password_hash.clone())
            .bind(u.created_at)
            .bind(u.disabled_at),
        )?;
        Ok(done == 1)
    }

    fn user(&self, name: &str) -> Result<Option<UserRecord>> {
        // through the raw handle: a staff session reads its user on every request
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT name, role, department, password_hash, created_at, disabled_at FROM users WHERE name = ?1",
            )?;
            st.bind_text(1, name)?;
            if !st.step()? {
                return Ok(None);
            }
            Ok(Some(user_from_stmt(&st)?))
        })
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT name, role, department, password_hash, created_at, disabled_at FROM users ORDER BY name",
            )?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(user_from_stmt(&st)?);
            }
            Ok(out)
        })
    }

    fn set_user_password(&self, name: &str, hash: &str) -> Result<bool> {
        let done = self.execute(
            query("UPDATE users SET password_hash = ? WHERE name = ?")
                .bind(hash.to_string())
                .bind(name.to_string()),
        )?;
        Ok(done == 1)
    }

    fn disable_user(&self, name: &str, at: i64) -> Result<bool> {
        let done = self.execute(
            query("UPDATE users SET disabled_at = ? WHERE name = ? AND disabled_at IS NULL")
                .bind(at)
                .bind(name.to_string()),
        )?;
        Ok(done == 1)
    }

    fn create_session(&self, r: &SessionRecord) -> Result<()> {
        self.execute(
                query(
                    "INSERT INTO web_sessions (id, kind, user_name, customer_id, secret_hash, created_at, expires_at, revoked_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                )
                .bind(r.id.clone())
                .bind(r.kind.clone())
                .bind(r.user_name.clone())
                .bind(r.customer_id)
                .bind(r.secret_hash.clone())
                .bind(r.created_at)
                .bind(r.expires_at)
                .bind(r.revoked_at)

        )?;
        Ok(())
    }

    fn session(&self, id: &str) -> Result<Option<SessionRecord>> {
        // through the raw handle: this runs on every page request
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT id, kind, user_name, customer_id, secret_hash, created_at, expires_at, revoked_at FROM web_sessions WHERE id = ?1",
            )?;
            st.bind_text(1, id)?;
            if !st.step()? {
                return Ok(None);
            }
            Ok(Some(SessionRecord {
                id: st.text(0)?,
                kind: st.text(1)?,
                user_name: st.opt_text(2)?,
                customer_id: st.opt_i64(3)?,
                secret_hash: st.blob(4)?,
                created_at: st.i64(5)?,
                expires_at: st.i64(6)?,
                revoked_at: st.opt_i64(7)?,
            }))
        })
    }

    fn revoke_session(&self, id: &str, at: i64) -> Result<bool> {
        let done = self.execute(
            query("UPDATE web_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
                .bind(at)
                .bind(id.to_string()),
        )?;
        Ok(done == 1)
    }

    fn revoke_sessions_of_user(&self, name: &str, at: i64) -> Result<u64> {
        let done = self.execute(
            query(
                "UPDATE web_sessions SET revoked_at = ? WHERE user_name = ? AND revoked_at IS NULL",
            )
            .bind(at)
            .bind(name.to_string()),
        )?;
        Ok(done)
    }

    fn revoke_sessions_of_customer(&self, customer_id: i64, at: i64) -> Result<u64> {
        let done = self.execute(
                query(
                    "UPDATE web_sessions SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL",
                )
                .bind(at)
                .bind(customer_id)

        )?;
        Ok(done)
    }

    fn customer_timeline(
        &self,
        c: i64,
        sources: Option<&[i64]>,
        before: Option<&TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<TimelineRow>> {
        let key = self.data_key();
        let (src, osrc) = match sources {
            None => (String::new(), String::new()),
            Some(ids) => {
                let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                (
                    format!(" AND x.source_id IN ({list})"),
                    format!(
                        " AND (o.file_id IN (SELECT id FROM files WHERE source_id IN ({list})) OR (o.file_id IS NULL AND o.identity_id IN (SELECT id FROM identities WHERE source_id IN ({list}))))"
                    ),
                )
            }
        };
        let cursor = if before.is_some() {
            "WHERE (t, kind, id) < (?2, ?3, ?4)"
        } else {
            ""
        };
        let sql = format!(
            "WITH mine AS (SELECT id FROM identities WHERE customer_id = ?1)
             SELECT t, kind, id, label, value, text, extra, source, secret FROM (
               SELECT COALESCE(o.time, (SELECT MIN(time) FROM order_lines WHERE order_id = o.id), -1) AS t, 'order' AS kind, o.id AS id, o.key AS label,
                      COALESCE(o.amount, (SELECT SUM(amount) FROM order_lines WHERE order_id = o.id)) AS value, NULL AS text, NULL AS extra,
                      COALESCE((SELECT s.name FROM files f JOIN sources s ON s.id = f.source_id WHERE f.id = o.file_id),
                               (SELECT s.name FROM identities i JOIN sources s ON s.id = i.source_id WHERE i.id = o.identity_id)) AS source, NULL AS secret
                 FROM orders o WHERE o.identity_id IN (SELECT id FROM mine){osrc}
               UNION ALL
               SELECT COALESCE(x.time, -1), 'event', x.id, x.kind, x.value, NULL, x.channel, s.name, NULL
                 FROM events x JOIN sources s ON s.id = x.source_id WHERE x.identity_id IN (SELECT id FROM mine){src}
               UNION ALL
               SELECT COALESCE(x.time, -1), 'feedback', x.id, x.kind, x.score, x.text, x.channel, s.name, x.secret
                 FROM feedback x JOIN sources s ON s.id = x.source_id WHERE x.identity_id IN (SELECT id FROM mine){src}
               UNION ALL
               SELECT COALESCE(x.time, -1), 'campaign', x.id, k.key, NULL, NULL, x.kind, s.name, NULL
                 FROM campaign_contacts x JOIN campaigns k ON k.id = x.campaign_id JOIN sources s ON s.id = x.source_id
                 WHERE x.identity_id IN (SELECT id FROM mine){src}
               UNION ALL
               SELECT COALESCE(x.time, -1), 'consent', x.id, x.purpose, CAST(x.granted AS DOUBLE PRECISION), NULL, NULL, s.name, NULL
                 FROM consents x JOIN sources s ON s.id = x.source_id WHERE x.identity_id IN (SELECT id FROM mine){src}
             ) AS u {cursor}
             ORDER BY t DESC, kind DESC, id DESC LIMIT ?5"
        );
        let (bt, bk, bi) = match before {
            Some(b) => (b.time, b.kind.clone(), b.id),
            None => (0, String::new(), 0),
        };
        let rows = self.fetch_all(
            query(sql)
                .bind(c)
                .bind(bt)
                .bind(bk)
                .bind(bi)
                .bind(limit as i64),
        )?;
        rows.iter()
            .map(|r| {
                let t: i64 = get(r, 0)?;
                Ok(TimelineRow {
                    time: (t != -1).then_some(t),
                    kind: get(r, 1)?,
                    id: get(r, 2)?,
                    label: get(r, 3)?,
                    value: get(r, 4)?,
                    text: unseal(key.as_deref(), Field::FeedbackText, get(r, 8)?, get(r, 5)?)?,
                    extra: get(r, 6)?,
                    source: get::<Option<String>>(r, 7)?.unwrap_or_default(),
                })
            })
            .collect()
    }

    fn customers_of_sources(&self, sources: &[i64]) -> Result<std::collections::HashSet<i64>> {
        let list = sources
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let list = if list.is_empty() {
            "NULL".to_string()
        } else {
            list
        };
        let sql = format!(
            "SELECT customer_id FROM identities WHERE source_id IN ({list})
             UNION SELECT i.customer_id FROM identities i WHERE i.id IN (
                 SELECT identity_id FROM order_lines WHERE source_id IN ({list})
                 UNION SELECT identity_id FROM events WHERE source_id IN ({list})
                 UNION SELECT identity_id FROM feedback WHERE source_id IN ({list})
                 UNION SELECT identity_id FROM campaign_contacts WHERE source_id IN ({list})
                 UNION SELECT identity_id FROM consents WHERE source_id IN ({list})
                 UNION SELECT identity_id FROM attributes WHERE source_id IN ({list}))"
        );
        self.with_raw(|db| {
            let mut st = db.prepare(&sql)?;
            let mut out = std::collections::HashSet::new();
            while st.step()? {
                out.insert(st.i64(0)?);
            }
            Ok(out)
        })
    }

    fn model_versions(&self) -> Result<Vec<(String, i64)>> {
        self.with_raw(|db| {
            let mut st =
                db.prepare("SELECT kind, MAX(version) FROM models GROUP BY kind ORDER BY kind")?;
            let mut out = Vec::new();
            while st.step()? {
                out.push((st.text(0)?, st.i64(1)?));
            }
            Ok(out)
        })
    }

    fn model_times(&self) -> Result<Vec<(String, i64, String)>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT m.kind, m.version, m.created_at FROM models m
                 JOIN (SELECT kind, MAX(version) AS v FROM models GROUP BY kind) n
                   ON n.kind = m.kind AND n.v = m.version
                 ORDER BY m.kind",
            )?;
            let mut out = Vec::new();
            while st.step()? {
                out.push((st.text(0)?, st.i64(1)?, st.text(2)?));
            }
            Ok(out)
        })
    }

    fn model_history(&self, kind: &str) -> Result<Vec<i64>> {
        self.with_raw(|db| {
            let mut st =
                db.prepare("SELECT version FROM models WHERE kind = ?1 ORDER BY version")?;
            st.bind_text(1, kind)?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(st.i64(0)?);
            }
            Ok(out)
        })
    }

    fn load_model_version(&self, kind: &str, version: i64) -> Result<Option<SavedModel>> {
        // read and opened as `load_model` does, for one given version
        let key = self.data_key();
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT kind, version, created_at, params, metrics, blob, sealed FROM models WHERE kind = ?1 AND version = ?2",
            )?;
            st.bind_text(1, kind)?;
            st.bind_i64(2, version)?;
            if !st.step()? {
                return Ok(None);
            }
            let stored = st.blob(5)?;
            let blob = open_model(key.as_deref(), st.i64(6)? != 0, stored)?;
            Ok(Some(SavedModel {
                kind: st.text(0)?,
                version: st.i64(1)?,
                created_at: st.text(2)?,
                params: serde_json::from_str(&st.text(3)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                metrics: serde_json::from_str(&st.text(4)?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                blob,
            }))
        })
    }

    fn replace_model_blob(&self, kind: &str, version: i64, blob: &[u8]) -> Result<bool> {
        // sealed as `save_model` seals a new blob
        let key = self.data_key();
        let stored = match &key {
            Some(k) => k.seal(Field::Model, blob),
            None => blob.to_vec(),
        };
        let sealed = i64::from(key.is_some());
        self.with_raw(|db| {
            let mut st =
                db.prepare("UPDATE models SET blob = ?1, sealed = ?2 WHERE kind = ?3 AND version = ?4 RETURNING id")?;
            st.bind_blob(1, &stored)?;
            st.bind_i64(2, sealed)?;
            st.bind_text(3, kind)?;
            st.bind_i64(4, version)?;
            let found = st.step()?;
            // run the statement to its end so the update completes here
            if found {
                while st.step()? {}
            }
            Ok(found)
        })
    }

    fn consent_history(&self, customer_id: i64) -> Result<Vec<crate::ConsentRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT c.id, c.purpose, c.granted, c.time, COALESCE(s.name, ''), COALESCE(f.path, '')
                   FROM consents c
                   LEFT JOIN sources s ON s.id = c.source_id
                   LEFT JOIN files f ON f.id = c.file_id
                  WHERE c.identity_id IN (SELECT id FROM identities WHERE customer_id = ?1)
                  ORDER BY c.time IS NOT NULL, c.time, c.id",
            )?;
            st.bind_i64(1, customer_id)?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(crate::ConsentRecord {
                    id: st.i64(0)?,
                    purpose: st.text(1)?,
                    granted: st.i64(2)? != 0,
                    time: st.opt_i64(3)?,
                    source: st.text(4)?,
                    file: st.text(5)?,
                });
            }
            Ok(out)
        })
    }

    fn latest_consents(&self) -> Result<Vec<crate::LatestConsent>> {
        // NULL times sort below every time (as in `customer_facts`)
        self.with_raw(|db| {
            let mut st = db.prepare(
                "SELECT customer_id, purpose, granted, time FROM (
                    SELECT i.customer_id, c.purpose, c.granted, c.time,
                           ROW_NUMBER() OVER (PARTITION BY i.customer_id, c.purpose
                                              ORDER BY c.time DESC NULLS LAST, c.id DESC) AS rn
                      FROM consents c JOIN identities i ON i.id = c.identity_id) AS latest
                  WHERE rn = 1 ORDER BY customer_id, purpose",
            )?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(crate::LatestConsent {
                    customer_id: st.i64(0)?,
                    purpose: st.text(1)?,
                    granted: st.i64(2)? != 0,
                    time: st.opt_i64(3)?,
                });
            }
            Ok(out)
        })
    }

    fn person_rows(&self, customer_id: i64) -> Result<crate::PersonRows> {
        self.read_person_rows(customer_id)
    }

    fn provenance(&self) -> Result<crate::Provenance> {
        let key = self.data_key();
        self.with_raw(|db| db.read(|| read_provenance(db, key.as_deref())))
    }
}

fn read_provenance(db: &RawDb<'_>, key: Option<&DataKey>) -> Result<crate::Provenance> {
    let mut p = crate::Provenance::default();
    for (f, s) in read_rows(db, "SELECT id, source_id FROM files", &[], |st| {
        Ok((st.i64(0)?, st.i64(1)?))
    })? {
        p.file_sources.insert(f, s);
    }
    for (o, f) in read_rows(
        db,
        "SELECT id, file_id FROM orders WHERE file_id IS NOT NULL",
        &[],
        |st| Ok((st.i64(0)?, st.i64(1)?)),
    )? {
        p.order_files.insert(o, f);
    }
    p.attributes = read_rows(
        db,
        "SELECT a.rowid, i.customer_id, a.source_id, a.line, a.name, a.value, a.secret
           FROM attributes a JOIN identities i ON i.id = a.identity_id ORDER BY a.rowid",
        &[],
        |st| {
            let v = unseal(key, Field::Attribute, st.opt_blob(6)?, st.opt_text(5)?)?
                .unwrap_or_default();
            Ok(crate::AttributeSource {
                rowid: st.i64(0)?,
                customer_id: st.i64(1)?,
                source_id: st.i64(2)?,
                line: st.i64(3)?,
                name: st.text(4)?,
                value: attr_from_json(&v)?,
            })
        },
    )?;
    p.identities = read_rows(
        db,
        "SELECT customer_id, kind, source_id FROM identities WHERE shared = 0 ORDER BY id",
        &[],
        |st| Ok((st.i64(0)?, st.text(1)?, st.i64(2)?)),
    )?;
    p.consents = read_rows(
        db,
        "SELECT i.customer_id, c.source_id, c.purpose, c.time
           FROM consents c JOIN identities i ON i.id = c.identity_id ORDER BY c.id",
        &[],
        |st| Ok((st.i64(0)?, st.i64(1)?, st.text(2)?, st.opt_i64(3)?)),
    )?;
    Ok(p)
}

fn user_from_stmt(st: &Stmt<'_>) -> Result<UserRecord> {
    Ok(UserRecord {
        name: st.text(0)?,
        role: st.text(1)?,
        department: st.opt_text(2)?,
        password_hash: st.opt_text(3)?,
        created_at: st.i64(4)?,
        disabled_at: st.opt_i64(5)?,
    })
}

fn key_from_stmt(st: &Stmt<'_>) -> Result<KeyRecord> {
    Ok(KeyRecord {
        id: st.text(0)?,
        kind: st.text(1)?,
        name: st.text(2)?,
        role: st.text(3)?,
        department: st.opt_text(4)?,
        source: st.opt_text(5)?,
        customer_id: st.opt_i64(6)?,
        secret_hash: st.blob(7)?,
        created_at: st.i64(8)?,
        expires_at: st.opt_i64(9)?,
        revoked_at: st.opt_i64(10)?,
    })
}

impl SqliteStore {
    /// Number of customers (cheap count, used by reports).
    pub fn customer_count(&self) -> Result<i64> {
        self.fetch_i64("SELECT COUNT(*) FROM customers")
    }
}

impl SqliteStore {
    /// The snapshot as plain SQL computes it, row by row through sqlx: the
    /// reference the snapshot path ([`Store::dataset`]) is tested against.
    /// Slow (seconds on a million order lines); not for production use.
    pub fn dataset_by_sql(&self) -> Result<Dataset> {
        let key = self.data_key();
        let key = key.as_deref();
        let mut ds = Dataset::default();
        // customers: key = first personal identity (lowest id) as ns:value.
        // A customer that owns only over-shared keys (a family mailbox) is no
        // person: it is left out, as `stats` leaves it out of the count. Facts
        // recorded under such a key keep its id, so totals (demand) still see
        // them while per-customer analytics (RFM, churn, CLV) skip them.
        let mut index: HashMap<i64, usize> = HashMap::new();
        self.each_row(query(
            "SELECT c.id, i.namespace, i.value, i.secret FROM customers c JOIN identities i ON i.id = (SELECT MIN(id) FROM identities WHERE customer_id = c.id AND shared = 0) ORDER BY c.id",
        ), |r| {
            let id: i64 = get(r, 0)?;
            let ns: String = get(r, 1)?;
            let value = unseal(key, Field::Identity, get(r, 3)?, get(r, 2)?)?.unwrap_or_default();
            index.insert(id, ds.customers.len());
            ds.customers.push(CustomerInfo { id, key: format!("{ns}:{value}"), attributes: Default::default() });
            Ok(())
        })?;
        self.each_row(query(
            "SELECT i.customer_id, a.name, a.value, a.secret FROM attributes a JOIN identities i ON i.id = a.identity_id ORDER BY a.rowid",
        ), |r| {
            let c: i64 = get(r, 0)?;
            if let Some(&ix) = index.get(&c) {
                let name: String = get(r, 1)?;
                let v = unseal(key, Field::Attribute, get(r, 3)?, get(r, 2)?)?.unwrap_or_default();
                ds.customers[ix].attributes.insert(name, attr_from_json(&v)?);
            }
            Ok(())
        })?;
        self.each_row(
            query("SELECT id, key, name, category, price FROM products ORDER BY id"),
            |r| {
                ds.products.push(ProductInfo {
                    id: get(r, 0)?,
                    key: get(r, 1)?,
                    name: get(r, 2)?,
                    category: get(r, 3)?,
                    price: get(r, 4)?,
                });
                Ok(())
            },
        )?;
        self.each_row(query(
            "SELECT o.id, i.customer_id, COALESCE(o.time, (SELECT MIN(time) FROM order_lines WHERE order_id = o.id)),
                    COALESCE(o.amount, (SELECT SUM(amount) FROM order_lines WHERE order_id = o.id), 0.0),
                    COALESCE(o.discount, (SELECT SUM(discount) FROM order_lines WHERE order_id = o.id), 0.0)
             FROM orders o JOIN identities i ON i.id = o.identity_id ORDER BY o.id",
        ), |r| {
            ds.orders.push(OrderFact {
                id: get(r, 0)?,
                customer: get(r, 1)?,
                time: get(r, 2)?,
                amount: get(r, 3)?,
                discount: get(r, 4)?,
            });
            Ok(())
        })?;
        self.each_row(query(
            "SELECT l.order_id, i.customer_id, l.product_id, l.quantity, l.amount, l.discount, l.time FROM order_lines l JOIN identities i ON i.id = l.identity_id ORDER BY l.id",
        ), |r| {
            ds.lines.push(LineFact {
                order: get(r, 0)?,
                customer: get(r, 1)?,
                product: get(r, 2)?,
                quantity: get(r, 3)?,
                amount: get(r, 4)?,
                discount: get(r, 5)?,
                time: get(r, 6)?,
            });
            Ok(())
        })?;
        self.each_row(query(
            "SELECT i.customer_id, e.kind, e.product_id, e.value, e.channel, e.time FROM events e JOIN identities i ON i.id = e.identity_id ORDER BY e.id",
        ), |r| {
            ds.events.push(EventFact {
                customer: get(r, 0)?,
                kind: get(r, 1)?,
                product: get(r, 2)?,
                value: get(r, 3)?,
                channel: get(r, 4)?,
                time: get(r, 5)?,
            });
            Ok(())
        })?;
        self.each_row(query(
            "SELECT i.customer_id, f.kind, f.score, f.text, f.channel, f.time, f.secret FROM feedback f JOIN identities i ON i.id = f.identity_id ORDER BY f.id",
        ), |r| {
            ds.feedback.push(FeedbackFact {
                customer: get(r, 0)?,
                kind: get(r, 1)?,
                score: get(r, 2)?,
                text: unseal(key, Field::FeedbackText, get(r, 6)?, get(r, 3)?)?,
                channel: get(r, 4)?,
                time: get(r, 5)?,
            });
            Ok(())
        })?;
        self.each_row(
            query("SELECT id, key, name, kind, start, \"end\" FROM campaigns ORDER BY id"),
            |r| {
                ds.campaigns.push(CampaignInfo {
                    id: get(r, 0)?,
                    key: get(r, 1)?,
                    name: get(r, 2)?,
                    kind: get(r, 3)?,
                    start: get(r, 4)?,
                    end: get(r, 5)?,
                });
                Ok(())
            },
        )?;
        self.each_row(query(
            "SELECT i.customer_id, c.campaign_id, c.time, c.kind FROM campaign_contacts c JOIN identities i ON i.id = c.identity_id ORDER BY c.id",
        ), |r| {
            let fact = CampaignFact { customer: get(r, 0)?, campaign: get(r, 1)?, time: get(r, 2)? };
            let kind: String = get(r, 3)?;
            if kind == "redemption" {
                ds.redemptions.push(fact);
            } else {
                ds.exposures.push(fact);
            }
            Ok(())
        })?;
        Ok(ds)
    }
}

impl SqliteStore {
    /// Alerts matching `clause` (with `?1` bound to `bound`).
    fn alerts_where(&self, clause: &str, bound: i64, limit: usize) -> Result<Vec<AlertRecord>> {
        self.with_raw(|db| {
            let mut st = db.prepare(&format!(
                "SELECT id, rule, kind, customer_id, generation, created_at, detail FROM alerts
                 WHERE {clause} LIMIT ?2"
            ))?;
            st.bind_i64(1, bound)?;
            st.bind_i64(2, i64::try_from(limit).unwrap_or(i64::MAX))?;
            let mut out = Vec::new();
            while st.step()? {
                out.push(AlertRecord {
                    id: st.i64(0)?,
                    rule: st.text(1)?,
                    kind: st.text(2)?,
                    customer_id: st.i64(3)?,
                    generation: st.i64(4)?,
                    created_at: st.i64(5)?,
                    detail: st.text(6)?,
                });
            }
            Ok(out)
        })
    }
}

fn read_generation(db: &RawDb<'_>) -> Result<Generation> {
    let mut st = db.prepare("SELECT store_id, generation FROM store_meta WHERE id = 1")?;
    if !st.step()? {
        return Err(StoreError::Corrupt("store_meta has no row".into()));
    }
    Ok(Generation {
        store_id: st.text(0)?,
        generation: st.i64(1)?,
    })
}

/// Reads every row of `sql` (with `?1` bound to `since` when it has one).
fn read_rows<T>(
    db: &RawDb<'_>,
    sql: &str,
    params: &[i64],
    mut row: impl FnMut(&Stmt<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let mut st = db.prepare(sql)?;
    for (i, p) in params.iter().enumerate() {
        st.bind_i64(i as std::ffi::c_int + 1, *p)?;
    }
    let mut out = Vec::new();
    while st.step()? {
        out.push(row(&st)?);
    }
    Ok(out)
}

/// The fact rows of one table with ids in (lo, hi] (all rows when `range`
/// is `None`), with the file each came from.
fn read_facts(
    db: &RawDb<'_>,
    table: &str,
    range: Option<(i64, i64, i64)>,
    key: Option<&DataKey>,
) -> Result<Vec<(i64, FactRows)>> {
    let (filter, params): (&str, Vec<i64>) = match range {
        Some((file, lo, hi)) => (
            "WHERE id > ?1 AND id <= ?2 AND file_id = ?3",
            vec![lo, hi, file],
        ),
        None => ("", vec![]),
    };
    // rows come in id order; split them by file, keeping each file's order
    let mut by_file: BTreeMap<i64, FactRows> = BTreeMap::new();
    match table {
        "order_lines" => {
            let sql = format!(
                "SELECT file_id, id, order_id, identity_id, product_id, quantity, amount, discount, time FROM order_lines {filter} ORDER BY id"
            );
            let mut st = db.prepare(&sql)?;
            for (i, p) in params.iter().enumerate() {
                st.bind_i64(i as std::ffi::c_int + 1, *p)?;
            }
            let (mut cur_file, mut cur): (Option<i64>, Vec<RawLine>) = (None, Vec::new());
            let mut flush = |file: Option<i64>, rows: &mut Vec<RawLine>| {
                if let Some(f) = file
                    && !rows.is_empty()
                    && let FactRows::Lines(v) = by_file
                        .entry(f)
                        .or_insert_with(|| FactRows::Lines(Vec::new()))
                {
                    v.append(rows);
                }
            };
            while st.step()? {
                let file = st.i64(0)?;
                if cur_file != Some(file) {
                    flush(cur_file, &mut cur);
                    cur_file = Some(file);
                }
                cur.push(RawLine {
                    id: st.i64(1)?,
                    order_id: st.i64(2)?,
                    identity_id: st.i64(3)?,
                    product_id: st.opt_i64(4)?,
                    quantity: st.f64(5)?,
                    amount: st.f64(6)?,
                    discount: st.f64(7)?,
                    time: st.opt_i64(8)?,
                });
            }
            flush(cur_file, &mut cur);
        }
        "events" => {
            let sql = format!(
                "SELECT file_id, id, identity_id, kind, product_id, value, channel, time FROM events {filter} ORDER BY id"
            );
            for (file, r) in read_rows(db, &sql, &params, |st| {
                Ok((
                    st.i64(0)?,
                    RawEvent {
                        id: st.i64(1)?,
                        identity_id: st.i64(2)?,
                        kind: st.text(3)?,
                        product_id: st.opt_i64(4)?,
                        value: st.opt_f64(5)?,
                        channel: st.opt_text(6)?,
                        time: st.opt_i64(7)?,
                    },
                ))
            })? {
                if let FactRows::Events(v) = by_file
                    .entry(file)
                    .or_insert_with(|| FactRows::Events(Vec::new()))
                {
                    v.push(r);
                }
            }
        }
        "feedback" => {
            let sql = format!(
                "SELECT file_id, id, identity_id, kind, score, text, channel, time, secret FROM feedback {filter} ORDER BY id"
            );
            for (file, r) in read_rows(db, &sql, &params, |st| {
                Ok((
                    st.i64(0)?,
                    RawFeedback {
                        id: st.i64(1)?,
                        identity_id: st.i64(2)?,
                        kind: st.text(3)?,
                        score: st.opt_f64(4)?,
                        text: unseal(key, Field::FeedbackText, st.opt_blob(8)?, st.opt_text(5)?)?,
                        channel: st.opt_text(6)?,
                        time: st.opt_i64(7)?,
                    },
                ))
            })? {
                if let FactRows::Feedback(v) = by_file
                    .entry(file)
                    .or_insert_with(|| FactRows::Feedback(Vec::new()))
                {
                    v.push(r);
                }
            }
        }
        "campaign_contacts" => {
            let sql = format!(
                "SELECT file_id, id, identity_id, campaign_id, kind, time FROM campaign_contacts {filter} ORDER BY id"
            );
            for (file, r) in read_rows(db, &sql, &params, |st| {
                Ok((
                    st.i64(0)?,
                    RawContact {
                        id: st.i64(1)?,
                        identity_id: st.i64(2)?,
                        campaign_id: st.i64(3)?,
                        redemption: st.text(4)? == "redemption",
                        time: st.opt_i64(5)?,
                    },
                ))
            })? {
                if let FactRows::Contacts(v) = by_file
                    .entry(file)
                    .or_insert_with(|| FactRows::Contacts(Vec::new()))
                {
                    v.push(r);
                }
            }
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "snapshot log names unknown table {other:?}"
            )));
        }
    }
    Ok(by_file.into_iter().collect())
}

fn empty_rows(table: &str) -> Result<FactRows> {
    Ok(match table {
        "order_lines" => FactRows::Lines(Vec::new()),
        "events" => FactRows::Events(Vec::new()),
        "feedback" => FactRows::Feedback(Vec::new()),
        "campaign_contacts" => FactRows::Contacts(Vec::new()),
        other => {
            return Err(StoreError::Corrupt(format!(
                "snapshot log names unknown table {other:?}"
            )));
        }
    })
}

/// Reads the delta since `since` inside an open read transaction.
fn read_delta(db: &RawDb<'_>, since: i64, key: Option<&DataKey>) -> Result<SnapshotDelta> {
    let g = read_generation(db)?;
    // a snapshot newer than the store (a restored backup) starts over, and
    // so does one older than the last erasure or retention pass (their
    // deletes are not in the per-file log)
    let floor = {
        let mut st = db.prepare("SELECT value FROM settings WHERE key = 'snapshot.floor'")?;
        if st.step()? {
            st.text(0)?.parse::<i64>().unwrap_or(0)
        } else {
            0
        }
    };
    let since = if since > g.generation || since < floor {
        0
    } else {
        since
    };
    let full = since == 0;
    let p = [since];
    let mut d = SnapshotDelta {
        store_id: g.store_id,
        since,
        generation: g.generation,
        full,
        ..SnapshotDelta::default()
    };
    d.identities = read_rows(
        db,
        "SELECT id, customer_id, shared, namespace, value, secret FROM identities WHERE gen > ?1 ORDER BY id",
        &p,
        |st| {
            Ok(RawIdentity {
                id: st.i64(0)?,
                customer_id: st.i64(1)?,
                shared: st.i64(2)? != 0,
                namespace: st.text(3)?,
                value: unseal(key, Field::Identity, st.opt_blob(5)?, st.opt_text(4)?)?
                    .unwrap_or_default(),
            })
        },
    )?;
    d.attributes = read_rows(
        db,
        "SELECT rowid, identity_id, name, value, secret FROM attributes WHERE gen > ?1 ORDER BY rowid",
        &p,
        |st| {
            let v = unseal(key, Field::Attribute, st.opt_blob(4)?, st.opt_text(3)?)?
                .unwrap_or_default();
            Ok(RawAttribute {
                rowid: st.i64(0)?,
                identity_id: st.i64(1)?,
                name: st.text(2)?,
                value: attr_from_json(&v)?,
            })
        },
    )?;
    d.products = read_rows(
        db,
        "SELECT id, key, name, category, price FROM products WHERE gen > ?1 ORDER BY id",
        &p,
        |st| {
            Ok(ProductInfo {
                id: st.i64(0)?,
                key: st.text(1)?,
                name: st.opt_text(2)?,
                category: st.opt_text(3)?,
                price: st.opt_f64(4)?,
            })
        },
    )?;
    d.campaigns = read_rows(
        db,
        "SELECT id, key, name, kind, start, \"end\" FROM campaigns WHERE gen > ?1 ORDER BY id",
        &p,
        |st| {
            Ok(CampaignInfo {
                id: st.i64(0)?,
                key: st.text(1)?,
                name: st.opt_text(2)?,
                kind: st.opt_text(3)?,
                start: st.opt_i64(4)?,
                end: st.opt_i64(5)?,
            })
        },
    )?;
    d.orders = read_rows(
        db,
        "SELECT id, identity_id, time, amount, discount FROM orders WHERE gen > ?1 ORDER BY id",
        &p,
        |st| {
            Ok(RawOrder {
                id: st.i64(0)?,
                identity_id: st.i64(1)?,
                time: st.opt_i64(2)?,
                amount: st.opt_f64(3)?,
                discount: st.opt_f64(4)?,
            })
        },
    )?;
    if full {
        for table in FACT_TABLES {
            for (file_id, rows) in read_facts(db, table, None, key)? {
                d.files.push(FileChange {
                    file_id,
                    replace: true,
                    rows,
                });
            }
        }
        return Ok(d);
    }
    d.orders_deleted = read_rows(
        db,
        "SELECT row_id FROM snapshot_tombstones WHERE gen > ?1 AND tbl = 'orders'",
        &p,
        |st| st.i64(0),
    )?;
    let log = read_rows(
        db,
        "SELECT file_id, tbl, replace, lo, hi FROM snapshot_log WHERE gen > ?1 ORDER BY id",
        &p,
        |st| {
            Ok((
                st.i64(0)?,
                st.text(1)?,
                st.i64(2)? != 0,
                st.i64(3)?,
                st.i64(4)?,
            ))
        },
    )?;
    for (file_id, table, replace, lo, hi) in log {
        let mut rows = read_facts(db, &table, Some((file_id, lo, hi)), key)?;
        let rows = match rows.pop() {
            Some((_, r)) => r,
            None => empty_rows(&table)?,
        };
        d.files.push(FileChange {
            file_id,
            replace,
            rows,
        });
    }
    Ok(d)
}
