//! One statement API over both backends: the store's SQL is written once
//! (SQLite's `?N` parameters, SQL both databases accept) and runs on the
//! embedded SQLite file through its C API ([`crate::raw`]) or on a
//! PostgreSQL server through sqlx.
//!
//! Why one API rather than one store per database: every use case (import,
//! erasure, outbox, audit, snapshot reads) then has one implementation, so
//! the two backends cannot drift apart, and the conformance suite checks the
//! dialect differences (types, transactions, parameter numbering) instead of
//! two copies of the logic. What differs lives here:
//! - **Parameters**: `?N` and `?` become `$N` for PostgreSQL.
//! - **Transactions**: `BEGIN IMMEDIATE` (SQLite's whole-database write lock)
//!   is a transaction-scoped advisory lock on PostgreSQL, so writers from
//!   several processes queue exactly as they do on one SQLite file; a plain
//!   `BEGIN` (a read) is `REPEATABLE READ`, one consistent view as SQLite's
//!   read transaction gives. `PRAGMA`s are SQLite's alone and skipped.
//! - **Values**: PostgreSQL types are strict; columns are read leniently
//!   (an `i64` from any integer, boolean or integral `NUMERIC`, an `f64`
//!   from any number), as SQLite's dynamic typing reads them.

use std::cell::RefCell;
use std::ffi::c_int;

use futures_util::TryStreamExt;
use sqlx::postgres::{PgArguments, PgRow, Postgres};
use sqlx::{Arguments, AssertSqlSafe, Row as _, TypeInfo, ValueRef};
use tokio::runtime::Runtime;

use crate::raw::{LiteDb, LiteStmt};
use crate::{Result, StoreError};

/// The advisory lock key every PostgreSQL write transaction takes: the
/// counterpart of SQLite's database write lock ("infogap" in ASCII).
pub(crate) const WRITE_LOCK: i64 = 0x0069_6e66_6f67_6170;

/// The type of a bound NULL (PostgreSQL wants one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Int,
    Real,
    Text,
    Blob,
    /// Left to the server to infer from the statement.
    Any,
}

