//! `eval ask-next`: active feature acquisition on any CSV (argument parsing
//! and printing only; the work is in `infogap_models::acquire`).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use infogap_models::ModelError;
use infogap_models::acquire::{AcqEvalReport, AcqOptions, AcqTable, evaluate_with};
use infogap_models::tabular::{ColumnData, Frame, PrepareReport, TargetSpec, prepare};
use serde::Serialize;

use crate::Ctx;
use crate::ctx::print_json;

/// Arguments of `eval ask-next`.
#[derive(Debug, clap::Args)]
pub struct EvalAskNextArgs {
    /// Delimited text file (delimiter auto-detected).
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Target column (binary).
    #[arg(long, value_name = "COL")]
    pub target: String,
    /// Value of the target counted as positive (default: inferred for Yes/No, 1/0, true/false).
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Columns to leave out (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COL,..")]
    pub drop: Vec<String>,
    /// Columns known for every row from the start (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "COL,..")]
    pub known: Vec<String>,
    /// Acquisitions per row (default: every unknown feature).
    #[arg(long, value_name = "K")]
    pub budget: Option<usize>,
    /// Stratified folds.
    #[arg(long, default_value_t = 5)]
    pub folds: usize,
    /// Seed of folds and of the random policy.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The JSON of `eval ask-next`: the table as prepared, then the evaluation.
#[derive(Debug, Serialize)]
struct AskEvalOutput {
    csv: String,
    table: PrepareReport,
    #[serde(flatten)]
    report: AcqEvalReport,
}

/// `infogap eval ask-next`.
pub fn eval(_ctx: &Ctx, args: &EvalAskNextArgs) -> anyhow::Result<()> {
    if args.folds < 2 {
        anyhow::bail!("--folds must be at least 2 (got {})", args.folds);
    }
    if args.budget == Some(0) {
        anyhow::bail!("--budget must be at least 1 (acquisitions per row)");
    }
    let frame = infogap_engine::analytics::read_frame(&args.csv)?;
    let prep = prepare(
        &frame,
        &args.target,
        &TargetSpec::Binary {
            positive: args.positive.clone(),
        },
        &args.drop,
    )
    .map_err(flag_error)
    .with_context(|| format!("eval ask-next on {}", args.csv.display()))?;
    let table = acq_table(&prep.features);
    let known = known_indices(&args.known, &table.names, &prep.report)?;
    let unknown = table.names.len() - known.len();
    let budget = args.budget.unwrap_or(unknown);
    if budget > unknown {
        anyhow::bail!(
            "--budget {budget} is more than the {unknown} features that start unknown ({} features, {} --known)",
            table.names.len(),
            known.len()
        );
    }
    let y: Vec<bool> = prep.y.iter().map(|&v| v > 0.5).collect();
    let opts = AcqOptions {
        seed: args.seed,
        ..AcqOptions::default()
    };
    let report = evaluate_with(&table, &y, &known, budget, args.folds, &opts)
        .map_err(flag_error)
        .with_context(|| format!("eval ask-next on {}", args.csv.display()))?;
    let out = AskEvalOutput {
        csv: args.csv.display().to_string(),
        table: prep.report,
        report,
    };
    infogap_engine::invariants::check("eval ask-next", &out)?;
    if args.json {
        print_json(&out)
    } else {
        print_text(&out);
        Ok(())
    }
}

/// A model error with its parameter named as the command-line flag.
fn flag_error(e: ModelError) -> anyhow::Error {
    match e {
        ModelError::InvalidParameter { name, reason } => anyhow::anyhow!("--{name}: {reason}"),
        other => other.into(),
    }
}

/// Typed columns → the acquisition table: numbers as they are, text as a level
/// index (levels sorted), a blank cell as unknown. A categorical column is one
/// feature, whatever its number of levels.
fn acq_table(features: &Frame) -> AcqTable {
    let n = features.n_rows();
    let cols = features.columns();
    let d = cols.len();
    let mut data = vec![f64::NAN; n * d];
    let mut categorical = Vec::with_capacity(d);
    for (j, c) in cols.iter().enumerate() {
        match &c.data {
            ColumnData::Numeric(v) => {
                categorical.push(false);
                for (i, x) in v.iter().enumerate() {
                    if let Some(x) = x {
                        data[i * d + j] = *x;
                    }
                }
            }
            ColumnData::Categorical(v) => {
                categorical.push(true);
                let levels: BTreeSet<&str> = v.iter().flatten().map(String::as_str).collect();
                let levels: Vec<&str> = levels.into_iter().collect();
                for (i, x) in v.iter().enumerate() {
                    if let Some(x) = x
                        && let Ok(k) = levels.binary_search(&x.as_str())
                    {
                        data[i * d + j] = k as f64;
                    }
                }
            }
        }
    }
    AcqTable {
        names: cols.iter().map(|c| c.name.clone()).collect(),
        categorical,
        n_rows: n,
        data,
    }
}

fn known_indices(
    known: &[String],
    names: &[String],
    report: &PrepareReport,
) -> anyhow::Result<Vec<usize>> {
    let mut out = Vec::new();
    for k in known.iter().map(|k| k.trim()).filter(|k| !k.is_empty()) {
        match names.iter().position(|n| n == k) {
            Some(j) => {
                if !out.contains(&j) {
                    out.push(j);
                }
            }
            None => {
                if k == report.target.name {
                    anyhow::bail!("--known: {k:?} is the target column");
                }
                if let Some(d) = report.dropped.iter().find(|d| d.name == k) {
                    anyhow::bail!("--known: column {k:?} was dropped ({})", d.reason);
                }
                anyhow::bail!(
                    "--known: no feature column {k:?}; feature columns are: {}",
                    names.join(", ")
                );
            }
        }
    }
    if out.len() == names.len() {
        anyhow::bail!("--known lists every feature column; nothing is left to ask");
    }
    Ok(out)
}

fn print_text(o: &AskEvalOutput) {
    let r = &o.report;
    println!(
        "{}: {} rows, target {} ({} positive), {} features ({} known from the start)",
        o.csv,
        r.rows,
        o.table.target.name,
        r.positives,
        r.features.len(),
        r.known.len()
    );
    for d in &o.table.dropped {
        println!("  dropped {}: {}", d.name, d.reason);
    }
    println!(
        "{} stratified folds, seed {}, budget {} acquisitions per row",
        r.folds, r.seed, r.budget
    );
    println!("ROC AUC after k acquisitions:");
    println!(
        "  {:>4}  {:>8}  {:>12}  {:>8}",
        "k", "ask_next", "global_order", "random"
    );
    for k in 0..r.curves.ask_next.len() {
        println!(
            "  {:>4}  {:>8.4}  {:>12.4}  {:>8.4}",
            k, r.curves.ask_next[k], r.curves.global_order[k], r.curves.random[k]
        );
    }
    println!(
        "  area  {:>8.4}  {:>12.4}  {:>8.4}",
        r.area.ask_next, r.area.global_order, r.area.random
    );
    println!(
        "   ±sd  {:>8.4}  {:>12.4}  {:>8.4}  (over folds)",
        r.area_std.ask_next, r.area_std.global_order, r.area_std.random
    );
    println!("all features known: ROC AUC {:.4}", r.all_features_auc);
    if let Some(order) = r.global_order.first() {
        println!("global order (fold 1): {}", order.join(", "));
    }
    let first: Vec<String> = r
        .first_asked
        .iter()
        .take(5)
        .map(|f| format!("{} {:.0}%", f.feature, 100.0 * f.fraction))
        .collect();
    println!("ask_next asks first: {}", first.join(", "));
    println!(
        "{} decisions, {:.0} decisions/s ({} threads); {:.2} s in all",
        r.decisions, r.decisions_per_second, r.threads, r.seconds.total
    );
    crate::ctx::print_warnings(&r.warnings);
}
