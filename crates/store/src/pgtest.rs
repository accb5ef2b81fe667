//! PostgreSQL for tests: a server to run the PostgreSQL half of the test
//! matrix against, and a fresh database per test.
//!
//! The server is `INFOGAP_TEST_PG` (a URL whose database the tests may
//! create databases beside) when set, as `.ci/run` sets it after starting
//! a cluster; else a throwaway cluster this process starts itself from the
//! local PostgreSQL installation (`initdb` on loopback, in a temporary
//! directory, stopped when the process exits). When neither works, the
//! PostgreSQL half of a test says so on stderr, naming the reason, and is
//! not run, unless `INFOGAP_REQUIRE_PG=1`, which turns that into a failure
//! (CI sets it, so the matrix can never be skipped there unnoticed).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The server tests use, or why there is none.
fn server() -> &'static std::result::Result<String, String> {
    static SERVER: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    SERVER.get_or_init(|| match std::env::var("INFOGAP_TEST_PG") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => start_cluster(),
    })
}

/// A database of its own for one test, dropped with it.
pub struct PgDatabase {
    /// The database's URL.
    pub url: String,
    admin: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = admin_sql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// A fresh, empty database, or `None` (with the reason on stderr) when no
/// PostgreSQL server can be had here and `INFOGAP_REQUIRE_PG` is not set.
pub fn database(test: &str) -> Option<PgDatabase> {
    match server() {
        Ok(admin) => {
            static N: AtomicUsize = AtomicUsize::new(0);
            let name = format!(
                "infogap_t{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            );
            if let Err(e) = admin_sql(admin, &format!("CREATE DATABASE {name}")) {
                panic!("{test}: cannot create a test database on PostgreSQL: {e}");
            }
            Some(PgDatabase {
                url: with_database(admin, &name),
                admin: admin.clone(),
                name,
            })
        }
        Err(reason) => {
            if std::env::var("INFOGAP_REQUIRE_PG").is_ok_and(|v| v == "1") {
                panic!("{test}: PostgreSQL is required (INFOGAP_REQUIRE_PG=1) and {reason}");
            }
            eprintln!("NOT RUN on PostgreSQL: {test}: {reason}");
            None
        }
    }
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}

fn admin_sql(url: &str, sql: &str) -> std::result::Result<(), String> {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut c = sqlx::PgConnection::connect(url)
            .await
            .map_err(|e| e.to_string())?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        c.close().await.map_err(|e| e.to_string())
    })
}

/// Where the PostgreSQL programs are: `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`.
fn bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if p.join("initdb").is_file() {
            return Some(p);
        }
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

/// Runs a PostgreSQL program, as the `postgres` user when this process is
/// root (initdb refuses to run as root).
fn run_pg(program: &Path, args: &[&str]) -> std::result::Result<(), String> {
    let root = nix_is_root();
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    // the output goes to a file, not a pipe: a server that pg_ctl starts
    // inherits its descriptors, and a pipe held open by it would keep
    // whoever reads the test's output (cargo) waiting after the test ends
    let log = std::env::temp_dir().join(format!(
        "infogap-pg-{}-{}.out",
        std::process::id(),
        program.file_name().and_then(|n| n.to_str()).unwrap_or("pg")
    ));
    let file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", log.display()))?;
    let status = cmd
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let out = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {}", program.display(), out.trim()))
    }
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid() == 0
    }
}

/// The cluster this process started, stopped at exit.
static CLUSTER: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();

extern "C" fn stop_cluster() {
    if let Some((bin, data)) = CLUSTER.get() {
        let _ = run_pg(
            &bin.join("pg_ctl"),
            &[
                "-D",
                &data.display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
        if let Some(dir) = data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn start_cluster() -> std::result::Result<String, String> {
    let bin = bindir().ok_or(
        "no PostgreSQL here (no initdb: install Debian's postgresql, or set INFOGAP_TEST_PG)",
    )?;
    let dir = std::env::temp_dir().join(format!("infogap-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sock")).map_err(|e| format!("{}: {e}", dir.display()))?;
    if nix_is_root() {
        let ok = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Err("cannot give the cluster directory to the postgres user".into());
        }
    }
    let data = dir.join("data");
    let data_s = data.display().to_string();
    run_pg(
        &bin.join("initdb"),
        &[
            "-D",
            &data_s,
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        ],
    )?;
    let port = free_port().ok_or("no free loopback port")?;
    let opts = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
        dir.join("sock").display()
    );
    let log = dir.join("server.log").display().to_string();
    run_pg(
        &bin.join("pg_ctl"),
        &["-D", &data_s, "-l", &log, "-w", "-o", &opts, "start"],
    )?;
    let _ = CLUSTER.set((bin, data));
    // SAFETY: registering a plain extern "C" function with no captured state.
    #[allow(unsafe_code)]
    unsafe {
        libc::atexit(stop_cluster);
    }
    Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
}

fn free_port() -> Option<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
    l.local_addr().ok().map(|a| a.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_replace_the_url_path() {
        assert_eq!(
            with_database("postgres://u@h:5/postgres", "t1"),
            "postgres://u@h:5/t1"
        );
        assert_eq!(
            with_database("postgres://u@h:5/postgres?sslmode=disable", "t1"),
            "postgres://u@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5", "t1"),
            "postgres://u@h:5/t1"
        );
    }
}
