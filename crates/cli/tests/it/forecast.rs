//! End-to-end tests of `infogap forecast` and `infogap eval forecast`.

use std::path::Path;

use crate::common::{fails, json, run_in, shared_data};

fn arr(v: &serde_json::Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

/// `infogap eval forecast --csv CSV --holdout 12 --season 12 EXTRA.. --json`.
fn eval_monthly(dir: &Path, csv: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        "forecast",
        "--csv",
        csv,
        "--holdout",
        "12",
        "--season",
        "12",
    ];
    args.extend_from_slice(extra);
    args.push("--json");
    json(dir, &args)
}

#[test]
fn textbook_ses_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = json(
        dir.path(),
        &[
            "forecast",
            "--series",
            "100,120,150,180",
            "--method",
            "ses",
            "--alpha",
            "0.2",
            "--initial-level",
            "0",
            "--horizon",
            "3",
            "--json",
        ],
    );
    let levels = arr(&v, "levels");
    let want = [20.0, 40.0, 62.0, 85.6];
    assert_eq!(levels.len(), 4);
    for (g, w) in levels.iter().zip(want) {
        assert!((g - w).abs() < 1e-9, "{levels:?}");
    }
    let fc = arr(&v, "forecast");
    assert_eq!(fc.len(), 3);
    assert!(fc.iter().all(|f| (f - 85.6).abs() < 1e-9), "{fc:?}");
    let (lo, hi) = (arr(&v, "lower"), arr(&v, "upper"));
    assert!(lo[0] < 85.6 && hi[0] > 85.6 && hi[2] - lo[2] > hi[0] - lo[0]);
}

/// A planted monthly series: trend × multiplicative season, CRLF and quoted header.
fn write_seasonal_csv(path: &Path) -> Vec<f64> {
    let season = [
        0.9, 0.85, 1.0, 0.97, 1.02, 1.12, 1.25, 1.22, 1.06, 0.93, 0.82, 0.87,
    ];
    let mut s = String::from("\"date\",\"value\"\r\n");
    let mut ys = Vec::new();
    for t in 0..96usize {
        // deterministic small wiggle instead of noise
        let wiggle = 1.0 + 0.01 * (((t * 7919) % 13) as f64 / 6.0 - 1.0);
        let y = (100.0 + 1.5 * t as f64) * season[t % 12] * wiggle;
        ys.push(y);
        s.push_str(&format!(
            "{}-{:02}-01,{y:.3}\r\n",
            2010 + t / 12,
            t % 12 + 1
        ));
    }
    std::fs::write(path, s).expect("write csv");
    ys
}

#[test]
fn eval_forecast_on_a_planted_seasonal_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("series.csv");
    write_seasonal_csv(&csv);
    let csv_s = csv.to_str().expect("utf8 path");
    let v = eval_monthly(dir.path(), csv_s, &[]);
    let mape = v["mape"].as_f64().expect("mape");
    assert!(mape < 3.0, "mape {mape}: {v}");
    assert!(v["rmse"].as_f64().expect("rmse") > 0.0);
    assert!(v["fit_seconds"].as_f64().expect("fit_seconds") >= 0.0);
    // The prediction intervals are timed apart from the fit.
    assert!(v["forecast_seconds"].as_f64().expect("forecast_seconds") >= 0.0);
    let method = v["method"].as_str().expect("method");
    assert!(
        method.ends_with(",M)") || method.contains(",A) on log"),
        "{method}"
    );
    assert!(v["params"]["alpha"].is_number());
    // Without --repeat there is no median; with it, the refits give the same
    // answer and their median time is reported.
    assert!(v["fit_seconds_median"].is_null(), "{v}");
    let again = eval_monthly(dir.path(), csv_s, &["--repeat", "3"]);
    assert_eq!(again["repeats"], 3);
    assert!(
        again["fit_seconds_median"].as_f64().expect("median") > 0.0,
        "{again}"
    );
    assert_eq!(again["forecast"], v["forecast"]);
    assert_eq!(again["params"], v["params"]);
    // An explicit method is honoured.
    let v = eval_monthly(dir.path(), csv_s, &["--method", "hw-add"]);
    assert_eq!(v["method"], "ETS(A,A,A)");
}

/// A planted damped trend without season, offered a season of 12: `auto`
/// must not invent a season and must follow the flattening trend.
#[test]
fn eval_forecast_auto_on_a_planted_nonseasonal_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("damped.csv");
    let mut s = String::from("date,value\n");
    let mut level = 50.0;
    let mut slope = 3.0;
    let mut ys = Vec::new();
    for t in 0..108usize {
        level += slope;
        slope *= 0.96;
        let wiggle = 1.5 * (((t * 7919) % 17) as f64 / 8.0 - 1.0);
        let y = level + wiggle;
        ys.push(y);
        s.push_str(&format!("{}-{:02}-01,{y:.3}\n", 2010 + t / 12, t % 12 + 1));
    }
    std::fs::write(&csv, s).expect("write csv");
    let v = eval_monthly(dir.path(), csv.to_str().expect("utf8"), &[]);
    let method = v["method"].as_str().expect("method");
    assert!(method.ends_with(",N)"), "{method}");
    let mape = v["mape"].as_f64().expect("mape");
    assert!(mape < 2.0, "mape {mape}: {v}");
}

