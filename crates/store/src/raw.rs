//! Bulk reads straight through SQLite's C API, for the snapshot; and the
//! one memory hint the snapshot's large vectors want.
//!
//! Why this exists: sqlx hands every row from its worker thread to the caller
//! through a channel, duplicating each value (`sqlite3_value_dup`) on the way.
//! That costs about 3 µs per row: loading the 1.47M order lines of The
//! Complete Journey took 5 s, all of it in malloc, futexes and copies. Here a
//! prepared statement is stepped on the caller's thread and each column read
//! in place, about 0.2 µs per row. This is the only module with `unsafe`
//! code; every call is on a statement or connection handle this module owns
//! or borrows for its lifetime, and each block says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use libsqlite3_sys as ffi;

use crate::{Result, StoreError};

/// An open SQLite connection, owned: opened and closed here, used by one
/// thread at a time (its owner keeps it behind a mutex).
///
/// Why not sqlx's connection: sqlx drives SQLite from a worker thread and
/// lends the handle out through a lock protocol with that thread; taken
/// for every statement (thousands per import), that protocol was slow and
/// once stalled for good. Every statement here runs on the caller's thread.
pub(crate) struct LiteConn {
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: SQLite is built thread-safe (serialized); the connection moves
// between threads but is used by one at a time (its owner's mutex).
unsafe impl Send for LiteConn {}

impl Drop for LiteConn {
    /// Closes the connection: the last connection to close checkpoints the
    /// WAL and removes it.
    fn drop(&mut self) {
        // SAFETY: the handle was opened here and is closed exactly once;
        // every statement borrowed from it has been finalized (they borrow
        // the connection).
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

impl LiteConn {
    /// Opens the database file at `path` (`:memory:` for one in memory),
    /// creating it when `create`; then runs `setup` (`PRAGMA`s).
    pub(crate) fn open(path: &std::path::Path, create: bool, setup: &str) -> Result<LiteConn> {
        let err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| err("the path holds a NUL byte".into()))?;
        let mut flags = ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_FULLMUTEX;
        if create {
            flags |= ffi::SQLITE_OPEN_CREATE;
        }
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        // SAFETY: `c_path` is NUL-terminated and outlives the call; `db` is
        // an out-pointer; no VFS name.
        let rc = unsafe { ffi::sqlite3_open_v2(c_path.as_ptr(), &mut db, flags, std::ptr::null()) };
        let Some(db) = NonNull::new(db) else {
            return Err(err("out of memory".into()));
        };
        let conn = LiteConn { db };
        if rc != ffi::SQLITE_OK {
            let msg = conn.db().error("open").to_string();
            return Err(err(msg));
        }
        // SAFETY: the handle is live.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            ffi::sqlite3_busy_timeout(db.as_ptr(), 30_000);
        }
        conn.db()
            .exec_batch(setup)
            .map_err(|e| err(e.to_string()))?;
        Ok(conn)
    }

    /// The connection for statements, borrowed.
    pub(crate) fn db(&self) -> LiteDb<'_> {
        LiteDb::new(self.db)
    }
}

/// A borrowed SQLite connection handle.
pub(crate) struct LiteDb<'a> {
    db: NonNull<ffi::sqlite3>,
    _borrow: PhantomData<&'a mut ()>,
}

