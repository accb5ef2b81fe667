//! Authentication of the web pages: staff users sign in with a password or
//! a one-time setup link, customers with a one-time link; a session cookie
//! becomes the principal the policy sees; every refusal reads the same;
//! one kind of credential is never another; CSRF tokens bind to their
//! session; the store holds no password or token in clear; sign-ins are
//! audited; an erased customer's sessions and links go with them.

use std::collections::BTreeMap;

use infogap_core::access::{AccessConfig, Action};
use infogap_engine::access::{Policy, PrincipalKind};
use infogap_engine::web::{NewUser, SessionKind};
use infogap_engine::{Engine, EngineError};
use infogap_store::SessionRecord;
use infogap_store::audit::{AuditFilter, AuditRecord};

const PASSWORD: &str = "correct horse battery staple";

/// An empty store in a temporary directory.
fn fresh() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::open(&dir.path().join("store.db")).expect("open");
    (dir, engine)
}

/// The built-in roles with a `sales` department.
fn policy() -> Policy {
    let mut departments = BTreeMap::new();
    departments.insert("sales".to_string(), vec!["crm".to_string()]);
    Policy::from_config(&AccessConfig {
        departments,
        ..Default::default()
    })
}

fn new_user(name: &str, role: &str, department: Option<&str>) -> NewUser {
    NewUser {
        name: name.into(),
        role: role.into(),
        department: department.map(str::to_string),
    }
}

fn message(r: Result<impl std::fmt::Debug, EngineError>) -> String {
    match r {
        Err(EngineError::Unauthorized(m)) => m,
        other => panic!("expected Unauthorized, got {other:?}"),
    }
}

