//! `infogap privacy` end to end, on files with planted personal values of
//! our own: encryption at rest (the values never reach the store's files),
//! a wrong key refused without a write, key rotation and erasure surviving
//! a crash at every step, erasure with a verifiable receipt and a
//! suppression list that keeps the person out of later imports, retention.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common::{bin, fails, json, ok, run_in};

const ADA_EMAIL: &str = "ada.planted.lovelace@example.org";
const ADA_PHONE: &str = "+4915112345678";
/// The phone as identity resolution normalizes it.
const ADA_PHONE_NORM: &str = "4915112345678";
const ADA_NAME: &str = "Quartermaine";
const ADA_TICKET: &str = "parcel lost, call me at Hollowbrook Lane 17";
const BOB_EMAIL: &str = "bob.planted.babbage@example.net";
const BOB_TICKET: &str = "wrong colour delivered to Fernhill Road";

/// Two departments: a CRM (names, emails, phones), a support desk (tickets
/// by email) and a shop (orders by CRM id), with planted values.
fn planted(dir: &Path) {
    std::fs::write(
        dir.join("customers.csv"),
        format!(
            "customer_id,first_name,last_name,email,phone,region\n\
             C1,Ada,{ADA_NAME},{ADA_EMAIL},{ADA_PHONE},west\n\
             C2,Bob,Babbageton,{BOB_EMAIL},+4915199999999,east\n\
             C3,Cy,Cypherson,cy.cypher@example.com,+4915188888888,east\n"
        ),
    )
    .expect("customers");
    std::fs::write(
        dir.join("tickets.csv"),
        format!(
            "ticket,email,text,opened\n\
             T1,{ADA_EMAIL},\"{ADA_TICKET}\",2025-01-05\n\
             T2,{BOB_EMAIL},\"{BOB_TICKET}\",2025-02-05\n\
             T3,not-an-email,bad row,2025-02-06\n"
        ),
    )
    .expect("tickets");
    std::fs::write(
        dir.join("orders.csv"),
        "order,customer,sku,qty,amount,time\n\
         O1,C1,P1,1,10.00,2024-01-02\n\
         O2,C1,P2,2,30.00,2025-03-02\n\
         O3,C2,P1,1,10.00,2025-03-03\n\
         O4,C3,P2,1,15.00,2025-03-04\n",
    )
    .expect("orders");
    std::fs::write(
        dir.join("infogap.toml"),
        r#"[[source]]
name = "crm"
file = "customers.csv"
kind = "customers"
namespace = "crm"
[source.columns]
customer = "customer_id"
email = "email"
phone = "phone"
[source.attributes]
first_name = "first_name"
last_name = "last_name"
region = "region"

[[source]]
name = "support"
file = "tickets.csv"
kind = "feedback"
namespace = "support"
default_type = "ticket"
[source.columns]
email = "email"
text = "text"
time = "opened"

[[source]]
name = "shop"
file = "orders.csv"
kind = "order_lines"
namespace = "crm"
[source.columns]
order = "order"
customer = "customer"
product = "sku"
quantity = "qty"
amount = "amount"
time = "time"

[privacy.retention]
orders = "365d"
"#,
    )
    .expect("config");
    ok(
        dir,
        &[
            "import",
            "--config",
            "infogap.toml",
            "--skip-bad-rows",
            "5",
            "--quiet",
        ],
    );
}

/// Every file of the store: database, WAL, snapshot cache, audit trail.
fn store_files(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for base in ["infogap.db", "infogap.db.audit"] {
        for suffix in ["", "-wal", "-shm"] {
            v.push(dir.join(format!("{base}{suffix}")));
        }
    }
    v.push(dir.join("infogap.db.snapshot"));
    v
}

