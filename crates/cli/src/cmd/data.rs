//! Data commands: import, stats, the unified customer view, demo data,
//! quickstart and the import benchmark.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};
use infogap_core::access::Action;
use infogap_core::config::Config;
use infogap_core::value::format_date;
use infogap_engine::import::{ImportOptions, ImportReport};
use infogap_engine::report::{self, MergeExplanation};
use infogap_engine::share::SharedCustomer;
use infogap_engine::{Engine, demo};

use crate::Ctx;
use crate::ctx::print_json;

/// `infogap import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The sources config (infogap.toml).
    #[arg(long, short = 'c', default_value = "infogap.toml")]
    pub config: PathBuf,
    /// Accept up to N bad rows per file: they go to a rejects CSV, the rest is imported.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub skip_bad_rows: u64,
    /// Directory for rejects files (default: beside the config).
    #[arg(long, value_name = "DIR")]
    pub rejects_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap customer …`
#[derive(Debug, Subcommand)]
pub enum CustomerCmd {
    /// Everything known about one customer, from every department.
    Show {
        /// A customer id, email, phone, `ns:id` or `#ID`.
        key: String,
        /// Namespace of the key (when an id exists in several).
        #[arg(long)]
        namespace: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Explain why records were merged into this customer.
    Merges {
        /// A customer key.
        key: String,
        /// Namespace of the key.
        #[arg(long)]
        namespace: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo a wrong link: the identity (and its records) becomes a separate customer.
    Split {
        /// A customer key.
        key: String,
        /// The identity to split off, as NS:VALUE (e.g. web:W1000040 or email:ann@example.com).
        #[arg(long)]
        identity: String,
        /// Namespace of the key.
        #[arg(long)]
        namespace: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo a split: restore the identity's links.
    Unsplit {
        /// A customer key (any customer; the identity's links are restored).
        key: String,
        /// The identity, as NS:VALUE.
        #[arg(long)]
        identity: String,
        /// Namespace of the key.
        #[arg(long)]
        namespace: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Issue a token that acts only as this customer (for `/v1/me`).
    Token {
        /// A customer key: email, phone, NS:ID or #ID.
        key: String,
        /// Namespace of the key.
        #[arg(long)]
        namespace: Option<String>,
        /// Lifetime, e.g. 1h (default), 30d.
        #[arg(long)]
        expires: Option<String>,
        /// JSON output (field `token`).
        #[arg(long)]
        json: bool,
    },
    /// Print a one-time sign-in link to the customer portal (`/portal`).
    Link {
        /// A customer key: email, phone, NS:ID or #ID.
        key: String,
        /// Namespace of the key.
        #[arg(long)]
        namespace: Option<String>,
        /// How long the link works, e.g. 30m (default), 2h; at most 7d.
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
        /// Base URL of `infogap serve`.
        #[arg(long, default_value = super::web::DEFAULT_BASE_URL, value_name = "URL")]
        base_url: String,
        /// Do not print the link: queue it for the webhooks that take
        /// `portal.link` (the business's mailer), delivered by `infogap serve`.
        #[arg(long)]
        deliver: bool,
        /// JSON output (`url`, `customer`, `expires_at`; with --deliver
        /// `customer`, `expires_at`, `queued`).
        #[arg(long)]
        json: bool,
    },
}

/// `infogap demo`
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "infogap-demo")]
    pub out: PathBuf,
    /// Number of people.
    #[arg(long, default_value_t = 2000)]
    pub customers: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap quickstart`
#[derive(Debug, Args)]
pub struct QuickstartArgs {
    /// Directory for the demo data (the store goes inside unless --db is given).
    #[arg(long, default_value = "infogap-demo")]
    pub dir: PathBuf,
    /// Number of people in the demo.
    #[arg(long, default_value_t = 2000)]
    pub customers: usize,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap bench …`
