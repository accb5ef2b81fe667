//! `infogap serve`, `keys …`, `customer token` and `audit …`: sharing the
//! store over HTTP, the credentials that open it, and the trail of who read
//! what. The policy and the audit are the engine's; this only parses and
//! prints.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use infogap_core::access::Action;
use infogap_core::config::Config;
use infogap_engine::access::Policy;
use infogap_engine::keys::NewKey;
use infogap_server::state::AppState;

use crate::Ctx;
use crate::ctx::print_json;

/// `infogap serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the chosen address is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Take the policy (`[access]`) from this config instead of the one
    /// stored by the last import.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Behind a reverse proxy: take the client address from the last hop
    /// of `X-Forwarded-For` (only when the proxy sets it).
    #[arg(long)]
    pub trust_proxy: bool,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Longest time a request may take, in seconds.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// No access log (JSON lines on stderr otherwise).
    #[arg(long)]
    pub no_access_log: bool,
    /// Retrain the models whose newest version is older than this (e.g.
    /// 24h, 30m) in the background; new requests get the new model as
    /// soon as it is saved.
    #[arg(long, value_name = "DURATION", env = "INFOGAP_RETRAIN_EVERY")]
    pub retrain_every: Option<String>,
    /// The model kinds --retrain-every retrains.
    #[arg(long, default_value = "churn,recs,clv", value_name = "KINDS")]
    pub retrain: String,
}

/// `infogap serve`: the API over the store until SIGINT or SIGTERM.
pub fn serve(ctx: &Ctx, a: &ServeArgs) -> anyhow::Result<()> {
    let db = ctx.existing_db_path()?;
    let policy = match &a.config {
        Some(p) => Some(Policy::from_config(&Config::load(p)?.access)),
        None => None,
    };
    let opts = infogap_server::ServeOptions {
        bind: a.bind,
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
    };
    let tls = opts.tls_config()?;
    let http = infogap_server::HttpConfig {
        body_limit: a.body_limit,
        timeout: std::time::Duration::from_secs(a.timeout.max(1)),
        log: !a.no_access_log,
        trust_proxy: a.trust_proxy,
        ..Default::default()
    };
    let state = AppState::open(&db, policy, http.metrics.clone())
        .with_context(|| format!("opening store {}", db.display()))?;
    if let Some(every) = &a.retrain_every {
        let ms = infogap_core::config::parse_millis(every)
            .map_err(|e| anyhow::anyhow!("--retrain-every {every:?}: {e}"))?;
        let kinds = a
            .retrain
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        state.schedule_retraining(std::time::Duration::from_millis(ms), kinds)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    state.set_secure_cookies(tls.is_some());
    let scheme = if tls.is_some() { "https" } else { "http" };
    let st = state.clone();
    rt.block_on(async move {
        let listener = infogap_server::bind(opts.bind).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "infogap serve: listening on {scheme}://{addr} (store {}); pages: {scheme}://{addr}/login",
            db.display()
        );
        let app = infogap_server::layer(infogap_server::routes::router(st.clone()), &http);
        infogap_server::serve(listener, tls, app, infogap_server::shutdown_signal()).await?;
        st.stop();
        eprintln!("infogap serve: stopped");
        anyhow::Ok(())
    })?;
    drop(state);
    Ok(())
}

/// `infogap keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Issue a key; it is printed once and only its keyed hash is kept.
    Create {
        /// Who holds it (shown in the audit trail).
        #[arg(long)]
        name: String,
        /// Role: admin, analyst, marketing, sales, support, source, or one from `[access.roles]`.
        #[arg(long)]
        role: String,
        /// Limit the key to one department (`[access.departments]`, or a source name).
        #[arg(long)]
        department: Option<String>,
        /// The source a key of role `source` writes to.
        #[arg(long)]
        source: Option<String>,
        /// Lifetime, e.g. 30d, 12h (default: no expiry).
        #[arg(long)]
        expires: Option<String>,
        /// JSON output (`key`, `id`, `name`, `role`, `expires_at`).
        #[arg(long)]
        json: bool,
    },
    /// Every key and token (never a secret).
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key or token by id.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// `infogap keys …`
pub fn keys(ctx: &Ctx, c: &KeysCmd) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    // managing keys is an admin action, also from the terminal
    let access = ctx.access(&engine, Action::KeysManage)?;
    match c {
        KeysCmd::Create {
            name,
            role,
            department,
            source,
            expires,
            json,
        } => {
            let k = engine.create_key(
                &engine.policy()?,
                &NewKey {
                    name: name.clone(),
                    role: role.clone(),
                    department: department.clone(),
                    source: source.clone(),
                    expires: expires.clone(),
                },
            )?;
            engine.record(infogap_engine::audit::entry(
                &access.principal,
                "keys.create",
                vec![],
                vec![],
                &format!("key {} ({}, role {})", k.id, k.name, k.role),
            ))?;
            if *json {
                print_json(&k)
            } else {
                println!("{}", k.key);
                eprintln!(
                    "key {} for {:?}, role {}{}{}: shown once, keep it secret",
                    k.id,
                    k.name,
                    k.role,
                    k.department
                        .as_deref()
                        .map(|d| format!(", department {d}"))
                        .unwrap_or_default(),
                    k.expires_at
                        .as_deref()
                        .map(|e| format!(", expires {e}"))
                        .unwrap_or_default()
                );
                Ok(())
            }
        }
        KeysCmd::List { json } => {
            let list = engine.list_keys()?;
            if *json {
                return print_json(&list);
            }
            println!(
                "{:<16} {:<9} {:<24} {:<10} {:<12} {:<8} expires",
                "id", "kind", "name", "role", "department", "status"
            );
            for k in &list {
                println!(
                    "{:<16} {:<9} {:<24} {:<10} {:<12} {:<8} {}",
                    k.id,
                    k.kind,
                    k.name,
                    k.role,
                    k.department.as_deref().unwrap_or("-"),
                    k.status,
                    k.expires_at.as_deref().unwrap_or("never")
                );
            }
            Ok(())
        }
        KeysCmd::Revoke { id, json } => {
            let k = engine.revoke_key(id)?;
            engine.record(infogap_engine::audit::entry(
                &access.principal,
                "keys.revoke",
                vec![],
                vec![],
                &format!("key {}", k.id),
            ))?;
            if *json {
                print_json(&k)
            } else {
                println!("key {} ({}) revoked", k.id, k.name);
                Ok(())
            }
        }
    }
}

