//! Encryption at rest: planted personal values never reach the store's
//! files, lookups still work, a wrong or missing key is refused without a
//! write, and rotation keeps everything readable.

use infogap_store::*;

const EMAIL: &str = "planted.ada.lovelace@example.org";
const PHONE: &str = "+4915112345678";
const NAME: &str = "Zebulon-Quartermaine";
const TICKET: &str = "my parcel never came, call me at home 长城路99号";

fn planted_batch(file: i64) -> WriteBatch {
    let mut b = WriteBatch::default();
    for (id, kind, value) in [
        (1, "email", EMAIL),
        (2, "phone", PHONE),
        (3, "customer", "CRM-77"),
    ] {
        b.identities.push(NewIdentity {
            id,
            namespace: if kind == "customer" {
                "crm".into()
            } else {
                "global".into()
            },
            kind: kind.into(),
            value: value.into(),
            customer_id: 1,
            source_id: 1,
            line: 2,
        });
    }
    b.attributes.push(AttributeRow {
        identity_id: 3,
        name: "last_name".into(),
        value: infogap_core::dataset::AttrValue::Text(NAME.into()),
        source_id: 1,
        line: 2,
    });
    b.feedback.push(FeedbackRow {
        source_id: 1,
        file_id: file,
        identity_id: 1,
        kind: "ticket".into(),
        score: Some(1.0),
        text: Some(TICKET.into()),
        channel: None,
        time: Some(1_700_000_000),
    });
    b
}

fn fill(store: &SqliteStore) {
    let mut tx = store.begin().expect("begin");
    let sid = tx.upsert_source("crm", "customers", "crm").expect("source");
    assert_eq!(sid, 1);
    let file = tx.upsert_file(sid, "crm.csv").expect("file");
    tx.write(&planted_batch(file)).expect("write");
    tx.commit().expect("commit");
}

/// Every file of the store: the database, its WAL, its snapshot cache.
fn store_bytes(db: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for suffix in ["", "-wal", "-shm", ".snapshot"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(b) = std::fs::read(std::path::PathBuf::from(p)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn planted_values_never_reach_the_files_and_lookups_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let store = SqliteStore::open(&db).expect("open");
    assert!(store.key_generated(), "a new store gets a key file");
    assert!(db.with_extension("db.key").exists());
    fill(&store);
    // a model blob holding a customer's key (as the recommender's does)
    let blob = format!("keys:{EMAIL}");
    store
        .save_model(
            "recs",
            &serde_json::json!({}),
            &serde_json::json!({}),
            blob.as_bytes(),
        )
        .expect("save model");
    assert_eq!(
        store.load_model("recs").expect("load").expect("model").blob,
        blob.as_bytes()
    );
    // the snapshot cache too
    let mut snap = snapshot::RawSnapshot::default();
    snap.apply(store.snapshot_delta(0).expect("delta"))
        .expect("apply");
    cache::write(&cache::cache_path(&db), &snap, store.data_key().as_deref()).expect("cache");
    // read back as plaintext
    let found = store.identities_by_value(EMAIL).expect("lookup");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].value, EMAIL);
    let facts = store.customer_facts(1, None).expect("facts");
    assert_eq!(facts.feedback[0].last_text.as_deref(), Some(TICKET));
    assert!(
        facts.attributes.iter().any(|(n, v, _)| n == "last_name"
            && *v == infogap_core::dataset::AttrValue::Text(NAME.into()))
    );
    let ds = store.dataset().expect("dataset");
    assert_eq!(ds.feedback[0].text.as_deref(), Some(TICKET));
    let back =
        cache::read(&cache::cache_path(&db), store.data_key().as_deref()).expect("read cache");
    assert_eq!(back, snap);
    // while the store is open (WAL present) and after it is closed
    for round in 0..2 {
        let bytes = store_bytes(&db);
        for planted in [EMAIL, PHONE, NAME, TICKET, "CRM-77"] {
            assert!(
                !contains(&bytes, planted),
                "round {round}: {planted} is in the store's files"
            );
        }
        if round == 0 {
            drop(SqliteStore::open(&db).expect("second handle"));
        }
    }
    drop(store);
    let bytes = store_bytes(&db);
    assert!(!contains(&bytes, EMAIL) && !contains(&bytes, TICKET));
    // the cache is unusable without the key
    assert!(
        cache::read(&cache::cache_path(&db), None).is_err() || {
            // a cache read without a key must not yield the values
            let c = cache::read(&cache::cache_path(&db), None).expect("read");
            c.identities.iter().all(|i| i.value != EMAIL)
        }
    );
}