#[derive(Debug, Subcommand)]
pub enum BenchCmd {
    /// Time an import (rows/s) into a fresh store.
    Import {
        /// Config to import.
        #[arg(long)]
        config: PathBuf,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// Without encryption at rest (plaintext store): the baseline the
        /// encrypted import is compared with.
        #[arg(long)]
        plaintext: bool,
    },
    /// Forecasting fits in the statsmodels anchor script's protocol (cold
    /// and median of repeats per row, one process).
    Forecast(crate::cmd::forecast::BenchForecastArgs),
    /// Load a running `infogap serve`'s event intake (`/v1/batch` or
    /// `/v1/track`) for a fixed time; events/s and latency.
    Intake(crate::cmd::bench_intake::BenchIntakeArgs),
    /// Convert a Parquet file to CSV (for the sqlite3 .import comparison).
    ParquetToCsv {
        /// Parquet input.
        #[arg(long)]
        parquet: PathBuf,
        /// CSV output.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Opens the store named by the config's `[store] path` unless `--db` is given.
fn engine_for(ctx: &Ctx, config: &Config) -> anyhow::Result<Engine> {
    match (&ctx.db_arg, &config.store_path) {
        (None, Some(p)) => crate::ctx::open_engine(p, Some(config)),
        _ => crate::ctx::open_engine(&ctx.db_path(), Some(config)),
    }
}

/// `infogap import`
pub fn import(ctx: &Ctx, a: &ImportArgs) -> anyhow::Result<()> {
    let config = Config::load(&a.config)?;
    let engine = engine_for(ctx, &config)?;
    let opts = ImportOptions {
        skip_bad_rows: a.skip_bad_rows,
        rejects_dir: a.rejects_dir.clone(),
        progress: ctx.progress(),
    };
    let access = ctx.access(&engine, Action::DataImport)?;
    let rep = infogap_engine::import::import(&engine, &config, &opts)?;
    let written: u64 = rep.sources.iter().map(|s| s.rows_written).sum();
    engine.record(infogap_engine::audit::entry(
        &access.principal,
        "data.import",
        vec![],
        vec![],
        &format!("{} sources, {written} rows written", rep.sources.len()),
    ))?;
    if a.json {
        print_json(&rep)
    } else {
        print_import(&rep);
        Ok(())
    }
}

fn print_import(rep: &ImportReport) {
    println!(
        "{:<16} {:<18} {:>10} {:>10} {:>8} {:>10}  status",
        "source", "kind", "read", "written", "rejected", "rows/s"
    );
    for s in &rep.sources {
        println!(
            "{:<16} {:<18} {:>10} {:>10} {:>8} {:>10.0}  {}",
            s.name,
            s.kind,
            s.rows_read,
            s.rows_written,
            s.rows_rejected,
            s.rows_per_second,
            s.status
        );
        if let Some(f) = &s.rejects_file {
            println!(
                "  {} bad row(s) skipped, written with their reasons to {f}",
                s.rows_rejected
            );
        }
        if s.ignored_identity_values > 0 {
            println!(
                "  {} junk or invalid identity value(s) ignored for linking",
                s.ignored_identity_values
            );
        }
    }
    for k in &rep.over_shared_keys {
        println!(
            "note: {} {:?} is shared by {} {} ids (more than max_customers_per_key): not used to link",
            k.kind, k.value, k.customer_ids, k.namespace
        );
    }
    if rep.merges > 0 {
        println!(
            "{} existing customer(s) merged by new evidence (see `infogap customer merges KEY`)",
            rep.merges
        );
    }
    println!("{} unified customers in the store", rep.customers);
}

/// `infogap stats`
pub fn stats(ctx: &Ctx, a: &StatsArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let s = report::stats(&engine)?;
    let access = ctx.access(&engine, Action::StatsRead)?;
    let ds = engine.dataset()?;
    let (shared, privacy) =
        infogap_engine::privacy::aggregate::shared_stats(&engine, &access, s.clone(), &ds)?;
    engine.record_access(&access, "stats.read", vec![], vec![])?;
    if a.json {
        let mut v = shared;
        v["privacy"] = serde_json::to_value(&privacy)?;
        return print_json(&v);
    }
    if !privacy.exact {
        print_shared_stats(&shared);
        println!("{}", privacy.line());
        return Ok(());
    }
    println!("customers    {:>12}", s.customers);
    println!(
        "identities   {:>12}  ({} over-shared keys kept apart)",
        s.identities, s.shared_keys
    );
    println!("orders       {:>12}", s.orders);
    println!("order lines  {:>12}", s.order_lines);
    println!("products     {:>12}", s.products);
    println!("events       {:>12}", s.events);
    println!("feedback     {:>12}", s.feedback);
    println!(
        "campaigns    {:>12}  ({} contacts)",
        s.campaigns, s.campaign_contacts
    );
    println!("consents     {:>12}", s.consents);
    println!("revenue      {:>12.2}", s.revenue);
    println!();
    println!(
        "{:<16} {:<18} {:<10} {:>10}  last import",
        "source", "kind", "namespace", "rows"
    );
    for src in &s.sources {
        println!(
            "{:<16} {:<18} {:<10} {:>10}  {} {}",
            src.name,
            src.kind,
            src.namespace,
            src.rows,
            src.last_import.clone().unwrap_or_default(),
            src.last_status.clone().unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints store-wide figures as a role outside analyst sees them (merged
/// sources, withheld figures under differential privacy).
fn print_shared_stats(v: &serde_json::Value) {
    for k in [
        "customers",
        "identities",
        "orders",
        "order_lines",
        "products",
        "events",
        "feedback",
        "campaigns",
        "consents",
        "revenue",
    ] {
        let shown = match v.get(k) {
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => "withheld".to_string(),
        };
        println!("{k:<12} {shown:>12}");
    }
    if let Some(serde_json::Value::Array(sources)) = v.get("sources") {
        println!();
        println!("{:<24} {:>10}", "source", "rows");
        for src in sources {
            println!(
                "{:<24} {:>10}",
                src.get("name").and_then(|x| x.as_str()).unwrap_or(""),
                src.get("rows").and_then(|x| x.as_i64()).unwrap_or(0)
            );
        }
    }
}

/// `infogap customer …`
pub fn customer(ctx: &Ctx, c: &CustomerCmd) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    match c {
        CustomerCmd::Token {
            key,
            namespace,
            expires,
            json,
        } => super::share::customer_token(
            ctx,
            &engine,
            key,
            namespace.as_deref(),
            expires.as_deref(),
            *json,
        ),
        CustomerCmd::Link {
            key,
            namespace,
            ttl,
            base_url,
            deliver,
            json,
        } => super::web::customer_link(
            ctx,
            &engine,
            super::web::LinkArgs {
                key,
                namespace: namespace.as_deref(),
                ttl: ttl.as_deref(),
                base: base_url,
                deliver: *deliver,
                json: *json,
            },
        ),
        CustomerCmd::Show {
            key,
            namespace,
            json,
        } => {
            let id = report::resolve_key(&engine, key, namespace.as_deref())?;
            let access = ctx.access(&engine, Action::CustomersRead)?;
            let v = engine.share_customer(&access, id)?;
            if *json {
                print_json(&v)
            } else {
                print_customer(&v);
                Ok(())
            }
        }
        CustomerCmd::Merges {
            key,
            namespace,
            json,
        } => {
            let m = report::merges(&engine, key, namespace.as_deref())?;
            if *json {
                print_json(&m)
            } else {
                print_merges(&m);
                Ok(())
            }
        }
        CustomerCmd::Split {
            key,
            identity,
            namespace,
            json,
        } => {
            let access = ctx.access(&engine, Action::CustomersMerge)?;
            let o = report::split(&engine, key, namespace.as_deref(), identity)?;
            engine.record_access(
                &access,
                "customers.split",
                vec![o.from_customer, o.to_customer],
                vec![],
            )?;
            if *json {
                print_json(&o)
            } else {
                println!(
                    "{} split from customer #{} into customer #{} ({} link(s) switched off; undo with `infogap customer unsplit {} --identity {}`)",
                    o.identity, o.from_customer, o.to_customer, o.links_changed, key, o.identity
                );
                Ok(())
            }
        }
        CustomerCmd::Unsplit {
            key,
            identity,
            namespace,
            json,
        } => {
            let access = ctx.access(&engine, Action::CustomersMerge)?;
            let o = report::unsplit(&engine, key, namespace.as_deref(), identity)?;
            engine.record_access(&access, "customers.unsplit", vec![o.to_customer], vec![])?;
            if *json {
                print_json(&o)
            } else {
                println!(
                    "{} is in customer #{} again ({} link(s) restored)",
                    o.identity, o.to_customer, o.links_changed
                );
                Ok(())
            }
        }
    }
}

fn opt_date(t: Option<i64>) -> String {
    t.map(format_date).unwrap_or_else(|| "-".into())
}

fn print_customer(v: &SharedCustomer) {
    println!("customer #{}  ({})", v.id, v.key);
    println!("sources: {}", v.sources.join(", "));
    println!("\nidentities:");
    for i in &v.identities {
        println!(
            "  {:<8} {:<10} {:<36} from {} line {} — {}",
            i.kind, i.namespace, i.value, i.source, i.line, i.linked_by
        );
    }
    if !v.attributes.is_empty() {
        println!("\nattributes:");
        for a in &v.attributes {
            println!("  {:<14} {:<20} ({})", a.name, a.value.as_text(), a.source);
        }
    }
    if let Some(o) = &v.orders {
        println!(
            "\norders: {} orders, {} lines, revenue {:.2}, discounts {:.2}, first {}, last {}",
            o.count,
            o.lines,
            o.revenue,
            o.discount,
            opt_date(o.first),
            opt_date(o.last)
        );
    }
    let none = Vec::new();
    let events = v.events.as_ref().unwrap_or(&none);
    if !events.is_empty() {
        let ev: Vec<String> = events
            .iter()
            .map(|e| format!("{} {}", e.event, e.count))
            .collect();
        println!("events: {}", ev.join(", "));
    }
    let none = Vec::new();
    let feedback = v.feedback.as_ref().unwrap_or(&none);
    if !feedback.is_empty() {
        println!("feedback:");
        for f in feedback {
            println!(
                "  {:<8} {:>3}  mean score {}  last score {}  last text {:?}",
                f.kind,
                f.count,
                f.mean_score
                    .map(|s| format!("{s:.1}"))
                    .unwrap_or_else(|| "-".into()),
                f.last_score
                    .map(|s| format!("{s:.0}"))
                    .unwrap_or_else(|| "-".into()),
                f.last_text.clone().unwrap_or_default()
            );
        }
    }
    let none = Vec::new();
    let campaigns = v.campaigns.as_ref().unwrap_or(&none);
    if !campaigns.is_empty() {
        let c: Vec<String> = campaigns
            .iter()
            .map(|c| {
                format!(
                    "{} (received {}, redeemed {})",
                    c.campaign, c.received, c.redeemed
                )
            })
            .collect();
        println!("campaigns: {}", c.join(", "));
    }
    let none = Vec::new();
    let consents = v.consents.as_ref().unwrap_or(&none);
    if !consents.is_empty() {
        let c: Vec<String> = consents
            .iter()
            .map(|c| {
                format!(
                    "{} {}",
                    c.purpose,
                    if c.granted { "granted" } else { "withdrawn" }
                )
            })
            .collect();
        println!("consent: {}", c.join(", "));
    }
}

fn print_merges(m: &MergeExplanation) {
    println!(
        "customer #{} is {} key(s): {}",
        m.id,
        m.identities.len(),
        m.identities.join(", ")
    );
    if m.links.is_empty() {
        println!("no links: nothing was merged");
    }
    for l in &m.links {
        let how = match l.rule.as_str() {
            "same_record" => "appear on the same record",
            "link_table" => "are mapped by a link table",
            _ => "are linked",
        };
        println!(
            "  {} and {} {} ({} line {}){}",
            l.a,
            l.b,
            how,
            l.source,
            l.line,
            if l.suppressed {
                "  [undone by a split]"
            } else {
                ""
            }
        );
    }
    if !m.history.is_empty() {
        println!("history:");
        for h in &m.history {
            println!("  {} {:<8} {}", h.at, h.action, h.detail);
        }
    }
}

/// `infogap demo`
pub fn demo(_ctx: &Ctx, a: &DemoArgs) -> anyhow::Result<()> {
    let s = demo::generate(&demo::DemoOptions {
        out: a.out.clone(),
        customers: a.customers,
        seed: a.seed,
    })?;
    if a.json {
        return print_json(&s);
    }
    println!(
        "wrote {} people ({} planted churners): {} orders, {} order lines, {} events, {} ratings, {} surveys/reviews, {} tickets",
        s.persons, s.churners, s.orders, s.order_lines, s.events, s.ratings, s.feedback, s.tickets
    );
    println!(
        "config: {}   (import with: infogap import --config {})",
        s.config, s.config
    );
    Ok(())
}

/// `infogap quickstart`: demo → import → report (+ the model sections).
pub fn quickstart(ctx: &Ctx, a: &QuickstartArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let s = demo::generate(&demo::DemoOptions {
        out: a.dir.clone(),
        customers: a.customers,
        seed: a.seed,
    })?;
    let db = ctx
        .db_arg
        .clone()
        .unwrap_or_else(|| a.dir.join("infogap.db"));
    let config = Config::load(Path::new(&s.config))?;
    let engine = crate::ctx::open_engine(&db, Some(&config))?;
    let opts = ImportOptions {
        skip_bad_rows: 0,
        rejects_dir: None,
        progress: ctx.progress(),
    };
    let rep = infogap_engine::import::import(&engine, &config, &opts)?;
    let stats = report::stats(&engine)?;
    let mut out = serde_json::json!({
        "demo": s,
        "store": db.display().to_string(),
        "import": rep,
        "stats": stats,
    });
    let sample = busiest_customer(ctx, &engine)?;
    if !a.json {
        println!(
            "infogap quickstart — demo data in {}, store {}",
            a.dir.display(),
            db.display()
        );
        println!();
        print_import(&rep);
        println!();
        println!(
            "Identity resolution: {} people in the demo (ground truth) -> {} unified customers from {} identity keys",
            s.persons, stats.customers, stats.identities
        );
        println!(
            "Store: {} orders, {} order lines, revenue {:.2}, {} events, {} feedback records",
            stats.orders, stats.order_lines, stats.revenue, stats.events, stats.feedback
        );
        if let Some(v) = &sample {
            println!();
            println!(
                "A unified customer seen by the most departments (`infogap customer show {}`):",
                v.key
            );
            print_customer(v);
        }
    }
    if let Some(v) = sample {
        out["sample_customer"] = serde_json::to_value(&v)?;
    }
    let sections = crate::cmd::quickstart_sections(ctx, &engine, a.json);
    out["sections"] = serde_json::Value::Object(sections);
    out["seconds"] = serde_json::json!(started.elapsed().as_secs_f64());
    if a.json {
        print_json(&out)?;
    } else {
        println!();
        println!(
            "Done in {:.1} s. Next: `infogap --db {} stats`, `infogap --db {} customer show KEY`.",
            started.elapsed().as_secs_f64(),
            db.display(),
            db.display()
        );
    }
    Ok(())
}

fn busiest_customer(ctx: &Ctx, engine: &Engine) -> anyhow::Result<Option<SharedCustomer>> {
    let ds = engine.dataset()?;
    // the customer with the most identity-bearing departments: approximate by facts of several kinds
    let mut best: Option<(usize, i64)> = None;
    let mut kinds: std::collections::HashMap<i64, [bool; 4]> = std::collections::HashMap::new();
    for o in &ds.orders {
        kinds.entry(o.customer).or_default()[0] = true;
    }
    for e in &ds.events {
        kinds.entry(e.customer).or_default()[1] = true;
    }
    for f in &ds.feedback {
        kinds.entry(f.customer).or_default()[2] = true;
    }
    for c in &ds.redemptions {
        kinds.entry(c.customer).or_default()[3] = true;
    }
    for (c, k) in &kinds {
        let n = k.iter().filter(|b| **b).count();
        if best.is_none_or(|(bn, bc)| n > bn || (n == bn && *c < bc)) {
            best = Some((n, *c));
        }
    }
    match best {
        Some((_, c)) => {
            let access = ctx.access(engine, Action::CustomersRead)?;
            Ok(Some(engine.share_customer(&access, c)?))
        }
        None => Ok(None),
    }
}

/// `infogap bench …`
pub fn bench(ctx: &Ctx, c: &BenchCmd) -> anyhow::Result<()> {
    match c {
        BenchCmd::Import {
            config,
            json,
            plaintext,
        } => {
            let config = Config::load(config)?;
            let engine = if *plaintext {
                let path = match (&ctx.db_arg, &config.store_path) {
                    (None, Some(p)) => p.clone(),
                    _ => ctx.db_path(),
                };
                // every migration, and no data key
                let store = infogap_store::SqliteStore::open_at_version(&path, i64::MAX)?;
                Engine::with_store(Box::new(store))
            } else {
                engine_for(ctx, &config)?
            };
            let t = Instant::now();
            let rep = infogap_engine::import::import(
                &engine,
                &config,
                &ImportOptions {
                    progress: ctx.progress(),
                    ..Default::default()
                },
            )?;
            let secs = t.elapsed().as_secs_f64();
            let rows: u64 = rep.sources.iter().map(|s| s.rows_read).sum();
            let out = serde_json::json!({"rows": rows, "seconds": secs, "rows_per_second": rows as f64 / secs, "encrypted": !*plaintext, "sources": rep.sources});
            if *json {
                print_json(&out)
            } else {
                println!(
                    "{rows} rows in {secs:.2} s = {:.0} rows/s",
                    rows as f64 / secs
                );
                Ok(())
            }
        }
        BenchCmd::Forecast(a) => crate::cmd::forecast::bench(ctx, a),
        BenchCmd::Intake(a) => crate::cmd::bench_intake::bench_intake(a),
        BenchCmd::ParquetToCsv { parquet, out } => {
            let n = infogap_engine::report::parquet_to_csv(parquet, out)?;
            println!("{n} rows written to {}", out.display());
            Ok(())
        }
    }
}
