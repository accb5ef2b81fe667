//! `eval regress`, `train amount`, `segments`, `segment export` and `bayes`:
//! argument parsing and report printing. The work happens in
//! `infogap_engine::analytics` and `infogap_models::{regress, segment, bayes}`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use infogap_engine::analytics::{
    self, AmountOptions, BayesStoreOptions, RegressOptions, RegressReport, SegmentMethod,
    SegmentOptions, SegmentsReport,
};
use infogap_models::bayes::{self, Evidence};

use crate::Ctx;
use crate::ctx::print_json;

/// Arguments of `eval regress`.
#[derive(Debug, clap::Args)]
pub struct EvalRegressArgs {
    /// The table (any delimiter, quoted fields, CRLF; types inferred).
    #[arg(long, value_name = "FILE", required_unless_present = "synthetic")]
    csv: Option<PathBuf>,
    /// Numeric target column.
    #[arg(long, value_name = "COL", required_unless_present = "synthetic")]
    target: Option<String>,
    /// Ridge penalty on standardized coefficients (0 = OLS).
    #[arg(long, default_value_t = 0.0, value_name = "L")]
    ridge: f64,
    /// Columns to leave out (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "COL,..")]
    drop: Vec<String>,
    /// Folds for the out-of-fold R²/RMSE (0 = skip).
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the fold split (and of the synthetic data).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Instead of a file, fit the synthetic customer table of the scikit-learn
    /// anchor with this many rows (speed benchmark).
    #[arg(long, value_name = "ROWS", conflicts_with = "csv")]
    synthetic: Option<usize>,
    /// With --synthetic: time this many further fits (`fit_seconds_repeats`).
    #[arg(long, default_value_t = 0, requires = "synthetic")]
    repeats: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A statistic that can be undefined (R² of a constant target, σ without
/// residual degrees of freedom), with `decimals` places or `n/a`.
fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.decimals$}"))
}

fn fmt_opt(v: Option<f64>, prec: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.prec$}"))
}

fn print_regress(r: &RegressReport) {
    if !r.fit_seconds_repeats.is_empty() {
        let t: Vec<String> = r
            .fit_seconds_repeats
            .iter()
            .map(|s| format!("{s:.4}"))
            .collect();
        println!("fit repeats (s): {}", t.join(", "));
    }
    println!(
        "rows {}  R² {}  adj R² {}  RMSE {:.4}  fit {:.4} s",
        r.n,
        opt(r.r2, 4),
        opt(r.adj_r2, 4),
        r.rmse,
        r.fit_seconds
    );
    if let Some(cv) = &r.cv {
        println!(
            "{}-fold out-of-fold: R² {}  RMSE {}  MAE {}",
            cv.folds,
            opt(cv.r2, 4),
            opt(cv.rmse, 4),
            opt(cv.mae, 4)
        );
    }
    println!(
        "{:<40} {:>14} {:>12} {:>9}",
        "term", "coefficient", "std. error", "t"
    );
    println!(
        "{:<40} {:>14.6} {:>12} {:>9}",
        "(intercept)",
        r.intercept,
        fmt_opt(r.intercept_se, 6),
        ""
    );
    for (name, b) in &r.coefficients {
        if r.aliased.contains(name) {
            continue;
        }
        let se = r.standard_errors.get(name).copied().flatten();
        let t = r.t_values.get(name).copied().flatten();
        println!(
            "{:<40} {:>14.6} {:>12} {:>9}",
            name,
            b,
            fmt_opt(se, 6),
            fmt_opt(t, 2)
        );
    }
    if !r.aliased.is_empty() {
        println!(
            "aliased (linear combinations of other columns, exactly or to within 1e-10 of their variance; left out): {}",
            r.aliased.join(", ")
        );
    }
    if let Some(p) = &r.preparation {
        for d in &p.dropped {
            println!("dropped {}: {}", d.name, d.reason);
        }
        if p.rows_missing_target > 0 {
            println!(
                "{} rows without a target value were left out",
                p.rows_missing_target
            );
        }
    }
    if let Some(e) = &r.encoding {
        for rule in e
            .rules
            .iter()
            .filter(|r| r.contains("blank cells imputed with median"))
        {
            println!("{rule}");
        }
    }
}

