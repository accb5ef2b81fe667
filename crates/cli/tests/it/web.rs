//! `infogap users …` and `infogap customer link`: users created with a
//! password from stdin or a printed one-time setup link, listed without any
//! hash, disabled; a customer's one-time portal link for a known key, a
//! clear refusal for an unknown one. Passwords and the customer's key are
//! never printed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::{bin, fails, json, ok};

const PASSWORD: &str = "correct horse battery staple";

/// A demo store of 60 customers in `dir/infogap.db`.
fn demo_store(dir: &Path) {
    ok(
        dir,
        &["demo", "--out", "demo", "--customers", "60", "--quiet"],
    );
    ok(dir, &["import", "--config", "demo/infogap.toml", "--quiet"]);
}

/// Runs `infogap` with `stdin` piped in; returns (success, stdout, stderr).
fn with_stdin(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(bin())
        .current_dir(dir)
        .env("INFOGAP_DB", dir.join("infogap.db"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn infogap");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn users_are_created_with_a_password_or_a_setup_link_and_listed_without_hashes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir);
    let (good, out, err) = with_stdin(
        dir,
        &[
            "users",
            "create",
            "--name",
            "ann",
            "--role",
            "analyst",
            "--department",
            "sales",
            "--password-stdin",
            "--json",
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(good, "users create failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["name"], "ann");
    assert_eq!(v["password_set"], true);
    assert!(v["setup_url"].is_null(), "{v}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD));
    // without a password: a one-time setup link on the given base URL
    let out = ok(
        dir,
        &[
            "users",
            "create",
            "--name",
            "bob",
            "--role",
            "support",
            "--base-url",
            "https://crm.example.com/",
        ],
    );
    let link = out.trim();
    assert!(
        link.starts_with("https://crm.example.com/setup?token=igu_"),
        "{out}"
    );
    assert_eq!(
        link.len(),
        "https://crm.example.com/setup?token=".len() + 85
    );
    let v = json(
        dir,
        &[
            "users", "create", "--name", "cid", "--role", "sales", "--json",
        ],
    );
    let url = v["setup_url"].as_str().expect("setup_url");
    assert!(
        url.starts_with("http://127.0.0.1:8080/setup?token=igu_"),
        "{v}"
    );
    assert!(v["setup_expires_at"].as_str().is_some(), "{v}");
    // listed, never with a hash
    let list = json(dir, &["users", "list", "--json"]);
    let text = list.to_string();
    assert!(!text.contains("argon2") && !text.contains("hash"), "{text}");
    let rows = list.as_array().expect("array");
    let got: Vec<(&str, &str, &str)> = rows
        .iter()
        .map(|u| {
            (
                u["name"].as_str().unwrap_or(""),
                u["role"].as_str().unwrap_or(""),
                u["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("ann", "analyst", "active"),
            ("bob", "support", "pending"),
            ("cid", "sales", "pending")
        ]
    );
    assert_eq!(rows[0]["department"], "sales");
    // disabled, and the list says so
    ok(dir, &["users", "disable", "bob"]);
    let list = json(dir, &["users", "list", "--json"]);
    assert_eq!(list[1]["status"], "disabled");
    let e = fails(dir, &["users", "disable", "nobody"]);
    assert!(e.contains("no user"), "{e}");
    // creating and disabling is audited
    let audit = json(dir, &["audit", "--json"]);
    let actions = audit.to_string();
    assert!(
        actions.contains("users.create") && actions.contains("users.disable"),
        "{audit}"
    );
    assert!(!actions.contains(PASSWORD));
}

#[test]
fn users_create_refuses_bad_input_naming_the_parameter() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir);
    let e = fails(
        dir,
        &["users", "create", "--name", "x", "--role", "customer"],
    );
    assert!(e.contains("--role"), "{e}");
    let e = fails(dir, &["users", "create", "--name", "x", "--role", "boss"]);
    assert!(e.contains("unknown role"), "{e}");
    let e = fails(
        dir,
        &[
            "users",
            "create",
            "--name",
            "x",
            "--role",
            "support",
            "--department",
            "nowhere",
        ],
    );
    assert!(e.contains("--department"), "{e}");
    let e = fails(
        dir,
        &["users", "create", "--name", "a b", "--role", "support"],
    );
    assert!(e.contains("--name"), "{e}");
    let (good, _, err) = with_stdin(
        dir,
        &[
            "users",
            "create",
            "--name",
            "x",
            "--role",
            "support",
            "--password-stdin",
        ],
        "short\n",
    );
    assert!(!good && err.contains("12 characters"), "{err}");
    assert!(!err.contains("short\n"));
    let (good, _, err) = with_stdin(
        dir,
        &[
            "users",
            "create",
            "--name",
            "x",
            "--role",
            "support",
            "--password-stdin",
        ],
        "",
    );
    assert!(!good && err.contains("--password-stdin"), "{err}");
    let e = fails(
        dir,
        &[
            "users",
            "create",
            "--name",
            "x",
            "--role",
            "support",
            "--base-url",
            "crm.example.com",
        ],
    );
    assert!(e.contains("--base-url"), "{e}");
    // none of the refusals created anyone
    let list = json(dir, &["users", "list", "--json"]);
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");
}

#[test]
fn customer_link_prints_a_portal_link_for_a_known_key_and_refuses_an_unknown_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    demo_store(dir);
    let v = json(dir, &["customer", "show", "crm:C000001", "--json"]);
    let id = v["id"].as_i64().expect("id");
    let email = v["identities"]
        .as_array()
        .expect("identities")
        .iter()
        .find(|i| i["kind"] == "email")
        .and_then(|i| i["value"].as_str())
        .map(str::to_string);
    let out = run(dir, &["customer", "link", "crm:C000001"]);
    let url = out.0.trim();
    assert!(
        url.starts_with("http://127.0.0.1:8080/portal/link?token=igl_"),
        "{url}"
    );
    assert!(!out.0.contains("C000001") && !out.1.contains("C000001"));
    assert!(out.1.contains(&format!("#{id}")), "{}", out.1);
    let email = email.expect("customer C000001 has an email");
    // by email, with a lifetime and a base URL, as JSON
    let v = json(
        dir,
        &[
            "customer",
            "link",
            &email,
            "--ttl",
            "2h",
            "--base-url",
            "https://shop.example.com",
            "--json",
        ],
    );
    assert_eq!(v["customer"].as_i64(), Some(id));
    let u = v["url"].as_str().expect("url");
    assert!(
        u.starts_with("https://shop.example.com/portal/link?token=igl_"),
        "{v}"
    );
    assert!(
        !v.to_string().contains(&email),
        "the key is not printed back"
    );
    let e = fails(dir, &["customer", "link", "nobody@nowhere.example"]);
    assert!(e.contains("no customer with that KEY"), "{e}");
    assert!(
        !e.contains("nobody@nowhere"),
        "the key is not printed back: {e}"
    );
    let e = fails(dir, &["customer", "link", "crm:C000001", "--ttl", "30d"]);
    assert!(e.contains("--ttl"), "{e}");
    // issued links are audited with the customer's id
    let audit = json(dir, &["audit", "--json"]);
    let issued = audit
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["action"] == "auth.link_issued")
        .count();
    assert!(issued >= 1, "{audit}");
}

/// Runs and asserts success; returns (stdout, stderr).
fn run(dir: &Path, args: &[&str]) -> (String, String) {
    let out = crate::common::run_in(dir, args);
    assert!(
        out.status.success(),
        "infogap {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