#[test]
fn a_wrong_or_missing_key_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    drop({
        let s = SqliteStore::open(&db).expect("open");
        fill(&s);
        s
    });
    let before = std::fs::read(&db).expect("bytes");
    // another key
    let other = dir.path().join("other.key");
    crypto::DataKey::generate().write(&other).expect("key");
    let err = SqliteStore::open_with_key(&db, Some(&other)).expect_err("wrong key");
    let msg = err.to_string();
    assert!(
        msg.contains("other.key") && msg.contains("encrypted with key"),
        "{msg}"
    );
    // no key file at all
    let missing = dir.path().join("nowhere.key");
    let msg = SqliteStore::open_with_key(&db, Some(&missing))
        .expect_err("missing")
        .to_string();
    assert!(
        msg.contains("nowhere.key") && msg.contains("does not exist"),
        "{msg}"
    );
    std::fs::remove_file(db.with_extension("db.key")).expect("rm key");
    let msg = SqliteStore::open(&db)
        .expect_err("default key gone")
        .to_string();
    assert!(msg.contains("s.db.key"), "{msg}");
    assert_eq!(
        std::fs::read(&db).expect("bytes"),
        before,
        "nothing was written"
    );
    assert!(
        !missing.exists(),
        "no key was generated for an encrypted store"
    );
}

#[test]
fn rotation_reseals_everything_and_keeps_lookups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("s.db");
    let mut store = SqliteStore::open(&db).expect("open");
    fill(&store);
    store
        .save_model(
            "recs",
            &serde_json::json!({}),
            &serde_json::json!({}),
            EMAIL.as_bytes(),
        )
        .expect("save model");
    let old_id = store.data_key().expect("key").id().to_string();
    let want = store.dataset_by_sql().expect("sql");
    let rep = store.rotate_key().expect("rotate");
    assert_eq!(rep.old_key_id, old_id);
    assert_ne!(rep.new_key_id, old_id);
    assert_eq!(rep.resealed.identities, 3);
    assert_eq!(rep.resealed.attributes, 1);
    assert_eq!(rep.resealed.feedback_texts, 1);
    assert_eq!(rep.resealed.models, 1);
    assert_eq!(store.identities_by_value(EMAIL).expect("lookup").len(), 1);
    drop(store);
    // the key file now holds the new key; the old one is kept for old backups
    let store = SqliteStore::open(&db).expect("reopen with the new key");
    assert_eq!(store.data_key().expect("key").id(), rep.new_key_id);
    assert_eq!(store.dataset_by_sql().expect("sql"), want);
    assert_eq!(store.identities_by_value(PHONE).expect("lookup").len(), 1);
    assert_eq!(
        store.load_model("recs").expect("load").expect("model").blob,
        EMAIL.as_bytes()
    );
    let prev = crypto::previous_key_path(&db.with_extension("db.key"));
    assert_eq!(crypto::DataKey::load(&prev).expect("previous").id(), old_id);
    let bytes = store_bytes(&db);
    assert!(!contains(&bytes, EMAIL));
}

#[test]
fn a_pre_encryption_store_is_sealed_on_its_first_keyed_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("old.db");
    {
        let s = SqliteStore::open_at_version(&db, 5).expect("plaintext store");
        assert!(s.data_key().is_none());
        fill(&s);
    }
    assert!(
        contains(&store_bytes(&db), EMAIL),
        "the plaintext store holds the value"
    );
    let store = SqliteStore::open(&db).expect("keyed open");
    assert_eq!(store.identities_by_value(EMAIL).expect("lookup").len(), 1);
    let facts = store.customer_facts(1, None).expect("facts");
    assert_eq!(facts.feedback[0].last_text.as_deref(), Some(TICKET));
    drop(store);
    // free pages may still hold the old plaintext until a vacuum
    let s = SqliteStore::open(&db).expect("reopen");
    s.vacuum().expect("vacuum");
    drop(s);
    let bytes = store_bytes(&db);
    assert!(!contains(&bytes, EMAIL) && !contains(&bytes, TICKET) && !contains(&bytes, NAME));
}