/// `infogap customer token KEY`: a token that acts only as that customer.
pub fn customer_token(
    ctx: &Ctx,
    engine: &infogap_engine::Engine,
    key: &str,
    namespace: Option<&str>,
    expires: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let access = ctx.access(engine, Action::KeysManage)?;
    let id = infogap_engine::report::resolve_key(engine, key, namespace)?;
    let t = engine.customer_token(id, expires)?;
    engine.record(infogap_engine::audit::entry(
        &access.principal,
        "keys.customer_token",
        vec![id],
        vec![],
        &format!("token {}", t.id),
    ))?;
    if json {
        print_json(&t)
    } else {
        println!("{}", t.token);
        eprintln!(
            "token {} acts only as customer #{id} until {}",
            t.id,
            t.expires_at.as_deref().unwrap_or("-")
        );
        Ok(())
    }
}

/// `infogap audit …`
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// `verify`: check the chain.
    #[command(subcommand)]
    pub command: Option<AuditCmd>,
    /// Only records about the customer this key belongs to.
    #[arg(long)]
    pub customer: Option<String>,
    /// Only records by this actor (key name, `local`).
    #[arg(long)]
    pub actor: Option<String>,
    /// At most this many records (newest first).
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    /// JSON output.
    #[arg(long)]
    pub json: bool,
}

/// `infogap audit verify`.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Check the hash chain: exit 0 when intact, else name the first
    /// altered or missing record.
    Verify {
        /// JSON output (with the head hash, to anchor elsewhere).
        #[arg(long)]
        json: bool,
    },
}

/// `infogap audit`.
pub fn audit(ctx: &Ctx, a: &AuditArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    if let Some(AuditCmd::Verify { json }) = &a.command {
        let c = engine.audit_verify()?;
        if *json {
            print_json(&c)?;
        } else if c.intact() {
            println!(
                "audit trail intact: {} records, head {} ({})",
                c.entries, c.head_seq, c.head_hash
            );
        }
        if let (Some(seq), Some(reason)) = (c.first_bad, &c.reason) {
            anyhow::bail!("audit trail broken at record {seq}: {reason}");
        }
        return Ok(());
    }
    let access = ctx.access(&engine, Action::AuditRead)?;
    let customer = match &a.customer {
        Some(k) => Some(infogap_engine::report::resolve_key(&engine, k, None)?),
        None => None,
    };
    let page = engine.audit_records(
        &access,
        &infogap_store::audit::AuditFilter {
            customer,
            actor: a.actor.clone(),
            before: None,
            limit: a.limit,
        },
    )?;
    if a.json {
        return print_json(&page.records);
    }
    println!(
        "{:>6}  {:<20} {:<18} {:<10} {:<22} {:<14} customers",
        "seq", "time", "actor", "role", "action", "from"
    );
    for r in &page.records {
        let e = &r.entry;
        let t = chrono::DateTime::from_timestamp_micros(e.time_us)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_default();
        let cs = if e.customers.len() > 5 {
            format!("{} customers", e.customers.len())
        } else {
            e.customers
                .iter()
                .map(|c| format!("#{c}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!(
            "{:>6}  {:<20} {:<18} {:<10} {:<22} {:<14} {}",
            r.seq, t, e.actor, e.role, e.action, e.origin, cs
        );
    }
    Ok(())
}