fn invalid(r: Result<impl std::fmt::Debug, EngineError>) -> String {
    match r {
        Err(EngineError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// Every audit record of an action, oldest first.
fn audited(engine: &Engine, action: &str) -> Vec<AuditRecord> {
    let mut v: Vec<AuditRecord> = engine
        .audit_sink()
        .expect("sink")
        .log()
        .records(&AuditFilter::default())
        .expect("records")
        .into_iter()
        .filter(|r| r.entry.action == action)
        .collect();
    v.sort_by_key(|r| r.seq);
    v
}

/// Every file of the store (database, its log, the audit trail).
fn store_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for f in [
        "store.db",
        "store.db-wal",
        "store.db.audit",
        "store.db.audit-wal",
    ] {
        if let Ok(b) = std::fs::read(dir.join(f)) {
            out.push((f.to_string(), b));
        }
    }
    out
}

/// The first `n` customers of the store (by id).
fn customers(engine: &Engine, n: usize) -> Vec<i64> {
    let found: Vec<i64> = (1..10_000)
        .filter(|&id| {
            !engine
                .store()
                .customer_identities(id)
                .expect("identities")
                .is_empty()
        })
        .take(n)
        .collect();
    assert_eq!(found.len(), n, "the demo store has {n} customers");
    found
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn a_user_signs_in_with_a_password_and_the_session_carries_role_and_department() {
    let (_dir, engine) = fresh();
    let u = engine
        .create_user(
            &policy(),
            &new_user("ann", "analyst", Some("sales")),
            Some(PASSWORD),
        )
        .expect("create");
    assert_eq!(u.setup_token, None, "a user with a password needs no link");
    let s = engine
        .sign_in("ann", PASSWORD, "10.0.0.1")
        .expect("sign in");
    assert_eq!(s.kind, SessionKind::Staff);
    assert!(s.cookie.starts_with("igs_"), "a session cookie");
    let now = chrono::Utc::now().timestamp();
    assert!((s.expires_at - now - 12 * 3600).abs() < 60, "12 hours");
    let v = engine.session(&s.cookie, "10.0.0.2").expect("session");
    assert_eq!(v.id, s.id);
    assert_eq!(v.kind, SessionKind::Staff);
    assert_eq!(v.user.as_deref(), Some("ann"));
    assert_eq!(v.principal.kind, PrincipalKind::Key);
    assert_eq!(v.principal.name, "user:ann");
    assert_eq!(v.principal.role, "analyst");
    assert_eq!(v.principal.department.as_deref(), Some("sales"));
    assert_eq!(v.principal.customer, None);
    assert_eq!(v.principal.origin, "10.0.0.2");
    // the policy takes it from there
    let a = policy()
        .authorize(&v.principal, Action::SegmentsRead)
        .expect("an analyst reads segments");
    assert_eq!(a.principal.name, "user:ann");
    assert!(
        policy()
            .authorize(&v.principal, Action::KeysManage)
            .is_err()
    );
    // audited, with the client address
    let ins = audited(&engine, "auth.sign_in");
    assert_eq!(ins.len(), 1);
    assert_eq!(ins[0].entry.actor, "user:ann");
    assert_eq!(ins[0].entry.detail, "ok");
    assert_eq!(ins[0].entry.origin, "10.0.0.1");
    assert_eq!(ins[0].entry.role, "analyst");
    // sign-out ends it, audited
    engine.sign_out(&s.cookie).expect("sign out");
    message(engine.session(&s.cookie, "x"));
    message(engine.sign_out(&s.cookie));
    let outs = audited(&engine, "auth.sign_out");
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].entry.actor, "user:ann");
}

#[test]
fn wrong_password_unknown_user_disabled_and_pending_users_get_the_same_refusal() {
    let (_dir, engine) = fresh();
    let p = policy();
    engine
        .create_user(&p, &new_user("ann", "support", None), Some(PASSWORD))
        .expect("ann");
    engine
        .create_user(&p, &new_user("bob", "admin", None), Some(PASSWORD))
        .expect("bob");
    let pending = engine
        .create_user(&p, &new_user("cid", "sales", None), None)
        .expect("cid");
    assert!(pending.setup_token.is_some());
    let bob = engine.sign_in("bob", PASSWORD, "ip").expect("bob signs in");
    engine.disable_user("bob").expect("disable");
    let wrong = message(engine.sign_in("ann", "correct horse battery stapl", "ip"));
    let unknown = message(engine.sign_in("zed", PASSWORD, "ip"));
    let disabled = message(engine.sign_in("bob", PASSWORD, "ip"));
    let no_password = message(engine.sign_in("cid", PASSWORD, "ip"));
    let malformed = message(engine.sign_in("not a name", PASSWORD, "ip"));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong, disabled);
    assert_eq!(wrong, no_password);
    assert_eq!(wrong, malformed);
    assert!(
        !wrong.contains("ann") && !wrong.contains("password"),
        "{wrong}"
    );
    // the disabled user's live session stopped working too
    message(engine.session(&bob.cookie, "ip"));
    assert!(matches!(
        engine.disable_user("bob"),
        Err(EngineError::Invalid(_))
    ));
    assert!(matches!(
        engine.disable_user("nobody"),
        Err(EngineError::NotFound(_))
    ));
    // every attempt is audited; the actor is named only when it exists
    let ins = audited(&engine, "auth.sign_in");
    let got: Vec<(&str, &str)> = ins
        .iter()
        .map(|r| (r.entry.actor.as_str(), r.entry.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("user:bob", "ok"),
            ("user:ann", "denied"),
            ("unknown", "denied"),
            ("user:bob", "denied"),
            ("user:cid", "denied"),
            ("unknown", "denied"),
        ]
    );
    // a typed password never reaches the trail
    assert!(
        ins.iter()
            .all(|r| !serde_json::to_string(r).expect("json").contains("horse"))
    );
    let users = engine.list_users().expect("list");
    let status: Vec<(&str, &str)> = users
        .iter()
        .map(|u| (u.name.as_str(), u.status.as_str()))
        .collect();
    assert_eq!(
        status,
        vec![("ann", "active"), ("bob", "disabled"), ("cid", "pending")]
    );
}

