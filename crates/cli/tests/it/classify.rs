//! End-to-end tests of `eval classify`, `train churn` and `churn`.

use std::fmt::Write as _;

use crate::common::{json, ok, run_in, shared_data};

/// A messy `;`-delimited CRLF file: quoted fields with embedded delimiters, an
/// ID column, blank numeric cells; churn driven by plan and usage.
fn messy_csv(dir: &std::path::Path) -> std::path::PathBuf {
    let mut s = String::from("\u{feff}customer_id;plan;\"monthly usage\";note;churned\r\n");
    let mut state: u64 = 12345;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as f64) / ((1u64 << 31) as f64)
    };
    for i in 0..800 {
        let plan = ["basic", "plus", "pro"][(next() * 3.0) as usize % 3];
        let usage = next() * 100.0;
        let z = -1.0 + if plan == "basic" { 1.8 } else { 0.0 } - 0.03 * (usage - 50.0);
        let churn = next() < 1.0 / (1.0 + (-z).exp());
        let usage_cell = if i % 41 == 0 {
            String::new()
        } else {
            format!("{usage:.2}")
        };
        let _ = write!(
            s,
            "ID-{i:05};{plan};{usage_cell};\"said \"\"hi\"\"; twice\";{}\r\n",
            if churn { "yes" } else { "no" }
        );
    }
    let p = dir.join("messy.csv");
    std::fs::write(&p, s).expect("write csv");
    p
}

#[test]
fn eval_classify_reads_a_messy_csv_and_reports_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = messy_csv(dir.path());
    let csv = csv.to_str().expect("utf-8 path");
    for model in ["logreg", "tree", "gbm"] {
        let v = json(
            dir.path(),
            &[
                "eval", "classify", "--csv", csv, "--target", "churned", "--model", model,
                "--folds", "5", "--seed", "0", "--json",
            ],
        );
        for key in [
            "roc_auc",
            "pr_auc",
            "log_loss",
            "brier",
            "accuracy",
            "fit_seconds_per_fold",
            "model",
        ] {
            assert!(v.get(key).is_some(), "{model}: missing {key} in {v}");
        }
        assert_eq!(v["model"], model);
        let auc = v["roc_auc"].as_f64().expect("auc");
        assert!(auc > 0.75, "{model}: ROC AUC {auc}");
        let dropped = v["table"]["dropped"].as_array().expect("dropped");
        assert!(
            dropped.iter().any(|d| d["name"] == "customer_id"),
            "{dropped:?}"
        );
        assert_eq!(v["table"]["target"]["positive"], "yes");
        assert_eq!(v["per_fold"].as_array().map(Vec::len), Some(5));
    }
    // --drop and --positive
    let v = json(
        dir.path(),
        &[
            "eval",
            "classify",
            "--csv",
            csv,
            "--target",
            "churned",
            "--positive",
            "no",
            "--drop",
            "note,plan",
            "--model",
            "logreg",
            "--json",
        ],
    );
    assert_eq!(v["table"]["target"]["positive"], "no");
    let kept = v["table"]["kept"].as_array().expect("kept");
    assert!(kept.iter().all(|k| k != "plan" && k != "note"), "{kept:?}");
}