/// `infogap eval regress`.
pub fn eval_regress(_ctx: &Ctx, args: &EvalRegressArgs) -> anyhow::Result<()> {
    let report = if let Some(n) = args.synthetic {
        if n < 10 {
            bail!("--synthetic needs at least 10 rows");
        }
        analytics::eval_regress_synthetic(n, args.seed, args.ridge, args.repeats)?
    } else {
        let (Some(csv), Some(target)) = (&args.csv, &args.target) else {
            bail!("--csv FILE and --target COL are required");
        };
        let frame = analytics::read_frame(csv)?;
        let opts = RegressOptions {
            target: target.clone(),
            ridge: args.ridge,
            drop: args.drop.clone(),
            folds: args.folds,
            seed: args.seed,
        };
        analytics::eval_regress(&frame, &opts)
            .with_context(|| format!("regression on {}", csv.display()))?
    };
    if args.json {
        print_json(&report)
    } else {
        print_regress(&report);
        Ok(())
    }
}

/// Arguments of `train amount`.
#[derive(Debug, clap::Args)]
pub struct TrainAmountArgs {
    /// Length of the predicted period (days); the model learns spend in the
    /// last `horizon` days of the data from features before them.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    horizon_days: i64,
    /// Ridge penalty on standardized coefficients.
    #[arg(long, default_value_t = 1.0)]
    ridge: f64,
    /// Cross-validation folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of the folds.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// How many customers to list with their predicted spend.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `infogap train amount`.
pub fn train_amount(ctx: &Ctx, args: &TrainAmountArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let opts = AmountOptions {
        horizon_days: args.horizon_days,
        ridge: args.ridge,
        folds: args.folds,
        seed: args.seed,
        top: args.top,
    };
    let r = analytics::train_amount(&engine, &opts)?;
    if args.json {
        return print_json(&r);
    }
    println!(
        "amount model v{} saved: next {}-day spend from features before {} ({} customers, mean {:.2})",
        r.version, r.horizon_days, r.cutoff, r.customers, r.mean_target
    );
    println!(
        "training R² {}  RMSE {:.2}  fit {:.4} s",
        opt(r.r2, 3),
        r.rmse,
        r.fit_seconds
    );
    if let Some(cv) = &r.cv {
        println!(
            "{}-fold out-of-fold R² {}  RMSE {}  (baseline \"same as last period\": RMSE {:.2})",
            cv.folds,
            opt(cv.r2, 3),
            opt(cv.rmse, 2),
            r.baseline_rmse
        );
    }
    println!(
        "{:<36} {:>12} {:>11} {:>8}",
        "term (by |t|)", "coefficient", "std. err.", "t"
    );
    for t in &r.top_terms {
        println!(
            "{:<36} {:>12.4} {:>11} {:>8}",
            t.feature,
            t.coefficient,
            fmt_opt(t.standard_error, 4),
            fmt_opt(t.t_value, 2)
        );
    }
    if !r.top_predicted.is_empty() {
        println!(
            "highest predicted spend over the next {} days:",
            r.horizon_days
        );
        for p in &r.top_predicted {
            println!("  {:<30} {:>10.2}", p.key, p.predicted);
        }
    }
    Ok(())
}

/// Segmentation method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// RFM quintile scores with named segments.
    Rfm,
    /// k-means on standardized recency, log orders, log spend.
    Kmeans,
}

impl From<Method> for SegmentMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Rfm => SegmentMethod::Rfm,
            Method::Kmeans => SegmentMethod::Kmeans,
        }
    }
}