/// One value, bound or read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null(Ty),
    I64(i64),
    F64(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Rust values that bind as a [`Val`].
pub(crate) trait IntoVal {
    fn into_val(self) -> Val;
}

macro_rules! into_val {
    ($t:ty, $ty:expr, $v:ident => $e:expr) => {
        impl IntoVal for $t {
            fn into_val(self) -> Val {
                let $v = self;
                $e
            }
        }
        impl IntoVal for Option<$t> {
            fn into_val(self) -> Val {
                match self {
                    Some(v) => v.into_val(),
                    None => Val::Null($ty),
                }
            }
        }
    };
}

into_val!(i64, Ty::Int, v => Val::I64(v));
into_val!(i32, Ty::Int, v => Val::I64(i64::from(v)));
into_val!(bool, Ty::Int, v => Val::I64(i64::from(v)));
into_val!(f64, Ty::Real, v => Val::F64(v));
into_val!(String, Ty::Text, v => Val::Text(v));
into_val!(&str, Ty::Text, v => Val::Text(v.to_string()));
into_val!(&String, Ty::Text, v => Val::Text(v.clone()));
into_val!(Vec<u8>, Ty::Blob, v => Val::Blob(v));
into_val!(&[u8], Ty::Blob, v => Val::Blob(v.to_vec()));

/// A statement with its parameters, run by [`RawDb::run`].
#[derive(Debug, Clone)]
pub(crate) struct Q {
    pub sql: String,
    pub args: Vec<Val>,
}

/// A statement to run (SQLite syntax, `?`/`?N` parameters).
pub(crate) fn query(sql: impl Into<String>) -> Q {
    Q {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl Q {
    /// Binds the next parameter.
    pub(crate) fn bind(mut self, v: impl IntoVal) -> Q {
        self.args.push(v.into_val());
        self
    }
}

/// A row read whole.
pub(crate) type Row = Vec<Val>;

/// Values a column reads as.
pub(crate) trait FromVal: Sized {
    fn from_val(v: &Val) -> Result<Self>;
}

fn mismatch(v: &Val, want: &str) -> StoreError {
    StoreError::Corrupt(format!("a column holds {v:?} where {want} was expected"))
}

impl FromVal for i64 {
    fn from_val(v: &Val) -> Result<i64> {
        match v {
            Val::I64(i) => Ok(*i),
            Val::F64(f) if f.fract() == 0.0 => Ok(*f as i64),
            _ => Err(mismatch(v, "an integer")),
        }
    }
}

impl FromVal for f64 {
    fn from_val(v: &Val) -> Result<f64> {
        match v {
            Val::F64(f) => Ok(*f),
            Val::I64(i) => Ok(*i as f64),
            _ => Err(mismatch(v, "a number")),
        }
    }
}

impl FromVal for String {
    fn from_val(v: &Val) -> Result<String> {
        match v {
            Val::Text(s) => Ok(s.clone()),
            _ => Err(mismatch(v, "text")),
        }
    }
}

impl FromVal for Vec<u8> {
    fn from_val(v: &Val) -> Result<Vec<u8>> {
        match v {
            Val::Blob(b) => Ok(b.clone()),
            Val::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(mismatch(v, "bytes")),
        }
    }
}

impl FromVal for bool {
    fn from_val(v: &Val) -> Result<bool> {
        i64::from_val(v).map(|i| i != 0)
    }
}

impl<T: FromVal> FromVal for Option<T> {
    fn from_val(v: &Val) -> Result<Option<T>> {
        match v {
            Val::Null(_) => Ok(None),
            v => T::from_val(v).map(Some),
        }
    }
}

/// Column `idx` of a row read whole.
pub(crate) fn get<T: FromVal>(row: &Row, idx: usize) -> Result<T> {
    let v = row
        .get(idx)
        .ok_or_else(|| StoreError::Corrupt(format!("a row has no column {idx}")))?;
    T::from_val(v)
}

/// A connection as the store's SQL sees it, for as long as it is borrowed.
pub(crate) enum RawDb<'a> {
    Lite(LiteDb<'a>),
    Pg(PgDb<'a>),
}

/// A PostgreSQL connection driven from synchronous code.
pub(crate) struct PgDb<'a> {
    /// `None` only while being returned to its pool.
    conn: &'a RefCell<Option<PgConn>>,
    rt: &'a Runtime,
}

/// A pooled PostgreSQL connection.
pub(crate) type PgConn = sqlx::pool::PoolConnection<Postgres>;

fn gone() -> StoreError {
    StoreError::Database("the connection was returned to its pool".into())
}

fn pg_err(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl<'a> PgDb<'a> {
    pub(crate) fn new(conn: &'a RefCell<Option<PgConn>>, rt: &'a Runtime) -> PgDb<'a> {
        PgDb { conn, rt }
    }

    /// Runs SQL without parameters (several statements allowed).
    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        let mut held = self.conn.borrow_mut();
        let conn = held.as_mut().ok_or_else(gone)?;
        self.rt
            .block_on(sqlx::raw_sql(AssertSqlSafe(sql.to_string())).execute(&mut **conn))
            .map(|_| ())
            .map_err(pg_err)
    }

    /// Runs one statement: its rows and the number of rows it changed.
    fn run(&self, sql: &str, args: &[Val]) -> Result<(Vec<PgRow>, u64)> {
        let mut a = PgArguments::default();
        for v in args {
            let r = match v {
                Val::I64(i) => a.add(*i),
                Val::F64(f) => a.add(*f),
                Val::Text(s) => a.add(s.clone()),
                Val::Blob(b) => a.add(b.clone()),
                Val::Null(Ty::Int) => a.add(None::<i64>),
                Val::Null(Ty::Real) => a.add(None::<f64>),
                Val::Null(Ty::Text) => a.add(None::<String>),
                Val::Null(Ty::Blob) => a.add(None::<Vec<u8>>),
                Val::Null(Ty::Any) => a.add(AnyNull),
            };
            r.map_err(|e| StoreError::Database(format!("bind: {e}")))?;
        }
        let mut held = self.conn.borrow_mut();
        let conn = held.as_mut().ok_or_else(gone)?;
        self.rt.block_on(async {
            let mut rows = Vec::new();
            let mut changed = 0;
            #[allow(deprecated)]
            let mut s = sqlx::query_with(AssertSqlSafe(sql.to_string()), a).fetch_many(&mut **conn);
            let in_sql = |e: sqlx::Error| {
                let head: String = sql
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(120)
                    .collect();
                StoreError::Database(format!("{e} (in: {head})"))
            };
            while let Some(item) = s.try_next().await.map_err(in_sql)? {
                match item {
                    sqlx::Either::Left(done) => changed += done.rows_affected(),
                    sqlx::Either::Right(row) => rows.push(row),
                }
            }
            Ok((rows, changed))
        })
    }
}

/// A NULL whose type PostgreSQL infers from where it is used.
struct AnyNull;

impl sqlx::Type<Postgres> for AnyNull {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(0))
    }
}

