//! End-to-end tests: `eval regress`, `bayes`, `segments`, `segment export`,
//! `train amount`.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use crate::common::{fails, json, ok, run_in};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

/// A `;`-separated, CRLF, BOM table with quoted fields, an id column, a
/// categorical column and blank cells; y = 5 + 2·x + (region = "North, East" ? 10 : 0) + noise.
fn write_table(dir: &Path) -> std::path::PathBuf {
    let mut s = String::from("\u{feff}cust_id;x;region;y\r\n");
    for i in 0..300u64 {
        let x = (i * 37 % 101) as f64 / 10.0;
        let north = i % 3 == 0;
        let noise = ((i * 7919 % 17) as f64 - 8.0) * 0.05;
        let y = 5.0 + 2.0 * x + if north { 10.0 } else { 0.0 } + noise;
        let region = if north { "\"North, East\"" } else { "South" };
        let xs = if i % 40 == 7 {
            String::new()
        } else {
            format!("{x}")
        };
        s.push_str(&format!("C{i:04};{xs};{region};{y}\r\n"));
    }
    let p = dir.join("t.csv");
    std::fs::write(&p, s).expect("write table");
    p
}

#[test]
fn eval_regress_recovers_planted_coefficients_from_any_csv() {
    let dir = tmp();
    let csv = write_table(dir.path());
    let v = json(
        dir.path(),
        &[
            "eval",
            "regress",
            "--csv",
            csv.to_str().unwrap(),
            "--target",
            "y",
            "--json",
        ],
    );
    for k in [
        "r2",
        "rmse",
        "intercept",
        "coefficients",
        "fit_seconds",
        "standard_errors",
    ] {
        assert!(v.get(k).is_some(), "missing {k}: {v}");
    }
    let c = &v["coefficients"];
    // Blank x cells are imputed, so the slope is slightly attenuated but close.
    let slope = c["x"].as_f64().unwrap();
    assert!((slope - 2.0).abs() < 0.1, "{v}");
    let diff = c["region=North, East"].as_f64().unwrap() - c["region=South"].as_f64().unwrap();
    assert!((diff - 10.0).abs() < 0.5, "{v}");
    assert!(v["r2"].as_f64().unwrap() > 0.95);
    let dropped = v["preparation"]["dropped"].as_array().unwrap();
    assert!(dropped.iter().any(|d| d["name"] == "cust_id" && d["reason"].as_str().unwrap().starts_with("id-like")), "{v}");
    assert!(v["coefficients"].get("x=missing").is_some(), "{v}");
    assert!(v["cv"]["r2"].as_f64().unwrap() > 0.9);
}

#[test]
fn eval_regress_ridge_shrinks_and_synthetic_recovers_truth() {
    let dir = tmp();
    let v = json(
        dir.path(),
        &[
            "eval",
            "regress",
            "--synthetic",
            "20000",
            "--seed",
            "3",
            "--json",
        ],
    );
    let c = &v["coefficients"];
    for (k, t) in [("age", 0.5), ("income", 0.3), ("purchase_history", 0.2)] {
        let b = c[k].as_f64().unwrap();
        let se = v["standard_errors"][k].as_f64().unwrap();
        assert!(((b - t) / se).abs() < 4.5, "{k}: {b} ± {se}");
    }
    let r = json(
        dir.path(),
        &[
            "eval",
            "regress",
            "--synthetic",
            "20000",
            "--seed",
            "3",
            "--ridge",
            "100000",
            "--json",
        ],
    );
    assert!(r["coefficients"]["age"].as_f64().unwrap().abs() < c["age"].as_f64().unwrap().abs());
}

