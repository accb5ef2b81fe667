//! `gap`, `gap departments`, `gap customer`, `gap ask-next` end to end: the
//! JSON fields the issue names, the question queue CSV, the training table
//! that `eval ask-next` reads, clear errors, a policy that masks, and the
//! Complete Journey's departments (ignored: real data).

use std::path::Path;

use crate::common::{fails, json, ok, run_in, shared_data};

fn demo_store(dir: &Path, customers: &str) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", customers, "--quiet"],
    );
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

#[test]
fn gap_commands_answer_with_the_contract_fields() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "600");
    let d = json(dir, &["gap", "departments", "--json"]);
    let depts = d["departments"].as_array().expect("departments");
    assert_eq!(depts.len(), 5);
    for x in depts.iter().chain(std::iter::once(&d["unified"])) {
        for f in ["churn_auc", "ndcg10", "spend_mae"] {
            assert!(x[f].is_number(), "{f} in {x}");
        }
        assert!(x["name"].is_string() && x["customers"].is_u64());
    }
    let best = depts
        .iter()
        .map(|x| x["churn_auc"].as_f64().unwrap_or(1.0))
        .fold(0.0, f64::max);
    assert!(d["unified"]["churn_auc"].as_f64().unwrap_or(0.0) > best);
    let text = ok(dir, &["gap", "departments"]);
    assert!(
        text.contains("value of sharing") && text.contains("unified"),
        "{text}"
    );

    let g = json(dir, &["gap", "--json"]);
    assert!(
        g["backtest"]["churn_spearman"].as_f64().unwrap_or(0.0) < 0.0,
        "{}",
        g["backtest"]
    );
    assert_eq!(
        g["distribution"]["histogram"].as_array().map(Vec::len),
        Some(10)
    );

    let c = json(dir, &["gap", "customer", "crm:C000002", "--json"]);
    let s = c["knowledge_score"].as_f64().expect("knowledge_score");
    assert!((0.0..=1.0).contains(&s));
    let dims: Vec<&str> = c["dimensions"]
        .as_array()
        .expect("dims")
        .iter()
        .filter_map(|d| d["dimension"].as_str())
        .collect();
    assert_eq!(
        dims,
        [
            "contact",
            "demographics",
            "behaviour",
            "preferences",
            "needs_feedback",
            "consent"
        ]
    );
    assert!(
        c["held_not_shown"]
            .as_array()
            .is_some_and(|v| !v.is_empty())
    );
    assert!(c["unaware_of"].is_array() && c["conflicts"].is_array());
    let text = ok(dir, &["gap", "customer", "crm:C000002"]);
    assert!(text.contains("knowledge score") && text.contains("what they do not know about us"));

    // the question queue and the training table
    let out = ok(
        dir,
        &[
            "gap",
            "ask-next",
            "--for",
            "churn",
            "--top",
            "2",
            "--out",
            "q.csv",
            "--table-out",
            "t.csv",
        ],
    );
    assert!(out.contains("decisions per second"), "{out}");
    let q = std::fs::read_to_string(dir.join("q.csv")).expect("queue");
    let mut lines = q.lines();
    assert_eq!(
        lines.next(),
        Some("customer,rank,field,question,expected_gain")
    );
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() > 100);
    assert!(rows.iter().all(|r| r.contains(",1,") || r.contains(",2,")));
    let t = std::fs::read_to_string(dir.join("t.csv")).expect("table");
    let header = t.lines().next().expect("header");
    assert!(
        header.contains("plan") && header.ends_with("outcome"),
        "{header}"
    );
    assert!(!t.contains("@"), "the training table holds no contact data");
    let e = json(
        dir,
        &[
            "eval",
            "ask-next",
            "--csv",
            "t.csv",
            "--target",
            "outcome",
            "--positive",
            "churns",
            "--known",
            "orders,spend,days_since_last_order,tickets,events",
            "--budget",
            "3",
            "--folds",
            "3",
            "--json",
        ],
    );
    assert_eq!(e["curves"]["ask_next"].as_array().map(Vec::len), Some(4));
    for (decision, classes) in [("spend", 4), ("recs", 2)] {
        let r = json(dir, &["gap", "ask-next", "--for", decision, "--json"]);
        assert!(
            r["classes"].as_array().is_some_and(|c| c.len() >= classes),
            "{decision}"
        );
        assert!(r["customers"].as_u64().unwrap_or(0) > 0);
    }
}

