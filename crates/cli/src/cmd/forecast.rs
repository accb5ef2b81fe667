//! `infogap forecast` (a series given inline or in a CSV, or the store's demand),
//! `infogap eval forecast` (holdout accuracy on a CSV series) and `infogap bench
//! forecast` (the peer anchor's fits in its timing protocol). Parsing and
//! printing only: the models live in `infogap_models::forecast`, the demand
//! series and chart in `infogap_engine::forecast`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use infogap_engine::forecast::{self as demand, DemandForecast, Measure, Period, Scope};
use infogap_models::forecast::{
    AutoEts, EtsFit, EtsFixed, EtsSpec, Forecast, Transform, fit_ets_for_forecast, mape, rmse,
};
use serde_json::{Value, json};

use crate::Ctx;

/// Which exponential smoothing method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// Automatic selection by AICc across the ETS family (plus log-scale models).
    Auto,
    /// Simple exponential smoothing, ETS(A,N,N).
    Ses,
    /// Holt's linear trend, ETS(A,A,N) (ETS(A,Ad,N) with --damped).
    Holt,
    /// Holt-Winters additive, ETS(A,A,A).
    HwAdd,
    /// Holt-Winters multiplicative, ETS(M,A,M).
    HwMul,
    /// augurs-ets AutoETS (non-seasonal only), kept for the benchmark.
    Augurs,
}

/// Initial level: a number, `first` (the first observation) or `fit` (estimated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitialLevel {
    /// Estimated with the other parameters.
    Fit,
    /// The first observation.
    First,
    /// Given.
    Value(f64),
}

fn parse_initial_level(s: &str) -> Result<InitialLevel, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "fit" | "estimated" | "estimate" => Ok(InitialLevel::Fit),
        "first" => Ok(InitialLevel::First),
        t => t
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(InitialLevel::Value)
            .ok_or_else(|| format!("{s:?} is not a number, `first` or `fit`")),
    }
}

/// Model options shared by both commands.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelOpts {
    /// Method.
    #[arg(long, value_enum, default_value = "auto")]
    pub method: Method,
    /// Season length (observations per cycle, e.g. 12 for monthly data); 1 = none.
    #[arg(long)]
    pub season: Option<usize>,
    /// Damped trend (holt, hw-add, hw-mul).
    #[arg(long)]
    pub damped: bool,
    /// Level smoothing α in [0, 1] (estimated when absent).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Trend smoothing β (estimated when absent).
    #[arg(long)]
    pub beta: Option<f64>,
    /// Seasonal smoothing γ (estimated when absent).
    #[arg(long)]
    pub gamma: Option<f64>,
    /// Damping φ (estimated when absent).
    #[arg(long)]
    pub phi: Option<f64>,
    /// Initial level: a number, `first` or `fit` (default).
    #[arg(long, value_parser = parse_initial_level, default_value = "fit")]
    pub initial_level: InitialLevel,
    /// Coverage of the prediction intervals.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// How parameters are estimated: `amse` (default: minimise the average
    /// 1..h-step-ahead squared error over the horizon h being forecast, at most
    /// 30, when the series is long enough; auto still chooses the model by the
    /// AICc of maximum-likelihood fits) or `mle` (maximum likelihood).
    #[arg(long, value_parser = ["amse", "mle"], default_value = "amse")]
    pub estimation: String,
}

/// Longest horizon of the AMSE criterion (R's cap on `nmse`).
const AMSE_MAX_H: usize = 30;

/// A CSV series and how much of its end is held out for the test.
#[derive(Debug, clap::Args)]
pub struct HoldoutSeries {
    /// CSV file with the series.
    #[arg(long, value_name = "FILE")]
    pub csv: PathBuf,
    /// Date column (detected when absent).
    #[arg(long)]
    pub date_col: Option<String>,
    /// Value column (detected when absent).
    #[arg(long)]
    pub value_col: Option<String>,
    /// Number of final observations held out for the test.
    #[arg(long, default_value_t = 12)]
    pub holdout: usize,
}

