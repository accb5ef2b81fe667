//! `infogap backup`: copies of a store taken while another process imports
//! into it are complete (every file of the import or none of it) and pass
//! `backup verify`; damaged copies fail it; nothing is ever overwritten.
//! And read commands refuse a `--db` where no store is.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{bin, fails, json, ok, run_in};

/// The demo data in `dir/demo` and a store holding its CRM master only.
fn demo_with_crm_only(dir: &Path, people: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", people, "--quiet"],
    );
    let toml = std::fs::read_to_string(dir.join("demo/infogap.toml")).expect("config");
    // everything up to the second source: [identity] and the crm source
    let mut parts = toml.splitn(3, "[[source]]");
    let head = parts.next().expect("head");
    let crm = parts.next().expect("the first source");
    assert!(crm.contains("name = \"crm\""), "{crm}");
    std::fs::write(
        dir.join("demo/crm_only.toml"),
        format!("{head}[[source]]{crm}"),
    )
    .expect("write");
    ok(
        dir,
        &["import", "--config", "demo/crm_only.toml", "--quiet"],
    );
}

/// The counts a copy must show after some prefix of the import's files:
/// (consents, orders + order lines, events, feedback, campaign contacts).
type Counts = [u64; 5];

fn counts_of(tables: &Value) -> Counts {
    let n = |t: &str| {
        tables[t]
            .as_u64()
            .unwrap_or_else(|| panic!("{t}: {tables}"))
    };
    [
        n("consents"),
        n("orders") + n("order_lines"),
        n("events"),
        n("feedback"),
        n("campaign_contacts"),
    ]
}

/// Every state the store passes through, one file committed at a time,
/// from the import's report (rows written per source, in config order).
fn states(base: Counts, report: &Value) -> Vec<Counts> {
    let mut cur = base;
    let mut out = vec![cur];
    for s in report["sources"].as_array().expect("sources") {
        let rows = s["rows_written"].as_u64().expect("rows_written");
        let slot = match s["kind"].as_str().expect("kind") {
            "consents" => Some(0),
            "order_lines" | "orders" => Some(1),
            "events" | "ratings" => Some(2),
            "feedback" => Some(3),
            "campaign_exposures" | "redemptions" => Some(4),
            _ => None,
        };
        if let Some(i) = slot {
            cur[i] += rows;
        }
        out.push(cur);
    }
    out
}

#[test]
fn backups_taken_during_an_import_are_complete_and_verify() {
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path();
    demo_with_crm_only(dir, "3000");
    let first = json(dir, &["backup", "--out", "b-before.db", "--json"]);
    let base = counts_of(&first["tables"]);
    assert_eq!(base, [0, 0, 0, 0, 0], "{first}");

    let mut child = Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", dir.join("infogap.db"))
        .args([
            "import",
            "--config",
            "demo/infogap.toml",
            "--json",
            "--quiet",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the import");
    let started = Instant::now();
    let mut during = Vec::new();
    let last = loop {
        let running = child.try_wait().expect("try_wait").is_none();
        let i = during.len();
        let name = if running {
            format!("b{i}.db")
        } else {
            "b-after.db".to_string()
        };
        let rep = json(dir, &["backup", "--out", &name, "--json"]);
        assert_eq!(rep["out"], name.as_str(), "{rep}");
        assert!(rep["bytes"].as_u64().expect("bytes") > 0, "{rep}");
        assert!(rep["seconds"].as_f64().expect("seconds") >= 0.0, "{rep}");
        let v = json(dir, &["backup", "verify", &name, "--json"]);
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["integrity"], "ok", "{v}");
        assert_eq!(v["file"], name.as_str(), "{v}");
        assert!(v["schema_version"].as_i64().expect("schema") >= 1, "{v}");
        assert_eq!(v["tables"], rep["tables"], "{name}");
        if !running {
            break (name, v);
        }
        // only the last copy taken during the import is used as a store below
        if let Some((prev, _)) = during.last() {
            std::fs::remove_file(dir.join(prev)).expect("remove a checked copy");
        }
        during.push((name, v));
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "the import never ended"
        );
    };
    let status = child.wait().expect("wait");
    assert!(status.success(), "the import failed");
    let mut report = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut report)
        .expect("read");
    let report: Value = serde_json::from_str(&report).expect("import JSON");
    assert!(
        !during.is_empty(),
        "no backup was taken while the import ran"
    );

    // every copy holds a whole number of files: a state the store passed through
    let allowed = states(base, &report);
    for (name, v) in during.iter().chain(std::iter::once(&last)) {
        let c = counts_of(&v["tables"]);
        let k = allowed.iter().position(|s| *s == c);
        assert!(
            k.is_some(),
            "{name} holds {c:?}, not one of the import's states {allowed:?}"
        );
        eprintln!("{name}: after {} of the import's files", k.unwrap_or(0));
    }
    assert_eq!(
        counts_of(&last.1["tables"]),
        *allowed.last().expect("final")
    );

    // a copy taken during the import works as a store, restored with the
    // store's data key (never copied with a backup)
    let key = dir.join("infogap.db.key");
    for b in during.iter().map(|(p, _)| p).chain([&last.0]) {
        std::fs::copy(&key, dir.join(format!("{b}.key"))).expect("the key beside the copy");
    }
    let (mid, _) = during.last().expect("a copy during the import");
    let stats = json(dir, &["--db", mid.as_str(), "stats", "--json"]);
    assert!(
        stats["customers"].as_u64().expect("customers") > 0,
        "{stats}"
    );
    // the copy taken after it holds exactly what the store holds
    let source = json(dir, &["stats", "--json"]);
    let copy = json(dir, &["--db", last.0.as_str(), "stats", "--json"]);
    assert_eq!(copy, source);
}

