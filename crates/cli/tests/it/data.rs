//! End-to-end tests of the data commands: import, bad input, identity
//! resolution on the messy demo, the unified view, splits, stats.

use std::path::Path;

use crate::common::{fails, json, ok, run_in};

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(p, text).expect("write");
}

const CONFIG: &str = r#"
[[source]]
name = "crm"
file = "crm.csv"
kind = "customers"
[source.columns]
customer = "id"
email = "email"

[[source]]
name = "sales"
file = "sales.csv"
kind = "order_lines"
namespace = "crm"
[source.columns]
order = "order"
customer = "customer"
product = "sku"
amount = "total"
time = "date"
"#;

fn sales_with_bad_date() -> String {
    let mut s = String::from("order,customer,sku,total,date\n");
    for i in 2..=12 {
        let date = if i == 7 {
            "2024-02-30".to_string()
        } else {
            format!("2024-03-{i:02}")
        };
        s.push_str(&format!("O{i},C{},P{},{}.50,{date}\n", i % 3, i % 4, i));
    }
    s
}

fn setup(dir: &Path) {
    write(
        dir,
        "crm.csv",
        "id,email\nC0,a@example.com\nC1, B@Example.com \nC2,n/a\n",
    );
    write(dir, "sales.csv", &sales_with_bad_date());
    write(dir, "infogap.toml", CONFIG);
}

#[test]
fn a_bad_date_fails_the_file_names_line_and_column_and_writes_nothing_from_it() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    let out = run_in(d.path(), &["import", "--config", "infogap.toml"]);
    assert!(!out.status.success(), "import must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sales.csv"), "names the file: {err}");
    assert!(err.contains("line 7"), "names the line: {err}");
    assert!(err.contains("\"date\""), "names the column: {err}");
    assert!(err.contains("2024-02-30"), "shows the value: {err}");
    let s = json(d.path(), &["stats", "--json"]);
    assert_eq!(s["order_lines"], 0, "nothing from the bad file: {s}");
    assert_eq!(s["orders"], 0);
    assert_eq!(s["revenue"], 0.0);
    // the good file before it was imported
    assert_eq!(s["customers"], 3);
}

#[test]
fn skip_bad_rows_imports_the_rest_and_writes_rejects() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    let rep = json(
        d.path(),
        &[
            "import",
            "--config",
            "infogap.toml",
            "--skip-bad-rows",
            "1",
            "--json",
        ],
    );
    let sales = &rep["sources"][1];
    assert_eq!(sales["rows_read"], 11);
    assert_eq!(sales["rows_rejected"], 1);
    let s = json(d.path(), &["stats", "--json"]);
    assert_eq!(s["order_lines"], 10);
    let rejects =
        std::fs::read_to_string(d.path().join("sales.rejects.csv")).expect("rejects file");
    let lines: Vec<&str> = rejects.lines().collect();
    assert_eq!(lines.len(), 2, "{rejects}");
    assert!(lines[1].contains(",7,date,2024-02-30,"), "{rejects}");
    // a second bad row exceeds a budget of 1
    let mut two = sales_with_bad_date();
    two.push_str("O99,C1,P1,abc,2024-03-01\n");
    write(d.path(), "sales.csv", &two);
    let err = fails(
        d.path(),
        &["import", "--config", "infogap.toml", "--skip-bad-rows", "1"],
    );
    assert!(
        err.contains("line 13") && err.contains("\"total\""),
        "{err}"
    );
    assert_eq!(
        json(d.path(), &["stats", "--json"])["order_lines"],
        10,
        "the failed re-import changed nothing"
    );
}

#[test]
fn a_mapped_column_missing_from_the_header_fails_before_anything_is_written() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    write(
        d.path(),
        "infogap.toml",
        &CONFIG.replace("amount = \"total\"", "amount = \"line_total\""),
    );
    let err = fails(d.path(), &["import", "--config", "infogap.toml"]);
    assert!(
        err.contains("line_total") && err.contains("infogap.toml:19"),
        "{err}"
    );
    assert_eq!(
        json(d.path(), &["stats", "--json"])["customers"],
        0,
        "nothing written"
    );
}

