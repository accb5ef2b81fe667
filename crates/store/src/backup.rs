//! Backups of a live store, and their verification.
//!
//! A backup is SQLite's `VACUUM INTO` on the store's own connection: one read
//! transaction, so the copy is the store as of one commit (an import holds
//! its write transaction for a whole file: a backup holds every file of an
//! import or none of it), while other processes go on reading and writing
//! (WAL readers do not block writers). The copy is written under a temporary
//! name beside the target, synced, and only then linked to the target name,
//! which must not exist: a crash leaves at most a stray temporary file, never
//! a half copy under the name asked for, and an existing file is never
//! overwritten. The copy is a plain (rollback-journal) SQLite file with no
//! `-wal` or `-shm` beside it.
//!
//! Nothing else is copied except the store's secret (`<db>.secret`), when
//! there is one: it goes beside the copy as `<FILE>.secret`, mode 0600. The
//! snapshot cache (`<db>.snapshot`) is disposable and rebuilt on demand.
//!
//! [`verify_backup`] opens a copy read-only (never migrating or otherwise
//! changing it) and checks what can be checked without the live store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AssertSqlSafe, Connection, Row, SqliteConnection};

use crate::migrate::{MIGRATIONS, checksum, latest};
use crate::{Result, SqliteStore, StoreError};

/// What `backup_into` wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupReport {
    /// The backup file, as given.
    pub out: String,
    /// The store file that was copied.
    pub source: String,
    /// Size of the copy in bytes.
    pub bytes: u64,
    /// Wall time of the backup.
    pub seconds: f64,
    /// Rows per table, counted in the copy.
    pub tables: BTreeMap<String, i64>,
    /// Where the store's secret was copied (`<out>.secret`), if it has one.
    pub secret: Option<String>,
    /// Where the audit trail was copied (`<out>.audit`), with its records.
    pub audit: Option<String>,
}

/// What `verify_backup` found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackupCheck {
    /// The file checked.
    pub file: String,
    /// No problem found.
    pub ok: bool,
    /// `PRAGMA integrity_check`: `ok`, or its messages.
    pub integrity: String,
    /// Rows reported by `PRAGMA foreign_key_check`.
    pub foreign_key_violations: i64,
    /// Newest migration applied to the copy (`None`: no migration history).
    pub schema_version: Option<i64>,
    /// Newest migration this build knows.
    pub supported_version: i64,
    /// Rows per table.
    pub tables: BTreeMap<String, i64>,
    /// Every problem found, in words (empty when `ok`).
    pub problems: Vec<String>,
    /// The audit trail beside the copy (`<file>.audit`): its chain check,
    /// or `None` when there is none beside it.
    pub audit_chain: Option<String>,
}

/// Where the secret of the store at `db` lives: `<db>.secret`.
pub fn secret_path(db: &Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(".secret");
    PathBuf::from(s)
}

fn backup_err(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Backup {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

/// A file that is removed on drop unless kept.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// A fresh, unused name beside `target`.
    fn beside(dir: &Path, target_name: &str, what: &str) -> TempFile {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        TempFile {
            path: dir.join(format!(
                ".{target_name}.{what}-{}-{nanos}.tmp",
                std::process::id()
            )),
            keep: false,
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
            // VACUUM INTO writes without a journal; remove one all the same
            let mut j = self.path.as_os_str().to_owned();
            j.push("-journal");
            let _ = std::fs::remove_file(PathBuf::from(j));
        }
    }
}

/// Gives the finished `tmp` the name `dest`, refusing when `dest` exists.
/// A hard link is atomic and never replaces anything; where the file system
/// has none, a rename after a last check.
fn publish(tmp: &mut TempFile, dest: &Path) -> Result<()> {
    match std::fs::hard_link(&tmp.path, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(backup_err(
            dest,
            "already exists (it appeared during the backup); left untouched",
        )),
        Err(_) => {
            if dest.symlink_metadata().is_ok() {
                return Err(backup_err(
                    dest,
                    "already exists (it appeared during the backup); left untouched",
                ));
            }
            std::fs::rename(&tmp.path, dest).map_err(|e| backup_err(dest, e.to_string()))?;
            tmp.keep = true;
            Ok(())
        }
    }
}

fn sync_file(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| backup_err(path, format!("sync: {e}")))
}