#[test]
fn users_need_a_staff_role_a_known_department_a_valid_unique_name_and_a_long_password() {
    let (_dir, engine) = fresh();
    let p = policy();
    for role in ["customer", "source"] {
        let m = invalid(engine.create_user(&p, &new_user("x", role, None), Some(PASSWORD)));
        assert!(m.contains("--role"), "{m}");
    }
    let m = invalid(engine.create_user(&p, &new_user("x", "boss", None), Some(PASSWORD)));
    assert!(m.contains("unknown role") && m.contains("analyst"), "{m}");
    let m = invalid(engine.create_user(
        &p,
        &new_user("x", "support", Some("nowhere")),
        Some(PASSWORD),
    ));
    assert!(m.contains("--department") && m.contains("sales"), "{m}");
    for name in ["", "a b", "ann/1", &"n".repeat(65)] {
        let m = invalid(engine.create_user(&p, &new_user(name, "support", None), Some(PASSWORD)));
        assert!(m.contains("--name"), "{m}");
    }
    let m = invalid(engine.create_user(&p, &new_user("x", "support", None), Some("short pw")));
    assert!(m.contains("12"), "{m}");
    engine
        .create_user(&p, &new_user("ann.lee@x", "support", None), Some(PASSWORD))
        .expect("create");
    let m = invalid(engine.create_user(&p, &new_user("ann.lee@x", "admin", None), None));
    assert!(m.contains("exists"), "{m}");
    // nothing was created by the refusals
    let names: Vec<String> = engine
        .list_users()
        .expect("list")
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, vec!["ann.lee@x".to_string()]);
    assert_eq!(
        engine
            .store()
            .user("ann.lee@x")
            .expect("user")
            .map(|u| u.role),
        Some("support".to_string()),
        "the refused second create left the first alone"
    );
}

#[test]
fn a_setup_link_sets_the_password_once_and_signs_the_user_in() {
    let (_dir, engine) = fresh();
    let u = engine
        .create_user(&policy(), &new_user("dee", "marketing", None), None)
        .expect("create");
    let token = u.setup_token.expect("a setup token");
    assert!(token.starts_with("igu_"), "{token}");
    assert!(u.setup_expires_at.is_some());
    message(engine.sign_in("dee", PASSWORD, "ip"));
    // a bad password leaves the link usable
    invalid(engine.redeem_setup(&token, "too short", "ip"));
    // a setup token is not a session
    message(engine.session(&token, "ip"));
    let s = engine.redeem_setup(&token, PASSWORD, "ip").expect("redeem");
    let v = engine.session(&s.cookie, "ip").expect("session");
    assert_eq!(v.principal.name, "user:dee");
    assert_eq!(v.principal.role, "marketing");
    message(engine.redeem_setup(&token, "another long password", "ip"));
    engine.sign_in("dee", PASSWORD, "ip").expect("sign in");
    message(engine.sign_in("dee", "another long password", "ip"));
    assert_eq!(audited(&engine, "auth.password_set").len(), 1);
    // a disabled user's pending link is revoked with them
    let v = engine
        .create_user(&policy(), &new_user("eve", "support", None), None)
        .expect("create");
    engine.disable_user("eve").expect("disable");
    message(engine.redeem_setup(v.setup_token.as_deref().expect("token"), PASSWORD, "ip"));
}

#[test]
fn expired_revoked_tampered_and_malformed_sessions_are_refused() {
    let (_dir, engine) = fresh();
    engine
        .create_user(&policy(), &new_user("ann", "admin", None), Some(PASSWORD))
        .expect("create");
    let secret = "ab".repeat(32);
    let now = chrono::Utc::now().timestamp();
    let stored = |id: &str, expires_at: i64, revoked_at: Option<i64>| SessionRecord {
        id: id.into(),
        kind: "staff".into(),
        user_name: Some("ann".into()),
        customer_id: None,
        secret_hash: engine.secret().expect("secret").hash(&secret),
        created_at: now - 100,
        expires_at,
        revoked_at,
    };
    let store = engine.store();
    store
        .create_session(&stored("00000000000000e1", now - 1, None))
        .expect("expired");
    store
        .create_session(&stored("00000000000000e2", now + 3600, Some(now - 5)))
        .expect("revoked");
    store
        .create_session(&stored("00000000000000e3", now + 3600, None))
        .expect("live");
    let live = format!("igs_00000000000000e3_{secret}");
    // the hand-made live one works: the refusals below are for their reason
    assert_eq!(
        engine.session(&live, "ip").expect("live").principal.name,
        "user:ann"
    );
    let refusal = message(engine.session(&format!("igs_00000000000000e1_{secret}"), "ip"));
    assert_eq!(
        refusal,
        message(engine.session(&format!("igs_00000000000000e2_{secret}"), "ip"))
    );
    let tampered = format!("igs_00000000000000e3_{}", "ac".repeat(32));
    for bad in [
        tampered.as_str(),
        "",
        "igs_",
        "igs_00000000000000e3",
        "igs_00000000000000e3_abab",
        "garbage",
        &format!("igs_00000000000000e4_{secret}"),
    ] {
        assert_eq!(message(engine.session(bad, "ip")), refusal, "{bad:?}");
    }
}