#[test]
fn config_errors_name_the_line() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    write(
        d.path(),
        "infogap.toml",
        &CONFIG.replace("kind = \"order_lines\"", "kind = \"orderlines\""),
    );
    let err = fails(d.path(), &["import", "--config", "infogap.toml"]);
    assert!(
        err.contains("infogap.toml:13") && err.contains("unknown kind"),
        "{err}"
    );
    write(
        d.path(),
        "infogap.toml",
        &CONFIG.replace("file = \"crm.csv\"", "file = \"nope.csv\""),
    );
    let out = run_in(d.path(), &["import", "--config", "infogap.toml"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("infogap.toml:4") && err.contains("not found"),
        "{err}"
    );
}

#[test]
fn a_row_without_any_identity_key_is_a_bad_row() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    write(d.path(), "crm.csv", "id,email\nC0,a@example.com\nn/a,  \n");
    let out = run_in(d.path(), &["import", "--config", "infogap.toml"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("crm.csv: line 3") && err.contains("no identity key"),
        "{err}"
    );
}

fn truth_people(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("truth/persons.csv"))
        .expect("truth")
        .lines()
        .count()
        - 1
}

#[test]
fn the_messy_demo_resolves_to_the_true_number_of_people_and_reimport_changes_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    ok(
        d.path(),
        &["demo", "--out", "demo", "--customers", "300", "--seed", "7"],
    );
    let people = truth_people(&d.path().join("demo"));
    assert_eq!(people, 300);
    let rep = json(
        d.path(),
        &["import", "--config", "demo/infogap.toml", "--json"],
    );
    assert_eq!(
        rep["customers"], 300,
        "identity resolution must find exactly the planted people"
    );
    let shared = rep["over_shared_keys"].as_array().expect("list");
    assert!(
        shared
            .iter()
            .any(|k| k["value"] == "family.home@example.net"),
        "{shared:?}"
    );
    let before = json(d.path(), &["stats", "--json"]);
    assert_eq!(before["customers"], 300);
    let again = json(
        d.path(),
        &["import", "--config", "demo/infogap.toml", "--json"],
    );
    for s in again["sources"].as_array().expect("sources") {
        assert_eq!(s["status"], "unchanged", "{s}");
        assert_eq!(s["rows_written"], 0);
    }
    let after = json(d.path(), &["stats", "--json"]);
    for k in [
        "customers",
        "orders",
        "order_lines",
        "products",
        "events",
        "feedback",
        "revenue",
    ] {
        assert_eq!(before[k], after[k], "{k} changed on re-import");
    }
}

#[test]
fn customer_show_lists_every_source_of_a_merged_person_and_split_is_reversible() {
    let d = tempfile::tempdir().expect("tmp");
    ok(
        d.path(),
        &["demo", "--out", "demo", "--customers", "200", "--seed", "3"],
    );
    ok(d.path(), &["import", "--config", "demo/infogap.toml"]);
    // a person present in the CRM, on the web and at the support desk
    let persons = std::fs::read_to_string(d.path().join("demo/truth/persons.csv")).expect("truth");
    let row = persons
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect::<Vec<_>>())
        .find(|f| !f[1].is_empty() && !f[2].is_empty() && f[12] == "0")
        .expect("a person with crm and web ids");
    let (crm, web, support, email) = (&row[1], &row[2], &row[3], &row[4]);
    let view = json(
        d.path(),
        &["customer", "show", crm, "--namespace", "crm", "--json"],
    );
    let values: Vec<String> = view["identities"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|i| i["value"].as_str().unwrap_or("").to_string())
        .collect();
    for k in [crm, web, support, email] {
        assert!(values.contains(k), "{k} missing from {values:?}");
    }
    let sources: Vec<&str> = view["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    for s in ["crm", "web", "support"] {
        assert!(sources.contains(&s), "{s} missing from {sources:?}");
    }
    // the same customer by email, in any case and with spaces
    let by_email = json(
        d.path(),
        &[
            "customer",
            "show",
            &format!("  {}  ", email.to_uppercase()),
            "--json",
        ],
    );
    assert_eq!(by_email["id"], view["id"]);
    let merges = ok(d.path(), &["customer", "merges", crm, "--namespace", "crm"]);
    assert!(
        merges.contains(web.as_str()) || merges.contains(email.as_str()),
        "{merges}"
    );

    let n0 = json(d.path(), &["stats", "--json"])["customers"]
        .as_i64()
        .expect("n");
    let spec = format!("web:{web}");
    let sp = json(
        d.path(),
        &[
            "customer",
            "split",
            crm,
            "--namespace",
            "crm",
            "--identity",
            &spec,
            "--json",
        ],
    );
    assert_ne!(sp["to_customer"], sp["from_customer"]);
    assert_eq!(
        json(d.path(), &["stats", "--json"])["customers"].as_i64(),
        Some(n0 + 1)
    );
    let after = json(
        d.path(),
        &["customer", "show", web, "--namespace", "web", "--json"],
    );
    assert_ne!(
        after["id"], view["id"],
        "the web identity is a customer of its own now"
    );
    assert!(
        after["events"].as_array().is_some_and(|e| !e.is_empty()),
        "its events went with it"
    );
    ok(
        d.path(),
        &[
            "customer",
            "unsplit",
            crm,
            "--namespace",
            "crm",
            "--identity",
            &spec,
        ],
    );
    assert_eq!(
        json(d.path(), &["stats", "--json"])["customers"].as_i64(),
        Some(n0)
    );
    let back = json(
        d.path(),
        &["customer", "show", web, "--namespace", "web", "--json"],
    );
    assert_eq!(back["id"], view["id"]);
}