fn sync_dir(dir: &Path) {
    // directory fsync makes the new names durable; not every platform
    // allows opening a directory, and the data itself is synced already
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Copies the secret to a new file of mode 0600.
fn copy_secret(from: &Path, to: &Path) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let err = |e: std::io::Error| backup_err(to, format!("copying the secret: {e}"));
    let mut src = File::open(from).map_err(err)?;
    let mut dst = opts.open(to).map_err(err)?;
    std::io::copy(&mut src, &mut dst).map_err(err)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        dst.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    dst.sync_all().map_err(err)
}

impl SqliteStore {
    /// Writes a consistent copy of the store to `out` (which must not
    /// exist) with `VACUUM INTO`, while other connections and processes go
    /// on reading and writing. Also copies `<db>.secret` to `<out>.secret`
    /// (mode 0600) when the store has one; nothing else.
    ///
    /// Restoring is copying the backup to a new path and opening that.
    pub fn backup_into(&self, out: &Path) -> Result<BackupReport> {
        let started = Instant::now();
        if out.symlink_metadata().is_ok() {
            return Err(backup_err(
                out,
                "already exists; a backup never overwrites a file (choose a new name)",
            ));
        }
        let name = out
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| backup_err(out, "not a file name (or not UTF-8)"))?;
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // absolute, so SQLite never reads the name as a `file:` URI
        let dir = std::fs::canonicalize(parent)
            .map_err(|e| backup_err(out, format!("directory {}: {e}", parent.display())))?;
        let source = self.main_file()?;
        let secret_src = source.as_deref().map(secret_path).filter(|p| p.is_file());
        let secret_out = secret_path(out);
        if secret_src.is_some() && secret_out.symlink_metadata().is_ok() {
            return Err(backup_err(
                &secret_out,
                "already exists; a backup never overwrites a file (choose a new name)",
            ));
        }

        let mut tmp = TempFile::beside(&dir, name, "backup");
        let tmp_name = tmp
            .path
            .to_str()
            .ok_or_else(|| backup_err(out, "the directory's path is not UTF-8"))?
            .to_owned();
        self.with_raw(|db| {
            // the file name is a bound parameter: no quoting to get wrong
            let mut st = db.prepare("VACUUM INTO ?1")?;
            st.bind_text(1, &tmp_name)?;
            while st.step()? {}
            Ok(())
        })
        .map_err(|e| backup_err(out, format!("VACUUM INTO failed: {e}")))?;
        // SQLite does not sync the file VACUUM INTO writes
        sync_file(&tmp.path)?;
        let tables = {
            let mut ro = ReadOnly::open(&tmp.path).map_err(|e| backup_err(out, e))?;
            let mut problems = Vec::new();
            let t = ro.table_counts(&mut problems);
            ro.close();
            if !problems.is_empty() {
                return Err(backup_err(out, problems.join("; ")));
            }
            t
        };
        let bytes = std::fs::metadata(&tmp.path)
            .map_err(|e| backup_err(out, e.to_string()))?
            .len();

        // the secret first: when `out` exists, the backup is complete
        let mut secret_published = false;
        if let Some(src) = &secret_src {
            let mut t = TempFile::beside(&dir, name, "secret");
            copy_secret(src, &t.path)?;
            publish(&mut t, &secret_out)?;
            secret_published = true;
        }
        if let Err(e) = publish(&mut tmp, out) {
            if secret_published {
                let _ = std::fs::remove_file(&secret_out);
            }
            return Err(e);
        }
        sync_dir(&dir);
        // the audit trail beside the store, copied the same way (after the
        // store: it may hold a few records newer than the store's copy)
        let mut audit = None;
        if let Some(src) = &source {
            let trail = crate::audit::audit_path(src);
            if trail.exists() {
                let to = crate::audit::audit_path(out);
                let log = crate::audit::AuditLog::open(&trail, false)?;
                let n = log.backup_into(&to)?;
                audit = Some(format!("{} ({n} records)", to.display()));
            }
        }
        Ok(BackupReport {
            out: out.display().to_string(),
            source: source.map(|p| p.display().to_string()).unwrap_or_default(),
            bytes,
            seconds: started.elapsed().as_secs_f64(),
            tables,
            secret: secret_src.map(|_| secret_out.display().to_string()),
            audit,
        })
    }

    /// The file of the main database (`None` for an in-memory store).
    fn main_file(&self) -> Result<Option<PathBuf>> {
        self.with_raw(|db| {
            let mut st = db.prepare("PRAGMA database_list")?;
            while st.step()? {
                if st.text(1)? == "main" {
                    let f = st.opt_text(2)?.unwrap_or_default();
                    return Ok((!f.is_empty()).then(|| PathBuf::from(f)));
                }
            }
            Ok(None)
        })
    }
}