#[test]
fn damaged_copies_fail_verify_and_nothing_is_overwritten() {
    let d = tempfile::tempdir().expect("tmp");
    let dir = d.path();
    demo_with_crm_only(dir, "300");
    ok(dir, &["backup", "--out", "good.db"]);
    let good = std::fs::read(dir.join("good.db")).expect("read");

    // bytes overwritten in the middle
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8192] {
        *b = 0xA5;
    }
    std::fs::write(dir.join("scribbled.db"), &bad).expect("write");
    let err = fails(dir, &["backup", "verify", "scribbled.db"]);
    assert!(
        err.contains("scribbled.db") && err.contains("failed verification"),
        "{err}"
    );
    // with --json the report says why, and the exit is still non-zero
    let out = run_in(dir, &["backup", "verify", "scribbled.db", "--json"]);
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false, "{v}");
    assert_ne!(v["integrity"], "ok", "{v}");

    // truncated
    std::fs::write(dir.join("cut.db"), &good[..good.len() / 2]).expect("write");
    let err = fails(dir, &["backup", "verify", "cut.db"]);
    assert!(err.contains("cut.db") && err.contains("truncated"), "{err}");

    // not a database at all
    std::fs::write(dir.join("notes.db"), "not a database\n".repeat(20)).expect("write");
    let err = fails(dir, &["backup", "verify", "notes.db"]);
    assert!(
        err.contains("notes.db") && err.contains("not a SQLite database"),
        "{err}"
    );

    // a backup onto an existing file refuses and leaves it as it was
    std::fs::write(dir.join("precious.db"), "keep me").expect("write");
    let err = fails(dir, &["backup", "--out", "precious.db"]);
    assert!(
        err.contains("precious.db") && err.contains("already exists"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("precious.db")).expect("read"),
        "keep me"
    );
    // no temporary file left behind either
    let stray: Vec<String> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // the store's secret goes along, private
    std::fs::write(dir.join("infogap.db.secret"), "k").expect("secret");
    let rep = json(dir, &["backup", "--out", "with-secret.db", "--json"]);
    assert_eq!(rep["secret"], "with-secret.db.secret", "{rep}");
    assert_eq!(
        std::fs::read_to_string(dir.join("with-secret.db.secret")).expect("read"),
        "k"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("with-secret.db.secret"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn read_commands_refuse_a_missing_store_and_create_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let missing = d.path().join("sub/missing.db");
    let m = missing.to_str().expect("utf8");
    for args in [
        &["--db", m, "stats"][..],
        &["--db", m, "customer", "show", "x@y.z"],
        &["--db", m, "churn"],
        &["--db", m, "segments"],
        &["--db", m, "recommend", "--customer", "x@y.z"],
        &["--db", m, "train", "recs"],
        &["--db", m, "backup", "--out", "copy.db"],
    ] {
        let err = fails(d.path(), args);
        assert!(
            err.contains("no store at") && err.contains("missing.db"),
            "{args:?}: {err}"
        );
        assert!(!missing.exists(), "{args:?} created the store");
        assert!(
            !d.path().join("sub").exists(),
            "{args:?} created its directory"
        );
    }
    assert!(!d.path().join("copy.db").exists());
}

/// A PostgreSQL store is not copied as a file: the refusal says what to
/// use instead, hides the URL's password, and creates nothing.
#[test]
fn backup_of_a_postgres_store_is_refused_clearly() {
    let d = tempfile::tempdir().expect("tmp");
    let url = "postgres://u:hunter2@127.0.0.1:1/x";
    let out = crate::common::run_on(d.path(), url, &["backup", "--out", "b.db"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("u:***@"), "{err}");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
