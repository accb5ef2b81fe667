//! `eval classify` (any CSV, k-fold), `train churn` and `churn` (risk table
//! with reasons): argument parsing and printing only; the work is in
//! `infogap_models::classify` and `infogap_engine::churn`.

use std::path::PathBuf;

use anyhow::Context;
use infogap_engine::churn::{self, ChurnOptions, ChurnScores, ChurnTrainReport};
use infogap_models::classify::{ClassifierConfig, EvalReport, ModelKind, eval_frame};
use infogap_models::metrics::classification::CalibrationBin;

use crate::Ctx;
use crate::ctx::print_json;

/// Arguments of `eval classify`.
#[derive(Debug, clap::Args)]
pub struct EvalClassifyArgs {
    /// Delimited text file (delimiter auto-detected; quoted fields and CRLF handled).
    #[arg(long, value_name = "FILE")]
    csv: PathBuf,
    /// Target column (binary).
    #[arg(long, value_name = "COL")]
    target: String,
    /// Value of the target counted as positive (default: inferred for Yes/No, 1/0, true/false).
    #[arg(long, value_name = "VALUE")]
    positive: Option<String>,
    /// Model: logreg, tree, gbm or auto (chosen by inner CV on each training fold).
    #[arg(long, default_value = "auto")]
    model: String,
    /// Columns to leave out (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COL,..")]
    drop: Vec<String>,
    /// Stratified folds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed of folds and subsampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn parse_model(s: &str) -> anyhow::Result<ModelKind> {
    s.parse::<ModelKind>()
        .map_err(|e| anyhow::anyhow!("--model: {e}"))
}

/// `infogap eval classify`.
pub fn eval(_ctx: &Ctx, args: &EvalClassifyArgs) -> anyhow::Result<()> {
    let kind = parse_model(&args.model)?;
    if args.folds < 2 {
        anyhow::bail!("--folds must be at least 2");
    }
    let frame = infogap_engine::analytics::read_frame(&args.csv)?;
    let config = ClassifierConfig::of_kind(kind, args.seed);
    let report = eval_frame(
        &frame,
        &args.target,
        args.positive.clone(),
        &args.drop,
        &config,
        args.folds,
        args.seed,
    )
    .with_context(|| format!("classification on {}", args.csv.display()))?;
    infogap_engine::invariants::check("eval classify", &report)?;
    if args.json {
        print_json(&report)
    } else {
        print_eval(&report, &args.csv);
        Ok(())
    }
}

fn print_eval(r: &EvalReport, path: &std::path::Path) {
    println!(
        "{}: {} rows, target {} ({} positive)",
        path.display(),
        r.table.rows_used,
        r.table.target.name,
        r.table.target.positives.unwrap_or(0)
    );
    for d in &r.table.dropped {
        println!("  dropped {}: {}", d.name, d.reason);
    }
    for rule in &r.encoding.rules {
        println!("  {rule}");
    }
    println!(
        "model {} · {} stratified folds, seed {}",
        r.model, r.folds, r.seed
    );
    println!("  ROC AUC   {:.4} ± {:.4}", r.roc_auc, r.std.roc_auc);
    println!("  PR AUC    {:.4} ± {:.4}", r.pr_auc, r.std.pr_auc);
    println!("  log loss  {:.4} ± {:.4}", r.log_loss, r.std.log_loss);
    println!("  Brier     {:.4} ± {:.4}", r.brier, r.std.brier);
    println!("  accuracy  {:.4} ± {:.4}", r.accuracy, r.std.accuracy);
    println!("  fit       {:.3} s per fold", r.fit_seconds_per_fold);
    let mut chosen = r.chosen.clone();
    chosen.dedup();
    println!("  chosen    {}", chosen.join(", "));
    crate::ctx::print_warnings(&r.warnings);
}