impl sqlx::Encode<'_, Postgres> for AnyNull {
    fn encode_by_ref(
        &self,
        _buf: &mut sqlx::postgres::PgArgumentBuffer,
    ) -> std::result::Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
        Ok(sqlx::encode::IsNull::Yes)
    }
}

/// SQLite's parameters (`?N`, `?`) as PostgreSQL's (`$N`); quoted text and
/// identifiers are left alone. A bare `?` takes the number after the
/// largest used so far, as in SQLite. Also returns the largest number.
pub(crate) fn pg_sql(sql: &str) -> (String, usize) {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut max = 0u32;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                let n = match digits.parse::<u32>() {
                    Ok(n) => n,
                    Err(_) => max + 1,
                };
                max = max.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            c => out.push(c),
        }
    }
    (out, max as usize)
}

/// Decodes PostgreSQL's binary `NUMERIC` (sums of `BIGINT` columns are
/// one): base-10000 digits with a weight and a sign.
fn numeric(bytes: &[u8]) -> Result<Val> {
    let word = |i: usize| -> Result<i16> {
        bytes
            .get(i * 2..i * 2 + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| StoreError::Corrupt("a NUMERIC value is cut short".into()))
    };
    let ndigits = usize::try_from(word(0)?).unwrap_or(0);
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let scale = word(3)?;
    if sign == 0xC000 {
        return Ok(Val::F64(f64::NAN));
    }
    let mut v = 0f64;
    let mut integral = true;
    for i in 0..ndigits {
        let d = f64::from(word(4 + i)?);
        let exp = weight - i as i32;
        if exp < 0 && d != 0.0 {
            integral = false;
        }
        v += d * 10000f64.powi(exp);
    }
    if sign == 0x4000 {
        v = -v;
    }
    Ok(if integral && scale == 0 && v.abs() < 9.0e15 {
        Val::I64(v as i64)
    } else {
        Val::F64(v)
    })
}

/// Column `idx` of a PostgreSQL row as a [`Val`].
fn pg_val(row: &PgRow, idx: usize) -> Result<Val> {
    let raw = row.try_get_raw(idx).map_err(pg_err)?;
    if raw.is_null() {
        return Ok(Val::Null(Ty::Any));
    }
    let ty = raw.type_info().name().to_string();
    let got = |e: sqlx::Error| StoreError::Corrupt(format!("column {idx} ({ty}): {e}"));
    Ok(match ty.as_str() {
        "INT8" => Val::I64(row.try_get::<i64, _>(idx).map_err(got)?),
        "INT4" => Val::I64(i64::from(row.try_get::<i32, _>(idx).map_err(got)?)),
        "INT2" => Val::I64(i64::from(row.try_get::<i16, _>(idx).map_err(got)?)),
        "BOOL" => Val::I64(i64::from(row.try_get::<bool, _>(idx).map_err(got)?)),
        "FLOAT8" => Val::F64(row.try_get::<f64, _>(idx).map_err(got)?),
        "FLOAT4" => Val::F64(f64::from(row.try_get::<f32, _>(idx).map_err(got)?)),
        "NUMERIC" => {
            let bytes = raw
                .as_bytes()
                .map_err(|e| StoreError::Corrupt(format!("column {idx} (NUMERIC): {e}")))?;
            numeric(bytes)?
        }
        "BYTEA" => Val::Blob(row.try_get::<Vec<u8>, _>(idx).map_err(got)?),
        _ => Val::Text(row.try_get::<String, _>(idx).map_err(got)?),
    })
}

impl<'a> RawDb<'a> {
    /// Whether this is a PostgreSQL connection.
    pub(crate) fn is_pg(&self) -> bool {
        matches!(self, RawDb::Pg(_))
    }

