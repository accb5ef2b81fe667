//! The security tests' fixture, built once per test binary: a small demo
//! store with planted unique values, trained models, keys of every role
//! (and expired, revoked and customer ones), served by the real router and
//! layers on 127.0.0.1 with the access log captured.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use infogap_core::config::Config;
use infogap_engine::access::Policy;
use infogap_engine::import::ImportOptions;
use infogap_engine::keys::NewKey;
use infogap_engine::{Engine, demo};
use infogap_server::state::AppState;
use infogap_server::{HttpConfig, LogSink, Metrics};

/// A writer into a shared buffer (the captured access log).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let b = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// Values planted in the demo data: unique strings that must appear only
/// where the policy shows their class.
#[derive(Debug, Clone)]
pub struct Planted {
    /// Email of customer A (CRM, survey, ticket).
    pub email: &'static str,
    /// Phone of customer A as written in the exports.
    pub phone_raw: &'static str,
    /// Its ten digits (any unmasked rendering contains them).
    pub phone_digits: &'static str,
    /// First name of customer A (contact class).
    pub first_name: &'static str,
    /// Last name of customer A (contact class).
    pub last_name: &'static str,
    /// Region of customer A (demographic class).
    pub region: &'static str,
    /// Subject of A's support ticket (feedback_text class).
    pub ticket_text: &'static str,
    /// Comment of A's survey (feedback_text class).
    pub survey_text: &'static str,
    /// Email of the guest customer G (orders keyed by email only, so the
    /// email is G's display key in lists).
    pub guest_email: &'static str,
}

/// The planted values.
pub const PLANTED: Planted = Planted {
    email: "planted.zz1@example.org",
    phone_raw: "+1 (555) 013-4242",
    phone_digits: "5550134242",
    first_name: "Zzplantname",
    last_name: "Zzplantlast",
    region: "zzplantregion",
    ticket_text: "PLANTED-TICKET-TEXT-xyz",
    survey_text: "PLANTED-SURVEY-TEXT-q7",
    guest_email: "planted.guest.zz2@example.org",
};

/// A key the fixture issued: its bearer string and the name the audit
/// trail and access log know it by.
#[derive(Debug, Clone)]
pub struct Key {
    /// `igk_…` or `igc_…`.
    pub secret: String,
    /// Name (actor).
    pub name: String,
    /// Role.
    pub role: String,
}

/// Everything the security tests need.
pub struct Fixture {
    /// The store file.
    pub db: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The policy the server enforces.
    pub policy: Policy,
    /// Staff keys by role: admin, analyst, marketing, sales, support, source.
    pub staff: Vec<Key>,
    /// A support key limited to the `support` department.
    pub support_dept: Key,
    /// An expired admin key.
    pub expired: Key,
    /// A revoked admin key.
    pub revoked: Key,
    /// Customer token of A and B.
    pub token_a: Key,
    /// Customer token of B.
    pub token_b: Key,
    /// Staff users of the pages: (name, password, role), one per staff
    /// role, and a support user limited to the `support` department.
    pub users: Vec<(String, String, String)>,
    /// Customer A (the planted CRM customer; known to support).
    pub customer_a: i64,
    /// Customer B (a demo customer with orders).
    pub customer_b: i64,
    /// The planted guest customer (email only).
    pub guest: i64,
    /// A customer the support department does not know.
    pub outside_support: i64,
    /// Every customer id.
    pub customers: Vec<i64>,
    /// Customers the support department knows.
    pub known_to_support: std::collections::HashSet<i64>,
    /// The captured access log.
    pub log: Captured,
    /// Runtime the server runs on (kept alive).
    _server: std::thread::JoinHandle<()>,
    /// The directory holding the store (kept for the binary's life).
    pub dir: PathBuf,
}

impl Fixture {
    /// A staff key by role.
    pub fn staff(&self, role: &str) -> &Key {
        self.staff
            .iter()
            .find(|k| k.role == role)
            .unwrap_or_else(|| panic!("no fixture key of role {role}"))
    }

    /// Every credential issued (for leak checks).
    pub fn all_keys(&self) -> Vec<&Key> {
        let mut v: Vec<&Key> = self.staff.iter().collect();
        v.extend([
            &self.support_dept,
            &self.expired,
            &self.revoked,
            &self.token_a,
            &self.token_b,
        ]);
        v
    }
}

/// The fixture (built on first use).
pub fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| build().unwrap_or_else(|e| panic!("building the security fixture: {e}")))
}

/// A fresh directory under the target's tmp dir; old ones of earlier runs
/// are removed (the fixture lives as long as the process, so its own
/// directory cannot be removed on exit).
fn fresh_dir() -> std::io::Result<PathBuf> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("security-fixture");
    std::fs::create_dir_all(&root)?;
    if let Ok(rd) = std::fs::read_dir(&root) {
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|d| d > Duration::from_secs(15 * 60));
            if old {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&root)?
        .keep();
    Ok(dir)
}

