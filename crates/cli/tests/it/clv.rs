//! End-to-end tests: `infogap eval clv`, `infogap train clv`, `infogap clv`.

use std::collections::HashMap;
use std::path::Path;

use crate::common::{fails, json, ok, run_in, shared_data};

/// A tiny deterministic generator (xorshift64*), so the tests need no RNG crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn date(day: i64) -> String {
    // day 0 = 2024-01-01; 2024 is a leap year and all days fall in 2024
    let months = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let mut d = day;
    let mut m = 0;
    while d >= months[m] {
        d -= months[m];
        m += 1;
    }
    format!("2024-{:02}-{:02}", m + 1, d + 1)
}

/// Writes `customer,date,amount` for 300 customers: regulars buying about
/// every 10 days all year, lapsed ones who stopped in March, and one-timers.
/// Returns (customers, repeat customers) with purchases by 2024-09-30 (day 273).
fn write_csv(path: &Path) -> (usize, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = String::from("customer,date,amount\n");
    let (mut customers, mut repeaters) = (0, 0);
    for c in 0..300 {
        let start = (rng.next() * 60.0) as i64;
        let (gap, stop) = match c % 3 {
            0 => (10.0, 365),
            1 => (8.0, 80),
            _ => (1000.0, 365),
        };
        let mut day = start;
        let mut days_before_cut = 0;
        while day <= stop && day < 366 {
            // two orders on some days: they count as one purchase day
            let n = if rng.next() < 0.2 { 2 } else { 1 };
            for _ in 0..n {
                out.push_str(&format!(
                    "cust{c},{},{:.2}\n",
                    date(day),
                    10.0 + 40.0 * rng.next()
                ));
            }
            if day <= 273 {
                days_before_cut += 1;
            }
            day += 1 + (gap * 2.0 * rng.next()) as i64;
        }
        customers += usize::from(days_before_cut > 0);
        repeaters += usize::from(days_before_cut > 1);
    }
    std::fs::write(path, out).expect("write csv");
    (customers, repeaters)
}

#[test]
fn eval_clv_fits_a_csv_and_reports_the_contract_fields() {
    let dir = tempfile::tempdir().expect("tmp");
    let csv = dir.path().join("tx.csv");
    let (customers, repeaters) = write_csv(&csv);
    let out = json(
        dir.path(),
        &[
            "eval",
            "clv",
            "--transactions",
            csv.to_str().expect("utf8"),
            "--calibration-end",
            "2024-09-30",
            "--json",
        ],
    );
    assert_eq!(out["customers"].as_u64(), Some(customers as u64));
    assert_eq!(out["repeaters"].as_u64(), Some(repeaters as u64));
    for k in ["r", "alpha", "a", "b"] {
        let v = out["bgnbd"][k].as_f64().expect(k);
        assert!(v.is_finite() && v > 0.0, "{k} = {v}");
    }
    assert!(out["bgnbd"]["log_likelihood"].as_f64().expect("ll") < 0.0);
    for k in ["p", "q", "gamma"] {
        assert!(out["gamma_gamma"][k].as_f64().expect(k) > 0.0);
    }
    // amounts are 10..50, so the population mean spend pγ/(q−1) lies in there
    let (p, q, g) = (
        out["gamma_gamma"]["p"].as_f64().unwrap_or(0.0),
        out["gamma_gamma"]["q"].as_f64().unwrap_or(0.0),
        out["gamma_gamma"]["gamma"].as_f64().unwrap_or(0.0),
    );
    let pop = p * g / (q - 1.0);
    assert!(pop > 10.0 && pop < 60.0, "population mean spend {pop}");
    assert!(out["fit_seconds"].as_f64().expect("fit_seconds") >= 0.0);

    // a calibration end before anyone's first purchase is a clear error
    let bad = run_in(
        dir.path(),
        &[
            "eval",
            "clv",
            "--transactions",
            csv.to_str().expect("utf8"),
            "--calibration-end",
            "2023-01-01",
        ],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("calibration end"));
}

