//! Integration tests of infogap-store: the conformance suite on every backend.

use std::sync::atomic::{AtomicUsize, Ordering};

use infogap_store::{SqliteStore, Store, conformance};

static N: AtomicUsize = AtomicUsize::new(0);

fn fresh_sqlite(dir: &std::path::Path) -> Box<dyn Store> {
    let n = N.fetch_add(1, Ordering::SeqCst);
    match SqliteStore::open(&dir.join(format!("s{n}.db"))) {
        Ok(s) => Box::new(s),
        Err(e) => panic!("open: {e}"),
    }
}

#[test]
fn sqlite_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    conformance::run_all(&move || fresh_sqlite(&path));
}

#[test]
fn reopening_keeps_data_and_migrations_are_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("x.db");
    {
        let s = SqliteStore::open(&p).expect("open");
        s.save_model("m", &serde_json::json!({}), &serde_json::json!({}), b"x")
            .expect("save");
    }
    let s = SqliteStore::open(&p).expect("reopen");
    assert_eq!(s.load_model("m").expect("load").map(|m| m.version), Some(1));
}

#[test]
fn opening_a_non_database_fails_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("junk.db");
    std::fs::write(&p, vec![b'x'; 4096]).expect("write");
    let err = SqliteStore::open(&p)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("junk.db") || err.contains("database"), "{err}");
}