fn append(path: &Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// Appends the planted rows to the demo's exports.
fn plant(out: &Path) -> std::io::Result<()> {
    let p = &PLANTED;
    append(
        &out.join("crm/customers.csv"),
        &format!(
            "CZZ0001,{},{},{},\"{}\",45-54,100K+,{},2024-03-01,annual\n",
            p.first_name, p.last_name, p.email, p.phone_raw, p.region
        ),
    )?;
    append(
        &out.join("crm/consents.csv"),
        "CZZ0001,marketing,yes,2024-03-04\n",
    )?;
    let mut orders = String::new();
    for (i, (month, sku)) in [
        (2, "P001"),
        (4, "P027"),
        (6, "P003"),
        (8, "P052"),
        (10, "P005"),
        (11, "P030"),
        (12, "P007"),
    ]
    .iter()
    .enumerate()
    {
        orders.push_str(&format!(
            "SO9{:05},CZZ0001,,{sku},1,{}.50,0.00,2025-{month:02}-10 10:00:00\n",
            i + 1,
            20 + 7 * i
        ));
        // the guest: orders keyed by email only
        orders.push_str(&format!(
            "SO8{:05},,{},{sku},2,{}.25,0.00,2025-{month:02}-12 11:00:00\n",
            i + 1,
            p.guest_email,
            30 + 5 * i
        ));
    }
    append(&out.join("sales/order_lines.csv"), &orders)?;
    append(
        &out.join("feedback/surveys.csv"),
        &format!("{},survey,2,{},2025-05-01\n", p.email, p.survey_text),
    )?;
    append(
        &out.join("support/tickets.tsv"),
        &format!(
            "T9999901\tSZZ0001\t{}\t{}\t{}\t2025-06-01 09:00:00\n",
            p.phone_raw, p.email, p.ticket_text
        ),
    )?;
    Ok(())
}

/// Any error of the fixture.
pub type BoxErr = Box<dyn std::error::Error + Send + Sync>;

fn build() -> Result<Fixture, BoxErr> {
    let t0 = Instant::now();
    let dir = fresh_dir()?;
    let out = dir.join("demo");
    let summary = demo::generate(&demo::DemoOptions {
        out: out.clone(),
        customers: 300,
        seed: 7,
    })?;
    plant(&out)?;
    let db = dir.join("store.db");
    let engine = Engine::open(&db)?;
    let config = Config::load(Path::new(&summary.config))?;
    infogap_engine::import::import(
        &engine,
        &config,
        &ImportOptions {
            skip_bad_rows: 0,
            rejects_dir: None,
            progress: false,
        },
    )?;
    // the exports are in the store now
    std::fs::remove_dir_all(&out)?;
    // the policy the server will enforce: the built-in roles and the
    // demo's [access] section
    let policy = engine.policy()?;
    let issue = |name: &str,
                 role: &str,
                 dept: Option<&str>,
                 source: Option<&str>,
                 exp: Option<&str>|
     -> Result<Key, BoxErr> {
        let k = engine.create_key(
            &policy,
            &NewKey {
                name: name.into(),
                role: role.into(),
                department: dept.map(str::to_string),
                source: source.map(str::to_string),
                expires: exp.map(str::to_string),
            },
        )?;
        Ok(Key {
            secret: k.key,
            name: name.into(),
            role: role.into(),
        })
    };
    // expired first: it must be past its second by the time tests run
    let expired = issue("expired-admin", "admin", None, None, Some("1s"))?;
    let expired_at = Instant::now();

    // models: churn (logistic regression, 3 folds), CLV, a cheap recommender
    infogap_engine::churn::train(
        &engine,
        &infogap_engine::churn::ChurnOptions {
            model: infogap_models::classify::ModelKind::Logreg,
            folds: 3,
            ..Default::default()
        },
    )?;
    infogap_engine::clv::train(&engine, None, infogap_models::clv::TimeUnit::Week)?;
    infogap_engine::recs::train(
        &engine,
        &infogap_engine::recs::TrainOptions {
            algo: "item-knn".into(),
            params: vec![],
            signals: infogap_engine::recs::SignalConfig::with_weights(0.5, 0.1, 1.0, None),
            seed: 0,
            k: 10,
            progress: false,
        },
    )?;

    let mut staff = Vec::new();
    for role in ["admin", "analyst", "marketing", "sales", "support"] {
        staff.push(issue(&format!("{role}-key"), role, None, None, Some("1d"))?);
    }
    staff.push(issue("web-source-key", "source", None, Some("web"), None)?);
    let support_dept = issue("support-desk-key", "support", Some("support"), None, None)?;
    let revoked = issue("revoked-admin", "admin", None, None, None)?;
    let rid = revoked
        .secret
        .split('_')
        .nth(1)
        .ok_or("revoked key has no id")?
        .to_string();
    engine.revoke_key(&rid)?;

    let store = engine.store();
    let find = |k: &str| -> Result<i64, BoxErr> {
        engine
            .find_customer(k, None)?
            .ok_or_else(|| format!("planted customer {k} not found").into())
    };
    let customer_a = find("crm:CZZ0001")?;
    let guest =
        find(&format!("email:{}", PLANTED.guest_email)).or_else(|_| find(PLANTED.guest_email))?;
    assert_eq!(
        find("support:SZZ0001")?,
        customer_a,
        "the planted ticket links to customer A"
    );
    let ds = engine.dataset()?;
    let customers: Vec<i64> = ds.customers.iter().map(|c| c.id).collect();
    let support_src: Vec<i64> = store
        .sources()?
        .into_iter()
        .filter(|s| s.name == "support")
        .map(|s| s.id)
        .collect();
    let known_to_support = store.customers_of_sources(&support_src)?;
    assert!(known_to_support.contains(&customer_a));
    let mut orders_of: std::collections::HashMap<i64, usize> = Default::default();
    for o in &ds.orders {
        *orders_of.entry(o.customer).or_default() += 1;
    }
    let outside_support = customers
        .iter()
        .copied()
        .filter(|c| !known_to_support.contains(c) && *c != guest)
        .max_by_key(|c| (orders_of.get(c).copied().unwrap_or(0), -c))
        .ok_or("every demo customer is known to support")?;
    let customer_b = customers
        .iter()
        .copied()
        .filter(|c| *c != customer_a && *c != guest && *c != outside_support)
        .max_by_key(|c| (orders_of.get(c).copied().unwrap_or(0), -c))
        .ok_or("no customer B")?;
    let tok = |id: i64| -> Result<Key, BoxErr> {
        let t = engine.customer_token(id, Some("1h"))?;
        Ok(Key {
            secret: t.token,
            name: format!("customer #{id}"),
            role: "customer".into(),
        })
    };
    let token_a = tok(customer_a)?;
    let token_b = tok(customer_b)?;
    let mut users = Vec::new();
    for (role, dept) in [
        ("admin", None),
        ("analyst", None),
        ("marketing", None),
        ("sales", None),
        ("support", None),
        ("support", Some("support")),
    ] {
        let name = match dept {
            Some(d) => format!("{role}-{d}-user"),
            None => format!("{role}-user"),
        };
        let password = format!("correct horse battery {name}");
        engine.create_user(
            &policy,
            &infogap_engine::web::NewUser {
                name: name.clone(),
                role: role.into(),
                department: dept.map(str::to_string),
            },
            Some(&password),
        )?;
        users.push((name, password, role.to_string()));
    }
    // marketing is opt-in and the guest has no consent record: record the
    // guest's grant, so segment member lists (marketing lists) include them
    let grant = engine.authorize(
        &policy,
        &infogap_engine::access::Principal::local(None),
        infogap_core::access::Action::ConsentsWrite,
    )?;
    engine.share_consent_change(&grant, guest, "marketing", true)?;
    drop(engine);

    // the expired key must be past its expiry (whole seconds)
    let waited = expired_at.elapsed();
    if waited < Duration::from_millis(2100) {
        std::thread::sleep(Duration::from_millis(2100) - waited);
    }

    let log = Captured::default();
    let metrics = Arc::new(Metrics::new());
    let state = AppState::open(&db, None, metrics.clone())?;
    let http = HttpConfig {
        log_sink: LogSink::new(log.clone()),
        metrics,
        ..Default::default()
    };
    let (addr, server) = serve_in_background(state, http)?;
    eprintln!(
        "security fixture: {} customers, store {}, ready in {:.1} s",
        customers.len(),
        db.display(),
        t0.elapsed().as_secs_f64()
    );
    Ok(Fixture {
        db,
        base: format!("http://{addr}"),
        policy,
        staff,
        support_dept,
        expired,
        revoked,
        token_a,
        token_b,
        users,
        customer_a,
        customer_b,
        guest,
        outside_support,
        customers,
        known_to_support,
        log,
        _server: server,
        dir,
    })
}

/// Serves the real router over `state` on 127.0.0.1:0 from a thread with
/// its own runtime; returns the address once it listens (and the thread,
/// which serves until the process ends).
pub fn serve_in_background(
    state: Arc<AppState>,
    http: HttpConfig,
) -> Result<(SocketAddr, std::thread::JoinHandle<()>), BoxErr> {
    let (tx, rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
    let handle = std::thread::Builder::new()
        .name("security-server".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match infogap_server::bind(([127, 0, 0, 1], 0).into()).await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let addr = listener.local_addr().map_err(|e| e.to_string());
                let _ = tx.send(addr);
                let app = infogap_server::layer(infogap_server::routes::router(state), &http);
                if let Err(e) =
                    infogap_server::serve(listener, None, app, std::future::pending()).await
                {
                    eprintln!("security server stopped: {e}");
                }
            });
        })?;
    let addr = rx.recv()??;
    Ok((addr, handle))
}