#[test]
fn eval_clv_bad_input_names_line_and_column() {
    let dir = tempfile::tempdir().expect("tmp");
    let csv = dir.path().join("bad.csv");
    std::fs::write(
        &csv,
        "customer,date,amount\na,2024-01-01,5\na,2024-02-30,5\n",
    )
    .expect("write");
    let err = fails(
        dir.path(),
        &["eval", "clv", "--transactions", csv.to_str().expect("utf8")],
    );
    assert!(
        err.contains("bad.csv") && err.contains("line 3") && err.contains("date (column 2)"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let txt = dir.path().join("bad.txt");
    std::fs::write(
        &txt,
        " 00001 0001 19970101  1   11.77\n 00001 0001 19970105  x   11.77\n",
    )
    .expect("write");
    let err = fails(
        dir.path(),
        &[
            "eval",
            "clv",
            "--transactions",
            txt.to_str().expect("utf8"),
            "--format",
            "cdnow",
        ],
    );
    assert!(
        err.contains("line 2") && err.contains("cds (column 4)"),
        "{err}"
    );

    let out = run_in(dir.path(), &["eval", "clv", "--transactions", "nope.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.csv"));
}

#[test]
fn store_clv_ranks_customers_and_flags_planted_churners() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    ok(
        d,
        &[
            "-q",
            "demo",
            "--out",
            "demo",
            "--customers",
            "300",
            "--seed",
            "3",
        ],
    );
    ok(d, &["-q", "import", "--config", "demo/infogap.toml"]);
    // no model yet: a clear error
    let out = run_in(d, &["clv", "--top", "5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("infogap train clv"));

    let trained = json(d, &["train", "clv", "--json"]);
    assert_eq!(trained["version"].as_i64(), Some(1));
    assert!(trained["bgnbd"]["log_likelihood"].as_f64().expect("ll") < 0.0);
    let n = trained["customers"].as_u64().expect("customers") as usize;
    assert!(n > 200);

    let ranked = json(
        d,
        &["clv", "--top", "1000", "--horizon-months", "12", "--json"],
    );
    let top = ranked["top"].as_array().expect("top");
    // customers without profiling consent are left out, and counted
    let left = &ranked["left_out"];
    assert_eq!(left["purpose"], "profiling");
    assert_eq!(
        top.len() as u64
            + left["withdrawn"].as_u64().expect("withdrawn")
            + left["not_granted"].as_u64().expect("not granted"),
        n as u64
    );
    let clv: Vec<f64> = top
        .iter()
        .map(|r| r["clv"].as_f64().unwrap_or(f64::NAN))
        .collect();
    assert!(clv.windows(2).all(|w| w[0] >= w[1]), "not sorted by CLV");
    // planted churners (ground truth of the demo) look less alive and are rare at the top
    let truth = std::fs::read_to_string(d.join("demo/truth/persons.csv")).expect("truth");
    let mut lines = truth.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (ci, chi) = (col("crm_id"), col("churned"));
    let churned: HashMap<String, bool> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| (format!("crm:{}", f[ci]), f[chi] == "1"))
        .collect();
    let (mut alive_ch, mut alive_ok) = (Vec::new(), Vec::new());
    for r in top {
        let key = r["key"].as_str().unwrap_or("");
        let pa = r["prob_alive"].as_f64().expect("prob_alive");
        assert!((0.0..=1.0).contains(&pa));
        match churned.get(key) {
            Some(true) => alive_ch.push(pa),
            Some(false) => alive_ok.push(pa),
            None => {}
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    assert!(alive_ch.len() > 20 && alive_ok.len() > 100);
    assert!(
        mean(&alive_ch) + 0.15 < mean(&alive_ok),
        "P(alive): churners {} vs others {}",
        mean(&alive_ch),
        mean(&alive_ok)
    );
    let churn_share = alive_ch.len() as f64 / (alive_ch.len() + alive_ok.len()) as f64;
    let top_churn = top[..30]
        .iter()
        .filter(|r| churned.get(r["key"].as_str().unwrap_or("")) == Some(&true))
        .count();
    assert!(
        (top_churn as f64 / 30.0) < churn_share / 2.0,
        "{top_churn} churners in the top 30"
    );

    // human report
    let text = ok(d, &["clv", "--top", "3"]);
    assert!(
        text.contains("CLV over 12 months") && text.lines().count() >= 5,
        "{text}"
    );
}

// ------------------------------------------------------------ real data

fn cdnow(name: &str) -> String {
    shared_data()
        .join("cdnow")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn eval_cdnow(file: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().expect("tmp");
    json(
        dir.path(),
        &[
            "eval",
            "clv",
            "--transactions",
            &cdnow(file),
            "--calibration-end",
            "1997-09-30",
            "--time-unit",
            "week",
            "--json",
        ],
    )
}

fn assert_close(v: &serde_json::Value, want: f64, tol: f64, what: &str) {
    let got = v.as_f64().unwrap_or(f64::NAN);
    assert!(
        (got - want).abs() <= tol,
        "{what}: {got} vs {want} (±{tol})"
    );
}

#[test]
#[ignore = "real data: ../shared/data"]
fn cdnow_sample_reproduces_fader_hardie_lee() {
    let out = eval_cdnow("CDNOW_sample.txt");
    assert_eq!(out["customers"].as_u64(), Some(2357));
    assert_eq!(out["repeaters"].as_u64(), Some(946));
    // the paper's figures to 3 decimals (FHL 2005; Fader & Hardie 2013 for Gamma-Gamma)
    let b = &out["bgnbd"];
    assert_close(&b["r"], 0.243, 0.0005, "r");
    assert_close(&b["alpha"], 4.414, 0.0005, "alpha");
    assert_close(&b["a"], 0.793, 0.0005, "a");
    assert_close(&b["b"], 2.426, 0.0005, "b");
    assert_close(&b["log_likelihood"], -9582.4, 0.05, "log-likelihood");
    let g = &out["gamma_gamma"];
    // Gamma-Gamma: the paper gives 2 decimals (6.25, 3.74, 15.44); lifetimes on
    // the same monetary values (mean spend of the repeat days) gives 6.2496,
    // 3.7442, 15.4435 (RESULTS.md §4, GG_B): match both.
    assert_close(&g["p"], 6.25, 0.005, "p (paper)");
    assert_close(&g["q"], 3.74, 0.005, "q (paper)");
    assert_close(&g["gamma"], 15.44, 0.005, "gamma (paper)");
    assert_close(&g["p"], 6.2496, 0.0005, "p (lifetimes)");
    assert_close(&g["q"], 3.7442, 0.0005, "q (lifetimes)");
    assert_close(&g["gamma"], 15.4435, 0.0005, "gamma (lifetimes)");
}

#[test]
#[ignore = "real data: ../shared/data"]
fn cdnow_master_matches_lifetimes() {
    let out = eval_cdnow("CDNOW_master.txt");
    assert_eq!(out["customers"].as_u64(), Some(23570));
    assert_eq!(out["repeaters"].as_u64(), Some(9451));
    // lifetimes 0.11.3 on the same summary (../shared/anchors/RESULTS.md §4, variant C)
    let b = &out["bgnbd"];
    assert_close(&b["r"], 0.2516, 0.00005, "r");
    assert_close(&b["alpha"], 4.7889, 0.00005, "alpha");
    assert_close(&b["a"], 0.7234, 0.00005, "a");
    assert_close(&b["b"], 2.1611, 0.00005, "b");
    assert_close(&b["log_likelihood"], -95368.44, 0.005, "log-likelihood");
}