/// A read-only connection that never writes to the file, with its runtime.
struct ReadOnly {
    rt: tokio::runtime::Runtime,
    conn: Option<SqliteConnection>,
}

impl ReadOnly {
    fn open(path: &Path) -> std::result::Result<ReadOnly, String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let side = |suffix: &str| {
            let mut s = path.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s).exists()
        };
        // With no journal or WAL beside it, the file is all there is: open
        // it immutable, so SQLite creates no `-shm`/`-wal` and takes no lock.
        let immutable = !side("-wal") && !side("-journal");
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .read_only(true)
            .create_if_missing(false)
            .immutable(immutable)
            .foreign_keys(false)
            .busy_timeout(Duration::from_secs(30));
        let conn = rt
            .block_on(SqliteConnection::connect_with(&opts))
            .map_err(|e| e.to_string())?;
        Ok(ReadOnly {
            rt,
            conn: Some(conn),
        })
    }

    /// The rows of a query whose columns are read by `f`.
    fn rows<T>(
        &mut self,
        sql: String,
        mut f: impl FnMut(&sqlx::sqlite::SqliteRow) -> std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<Vec<T>, String> {
        let Some(conn) = self.conn.as_mut() else {
            return Err("the connection is closed".into());
        };
        let rows = self
            .rt
            .block_on(sqlx::query(AssertSqlSafe(sql)).fetch_all(conn))
            .map_err(|e| e.to_string())?;
        rows.iter()
            .map(|r| f(r).map_err(|e| e.to_string()))
            .collect()
    }

    /// Rows of every table; a table that cannot be counted is a problem.
    fn table_counts(&mut self, problems: &mut Vec<String>) -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        let names = match self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name".into(),
            |r| r.try_get::<String, _>(0),
        ) {
            Ok(n) => n,
            Err(e) => {
                problems.push(format!("cannot list the tables: {e}"));
                return out;
            }
        };
        for name in names {
            let sql = format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\""));
            match self.rows(sql, |r| r.try_get::<i64, _>(0)) {
                Ok(v) => {
                    out.insert(name, v.first().copied().unwrap_or(0));
                }
                Err(e) => problems.push(format!("cannot count table {name}: {e}")),
            }
        }
        out
    }

    fn close(mut self) {
        if let Some(c) = self.conn.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

/// The SQLite header's facts: the size the file should have, when known.
fn check_header(path: &Path) -> Result<Option<u64>> {
    let mut head = [0u8; 100];
    let mut f = File::open(path).map_err(|e| backup_err(path, e.to_string()))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(backup_err(path, e.to_string())),
        }
    }
    if n < head.len() || &head[..16] != b"SQLite format 3\0" {
        return Err(backup_err(
            path,
            "not a SQLite database (no SQLite header): not an infogap store or backup",
        ));
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65536u64,
        p => u64::from(p),
    };
    let pages = u64::from(u32::from_be_bytes([head[28], head[29], head[30], head[31]]));
    // the page count is valid when the change counter matches "version valid for"
    let valid = head[24..28] == head[92..96];
    Ok((valid && pages > 0).then_some(page_size * pages))
}

