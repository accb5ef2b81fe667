//! Aggregates that leave the analyst role from the command line:
//! `--as-role marketing segments` and `stats` never show a group under
//! `[privacy] min_group_size` and say so; the admin's figures are exact;
//! `--as-role analyst segment export` writes pseudonyms, no ids or contacts.

use std::path::Path;

use serde_json::Value;

use crate::common::{json, ok};

/// A demo store whose config carries `privacy` in its `[privacy]` section.
fn demo_store_with(dir: &Path, privacy: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", "150", "--quiet"],
    );
    let config = dir.join("demo/infogap.toml");
    let mut text = std::fs::read_to_string(&config).expect("config");
    text.push_str(&format!("\n[privacy]\n{privacy}\n"));
    std::fs::write(&config, text).expect("write config");
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

fn sizes(v: &Value) -> Vec<(String, u64)> {
    v["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").into(),
                s["size"].as_u64().expect("size"),
            )
        })
        .collect()
}

#[test]
fn segments_and_stats_as_marketing_merge_small_groups_and_analyst_exports_pseudonyms() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let min = 20;
    demo_store_with(dir, &format!("min_group_size = {min}"));

    // the admin: exact sizes, some under the minimum
    let admin = json(dir, &["segments", "--json"]);
    assert_eq!(admin["privacy"]["exact"], true, "{}", admin["privacy"]);
    let exact = sizes(&admin);
    let small: Vec<&String> = exact
        .iter()
        .filter(|(_, n)| *n < min)
        .map(|(s, _)| s)
        .collect();
    assert!(
        !small.is_empty(),
        "the demo needs small segments: {exact:?}"
    );

    // marketing: nothing under the minimum, and the output says what happened
    let m = json(dir, &["--as-role", "marketing", "segments", "--json"]);
    assert_eq!(m["privacy"]["exact"], false);
    assert_eq!(m["privacy"]["min_group_size"], min);
    for (name, n) in sizes(&m) {
        assert!(n >= min, "marketing sees {name} of size {n}");
        assert!(small.iter().all(|s| **s != name), "{name} is small");
    }
    let merged = m["privacy"]["merged"].as_array().expect("merged").len();
    assert_eq!(merged, small.len());
    let text = ok(dir, &["--as-role", "marketing", "segments"]);
    assert!(
        text.contains("privacy:") && text.contains(&format!("under {min}")),
        "{text}"
    );

    // stats as sales: every source shown has at least min rows
    let s = json(dir, &["--as-role", "sales", "stats", "--json"]);
    assert_eq!(s["privacy"]["exact"], false, "{s}");
    for src in s["sources"].as_array().expect("sources") {
        assert!(src["rows"].as_u64().expect("rows") >= min, "{src}");
    }
    let s = json(dir, &["stats", "--json"]);
    assert_eq!(s["privacy"]["exact"], true, "{s}");

    // the analyst's export: pseudonyms, stable, no real key
    let seg = exact
        .iter()
        .max_by_key(|(_, n)| *n)
        .expect("segment")
        .0
        .clone();
    let export = |who: Option<&str>, file: &str| -> (Value, String) {
        let mut args: Vec<&str> = vec![];
        if let Some(r) = who {
            args.extend(["--as-role", r]);
        }
        args.extend(["segment", "export", seg.as_str(), "--out", file, "--json"]);
        let v = json(dir, &args);
        (v, std::fs::read_to_string(dir.join(file)).expect("csv"))
    };
    let (v_admin, csv_admin) = export(None, "admin.csv");
    assert_eq!(v_admin["pseudonymized"], false);
    let (v1, csv1) = export(Some("analyst"), "a1.csv");
    let (_, csv2) = export(Some("analyst"), "a2.csv");
    assert_eq!(v1["pseudonymized"], true, "{v1}");
    assert_eq!(csv1, csv2, "pseudonyms are stable");
    let rows: Vec<&str> = csv1.lines().skip(1).collect();
    assert!(!rows.is_empty());
    for r in &rows {
        let mut f = r.split(',');
        let key = f.next().expect("key");
        let id = f.next().expect("id");
        assert!(key.starts_with("p_") && key.len() == 18, "{r}");
        assert!(id.is_empty(), "an id in the analyst's export: {r}");
    }
    // every real key of the admin's export is absent from the analyst's
    for r in csv_admin.lines().skip(1) {
        let key = r.split(',').next().expect("key");
        assert!(!csv1.contains(key), "{key} in the analyst's export");
    }
    assert!(!csv1.contains('@'));
}

#[test]
fn churn_and_clv_lists_for_the_analyst_are_pseudonymized() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store_with(dir, "pseudonymize_analyst = true");
    ok(dir, &["train", "churn", "--model", "logreg", "--quiet"]);
    ok(dir, &["train", "clv", "--quiet"]);
    for (cmd, list, id) in [
        ("churn", "customers", "customer"),
        ("clv", "top", "customer_id"),
    ] {
        let admin = json(dir, &[cmd, "--top", "50", "--json"]);
        assert_eq!(admin["pseudonymized"], false, "{cmd}");
        let real: Vec<String> = admin[list]
            .as_array()
            .expect("list")
            .iter()
            .map(|r| {
                assert!(r[id].as_i64().is_some(), "{cmd}: the admin's rows have ids");
                r["key"].as_str().expect("key").to_string()
            })
            .collect();
        assert!(!real.is_empty(), "{cmd}");
        let a = json(dir, &["--as-role", "analyst", cmd, "--top", "50", "--json"]);
        assert_eq!(a["pseudonymized"], true, "{cmd}");
        let rows = a[list].as_array().expect("list");
        assert_eq!(rows.len(), real.len(), "{cmd}");
        for r in rows {
            assert!(r.get(id).is_none(), "{cmd}: an id in {r}");
            let k = r["key"].as_str().expect("key");
            assert!(k.starts_with("p_"), "{cmd}: {k}");
        }
        let text = a.to_string();
        for k in &real {
            assert!(
                !text.contains(k.as_str()),
                "{cmd}: {k} in the analyst's list"
            );
        }
        // the same customers get the same pseudonyms in a second run
        let b = json(dir, &["--as-role", "analyst", cmd, "--top", "50", "--json"]);
        assert_eq!(a[list], b[list], "{cmd}");
    }
}