#[test]
fn a_customer_link_redeems_once_and_no_credential_kind_works_as_another() {
    let (fx, engine) = crate::imported(60, 21);
    let c = customers(&engine, 1)[0];
    let link = engine.customer_link(c, None).expect("link");
    assert!(link.token.starts_with("igl_"));
    assert_eq!(link.customer, c);
    let exp = chrono::DateTime::parse_from_rfc3339(&link.expires_at).expect("rfc3339");
    let now = chrono::Utc::now().timestamp();
    assert!((exp.timestamp() - now - 1800).abs() < 60, "30 minutes");
    // a link is not a session cookie, and trying that does not spend it
    message(engine.session(&link.token, "ip"));
    message(engine.sign_out(&link.token));
    let s = engine.redeem_link(&link.token, "10.1.1.1").expect("redeem");
    assert_eq!(s.kind, SessionKind::Customer);
    assert!((s.expires_at - now - 2 * 3600).abs() < 60, "2 hours");
    message(engine.redeem_link(&link.token, "10.1.1.1"));
    let v = engine.session(&s.cookie, "ip").expect("session");
    assert_eq!(v.principal.kind, PrincipalKind::Customer);
    assert_eq!(v.principal.role, "customer");
    assert_eq!(v.principal.customer, Some(c));
    assert_eq!(v.user, None);
    assert!(
        Policy::default()
            .authorize(&v.principal, Action::SelfRead)
            .is_ok()
    );
    // a session cookie is not a link, nor with a link's prefix
    message(engine.redeem_link(&s.cookie, "ip"));
    message(engine.redeem_link(&s.cookie.replacen("igs_", "igl_", 1), "ip"));
    message(engine.redeem_setup(&s.cookie.replacen("igs_", "igu_", 1), PASSWORD, "ip"));
    // nor is an API key
    let token = engine.customer_token(c, Some("1h")).expect("token").token;
    message(engine.session(&token, "ip"));
    message(engine.session(&token.replacen("igc_", "igs_", 1), "ip"));
    // lifetimes
    assert!(engine.customer_link(c, Some("2h")).is_ok());
    assert!(engine.customer_link(c, Some("7d")).is_ok());
    let m = invalid(engine.customer_link(c, Some("8d")));
    assert!(m.contains("--ttl") && m.contains("7 days"), "{m}");
    let m = invalid(engine.customer_link(c, Some("soon")));
    assert!(m.contains("--ttl"), "{m}");
    assert!(matches!(
        engine.customer_link(999_999, None),
        Err(EngineError::NotFound(_))
    ));
    // audited with the customer's id, never the token
    let issued = audited(&engine, "auth.link_issued");
    assert_eq!(issued.len(), 3);
    assert!(issued.iter().all(|r| r.entry.customers == vec![c]));
    let ins = audited(&engine, "auth.sign_in");
    let got: Vec<(String, Vec<i64>, &str)> = ins
        .iter()
        .map(|r| {
            (
                r.entry.actor.clone(),
                r.entry.customers.clone(),
                r.entry.detail.as_str(),
            )
        })
        .collect();
    assert_eq!(got[0], (format!("customer #{c}"), vec![c], "ok"));
    assert!(got[1..].iter().all(|g| g.2 == "denied" && g.1.is_empty()));
    let files = store_bytes(fx.dir.path());
    for (f, bytes) in &files {
        assert!(
            !contains(bytes, link.token.as_bytes())
                && !contains(bytes, &link.token.as_bytes()[21..]),
            "{f} holds the link token"
        );
        assert!(
            !contains(bytes, &s.cookie.as_bytes()[21..]),
            "{f} holds the session secret"
        );
    }
}