impl<'a> LiteDb<'a> {
    /// Wraps the raw handle of a locked sqlx connection.
    pub(crate) fn new(db: NonNull<ffi::sqlite3>) -> LiteDb<'a> {
        LiteDb {
            db,
            _borrow: PhantomData,
        }
    }

    fn error(&self, what: &str) -> StoreError {
        // SAFETY: `db` is a live connection handle for 'a; sqlite3_errmsg
        // returns a NUL-terminated string owned by the connection, copied
        // out before any other call on it.
        let msg = unsafe {
            let p = ffi::sqlite3_errmsg(self.db.as_ptr());
            if p.is_null() {
                "unknown error".to_string()
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        StoreError::Database(format!("{what}: {msg}"))
    }

    /// Runs SQL that returns no rows (`BEGIN`, `COMMIT`, …).
    pub(crate) fn exec(&self, sql: &str) -> Result<()> {
        let mut st = self.prepare(sql)?;
        while st.step()? {}
        Ok(())
    }

    /// Runs several statements without parameters (a migration).
    pub(crate) fn exec_batch(&self, sql: &str) -> Result<()> {
        let sql = std::ffi::CString::new(sql)
            .map_err(|_| StoreError::Database("a NUL byte in SQL".into()))?;
        // SAFETY: `db` is live; `sql` is a NUL-terminated string that
        // outlives the call; no callback and no error-message out-pointer.
        let rc = unsafe {
            ffi::sqlite3_exec(
                self.db.as_ptr(),
                sql.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("exec"));
        }
        Ok(())
    }

    /// Prepares one statement.
    pub(crate) fn prepare(&self, sql: &str) -> Result<LiteStmt<'_>> {
        let mut stmt: *mut ffi::sqlite3_stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len())
            .map_err(|_| StoreError::Database("statement too long".into()))?;
        // SAFETY: `db` is live; the SQL pointer and length describe a valid
        // UTF-8 buffer that outlives the call; `stmt` is an out-pointer.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(
                self.db.as_ptr(),
                sql.as_ptr().cast(),
                len,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.error("prepare"));
        }
        let stmt =
            NonNull::new(stmt).ok_or_else(|| StoreError::Database("empty statement".into()))?;
        Ok(LiteStmt { stmt, db: self })
    }
}

/// A prepared statement, finalized on drop.
pub(crate) struct LiteStmt<'a> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: &'a LiteDb<'a>,
}