#[test]
fn gap_errors_name_the_parameter_and_a_masking_role_sees_masks() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir, "200");
    let e = fails(dir, &["gap", "ask-next", "--for", "weather"]);
    assert!(
        e.contains("--for") && e.contains("churn, recs or spend"),
        "{e}"
    );
    let e = fails(dir, &["gap", "ask-next", "--top", "0"]);
    assert!(e.contains("--top"), "{e}");
    let e = fails(dir, &["gap", "customer", "crm:NOPE"]);
    assert!(
        e.to_lowercase().contains("not found") || e.contains("no customer"),
        "{e}"
    );
    let e = fails(dir, &["gap", "departments", "--model", "oracle"]);
    assert!(e.contains("--model"), "{e}");
    // a planted conflict: the admin sees the values, support (demographics
    // hidden) sees that departments disagree and where, not the values
    let truth = |f: &str| std::fs::read_to_string(dir.join("demo/truth").join(f)).expect("truth");
    let conflicts = truth("conflicts.csv");
    let persons = truth("persons.csv");
    let crm_of = |person: &str| {
        persons
            .lines()
            .find(|l| l.split(',').next() == Some(person))
            .and_then(|l| l.split(',').nth(1).map(str::to_string))
            .filter(|c| !c.is_empty())
    };
    let key = conflicts
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').next())
        .find_map(|p| {
            let c = crm_of(p)?;
            let v = json(dir, &["gap", "customer", &format!("crm:{c}"), "--json"]);
            (!v["conflicts"].as_array()?.is_empty()).then_some(format!("crm:{c}"))
        })
        .expect("a customer with a conflict");
    let admin = json(dir, &["gap", "customer", &key, "--json"]);
    assert!(admin["conflicts"][0]["values"][0]["value"].is_string());
    let support = json(
        dir,
        &["--as-role", "support", "gap", "customer", &key, "--json"],
    );
    let values = support["conflicts"][0]["values"]
        .as_array()
        .expect("values");
    assert!(
        values
            .iter()
            .all(|v| v["value"].is_null() && v["sources"].is_array()),
        "{support}"
    );
    // a role that may not export lists may not pull the question queue
    let out = run_in(dir, &["--as-role", "support", "gap", "ask-next"]);
    assert!(!out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.contains("forbidden") || e.contains("not allowed"), "{e}");
}

#[test]
#[ignore = "real data: ../shared/data"]
fn complete_journey_departments_and_the_knowledge_backtest() {
    let _data = shared_data();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let cfg =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/completejourney/infogap.toml");
    let cfg = cfg.to_string_lossy().to_string();
    ok(dir, &["import", "--config", &cfg, "--quiet"]);
    let d = json(dir, &["gap", "departments", "--json"]);
    let names: Vec<&str> = d["departments"]
        .as_array()
        .expect("departments")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["demographics", "transactions", "campaigns", "coupons"]
    );
    let unified = d["unified"]["churn_auc"].as_f64().expect("auc");
    for x in d["departments"].as_array().expect("departments") {
        assert!(
            unified >= x["churn_auc"].as_f64().unwrap_or(1.0) - 0.005,
            "{x}"
        );
    }
    let g = json(dir, &["gap", "--json"]);
    assert!(
        g["backtest"]["churn_spearman"].as_f64().unwrap_or(0.0) < 0.0,
        "{}",
        g["backtest"]
    );
}