#[test]
fn bad_input_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = fails(
        dir.path(),
        &["forecast", "--series", "1,2,x,4", "--method", "ses"],
    );
    assert!(err.contains("value 3") && err.contains("\"x\""), "{err}");

    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "date,value\n2024-01-01,1\n2024-02-01,oops\n").expect("write");
    let err = fails(
        dir.path(),
        &[
            "eval",
            "forecast",
            "--csv",
            csv.to_str().expect("utf8"),
            "--holdout",
            "1",
        ],
    );
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("value"),
        "{err}"
    );

    let out = run_in(
        dir.path(),
        &["forecast", "--series", "1,2,3", "--method", "hw-add"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--season"));
}

/// Writes a monthly CSV of `values`.
fn write_monthly_csv(path: &Path, values: &[f64]) {
    let mut s = String::from("date,value\n");
    for (t, v) in values.iter().enumerate() {
        s.push_str(&format!("{}-{:02}-01,{v}\n", 2010 + t / 12, t % 12 + 1));
    }
    std::fs::write(path, s).expect("write csv");
}

/// The edges of issue 15's reference grid, end to end: a constant series is
/// forecast as its constant with a warning in the JSON, whatever the method
/// (auto included); a method that cannot apply is a clear error; a model of
/// positive data whose trend crosses zero says so; no report has a
/// non-finite number (JSON null) where a number belongs.
#[test]
fn edge_series_give_finite_reports_with_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("constant.csv");
    write_monthly_csv(&csv, &[42.5; 30]);
    let csv_s = csv.to_str().expect("utf8");
    for method in ["auto", "ses", "holt", "hw-add", "hw-mul"] {
        let v = json(
            dir.path(),
            &[
                "eval",
                "forecast",
                "--csv",
                csv_s,
                "--holdout",
                "6",
                "--season",
                "4",
                "--method",
                method,
                "--json",
            ],
        );
        for key in ["forecast", "lower", "upper"] {
            assert!(
                arr(&v, key).iter().all(|f| (f - 42.5).abs() < 1e-9),
                "{method} {key}: {v}"
            );
        }
        assert!(v["aicc"].is_number() && v["rmse"] == 0.0, "{method}: {v}");
        let warnings = v["warnings"].as_array().expect("warnings");
        assert!(
            warnings
                .iter()
                .any(|w| w.as_str().is_some_and(|w| w.contains("constant"))),
            "{method}: {v}"
        );
    }
    // Multiplicative Holt-Winters on data with a zero: the error names the
    // model, the value and its position.
    let zeros = dir.path().join("zeros.csv");
    let counts: Vec<f64> = (0..30).map(|t| ((t * 7) % 4) as f64).collect();
    write_monthly_csv(&zeros, &counts);
    let err = fails(
        dir.path(),
        &[
            "eval",
            "forecast",
            "--csv",
            zeros.to_str().expect("utf8"),
            "--holdout",
            "6",
            "--season",
            "4",
            "--method",
            "hw-mul",
        ],
    );
    assert!(
        err.contains("ETS(M,A,M)") && err.contains("strictly positive") && err.contains("index 0"),
        "{err}"
    );
    // Holt-Winters on fewer than two seasons.
    let err = fails(
        dir.path(),
        &[
            "forecast",
            "--series",
            "5,6,7,6,5,6,7",
            "--method",
            "hw-add",
            "--season",
            "4",
        ],
    );
    assert!(
        err.contains("too few") && err.contains("two full seasons"),
        "{err}"
    );
    // A positive model whose trend crosses zero: floored at 0, and said.
    let falling: Vec<String> = (0..20)
        .map(|t| format!("{}", 100.0 - 4.0 * t as f64 + 0.3 * (t % 3) as f64))
        .collect();
    let v = json(
        dir.path(),
        &[
            "forecast",
            "--series",
            &falling.join(","),
            "--method",
            "hw-mul",
            "--season",
            "2",
            "--horizon",
            "15",
            "--estimation",
            "mle",
            "--json",
        ],
    );
    assert!(arr(&v, "forecast").iter().all(|f| *f >= 0.0), "{v}");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("below zero"))),
        "{v}"
    );
}