impl Drop for LiteStmt<'_> {
    fn drop(&mut self) {
        // SAFETY: the statement was prepared by this module and is finalized
        // exactly once, here.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

impl LiteStmt<'_> {
    /// Binds an integer parameter (1-based, as in SQLite).
    pub(crate) fn bind_i64(&mut self, idx: c_int, v: i64) -> Result<()> {
        // SAFETY: the statement is live and not being stepped by anyone else.
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), idx, v) };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("bind"));
        }
        Ok(())
    }

    /// Binds a text parameter (1-based).
    pub(crate) fn bind_text(&mut self, idx: c_int, v: &str) -> Result<()> {
        let len = c_int::try_from(v.len())
            .map_err(|_| StoreError::Database("parameter too long".into()))?;
        // SAFETY: the statement is live; SQLITE_TRANSIENT makes SQLite copy
        // the bytes before the call returns, so `v` need not outlive it.
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt.as_ptr(),
                idx,
                v.as_ptr().cast(),
                len,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("bind"));
        }
        Ok(())
    }

    /// Binds NULL (1-based).
    pub(crate) fn bind_null(&mut self, idx: c_int) -> Result<()> {
        // SAFETY: the statement is live and not being stepped by anyone else.
        let rc = unsafe { ffi::sqlite3_bind_null(self.stmt.as_ptr(), idx) };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("bind"));
        }
        Ok(())
    }

    /// Binds a blob parameter (1-based).
    pub(crate) fn bind_blob(&mut self, idx: c_int, v: &[u8]) -> Result<()> {
        let len = c_int::try_from(v.len())
            .map_err(|_| StoreError::Database("parameter too long".into()))?;
        // SAFETY: the statement is live; SQLITE_TRANSIENT makes SQLite copy
        // the bytes before the call returns.
        let rc = unsafe {
            ffi::sqlite3_bind_blob(
                self.stmt.as_ptr(),
                idx,
                v.as_ptr().cast(),
                len,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("bind"));
        }
        Ok(())
    }

    /// Binds a real parameter (1-based).
    pub(crate) fn bind_f64(&mut self, idx: c_int, v: f64) -> Result<()> {
        // SAFETY: the statement is live and not being stepped by anyone else.
        let rc = unsafe { ffi::sqlite3_bind_double(self.stmt.as_ptr(), idx, v) };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("bind"));
        }
        Ok(())
    }

    /// Rows the statement's last run inserted, updated or deleted.
    pub(crate) fn changes(&self) -> u64 {
        // SAFETY: the connection handle is live for 'a.
        let n = unsafe { ffi::sqlite3_changes64(self.db.db.as_ptr()) };
        u64::try_from(n).unwrap_or(0)
    }

    /// The rowid of the connection's last successful insert.
    pub(crate) fn last_insert_rowid(&self) -> i64 {
        // SAFETY: the connection handle is live for 'a.
        unsafe { ffi::sqlite3_last_insert_rowid(self.db.db.as_ptr()) }
    }

    /// The number of parameters the statement takes.
    pub(crate) fn param_count(&self) -> usize {
        // SAFETY: the statement is live.
        let n = unsafe { ffi::sqlite3_bind_parameter_count(self.stmt.as_ptr()) };
        usize::try_from(n).unwrap_or(0)
    }

    /// Columns of the statement's rows.
    pub(crate) fn column_count(&self) -> c_int {
        // SAFETY: the statement is live.
        unsafe { ffi::sqlite3_column_count(self.stmt.as_ptr()) }
    }

    /// A column of the current row, as the value it holds.
    pub(crate) fn value(&self, col: c_int) -> Result<crate::sql::Val> {
        use crate::sql::{Ty, Val};
        // SAFETY: as in `is_null`.
        let t = unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), col) };
        Ok(match t {
            ffi::SQLITE_NULL => Val::Null(Ty::Any),
            ffi::SQLITE_INTEGER => Val::I64(self.i64(col)?),
            ffi::SQLITE_FLOAT => Val::F64(self.f64(col)?),
            ffi::SQLITE_BLOB => Val::Blob(self.blob(col)?),
            _ => Val::Text(self.text(col)?),
        })
    }

    /// Makes the statement ready to run again with new bindings.
    pub(crate) fn reset(&mut self) -> Result<()> {
        // SAFETY: the statement is live; reset and clear_bindings only
        // touch the statement's own state.
        let rc = unsafe {
            let rc = ffi::sqlite3_reset(self.stmt.as_ptr());
            ffi::sqlite3_clear_bindings(self.stmt.as_ptr());
            rc
        };
        if rc != ffi::SQLITE_OK {
            return Err(self.db.error("reset"));
        }
        Ok(())
    }

    /// Advances to the next row: `true` while there is one.
    pub(crate) fn step(&mut self) -> Result<bool> {
        // SAFETY: the statement is live.
        let rc = unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) };
        match rc {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => Err(self.db.error("step")),
        }
    }

    fn is_null(&self, col: c_int) -> bool {
        // SAFETY: the statement is live and positioned on a row (callers
        // read columns only after `step` returned true).
        unsafe { ffi::sqlite3_column_type(self.stmt.as_ptr(), col) == ffi::SQLITE_NULL }
    }

    /// An integer column that must not be NULL.
    pub(crate) fn i64(&self, col: c_int) -> Result<i64> {
        self.opt_i64(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("unexpected NULL in column {col}")))
    }

    /// A nullable integer column.
    pub(crate) fn opt_i64(&self, col: c_int) -> Result<Option<i64>> {
        if self.is_null(col) {
            return Ok(None);
        }
        // SAFETY: as in `is_null`.
        Ok(Some(unsafe {
            ffi::sqlite3_column_int64(self.stmt.as_ptr(), col)
        }))
    }

    /// A real column that must not be NULL.
    pub(crate) fn f64(&self, col: c_int) -> Result<f64> {
        self.opt_f64(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("unexpected NULL in column {col}")))
    }

    /// A nullable real column.
    pub(crate) fn opt_f64(&self, col: c_int) -> Result<Option<f64>> {
        if self.is_null(col) {
            return Ok(None);
        }
        // SAFETY: as in `is_null`.
        Ok(Some(unsafe {
            ffi::sqlite3_column_double(self.stmt.as_ptr(), col)
        }))
    }

    /// A text column that must not be NULL.
    pub(crate) fn text(&self, col: c_int) -> Result<String> {
        self.opt_text(col)?
            .ok_or_else(|| StoreError::Corrupt(format!("unexpected NULL in column {col}")))
    }

    /// A blob column (NULL reads as empty), copied once.
    pub(crate) fn blob(&self, col: c_int) -> Result<Vec<u8>> {
        // SAFETY: as in `opt_text`: the buffer of sqlite3_column_bytes bytes
        // is valid until the next step and is copied at once.
        Ok(unsafe {
            let p = ffi::sqlite3_column_blob(self.stmt.as_ptr(), col);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), col);
            if p.is_null() || n <= 0 {
                Vec::new()
            } else {
                std::slice::from_raw_parts(p.cast::<u8>(), n as usize).to_vec()
            }
        })
    }

    /// A nullable blob column.
    pub(crate) fn opt_blob(&self, col: c_int) -> Result<Option<Vec<u8>>> {
        if self.is_null(col) {
            return Ok(None);
        }
        self.blob(col).map(Some)
    }

    /// A nullable text column.
    pub(crate) fn opt_text(&self, col: c_int) -> Result<Option<String>> {
        if self.is_null(col) {
            return Ok(None);
        }
        // SAFETY: as in `is_null`. sqlite3_column_text returns a buffer of
        // sqlite3_column_bytes bytes that stays valid until the next step,
        // reset or type conversion on this column; it is copied at once.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.stmt.as_ptr(), col);
            let n = ffi::sqlite3_column_bytes(self.stmt.as_ptr(), col);
            if p.is_null() || n <= 0 {
                return Ok(Some(String::new()));
            }
            std::slice::from_raw_parts(p, n as usize).to_vec()
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("text is not UTF-8: {e}")))
    }
}