/// Arguments of `train churn`.
#[derive(Debug, clap::Args)]
pub struct TrainChurnArgs {
    /// Cutoff date (YYYY-MM-DD); default: latest fact time minus the window.
    #[arg(long, value_name = "DATE")]
    cutoff: Option<String>,
    /// Churn = no purchase in this many days after the cutoff.
    #[arg(long, default_value_t = 90, value_name = "N")]
    window_days: i64,
    /// Customers count when they ordered in this many days before the cutoff.
    #[arg(long, default_value_t = 365, value_name = "N")]
    active_days: i64,
    /// Use this customer attribute (yes/no, true/false, 1/0) as the churn label instead.
    #[arg(long, value_name = "ATTR")]
    label_attribute: Option<String>,
    /// Model: logreg, tree, gbm or auto.
    #[arg(long, default_value = "auto")]
    model: String,
    /// Cross-validation folds for the reported metrics.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Leave feature families out (`sentiment`: the feedback texts'
    /// sentiment; `scores`: ticket counts, survey and review scores;
    /// `feedback`: both), to measure what they add; comma-separated or
    /// repeated.
    #[arg(long, value_name = "FAMILY", value_delimiter = ',')]
    without: Vec<String>,
    /// Measure only: do not save the model (an ablation leaves the saved
    /// model alone).
    #[arg(long)]
    no_save: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `infogap train churn`.
pub fn train(ctx: &Ctx, args: &TrainChurnArgs) -> anyhow::Result<()> {
    let model = parse_model(&args.model)?;
    if args.folds < 2 {
        anyhow::bail!("--folds must be at least 2");
    }
    let cutoff = args.cutoff.as_deref().map(churn::parse_date).transpose()?;
    infogap_engine::features::check_families(&args.without).map_err(anyhow::Error::msg)?;
    let mut opts = ChurnOptions {
        cutoff,
        window_days: args.window_days,
        active_days: args.active_days,
        model,
        seed: args.seed,
        folds: args.folds,
        label_attribute: args.label_attribute.clone(),
        ..Default::default()
    };
    opts.features.without = args.without.clone();
    let engine = ctx.engine_existing()?;
    let report = if args.no_save {
        let ds = engine.dataset()?;
        churn::train_on_dataset(&ds, &opts)
            .context("training the churn model")?
            .1
    } else {
        churn::train(&engine, &opts).context("training the churn model")?
    };
    if args.json {
        print_json(&report)
    } else {
        print_train(&report);
        Ok(())
    }
}

fn print_calibration(table: &[CalibrationBin]) {
    println!("  calibration (out-of-fold, calibrated):");
    println!(
        "    {:>11}  {:>6}  {:>9}  {:>8}",
        "predicted", "count", "mean pred", "observed"
    );
    for b in table {
        println!(
            "    {:>4.0}-{:<4.0}%  {:>6}  {:>8.1}%  {:>7.1}%",
            b.lo * 100.0,
            b.hi * 100.0,
            b.count,
            b.mean_predicted * 100.0,
            b.observed_rate * 100.0
        );
    }
}

fn print_train(r: &ChurnTrainReport) {
    println!(
        "churn model v{} · {} · cutoff {} · window {} days",
        r.version.map_or("-".into(), |v| v.to_string()),
        r.model,
        r.cutoff,
        r.window_days
    );
    println!("  label: {}", r.label);
    println!(
        "  {} customers, {} churned ({:.1}%), {} features",
        r.customers,
        r.churners,
        r.churn_rate * 100.0,
        r.n_features
    );
    if !r.without.is_empty() {
        println!("  features without: {}", r.without.join(", "));
    }
    println!(
        "  {}-fold CV: ROC AUC {:.3} ± {:.3}, PR AUC {:.3}, log loss {:.3}, Brier {:.3}, accuracy {:.3}",
        r.folds,
        r.metrics.roc_auc,
        r.metrics_std.roc_auc,
        r.metrics.pr_auc,
        r.metrics.log_loss,
        r.metrics.brier,
        r.metrics.accuracy
    );
    if !r.candidates.is_empty() {
        let c: Vec<String> = r
            .candidates
            .iter()
            .map(|c| format!("{} {:.3}", c.name, c.inner_roc_auc))
            .collect();
        println!("  auto (inner CV ROC AUC): {}", c.join(", "));
    }
    println!("  top drivers (log-odds, churners vs retained):");
    for d in r.drivers.iter().take(6) {
        println!("    {:<22} {:+.3}", d.feature, d.separation);
    }
    println!(
        "  expected calibration error: raw {:.3}, calibrated {:.3}",
        r.ece_raw, r.ece_calibrated
    );
    print_calibration(&r.calibration);
    crate::ctx::print_warnings(&r.warnings);
}

/// Arguments of `churn`.
#[derive(Debug, clap::Args)]
pub struct ChurnArgs {
    /// How many customers to list, highest risk first.
    #[arg(long, default_value_t = 50)]
    top: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

fn print_risks(s: &ChurnScores, reasons: bool) {
    println!(
        "churn risk as of {} (model v{}, {} active customers scored)",
        s.as_of, s.model_version, s.scored
    );
    let w = s
        .customers
        .iter()
        .map(|r| r.key.chars().count())
        .fold(8, usize::max);
    println!(
        "  {:<w$} {:>6}  top reasons (contribution to log-odds)",
        "customer", "risk"
    );
    for r in &s.customers {
        let why: Vec<&str> = r.reasons.iter().map(|x| x.text.as_str()).collect();
        let why = if reasons {
            why.join(" | ")
        } else {
            String::new()
        };
        println!("  {:<w$} {:>5.1}%  {}", r.key, r.probability * 100.0, why);
    }
    if s.left_out.total() > 0 {
        println!("  ({})", s.left_out.describe());
    }
    if s.pseudonymized {
        println!("  (customers pseudonymized: keyed-hash ids, no contact values)");
    }
}

/// `infogap churn`.
pub fn churn(ctx: &Ctx, args: &ChurnArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, infogap_core::access::Action::ChurnRead)?;
    let scores = churn::risk(&engine, &access, args.top)?;
    if args.json {
        print_json(&scores)
    } else {
        print_risks(&scores, true);
        print_calibration(&scores.calibration);
        Ok(())
    }
}

/// The churn section of `quickstart`: trains (auto) when no model is saved,
/// then prints the 10 riskiest customers with reasons and the calibration table.
pub fn quickstart_section(
    ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<serde_json::Value> {
    let trained = if engine.load_model("churn")?.is_none() {
        Some(churn::train(engine, &ChurnOptions::default()).context("training the churn model")?)
    } else {
        None
    };
    let access = ctx.access(engine, infogap_core::access::Action::ChurnRead)?;
    let scores = churn::risk(engine, &access, 10)?;
    if !json {
        println!("== Churn risk ==");
        if let Some(t) = &trained {
            println!(
                "  trained {} on {} customers (cutoff {}, {} churned); {}-fold ROC AUC {:.3}",
                t.model, t.customers, t.cutoff, t.churners, t.folds, t.metrics.roc_auc
            );
        }
        print_risks(&scores, true);
        print_calibration(&scores.calibration);
    }
    Ok(serde_json::json!({ "trained": trained, "risk": scores }))
}