/// Arguments of `segments`.
#[derive(Debug, clap::Args)]
pub struct SegmentsArgs {
    /// Method.
    #[arg(long, value_enum, default_value_t = Method::Rfm)]
    method: Method,
    /// Number of k-means clusters (default: chosen by silhouette in 2..8).
    #[arg(long)]
    k: Option<usize>,
    /// Seed of k-means.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also list every customer: key, segment, recency (days), frequency,
    /// monetary and the R, F, M scores (`customer_rows` in the JSON).
    #[arg(long)]
    customers: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print_segments(r: &SegmentsReport) {
    println!(
        "{} segments of {} customers as of {}",
        r.method, r.customers, r.as_of
    );
    if let Some(k) = r.k {
        let sil: Vec<String> = r
            .silhouettes
            .iter()
            .map(|(k, s)| format!("k={k}: {s:.3}"))
            .collect();
        println!("k = {k}  (silhouette {})", sil.join(", "));
    }
    println!(
        "{:<20} {:>6} {:>7} {:>9} {:>9} {:>7} {:>10}  top categories",
        "segment", "size", "share", "revenue%", "recency", "orders", "spend"
    );
    for s in &r.segments {
        let cats: Vec<String> = s
            .top_categories
            .iter()
            .map(|c| format!("{} {:.0}%", c.category, c.share * 100.0))
            .collect();
        println!(
            "{:<20} {:>6} {:>6.1}% {:>8.1}% {:>9} {:>7.1} {:>10.2}  {}",
            s.name,
            s.size,
            s.share * 100.0,
            s.revenue_share * 100.0,
            s.median_recency_days
                .map_or_else(|| "-".into(), |d| format!("{d:.0} d")),
            s.median_frequency,
            s.median_monetary,
            cats.join(", ")
        );
    }
    println!("(recency, orders, spend: medians)");
}

/// `infogap segments`.
pub fn segments(ctx: &Ctx, args: &SegmentsArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let ds = engine.dataset()?;
    let opts = SegmentOptions {
        method: args.method.into(),
        k: args.k,
        seed: args.seed,
    };
    let (report, mut rows) = analytics::segments(&ds, &opts)?;
    let action = if args.customers {
        infogap_core::access::Action::SegmentsExport
    } else {
        infogap_core::access::Action::SegmentsRead
    };
    let access = ctx.access(&engine, action)?;
    // outside admin and analyst: small segments merged, DP noise
    let shown = infogap_engine::privacy::aggregate::shared_profiles(
        &engine,
        &access,
        &report,
        &rows,
        access.visibility(infogap_core::access::FieldClass::Behaviour)
            == infogap_core::access::Visibility::Visible,
    )?;
    if args.customers {
        let left_out = infogap_engine::share::share_segment_rows(&engine, &access, &mut rows)?;
        if left_out.total() > 0 {
            eprintln!("customer rows: {}", left_out.describe());
        }
    } else {
        engine.record_access(&access, "segments.read", vec![], vec![])?;
    }
    let pseudonymized = args.customers && engine.pseudonyms_for(&access)?.is_some();
    if !shown.2.exact {
        return print_shared_segments(&report, shown, args.customers.then_some(&rows), args.json);
    }
    if args.json {
        if args.customers {
            let mut v = serde_json::to_value(&report)?;
            v["customer_rows"] = serde_json::to_value(&rows)?;
            v["pseudonymized"] = pseudonymized.into();
            v["privacy"] = serde_json::to_value(&shown.2)?;
            return print_json(&v);
        }
        let mut v = serde_json::to_value(&report)?;
        v["privacy"] = serde_json::to_value(&shown.2)?;
        print_json(&v)
    } else {
        print_segments(&report);
        for s in &report.segments {
            if !s.description.is_empty() {
                println!("  {}: {}", s.name, s.description);
            }
        }
        if args.customers {
            println!();
            println!(
                "{:<24} {:<20} {:>10} {:>6} {:>12}  R F M",
                "customer", "segment", "recency d", "orders", "spend"
            );
            let score = |v: Option<u8>| v.map_or("-".to_string(), |x| x.to_string());
            for c in &rows {
                println!(
                    "{:<24} {:<20} {:>10} {:>6} {:>12.2}  {} {} {}",
                    c.key,
                    c.segment,
                    c.recency_days.map_or("-".into(), |r| format!("{r:.1}")),
                    c.frequency,
                    c.monetary,
                    score(c.r),
                    score(c.f),
                    score(c.m)
                );
            }
            if pseudonymized {
                println!("(customers pseudonymized: keyed-hash ids, no contact values)");
            }
        }
        Ok(())
    }
}

/// Prints segments as a role outside admin and analyst sees them: the
/// protected profiles, the privacy note, and the member rows if asked for.
fn print_shared_segments(
    report: &SegmentsReport,
    (customers, profiles, privacy): (
        usize,
        Vec<infogap_engine::privacy::aggregate::SharedProfile>,
        infogap_engine::privacy::aggregate::AggregateNote,
    ),
    rows: Option<&Vec<analytics::CustomerSegment>>,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let mut v = serde_json::json!({
            "method": report.method,
            "as_of": report.as_of,
            "customers": customers,
            "segments": profiles,
            "rules": report.rules,
            "privacy": privacy,
        });
        if let Some(rows) = rows {
            v["customer_rows"] = serde_json::to_value(rows)?;
        }
        return print_json(&v);
    }
    println!(
        "{} segments of {} customers as of {}",
        report.method, customers, report.as_of
    );
    println!(
        "{:<22} {:>6} {:>7} {:>9} {:>9} {:>7} {:>10}",
        "segment", "size", "share", "revenue%", "recency", "orders", "spend"
    );
    let num = |v: Option<f64>, d: usize| v.map_or_else(|| "-".to_string(), |x| format!("{x:.d$}"));
    for s in &profiles {
        println!(
            "{:<22} {:>6} {:>6.1}% {:>9} {:>9} {:>7} {:>10}",
            s.name,
            s.size,
            s.share * 100.0,
            num(s.revenue_share.map(|r| r * 100.0), 1),
            num(s.median_recency_days, 0),
            num(s.median_frequency, 1),
            num(s.median_monetary, 2),
        );
    }
    println!("{}", privacy.line());
    if let Some(rows) = rows {
        println!();
        for c in rows {
            println!("{:<24} {:<20} {:>6}", c.key, c.segment, c.frequency);
        }
    }
    Ok(())
}

