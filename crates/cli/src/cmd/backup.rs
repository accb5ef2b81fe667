//! `infogap backup`: a consistent copy of the live store, and its check.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use infogap_store::{BackupCheck, BackupReport, SqliteStore, verify_backup};

use crate::Ctx;
use crate::ctx::print_json;

const RESTORE_HELP: &str = "\
A backup is taken while other processes go on reading and writing the store
(SQLite's VACUUM INTO in one read transaction): the copy holds every file of
an import or none of it. It is written under a temporary name and renamed
only when complete; an existing FILE is never overwritten. The store's
secret (<db>.secret), when there is one, is copied to <FILE>.secret (mode
0600); the snapshot cache (<db>.snapshot) is not copied: it is rebuilt.

Restoring: copy the backup (and its .secret, if any) to a new path and use
that as the store; never copy over a store that a process has open:
  infogap backup verify nightly.db
  cp nightly.db restored.db && cp nightly.db.secret restored.db.secret  # if there is a .secret
  infogap --db restored.db stats";

/// `infogap backup`
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = RESTORE_HELP
)]
pub struct BackupArgs {
    /// `verify FILE`: check a backup instead of taking one.
    #[command(subcommand)]
    pub command: Option<BackupCmd>,
    /// Write the copy here (must not exist yet).
    #[arg(long, value_name = "FILE", required = true)]
    pub out: Option<PathBuf>,
    /// Print the report as JSON (out, bytes, seconds, tables, secret).
    #[arg(long)]
    pub json: bool,
}

/// `infogap backup …`
#[derive(Debug, Subcommand)]
pub enum BackupCmd {
    /// Check a backup without changing it: SQLite's integrity and foreign-key
    /// checks, the schema version (not newer than this infogap) and the rows
    /// of every table. Exits non-zero on any problem.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// Print the report as JSON (file, ok, integrity, schema_version, tables, problems).
        #[arg(long)]
        json: bool,
    },
}

/// Runs `infogap backup` / `infogap backup verify`.
pub fn backup(ctx: &Ctx, a: &BackupArgs) -> anyhow::Result<()> {
    match (&a.command, &a.out) {
        (Some(BackupCmd::Verify { file, json }), _) => verify(file, *json),
        (None, Some(out)) => take(ctx, out, a.json),
        (None, None) => anyhow::bail!("give --out FILE (or `infogap backup verify FILE`)"),
    }
}

fn take(ctx: &Ctx, out: &Path, json: bool) -> anyhow::Result<()> {
    let db = ctx.existing_db_path()?;
    if infogap_store::postgres_url(&db).is_some() {
        anyhow::bail!(
            "backup copies a SQLite store; {} is a PostgreSQL store: back it up with pg_dump (or the server's own backups), and keep its key file apart from the dump",
            infogap_store::shown_location(&db)
        );
    }
    let store = SqliteStore::open_with_key(&db, crate::ctx::key_file_from_env().as_deref())
        .with_context(|| format!("opening store {}", db.display()))?;
    let rep = store
        .backup_into(out)
        .with_context(|| format!("backing up {} to {}", db.display(), out.display()))?;
    if json {
        return print_json(&rep);
    }
    print_backup(&rep);
    if let (Some(k), Some(p)) = (store.data_key(), store.key_path()) {
        println!(
            "data key     not copied: personal data in the backup is encrypted with key {} ({}). Keep that file safe apart from the backups; restore with INFOGAP_KEY_FILE={} (or copy it to {}.key)",
            k.id(),
            p.display(),
            p.display(),
            out.display()
        );
    }
    Ok(())
}

fn print_backup(rep: &BackupReport) {
    println!(
        "backup       {}  ({:.1} MB in {:.2} s, from {})",
        rep.out,
        rep.bytes as f64 / 1e6,
        rep.seconds,
        rep.source
    );
    if let Some(s) = &rep.secret {
        println!(
            "secret       copied to {s} (mode 0600): keep it with the backup, as private as the store's"
        );
    }
    if let Some(a) = &rep.audit {
        println!("audit trail  copied to {a}");
    }
    print_tables(&rep.tables);
    println!(
        "check it with `infogap backup verify {}`; restore by copying it to a new path and using that as --db",
        rep.out
    );
}

fn print_tables(tables: &std::collections::BTreeMap<String, i64>) {
    const MAIN: [&str; 7] = [
        "customers",
        "identities",
        "orders",
        "order_lines",
        "products",
        "events",
        "feedback",
    ];
    let main: Vec<String> = MAIN
        .iter()
        .filter_map(|t| tables.get(*t).map(|n| format!("{t} {n}")))
        .collect();
    println!("rows         {}", main.join(", "));
    let rest: Vec<String> = tables
        .iter()
        .filter(|(t, _)| !MAIN.contains(&t.as_str()))
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    if !rest.is_empty() {
        println!("             {}", rest.join(", "));
    }
}

fn verify(file: &Path, json: bool) -> anyhow::Result<()> {
    let check =
        verify_backup(file).with_context(|| format!("verifying backup {}", file.display()))?;
    if json {
        print_json(&check)?;
    } else {
        print_check(&check);
    }
    if !check.ok {
        anyhow::bail!(
            "backup {} failed verification: {}",
            file.display(),
            check.problems.join("; ")
        );
    }
    Ok(())
}

fn print_check(c: &BackupCheck) {
    println!("file         {}", c.file);
    println!("integrity    {}", c.integrity);
    println!(
        "foreign keys {}",
        if c.foreign_key_violations == 0 {
            "ok".to_string()
        } else {
            format!("{} violation(s)", c.foreign_key_violations)
        }
    );
    println!(
        "schema       {} (this infogap: {})",
        c.schema_version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into()),
        c.supported_version
    );
    // HOOK (issue 17, audit log): print the audit chain's check here.
    if let Some(a) = &c.audit_chain {
        println!("audit chain  {a}");
    }
    print_tables(&c.tables);
    for p in &c.problems {
        println!("problem      {p}");
    }
    println!("{}", if c.ok { "ok" } else { "FAILED" });
}
