//! `infogap eval clv` (BG/NBD + Gamma-Gamma on a transaction file),
//! `infogap train clv` and `infogap clv --top N` (on the store). Parsing and
//! printing only: the models live in `infogap_models::clv`, the reader in
//! `infogap_ingest::cdnow`, the store glue in `infogap_engine::clv`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use infogap_engine::clv::{self as engine_clv, ClvRanking, day_to_date};
use infogap_ingest::cdnow::{TxFormat, parse_day, read_transactions};
use infogap_models::clv::{BgNbd, GammaGamma, TimeUnit, Transaction, summarize};
use serde_json::{Value, json};

use crate::Ctx;

fn parse_unit(s: &str) -> Result<TimeUnit, String> {
    s.parse::<TimeUnit>().map_err(|e| e.to_string())
}

fn parse_format(s: &str) -> Result<TxFormat, String> {
    s.parse::<TxFormat>()
}

fn parse_date(s: &str) -> Result<i64, String> {
    parse_day(s)
}

/// Arguments of `infogap eval clv`.
#[derive(Debug, clap::Args)]
pub struct EvalClvArgs {
    /// Transaction file: CDNOW text (sample or master) or CSV `customer,date,amount`.
    #[arg(long)]
    pub transactions: PathBuf,
    /// File format (`cdnow` or `csv`); detected from the first line when omitted.
    #[arg(long, value_parser = parse_format)]
    pub format: Option<TxFormat>,
    /// Last day of the calibration period (YYYY-MM-DD); default: the last transaction's day.
    #[arg(long, value_parser = parse_date)]
    pub calibration_end: Option<i64>,
    /// Time unit of recency, age and α: day, week (days/7) or month (days/30.4375).
    #[arg(long, default_value = "week", value_parser = parse_unit)]
    pub time_unit: TimeUnit,
    /// Fit this many times and report the median fit time (for benchmarks).
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap eval clv`: fits BG/NBD and Gamma-Gamma on a transaction file.
pub fn eval(_ctx: &Ctx, args: &EvalClvArgs) -> anyhow::Result<()> {
    let t_read = Instant::now();
    let file = read_transactions(&args.transactions, args.format)?;
    let read_seconds = t_read.elapsed().as_secs_f64();
    let tx: Vec<Transaction> = file
        .rows
        .iter()
        .map(|&(customer, day, amount)| Transaction {
            customer,
            day,
            amount,
        })
        .collect();
    let last = tx.iter().map(|t| t.day).max().unwrap_or(0);
    let end = args.calibration_end.unwrap_or(last);
    let t_sum = Instant::now();
    let summaries = summarize(&tx, end, args.time_unit)?;
    let summary_seconds = t_sum.elapsed().as_secs_f64();
    if summaries.is_empty() {
        bail!(
            "{}: no transactions on or before the calibration end {}",
            args.transactions.display(),
            day_to_date(end)
        );
    }
    let repeat = args.repeat.max(1);
    // (total, BG/NBD, Gamma-Gamma) seconds of each repeat
    let mut times: Vec<[f64; 3]> = Vec::with_capacity(repeat);
    let mut fits = None;
    for _ in 0..repeat {
        let t0 = Instant::now();
        let bg = BgNbd::default()
            .fit_summaries(&summaries)
            .context("fitting BG/NBD")?;
        let t_bg = t0.elapsed().as_secs_f64();
        let gg = GammaGamma::default()
            .fit_summaries(&summaries)
            .context("fitting Gamma-Gamma")?;
        let total = t0.elapsed().as_secs_f64();
        times.push([total, t_bg, total - t_bg]);
        fits = Some((bg, gg));
    }
    let Some((bg, gg)) = fits else {
        bail!("no fit was run")
    };
    infogap_engine::invariants::check("eval clv", &(&bg, &gg))?;
    let warnings = engine_clv::fit_warnings(&bg, &gg);
    let median = |i: usize| {
        let mut v: Vec<f64> = times.iter().map(|t| t[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (fit_seconds, bgnbd_seconds, gamma_gamma_seconds) = (median(0), median(1), median(2));
    let p = &bg.params;
    let g = &gg.params;
    let out = json!({
        "bgnbd": {"r": p.r, "alpha": p.alpha, "a": p.a, "b": p.b, "log_likelihood": bg.log_likelihood},
        "gamma_gamma": {"p": g.p, "q": g.q, "gamma": g.gamma},
        "customers": bg.customers,
        "repeaters": bg.repeaters,
        "fit_seconds": fit_seconds,
        "gamma_gamma_customers": gg.customers,
        "transactions": tx.len(),
        "calibration_end": day_to_date(end),
        "time_unit": args.time_unit,
        "read_seconds": read_seconds,
        "summary_seconds": summary_seconds,
        "fit_repeats": repeat,
        "bgnbd_seconds": bgnbd_seconds,
        "gamma_gamma_seconds": gamma_gamma_seconds,
        "warnings": warnings,
    });
    if args.json {
        return crate::ctx::print_json(&out);
    }
    println!(
        "{}: {} transactions, {} customers ({} repeaters), calibration ends {}, time unit {}",
        args.transactions.display(),
        tx.len(),
        bg.customers,
        bg.repeaters,
        day_to_date(end),
        args.time_unit.name()
    );
    println!(
        "BG/NBD       r = {:.4}  alpha = {:.4}  a = {:.4}  b = {:.4}  log-likelihood = {:.2}",
        p.r, p.alpha, p.a, p.b, bg.log_likelihood
    );
    println!(
        "Gamma-Gamma  p = {:.4}  q = {:.4}  gamma = {:.4}  ({} repeat customers)",
        g.p, g.q, g.gamma, gg.customers
    );
    println!(
        "fit {:.4} s (median of {repeat}); read {read_seconds:.3} s",
        fit_seconds
    );
    crate::ctx::print_warnings(&warnings);
    Ok(())
}

/// Arguments of `infogap train clv`.
#[derive(Debug, clap::Args)]
pub struct TrainClvArgs {
    /// Last day of the calibration period (YYYY-MM-DD); default: the latest order's day.
    #[arg(long, value_parser = parse_date)]
    pub calibration_end: Option<i64>,
    /// Time unit: day, week (days/7) or month (days/30.4375).
    #[arg(long, default_value = "week", value_parser = parse_unit)]
    pub time_unit: TimeUnit,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infogap train clv`: fits BG/NBD + Gamma-Gamma on the store's orders and saves the model.
pub fn train(ctx: &Ctx, args: &TrainClvArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let report = engine_clv::train(&engine, args.calibration_end, args.time_unit)?;
    let out = report.to_json();
    if args.json {
        return crate::ctx::print_json(&out);
    }
    let p = &report.bgnbd.params;
    let g = &report.gamma_gamma.params;
    println!(
        "saved CLV model version {} ({} customers, {} repeaters, calibration ends {}, time unit {})",
        report.version,
        report.bgnbd.customers,
        report.bgnbd.repeaters,
        report.calibration_end,
        report.time_unit.name()
    );
    println!(
        "BG/NBD       r = {:.4}  alpha = {:.4}  a = {:.4}  b = {:.4}  log-likelihood = {:.2}",
        p.r, p.alpha, p.a, p.b, report.bgnbd.log_likelihood
    );
    println!(
        "Gamma-Gamma  p = {:.4}  q = {:.4}  gamma = {:.4}",
        g.p, g.q, g.gamma
    );
    if report.orders_without_time > 0 {
        println!(
            "{} orders without a time were skipped",
            report.orders_without_time
        );
    }
    crate::ctx::print_warnings(&report.warnings);
    Ok(())
}

/// Arguments of `infogap clv`.
#[derive(Debug, clap::Args)]
pub struct ClvArgs {
    /// How many customers to list.
    #[arg(long, default_value_t = 50)]
    pub top: usize,
    /// CLV horizon in months.
    #[arg(long, default_value_t = 12)]
    pub horizon_months: u32,
    /// Monthly discount rate.
    #[arg(long, default_value_t = 0.01)]
    pub discount_rate: f64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn ranking_json(r: &ClvRanking) -> Value {
    serde_json::to_value(r).unwrap_or(Value::Null)
}

fn print_ranking(r: &ClvRanking) {
    println!(
        "CLV over {} months (monthly discount {}), model version {}, histories to {}: {} customers, total {:.2}",
        r.horizon_months, r.discount_rate, r.model_version, r.as_of, r.customers, r.total_clv
    );
    let w = r
        .top
        .iter()
        .map(|c| c.key.chars().count())
        .fold(8, usize::max);
    println!(
        "{:>4}  {:<w$} {:>10} {:>9} {:>8} {:>10} {:>6}",
        "rank", "customer", "CLV", "E[purch]", "P(alive)", "E[spend]", "x"
    );
    for (i, c) in r.top.iter().enumerate() {
        println!(
            "{:>4}  {:<w$} {:>10.2} {:>9.2} {:>8.3} {:>10.2} {:>6}",
            i + 1,
            c.key,
            c.clv,
            c.expected_purchases,
            c.prob_alive,
            c.expected_spend,
            c.frequency
        );
    }
    if r.left_out.total() > 0 {
        println!("  ({})", r.left_out.describe());
    }
    if r.pseudonymized {
        println!("  (customers pseudonymized: keyed-hash ids, no contact values)");
    }
    crate::ctx::print_warnings(&r.warnings);
}

/// `infogap clv --top N`: customers ranked by discounted CLV with the saved model.
pub fn clv(ctx: &Ctx, args: &ClvArgs) -> anyhow::Result<()> {
    let engine = ctx.engine_existing()?;
    let access = ctx.access(&engine, infogap_core::access::Action::ClvRead)?;
    let r = engine_clv::rank(
        &engine,
        &access,
        args.top,
        args.horizon_months,
        args.discount_rate,
    )?;
    if args.json {
        return crate::ctx::print_json(&ranking_json(&r));
    }
    print_ranking(&r);
    Ok(())
}

/// The quickstart's CLV section: trains the model if the store has none,
/// then lists the top 10 customers by 12-month CLV.
pub fn quickstart_section(
    ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<Value> {
    if engine.load_model(engine_clv::MODEL_KIND)?.is_none() {
        engine_clv::train(engine, None, TimeUnit::Week).context("training the CLV model")?;
    }
    let access = ctx.access(engine, infogap_core::access::Action::ClvRead)?;
    let r = engine_clv::rank(engine, &access, 10, 12, 0.01)?;
    if !json {
        println!("Top customers by lifetime value");
        print_ranking(&r);
    }
    Ok(ranking_json(&r))
}
