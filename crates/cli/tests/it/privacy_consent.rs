//! `infogap privacy consent` end to end on a demo store: a withdrawal
//! recorded from the command line applies to the next `segment export`
//! (marketing) and `recommend` (personalization) with no retraining; the
//! history keeps every change in order; an unknown purpose fails naming it
//! and records nothing; roles without consents.read are refused.

use std::path::Path;

use serde_json::Value;

use crate::common::{fails, json, ok, run_in};

fn demo_store(dir: &Path) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", "200", "--quiet"],
    );
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

fn purpose<'a>(v: &'a Value, p: &str) -> &'a Value {
    v["purposes"]
        .as_array()
        .expect("purposes")
        .iter()
        .find(|x| x["purpose"] == p)
        .unwrap_or_else(|| panic!("no purpose {p} in {v}"))
}

fn csv_ids(path: &Path) -> Vec<i64> {
    std::fs::read_to_string(path)
        .expect("export")
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).expect("id").parse().expect("an id"))
        .collect()
}

#[test]
fn withdrawing_consent_changes_the_next_export_and_recommendations() {
    let tmp = tempfile::tempdir().expect("tmp");
    let d = tmp.path();
    demo_store(d);

    // a segment member who granted marketing (in a segment that bought)
    let seg = json(d, &["segments", "--customers", "--json"]);
    let rows = seg["customer_rows"].as_array().expect("rows");
    let mut pick = None;
    for r in rows
        .iter()
        .filter(|r| r["segment"] != "no purchases")
        .take(40)
    {
        let id = r["id"].as_i64().expect("id");
        let v = json(d, &["privacy", "consent", &format!("#{id}"), "--json"]);
        if purpose(&v, "marketing")["allowed"] == true {
            pick = Some((id, r["segment"].as_str().expect("segment").to_string()));
            break;
        }
    }
    let (x, segment) = pick.expect("a member with marketing consent");
    let key = format!("#{x}");
    let a = d.join("a.csv");
    let b = d.join("b.csv");

    let before = json(
        d,
        &[
            "segment",
            "export",
            &segment,
            "--out",
            a.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(csv_ids(&a).contains(&x));
    assert_eq!(before["left_out"]["purpose"], "marketing");

    // withdraw marketing
    let v = json(
        d,
        &[
            "privacy",
            "consent",
            &key,
            "--withdraw",
            "marketing",
            "--json",
        ],
    );
    let m = purpose(&v, "marketing");
    assert_eq!(m["allowed"], false);
    assert_eq!(m["reason"], "withdrawn");
    assert_eq!(m["mode"], "opt-in");
    assert_eq!(m["source"], "staff");
    assert_eq!(v["recorded"][0]["purpose"], "marketing");

    let after = json(
        d,
        &[
            "segment",
            "export",
            &segment,
            "--out",
            b.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(!csv_ids(&b).contains(&x), "the next export omits them");
    assert_eq!(
        after["customers"].as_u64(),
        before["customers"].as_u64().map(|n| n - 1)
    );
    assert_eq!(
        after["left_out"]["withdrawn"].as_u64(),
        before["left_out"]["withdrawn"].as_u64().map(|n| n + 1)
    );
    // the CSV export's summary says who was left out, on stderr
    let out = run_in(
        d,
        &["segment", "export", &segment, "--out", b.to_str().unwrap()],
    );
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("left out for lack of marketing consent") && err.contains("withdrawn"),
        "{err}"
    );

    // personalization: the labelled popular list, then personal again
    ok(d, &["train", "recs", "--algo", "item-knn", "--quiet"]);
    let personal = json(d, &["recommend", "--customer", &key, "--k", "5", "--json"]);
    ok(
        d,
        &["privacy", "consent", &key, "--withdraw", "personalization"],
    );
    let popular = json(d, &["recommend", "--customer", &key, "--k", "5", "--json"]);
    assert_eq!(popular["personalized"], false);
    assert_eq!(popular["basis"], "popular");
    assert_eq!(popular["reason"], "consent personalization withdrawn");
    let text = ok(d, &["recommend", "--customer", &key, "--k", "5"]);
    assert!(
        text.contains("not personalized (consent personalization withdrawn)"),
        "{text}"
    );
    let all = d.join("all.csv");
    let rep = json(
        d,
        &[
            "recommend",
            "--all",
            "--out",
            all.to_str().unwrap(),
            "--k",
            "5",
            "--json",
        ],
    );
    assert_eq!(rep["popular_for_consent"]["withdrawn"], 1);
    ok(
        d,
        &["privacy", "consent", &key, "--grant", "personalization"],
    );
    let back = json(d, &["recommend", "--customer", &key, "--k", "5", "--json"]);
    assert_eq!(back["items"], personal["items"]);
    assert_eq!(back["model_version"], personal["model_version"]);

    // the history: every change, in order
    let v = json(d, &["privacy", "consent", &key, "--json"]);
    let staff: Vec<(String, bool)> = v["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|h| h["source"] == "staff")
        .map(|h| {
            (
                h["purpose"].as_str().expect("purpose").to_string(),
                h["granted"].as_bool().expect("granted"),
            )
        })
        .collect();
    assert_eq!(
        staff,
        vec![
            ("marketing".to_string(), false),
            ("personalization".to_string(), false),
            ("personalization".to_string(), true),
        ]
    );
    let text = ok(d, &["privacy", "consent", &key]);
    assert!(text.contains("history (oldest first)"), "{text}");
    assert!(
        text.contains("marketing") && text.contains("withdrawn"),
        "{text}"
    );

    // an unknown purpose: a non-zero exit naming it, nothing recorded
    let err = fails(d, &["privacy", "consent", &key, "--withdraw", "telepathy"]);
    assert!(
        err.contains("telepathy") && err.contains("known purposes"),
        "{err}"
    );
    let v2 = json(d, &["privacy", "consent", &key, "--json"]);
    assert_eq!(v2["history"], v["history"]);

    // a role without consents.read is refused
    let err = fails(d, &["--as-role", "analyst", "privacy", "consent", &key]);
    assert!(err.contains("consents.read"), "{err}");
}