/// Arguments of `infogap eval forecast`.
#[derive(Debug, clap::Args)]
pub struct EvalForecastArgs {
    /// The series and the holdout.
    #[command(flatten)]
    pub series: HoldoutSeries,
    /// Model options.
    #[command(flatten)]
    pub model: ModelOpts,
    /// Fit this many more times after the first and report the median time
    /// as `fit_seconds_median` (the first fit, `fit_seconds`, includes the
    /// process's one-time costs: thread start-up, first page faults). The
    /// peer anchor script reports its fits the same way (cold and median of 5).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub repeat: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `infogap bench forecast`.
#[derive(Debug, clap::Args)]
pub struct BenchForecastArgs {
    /// The series and the holdout.
    #[command(flatten)]
    pub series: HoldoutSeries,
    /// Season length of the seasonal rows.
    #[arg(long, default_value_t = 12)]
    pub season: usize,
    /// Repeated fits per row after the first (their median is reported).
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub repeat: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `infogap forecast`.
#[derive(Debug, clap::Args)]
pub struct ForecastArgs {
    /// The series inline, comma-separated (e.g. 100,120,150,180).
    #[arg(long, conflicts_with_all = ["csv", "store"])]
    pub series: Option<String>,
    /// A CSV file with the series.
    #[arg(long, value_name = "FILE", conflicts_with = "store")]
    pub csv: Option<PathBuf>,
    /// Date column of --csv (detected when absent).
    #[arg(long)]
    pub date_col: Option<String>,
    /// Value column of --csv (detected when absent).
    #[arg(long)]
    pub value_col: Option<String>,
    /// Forecast the store's demand.
    #[arg(long)]
    pub store: bool,
    /// Store demand of one product (key or store id).
    #[arg(long, requires = "store", conflicts_with_all = ["category", "total"])]
    pub product: Option<String>,
    /// Store demand of one category.
    #[arg(long, requires = "store", conflicts_with = "total")]
    pub category: Option<String>,
    /// Store demand of everything (the default).
    #[arg(long, requires = "store")]
    pub total: bool,
    /// Period of the store series.
    #[arg(long, value_parser = ["week", "month"], default_value = "week")]
    pub by: String,
    /// What to sum in the store series.
    #[arg(long, value_parser = ["revenue", "quantity"], default_value = "revenue")]
    pub measure: String,
    /// Steps ahead.
    #[arg(long, default_value_t = 12)]
    pub horizon: usize,
    /// Write an SVG chart (history, forecast, interval band) to this file.
    #[arg(long, value_name = "FILE")]
    pub chart: Option<PathBuf>,
    /// Model options.
    #[command(flatten)]
    pub model: ModelOpts,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

fn r6(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1e6).round() / 1e6)
    } else {
        Value::Null
    }
}

fn rv(v: &[f64]) -> Value {
    Value::Array(v.iter().map(|&x| r6(x)).collect())
}

fn params_json(fit: &EtsFit) -> Value {
    let p = &fit.params;
    let mut o = serde_json::Map::new();
    o.insert("alpha".into(), r6(p.alpha));
    if fit.spec.trend != infogap_models::forecast::TrendType::None {
        o.insert("beta".into(), r6(p.beta));
        o.insert("b0".into(), r6(p.b0));
    }
    if fit.spec.season != infogap_models::forecast::SeasonType::None {
        o.insert("gamma".into(), r6(p.gamma));
        o.insert("season".into(), json!(fit.spec.period));
        o.insert("s0".into(), rv(&p.s0));
    }
    if fit.spec.trend == infogap_models::forecast::TrendType::Damped {
        o.insert("phi".into(), r6(p.phi));
    }
    o.insert("l0".into(), r6(p.l0));
    o.insert("sigma2".into(), r6(fit.sigma2));
    if fit.spec.transform == Transform::Log {
        o.insert("transform".into(), json!("log"));
    }
    Value::Object(o)
}