/// Arguments of `bayes`.
#[derive(Debug, clap::Args)]
pub struct BayesArgs {
    /// P(A), the prior.
    #[arg(
        long,
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    prior: Option<f64>,
    /// P(B|A), the likelihood.
    #[arg(
        long,
        required_unless_present = "from_store",
        conflicts_with = "from_store"
    )]
    likelihood: Option<f64>,
    /// P(B), the evidence.
    #[arg(long, conflicts_with_all = ["likelihood_not", "from_store"])]
    evidence: Option<f64>,
    /// P(B|not A); P(B) is then computed.
    #[arg(long, conflicts_with = "from_store")]
    likelihood_not: Option<f64>,
    /// Estimate the probabilities from the store's customers.
    #[arg(long)]
    from_store: bool,
    /// With --from-store: the event B ("no purchase in 30 days", "complaint",
    /// "low score", "score below 3", "declining purchases").
    #[arg(long, requires = "from_store")]
    event: Option<String>,
    /// With --from-store: the outcome A (churn).
    #[arg(long, default_value = "churn")]
    outcome: String,
    /// With --from-store: churn = no purchase in this many days after the cutoff.
    #[arg(long, default_value_t = 90, value_name = "DAYS")]
    window_days: i64,
    /// With --from-store: the population is the customers with an order in
    /// this many days before the cutoff (as `train churn`).
    #[arg(long, default_value_t = 365, value_name = "DAYS")]
    active_days: i64,
    /// With --from-store: confidence level of the interval.
    #[arg(long, default_value_t = 0.95)]
    confidence: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `infogap bayes`.