fn grep(files: &[PathBuf], needle: &str) -> Vec<String> {
    files
        .iter()
        .filter(|f| {
            std::fs::read(f).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .map(|f| f.display().to_string())
        .collect()
}

fn stats(dir: &Path) -> Value {
    json(dir, &["stats", "--json"])
}

#[test]
fn planted_values_are_encrypted_and_lookups_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    planted(dir.path());
    // reads fill the snapshot cache; lookups go through blind indexes
    let shown = json(dir.path(), &["customer", "show", ADA_EMAIL, "--json"]);
    assert!(shown.to_string().contains(ADA_NAME), "{shown}");
    assert!(shown.to_string().contains(ADA_TICKET), "{shown}");
    ok(dir.path(), &["customer", "show", ADA_PHONE]);
    ok(dir.path(), &["snapshot"]);
    assert!(
        dir.path().join("infogap.db.snapshot").exists(),
        "the cache was written"
    );
    let files = store_files(dir.path());
    for planted in [
        ADA_EMAIL,
        ADA_PHONE_NORM,
        ADA_NAME,
        ADA_TICKET,
        BOB_EMAIL,
        BOB_TICKET,
    ] {
        assert_eq!(
            grep(&files, planted),
            Vec::<String>::new(),
            "{planted} found"
        );
    }
    // the key file is beside the store, readable by its owner only
    let key = dir.path().join("infogap.db.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn a_wrong_or_missing_key_is_refused_and_the_store_is_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    planted(dir.path());
    ok(dir.path(), &["stats"]);
    let db = dir.path().join("infogap.db");
    let before = std::fs::read(&db).expect("db");
    // a key of another store
    let other = tempfile::tempdir().expect("other");
    planted(other.path());
    let out = Command::new(bin())
        .current_dir(dir.path())
        .env("INFOGAP_DB", &db)
        .env("INFOGAP_KEY_FILE", other.path().join("infogap.db.key"))
        .args(["customer", "show", ADA_EMAIL])
        .output()
        .expect("spawn");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("infogap.db.key") && err.contains("encrypted with key"),
        "{err}"
    );
    assert!(!err.contains(ADA_EMAIL), "no PII in the error: {err}");
    // the key moved away
    std::fs::rename(
        dir.path().join("infogap.db.key"),
        dir.path().join("moved.key"),
    )
    .expect("move");
    let err = fails(dir.path(), &["stats"]);
    assert!(
        err.contains("infogap.db.key") && err.contains("does not exist"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).expect("db"),
        before,
        "nothing was written"
    );
    assert!(
        !dir.path().join("infogap.db.key").exists(),
        "no new key was made"
    );
    // pointed at its new place, everything works again
    let out = Command::new(bin())
        .current_dir(dir.path())
        .env("INFOGAP_DB", &db)
        .env("INFOGAP_KEY_FILE", dir.path().join("moved.key"))
        .args(["customer", "show", ADA_EMAIL])
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `args` with a failpoint that aborts the process there, as kill -9 would.
fn crash_at(dir: &Path, point: &str, args: &[&str]) {
    let out = Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", dir.join("infogap.db"))
        .env("INFOGAP_FAILPOINT", point)
        .args(args)
        .output()
        .expect("spawn");
    assert!(
        !out.status.success(),
        "{point}: the process was meant to die there\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn rotate_key_survives_a_crash_at_every_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    planted(dir.path());
    let want = json(dir.path(), &["customer", "show", ADA_EMAIL, "--json"]);
    let key_of = |d: &Path| std::fs::read_to_string(d.join("infogap.db.key")).expect("key");
    let first = key_of(dir.path());
    for point in ["rotate-key:before-commit", "rotate-key:after-commit"] {
        crash_at(dir.path(), point, &["privacy", "rotate-key"]);
        // the next command finds a consistent store: old or new key, all data
        let got = json(dir.path(), &["customer", "show", ADA_EMAIL, "--json"]);
        assert_eq!(got["id"], want["id"], "{point}");
        assert!(got.to_string().contains(ADA_TICKET), "{point}: {got}");
        ok(dir.path(), &["customer", "show", ADA_PHONE]);
    }
    // the crash after the commit left the store on the new key, installed at reopen
    assert_ne!(key_of(dir.path()), first);
    assert!(!dir.path().join("infogap.db.key.new").exists());
    let rep = json(dir.path(), &["privacy", "rotate-key", "--json"]);
    assert_eq!(rep["resealed"]["identities"].as_u64(), Some(9), "{rep}");
    assert!(
        rep["resealed"]["feedback_texts"].as_u64() >= Some(2),
        "{rep}"
    );
    ok(dir.path(), &["customer", "show", BOB_EMAIL]);
    ok(dir.path(), &["audit", "verify"]);
    // a real kill -9 at arbitrary moments, repeatedly
    for delay_ms in [0u64, 5, 20, 60] {
        let mut child = Command::new(bin())
            .current_dir(dir.path())
            .env("INFOGAP_DB", dir.path().join("infogap.db"))
            .args(["privacy", "rotate-key", "--json"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        let got = json(dir.path(), &["customer", "show", ADA_EMAIL, "--json"]);
        assert!(
            got.to_string().contains(ADA_NAME),
            "after a kill at {delay_ms} ms: {got}"
        );
    }
    let files = store_files(dir.path());
    assert!(grep(&files, ADA_EMAIL).is_empty());
}

fn table_rows(receipt: &Value, table: &str) -> u64 {
    receipt["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == table)
        .and_then(|t| t["rows"].as_u64())
        .unwrap_or_else(|| panic!("no table {table} in {receipt}"))
}

#[test]
fn erasure_is_complete_verified_and_survives_reimport() {
    let dir = tempfile::tempdir().expect("tempdir");
    planted(dir.path());
    let d = dir.path();
    // Ada: a CRM record, 2 orders of 2 lines... her support ticket joins by email
    let before = json(d, &["customer", "show", ADA_EMAIL, "--json"]);
    let id = before["id"].as_i64().expect("id");
    ok(d, &["customer", "show", &format!("#{id}")]);
    let s0 = stats(d);
    let plan = json(d, &["privacy", "erase", ADA_EMAIL, "--dry-run", "--json"]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(
        table_rows(&plan, "identities"),
        3,
        "crm id, email, phone: {plan}"
    );
    assert_eq!(table_rows(&plan, "order_lines"), 2);
    assert_eq!(table_rows(&plan, "orders"), 2);
    assert_eq!(table_rows(&plan, "feedback"), 1);
    assert_eq!(table_rows(&plan, "attributes"), 3);
    // a dry run changes nothing
    assert_eq!(stats(d)["identities"], s0["identities"]);
    ok(d, &["customer", "show", ADA_EMAIL]);

    let receipt = json(d, &["privacy", "erase", ADA_EMAIL, "--json"]);
    assert_eq!(receipt["status"], "done", "{receipt}");
    assert_eq!(receipt["residue"].as_u64(), Some(0), "{receipt}");
    assert!(
        receipt["verification"]["patterns"].as_u64() >= Some(8),
        "{receipt}"
    );
    // the receipt's counts are the person's rows before erasure
    for t in [
        "identities",
        "order_lines",
        "orders",
        "feedback",
        "attributes",
        "customers",
    ] {
        assert_eq!(table_rows(&receipt, t), table_rows(&plan, t), "{t}");
    }
    let s1 = stats(d);
    assert_eq!(
        s1["identities"].as_i64().expect("n") + 3,
        s0["identities"].as_i64().expect("n"),
        "{s1}"
    );
    assert_eq!(
        s1["order_lines"].as_i64().expect("n") + 2,
        s0["order_lines"].as_i64().expect("n")
    );
    // gone: not found by any key, nothing in any file of the store
    fails(d, &["customer", "show", ADA_EMAIL]);
    fails(d, &["customer", "show", ADA_PHONE]);
    fails(d, &["customer", "show", &format!("#{id}")]);
    let mut files = store_files(d);
    files.push(d.join("support.rejects.csv"));
    for planted in [ADA_EMAIL, ADA_PHONE_NORM, ADA_NAME, ADA_TICKET] {
        assert_eq!(
            grep(&files, planted),
            Vec::<String>::new(),
            "{planted} left"
        );
    }
    // others are untouched
    let bob = json(d, &["customer", "show", BOB_EMAIL, "--json"]);
    assert!(bob.to_string().contains(BOB_TICKET));
    // the audit trail still verifies, and no longer names Ada's id
    ok(d, &["audit", "verify"]);
    let trail = json(d, &["audit", "--json"]);
    let records = trail.as_array().expect("records");
    assert!(records.len() > 3, "{trail}");
    assert!(
        records.iter().all(|r| !r["customers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x.as_i64() == Some(id)))),
        "a record still names customer {id}: {trail}"
    );
    assert!(records.iter().any(|r| r["redacted"] == true), "{trail}");

    // re-importing the same files: unchanged files are skipped, and a changed
    // file drops her rows by the suppression list
    ok(
        d,
        &[
            "import",
            "--config",
            "infogap.toml",
            "--skip-bad-rows",
            "5",
            "--quiet",
        ],
    );
    fails(d, &["customer", "show", ADA_EMAIL]);
    let mut t = std::fs::read_to_string(d.join("tickets.csv")).expect("tickets");
    t.push_str(&format!("T4,{ADA_EMAIL},please call back,2025-04-01\n"));
    std::fs::write(d.join("tickets.csv"), t).expect("write");
    let mut o = std::fs::read_to_string(d.join("customers.csv")).expect("customers");
    o.push_str("C4,Di,Dimension,di.d@example.com,+4915177777777,north\n");
    std::fs::write(d.join("customers.csv"), o).expect("write");
    let rep = json(
        d,
        &[
            "import",
            "--config",
            "infogap.toml",
            "--skip-bad-rows",
            "5",
            "--json",
        ],
    );
    let sources = rep["sources"].as_array().expect("sources");
    let sup = |name: &str| {
        sources
            .iter()
            .find(|s| s["name"] == name)
            .and_then(|s| s["rows_suppressed"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(sup("crm"), 1, "{rep}");
    assert_eq!(sup("support"), 2, "{rep}");
    fails(d, &["customer", "show", ADA_EMAIL]);
    fails(d, &["customer", "show", ADA_PHONE]);
    ok(d, &["customer", "show", "di.d@example.com"]);
    let files = store_files(d);
    assert!(grep(&files, ADA_EMAIL).is_empty());
    ok(d, &["audit", "verify"]);
    // the receipt stays in the journal
    let list = json(d, &["privacy", "erase", "--requests", "--json"]);
    assert_eq!(list[0]["status"], "done", "{list}");
    assert!(!list.to_string().contains(ADA_EMAIL));
}

#[test]
fn an_interrupted_erasure_resumes_to_completion() {
    for point in ["erase:before-delete", "erase:after-delete"] {
        let dir = tempfile::tempdir().expect("tempdir");
        planted(dir.path());
        let d = dir.path();
        ok(d, &["customer", "show", ADA_EMAIL]);
        crash_at(d, point, &["privacy", "erase", ADA_EMAIL]);
        let list = json(d, &["privacy", "erase", "--requests", "--json"]);
        let status = list[0]["status"].as_str().expect("status").to_string();
        assert!(
            status == "planned" || status == "erasing",
            "{point}: {list}"
        );
        let resumed = json(d, &["privacy", "erase", "--resume", "--json"]);
        assert_eq!(resumed[0]["status"], "done", "{point}: {resumed}");
        assert_eq!(
            resumed[0]["residue"].as_u64(),
            Some(0),
            "{point}: {resumed}"
        );
        fails(d, &["customer", "show", ADA_EMAIL]);
        assert!(grep(&store_files(d), ADA_EMAIL).is_empty(), "{point}");
        assert!(grep(&store_files(d), ADA_TICKET).is_empty(), "{point}");
        ok(d, &["customer", "show", BOB_EMAIL]);
        ok(d, &["audit", "verify"]);
        // nothing is left pending
        let list = json(d, &["privacy", "erase", "--requests", "--json"]);
        assert_eq!(list[0]["status"], "done");
        assert!(std::fs::read_dir(d).expect("dir").all(|e| {
            !e.expect("entry")
                .file_name()
                .to_string_lossy()
                .contains(".erasure-")
        }));
    }
}

#[test]
fn retention_deletes_old_facts_and_dry_run_only_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    planted(dir.path());
    let d = dir.path();
    let s0 = stats(d);
    let dry = json(d, &["privacy", "retain", "--dry-run", "--json"]);
    let lines = |r: &Value| {
        r["kinds"][0]["tables"]
            .as_array()
            .expect("tables")
            .iter()
            .find(|t| t["table"] == "order_lines")
            .and_then(|t| t["rows"].as_u64())
            .expect("order_lines")
    };
    // orders of 2024-01-02 is older than 365 days (today is after 2026)
    assert!(lines(&dry) >= 1, "{dry}");
    assert_eq!(
        stats(d)["order_lines"],
        s0["order_lines"],
        "a dry run changes nothing"
    );
    let done = json(d, &["privacy", "retain", "--json"]);
    assert_eq!(lines(&done), lines(&dry));
    assert_eq!(
        stats(d)["order_lines"].as_u64().expect("n") + lines(&done),
        s0["order_lines"].as_u64().expect("n")
    );
    let out = run_in(d, &["privacy", "retain"]);
    assert!(out.status.success());
    ok(d, &["audit", "verify"]);
}

#[test]
fn anonymizing_erasure_keeps_revenue_totals_and_removes_the_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    planted(d);
    // the same files, with erasure set to anonymize
    let cfg = std::fs::read_to_string(d.join("infogap.toml")).expect("config");
    std::fs::write(
        d.join("infogap.toml"),
        cfg.replace(
            "[privacy.retention]",
            "[privacy]\nerasure = \"anonymize\"\n\n[privacy.retention]",
        ),
    )
    .expect("config");
    ok(
        d,
        &[
            "import",
            "--config",
            "infogap.toml",
            "--skip-bad-rows",
            "5",
            "--quiet",
        ],
    );
    let s0 = stats(d);
    let receipt = json(d, &["privacy", "erase", ADA_EMAIL, "--json"]);
    assert_eq!(receipt["mode"], "anonymize", "{receipt}");
    assert_eq!(receipt["residue"].as_u64(), Some(0), "{receipt}");
    let orders = receipt["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .find(|t| t["table"] == "orders")
        .expect("orders")
        .clone();
    assert_eq!(orders["action"], "anonymized", "{receipt}");
    let s1 = stats(d);
    // totals keep her orders; she is no customer any more
    assert_eq!(s1["revenue"], s0["revenue"], "{s0} {s1}");
    assert_eq!(s1["order_lines"], s0["order_lines"]);
    assert_eq!(
        s1["customers"].as_i64().expect("n") + 1,
        s0["customers"].as_i64().expect("n"),
        "{s0} {s1}"
    );
    fails(d, &["customer", "show", ADA_EMAIL]);
    for planted in [ADA_EMAIL, ADA_PHONE_NORM, ADA_NAME, ADA_TICKET] {
        assert!(grep(&store_files(d), planted).is_empty(), "{planted} left");
    }
    ok(d, &["audit", "verify"]);
}
