//! `infogap privacy export KEY --out FILE.zip`: a merged customer's zip
//! holds every department's facts with provenance and the earlier read in
//! its access log, the CSVs match the JSON, no one else's email is in it;
//! an unknown key, a role without the right and an unwritable path fail
//! without leaving a file behind.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{Cursor, Read};
use std::path::Path;

use crate::common::{fails, ok, run_in};

fn unzip(path: &Path) -> HashMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).expect("the zip is there");
    let mut z = zip::ZipArchive::new(Cursor::new(bytes)).expect("the zip opens");
    let mut out = HashMap::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).expect("an entry");
        let mut b = Vec::new();
        f.read_to_end(&mut b).expect("an entry reads");
        out.insert(f.name().expect("a name").to_string(), b);
    }
    out
}

fn csv_rows(bytes: &[u8]) -> usize {
    csv_records(bytes).len()
}

fn csv_records(bytes: &[u8]) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_reader(bytes);
    let h: Vec<String> = r
        .headers()
        .expect("a header")
        .iter()
        .map(str::to_string)
        .collect();
    r.records()
        .map(|x| {
            let x = x.expect("a record");
            h.iter()
                .cloned()
                .zip(x.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

/// Files in `dir` other than the store's own.
fn stray_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial") || n.ends_with(".zip"))
        .collect()
}

#[test]
fn privacy_export_writes_a_merged_customers_whole_record() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(
        d,
        &["demo", "--out", "demo", "--customers", "150", "--quiet"],
    );
    ok(d, &["import", "--config", "demo/infogap.toml", "--quiet"]);

    // the customer whose keys come from the most sources, its email, and
    // every other customer's email (read straight from the store)
    let (id, email, others) = {
        let engine = infogap_engine::Engine::open(&d.join("infogap.db")).expect("store");
        let ds = engine.dataset().expect("dataset");
        let store = engine.store();
        let mut best: (usize, i64) = (0, 0);
        let mut emails: HashMap<i64, Vec<String>> = HashMap::new();
        for c in &ds.customers {
            let ids = store.customer_identities(c.id).expect("identities");
            let n = ids
                .iter()
                .map(|i| i.source_id)
                .collect::<HashSet<_>>()
                .len();
            let has_email = ids.iter().any(|i| i.kind == "email");
            if has_email && n > best.0 {
                best = (n, c.id);
            }
            emails.insert(
                c.id,
                ids.iter()
                    .filter(|i| i.kind == "email")
                    .map(|i| i.value.clone())
                    .collect(),
            );
        }
        assert!(best.0 >= 3, "no customer with keys from 3 sources");
        let own = emails[&best.1].clone();
        let others: Vec<String> = emails
            .iter()
            .filter(|(c, _)| **c != best.1)
            .flat_map(|(_, v)| v.clone())
            .filter(|e| !own.contains(e))
            .collect();
        (best.1, own[0].clone(), others)
    };

    // a staff read first: it must be in the export's access log
    ok(d, &["customer", "show", &format!("#{id}"), "--json"]);

    let out = run_in(d, &["privacy", "export", &email, "--out", "me.zip"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("exported customer #{id}")) && stderr.contains("order_lines"),
        "{stderr}"
    );
    // --quiet: nothing on stderr
    let q = run_in(
        d,
        &[
            "privacy",
            "export",
            &format!("#{id}"),
            "--out",
            "q.zip",
            "--quiet",
        ],
    );
    assert!(q.status.success());
    assert!(
        q.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&q.stderr)
    );

    let files = unzip(&d.join("me.zip"));
    let json: serde_json::Value =
        serde_json::from_slice(&files["export.json"]).expect("export.json");
    assert_eq!(json["customer_id"], id);
    for (name, n) in json["counts"].as_object().expect("counts") {
        let rows = csv_rows(&files[name.as_str()]);
        assert_eq!(Some(rows as u64), n.as_u64(), "{name}");
    }
    // every department's facts, each with its source and file or line
    let mut sources = BTreeSet::new();
    for name in [
        "order_lines.csv",
        "events.csv",
        "feedback.csv",
        "campaigns.csv",
    ] {
        for r in csv_records(&files[name]) {
            assert!(
                !r["source"].is_empty() && !r["file"].is_empty(),
                "{name}: {r:?}"
            );
            sources.insert(r["source"].clone());
        }
    }
    for name in ["identities.csv", "attributes.csv"] {
        for r in csv_records(&files[name]) {
            assert!(!r["source"].is_empty(), "{name}: {r:?}");
            assert!(
                r["line"].parse::<i64>().is_ok_and(|l| l > 0),
                "{name}: {r:?}"
            );
            sources.insert(r["source"].clone());
        }
    }
    assert!(sources.len() >= 3, "{sources:?}");
    assert!(csv_rows(&files["links.csv"]) > 0);
    let log = csv_records(&files["access_log.csv"]);
    assert!(
        log.iter().any(|r| r["action"] == "customers.read"),
        "{log:?}"
    );
    assert!(log.iter().any(|r| r["action"] == "privacy.export"));
    // the person's own email is there; nobody else's
    let text: String = files
        .values()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(text.contains(&email));
    assert!(others.len() > 50);
    for e in &others {
        assert!(
            !text.contains(e.as_str()),
            "another customer's email {e} is in the export"
        );
    }
    assert_eq!(stray_files(d).len(), 2, "{:?}", stray_files(d));

    // an unknown key: an error, and no file
    let err = fails(
        d,
        &[
            "privacy",
            "export",
            "nobody@nowhere.invalid",
            "--out",
            "x.zip",
        ],
    );
    assert!(err.contains("no customer"), "{err}");
    assert!(!d.join("x.zip").exists());
    // a role without the right
    let err = fails(
        d,
        &[
            "--as-role",
            "analyst",
            "privacy",
            "export",
            &email,
            "--out",
            "y.zip",
        ],
    );
    assert!(err.contains("privacy.export"), "{err}");
    assert!(!d.join("y.zip").exists());
    // a directory that does not exist: an error naming the file, nothing left
    let err = fails(
        d,
        &["privacy", "export", &email, "--out", "missing/dir/z.zip"],
    );
    assert!(err.contains("z.zip"), "{err}");
    assert_eq!(stray_files(d).len(), 2, "{:?}", stray_files(d));
}