    /// Runs SQL that returns no rows (`BEGIN`, `COMMIT`, a `PRAGMA`, …),
    /// in the backend's own terms (see the module comment).
    pub(crate) fn exec(&self, sql: &str) -> Result<()> {
        match self {
            RawDb::Lite(db) => db.exec(sql),
            RawDb::Pg(db) => {
                let t = sql.trim();
                if t.len() >= 6 && t[..6].eq_ignore_ascii_case("PRAGMA") {
                    Ok(())
                } else if t.eq_ignore_ascii_case("BEGIN IMMEDIATE") {
                    db.batch(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                    ))
                } else if t.eq_ignore_ascii_case("BEGIN") {
                    db.batch("BEGIN ISOLATION LEVEL REPEATABLE READ")
                } else {
                    db.batch(sql)
                }
            }
        }
    }

    /// Whether the table `name` exists.
    pub(crate) fn table_exists(&self, name: &str) -> Result<bool> {
        let sql = if self.is_pg() {
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?1"
        } else {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1"
        };
        let rows = self.fetch(&query(sql).bind(name))?;
        Ok(rows
            .first()
            .map(|r| get::<i64>(r, 0))
            .transpose()?
            .unwrap_or(0)
            > 0)
    }

    /// Runs several statements without parameters (a migration).
    pub(crate) fn exec_batch(&self, sql: &str) -> Result<()> {
        match self {
            RawDb::Lite(db) => db.exec_batch(sql),
            RawDb::Pg(db) => db.batch(sql),
        }
    }

    /// Runs `f` in a write transaction: committed when it returns `Ok`,
    /// rolled back when it fails.
    pub(crate) fn immediate<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.immediate_keyed(WRITE_LOCK, f)
    }

    /// Begins a write transaction that, on PostgreSQL, takes the advisory
    /// lock `key` instead of the store's write lock (SQLite: the file's
    /// write lock, as `BEGIN IMMEDIATE`).
    pub(crate) fn begin_keyed(&self, key: i64) -> Result<()> {
        match self {
            RawDb::Lite(db) => db.exec("BEGIN IMMEDIATE"),
            RawDb::Pg(db) => db.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})")),
        }
    }

    /// [`RawDb::immediate`] under the advisory lock `key` (see
    /// [`RawDb::begin_keyed`]).
    pub(crate) fn immediate_keyed<T>(&self, key: i64, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.begin_keyed(key)?;
        match f() {
            Ok(v) => {
                self.exec("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.exec("ROLLBACK");
                Err(e)
            }
        }
    }

    /// Runs `f` in a read transaction (one consistent view).
    pub(crate) fn read<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.exec("BEGIN")?;
        let out = f();
        // a read transaction: ending it cannot lose anything
        let end = self.exec(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
        let v = out?;
        end?;
        Ok(v)
    }

    /// Prepares one statement (SQLite syntax).
    pub(crate) fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        Ok(match self {
            RawDb::Lite(db) => Stmt::Lite(db.prepare(sql)?),
            RawDb::Pg(db) => {
                let (sql, params) = pg_sql(sql);
                Stmt::Pg(PgStmt {
                    db,
                    sql,
                    params,
                    args: Vec::new(),
                    rows: Vec::new(),
                    pos: 0,
                    ran: false,
                    changed: 0,
                })
            }
        })
    }

    /// Runs `q`: its rows, read whole, and the rows it changed.
    /// Values bound beyond the statement's parameters are ignored.
    pub(crate) fn run(&self, q: &Q) -> Result<(Vec<Row>, u64)> {
        let mut st = self.prepare(&q.sql)?;
        let n = st.param_count();
        for (i, v) in q.args.iter().take(n).enumerate() {
            st.bind(i as c_int + 1, v)?;
        }
        let mut rows = Vec::new();
        while st.step()? {
            rows.push(st.values()?);
        }
        let changed = st.changed();
        Ok((rows, changed))
    }

    /// The rows of `q`.
    pub(crate) fn fetch(&self, q: &Q) -> Result<Vec<Row>> {
        self.run(q).map(|(rows, _)| rows)
    }

    /// Runs `q` for its effect: the rows it changed.
    pub(crate) fn execute(&self, q: &Q) -> Result<u64> {
        self.run(q).map(|(_, n)| n)
    }
}

/// A statement being run.
pub(crate) enum Stmt<'a> {
    Lite(LiteStmt<'a>),
    Pg(PgStmt<'a>),
}

/// A PostgreSQL statement: parameters are collected, and the first step
/// runs it and keeps its rows.
pub(crate) struct PgStmt<'a> {
    db: &'a PgDb<'a>,
    sql: String,
    /// The largest parameter number the statement uses.
    params: usize,
    args: Vec<Val>,
    rows: Vec<PgRow>,
    /// The row `step` is on, plus one (0 before the first).
    pos: usize,
    ran: bool,
    changed: u64,
}