#[test]
fn eval_classify_rejects_bad_input_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = messy_csv(dir.path());
    let csv = csv.to_str().expect("utf-8 path");
    let out = run_in(
        dir.path(),
        &[
            "eval", "classify", "--csv", csv, "--target", "nope", "--json",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
    let out = run_in(
        dir.path(),
        &[
            "eval", "classify", "--csv", csv, "--target", "churned", "--model", "forest",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("forest"));
    let missing = dir.path().join("missing.csv");
    let out = run_in(
        dir.path(),
        &[
            "eval",
            "classify",
            "--csv",
            missing.to_str().expect("path"),
            "--target",
            "x",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.csv"));
}

#[test]
fn churn_on_demo_data_recovers_planted_drivers_with_reasons() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // No store yet: a clear error, and none is created.
    let out = run_in(d, &["churn", "--top", "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no store at"));
    assert!(!d.join("infogap.db").exists());
    ok(
        d,
        &["demo", "--out", "demo", "--customers", "800", "--seed", "3"],
    );
    ok(d, &["import", "--config", "demo/infogap.toml"]);
    // No model yet: a clear error.
    let out = run_in(d, &["churn", "--top", "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("train churn"));
    let t = json(d, &["train", "churn", "--model", "logreg", "--json"]);
    assert_eq!(t["version"], 1);
    assert!(
        t["metrics"]["roc_auc"].as_f64().expect("auc") > 0.75,
        "{}",
        t["metrics"]
    );
    let drivers: Vec<String> = t["drivers"]
        .as_array()
        .expect("drivers")
        .iter()
        .map(|d| d["feature"].as_str().unwrap_or_default().to_string())
        .collect();
    let top6 = &drivers[..6.min(drivers.len())];
    // the planted complaints: counted as tickets, or read as negative texts
    assert!(
        top6.iter().any(|f| f == "tickets" || f == "sentiment"),
        "{drivers:?}"
    );
    assert!(
        top6.iter().any(|f| f == "survey" || f == "review"),
        "{drivers:?}"
    );
    assert!(
        top6.iter().any(
            |f| ["order_trend", "recency_days", "overdue_ratio", "frequency"].contains(&f.as_str())
        ),
        "{drivers:?}"
    );
    let age = drivers.iter().position(|f| f == "attr:age_band");
    assert!(
        age.is_none_or(|p| p >= 8),
        "age band should not drive churn: {drivers:?}"
    );
    let cal = t["calibration"].as_array().expect("calibration");
    assert!(!cal.is_empty());
    let n: u64 = cal.iter().map(|b| b["count"].as_u64().unwrap_or(0)).sum();
    assert_eq!(n, t["customers"].as_u64().expect("customers"));

    let r = json(d, &["churn", "--top", "20", "--json"]);
    let list = r["customers"].as_array().expect("customers");
    assert_eq!(list.len(), 20);
    let probs: Vec<f64> = list
        .iter()
        .map(|c| c["probability"].as_f64().expect("p"))
        .collect();
    assert!(probs.windows(2).all(|w| w[0] >= w[1]));
    assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    let reasons: Vec<String> = list
        .iter()
        .flat_map(|c| c["reasons"].as_array().cloned().unwrap_or_default())
        .map(|x| x["feature"].as_str().unwrap_or_default().to_string())
        .collect();
    let planted = reasons
        .iter()
        .filter(|f| {
            [
                "tickets",
                "sentiment",
                "survey",
                "review",
                "order_trend",
                "recency_days",
                "overdue_ratio",
            ]
            .contains(&f.as_str())
        })
        .count();
    assert!(planted * 2 > reasons.len(), "{reasons:?}");
    // Text form shows reasons and the calibration table.
    let text = ok(d, &["churn", "--top", "3"]);
    assert!(text.contains("calibration"), "{text}");
}

#[test]
#[ignore = "real data: ../shared/data"]
fn telco_auto_reaches_the_roc_auc_target() {
    let csv = shared_data().join("telco-churn/WA_Fn-UseC_-Telco-Customer-Churn.csv");
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = csv.to_str().expect("utf-8 path");
    let v = json(
        dir.path(),
        &[
            "eval", "classify", "--csv", csv, "--target", "Churn", "--model", "auto", "--folds",
            "5", "--seed", "0", "--json",
        ],
    );
    let auc = v["roc_auc"].as_f64().expect("auc");
    // Target 0.850; best peer (scikit-learn logistic regression, same protocol) 0.8454.
    assert!(auc >= AUTO_TELCO_MIN, "Telco auto ROC AUC {auc}");
    let dropped = v["table"]["dropped"].as_array().expect("dropped");
    assert!(dropped.iter().any(|d| d["name"] == "customerID"));
}

/// The target (auto measured 0.8507 with seed 0, 2 inner folds, no refit; see BENCHMARKS.md).
const AUTO_TELCO_MIN: f64 = 0.850;