#[test]
fn store_demand_forecast_with_chart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = dir.path().join("demo");
    let demo_s = demo.to_str().expect("utf8");
    crate::common::ok(
        dir.path(),
        &["demo", "--out", demo_s, "--customers", "300", "--seed", "7"],
    );
    let cfg = demo.join("infogap.toml");
    crate::common::ok(
        dir.path(),
        &["import", "--config", cfg.to_str().expect("utf8")],
    );
    let chart = dir.path().join("total.svg");
    let v = json(
        dir.path(),
        &[
            "forecast",
            "--store",
            "--total",
            "--by",
            "week",
            "--horizon",
            "8",
            "--json",
            "--chart",
            chart.to_str().expect("utf8"),
        ],
    );
    let fc = arr(&v, "forecast");
    let (lo, hi) = (arr(&v, "lower"), arr(&v, "upper"));
    assert_eq!(fc.len(), 8);
    assert_eq!(v["dates"].as_array().map(|a| a.len()), Some(8));
    for j in 0..8 {
        assert!(lo[j] <= fc[j] && fc[j] <= hi[j] && lo[j] >= 0.0);
    }
    // The forecast is on the scale of the recent history.
    let hist = v["history"]["values"].as_array().expect("history");
    let recent: f64 = hist
        .iter()
        .rev()
        .take(8)
        .map(|x| x.as_f64().expect("num"))
        .sum::<f64>()
        / 8.0;
    assert!(
        fc[0] > 0.3 * recent && fc[0] < 3.0 * recent,
        "{} vs {recent}",
        fc[0]
    );
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    assert!(svg.starts_with("<svg") && svg.contains("<polygon") && svg.contains("<polyline"));

    // Monthly quantity of a category.
    let v = json(
        dir.path(),
        &[
            "forecast",
            "--store",
            "--by",
            "month",
            "--measure",
            "quantity",
            "--horizon",
            "3",
            "--json",
        ],
    );
    assert_eq!(v["by"], "month");
    assert_eq!(arr(&v, "forecast").len(), 3);
    let out = run_in(
        dir.path(),
        &["forecast", "--store", "--category", "no-such-category"],
    );
    assert!(!out.status.success());
}

#[test]
#[ignore = "real data: ../shared/data"]
fn airpassengers_auto_mape_at_most_2_2() {
    let csv = shared_data().join("airpassengers/AirPassengers.csv");
    assert!(csv.is_file(), "missing {}", csv.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let v = eval_monthly(
        dir.path(),
        csv.to_str().expect("utf8"),
        &["--method", "auto"],
    );
    let mape = v["mape"].as_f64().expect("mape");
    assert!(mape <= 2.2, "AirPassengers auto MAPE {mape} %: {v}");
    assert_eq!(v["n_train"], 132);
}

/// `bench forecast` runs the anchor script's rows in its order, times a
/// cold fit and the repeats of each, and each row computes exactly what the
/// `eval forecast` command it names computes.
#[test]
fn bench_forecast_rows_match_their_eval_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("series.csv");
    write_seasonal_csv(&csv);
    let csv_s = csv.to_str().expect("utf8 path");
    let v = json(
        dir.path(),
        &[
            "bench",
            "forecast",
            "--csv",
            csv_s,
            "--holdout",
            "12",
            "--season",
            "12",
            "--repeat",
            "2",
            "--json",
        ],
    );
    assert_eq!(v["n_train"], 84);
    let rows = v["rows"].as_array().expect("rows");
    let ids: Vec<&str> = rows.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["a1", "a2", "auto", "hw-mul"]);
    let flags: [&[&str]; 4] = [
        &["--method", "ses", "--alpha", "0.2"],
        &[
            "--method",
            "ses",
            "--alpha",
            "0.2",
            "--initial-level",
            "first",
        ],
        &["--method", "auto"],
        &["--method", "hw-mul"],
    ];
    for (row, extra) in rows.iter().zip(flags) {
        assert!(
            row["fit_seconds_cold"].as_f64().expect("cold") > 0.0,
            "{row}"
        );
        assert!(
            row["fit_seconds_median"].as_f64().expect("median") > 0.0,
            "{row}"
        );
        let cmd = row["command"].as_str().expect("command");
        assert!(cmd.ends_with(&extra.join(" ")), "{cmd}");
        let e = eval_monthly(dir.path(), csv_s, extra);
        assert_eq!(e["method"], row["method"], "{cmd}");
        assert_eq!(e["mape"], row["mape"], "{cmd}");
        assert_eq!(e["rmse"], row["rmse"], "{cmd}");
    }
    // A holdout that leaves nothing to fit is refused, naming the file.
    let err = fails(
        dir.path(),
        &["bench", "forecast", "--csv", csv_s, "--holdout", "96"],
    );
    assert!(
        err.contains("--holdout 96") && err.contains("series.csv"),
        "{err}"
    );
}