/// The fit's and the forecast's warnings (an exact fit of a constant
/// series, a search that stopped short, forecasts floored at zero, …).
fn warnings_of(fit: &EtsFit, fc: &Forecast) -> Vec<String> {
    fit.warnings.iter().chain(&fc.warnings).cloned().collect()
}

fn print_warnings(warnings: &[String]) {
    for w in warnings {
        println!("warning: {w}");
    }
}

fn fixed_of(m: &ModelOpts, y: &[f64]) -> EtsFixed {
    EtsFixed {
        alpha: m.alpha,
        beta: m.beta,
        gamma: m.gamma,
        phi: m.phi,
        initial_level: match m.initial_level {
            InitialLevel::Fit => None,
            InitialLevel::First => y.first().copied(),
            InitialLevel::Value(v) => Some(v),
        },
    }
}

/// Fits the chosen method (`Augurs` is handled by the caller) for forecasts
/// `horizon` steps ahead. Returns the fit and what to report about how it was
/// chosen and estimated.
fn fit_method(m: &ModelOpts, y: &[f64], horizon: usize) -> anyhow::Result<(EtsFit, Value)> {
    let season = m.season.unwrap_or(1);
    let fixed = fixed_of(m, y);
    let amse_h = if m.estimation == "amse" {
        horizon.clamp(1, AMSE_MAX_H)
    } else {
        0
    };
    let spec = match m.method {
        Method::Auto => {
            if fixed != EtsFixed::default() || m.damped {
                bail!(
                    "--alpha/--beta/--gamma/--phi/--initial-level/--damped need an explicit --method"
                );
            }
            let auto = AutoEts {
                refit_amse: amse_h,
                ..AutoEts::new(season)
            };
            let a = auto.fit_series(y)?;
            let top: Vec<Value> = a
                .candidates
                .iter()
                .take(5)
                .map(|(name, aicc)| json!({"method": name, "aicc": r6(*aicc)}))
                .collect();
            let info = json!({"estimation": a.estimation, "selection_aicc": r6(a.selection_aicc),
                "candidates_fitted": a.candidates.len(), "top_candidates": top});
            return Ok((a.best, info));
        }
        Method::Ses => EtsSpec::ses(),
        Method::Holt => EtsSpec::holt(m.damped),
        Method::HwAdd | Method::HwMul if season < 2 => {
            bail!("Holt-Winters needs --season N (N ≥ 2 observations per cycle)")
        }
        Method::HwAdd => EtsSpec::hw_additive(season, m.damped),
        Method::HwMul => EtsSpec::hw_multiplicative(season, m.damped),
        Method::Augurs => bail!("--method augurs is only available in `infogap eval forecast`"),
    };
    let (fit, estimation) = fit_ets_for_forecast(y, spec, &fixed, amse_h)?;
    Ok((fit, json!({"estimation": estimation})))
}

fn check_level(level: f64) -> anyhow::Result<()> {
    if !(level > 0.0 && level < 1.0) {
        bail!("--level must be in (0, 1), got {level}");
    }
    Ok(())
}

/// Reads the series and checks that the holdout leaves observations to fit on.
fn read_holdout_series(a: &HoldoutSeries) -> anyhow::Result<infogap_ingest::series::Series> {
    let opts = infogap_ingest::series::SeriesOptions {
        date_col: a.date_col.clone(),
        value_col: a.value_col.clone(),
    };
    let series = infogap_ingest::series::read_series(&a.csv, &opts)?;
    let n = series.values.len();
    if a.holdout == 0 || a.holdout >= n {
        bail!(
            "--holdout {} must be between 1 and the series length minus 1 ({n} observations in {})",
            a.holdout,
            a.csv.display()
        );
    }
    Ok(series)
}

/// The median of fit times (null when there are none).
fn median_seconds(mut times: Vec<f64>) -> Value {
    times.sort_by(f64::total_cmp);
    match times.len() {
        0 => Value::Null,
        k if k % 2 == 1 => json!(times[k / 2]),
        k => json!((times[k / 2 - 1] + times[k / 2]) / 2.0),
    }
}