pub fn bayes(ctx: &Ctx, args: &BayesArgs) -> anyhow::Result<()> {
    if args.from_store {
        let Some(event) = &args.event else {
            bail!("--from-store needs --event (e.g. \"no purchase in 30 days\")");
        };
        let engine = ctx.engine_existing()?;
        let ds = engine.dataset()?;
        let opts = BayesStoreOptions {
            event: event.clone(),
            outcome: args.outcome.clone(),
            window_days: args.window_days,
            active_days: args.active_days,
            confidence: args.confidence,
        };
        let r = analytics::bayes_from_store(&ds, &opts)?;
        if args.json {
            return print_json(&r);
        }
        println!("A = {}", r.outcome);
        println!("B = {}", r.event);
        println!(
            "P(A) = {:.4}  P(B|A) = {:.4}  P(B) = {:.4}   ({} customers, {} with A, {} with B, {} with both)",
            r.prior,
            r.likelihood,
            r.evidence,
            r.counts.customers,
            r.counts.outcome,
            r.counts.event,
            r.counts.both
        );
        println!(
            "P(A|B) = {:.4}  {:.0}% interval [{:.4}, {:.4}]  ({})",
            r.posterior,
            r.interval.level * 100.0,
            r.interval.low,
            r.interval.high,
            r.interval.method
        );
        if let Some(l) = r.lift {
            println!(
                "lift P(A|B)/P(A) = {l:.2}; P(A|not B) = {}",
                fmt_opt(r.posterior_without_event, 4)
            );
        }
        return Ok(());
    }
    let (Some(prior), Some(likelihood)) = (args.prior, args.likelihood) else {
        bail!("--prior and --likelihood are required (or --from-store)");
    };
    let evidence = match (args.evidence, args.likelihood_not) {
        (Some(e), None) => Evidence::Probability(e),
        (None, Some(l)) => Evidence::LikelihoodNot(l),
        (Some(_), Some(_)) => bail!("give either --evidence or --likelihood-not, not both"),
        (None, None) => bail!("--evidence P(B) or --likelihood-not P(B|not A) is required"),
    };
    let r = bayes::posterior(prior, likelihood, evidence)?;
    if args.json {
        return print_json(&r);
    }
    println!(
        "P(A|B) = P(B|A)·P(A) / P(B) = {} × {} / {:.6} = {:.4}",
        likelihood, prior, r.evidence, r.posterior
    );
    if let Some(l) = r.likelihood_not {
        println!("(P(B) = {:.6}; P(B|not A) = {:.6})", r.evidence, l);
    }
    Ok(())
}

/// `segment` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SegmentCmd {
    /// Write the customers of one segment to a CSV file (key, id, segment,
    /// recency_days, frequency, monetary, r, f, m) for precision marketing.
    Export {
        /// Segment name (`champions`, `at risk`, …; k-means: `cluster 2`).
        name: String,
        /// Output CSV file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Method the segment comes from.
        #[arg(long, value_enum, default_value_t = Method::Rfm)]
        method: Method,
        /// Number of k-means clusters (default: chosen by silhouette).
        #[arg(long)]
        k: Option<usize>,
        /// Seed of k-means.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print a JSON summary.
        #[arg(long)]
        json: bool,
    },
}

/// `infogap segment …`.
pub fn segment(ctx: &Ctx, c: &SegmentCmd) -> anyhow::Result<()> {
    match c {
        SegmentCmd::Export {
            name,
            out,
            method,
            k,
            seed,
            json,
        } => {
            let engine = ctx.engine_existing()?;
            let access = ctx.access(&engine, infogap_core::access::Action::SegmentsExport)?;
            let ds = engine.dataset()?;
            let opts = SegmentOptions {
                method: (*method).into(),
                k: *k,
                seed: *seed,
            };
            let export = analytics::export_segment(&engine, &access, &ds, &opts, name, out)?;
            let n = export.written;
            let pseudonymized = engine.pseudonyms_for(&access)?.is_some();
            if *json {
                print_json(
                    &serde_json::json!({"segment": name, "customers": n, "out": out.display().to_string(), "pseudonymized": pseudonymized, "left_out": export.left_out}),
                )
            } else {
                println!(
                    "wrote {n} customers of segment {name:?} to {}",
                    out.display()
                );
                // a marketing list: who was left out for lack of consent
                // (stderr, beside the CSV)
                eprintln!("{}", export.left_out.describe());
                if pseudonymized {
                    println!("customers pseudonymized: keyed-hash ids (p_…), no contact values");
                }
                Ok(())
            }
        }
    }
}

/// Segment summary for `quickstart`: RFM segments with size, revenue share and
/// medians. Prints a short table unless `json`; returns the JSON report.
pub fn quickstart_section(
    _ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let ds = engine.dataset()?;
    let (report, _) = analytics::segments(&ds, &SegmentOptions::default())?;
    if !json {
        println!();
        println!("Customer segments (RFM)");
        print_segments(&report);
    }
    Ok(serde_json::to_value(&report)?)
}