#[test]
fn csrf_tokens_verify_for_their_session_only() {
    let (_dir, engine) = fresh();
    engine
        .create_user(&policy(), &new_user("ann", "admin", None), Some(PASSWORD))
        .expect("create");
    let a = engine.sign_in("ann", PASSWORD, "ip").expect("a");
    let b = engine.sign_in("ann", PASSWORD, "ip").expect("b");
    let ta = engine.csrf_token(&a.id).expect("token");
    assert_eq!(ta, engine.csrf_token(&a.id).expect("again"), "stable");
    assert!(engine.verify_csrf(&a.id, &ta).expect("verify"));
    assert!(!engine.verify_csrf(&b.id, &ta).expect("verify"));
    let tb = engine.csrf_token(&b.id).expect("token");
    assert_ne!(ta, tb);
    let mut flipped = ta.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("utf8");
    for bad in [flipped.as_str(), "", "zz", &ta[..62], &format!("{ta}00")] {
        assert!(!engine.verify_csrf(&a.id, bad).expect("verify"), "{bad:?}");
    }
    // it is not derivable from the session id without the store's secret
    assert!(!ta.contains(&a.id));
}

#[test]
fn the_store_holds_no_password_or_token_in_clear() {
    let (dir, engine) = fresh();
    let p = policy();
    engine
        .create_user(&p, &new_user("ann", "admin", None), Some(PASSWORD))
        .expect("ann");
    let pending = engine
        .create_user(&p, &new_user("bob", "support", None), None)
        .expect("bob");
    let setup = pending.setup_token.expect("setup token");
    let bob_password = "bobs own long passphrase";
    let a = engine.sign_in("ann", PASSWORD, "ip").expect("sign in");
    engine.sign_in("ann", "a wrong password typed", "ip").ok();
    let b = engine
        .redeem_setup(&setup, bob_password, "ip")
        .expect("redeem");
    drop(engine);
    let files = store_bytes(dir.path());
    let all: Vec<u8> = files.iter().flat_map(|(_, b)| b.clone()).collect();
    // the search looks where the rows are: the hashes are there
    assert!(contains(&all, b"$argon2id$"), "no password hash found");
    for (f, bytes) in &files {
        for (what, needle) in [
            ("ann's password", PASSWORD.as_bytes()),
            ("bob's password", bob_password.as_bytes()),
            ("the wrong password", b"a wrong password typed".as_slice()),
            ("the setup token", setup.as_bytes()),
            ("the setup secret", &setup.as_bytes()[21..]),
            ("a session cookie", a.cookie.as_bytes()),
            ("a session secret", &a.cookie.as_bytes()[21..]),
            ("a session secret", &b.cookie.as_bytes()[21..]),
        ] {
            assert!(!contains(bytes, needle), "{f} holds {what}");
        }
    }
}

#[test]
fn an_erased_customers_sessions_and_links_stop_working() {
    let (_fx, engine) = crate::imported(60, 22);
    let found = customers(&engine, 2);
    let (c, other) = (found[0], found[1]);
    let first = engine.customer_link(c, None).expect("link");
    let s = engine.redeem_link(&first.token, "ip").expect("redeem");
    let unused = engine.customer_link(c, Some("1h")).expect("link");
    let other_link = engine.customer_link(other, None).expect("link");
    engine.session(&s.cookie, "ip").expect("live before");
    let receipt = engine
        .privacy_erase(&crate::admin(Action::PrivacyErase), c, false)
        .expect("erase");
    let rows = receipt
        .tables
        .iter()
        .find(|t| t.table == "web_sessions")
        .map(|t| t.rows);
    assert_eq!(rows, Some(3), "two links and a session");
    assert_eq!(receipt.residue, Some(0));
    message(engine.session(&s.cookie, "ip"));
    message(engine.redeem_link(&unused.token, "ip"));
    assert!(matches!(
        engine.customer_link(c, None),
        Err(EngineError::NotFound(_))
    ));
    // another customer's link is untouched
    let o = engine.redeem_link(&other_link.token, "ip").expect("other");
    assert_eq!(
        engine
            .session(&o.cookie, "ip")
            .expect("s")
            .principal
            .customer,
        Some(other)
    );
}