/// `infogap eval forecast`: fit on all but the last `--holdout` observations,
/// forecast them, report MAPE (%) and RMSE.
pub fn eval(_ctx: &Ctx, args: &EvalForecastArgs) -> anyhow::Result<()> {
    check_level(args.model.level)?;
    let series = read_holdout_series(&args.series)?;
    let y = &series.values;
    let (train, test) = y.split_at(y.len() - args.series.holdout);
    let h = test.len();
    // `fit_seconds`: estimation (model choice and parameters) up to the point
    // forecasts; `forecast_seconds`: the prediction intervals (simulated paths
    // for some models), timed apart because they are forecasting, not fitting.
    let t0 = Instant::now();
    let mut warnings: Vec<String> = Vec::new();
    let (method, params, point, extra, fit_seconds, forecast_seconds) =
        if args.model.method == Method::Augurs {
            let (name, point) = infogap_models::forecast::augurs_auto_nonseasonal(train, h)?;
            let fit_seconds = t0.elapsed().as_secs_f64();
            (name, json!({}), point, json!({}), fit_seconds, 0.0)
        } else {
            let (fit, info) = fit_method(&args.model, train, h)?;
            let fit_seconds = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let fc = fit.forecast_intervals(h, args.model.level)?;
            let forecast_seconds = t1.elapsed().as_secs_f64();
            warnings = warnings_of(&fit, &fc);
            let extra = json!({"aicc": r6(fit.aicc), "lower": rv(&fc.lower), "upper": rv(&fc.upper),
            "interval_method": fc.interval_method, "level": fc.level, "selection": info});
            let mut params = params_json(&fit);
            if let (Some(o), Some(e)) = (params.as_object_mut(), info.get("estimation")) {
                o.insert("estimation".into(), e.clone());
            }
            let name = fit.name();
            (name, params, fc.point, extra, fit_seconds, forecast_seconds)
        };
    let mut repeats = Vec::with_capacity(args.repeat);
    for _ in 0..args.repeat {
        let t = Instant::now();
        if args.model.method == Method::Augurs {
            infogap_models::forecast::augurs_auto_nonseasonal(train, h)?;
        } else {
            fit_method(&args.model, train, h)?;
        }
        repeats.push(t.elapsed().as_secs_f64());
    }
    let fit_seconds_median = median_seconds(repeats);
    if test.iter().all(|v| *v == 0.0) {
        warnings.push("MAPE is undefined: every held-out value is 0 (mape is null)".into());
    }
    let out = json!({
        "mape": r6(mape(test, &point)),
        "rmse": r6(rmse(test, &point)),
        "method": method,
        "params": params,
        "fit_seconds": fit_seconds,
        "fit_seconds_median": fit_seconds_median,
        "repeats": args.repeat,
        "forecast_seconds": forecast_seconds,
        "n_train": train.len(),
        "n_test": h,
        "forecast": rv(&point),
        "actual": rv(test),
        "aicc": extra.get("aicc").cloned().unwrap_or(Value::Null),
        "lower": extra.get("lower").cloned().unwrap_or(Value::Null),
        "upper": extra.get("upper").cloned().unwrap_or(Value::Null),
        "interval_method": extra.get("interval_method").cloned().unwrap_or(Value::Null),
        "selection": extra.get("selection").cloned().unwrap_or(Value::Null),
        "warnings": warnings,
    });
    if args.json {
        crate::ctx::print_json(&out)?;
    } else {
        println!(
            "series: {} ({} observations, column {:?})",
            args.series.csv.display(),
            y.len(),
            series.value_column
        );
        println!("train {} / test {}", train.len(), h);
        println!("method: {method}");
        println!(
            "MAPE {:.3} %   RMSE {:.3}   fit {:.4} s",
            mape(test, &point),
            rmse(test, &point),
            fit_seconds
        );
        if let Some(med) = fit_seconds_median.as_f64() {
            println!("fit, median of {} repeats: {med:.4} s", args.repeat);
        }
        println!("params: {}", out["params"]);
        print_warnings(&warnings);
    }
    Ok(())
}