impl PgStmt<'_> {
    fn set(&mut self, idx: c_int, v: Val) -> Result<()> {
        let i = usize::try_from(idx - 1)
            .map_err(|_| StoreError::Database(format!("bind: no parameter {idx}")))?;
        if self.args.len() <= i {
            self.args.resize(i + 1, Val::Null(Ty::Any));
        }
        self.args[i] = v;
        Ok(())
    }

    fn col(&self, col: c_int) -> Result<Val> {
        let row = self
            .pos
            .checked_sub(1)
            .and_then(|p| self.rows.get(p))
            .ok_or_else(|| StoreError::Database("a column read with no current row".into()))?;
        let idx =
            usize::try_from(col).map_err(|_| StoreError::Database(format!("no column {col}")))?;
        pg_val(row, idx)
    }
}

impl Stmt<'_> {
    /// Binds a value (1-based).
    pub(crate) fn bind(&mut self, idx: c_int, v: &Val) -> Result<()> {
        match self {
            Stmt::Lite(st) => match v {
                Val::I64(i) => st.bind_i64(idx, *i),
                Val::F64(f) => st.bind_f64(idx, *f),
                Val::Text(s) => st.bind_text(idx, s),
                Val::Blob(b) => st.bind_blob(idx, b),
                Val::Null(_) => st.bind_null(idx),
            },
            Stmt::Pg(st) => st.set(idx, v.clone()),
        }
    }

    pub(crate) fn bind_i64(&mut self, idx: c_int, v: i64) -> Result<()> {
        match self {
            Stmt::Lite(st) => st.bind_i64(idx, v),
            Stmt::Pg(st) => st.set(idx, Val::I64(v)),
        }
    }

    pub(crate) fn bind_text(&mut self, idx: c_int, v: &str) -> Result<()> {
        match self {
            Stmt::Lite(st) => st.bind_text(idx, v),
            Stmt::Pg(st) => st.set(idx, Val::Text(v.to_string())),
        }
    }

    pub(crate) fn bind_blob(&mut self, idx: c_int, v: &[u8]) -> Result<()> {
        match self {
            Stmt::Lite(st) => st.bind_blob(idx, v),
            Stmt::Pg(st) => st.set(idx, Val::Blob(v.to_vec())),
        }
    }

    /// Binds NULL; PostgreSQL infers its type from the statement.
    pub(crate) fn bind_null(&mut self, idx: c_int) -> Result<()> {
        match self {
            Stmt::Lite(st) => st.bind_null(idx),
            Stmt::Pg(st) => st.set(idx, Val::Null(Ty::Any)),
        }
    }

    /// Binds optional text (NULL for `None`).
    pub(crate) fn bind_opt_text(&mut self, idx: c_int, v: Option<&str>) -> Result<()> {
        match v {
            Some(t) => self.bind_text(idx, t),
            None => self.bind(idx, &Val::Null(Ty::Text)),
        }
    }

    /// Makes the statement ready to run again with new bindings.
    pub(crate) fn reset(&mut self) -> Result<()> {
        match self {
            Stmt::Lite(st) => st.reset(),
            Stmt::Pg(st) => {
                st.rows.clear();
                st.pos = 0;
                st.ran = false;
                st.args.clear();
                Ok(())
            }
        }
    }

    /// Advances to the next row: `true` while there is one.
    pub(crate) fn step(&mut self) -> Result<bool> {
        match self {
            Stmt::Lite(st) => st.step(),
            Stmt::Pg(st) => {
                if !st.ran {
                    let n = st.args.len().min(st.params);
                    let (rows, changed) = st.db.run(&st.sql, &st.args[..n])?;
                    st.rows = rows;
                    st.changed = changed;
                    st.ran = true;
                    st.pos = 0;
                }
                if st.pos < st.rows.len() {
                    st.pos += 1;
                    Ok(true)
                } else {
                    Ok(false)
                }
            }
        }
    }

    /// The number of parameters the statement takes.
    pub(crate) fn param_count(&self) -> usize {
        match self {
            Stmt::Lite(st) => st.param_count(),
            Stmt::Pg(st) => st.params,
        }
    }

    /// Rows the last run changed (inserted, updated or deleted).
    pub(crate) fn changed(&self) -> u64 {
        match self {
            Stmt::Lite(st) => st.changes(),
            Stmt::Pg(st) => st.changed,
        }
    }

    /// Every column of the current row.
    pub(crate) fn values(&self) -> Result<Row> {
        match self {
            Stmt::Lite(st) => (0..st.column_count()).map(|c| st.value(c)).collect(),
            Stmt::Pg(st) => {
                let n = st
                    .pos
                    .checked_sub(1)
                    .and_then(|p| st.rows.get(p))
                    .map(|r| r.columns().len())
                    .unwrap_or(0);
                (0..n).map(|c| st.col(c as c_int)).collect()
            }
        }
    }

    fn pg_opt<T: FromVal>(st: &PgStmt<'_>, col: c_int) -> Result<Option<T>> {
        Option::<T>::from_val(&st.col(col)?)
    }

    fn required<T>(v: Option<T>, col: c_int) -> Result<T> {
        v.ok_or_else(|| StoreError::Corrupt(format!("unexpected NULL in column {col}")))
    }

    pub(crate) fn i64(&self, col: c_int) -> Result<i64> {
        match self {
            Stmt::Lite(st) => st.i64(col),
            Stmt::Pg(st) => Self::required(Self::pg_opt(st, col)?, col),
        }
    }

    pub(crate) fn opt_i64(&self, col: c_int) -> Result<Option<i64>> {
        match self {
            Stmt::Lite(st) => st.opt_i64(col),
            Stmt::Pg(st) => Self::pg_opt(st, col),
        }
    }

    pub(crate) fn f64(&self, col: c_int) -> Result<f64> {
        match self {
            Stmt::Lite(st) => st.f64(col),
            Stmt::Pg(st) => Self::required(Self::pg_opt(st, col)?, col),
        }
    }

    pub(crate) fn opt_f64(&self, col: c_int) -> Result<Option<f64>> {
        match self {
            Stmt::Lite(st) => st.opt_f64(col),
            Stmt::Pg(st) => Self::pg_opt(st, col),
        }
    }

    pub(crate) fn text(&self, col: c_int) -> Result<String> {
        match self {
            Stmt::Lite(st) => st.text(col),
            Stmt::Pg(st) => Self::required(Self::pg_opt(st, col)?, col),
        }
    }

    pub(crate) fn opt_text(&self, col: c_int) -> Result<Option<String>> {
        match self {
            Stmt::Lite(st) => st.opt_text(col),
            Stmt::Pg(st) => Self::pg_opt(st, col),
        }
    }

    /// A blob column (NULL reads as empty).
    pub(crate) fn blob(&self, col: c_int) -> Result<Vec<u8>> {
        match self {
            Stmt::Lite(st) => st.blob(col),
            Stmt::Pg(st) => Ok(Self::pg_opt(st, col)?.unwrap_or_default()),
        }
    }

    pub(crate) fn opt_blob(&self, col: c_int) -> Result<Option<Vec<u8>>> {
        match self {
            Stmt::Lite(st) => st.opt_blob(col),
            Stmt::Pg(st) => Self::pg_opt(st, col),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_as_sqlite_numbers_them() {
        let sql = |s: &str| pg_sql(s).0;
        assert_eq!(sql("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(
            sql("a = ?1 OR b = ?1 AND c = ?2"),
            "a = $1 OR b = $1 AND c = $2"
        );
        assert_eq!(sql("a = ?2, b = ?"), "a = $2, b = $3");
        assert_eq!(sql("x = '?' AND \"q?\" = ?"), "x = '?' AND \"q?\" = $1");
        assert_eq!(pg_sql("a = ?3").1, 3);
    }

    #[test]
    fn numeric_sums_decode() {
        // 123456789 = [1, 2345, 6789] weight 2
        let mut b = Vec::new();
        for w in [3i16, 2, 0, 0, 1, 2345, 6789] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric(&b).ok(), Some(Val::I64(123_456_789)));
        // -0.5 = [5000] weight -1, negative, scale 1
        let mut b = Vec::new();
        for w in [1i16, -1, 0x4000, 1, 5000] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric(&b).ok(), Some(Val::F64(-0.5)));
        // zero has no digits
        let mut b = Vec::new();
        for w in [0i16, 0, 0, 0] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        assert_eq!(numeric(&b).ok(), Some(Val::I64(0)));
    }

    #[test]
    fn lenient_reads() {
        assert_eq!(get::<i64>(&vec![Val::I64(3)], 0).ok(), Some(3));
        assert_eq!(get::<f64>(&vec![Val::I64(3)], 0).ok(), Some(3.0));
        assert_eq!(
            get::<Option<i64>>(&vec![Val::Null(Ty::Any)], 0).ok(),
            Some(None)
        );
        assert!(get::<i64>(&vec![Val::Null(Ty::Any)], 0).is_err());
        assert!(get::<String>(&vec![Val::I64(1)], 0).is_err());
    }
}