#[test]
fn unknown_customer_is_a_clear_error() {
    let d = tempfile::tempdir().expect("tmp");
    setup(d.path());
    ok(
        d.path(),
        &["import", "--config", "infogap.toml", "--skip-bad-rows", "1"],
    );
    let out = run_in(d.path(), &["customer", "show", "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no customer"),
        "{:?}",
        out
    );
}

#[test]
#[ignore = "real data: ../shared/data"]
fn complete_journey_imports_to_the_published_figures_twice() {
    let d = tempfile::tempdir().expect("tmp");
    let db = d.path().join("infogap.db");
    complete_journey_twice(d.path(), &db.to_string_lossy());
}

/// Imports The Complete Journey into the store at `db` twice: the
/// published figures and household 1023 after the first, nothing changed
/// by the second.
fn complete_journey_twice(dir: &Path, db: &str) {
    use crate::common::{json_on, ok_on};
    let data = crate::common::shared_data();
    assert!(data.join("completejourney/transactions.parquet").is_file());
    let cfg =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/completejourney/infogap.toml");
    let cfg = cfg.to_string_lossy().to_string();
    ok_on(dir, db, &["import", "--config", &cfg, "--quiet"]);
    let first = json_on(dir, db, &["stats", "--json"]);
    cj_figures(&first);
    let h = json_on(
        dir,
        db,
        &[
            "customer",
            "show",
            "1023",
            "--namespace",
            "household",
            "--json",
        ],
    );
    cj_household_1023(&h);
    ok_on(dir, db, &["import", "--config", &cfg, "--quiet"]);
    let second = json_on(dir, db, &["stats", "--json"]);
    cj_figures(&second);
    assert_eq!(first["products"], second["products"]);
    assert_eq!(first["campaign_contacts"], second["campaign_contacts"]);
}

/// The Complete Journey's published figures in `infogap stats --json`.
fn cj_figures(s: &serde_json::Value) {
    assert_eq!(s["customers"], 2469);
    assert_eq!(s["orders"], 155_848);
    assert_eq!(s["order_lines"], 1_469_307);
    assert!(
        (s["revenue"].as_f64().unwrap_or(0.0) - 4_596_039.58).abs() < 0.005,
        "{}",
        s["revenue"]
    );
}

/// Household 1023 of The Complete Journey in `customer show --json`.
fn cj_household_1023(h: &serde_json::Value) {
    assert_eq!(h["orders"]["count"], 375);
    assert!((h["orders"]["revenue"].as_f64().unwrap_or(0.0) - 24_879.75).abs() < 0.005);
}

/// The same import into PostgreSQL gives exactly the SQLite figures, and
/// the same customer.
#[test]
#[ignore = "real data: ../shared/data"]
fn complete_journey_imports_to_the_published_figures_on_postgres() {
    let Some(pg) = infogap_store::pgtest::database("complete journey on PostgreSQL") else {
        return;
    };
    let d = tempfile::tempdir().expect("tmp");
    complete_journey_twice(d.path(), &pg.url);
}