/// `infogap bench forecast`: the fits of the statsmodels anchor script
/// (`../shared/anchors/hw_airpassengers.py`) in its protocol, so that the two
/// can be compared row by row: one process, rows in the script's order
/// (simple exponential smoothing first, then the seasonal fits), and for each
/// row the first fit ("cold") and the median of `--repeat` more. Each row is
/// the same computation as an `infogap eval forecast` command (named in the
/// output), whose `fit_seconds` is instead the first fit of a fresh process.
pub fn bench(_ctx: &Ctx, args: &BenchForecastArgs) -> anyhow::Result<()> {
    let series = read_holdout_series(&args.series)?;
    let y = &series.values;
    let (train, test) = y.split_at(y.len() - args.series.holdout);
    let h = test.len();
    let base = ModelOpts {
        method: Method::Ses,
        season: Some(args.season),
        damped: false,
        alpha: Some(0.2),
        beta: None,
        gamma: None,
        phi: None,
        initial_level: InitialLevel::Fit,
        level: 0.95,
        estimation: "amse".into(),
    };
    // (id, what the anchor's row is, the equivalent eval flags, options)
    let rows = [
        (
            "a1",
            "SES, alpha 0.2, initial level estimated (anchor a1)",
            "--method ses --alpha 0.2",
            base.clone(),
        ),
        (
            "a2",
            "SES, alpha 0.2, initial level = first observation (anchor a2)",
            "--method ses --alpha 0.2 --initial-level first",
            ModelOpts {
                initial_level: InitialLevel::First,
                ..base.clone()
            },
        ),
        (
            "auto",
            "automatic ETS selection (against anchor b, estimated initialisation)",
            "--method auto",
            ModelOpts {
                method: Method::Auto,
                alpha: None,
                ..base.clone()
            },
        ),
        (
            "hw-mul",
            "Holt-Winters, additive trend, multiplicative season, all estimated (anchor b's model)",
            "--method hw-mul",
            ModelOpts {
                method: Method::HwMul,
                alpha: None,
                ..base
            },
        ),
    ];
    let mut out = Vec::with_capacity(rows.len());
    for (id, what, flags, opts) in &rows {
        let t = Instant::now();
        let (fit, _) = fit_method(opts, train, h)?;
        let cold = t.elapsed().as_secs_f64();
        let mut times = Vec::with_capacity(args.repeat);
        for _ in 0..args.repeat {
            let t = Instant::now();
            fit_method(opts, train, h)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let median = median_seconds(times);
        let point = fit.forecast(h);
        out.push(json!({
            "id": id,
            "description": what,
            "command": format!("infogap eval forecast --csv {} --holdout {} --season {} {flags}",
                args.series.csv.display(), args.series.holdout, args.season),
            "method": fit.name(),
            "mape": r6(mape(test, &point)),
            "rmse": r6(rmse(test, &point)),
            "fit_seconds_cold": cold,
            "fit_seconds_median": median,
        }));
    }
    let report = json!({
        "series": args.series.csv.display().to_string(),
        "n_train": train.len(),
        "n_test": h,
        "repeats": args.repeat,
        "protocol": "one process; rows in the anchor script's order; per row the first fit (cold) and the median of the repeats",
        "rows": out,
    });
    if args.json {
        return crate::ctx::print_json(&report);
    }
    println!(
        "{} (train {}, test {}), {} repeats per row",
        args.series.csv.display(),
        train.len(),
        h,
        args.repeat
    );
    println!(
        "{:<7} {:<16} {:>8} {:>12} {:>12}",
        "row", "method", "MAPE %", "cold ms", "median ms"
    );
    for r in &out {
        let ms = |v: &Value| {
            v.as_f64()
                .map_or("-".to_string(), |s| format!("{:.3}", s * 1e3))
        };
        println!(
            "{:<7} {:<16} {:>8.3} {:>12} {:>12}",
            r["id"].as_str().unwrap_or(""),
            r["method"].as_str().unwrap_or(""),
            r["mape"].as_f64().unwrap_or(f64::NAN),
            ms(&r["fit_seconds_cold"]),
            ms(&r["fit_seconds_median"])
        );
    }
    Ok(())
}

fn forecast_json(fit: &EtsFit, fc: &Forecast) -> Value {
    json!({
        "method": fit.name(),
        "params": params_json(fit),
        "aicc": r6(fit.aicc),
        "levels": rv(&fit.levels),
        "fitted": rv(&fit.fitted),
        "forecast": rv(&fc.point),
        "lower": rv(&fc.lower),
        "upper": rv(&fc.upper),
        "level": fc.level,
        "interval_method": fc.interval_method,
        "warnings": warnings_of(fit, fc),
    })
}

/// `infogap forecast`.
pub fn forecast(ctx: &Ctx, args: &ForecastArgs) -> anyhow::Result<()> {
    check_level(args.model.level)?;
    if args.horizon == 0 {
        bail!("--horizon must be at least 1");
    }
    if args.store {
        return forecast_store(ctx, args);
    }
    if args.chart.is_some() {
        bail!("--chart is available with --store");
    }
    let y: Vec<f64> = if let Some(s) = &args.series {
        s.split(',')
            .enumerate()
            .map(|(i, t)| {
                let t = t.trim();
                t.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .with_context(|| format!("--series: value {} ({t:?}) is not a number", i + 1))
            })
            .collect::<anyhow::Result<_>>()?
    } else if let Some(path) = &args.csv {
        let opts = infogap_ingest::series::SeriesOptions {
            date_col: args.date_col.clone(),
            value_col: args.value_col.clone(),
        };
        infogap_ingest::series::read_series(path, &opts)?.values
    } else {
        bail!("give --series V1,V2,..., --csv FILE or --store");
    };
    let (fit, info) = fit_method(&args.model, &y, args.horizon)?;
    let fc = fit.forecast_intervals(args.horizon, args.model.level)?;
    let mut out = forecast_json(&fit, &fc);
    if let Some(o) = out.as_object_mut() {
        o.insert("selection".into(), info);
    }
    if args.json {
        crate::ctx::print_json(&out)?;
    } else {
        println!("method: {}   AICc {:.3}", fit.name(), fit.aicc);
        println!("params: {}", out["params"]);
        let lv: Vec<String> = fit.levels.iter().map(|v| format!("{v:.4}")).collect();
        println!("levels: {}", lv.join(", "));
        println!(
            "{:>5}  {:>14}  {:>14}  {:>14}",
            "step", "forecast", "lower", "upper"
        );
        for j in 0..fc.point.len() {
            println!(
                "{:>5}  {:>14.4}  {:>14.4}  {:>14.4}",
                j + 1,
                fc.point[j],
                fc.lower[j],
                fc.upper[j]
            );
        }
        println!(
            "({:.0}% intervals, {})",
            fc.level * 100.0,
            fc.interval_method
        );
        print_warnings(&warnings_of(&fit, &fc));
    }
    Ok(())
}

fn demand_json(f: &DemandForecast) -> Value {
    let dates: Vec<String> = f.future.iter().map(|d| d.to_string()).collect();
    let hist_dates: Vec<String> = f.series.starts.iter().map(|d| d.to_string()).collect();
    json!({
        "scope": f.series.label,
        "by": f.series.period.name(),
        "measure": f.series.measure.name(),
        "method": f.fit.name(),
        "params": params_json(&f.fit),
        "aicc": r6(f.fit.aicc),
        "history": {"dates": hist_dates, "values": rv(&f.series.values)},
        "dates": dates,
        "forecast": rv(&f.forecast.point),
        "lower": rv(&f.forecast.lower),
        "upper": rv(&f.forecast.upper),
        "level": f.forecast.level,
        "interval_method": f.forecast.interval_method,
        "warnings": warnings_of(&f.fit, &f.forecast),
    })
}

fn print_demand(f: &DemandForecast) {
    println!(
        "{} {} per {}: {} periods of history, model {}",
        f.series.label,
        f.series.measure.name(),
        f.series.period.name(),
        f.series.values.len(),
        f.fit.name()
    );
    println!(
        "{:>12}  {:>12}  {:>12}  {:>12}",
        "period", "forecast", "lower", "upper"
    );
    for (j, d) in f.future.iter().enumerate() {
        println!(
            "{:>12}  {:>12.2}  {:>12.2}  {:>12.2}",
            d.to_string(),
            f.forecast.point[j],
            f.forecast.lower[j],
            f.forecast.upper[j]
        );
    }
    println!(
        "({:.0}% intervals, {})",
        f.forecast.level * 100.0,
        f.forecast.interval_method
    );
    print_warnings(&warnings_of(&f.fit, &f.forecast));
}

fn forecast_store(ctx: &Ctx, args: &ForecastArgs) -> anyhow::Result<()> {
    if args.model.method != Method::Auto {
        bail!("--store uses --method auto");
    }
    let period = if args.by == "month" {
        Period::Month
    } else {
        Period::Week
    };
    let measure = if args.measure == "quantity" {
        Measure::Quantity
    } else {
        Measure::Revenue
    };
    let scope = match (&args.product, &args.category) {
        (Some(p), _) => Scope::Product(p.clone()),
        (None, Some(c)) => Scope::Category(c.clone()),
        (None, None) => Scope::Total,
    };
    let engine = ctx.engine_existing()?;
    let ds = engine.dataset()?;
    let series = demand::demand_series(&ds, &scope, period, measure)?;
    let f = demand::forecast_series(series, args.model.season, args.horizon, args.model.level)?;
    if let Some(path) = &args.chart {
        std::fs::write(path, demand::render_svg(&f))
            .with_context(|| format!("writing chart {}", path.display()))?;
    }
    if args.json {
        crate::ctx::print_json(&demand_json(&f))?;
    } else {
        print_demand(&f);
        if let Some(path) = &args.chart {
            println!("chart written to {}", path.display());
        }
    }
    Ok(())
}

/// The quickstart's forecast section: a 12-week revenue forecast for the top
/// 3 categories. Prints a short report unless `json`; returns the JSON.
pub fn quickstart_section(
    _ctx: &Ctx,
    engine: &infogap_engine::Engine,
    json: bool,
) -> anyhow::Result<Value> {
    let ds = engine.dataset()?;
    let cats = demand::top_categories(&ds, 3);
    let mut out = Vec::new();
    if !json {
        println!(
            "12-week demand forecast (revenue) for the top {} categories:",
            cats.len()
        );
    }
    for c in cats {
        let f = demand::forecast_demand(
            &ds,
            &Scope::Category(c.clone()),
            Period::Week,
            Measure::Revenue,
            12,
            0.95,
        )?;
        if !json {
            let total: f64 = f.forecast.point.iter().sum();
            let lo: f64 = f.forecast.lower.first().copied().unwrap_or(f64::NAN);
            let hi: f64 = f.forecast.upper.first().copied().unwrap_or(f64::NAN);
            println!(
                "  {c:<20} next week {:>10.0} [{lo:.0}, {hi:.0}]   12 weeks {:>11.0}   ({})",
                f.forecast.point.first().copied().unwrap_or(f64::NAN),
                total,
                f.fit.name()
            );
            print_warnings(&warnings_of(&f.fit, &f.forecast));
        }
        let mut j = demand_json(&f);
        if let Some(o) = j.as_object_mut() {
            o.insert("category".into(), json!(c));
            o.remove("history");
        }
        out.push(j);
    }
    Ok(json!({ "horizon_weeks": 12, "categories": out }))
}