/// Asks the kernel to back the spare capacity of `v` with transparent huge
/// pages (`MADV_HUGEPAGE`). Filling 100 MB of order lines otherwise takes
/// 26,000 page faults, a third of loading the snapshot. A hint only: where
/// the kernel says no, nothing changes.
pub(crate) fn advise_huge_pages<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let spare = v.spare_capacity_mut();
        let start = spare.as_mut_ptr() as usize;
        let len = std::mem::size_of_val(spare);
        // only whole huge pages inside the allocation
        let lo = start.div_ceil(HUGE) * HUGE;
        let hi = (start + len) / HUGE * HUGE;
        if hi > lo {
            // SAFETY: [lo, hi) lies inside the vector's own allocation, which
            // outlives the call; MADV_HUGEPAGE changes no contents or
            // mappings, only how future faults are served.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = v;
}

/// Appends `sizes.iter().sum()` elements to `v`, filled in parallel: part
/// `i` (of `sizes[i]` elements) by `fill(i, slots)`, which must write every
/// slot it is given. Each worker touches (and so faults in) its own pages,
/// so the kernel's page zeroing is shared across cores too. On any error
/// nothing is appended.
pub(crate) fn extend_parallel<T: Send, E: Send>(
    v: &mut Vec<T>,
    sizes: &[usize],
    fill: impl Fn(usize, &mut [std::mem::MaybeUninit<T>]) -> std::result::Result<(), E> + Sync,
) -> std::result::Result<(), E> {
    use rayon::prelude::*;
    let total: usize = sizes.iter().sum();
    v.reserve(total);
    let mut rest = &mut v.spare_capacity_mut()[..total];
    let mut parts = Vec::with_capacity(sizes.len());
    for (i, n) in sizes.iter().enumerate() {
        let (head, tail) = rest.split_at_mut(*n);
        parts.push((i, head));
        rest = tail;
    }
    let written: Vec<bool> = parts
        .into_par_iter()
        .map(|(i, slots)| fill(i, slots).map(|()| true))
        .collect::<std::result::Result<_, E>>()?;
    debug_assert!(written.iter().all(|w| *w));
    let len = v.len() + total;
    // SAFETY: `fill` returned Ok for every part, and each part is a distinct
    // sub-slice of the spare capacity; a `fill` that returns Ok has written
    // every slot of its part (the contract above, kept by its one caller,
    // which writes `slots[i]` for every `i` in a loop over `slots.len()`).
    unsafe {
        v.set_len(len);
    }
    Ok(())
}