#[test]
fn eval_regress_reports_ragged_rows_and_unknown_targets() {
    let dir = tmp();
    let p = dir.path().join("bad.csv");
    std::fs::write(&p, "a,b,c\n1,2,3\n4,5\n").unwrap();
    let err = fails(
        dir.path(),
        &[
            "eval",
            "regress",
            "--csv",
            p.to_str().unwrap(),
            "--target",
            "c",
            "--json",
        ],
    );
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("ragged"),
        "{err}"
    );
    let csv = write_table(dir.path());
    let out = run_in(
        dir.path(),
        &[
            "eval",
            "regress",
            "--csv",
            csv.to_str().unwrap(),
            "--target",
            "nope",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn bayes_seed_examples() {
    let dir = tmp();
    let v = json(
        dir.path(),
        &[
            "bayes",
            "--prior",
            "0.1",
            "--likelihood",
            "0.8",
            "--evidence",
            "0.3",
            "--json",
        ],
    );
    let p = v["posterior"].as_f64().unwrap();
    assert!((p - 0.2667).abs() < 5e-5, "{v}");
    assert_eq!(v["evidence"].as_f64(), Some(0.3));

    let out = run_in(
        dir.path(),
        &[
            "bayes",
            "--prior",
            "0.7",
            "--likelihood",
            "0.9",
            "--evidence",
            "0.5",
            "--json",
        ],
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("P(B) ≥ P(B|A)·P(A)") && err.contains("0.63"),
        "{err}"
    );

    let v = json(
        dir.path(),
        &[
            "bayes",
            "--prior",
            "0.01",
            "--likelihood",
            "0.9",
            "--likelihood-not",
            "0.05",
            "--json",
        ],
    );
    let pb = 0.009 + 0.05 * 0.99;
    assert!((v["evidence"].as_f64().unwrap() - pb).abs() < 1e-12);
    assert!((v["posterior"].as_f64().unwrap() - 0.009 / pb).abs() < 1e-12);

    let out = run_in(
        dir.path(),
        &[
            "bayes",
            "--prior",
            "1.5",
            "--likelihood",
            "0.5",
            "--evidence",
            "0.5",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a probability"));
}

/// Store-based commands on the demo data (needs `demo` and `import`).
#[test]
fn segments_export_bayes_and_amount_on_the_demo_store() {
    let dir = tmp();
    let d = dir.path();
    let demo = d.join("demo");
    ok(
        d,
        &[
            "demo",
            "--out",
            demo.to_str().unwrap(),
            "--customers",
            "300",
            "--seed",
            "1",
        ],
    );
    ok(
        d,
        &[
            "import",
            "--config",
            demo.join("infogap.toml").to_str().unwrap(),
        ],
    );

    let v = json(d, &["segments", "--json"]);
    let segs = v["segments"].as_array().unwrap();
    let total: u64 = segs.iter().map(|s| s["size"].as_u64().unwrap()).sum();
    assert_eq!(total, v["customers"].as_u64().unwrap());
    let share: f64 = segs
        .iter()
        .map(|s| s["revenue_share"].as_f64().unwrap())
        .sum();
    assert!((share - 1.0).abs() < 1e-6);
    let champions = segs
        .iter()
        .find(|s| s["name"] == "champions")
        .expect("champions segment");
    let lost_like = segs
        .iter()
        .filter(|s| s["name"] == "lost" || s["name"] == "hibernating")
        .collect::<Vec<_>>();
    assert!(!lost_like.is_empty());
    for s in &lost_like {
        assert!(
            s["median_recency_days"].as_f64().unwrap()
                > champions["median_recency_days"].as_f64().unwrap()
        );
        assert!(
            s["median_monetary"].as_f64().unwrap() < champions["median_monetary"].as_f64().unwrap()
        );
    }
    assert!(!champions["top_categories"].as_array().unwrap().is_empty());

    let k = json(d, &["segments", "--method", "kmeans", "--json"]);
    let kk = k["k"].as_u64().unwrap();
    assert!((2..=8).contains(&kk));
    assert_eq!(
        k["segments"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["name"].as_str().unwrap().starts_with("cluster"))
            .count() as u64,
        kk
    );

    let out = d.join("champions.csv");
    let exported = json(
        d,
        &[
            "segment",
            "export",
            "champions",
            "--out",
            out.to_str().unwrap(),
            "--json",
        ],
    );
    let text = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("key,id,segment,recency_days,frequency,monetary"));
    assert_eq!(
        rows.len() as u64 - 1,
        exported["customers"].as_u64().unwrap()
    );
    // a segment export is a marketing list: members without marketing
    // consent are left out, and counted
    let left = &exported["left_out"];
    assert_eq!(left["purpose"], "marketing");
    assert_eq!(
        rows.len() as u64 - 1
            + left["withdrawn"].as_u64().unwrap()
            + left["not_granted"].as_u64().unwrap(),
        champions["size"].as_u64().unwrap()
    );
    assert!(rows[1..].iter().all(|r| r.contains(",champions,")));
    let bad = run_in(
        d,
        &["segment", "export", "vips", "--out", out.to_str().unwrap()],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("segments are"));

    // Planted churn drivers: quiet customers and complainers churn more than average.
    let b = json(
        d,
        &[
            "bayes",
            "--from-store",
            "--event",
            "no purchase in 30 days",
            "--outcome",
            "churn",
            "--json",
        ],
    );
    let (post, prior) = (
        b["posterior"].as_f64().unwrap(),
        b["prior"].as_f64().unwrap(),
    );
    assert!(post > prior, "{b}");
    assert!(
        b["interval"]["low"].as_f64().unwrap() <= post
            && post <= b["interval"]["high"].as_f64().unwrap()
    );
    let t = json(
        d,
        &["bayes", "--from-store", "--event", "complaint", "--json"],
    );
    assert!(
        t["posterior"].as_f64().unwrap() > t["prior"].as_f64().unwrap(),
        "{t}"
    );

    let a = json(d, &["train", "amount", "--json"]);
    assert!(a["version"].as_i64().unwrap() >= 1);
    let cv = &a["cv"];
    assert!(cv["r2"].as_f64().unwrap() > 0.0, "{a}");
    assert!(
        cv["rmse"].as_f64().unwrap() < a["baseline_rmse"].as_f64().unwrap(),
        "{a}"
    );
}

/// Telco churn (real data): the 11 blank `TotalCharges` stay a numeric column
/// (median + indicator), `customerID` is dropped as ID-like, and the monthly
/// charge is (almost) a linear function of the subscribed services.
#[test]
#[ignore = "real data: ../shared/data"]
fn eval_regress_on_telco() {
    let data = crate::common::shared_data();
    let csv = data.join("telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv");
    let dir = tmp();
    let v = json(
        dir.path(),
        &[
            "eval",
            "regress",
            "--csv",
            csv.to_str().unwrap(),
            "--target",
            "MonthlyCharges",
            "--json",
        ],
    );
    assert!(v["cv"]["r2"].as_f64().unwrap() > 0.99, "{}", v["cv"]);
    let dropped = v["preparation"]["dropped"].as_array().unwrap();
    assert!(dropped.iter().any(|d| d["name"] == "customerID"));
    let numeric = v["encoding"]["numeric"].as_array().unwrap();
    let tc = numeric
        .iter()
        .find(|n| n["name"] == "TotalCharges")
        .expect("TotalCharges numeric");
    assert_eq!(tc["blanks_in_training"].as_u64(), Some(11));
    assert_eq!(tc["indicator"], "TotalCharges=missing");
    // Fibre costs more than DSL.
    let c = &v["coefficients"];
    assert!(
        c["InternetService=Fiber optic"].as_f64().unwrap()
            > c["InternetService=DSL"].as_f64().unwrap()
    );
}
