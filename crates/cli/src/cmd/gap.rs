//! `gap`, `gap departments`, `gap customer KEY`, `gap ask-next`: argument
//! parsing and printing only; the work is in `infogap_engine::gap`.

use std::path::PathBuf;

use infogap_core::access::Action;
use infogap_engine::gap::ask::{AskOptions, AskReport, Decision};
use infogap_engine::gap::departments::{DepartmentOptions, DepartmentsReport};
use infogap_engine::gap::knowledge::{CustomerGap, GapOverview};
use infogap_engine::report;
use infogap_models::classify::ModelKind;

use crate::Ctx;
use crate::ctx::print_json;

/// Arguments of `gap` (alone: the distribution of the knowledge score).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct GapArgs {
    #[command(subcommand)]
    cmd: Option<GapCmd>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum GapCmd {
    /// What each department holds, sees and decides alone vs the unified view.
    Departments(DepartmentsArgs),
    /// How well we know one customer, where it is thin, what they have not been shown.
    Customer(CustomerArgs),
    /// Per-customer question queue: unknown fields ranked by expected gain.
    AskNext(AskNextArgs),
}

#[derive(Debug, clap::Args)]
struct DepartmentsArgs {
    /// Churn model of the backtest: logreg, tree, gbm or auto.
    #[arg(long, default_value = "logreg")]
    model: String,
    /// Window after the cutoff for the churn label and the spend target (days).
    #[arg(long, default_value_t = 90)]
    window_days: i64,
    /// Seed of the folds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct CustomerArgs {
    /// Any key: id, email, phone, ns:id, #ID.
    key: String,
    /// Namespace of a bare id.
    #[arg(long)]
    namespace: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct AskNextArgs {
    /// The decision the answers should improve: churn, recs or spend.
    #[arg(long = "for", default_value = "churn")]
    decision: String,
    /// Questions per customer.
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Write the queue as CSV (customer, rank, field, question, expected_gain).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Also write the training table (no identifiers) as CSV, for `eval ask-next`.
    #[arg(long, value_name = "FILE")]
    table_out: Option<PathBuf>,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `infogap gap …`.
pub fn gap(ctx: &Ctx, args: &GapArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    match &args.cmd {
        None => {
            let access = ctx.access(&engine, Action::ModelsTrain)?;
            let r = engine.gap_overview(&access)?;
            if args.json {
                print_json(&r)
            } else {
                print_overview(&r);
                Ok(())
            }
        }
        Some(GapCmd::Departments(d)) => {
            let model: ModelKind = d
                .model
                .parse()
                .map_err(|e| anyhow::anyhow!("--model: {e}"))?;
            let access = ctx.access(&engine, Action::ModelsTrain)?;
            let opts = DepartmentOptions {
                window_days: d.window_days,
                model,
                seed: d.seed,
                progress: ctx.progress(),
                ..DepartmentOptions::default()
            };
            let r = engine.gap_departments(&access, &opts)?;
            if d.json {
                print_json(&r)
            } else {
                print_departments(&r);
                Ok(())
            }
        }
        Some(GapCmd::Customer(c)) => {
            let id = report::resolve_key(&engine, &c.key, c.namespace.as_deref())?;
            let access = ctx.access(&engine, Action::CustomersRead)?;
            let r = engine.gap_customer(&access, id)?;
            if c.json {
                print_json(&r)
            } else {
                print_customer(&r);
                Ok(())
            }
        }
        Some(GapCmd::AskNext(q)) => {
            if q.top == 0 {
                anyhow::bail!("--top must be at least 1");
            }
            let access = ctx.access(&engine, Action::SegmentsExport)?;
            let opts = AskOptions {
                decision: Decision::parse(&q.decision)?,
                top: q.top,
                seed: q.seed,
            };
            let r = engine.gap_ask_next(&access, &opts, q.table_out.as_deref())?;
            if let Some(path) = &q.out {
                infogap_engine::gap::ask::write_queue(path, &r)?;
            }
            if q.json {
                print_json(&r)
            } else {
                print_ask(&r, q.out.as_deref(), q.table_out.as_deref());
                Ok(())
            }
        }
    }
}

fn pct(x: f64) -> String {
    format!("{:.0}%", 100.0 * x)
}

fn print_departments(r: &DepartmentsReport) {
    println!(
        "{} customers; departments: {}; decisions backtested at {} ({}-day window)",
        r.customers, r.grouping, r.cutoff, r.window_days
    );
    println!(
        "populations: churn {} ({} churned), recommendations {}, spend {}",
        r.churn_population, r.churners, r.recs_population, r.spend_population
    );
    println!();
    print!("{:<14} {:>9}", "department", "customers");
    for k in &r.kinds {
        print!(" {:>13}", k);
    }
    println!(" {:>9} {:>7} {:>9}", "churn AUC", "nDCG@10", "spend MAE");
    for d in r.departments.iter().chain(std::iter::once(&r.unified)) {
        print!("{:<14} {:>9}", d.name, d.customers);
        for k in &r.kinds {
            print!(" {:>13}", pct(d.visibility.get(k).copied().unwrap_or(0.0)));
        }
        println!(
            " {:>9.3} {:>7.3} {:>9.2}",
            d.churn_auc, d.ndcg10, d.spend_mae
        );
    }
    println!();
    println!(
        "value of sharing (unified vs the best single department): churn AUC {:+.3}, nDCG@10 {:+.3}, spend MAE {:+.2}",
        r.value_of_sharing.churn_auc, r.value_of_sharing.ndcg10, r.value_of_sharing.spend_mae
    );
    for d in r.departments.iter().chain(std::iter::once(&r.unified)) {
        for n in &d.notes {
            println!("  {}: {n}", d.name);
        }
    }
}

fn print_overview(r: &GapOverview) {
    let d = &r.distribution;
    println!(
        "knowledge score of {} customers as of {}: mean {:.2}, quartiles {:.2} / {:.2} / {:.2}",
        d.customers, r.as_of, d.mean, d.quartiles[0], d.quartiles[1], d.quartiles[2]
    );
    println!("histogram (0.0–1.0 by 0.1): {:?}", d.histogram);
    println!();
    println!(
        "{:<15} {:>10} {:>7} {:>16}",
        "dimension", "mean level", "known", "median age (d)"
    );
    for x in &r.dimensions {
        println!(
            "{:<15} {:>10.2} {:>7} {:>16}",
            x.dimension,
            x.mean_level,
            pct(x.known_share),
            x.median_age_days.map_or("-".into(), |a| format!("{a:.0}"))
        );
    }
    println!();
    println!("by segment:");
    for g in &r.by_segment {
        println!(
            "  {:<22} {:>7} customers, mean {:.2}",
            g.name, g.customers, g.mean_score
        );
    }
    println!("by department (what it alone knows of the customers it knows):");
    for g in &r.by_department {
        println!(
            "  {:<22} {:>7} customers, mean {:.2}",
            g.name, g.customers, g.mean_score
        );
    }
    println!(
        "conflicts: {} customers; per attribute {:?}",
        r.customers_with_conflicts, r.conflicts
    );
    let b = &r.backtest;
    println!();
    println!(
        "backtest at {}: Spearman(score, churn error) {} over {} customers (churn AUC {:.3}); Spearman(score, relative spend error) {} over {} (absolute error: {})",
        b.cutoff,
        fmt_opt(b.churn_spearman),
        b.churn_customers,
        b.churn_auc,
        fmt_opt(b.spend_spearman),
        b.spend_customers,
        fmt_opt(b.spend_abs_spearman)
    );
    println!(
        "{:>8} {:>9} {:>10} {:>11} {:>11}",
        "quartile", "customers", "mean score", "churn error", "spend error"
    );
    for q in &b.quartiles {
        println!(
            "{:>8} {:>9} {:>10.2} {:>11} {:>11}",
            q.quartile,
            q.customers,
            q.mean_score,
            fmt_opt(q.churn_error),
            fmt_opt(q.spend_error)
        );
    }
    println!();
    if !r.not_recorded.is_empty() {
        println!(
            "recorded for nobody (left out of the score): {}",
            r.not_recorded.join(", ")
        );
    }
    println!("score: {}", r.method);
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.3}"))
}

fn print_customer(r: &CustomerGap) {
    println!(
        "{} (#{}): knowledge score {:.2} (percentile {:.0}) as of {}",
        r.key, r.id, r.knowledge_score, r.percentile, r.as_of
    );
    println!();
    println!(
        "{:<15} {:>6} {:>6} {:>11} {:>8}  missing",
        "dimension", "level", "facts", "newest", "age (d)"
    );
    for d in &r.dimensions {
        println!(
            "{:<15} {:>6.2} {:>6} {:>11} {:>8}  {}",
            d.dimension,
            d.level,
            d.facts,
            d.newest.clone().unwrap_or_else(|| "-".into()),
            d.age_days.map_or("-".into(), |a| format!("{a:.0}")),
            if d.recorded {
                d.missing.join(", ")
            } else {
                "(recorded for no customer)".into()
            }
        );
    }
    if !r.thin.is_empty() {
        println!("thin: {}", r.thin.join(", "));
    }
    for c in &r.conflicts {
        let vals: Vec<String> = c
            .values
            .iter()
            .map(|v| {
                format!(
                    "{} ({})",
                    v.value.as_deref().unwrap_or("(hidden)"),
                    v.sources.join(", ")
                )
            })
            .collect();
        println!("conflict: {} = {}", c.attribute, vals.join(" vs "));
    }
    println!();
    println!("departments:");
    for d in &r.departments {
        let facts: Vec<String> = d.facts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!(
            "  {:<12} {:<8} score {:.2}  {}",
            d.name,
            if d.knows { "knows" } else { "-" },
            d.knowledge_score,
            facts.join(", ")
        );
    }
    println!();
    println!(
        "held, not shown to them{}:",
        r.last_self_view.as_ref().map_or(
            " (they have never opened the self-service view)".into(),
            |d| format!(" (last self-service view {d})")
        )
    );
    for u in &r.held_not_shown {
        println!("  {}: {}", u.item, u.detail);
    }
    println!("what they do not know about us:");
    for u in &r.unaware_of {
        println!(
            "  {} {}{}: {}",
            u.kind,
            u.key,
            u.name.as_ref().map_or(String::new(), |n| format!(" ({n})")),
            u.why
        );
    }
}

fn print_ask(r: &AskReport, out: Option<&std::path::Path>, table: Option<&std::path::Path>) {
    println!(
        "ask next for {:?}: model of \"{}\" trained on {} customers (cutoff {}); {} customers with a queue ({} left out: {})",
        r.decision,
        r.target,
        r.trained_on,
        r.cutoff,
        r.customers,
        r.left_out.total(),
        r.left_out.describe()
    );
    println!("first question: {:?}", r.first_asked);
    for q in r.queues.iter().take(10) {
        let qs: Vec<String> = q
            .questions
            .iter()
            .map(|x| format!("{} ({:.4})", x.field, x.expected_gain))
            .collect();
        println!("  {:<28} {}", q.key, qs.join(", "));
    }
    if r.queues.len() > 10 {
        println!("  … {} more", r.queues.len() - 10);
    }
    println!("{:.0} decisions per second", r.decisions_per_second);
    if let Some(p) = out {
        println!("queue written to {}", p.display());
    }
    if let Some(p) = table {
        println!("training table written to {}", p.display());
    }
}

/// The quickstart's information-gap section: what each department decides
/// alone vs the unified view, and whether the knowledge score means something.
pub fn quickstart_section(
    ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let access = ctx.access(engine, Action::ModelsTrain)?;
    let d = engine.gap_departments(&access, &DepartmentOptions::default())?;
    if !json {
        println!(
            "The information gap: what each department decides alone (infogap gap departments)"
        );
        println!(
            "{:<14} {:>9} {:>9} {:>7} {:>9}",
            "department", "customers", "churn AUC", "nDCG@10", "spend MAE"
        );
        for x in d.departments.iter().chain(std::iter::once(&d.unified)) {
            println!(
                "{:<14} {:>9} {:>9.3} {:>7.3} {:>9.2}",
                x.name, x.customers, x.churn_auc, x.ndcg10, x.spend_mae
            );
        }
        println!(
            "value of sharing: churn AUC {:+.3}, nDCG@10 {:+.3}, spend MAE {:+.2} (unified vs the best department)",
            d.value_of_sharing.churn_auc, d.value_of_sharing.ndcg10, d.value_of_sharing.spend_mae
        );
        println!("next: infogap gap, infogap gap customer KEY, infogap gap ask-next --for churn");
    }
    Ok(serde_json::json!({
        "departments": d.departments.iter().map(|x| serde_json::json!({
            "name": x.name, "customers": x.customers, "churn_auc": x.churn_auc,
            "ndcg10": x.ndcg10, "spend_mae": x.spend_mae,
        })).collect::<Vec<_>>(),
        "unified": {"customers": d.unified.customers, "churn_auc": d.unified.churn_auc,
            "ndcg10": d.unified.ndcg10, "spend_mae": d.unified.spend_mae},
    }))
}