/// Checks a backup (or any store file) without changing it: SQLite's
/// integrity and foreign-key checks, the schema version against this build,
/// and the row counts of every table. Problems are listed in the report
/// (`ok` false); an error means the file could not be read as SQLite at all.
pub fn verify_backup(path: &Path) -> Result<BackupCheck> {
    if !path.is_file() {
        return Err(backup_err(
            path,
            if path.exists() {
                "not a file"
            } else {
                "no such file"
            },
        ));
    }
    let expected = check_header(path)?;
    let mut problems = Vec::new();
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let len = std::fs::metadata(path)
        .map_err(|e| backup_err(path, e.to_string()))?
        .len();
    if let Some(want) = expected
        && len < want
        && !PathBuf::from(wal).exists()
    {
        problems.push(format!(
            "truncated: the file has {len} bytes, its header says {want}"
        ));
    }
    let mut ro = ReadOnly::open(path).map_err(|e| backup_err(path, e))?;

    let integrity = match ro.rows("PRAGMA integrity_check".into(), |r| {
        r.try_get::<String, _>(0)
    }) {
        Ok(msgs) if msgs.len() == 1 && msgs[0] == "ok" => "ok".to_string(),
        Ok(msgs) => {
            let shown: Vec<&str> = msgs.iter().take(10).map(String::as_str).collect();
            let more = msgs.len().saturating_sub(shown.len());
            let mut s = shown.join("; ");
            if more > 0 {
                s.push_str(&format!("; … {more} more"));
            }
            s
        }
        Err(e) => format!("error: {e}"),
    };
    if integrity != "ok" {
        problems.push(format!("integrity check failed: {integrity}"));
    }

    let foreign_key_violations = match ro.rows("PRAGMA foreign_key_check".into(), |_| Ok(())) {
        Ok(v) => v.len() as i64,
        Err(e) => {
            problems.push(format!("foreign key check failed: {e}"));
            0
        }
    };
    if foreign_key_violations > 0 {
        problems.push(format!(
            "{foreign_key_violations} row(s) point at rows that do not exist (PRAGMA foreign_key_check)"
        ));
    }

    let mut schema_version = None;
    match ro.rows(
        "SELECT version, checksum FROM schema_migrations ORDER BY version".into(),
        |r| Ok((r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?)),
    ) {
        Err(e) => problems.push(format!("no migration history ({e}): not an infogap store")),
        Ok(applied) => {
            schema_version = applied.iter().map(|(v, _)| *v).max();
            match schema_version {
                None => problems.push("no migration applied: not an infogap store".into()),
                Some(v) if v > latest() => problems.push(format!(
                    "schema version {v} is newer than this infogap supports ({}): check it with a newer infogap",
                    latest()
                )),
                Some(_) => {}
            }
            for (v, sum) in &applied {
                if let Some(m) = MIGRATIONS.iter().find(|m| m.version == *v)
                    && *sum != checksum(m.sql)
                {
                    problems.push(format!(
                        "migration {v} ({}) differs from this infogap's",
                        m.name
                    ));
                }
            }
        }
    }

    let tables = ro.table_counts(&mut problems);
    ro.close();
    let trail = crate::audit::audit_path(path);
    let audit_chain = if trail.exists() {
        match crate::audit::AuditLog::open(&trail, false).and_then(|l| l.verify()) {
            Ok(c) if c.intact() => Some(format!(
                "intact: {} records, head {}",
                c.entries, c.head_hash
            )),
            Ok(c) => {
                let msg = format!(
                    "audit trail {} broken at record {}: {}",
                    trail.display(),
                    c.first_bad.unwrap_or(0),
                    c.reason.clone().unwrap_or_default()
                );
                problems.push(msg.clone());
                Some(msg)
            }
            Err(e) => {
                let msg = format!("audit trail {} unreadable: {e}", trail.display());
                problems.push(msg.clone());
                Some(msg)
            }
        }
    } else {
        None
    };
    Ok(BackupCheck {
        file: path.display().to_string(),
        ok: problems.is_empty(),
        integrity,
        foreign_key_violations,
        schema_version,
        supported_version: latest(),
        tables,
        problems,
        audit_chain,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;

    fn store_with_rows(dir: &Path) -> (SqliteStore, PathBuf) {
        let db = dir.join("live.db");
        let store = SqliteStore::open(&db).expect("open");
        let mut tx = store.begin().expect("begin");
        tx.upsert_source("crm", "customers", "crm").expect("source");
        tx.set_setting("k", "v").expect("setting");
        tx.commit().expect("commit");
        (store, db)
    }

    #[test]
    fn a_backup_is_a_verified_copy_and_never_overwrites() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, _db) = store_with_rows(d.path());
        let out = d.path().join("b.db");
        let rep = store.backup_into(&out).expect("backup");
        assert_eq!(rep.tables.get("sources"), Some(&1));
        assert_eq!(rep.secret, None);
        assert!(rep.bytes > 0 && rep.bytes == std::fs::metadata(&out).expect("meta").len());
        // no temporary file left behind
        let left: Vec<String> = std::fs::read_dir(d.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");

        let before = std::fs::read(&out).expect("read");
        let check = verify_backup(&out).expect("verify");
        assert!(check.ok, "{check:?}");
        assert_eq!(check.integrity, "ok");
        assert_eq!(check.schema_version, Some(latest()));
        assert_eq!(check.tables, rep.tables);
        assert_eq!(check.audit_chain, None);
        // verifying changed nothing and created nothing beside the copy
        assert_eq!(std::fs::read(&out).expect("read"), before);
        for s in ["-wal", "-shm", "-journal"] {
            let mut p = out.as_os_str().to_owned();
            p.push(s);
            assert!(!PathBuf::from(p).exists(), "{s}");
        }

        let err = store.backup_into(&out).expect_err("exists");
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&out).expect("read"), before);
    }

    #[test]
    fn the_secret_goes_beside_the_copy_private() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, db) = store_with_rows(d.path());
        std::fs::write(secret_path(&db), b"s3cret").expect("secret");
        let out = d.path().join("b.db");
        let rep = store.backup_into(&out).expect("backup");
        let copied = secret_path(&out);
        assert_eq!(rep.secret.as_deref(), Some(copied.to_str().expect("utf8")));
        assert_eq!(std::fs::read(&copied).expect("read"), b"s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&copied)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // an existing <out>.secret is not overwritten either
        let out2 = d.path().join("c.db");
        std::fs::write(secret_path(&out2), b"other").expect("write");
        assert!(store.backup_into(&out2).is_err());
        assert!(!out2.exists());
        assert_eq!(std::fs::read(secret_path(&out2)).expect("read"), b"other");
    }

    #[test]
    fn verify_names_damage_newer_schemas_and_non_databases() {
        let d = tempfile::tempdir().expect("tmp");
        let (store, _db) = store_with_rows(d.path());

        let text = d.path().join("notes.txt");
        std::fs::write(&text, "hello").expect("write");
        let err = verify_backup(&text).expect_err("not sqlite");
        assert!(err.to_string().contains("notes.txt") && err.to_string().contains("not a SQLite"));
        assert!(verify_backup(&d.path().join("missing.db")).is_err());

        // a newer schema: a migration this build does not know
        let newer = d.path().join("newer.db");
        store.backup_into(&newer).expect("backup");
        {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt");
            let opts = SqliteConnectOptions::new().filename(&newer);
            let mut c = rt
                .block_on(SqliteConnection::connect_with(&opts))
                .expect("connect");
            rt.block_on(
                sqlx::query("INSERT INTO schema_migrations VALUES (999, 'future', 'x', 'now')")
                    .execute(&mut c),
            )
            .expect("insert");
            rt.block_on(c.close()).expect("close");
        }
        let check = verify_backup(&newer).expect("verify");
        assert!(!check.ok);
        assert_eq!(check.schema_version, Some(999));
        assert!(
            check.problems.iter().any(|p| p.contains("newer")),
            "{check:?}"
        );

        // a truncated copy
        let cut = d.path().join("cut.db");
        store.backup_into(&cut).expect("backup");
        let bytes = std::fs::read(&cut).expect("read");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("truncate");
        let check = verify_backup(&cut).expect("verify");
        assert!(!check.ok, "{check:?}");
        assert!(
            check.problems.iter().any(|p| p.contains("truncated")),
            "{check:?}"
        );
    }
}
